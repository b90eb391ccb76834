//! Fuzzes the OCSP response parser and verifier (`tamga_trust::ocsp`):
//! `parse_response`, `verify_response` against a fixed certificate and
//! issuer (from `seeds/ocsp-certs/`, the pure crate's recorded fixtures),
//! and path validation with the input as the only OCSP response. Every
//! input is an error or a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_trust::ocsp::{parse_response, verify_response, OcspCheck};
use tamga_trust::{PathRequest, RevocationMode, TrustFile, TrustList};

const CERT: &[u8] = include_bytes!("../seeds/ocsp-certs/good.der");
const ISSUER: &[u8] = include_bytes!("../seeds/ocsp-certs/ca.der");
/// Inside the seed responses' thisUpdate..nextUpdate.
const AT_UNIX: u64 = 1_796_505_966 + 60;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    for nonce in [None, Some(&b"fuzz"[..])] {
        let _ = verify_response(&OcspCheck {
            response_der: data,
            cert_der: CERT,
            issuer_der: ISSUER,
            at_unix: AT_UNIX,
            expected_nonce: nonce,
        });
    }
    let trust = TrustList::from_files(vec![TrustFile {
        country: "KZ".parse().expect("a country code"),
        name: "ca.der".into(),
        bytes: ISSUER.to_vec(),
    }]);
    if let Ok(trust) = trust {
        for mode in [RevocationMode::PreferOcsp, RevocationMode::Require] {
            let _ = trust.validate_signer(&PathRequest {
                revocation: mode,
                ocsp_responses: &[data],
                ..PathRequest::new("KZ".parse().expect("a country code"), CERT, AT_UNIX)
            });
        }
    }
});
