//! OCSP in the pure engine, from responses recorded with `openssl ocsp`
//! (tests/fixtures/ocsp/gen.sh made them; NOW is when): response
//! verification (CertID, responder authorisation, freshness, nonce) and the
//! revocation modes of path validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use tamga_trust::ocsp::{
    build_request, ocsp_urls, parse_response, verify_response, OcspCheck, OcspError, OcspStatus,
};
use tamga_trust::{CountryCode, PathError, PathRequest, RevocationMode, TrustFile, TrustList};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ocsp")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pem(name: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
}

/// The recording time plus a minute: inside every response's window.
fn now() -> u64 {
    String::from_utf8(fixture("NOW"))
        .unwrap()
        .trim()
        .parse::<u64>()
        .unwrap()
        + 60
}

fn check<'a>(response: &'a [u8], cert: &'a [u8], issuer: &'a [u8], at: u64) -> OcspCheck<'a> {
    OcspCheck {
        response_der: response,
        cert_der: cert,
        issuer_der: issuer,
        at_unix: at,
        expected_nonce: None,
    }
}

fn kz() -> CountryCode {
    "KZ".parse().unwrap()
}

fn trust() -> TrustList {
    TrustList::from_files(vec![TrustFile {
        country: kz(),
        name: "ca.pem".into(),
        bytes: fixture("ca.pem"),
    }])
    .unwrap()
}

fn validate(
    leaf: &str,
    responses: &[&[u8]],
    mode: RevocationMode,
    at: u64,
) -> Result<tamga_trust::ValidatedSigner, PathError> {
    let signer = pem(leaf);
    trust().validate_signer(&PathRequest {
        revocation: mode,
        ocsp_responses: responses,
        ..PathRequest::new(kz(), &signer, at)
    })
}

#[test]
fn delegated_responder_good() {
    let (resp, cert, ca) = (
        fixture("good-delegated.der"),
        pem("good.pem"),
        pem("ca.pem"),
    );
    let ev = verify_response(&check(&resp, &cert, &ca, now())).unwrap();
    assert_eq!(ev.status, OcspStatus::Good);
    assert!(ev.delegated);
    assert!(ev.responder.contains("CN=responder"), "{}", ev.responder);
    assert_eq!(ev.certificate_serial, "1001");
    assert!(ev.next_update.is_some());
    assert!(ev.produced_at <= now());
}

#[test]
fn issuer_signed_sha256_certid_and_by_key_responder_id() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    let issuer = verify_response(&check(&fixture("good-issuer.der"), &cert, &ca, now())).unwrap();
    assert!(!issuer.delegated);
    assert!(issuer.responder.contains("CN=ca"));
    for name in ["good-sha256.der", "good-bykey.der"] {
        let ev = verify_response(&check(&fixture(name), &cert, &ca, now())).unwrap();
        assert_eq!(ev.status, OcspStatus::Good, "{name}");
    }
}

#[test]
fn revoked_and_unknown() {
    let ca = pem("ca.pem");
    let ev = verify_response(&check(
        &fixture("revoked.der"),
        &pem("revoked.pem"),
        &ca,
        now(),
    ))
    .unwrap();
    assert!(matches!(ev.status, OcspStatus::Revoked { .. }));
    let ev = verify_response(&check(
        &fixture("unknown.der"),
        &pem("unknown.pem"),
        &ca,
        now(),
    ))
    .unwrap();
    assert_eq!(ev.status, OcspStatus::Unknown);
}

#[test]
fn a_response_about_another_certificate_says_nothing() {
    let e = verify_response(&check(
        &fixture("revoked.der"),
        &pem("good.pem"),
        &pem("ca.pem"),
        now(),
    ))
    .unwrap_err();
    assert!(matches!(e, OcspError::NoMatchingResponse { .. }), "{e}");
}

#[test]
fn unauthorised_responders() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    // Issued by the CA but without id-kp-OCSPSigning.
    let e = verify_response(&check(&fixture("noeku.der"), &cert, &ca, now())).unwrap_err();
    assert!(
        matches!(&e, OcspError::Unauthorised(d) if d.contains("OCSPSigning")),
        "{e}"
    );
    // An OCSP signer of another CA.
    let e = verify_response(&check(&fixture("foreign.der"), &cert, &ca, now())).unwrap_err();
    assert!(
        matches!(&e, OcspError::Unauthorised(d) if d.contains("not issued")),
        "{e}"
    );
}

#[test]
fn freshness() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    let resp = fixture("good-delegated.der");
    let two_days = now() + 2 * 86_400;
    let e = verify_response(&check(&resp, &cert, &ca, two_days)).unwrap_err();
    assert!(matches!(e, OcspError::Stale { .. }), "{e}");
    // (Issuer-signed: a delegate would not be valid an hour before NOW either.)
    let issuer_signed = fixture("good-issuer.der");
    let e = verify_response(&check(&issuer_signed, &cert, &ca, now() - 3_600)).unwrap_err();
    assert!(matches!(e, OcspError::NotYetValid { .. }), "{e}");
    // Without nextUpdate: 24 hours.
    let resp = fixture("good-no-next-update.der");
    assert!(verify_response(&check(&resp, &cert, &ca, now() + 3_600)).is_ok());
    let e = verify_response(&check(&resp, &cert, &ca, now() + 25 * 3_600)).unwrap_err();
    assert!(matches!(e, OcspError::Stale { .. }), "{e}");
}

#[test]
fn nonce_is_checked_when_the_request_had_one() {
    let (cert, ca, resp) = (
        pem("good.pem"),
        pem("ca.pem"),
        fixture("good-delegated.der"),
    );
    let e = verify_response(&OcspCheck {
        expected_nonce: Some(b"0123456789abcdef"),
        ..check(&resp, &cert, &ca, now())
    })
    .unwrap_err();
    assert_eq!(e, OcspError::NonceMismatch);
}

#[test]
fn tampering_breaks_the_signature() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    let mut resp = fixture("good-delegated.der");
    // The last byte belongs to the responder certificate or the signature;
    // a byte of producedAt is a safer target: find "20" of the year.
    let at = resp
        .windows(4)
        .position(|w| w == b"2026" || w == b"2027" || w == b"2028")
        .expect("a GeneralizedTime");
    resp[at + 3] ^= 1;
    let e = verify_response(&check(&resp, &cert, &ca, now())).unwrap_err();
    assert!(
        matches!(e, OcspError::BadSignature(_) | OcspError::Malformed(_)),
        "{e}"
    );
}

#[test]
fn hostile_bytes_are_errors() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    let resp = fixture("good-delegated.der");
    for cut in [0, 1, 10, resp.len() / 2, resp.len() - 1] {
        assert!(verify_response(&check(&resp[..cut], &cert, &ca, now())).is_err());
        assert!(parse_response(&resp[..cut]).is_err());
    }
}

#[test]
fn requests_and_aia() {
    let (cert, ca) = (pem("good.pem"), pem("ca.pem"));
    assert_eq!(
        ocsp_urls(&cert),
        vec!["http://127.0.0.1:1/ocsp".to_string()]
    );
    assert!(ocsp_urls(&ca).is_empty());
    let req = build_request(&cert, &ca, Some(b"nonce-123")).unwrap();
    assert_eq!(req[0], 0x30);
    assert!(req.windows(9).any(|w| w == b"nonce-123"));
}

// ---- revocation modes of path validation (no CRL in this trust list) ----

#[test]
fn prefer_ocsp_settles_by_ocsp() {
    let resp = fixture("good-delegated.der");
    let ok = validate("good.pem", &[&resp], RevocationMode::PreferOcsp, now()).unwrap();
    assert_eq!(ok.ocsp.len(), 1);
    assert_eq!(ok.ocsp[0].status, OcspStatus::Good);
    assert!(ok.crl_checked.is_empty(), "{:?}", ok.crl_checked);
}

#[test]
fn require_accepts_ocsp_where_no_crl_covers() {
    let resp = fixture("good-delegated.der");
    let ok = validate("good.pem", &[&resp], RevocationMode::Require, now()).unwrap();
    assert_eq!(ok.ocsp.len(), 1);
    assert_eq!(
        validate("good.pem", &[], RevocationMode::Require, now()).unwrap_err(),
        PathError::RevocationUnknown
    );
}

#[test]
fn crl_only_ignores_ocsp() {
    let resp = fixture("good-delegated.der");
    assert_eq!(
        validate("good.pem", &[&resp], RevocationMode::CrlOnly, now()).unwrap_err(),
        PathError::RevocationUnknown
    );
}

#[test]
fn modes_refuse_with_the_ocsp_reason() {
    let at = now();
    for mode in [RevocationMode::Require, RevocationMode::PreferOcsp] {
        let revoked = fixture("revoked.der");
        assert_eq!(
            validate("revoked.pem", &[&revoked], mode, at).unwrap_err(),
            PathError::Revoked {
                serial_hex: "1002".into()
            },
            "{mode:?}"
        );
        let unknown = fixture("unknown.der");
        assert!(matches!(
            validate("unknown.pem", &[&unknown], mode, at).unwrap_err(),
            PathError::CertificateStatusUnknown { .. }
        ));
        let noeku = fixture("noeku.der");
        assert!(matches!(
            validate("good.pem", &[&noeku], mode, at).unwrap_err(),
            PathError::OcspUnauthorised { .. }
        ));
        let good = fixture("good-delegated.der");
        assert!(matches!(
            validate("good.pem", &[&good], mode, at + 2 * 86_400).unwrap_err(),
            PathError::OcspStale { .. }
        ));
        // Responses about other certificates and garbage prove nothing.
        let garbage = b"not an OCSP response".to_vec();
        let e = validate("good.pem", &[&revoked, &garbage], mode, at).unwrap_err();
        assert!(
            matches!(
                e,
                PathError::OcspUnavailable { .. } | PathError::RevocationUnknown
            ),
            "{mode:?}: {e:?}"
        );
    }
    // Under prefer-ocsp, no response at all names OCSP as what is missing.
    assert!(matches!(
        validate("good.pem", &[], RevocationMode::PreferOcsp, now()).unwrap_err(),
        PathError::OcspUnavailable { .. }
    ));
}

#[test]
fn a_usable_answer_wins_over_an_unusable_one() {
    let (noeku, good) = (fixture("noeku.der"), fixture("good-delegated.der"));
    let ok = validate(
        "good.pem",
        &[&noeku, &good],
        RevocationMode::PreferOcsp,
        now(),
    )
    .unwrap();
    assert_eq!(ok.ocsp[0].status, OcspStatus::Good);
}

#[test]
fn ocsp_targets_name_the_aia_url() {
    let signer = pem("good.pem");
    let targets = trust().ocsp_targets(&PathRequest::new(kz(), &signer, now()));
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].urls, vec!["http://127.0.0.1:1/ocsp".to_string()]);
    assert_eq!(targets[0].issuer_der, pem("ca.pem"));
}

#[test]
fn modes_parse_from_policy_text() {
    #[derive(serde::Deserialize)]
    struct P {
        revocation: RevocationMode,
    }
    for (text, mode) in [
        ("require", RevocationMode::Require),
        ("prefer-ocsp", RevocationMode::PreferOcsp),
        ("crl-only", RevocationMode::CrlOnly),
        ("ifAvailable", RevocationMode::IfAvailable),
        ("off", RevocationMode::Off),
    ] {
        let p: P = serde_json::from_str(&format!("{{\"revocation\":\"{text}\"}}")).unwrap();
        assert_eq!(p.revocation, mode, "{text}");
    }
}
