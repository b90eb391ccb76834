#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! XAdES-B-T end to end: a KZ declaration signed with XAdES by the demo PKI's
//! ECDSA broker, given an `xades:SignatureTimeStamp` made by the test TSA
//! (`common`), verified by `tamga_policy::verify_document` with the customs
//! policy and origin KZ.
//!
//! What is proved:
//! * a valid token over the c14n of `ds:SignatureValue` (exclusive when the
//!   time-stamp names it, inclusive C14N 1.0 by default) turns the format into
//!   `XAdES-B-T` and is listed as verified;
//! * every failing time-stamp (other imprint, token of another signature, TSA
//!   anchored only in another country, corrupted DER, unknown c14n, a wrong
//!   c14n) refuses the whole signature with `timestamp_invalid`
//!   (SIG_CONSTRAINTS_FAILURE) although the signature itself is intact;
//! * an `EncapsulatedTimeStamp` that is not base64 is `malformed_signature`.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use common::{default_pki, Token};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, DemoPkiOptions};
use tamga_policy::{
    verify_document, Indication, Policy, Report, SubIndication, TimestampReport, VerifyRequest,
};
use tamga_trust::{CountryCode, TrustList};
use tamga_xml::{C14nMethod, Canonicalization, Document, ParseLimits, Selection};

const ORIGIN: &str = "KZ";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const INC_C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const QP_END: &str = "</xades:QualifyingProperties>";

struct Fixture {
    /// Validation time, signing time and genTime of the valid tokens.
    now: i64,
    /// The broker's key and certificates [broker, issuing CA].
    key: SigningKey,
    certificates: Vec<Vec<u8>>,
    unsigned: String,
    /// XAdES-B-B declaration, no time-stamp yet.
    signed: String,
    /// The test TSA root is an anchor of KZ (the origin).
    trust_tsa_in_origin: TrustList,
    /// The test TSA root is an anchor of AZ only.
    trust_tsa_elsewhere: TrustList,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn load_trust_with_tsa_root_in(base: &Path, country: &str) -> TrustList {
    let trust_dir = base.join("trust");
    let tsa_root = pem("CERTIFICATE", &default_pki().root_der);
    for cc in [ORIGIN, "AZ"] {
        let file = trust_dir.join(cc).join("tsa-root.pem");
        if cc == country {
            std::fs::write(&file, &tsa_root).unwrap();
        } else if file.exists() {
            std::fs::remove_file(&file).unwrap();
        }
    }
    TrustList::load_dir(&trust_dir).unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = tamga_pki::generate(&DemoPkiOptions {
            countries: vec![ORIGIN.into(), "AZ".into()],
            now_unix: now,
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki.write_to(dir.path()).unwrap();
        let trust_tsa_in_origin = load_trust_with_tsa_root_in(dir.path(), ORIGIN);
        let trust_tsa_elsewhere = load_trust_with_tsa_root_in(dir.path(), "AZ");

        let kz = pki.country(ORIGIN).unwrap();
        let broker = kz.broker(BrokerKind::Ecdsa).unwrap();
        let key = SigningKey::from_pkcs8_der(&broker.key_pkcs8_der).unwrap();
        let certificates = vec![broker.cert_der.clone(), kz.issuing.cert_der.clone()];
        let unsigned = sample(&SampleSpec::new(ORIGIN, "AZ", 1, 10));
        let mut f = Fixture {
            now,
            key,
            certificates,
            unsigned,
            signed: String::new(),
            trust_tsa_in_origin,
            trust_tsa_elsewhere,
        };
        f.signed = f.sign();
        f
    })
}

impl Fixture {
    /// Signs the sample declaration (ECDSA: a fresh `SignatureValue` each time).
    fn sign(&self) -> String {
        let bytes = sign_enveloped(
            self.unsigned.as_bytes(),
            &self.key,
            &SignOptions {
                certificates: self.certificates.clone(),
                digest: DigestAlgorithm::Sha256,
                xades: true,
                signing_time: time::OffsetDateTime::from_unix_timestamp(self.now).unwrap(),
                limits: ParseLimits::default(),
            },
        )
        .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn verify_with(&self, trust: &TrustList, xml: &str) -> Report {
        verify_document(&VerifyRequest {
            bytes: xml.as_bytes(),
            trust,
            origin: CountryCode::from_upper(ORIGIN).unwrap(),
            at_unix: self.now,
            policy: &Policy::customs(),
            resolver: &NoExternal,
            hmac_secret: None,
        })
    }

    fn verify(&self, xml: &str) -> Report {
        self.verify_with(&self.trust_tsa_in_origin, xml)
    }

    /// genTime of the valid tokens: the validation time, GeneralizedTime.
    fn gen_time(&self) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(self.now).unwrap();
        t.format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]Z"
        ))
        .unwrap()
    }

    /// A token from the test TSA whose imprint is SHA-256(`data`).
    fn token(&self, data: &[u8]) -> Vec<u8> {
        Token {
            data: data.to_vec(),
            gen_time: self.gen_time(),
            ..Token::default()
        }
        .build(default_pki())
    }
}

/// The `ds:SignatureValue` element of `xml`, canonicalised with `method`.
fn signature_value_c14n(xml: &str, method: C14nMethod) -> Vec<u8> {
    let doc = Document::parse(xml.as_bytes(), &ParseLimits::default()).unwrap();
    let values: Vec<_> = doc
        .root()
        .descendants()
        .filter(|n| n.is(DSIG_NS, "SignatureValue"))
        .collect();
    assert_eq!(values.len(), 1, "exactly one ds:SignatureValue expected");
    doc.canonicalize_to_vec(
        Selection::Subtree(values[0]),
        None,
        &Canonicalization::new(method, false),
    )
    .unwrap()
}

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// One `xades:SignatureTimeStamp`; `c14n: None` leaves out
/// `ds:CanonicalizationMethod` (XAdES default: inclusive C14N 1.0).
fn signature_timestamp(c14n: Option<&str>, encapsulated: &str) -> String {
    let cm = c14n
        .map(|uri| format!(r#"<ds:CanonicalizationMethod Algorithm="{uri}"/>"#))
        .unwrap_or_default();
    format!(
        "<xades:SignatureTimeStamp>{cm}<xades:EncapsulatedTimeStamp>{encapsulated}\
         </xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>"
    )
}

/// Inserts the time-stamps as unsigned properties, just before
/// `</xades:QualifyingProperties>` (outside SignedInfo: the signature stays valid).
fn with_timestamps(signed: &str, stamps: &[String]) -> String {
    assert_eq!(signed.matches(QP_END).count(), 1);
    let unsigned = format!(
        "<xades:UnsignedProperties><xades:UnsignedSignatureProperties>{}\
         </xades:UnsignedSignatureProperties></xades:UnsignedProperties>",
        stamps.concat()
    );
    signed.replacen(QP_END, &format!("{unsigned}{QP_END}"), 1)
}

/// The declaration with one exclusive-c14n time-stamp carrying `token`.
fn stamped_exc(token: &[u8]) -> String {
    let f = fixture();
    with_timestamps(
        &f.signed,
        &[signature_timestamp(Some(EXC_C14N), &b64(token))],
    )
}

/// A valid token over the exclusive c14n of the fixture's `SignatureValue`.
fn valid_exc_token() -> Vec<u8> {
    let f = fixture();
    f.token(&signature_value_c14n(&f.signed, C14nMethod::Exclusive10))
}

#[track_caller]
fn assert_passed(report: &Report) {
    assert!(
        report.passed(),
        "expected TOTAL_PASSED: {}",
        serde_json_like(report)
    );
    assert_eq!(report.reason, None);
    assert!(report.signature_intact);
}

/// A refusal of an otherwise intact signature because of its time-stamp.
#[track_caller]
fn assert_timestamp_invalid(report: &Report) {
    assert!(
        !report.passed(),
        "must not pass: {}",
        serde_json_like(report)
    );
    assert_eq!(
        report.reason,
        Some("timestamp_invalid"),
        "{}",
        serde_json_like(report)
    );
    assert_eq!(
        report.sub_indication,
        Some(SubIndication::SigConstraintsFailure)
    );
    assert_eq!(report.indication, Indication::Indeterminate);
    assert!(
        report.signature_intact,
        "the signature itself is intact: only the time-stamp fails"
    );
    assert_eq!(report.signature_format, Some("XAdES-B-T"));
    assert!(
        report.message.contains("time-stamp"),
        "message: {}",
        report.message
    );
    assert!(
        report.timestamps.iter().any(|t| !t.verified),
        "the failing time-stamp is listed: {:?}",
        report.timestamps
    );
}

fn serde_json_like(report: &Report) -> String {
    format!(
        "indication={:?} sub={:?} reason={:?} message={:?} format={:?} timestamps={:?}",
        report.indication,
        report.sub_indication,
        report.reason,
        report.message,
        report.signature_format,
        report.timestamps
    )
}

#[track_caller]
fn only_timestamp(report: &Report) -> &TimestampReport {
    assert_eq!(report.timestamps.len(), 1, "{:?}", report.timestamps);
    &report.timestamps[0]
}

// ------------------------------------------------------------------ baseline

#[test]
fn baseline_without_timestamp_is_b_b_and_passes() {
    let f = fixture();
    let report = f.verify(&f.signed);
    assert_passed(&report);
    assert_eq!(report.signature_format, Some("XAdES-B-B"));
    assert!(report.timestamps.is_empty());
}

// ------------------------------------------------------------------ 1. valid

#[test]
fn valid_exclusive_c14n_timestamp_gives_b_t() {
    let f = fixture();
    let xml = stamped_exc(&valid_exc_token());
    let report = f.verify(&xml);
    assert_passed(&report);
    assert_eq!(report.signature_format, Some("XAdES-B-T"));
    let ts = only_timestamp(&report);
    assert!(ts.verified, "{ts:?}");
    assert_eq!(
        ts.gen_time.as_deref(),
        Some(tamga_policy::rfc3339(f.now).as_str())
    );
    let tsa = ts
        .tsa
        .as_deref()
        .expect("verified time-stamp names its TSA");
    assert!(tsa.contains("Tamga Test TSA"), "tsa: {tsa}");
    assert!(ts.message.contains(tsa), "message: {}", ts.message);
    // The signer path was still validated against KZ.
    assert!(!report.chain.is_empty());
}

#[test]
fn valid_timestamp_with_default_inclusive_c14n() {
    let f = fixture();
    let inclusive = signature_value_c14n(&f.signed, C14nMethod::Inclusive10);
    // The declaration's default namespace is in scope: inclusive differs
    // from exclusive, so this test really exercises the default.
    assert_ne!(
        inclusive,
        signature_value_c14n(&f.signed, C14nMethod::Exclusive10)
    );
    let token = f.token(&inclusive);
    for c14n in [None, Some(INC_C14N)] {
        let xml = with_timestamps(&f.signed, &[signature_timestamp(c14n, &b64(&token))]);
        let report = f.verify(&xml);
        assert_passed(&report);
        assert_eq!(report.signature_format, Some("XAdES-B-T"));
        assert!(only_timestamp(&report).verified);
    }
}

#[test]
fn two_valid_timestamps_are_both_listed() {
    let f = fixture();
    let exc = valid_exc_token();
    let inc = f.token(&signature_value_c14n(&f.signed, C14nMethod::Inclusive10));
    let xml = with_timestamps(
        &f.signed,
        &[
            signature_timestamp(Some(EXC_C14N), &b64(&exc)),
            signature_timestamp(None, &b64(&inc)),
        ],
    );
    let report = f.verify(&xml);
    assert_passed(&report);
    assert_eq!(report.timestamps.len(), 2);
    assert!(report.timestamps.iter().all(|t| t.verified));
}

// ------------------------------------------------------------------ 2. other imprint

#[test]
fn token_over_other_data_is_refused() {
    let f = fixture();
    let token = f.token(b"<ds:SignatureValue>something else</ds:SignatureValue>");
    let report = f.verify(&stamped_exc(&token));
    assert_timestamp_invalid(&report);
    let ts = only_timestamp(&report);
    assert!(!ts.verified);
    assert_eq!(ts.tsa, None);
    // The token was readable: its genTime is reported, not vouched for.
    assert_eq!(
        ts.gen_time.as_deref(),
        Some(tamga_policy::rfc3339(f.now).as_str())
    );
    assert!(report.message.contains(&ts.message), "{}", report.message);
    assert!(ts.message.contains("message imprint"), "{}", ts.message);
}

#[test]
fn token_of_another_signature_is_refused() {
    // Same declaration, same signer, signed again: ECDSA gives another
    // SignatureValue, and the first signature's time-stamp must not carry over.
    let f = fixture();
    let other = f.sign();
    assert_ne!(
        signature_value_c14n(&other, C14nMethod::Exclusive10),
        signature_value_c14n(&f.signed, C14nMethod::Exclusive10)
    );
    let token = valid_exc_token();
    let xml = with_timestamps(&other, &[signature_timestamp(Some(EXC_C14N), &b64(&token))]);
    let report = f.verify(&xml);
    assert_timestamp_invalid(&report);
    let ts = only_timestamp(&report);
    assert!(!ts.verified);
    assert!(ts.message.contains("message imprint"), "{}", ts.message);
}

#[test]
fn token_over_the_wrong_c14n_is_refused() {
    // Token over the exclusive form, but the time-stamp names inclusive
    // C14N (explicitly or by default).
    let f = fixture();
    let token = valid_exc_token();
    for c14n in [None, Some(INC_C14N)] {
        let xml = with_timestamps(&f.signed, &[signature_timestamp(c14n, &b64(&token))]);
        let report = f.verify(&xml);
        assert_timestamp_invalid(&report);
        let ts = only_timestamp(&report);
        assert!(!ts.verified);
        assert!(ts.message.contains("message imprint"), "{}", ts.message);
    }
}

#[test]
fn one_bad_timestamp_among_good_ones_refuses_the_signature() {
    let f = fixture();
    let good = valid_exc_token();
    let bad = f.token(b"not the signature value");
    let xml = with_timestamps(
        &f.signed,
        &[
            signature_timestamp(Some(EXC_C14N), &b64(&good)),
            signature_timestamp(Some(EXC_C14N), &b64(&bad)),
        ],
    );
    let report = f.verify(&xml);
    assert_timestamp_invalid(&report);
    assert_eq!(report.timestamps.len(), 2);
    assert!(report.timestamps[0].verified);
    assert!(!report.timestamps[1].verified);
}

// ------------------------------------------------------------------ 3. TSA trust

#[test]
fn tsa_anchored_only_in_another_country_is_refused() {
    let f = fixture();
    let xml = stamped_exc(&valid_exc_token());
    // Sanity: the same document passes when the TSA root is a KZ anchor.
    assert_passed(&f.verify_with(&f.trust_tsa_in_origin, &xml));

    let report = f.verify_with(&f.trust_tsa_elsewhere, &xml);
    assert_timestamp_invalid(&report);
    let ts = only_timestamp(&report);
    assert!(!ts.verified);
    assert_eq!(ts.tsa, None);
    assert!(ts.message.contains("not trusted"), "{}", ts.message);
    assert_eq!(report.declared_origin, ORIGIN);
}

// ------------------------------------------------------------------ 4. corrupted token

#[test]
fn corrupted_token_is_refused_without_panic() {
    let f = fixture();
    let token = valid_exc_token();
    let imprint = common::sha256(&signature_value_c14n(&f.signed, C14nMethod::Exclusive10));
    let imprint_at = token
        .windows(imprint.len())
        .position(|w| w == imprint.as_slice())
        .expect("the imprint is in the TSTInfo");
    let tsa_cert_at = token
        .windows(default_pki().tsa_der.len())
        .position(|w| w == default_pki().tsa_der.as_slice())
        .expect("the TSA certificate is in the token");
    let cases = [
        ("outer SEQUENCE tag", 0),
        ("signedData OID", 6),
        ("messageImprint", imprint_at + 3),
        (
            "TSA certificate",
            tsa_cert_at + default_pki().tsa_der.len() / 2,
        ),
        ("signature value (last byte)", token.len() - 1),
    ];
    for (what, at) in cases {
        let mut bad = token.clone();
        bad[at] ^= 0x01;
        let report = f.verify(&stamped_exc(&bad));
        assert!(!report.passed(), "flip in {what} (byte {at}) passed");
        assert_timestamp_invalid(&report);
    }
    // Truncated and empty tokens.
    for len in [token.len() - 1, token.len() / 2, 1] {
        let report = f.verify(&stamped_exc(&token[..len]));
        assert_timestamp_invalid(&report);
        assert_eq!(only_timestamp(&report).gen_time, None);
    }
}

/// Every single-bit flip of the token: never a panic, and refused with
/// `timestamp_invalid` unless the flip hits bytes that nothing authenticates
/// and nothing uses: the informational `SignedData.digestAlgorithms` and
/// the copy of the TSA root carried in the token (the anchor comes from the
/// trust list, never from the token).
#[test]
fn every_bit_flip_is_refused_unless_unauthenticated_and_unused() {
    let f = fixture();
    let token = valid_exc_token();
    let find = |needle: &[u8]| {
        let at = token
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        at..at + needle.len()
    };
    let digest_algorithms = find(&common::alg(common::SHA256, Some(&common::null())));
    assert!(
        digest_algorithms.start < 40,
        "the first SHA-256 AlgorithmIdentifier is SignedData.digestAlgorithms"
    );
    let root_copy = find(&default_pki().root_der);
    let mut tolerated = 0;
    for at in 0..token.len() {
        let mut bad = token.clone();
        bad[at] ^= 0x01;
        let report = f.verify(&stamped_exc(&bad));
        if report.passed() {
            assert!(
                digest_algorithms.contains(&at) || root_copy.contains(&at),
                "flip at byte {at} of {} passed",
                token.len()
            );
            tolerated += 1;
        } else {
            assert_eq!(
                report.reason,
                Some("timestamp_invalid"),
                "flip at byte {at}"
            );
            assert!(!only_timestamp(&report).verified);
        }
    }
    // Most of the token is authenticated.
    assert!(tolerated < token.len() / 2, "{tolerated} flips tolerated");
}

// ------------------------------------------------------------------ 5. unknown c14n

#[test]
fn unknown_canonicalization_method_is_refused() {
    let f = fixture();
    let token = valid_exc_token();
    let xml = with_timestamps(
        &f.signed,
        &[signature_timestamp(
            Some("http://example.com/unknown-c14n"),
            &b64(&token),
        )],
    );
    let report = f.verify(&xml);
    assert_timestamp_invalid(&report);
    let ts = only_timestamp(&report);
    assert!(!ts.verified);
    assert!(
        ts.message.contains("http://example.com/unknown-c14n"),
        "{}",
        ts.message
    );
}

// ------------------------------------------------------------------ 6. not base64

#[test]
fn encapsulated_timestamp_not_base64_is_malformed() {
    let f = fixture();
    let xml = with_timestamps(
        &f.signed,
        &[signature_timestamp(Some(EXC_C14N), "*** not base64 ***")],
    );
    let report = f.verify(&xml);
    assert!(!report.passed());
    assert_eq!(
        report.reason,
        Some("malformed_signature"),
        "{}",
        serde_json_like(&report)
    );
    assert_eq!(report.sub_indication, Some(SubIndication::FormatFailure));
    assert_eq!(report.indication, Indication::TotalFailed);
    assert!(report.timestamps.is_empty());
}
