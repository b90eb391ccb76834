//! Fuzzes the receipt reader: `tamga_receipt::parse_receipt`, `verify_receipt` against the
//! demo PKI of the seed receipts (`seeds/receipt-trust/AZ`, public certificates and CRLs
//! only) at the time they were issued, and the receipt's QR payload (`tamga_qr::open`,
//! `tamga_qr::verify`). Every input is an error or a value, never a panic; a receipt that
//! verifies is one that parses.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tamga_receipt::{parse_receipt, verify_receipt};
use tamga_trust::{CountryCode, TrustFile, TrustList};

struct Fixture {
    trust: TrustList,
    at_unix: i64,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let az: CountryCode = "AZ".parse().expect("AZ is a country code");
        let file = |name: &str, bytes: &[u8]| TrustFile {
            country: az,
            name: name.to_string(),
            bytes: bytes.to_vec(),
        };
        let trust = TrustList::from_files(vec![
            file(
                "root-ca.pem",
                include_bytes!("../seeds/receipt-trust/AZ/root-ca.pem"),
            ),
            file(
                "root-ca.crl",
                include_bytes!("../seeds/receipt-trust/AZ/root-ca.crl"),
            ),
            file(
                "issuing-ca.crl",
                include_bytes!("../seeds/receipt-trust/AZ/issuing-ca.crl"),
            ),
        ])
        .expect("the seed trust list loads");
        let at_unix = include_str!("../seeds/receipt-trust/AT_UNIX")
            .trim()
            .parse()
            .expect("seeds/receipt-trust/AT_UNIX is a Unix time");
        Fixture { trust, at_unix }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let parsed = parse_receipt(data);
    for document in [None, Some(data)] {
        let v = verify_receipt(data, &f.trust, f.at_unix, document);
        if v.valid {
            assert!(parsed.is_ok(), "a valid receipt parses");
        }
        let _ = serde_json::to_string(&v).expect("the verification serialises");
    }
    if let Ok(r) = &parsed {
        let _ = r.to_xml();
        if let Some(qr) = &r.qr {
            let _ = tamga_qr::open(qr);
            let _ = tamga_qr::verify(qr, &f.trust, &[], f.at_unix);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tamga_qr::open(text);
    }
});
