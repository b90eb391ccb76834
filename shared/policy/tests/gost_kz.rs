#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real Kazakh NCA XAdES vector (GOST R 34.10-2015 512, Streebog-512,
//! `pkigovkz` URIs): `tests/fixtures/gost-kz/` (source and licence there).

use tamga_dsig::{
    check_references, check_signature_value, find_signatures, parse_signature, parse_xades, Budget,
    NoExternal, PublicKey,
};
use tamga_policy::{
    verify_document_with, Indication, Policy, Report, Strategy, SubIndication, VerifyRequest,
};
use tamga_trust::{CountryCode, TrustFile, TrustList};
use tamga_xml::{Document, ParseLimits};

const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/gost-kz/xades-test-signed-b.xml");
/// The XAdES SigningTime of the vector, 2026-09-02T10:04:52Z.
const SIGNING_TIME: i64 = 1_788_343_492;

fn kz() -> CountryCode {
    "KZ".parse().unwrap()
}

/// KZ is a known origin with no anchor: the issuer is not in the vector.
fn kz_without_anchor() -> TrustList {
    TrustList::from_files(vec![TrustFile {
        country: kz(),
        name: "README.txt".into(),
        bytes: Vec::new(),
    }])
    .unwrap()
}

fn verify(bytes: &[u8], policy: &Policy, origin: CountryCode, strategy: Strategy) -> Report {
    let trust = kz_without_anchor();
    verify_document_with(
        &VerifyRequest {
            bytes,
            trust: &trust,
            origin,
            at_unix: SIGNING_TIME,
            policy,
            resolver: &NoExternal,
            hmac_secret: None,
        },
        strategy,
    )
    .0
}

#[test]
fn signing_time_constant_is_the_vectors() {
    let t = time::OffsetDateTime::from_unix_timestamp(SIGNING_TIME).unwrap();
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(text, "2026-09-02T10:04:52Z");
    assert!(std::str::from_utf8(FIXTURE)
        .unwrap()
        .contains("2026-09-02T10:04:52Z"));
}

/// Document digest, SignedProperties digest, SigningCertificateV2 digest
/// and the signature value, each checked on its own.
#[test]
fn every_crypto_piece_verifies() {
    let doc = Document::parse(FIXTURE, &ParseLimits::default()).unwrap();
    let sigs = find_signatures(&doc);
    assert_eq!(sigs.len(), 1);
    let sig = parse_signature(sigs[0], &Budget::default()).unwrap();
    assert_eq!(sig.signature_method.name(), "gost2012-512");
    let outcomes = check_references(&doc, &sig, &NoExternal, &ParseLimits::default());
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert!(o.result.is_ok(), "reference {:?}: {:?}", o.uri, o.result);
    }
    let xades = parse_xades(&sig).unwrap().unwrap();
    let cert = &sig.key_info.as_ref().unwrap().certificates[0];
    assert_eq!(xades.signing_certificate_version, Some(2));
    assert_eq!(xades.signing_certificates[0].digest.name(), "streebog-512");
    assert!(xades.signing_certificates[0].matches(cert));
    let key = PublicKey::from_certificate_der(cert).unwrap();
    assert_eq!(
        key.describe(),
        "GOST R 34.10-2012 512 (id-tc26-gost-3410-12-512-paramSetA)"
    );
    check_signature_value(&doc, &sig, &key).unwrap();
}

/// Customs profile, origin KZ, no KZ anchor: intact, but no chain.
#[test]
fn customs_profile_without_the_issuer_has_no_chain() {
    let policy = Policy::customs();
    let tree = verify(FIXTURE, &policy, kz(), Strategy::Tree);
    let streamed = verify(FIXTURE, &policy, kz(), Strategy::Streaming);
    assert_eq!(tree, streamed);
    assert_eq!(
        tree.indication,
        Indication::Indeterminate,
        "{}",
        tree.message
    );
    assert_eq!(
        tree.sub_indication,
        Some(SubIndication::NoCertificateChainFound),
        "{}",
        tree.message
    );
    assert!(tree.signature_intact);
    assert_eq!(tree.algorithms.signature.as_deref(), Some("gost2012-512"));
    assert_eq!(tree.signature_format, Some("XAdES-B-B"));
    assert!(tree.references.iter().all(|r| r.intact == Some(true)));
}

/// The same signature from a country whose policy does not allow GOST.
#[test]
fn gost_from_a_country_without_gost_is_refused() {
    let report = verify(
        FIXTURE,
        &Policy::customs(),
        "AZ".parse().unwrap(),
        Strategy::Tree,
    );
    assert_eq!(report.reason, Some("algorithm_not_allowed_for_country"));
    assert_eq!(
        report.sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
    assert!(!report.signature_intact);
}

/// The generic profile: intact; the trust list takes CA anchors only, so
/// the signer certificate cannot be the anchor (no leaf pinning): offered as
/// one, it is a fault of its country (KZ degraded), not an anchor.
#[test]
fn generic_profile_intact_and_the_leaf_is_not_an_anchor() {
    let report = verify(FIXTURE, &Policy::generic(), kz(), Strategy::Tree);
    assert!(report.signature_intact, "{}", report.message);
    assert_eq!(
        report.sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    let doc = Document::parse(FIXTURE, &ParseLimits::default()).unwrap();
    let sig = parse_signature(find_signatures(&doc)[0], &Budget::default()).unwrap();
    let cert = sig.key_info.unwrap().certificates[0].clone();
    let as_anchor = TrustList::from_files(vec![TrustFile {
        country: kz(),
        name: "signer.der".into(),
        bytes: cert,
    }])
    .unwrap();
    assert_eq!(as_anchor.degraded_countries(), vec![kz()]);
    assert!(
        as_anchor
            .faults()
            .iter()
            .any(|f| f.source.contains("signer.der")),
        "{:?}",
        as_anchor.faults()
    );
}

/// Byte ranges of the text or attribute value between `open` and `close`.
fn spans(text: &str, open: &str, close: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(open) {
        let start = from + i + open.len();
        let end = start + text[start..].find(close).unwrap();
        out.push((start, end));
        from = end;
    }
    out
}

/// An ASCII letter or digit replaced by another of its kind (so the XML
/// and the base64 stay well-formed).
fn mutate(b: u8) -> Option<u8> {
    match b {
        b'a'..=b'y' | b'A'..=b'Y' | b'0'..=b'8' => Some(b + 1),
        b'z' => Some(b'a'),
        b'Z' => Some(b'A'),
        b'9' => Some(b'0'),
        _ => None,
    }
}

/// Every single-letter/digit change in the signed content, SignedInfo and
/// SignatureValue fails with the sub-indication of what it broke.
#[test]
fn single_byte_mutations_fail_with_the_right_sub_indication() {
    let text = std::str::from_utf8(FIXTURE).unwrap();
    let policy = Policy::customs();
    let mut regions: Vec<(&str, (usize, usize), SubIndication)> = Vec::new();
    // Signed content: element text and the document's Id value.
    for tag in ["name", "createdDate", "body"] {
        for s in spans(text, &format!("<{tag}>"), &format!("</{tag}>")) {
            regions.push((tag, s, SubIndication::HashFailure));
        }
    }
    regions.push((
        "document Id",
        spans(text, "<document Id=\"", "\"")[0],
        SubIndication::HashFailure,
    ));
    // SignedInfo: the DigestValues (the last two base64 characters may
    // carry padding bits, whose change is a format error instead).
    let signed_info_end = text.find("</ds:SignedInfo>").unwrap();
    for (start, end) in spans(text, "<ds:DigestValue>", "</ds:DigestValue>")
        .into_iter()
        .filter(|(_, end)| *end < signed_info_end)
    {
        regions.push(("DigestValue", (start, end - 4), SubIndication::HashFailure));
    }
    // SignedInfo: the first reference's Id (signed, nothing else uses it).
    regions.push((
        "Reference Id",
        spans(text, "<ds:Reference Id=\"", "\"")[0],
        SubIndication::SigCryptoFailure,
    ));
    for (start, end) in spans(text, "<ds:SignatureValue>", "</ds:SignatureValue>") {
        regions.push((
            "SignatureValue",
            (start, end - 3),
            SubIndication::SigCryptoFailure,
        ));
    }
    let mut tried = 0;
    for (what, (start, end), want) in regions {
        for i in start..end {
            let Some(replacement) = mutate(FIXTURE[i]) else {
                continue;
            };
            let mut bytes = FIXTURE.to_vec();
            bytes[i] = replacement;
            let report = verify(&bytes, &policy, kz(), Strategy::Tree);
            assert_eq!(
                report.sub_indication,
                Some(want),
                "{what}: byte {i} {:?} -> {:?}: {}",
                FIXTURE[i] as char,
                replacement as char,
                report.message
            );
            assert_ne!(report.indication, Indication::TotalPassed);
            assert!(!report.signature_intact);
            tried += 1;
        }
    }
    assert!(tried > 400, "only {tried} mutations");
}
