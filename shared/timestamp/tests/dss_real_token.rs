//! A real-world token: the XAdES-B-LTA sample from EU DSS (see fixtures/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tamga_timestamp::{
    parse_timestamp, verify_timestamp, SignerId, TimestampError, TimestampRequest, TsaTrust,
};
use tamga_xml::{C14nMethod, Canonicalization, Document, ParseLimits, Selection};

const SIG_TS: &[u8] = include_bytes!("fixtures/xades-lta-valid.signature-timestamp.der");
const ARCHIVE_TS: &[u8] = include_bytes!("fixtures/xades-lta-valid.archive-timestamp.der");
const XML: &[u8] = include_bytes!("fixtures/xades-lta-valid.xml");
/// ee-good-tsa, the ArchiveTimeStamp's TSA certificate itself.
const ANCHOR_1: &[u8] = include_bytes!("fixtures/xades-lta-valid.trust-anchor-1.pem");
/// root-ca, issuer of good-tsa (the SignatureTimeStamp's TSA).
const ANCHOR_2: &[u8] = include_bytes!("fixtures/xades-lta-valid.trust-anchor-2.pem");

const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";

fn pem(bytes: &[u8]) -> Vec<u8> {
    CertificateDer::from_pem_slice(bytes).unwrap().to_vec()
}

/// The SignatureTimeStamp input: ds:SignatureValue canonicalised with the
/// algorithm the xades:SignatureTimeStamp's ds:CanonicalizationMethod names.
fn signature_value_c14n() -> Vec<u8> {
    let doc = Document::parse(XML, &ParseLimits::default()).unwrap();
    let root = doc.root();
    let ts = root
        .descendants()
        .find(|n| n.is(XADES, "SignatureTimeStamp"))
        .expect("SignatureTimeStamp");
    let method = ts
        .child(DS, "CanonicalizationMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .expect("CanonicalizationMethod");
    let c14n = match method.as_str() {
        "http://www.w3.org/2001/10/xml-exc-c14n#" => {
            Canonicalization::new(C14nMethod::Exclusive10, false)
        }
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => {
            Canonicalization::new(C14nMethod::Exclusive10, true)
        }
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => {
            Canonicalization::new(C14nMethod::Inclusive10, false)
        }
        "http://www.w3.org/2006/12/xml-c14n11" => {
            Canonicalization::new(C14nMethod::Inclusive11, false)
        }
        other => panic!("unexpected c14n {other}"),
    };
    let sv = root
        .descendants()
        .find(|n| n.is(DS, "SignatureValue"))
        .expect("SignatureValue");
    let out = doc
        .canonicalize_to_vec(Selection::Subtree(sv), None, &c14n)
        .unwrap();
    assert!(out.starts_with(b"<ds:SignatureValue xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\""));
    out
}

#[test]
fn fixture_token_is_the_one_in_the_document() {
    // The .der fixture is the base64 content of the EncapsulatedTimeStamp.
    let doc = Document::parse(XML, &ParseLimits::default()).unwrap();
    let ets = doc
        .root()
        .descendants()
        .find(|n| n.is(XADES, "EncapsulatedTimeStamp"))
        .unwrap();
    let b64: String = ets.text().split_whitespace().collect();
    assert_eq!(b64, base64_encode(SIG_TS));
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn parse_real_signature_timestamp() {
    let info = parse_timestamp(SIG_TS).unwrap();
    assert_eq!(info.gen_time, "2021-08-12T13:27:00Z");
    assert_eq!(info.gen_time_unix, 1_628_774_820);
    assert_eq!(info.policy_oid, "1.2.3.4");
    assert_eq!(info.hash_algorithm, "SHA-256");
    assert_eq!(info.serial_hex, "dfe3ce6cd40e46c4e3df9c3823bb9224");
    assert_eq!(info.digest_algorithm, "SHA-256");
    assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
    assert_eq!(info.certificates_der.len(), 2);
    assert_eq!(info.nonce_hex, None);
    assert_eq!(info.tsa_name, None);
    match &info.signer {
        SignerId::IssuerAndSerialNumber { issuer, serial_hex } => {
            assert!(issuer.contains("CN=root-ca"), "{issuer}");
            assert_eq!(serial_hex, "01f4"); // 500
        }
        other => panic!("{other:?}"),
    }
    // The imprint is the SHA-256 of the canonicalised ds:SignatureValue.
    assert_eq!(
        info.hashed_message,
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &signature_value_c14n()).as_ref()
    );
}

#[test]
fn verify_real_signature_timestamp() {
    let info = parse_timestamp(SIG_TS).unwrap();
    let imprint = signature_value_c14n();
    let root = pem(ANCHOR_2);
    let anchors: [&[u8]; 1] = [&root];
    let req = TimestampRequest {
        token_der: SIG_TS,
        imprint_data: &imprint,
        trust_anchors_der: &anchors,
        extra_certs_der: &[],
        at_unix: u64::try_from(info.gen_time_unix).unwrap(),
    };
    let v = verify_timestamp(&req).unwrap();
    assert_eq!(v.gen_time, "2021-08-12T13:27:00Z");
    assert_eq!(v.hash_algorithm, "SHA-256");
    assert_eq!(v.policy_oid, "1.2.3.4");
    assert_eq!(v.serial_hex, "dfe3ce6cd40e46c4e3df9c3823bb9224");
    assert!(v.tsa_subject.contains("CN=good-tsa"), "{}", v.tsa_subject);
    assert_eq!(v.trust, TsaTrust::Chain);

    // Both anchors configured (as the DSS test does): same result.
    let tsa_anchor = pem(ANCHOR_1);
    let both: [&[u8]; 2] = [&tsa_anchor, &root];
    verify_timestamp(&TimestampRequest {
        trust_anchors_der: &both,
        ..req
    })
    .unwrap();

    // Other data.
    assert_eq!(
        verify_timestamp(&TimestampRequest {
            imprint_data: b"<ds:SignatureValue/>",
            ..req
        })
        .unwrap_err(),
        TimestampError::ImprintMismatch
    );
    // Today the TSA certificate (valid until 2022-07-11) has expired.
    assert!(matches!(
        verify_timestamp(&TimestampRequest {
            at_unix: 1_750_000_000,
            ..req
        }),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
    // Only the other TSA's certificate as anchor: untrusted.
    let only_other: [&[u8]; 1] = [&tsa_anchor];
    assert!(matches!(
        verify_timestamp(&TimestampRequest {
            trust_anchors_der: &only_other,
            ..req
        }),
        Err(TimestampError::UntrustedTsa(_))
    ));
}

#[test]
fn real_archive_timestamp_with_directly_trusted_tsa() {
    // The ArchiveTimeStamp's imprint needs the XAdES 1.4.1 archive input
    // (not computed here): a wrong imprint that is reported as ImprintMismatch
    // proves every earlier check passed — CMS signature, ESS, critical EKU,
    // and trust via the directly anchored ee-good-tsa certificate.
    let info = parse_timestamp(ARCHIVE_TS).unwrap();
    let tsa_anchor = pem(ANCHOR_1);
    match &info.signer {
        SignerId::IssuerAndSerialNumber { issuer, .. } => {
            assert!(issuer.contains("CN=ee-root-ca"), "{issuer}")
        }
        other => panic!("{other:?}"),
    }
    assert!(info.certificates_der.contains(&tsa_anchor));
    let anchors: [&[u8]; 1] = [&tsa_anchor];
    let req = TimestampRequest {
        token_der: ARCHIVE_TS,
        imprint_data: b"not the archive input",
        trust_anchors_der: &anchors,
        extra_certs_der: &[],
        at_unix: u64::try_from(info.gen_time_unix).unwrap(),
    };
    assert_eq!(
        verify_timestamp(&req).unwrap_err(),
        TimestampError::ImprintMismatch
    );
    // Checks run in order: an expired TSA certificate is reported before the imprint.
    assert!(matches!(
        verify_timestamp(&TimestampRequest {
            at_unix: 1_750_000_000,
            ..req
        }),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
}

#[test]
fn real_token_mutations_never_panic() {
    let imprint = signature_value_c14n();
    let root = pem(ANCHOR_2);
    let anchors: [&[u8]; 1] = [&root];
    for i in 0..SIG_TS.len() {
        let mut m = SIG_TS.to_vec();
        m[i] ^= 0x5a;
        let _ = parse_timestamp(&m);
        let r = verify_timestamp(&TimestampRequest {
            token_der: &m,
            imprint_data: &imprint,
            trust_anchors_der: &anchors,
            extra_certs_der: &[],
            at_unix: 1_628_774_820,
        });
        if let Ok(v) = r {
            assert_eq!(v.gen_time, "2021-08-12T13:27:00Z", "byte {i}");
            assert_eq!(v.serial_hex, "dfe3ce6cd40e46c4e3df9c3823bb9224", "byte {i}");
        }
    }
}
