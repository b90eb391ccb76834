#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Mutual TLS: the gateway served over rustls ([`tamga_gateway::tls::serve_tls`]) on a
//! socket, with certificates made here by rcgen, and a real TLS client (tokio-rustls and
//! hyper). A client certificate from the configured CA authenticates its subject CN as the
//! broker (202/200 without a token; its C restricts the origin); one from an unknown CA,
//! an expired one, and none when required are refused at the handshake; tokens still work
//! alongside when the certificate is optional, and must name the same broker as a
//! certificate sent with them.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tamga_bus::{Bus, MemoryBus};
use tamga_gateway::metrics::GatewayMetrics;
use tamga_gateway::{router, Gateway, Options, Settings};
use tamga_pipeline::config::GatewayTlsConfig;

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A client certificate for `cn` (and country `c`), valid from `from` to `to` (days from now).
fn client(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    c: Option<&str>,
    days: (i64, i64),
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(c) = c {
        p.distinguished_name.push(DnType::CountryName, c);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(days.0);
    p.not_after = now + time::Duration::days(days.1);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    stranger: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("Tamga test broker CA");
        let stranger = new_ca("Unknown CA");
        // The gateway's own certificate, for 127.0.0.1, from the same CA (any CA would do).
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "gateway");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("client-ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, stranger }
    }

    fn config(&self, require: bool) -> GatewayTlsConfig {
        GatewayTlsConfig {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server.key"),
            client_ca: Some(self.dir.path().join("client-ca.pem")),
            require_client_cert: require,
        }
    }
}

struct Served {
    addr: String,
    gw: Arc<Gateway>,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn serve(pki: &Pki, require: bool) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tamga_store::open_sqlite(&dir.path().join("gw.sqlite")).unwrap());
    let bus = Arc::new(MemoryBus::new());
    // tamga.inbound and the stage queues: publishes are confirmed (nothing consumes them).
    bus.declare(&tamga_bus::tamga_topology(5)).await.unwrap();
    let gw = Gateway::with_options(
        store,
        bus,
        Settings {
            max_bytes: 64 * 1024,
            retry_after_secs: 1,
            worker: "tls-test".into(),
            rate_per_second: 0,
            rate_burst: 1,
            long_poll_max_secs: 1,
        },
        Options {
            metrics: Some(Arc::new(GatewayMetrics::new())),
            ..Options::default()
        },
    );
    let config = tamga_gateway::tls::server_config(&pki.config(require)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(tamga_gateway::tls::serve_tls(
        listener,
        config,
        router(gw.clone()),
        gw.metrics.clone(),
        stopped,
    ));
    Served {
        addr,
        gw,
        _stop: stop,
        _dir: dir,
    }
}

/// One HTTPS request; `Err` when no HTTP answer came (the handshake was refused).
async fn request(
    s: &Served,
    pki: &Pki,
    cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Value), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((c, k)) => builder.with_client_auth_cert(vec![c], k).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &s.addr);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(axum::body::Bytes::copy_from_slice(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

const XML: &[u8] = b"<Declaration>signed bytes</Declaration>";

fn submit_headers<'a>(origin: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("content-type", "application/xml"),
        ("x-tamga-origin", origin),
        ("x-tamga-destination", "AZ"),
        ("idempotency-key", key),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_authenticate_brokers() {
    let pki = Pki::new();
    let s = serve(&pki, false).await;
    let good = || client(&pki.ca, "kz-broker", Some("KZ"), (-1, 30));

    // A good certificate, no token: the CN is the broker.
    let (status, v) = request(
        &s,
        &pki,
        Some(good()),
        "POST",
        "/v1/declarations",
        &submit_headers("KZ", "tls-1"),
        XML,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (status, v) = request(
        &s,
        &pki,
        Some(good()),
        "GET",
        &format!("/v1/declarations/{id}"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["broker"], "kz-broker");
    // Its C restricts the origin, as `--country` does for a token.
    let (status, v) = request(
        &s,
        &pki,
        Some(good()),
        "POST",
        "/v1/declarations",
        &submit_headers("TR", "tls-2"),
        XML,
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{v}");
    // Another broker's certificate does not see it.
    let other = client(&pki.ca, "az-broker", None, (-1, 30));
    let (status, _) = request(
        &s,
        &pki,
        Some(other),
        "GET",
        &format!("/v1/declarations/{id}"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 404);

    // Tokens still work alongside (the certificate is optional here) …
    let token = tamga_gateway::create_token(s.gw.store.as_ref(), "kz-broker", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {token}");
    let (status, _) = request(
        &s,
        &pki,
        None,
        "GET",
        &format!("/v1/declarations/{id}"),
        &[("authorization", &bearer)],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let (status, _) = request(&s, &pki, None, "GET", "/v1/declarations", &[], b"")
        .await
        .unwrap();
    assert_eq!(status, 401, "neither a certificate nor a token");
    // … and with a certificate, must name the same broker.
    let (status, _) = request(
        &s,
        &pki,
        Some(good()),
        "GET",
        "/v1/declarations",
        &[("authorization", &bearer)],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let az_token = tamga_gateway::create_token(s.gw.store.as_ref(), "az-broker", None)
        .await
        .unwrap();
    let (status, v) = request(
        &s,
        &pki,
        Some(good()),
        "GET",
        "/v1/declarations",
        &[("authorization", &format!("Bearer {az_token}"))],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "{v}");

    // Refused at the handshake: a certificate from an unknown CA, an expired one.
    let stranger = client(&pki.stranger, "kz-broker", Some("KZ"), (-1, 30));
    let r = request(
        &s,
        &pki,
        Some(stranger),
        "GET",
        "/v1/declarations",
        &[],
        b"",
    )
    .await;
    assert!(r.is_err(), "unknown CA: {r:?}");
    let expired = client(&pki.ca, "kz-broker", Some("KZ"), (-30, -1));
    let r = request(&s, &pki, Some(expired), "GET", "/v1/declarations", &[], b"").await;
    assert!(r.is_err(), "expired: {r:?}");

    // The server counts a refused handshake after sending its alert: wait for it.
    let count = |name: &str| -> f64 {
        s.gw.metrics
            .render()
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count("tamga_gateway_tls_handshake_failures_total") < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            s.gw.metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(count("tamga_gateway_authenticated_total{via=\"certificate\"}") >= 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate() {
    let pki = Pki::new();
    let s = serve(&pki, true).await;
    let token = tamga_gateway::create_token(s.gw.store.as_ref(), "kz-broker", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {token}");
    // No certificate: refused, a token notwithstanding.
    let r = request(
        &s,
        &pki,
        None,
        "GET",
        "/v1/declarations",
        &[("authorization", &bearer)],
        b"",
    )
    .await;
    assert!(r.is_err(), "no certificate: {r:?}");
    let good = client(&pki.ca, "kz-broker", None, (-1, 30));
    let (status, v) = request(
        &s,
        &pki,
        Some(good),
        "POST",
        "/v1/declarations",
        &submit_headers("TR", "req-1"),
        XML,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    let expired = client(&pki.ca, "kz-broker", None, (-30, -1));
    let r = request(&s, &pki, Some(expired), "GET", "/v1/declarations", &[], b"").await;
    assert!(r.is_err(), "expired: {r:?}");
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let pki = Pki::new();
    let mut c = pki.config(true);
    c.client_ca = None;
    assert!(
        tamga_gateway::tls::server_config(&c).is_err(),
        "required without a CA"
    );
    let mut c = pki.config(false);
    c.key = pki.dir.path().join("missing.key");
    assert!(tamga_gateway::tls::server_config(&c).is_err());
    let mut c = pki.config(false);
    c.client_ca = Some(pki.dir.path().join("server.key"));
    assert!(
        tamga_gateway::tls::server_config(&c).is_err(),
        "no certificate in client_ca"
    );
}

/// The example site configuration parses, and so does its `[gateway.tls]` once uncommented.
#[test]
fn the_example_configuration_has_gateway_tls() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/config/site.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let cfg = tamga_pipeline::Config::from_sources(&text, &[], &|_| None).unwrap();
    assert!(cfg.gateway.tls.is_none());
    assert_eq!(cfg.gateway.callback_retry_max_ms, 300_000);
    let uncommented: String = text
        .lines()
        .map(|l| {
            if l.starts_with("# [gateway.tls]")
                || l.starts_with("# cert")
                || l.starts_with("# key")
                || l.starts_with("# client_ca")
                || l.starts_with("# require_client_cert")
            {
                &l[2..]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = tamga_pipeline::Config::from_sources(&uncommented, &[], &|_| None).unwrap();
    let tls = cfg.gateway.tls.unwrap();
    assert_eq!(tls.cert, std::path::PathBuf::from("/etc/tamga/gateway.pem"));
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(std::path::Path::new("/etc/tamga/brokers-ca.pem"))
    );
    assert!(!tls.require_client_cert);
}
