#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The checkpoint's checks (issue 17) through the pages' router, without a socket, on the
//! embedded default (SQLite) and on PostgreSQL (a database per test):
//!
//! * every check is a `checked` audit event (contract: `checkpoint`, `officer`,
//!   `bundleVersion`, `result`, `offline`) in an intact chain, with a signed check record
//!   (`GET /v1/checks/{id}`, `application/xml`) that `tamga_check::record::verify` and
//!   xmlsec1 accept;
//! * copies caught: a second presentation at another checkpoint, or after the declaration
//!   left, is `could_not_check` / `already_presented` (never green), also when the scans
//!   race; the repeated-scan metric counts it;
//! * an offline log uploaded twice is recorded once;
//! * the API's contract: 401 without a page token, 403 for an analyst, 400 for a bad body;
//! * the pages: `POST /check` and `GET /check?q=` record and redirect to `/check/{id}`, the
//!   card shows *already presented*, and the dashboard has its checkpoint panels.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tamga_check::log::Entry;
use tamga_check::CheckResult;
use tamga_gateway::pages::{self, BundleSigner, Pages, CHECK_ROUTES};
use tamga_gateway::{Gateway, Settings};
use tamga_pipeline::config::ChecksConfig;
use tamga_store::{ChecksStore, PageRole, StoreConfig};
use tower::ServiceExt;

struct Site {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    app: axum::Router,
    pages: Arc<Pages>,
    store: Arc<dyn ChecksStore>,
    metrics: Arc<tamga_pipeline::Metrics>,
    officer: String,
    officer2: String,
    analyst: String,
    signer: tamga_dsig::SigningKey,
    chain: Vec<Vec<u8>>,
}

fn der_chain(pem_files: &[&Path]) -> Vec<Vec<u8>> {
    pem_files
        .iter()
        .flat_map(|p| tamga_dsig::certificates_from_pem(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

async fn site(store: Arc<dyn ChecksStore>) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ", "KZ"], now))
        .unwrap()
        .write_to(dir.path())
        .unwrap();
    let root = dir.path().to_path_buf();
    let keys = root.join("keys/AZ");
    let key = std::fs::read(keys.join("authority.key")).unwrap();
    let chain = der_chain(&[&keys.join("authority.pem"), &keys.join("issuing-ca.pem")]);
    let bundle_signer = BundleSigner {
        signer: Box::new(tamga_dsig::SigningKey::from_pkcs8_pem(&key).unwrap()),
        chain: chain.clone(),
        country: "AZ".into(),
    };
    let gw = Gateway::new(
        store.clone(),
        Arc::new(tamga_bus::MemoryBus::new()),
        Settings {
            max_bytes: 1 << 20,
            retry_after_secs: 1,
            worker: "gw-test".into(),
            rate_per_second: 0,
            rate_burst: 0,
            long_poll_max_secs: 1,
        },
    );
    let metrics = Arc::new(tamga_pipeline::Metrics::new());
    let cfg = ChecksConfig {
        checkpoints: ["ALAT", "ASTARA", "KAPIKOY", "EXIT"]
            .map(String::from)
            .to_vec(),
        exit_checkpoints: vec!["EXIT".into()],
        ..ChecksConfig::default()
    };
    let pages = Pages::new(
        gw,
        store.clone(),
        &root.join("trust"),
        vec![bundle_signer],
        now,
        cfg,
        metrics.clone(),
    )
    .unwrap();
    let token = |holder: &'static str, role| {
        let store = store.clone();
        async move {
            pages::create_page_token(store.as_ref(), holder, role)
                .await
                .unwrap()
        }
    };
    Site {
        app: pages::router(pages.clone()),
        officer: token("officer-1", PageRole::Officer).await,
        officer2: token("officer-2", PageRole::Officer).await,
        analyst: token("analyst-1", PageRole::Analyst).await,
        signer: tamga_dsig::SigningKey::from_pkcs8_pem(&key).unwrap(),
        chain,
        pages,
        store,
        metrics,
        root,
        _dir: dir,
    }
}

impl Site {
    /// A receipt QR of an accepted KZ → AZ declaration, signed by this site's authority.
    fn qr(&self, lrn: &str) -> String {
        let sha = |b: &[u8]| hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b));
        let claims = tamga_qr::Claims {
            receipt_id: format!("rcpt-{}", &sha(lrn.as_bytes())[..24]),
            decision: "accepted".into(),
            document_sha256: sha(format!("document of {lrn}").as_bytes()),
            lrn: Some(lrn.into()),
            origin: "KZ".into(),
            destination: "AZ".into(),
            issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            authority_certificate_sha256: sha(&self.chain[0]),
            reason: None,
        };
        tamga_qr::sign(&claims, &self.signer, &self.chain).unwrap()
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    async fn check(&self, token: &str, input: &str, checkpoint: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call(
                Request::post("/v1/checks")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({ "input": input, "checkpoint": checkpoint, "device": "test" })
                            .to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn upload(&self, token: &str, log: &str) -> Value {
        let (status, _, body) = self
            .call(
                Request::post("/v1/checks/offline")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(Body::from(log.to_owned()))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.call(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

fn problem_type(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn exercise(store: Arc<dyn ChecksStore>) {
    let s = site(store).await;

    // The contract's edges: no page token, an analyst's, a bad body.
    for (method, path) in CHECK_ROUTES {
        let (status, _, body) = s
            .call(
                Request::builder()
                    .method(method.to_ascii_uppercase().as_str())
                    .uri(path.replace("{id}", "chk-00000000000000000000000000000000"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(problem_type(&body), "urn:tamga:problem:unauthorized");
    }
    let qr1 = s.qr("KZ26TMG0000000101");
    let (status, body) = s.check(&s.analyst, &qr1, "ALAT").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["type"], "urn:tamga:problem:role-not-allowed");
    for (input, checkpoint) in [
        ("", "ALAT"),
        (qr1.as_str(), ""),
        (qr1.as_str(), "ELSEWHERE"),
    ] {
        let (status, body) = s.check(&s.officer, input, checkpoint).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input:.10} {checkpoint}");
        assert_eq!(body["type"], "urn:tamga:problem:invalid-check");
    }

    // Green at ALAT, green again at ALAT (the same post looking again), amber at ASTARA.
    let (status, first) = s.check(&s.officer, &qr1, "ALAT").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["result"], "accepted");
    assert_eq!(first["declaration"]["lrn"], "KZ26TMG0000000101");
    let (_, again) = s.check(&s.officer, &qr1, "ALAT").await;
    assert_eq!(again["result"], "accepted");
    let (_, copy) = s.check(&s.officer2, &qr1, "ASTARA").await;
    assert_eq!(copy["result"], "could_not_check");
    assert_eq!(copy["reason"], "already_presented");
    assert_eq!(copy["repeatedOf"]["checkpoint"], "ALAT");
    assert_eq!(copy["repeatedOf"]["checkId"], first["id"]);
    assert_eq!(copy["officer"], "officer-2");
    let metrics = s.metrics.render();
    assert!(
        metrics.contains("tamga_repeated_scans_total{checkpoint=\"ASTARA\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tamga_checks_total{offline=\"false\",result=\"accepted\"} 2"));

    // Racing scans of one paper at three posts: exactly one is green.
    let qr2 = s.qr("KZ26TMG0000000102");
    let results = futures_util::future::join_all(
        ["ALAT", "ASTARA", "KAPIKOY"]
            .iter()
            .map(|cp| s.check(&s.officer, &qr2, cp)),
    )
    .await;
    let green = results
        .iter()
        .filter(|(_, v)| v["result"] == "accepted")
        .count();
    assert_eq!(green, 1, "{results:?}");
    assert!(results.iter().all(|(st, v)| *st == StatusCode::CREATED
        && (v["result"] == "accepted" || v["reason"] == "already_presented")));

    // Red: a changed QR; amber: not found. Neither names the declaration.
    let mut tampered = qr1.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (_, red) = s.check(&s.officer, &tampered, "ALAT").await;
    assert_eq!(red["result"], "not_authentic");
    assert!(red["declaration"].is_null() && red["consignment"] == json!([]));
    let (_, none) = s
        .check(&s.officer, "rcpt-000000000000000000000000", "ALAT")
        .await;
    assert_eq!(
        (none["result"].as_str(), none["reason"].as_str()),
        (Some("could_not_check"), Some("not_found"))
    );

    // The signed check record.
    let id = first["id"].as_str().unwrap();
    let (status, headers, xml) = s.get(&format!("/v1/checks/{id}"), &s.analyst).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/xml");
    let trust = tamga_trust::TrustList::load_dir(&s.root.join("trust")).unwrap();
    let v = tamga_check::record::verify(
        &xml,
        &trust,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    assert!(v.valid, "{}", v.message);
    let rec = v.record.unwrap().check;
    assert_eq!(
        (rec.checkpoint.as_str(), rec.officer.as_str(), rec.result),
        ("ALAT", "officer-1", CheckResult::Accepted)
    );
    assert_eq!(rec.bundle_version, Some(s.pages.trust_loaded_at));
    let file = s.root.join("record.xml");
    std::fs::write(&file, &xml).unwrap();
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(s.root.join("trust/AZ/root-ca.pem"))
        .arg("--untrusted-pem")
        .arg(s.root.join("keys/AZ/issuing-ca.pem"))
        .args([
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
        ])
        .arg(&file)
        .output()
        .expect("xmlsec1 (make deps installs it)");
    assert!(
        out.status.success(),
        "xmlsec1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _, body) = s
        .get(
            "/v1/checks/chk-ffffffffffffffffffffffffffffffff",
            &s.officer,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem_type(&body), "urn:tamga:problem:no-such-check");

    // An offline log, uploaded twice: recorded once. The EXIT scan records the declaration
    // as having left: a later scan anywhere is amber, citing it.
    let qr3 = s.qr("KZ26TMG0000000103");
    let at = |secs: i64| {
        (time::OffsetDateTime::now_utc() - time::Duration::seconds(secs))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let entry = |payload: &str, result, code: &str, secs| Entry {
        v: 1,
        at: at(secs),
        checkpoint: "EXIT".into(),
        officer: "someone".into(),
        device: "handheld-1".into(),
        payload: payload.into(),
        result,
        code: code.into(),
        bundle_version: Some(1),
    };
    let log = [
        entry(&qr3, CheckResult::Accepted, "authentic", 60).to_line(),
        entry(&tampered, CheckResult::NotAuthentic, "bad_signature", 50).to_line(),
        "{\"v\":1,\"garbage\":true}".to_owned(),
    ]
    .join("\n");
    let up = s.upload(&s.officer2, &log).await;
    assert_eq!(
        (up["recorded"].as_u64(), up["alreadyRecorded"].as_u64()),
        (Some(2), Some(0)),
        "{up}"
    );
    assert_eq!(up["refused"][0]["line"], 3);
    let up = s.upload(&s.officer2, &log).await;
    assert_eq!(
        (up["recorded"].as_u64(), up["alreadyRecorded"].as_u64()),
        (Some(0), Some(2)),
        "{up}"
    );
    let (_, after_exit) = s.check(&s.officer, &qr3, "ALAT").await;
    assert_eq!(after_exit["reason"], "already_presented");
    assert_eq!(after_exit["repeatedOf"]["checkpoint"], "EXIT");
    assert!(s
        .metrics
        .render()
        .contains("tamga_checks_total{offline=\"true\",result=\"accepted\"} 1"));

    // The audit trail: intact, every check a `checked` event with the contract's fields.
    let report = s.store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let counts = s.store.counts().await.unwrap();
    // 3 (qr1) + 3 (qr2) + red + not found + 2 offline + after exit.
    assert_eq!(counts.get("checked"), Some(&11), "{counts:?}");
    let events = s.store.events(None, 1000).await.unwrap();
    let checked: Vec<_> = events
        .iter()
        .filter(|e| e.event.stage == "checked")
        .collect();
    assert!(checked.iter().all(|e| e.chain == "gw-test/checks"));
    for e in &checked {
        let d: Value = serde_json::from_str(e.event.detail.as_deref().unwrap()).unwrap();
        for key in [
            "checkpoint",
            "officer",
            "bundleVersion",
            "result",
            "offline",
        ] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        assert_eq!(d["result"], e.event.outcome);
        assert!(CheckResult::parse(&e.event.outcome).is_some());
    }
    let offline: Vec<Value> = checked
        .iter()
        .map(|e| serde_json::from_str(e.event.detail.as_deref().unwrap()).unwrap())
        .filter(|d: &Value| d["offline"] == true)
        .collect();
    assert_eq!(offline.len(), 2);
    assert!(offline.iter().all(|d| d["officer"] == "officer-2"));

    // The pages: the form records and redirects; the card says it; the dashboard shows it.
    let qr4 = s.qr("KZ26TMG0000000104");
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &qr4)
        .append_pair("checkpoint", "ALAT")
        .append_pair("device", "desk-1")
        .finish();
    let (status, headers, _) = s
        .call(
            Request::post("/check")
                .header(header::AUTHORIZATION, format!("Bearer {}", s.officer))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/check/chk-"), "{location}");
    let cookies: Vec<_> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("tamga_checkpoint=ALAT;")));
    let (status, _, html) = s.get(&location, &s.officer).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&html).contains("ACCEPTED"));
    // A scanner opening /check?q=… at another post (its cookie): recorded, amber.
    let (status, headers, _) = s
        .call(
            Request::get(format!(
                "/check?q={}",
                form_urlencoded::byte_serialize(qr4.as_bytes()).collect::<String>()
            ))
            .header(header::AUTHORIZATION, format!("Bearer {}", s.officer2))
            .header(
                header::COOKIE,
                "tamga_checkpoint=ASTARA; tamga_device=gate%202",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    let (_, _, html) = s.get(&location, &s.officer2).await;
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("ALREADY PRESENTED"), "{html}");
    assert!(html.contains("Already presented at ALAT at "));
    let id = location.trim_start_matches("/check/");
    let (_, _, xml) = s.get(&format!("/v1/checks/{id}"), &s.officer2).await;
    assert!(String::from_utf8_lossy(&xml).contains("<Device>gate 2</Device>"));
    let (status, _, html) = s.get("/dashboard", &s.analyst).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8_lossy(&html);
    for text in [
        "Checkpoint checks",
        "Repeated-scan alerts",
        "ASTARA",
        "EXIT",
    ] {
        assert!(html.contains(text), "{text}");
    }
    let (status, _, csv) = s
        .get("/dashboard/checks.csv?table=repeated", &s.analyst)
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8_lossy(&csv);
    assert!(csv.starts_with("time,check_id,checkpoint,officer,first_checkpoint,"));
    assert!(csv.contains(",ASTARA,officer-2,ALAT,"), "{csv}");
    // Offline verifier and service worker are served (no token: they hold no data).
    for path in ["/static/check.js", "/check-sw.js"] {
        let (status, headers, _) = s
            .call(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tamga_store::open_sqlite(&dir.path().join("c.sqlite")).unwrap();
    exercise(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_on_postgres() {
    let base = std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let base = base.trim_end_matches('/').to_owned();
    let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL reachable (CI starts it)");
    tokio::spawn(conn);
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let db = format!("tamga_test_{}", hex::encode(bytes));
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let store = tamga_store::connect_postgres(&StoreConfig {
        url: format!("{base}/{db}"),
        app_role: Some("tamga_app".into()),
        pool_size: 6,
        wait_timeout: Duration::from_secs(5),
        create_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
        migrate: true,
        require_boundary: false,
    })
    .await
    .unwrap();
    let result = tokio::spawn(exercise(Arc::new(store))).await;
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    result.unwrap();
}
