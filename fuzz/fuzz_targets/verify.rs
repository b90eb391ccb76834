//! Fuzzes the verify entry point, `tamga_policy::verify_document`, exactly as
//! `tamga verify` calls it: customs profile, full path validation with CRLs.
//!
//! The trust list is the seed corpus's own demo PKI (`seeds/trust/KZ`,
//! public certificates and CRLs only) and the validation time is when the
//! seeds were signed, so mutations of the signed seeds reach every stage:
//! parsing, signature shape, digests, the signature value and the
//! certificate path. Whatever the input, the call must return a report and
//! never panic, and the report must serialise.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tamga_dsig::NoExternal;
use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_trust::{CountryCode, TrustFile, TrustList};

struct Fixture {
    trust: TrustList,
    policy: Policy,
    origin: CountryCode,
    at_unix: i64,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let origin: CountryCode = "KZ".parse().expect("KZ is a country code");
        let file = |name: &str, bytes: &[u8]| TrustFile {
            country: origin,
            name: name.to_string(),
            bytes: bytes.to_vec(),
        };
        let trust = TrustList::from_files(vec![
            file(
                "root-ca.pem",
                include_bytes!("../seeds/trust/KZ/root-ca.pem"),
            ),
            file(
                "root-ca.crl",
                include_bytes!("../seeds/trust/KZ/root-ca.crl"),
            ),
            file(
                "issuing-ca.crl",
                include_bytes!("../seeds/trust/KZ/issuing-ca.crl"),
            ),
        ])
        .expect("the seed trust list loads");
        let at_unix = include_str!("../seeds/trust/AT_UNIX")
            .trim()
            .parse()
            .expect("seeds/trust/AT_UNIX is a Unix time");
        Fixture {
            trust,
            policy: Policy::customs(),
            origin,
            at_unix,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let report = verify_document(&VerifyRequest {
        bytes: data,
        trust: &f.trust,
        origin: f.origin,
        at_unix: f.at_unix,
        policy: &f.policy,
        resolver: &NoExternal,
        hmac_secret: None,
    });
    if serde_json::to_vec(&report).is_err() {
        panic!("a report does not serialise");
    }
});
