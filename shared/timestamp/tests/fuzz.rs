//! Random mutations of valid tokens: never a panic, and never a success that
//! reports content other than what the TSA signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use tamga_timestamp::{parse_timestamp, verify_timestamp, TimestampRequest, VerifiedTimestamp};

const REAL: &[u8] = include_bytes!("fixtures/xades-lta-valid.signature-timestamp.der");

fn token() -> &'static (Vec<u8>, Vec<u8>, VerifiedTimestamp) {
    static T: std::sync::OnceLock<(Vec<u8>, Vec<u8>, VerifiedTimestamp)> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        let p = default_pki();
        let t = Token {
            ess: Ess::V2WithIssuerSerial,
            tsa_name: Some(cert_info(&p.tsa_der).subject_raw),
            ..Default::default()
        };
        let tok = t.build(p);
        let v = run(&tok, &t.data).unwrap();
        (tok, t.data.clone(), v)
    })
}

fn run(tok: &[u8], data: &[u8]) -> Result<VerifiedTimestamp, tamga_timestamp::TimestampError> {
    let p = default_pki();
    let anchors: [&[u8]; 1] = [&p.root_der];
    verify_timestamp(&TimestampRequest {
        token_der: tok,
        imprint_data: data,
        trust_anchors_der: &anchors,
        extra_certs_der: &[],
        at_unix: AT,
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Xor(i, x)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = base.to_vec();
    for m in muts {
        if v.is_empty() {
            break;
        }
        let len = v.len();
        match m {
            Mutation::Xor(i, x) => v[i % len] ^= x,
            Mutation::Set(i, b) => v[i % len] = *b,
            Mutation::Insert(i, bytes) => {
                let at = i % (len + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(len);
                v.drain(at..end);
            }
            Mutation::Truncate(i) => v.truncate(i % len),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn mutated_builder_token(muts in proptest::collection::vec(mutation(), 1..4)) {
        let (tok, data, good) = token();
        let m = apply(tok, &muts);
        let _ = parse_timestamp(&m);
        if let Ok(v) = run(&m, data) {
            prop_assert_eq!(&v, good);
        }
    }

    #[test]
    fn mutated_real_token(muts in proptest::collection::vec(mutation(), 1..4)) {
        let m = apply(REAL, &muts);
        if let Ok(info) = parse_timestamp(&m) {
            // Whatever parses still has a well-formed time.
            prop_assert!(info.gen_time.ends_with('Z'));
        }
    }

    #[test]
    fn mutated_tst_info_properly_signed(muts in proptest::collection::vec(mutation(), 1..4)) {
        // The TSTInfo parser behind a valid signature.
        let p = default_pki();
        let base = Token::default();
        let tst = apply(&base.tst_info(base.serial), &muts);
        let t = Token { tst_override: Some(tst), ..Default::default() };
        let tok = t.build(p);
        let _ = parse_timestamp(&tok);
        let _ = run(&tok, &t.data);
    }

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_timestamp(&bytes);
        prop_assert!(run(&bytes, b"").is_err());
    }

    #[test]
    fn random_der_like(len in 0usize..300, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        // A SEQUENCE header in front of random bytes reaches deeper parsers.
        let mut bytes = vec![0x30, 0x82, (len >> 8) as u8, len as u8, 0x06, 0x09];
        bytes.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
        bytes.extend(body);
        let _ = parse_timestamp(&bytes);
        prop_assert!(run(&bytes, b"").is_err());
    }
}
