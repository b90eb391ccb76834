//! HTTPS and mutual TLS (`[gateway.tls]`), with rustls.
//!
//! A broker may authenticate with a client certificate issued by one of the CAs of
//! `client_ca`: the certificate's subject **CN is the broker's name** (the same name as
//! `tamga gateway token create --broker`), and a subject **C** (countryName), when present,
//! restricts the broker to submitting from that origin, like `--country`. rustls refuses
//! the handshake of a certificate from another CA, an expired one, or one without the
//! `clientAuth` usage when its EKU is present. With `require_client_cert = false` a
//! connection without a certificate is accepted and authenticated by its token; with a
//! certificate and a token, both must name the same broker.
//!
//! The identity is handed to the handlers through the task-local [`PEER`], set around
//! every request of the connection (requests cannot forge it: it is not a header).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tamga_pipeline::config::GatewayTlsConfig;
use tamga_store::TokenOwner;

use crate::GatewayError;

tokio::task_local! {
    /// The broker of the client certificate of the connection serving this request.
    pub static PEER: Option<TokenOwner>;
}

/// The broker a verified client certificate names (`None`: no usable subject CN).
pub fn identity_of(cert_der: &[u8]) -> Option<TokenOwner> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next()?.as_str().ok()?.trim();
    if cn.is_empty() || cn.len() > 128 || cn.chars().any(char::is_control) {
        return None;
    }
    let country = subject
        .iter_country()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() == 2);
    Some(TokenOwner {
        broker: cn.to_owned(),
        country,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::Io {
        what: path.display().to_string(),
        source,
    })
}

fn usage(path: &Path, what: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Usage(format!("[gateway.tls] {what} {}: {e}", path.display()))
}

/// PEM certificates of `path` (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage(path, "certificates", e))?;
    if certs.is_empty() {
        return Err(usage(path, "certificates", "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// The rustls server configuration of `cfg`.
pub fn server_config(cfg: &GatewayTlsConfig) -> Result<Arc<ServerConfig>, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&cfg.cert)?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&cfg.key)?).map_err(|e| usage(&cfg.key, "key", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Usage(format!("TLS: {e}")))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(ca)? {
                roots.add(c).map_err(|e| usage(ca, "client_ca", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if cfg.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| usage(ca, "client_ca", e))?)
        }
        None if cfg.require_client_cert => {
            return Err(GatewayError::Usage(
                "[gateway.tls] require_client_cert needs client_ca".into(),
            ))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| usage(&cfg.cert, "certificate and key", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TLS connections on `listener` and serves `app` on each until `stop` turns true.
/// A refused handshake (unknown CA, expired certificate, none when required) closes the
/// connection; it is logged at debug level and counted.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    metrics: Arc<crate::metrics::GatewayMetrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let (acceptor, app, metrics) = (acceptor.clone(), app.clone(), metrics.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake refused");
                        metrics.tls_handshake_failures.inc();
                        return;
                    }
                    Err(_) => {
                        metrics.tls_handshake_failures.inc();
                        return;
                    }
                };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| identity_of(c));
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    let peer = peer.clone();
                    PEER.scope(peer, async move {
                        use tower::ServiceExt as _;
                        app.oneshot(req.map(axum::body::Body::new)).await
                    })
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%remote, error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_broker() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kz-broker");
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "kz");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let who = identity_of(cert.der()).unwrap();
        assert_eq!(who.broker, "kz-broker");
        assert_eq!(who.country.as_deref(), Some("KZ"));
        assert!(identity_of(b"not a certificate").is_none());
    }
}
