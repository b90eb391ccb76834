//! Fuzzes the RFC 3161 time-stamp token (CMS SignedData) parser and verifier of
//! `tamga_timestamp`: `parse_timestamp`, and `verify_timestamp` with the DSS sample's TSA
//! root as the trust anchor, at the sample's genTime. Seeds: the sample's two tokens
//! (`seeds/timestamp/`, from `shared/timestamp/tests/fixtures`, EU DSS, LGPL-2.1). Every
//! input is an error or a value, never a panic, and a token that verifies also parses, to
//! the same genTime.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_timestamp::{parse_timestamp, verify_timestamp, TimestampRequest};

/// `root-ca` of the DSS sample (issuer of its `good-tsa`), DER.
const ROOT_PEM: &str = include_str!("../seeds/timestamp-anchors/root-ca.pem");
/// 2021-08-12T13:27:00Z, the signature time-stamp's genTime.
const AT_UNIX: u64 = 1_628_774_820;

fn der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("the anchor is PEM")
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_timestamp(data);
    let root = der(ROOT_PEM);
    let anchors: [&[u8]; 1] = [&root];
    for imprint in [&b""[..], data] {
        let verified = verify_timestamp(&TimestampRequest {
            token_der: data,
            imprint_data: imprint,
            trust_anchors_der: &anchors,
            extra_certs_der: &[],
            at_unix: AT_UNIX,
        });
        if let Ok(v) = verified {
            let p = parsed.as_ref().expect("a verified token parses");
            assert_eq!(p.gen_time_unix, v.gen_time_unix);
        }
    }
});
