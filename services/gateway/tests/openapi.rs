#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OpenAPI document against the code: `schemas/openapi.yaml` is what `spec()`
//! generates, its paths are exactly the routes the router serves, its problem types are
//! exactly the ones the handlers use. Regenerate the file with
//! `TAMGA_UPDATE_OPENAPI=1 cargo test -p tamga-gateway --test openapi`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tamga_gateway::openapi::{spec, to_yaml};
use tamga_gateway::problem::Kind;
use tamga_gateway::{router, Gateway, Settings, ROUTES};
use tower::ServiceExt;

fn yaml_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.yaml")
}

#[test]
fn the_yaml_file_is_generated_from_the_code() {
    let generated = to_yaml(&spec());
    if std::env::var_os("TAMGA_UPDATE_OPENAPI").is_some() {
        std::fs::write(yaml_path(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(yaml_path()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "schemas/openapi.yaml drifted from services/gateway/src/openapi.rs: regenerate it with \
         TAMGA_UPDATE_OPENAPI=1 cargo test -p tamga-gateway --test openapi"
    );
}

#[test]
fn the_paths_are_the_routes() {
    let s = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in s["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    // The API's routes, and the checks' (served by the pages' router, authenticated by
    // page tokens; `serve` merges both).
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .chain(tamga_gateway::pages::CHECK_ROUTES)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routes);
}

#[test]
fn the_problem_types_are_the_kinds() {
    let s = spec();
    let documented: BTreeSet<String> = s["components"]["schemas"]["Problem"]["properties"]["type"]
        ["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let kinds: BTreeSet<String> = Kind::ALL.iter().map(|k| k.type_uri()).collect();
    assert_eq!(documented, kinds);
    assert_eq!(kinds.len(), Kind::ALL.len(), "one type URI per kind");
}

/// Every documented route is served (answers with something else than the fallbacks), and
/// `/openapi.json` is the document itself.
#[tokio::test]
async fn the_router_serves_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let store = tamga_store::open_sqlite(&dir.path().join("s.sqlite")).unwrap();
    let app = router(Gateway::new(
        Arc::new(store),
        Arc::new(tamga_bus::MemoryBus::new()),
        Settings {
            max_bytes: 1024,
            retry_after_secs: 1,
            worker: "t".into(),
            rate_per_second: 10,
            rate_burst: 10,
            long_poll_max_secs: 1,
        },
    ));
    for (method, path) in ROUTES {
        let req = Request::builder()
            .method(method.to_ascii_uppercase().as_str())
            .uri(path.replace("{id}", "some-id"))
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        if *path == "/openapi.json" {
            assert_eq!(status, StatusCode::OK);
            let served: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(served, spec());
        } else {
            // Not the fallbacks (no-route, method-not-allowed): authentication comes first.
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {text}");
            assert!(text.contains("urn:tamga:problem:unauthorized"), "{text}");
        }
    }
}
