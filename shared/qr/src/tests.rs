use tamga_dsig::SigningKey;
use tamga_pki::{generate, DemoPkiOptions};
use tamga_trust::{CountryCode, TrustFile, TrustList};

use super::*;
use crate::bundle::Bundle;

const NOW: i64 = 1_780_000_000;

struct Fixture {
    trust: TrustList,
    files: Vec<TrustFile>,
    key: SigningKey,
    chain: Vec<Vec<u8>>,
    other_key: SigningKey,
    other_chain: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let pki = generate(&DemoPkiOptions::new(["AZ", "KZ"], NOW - 86_400)).unwrap();
    let mut files = Vec::new();
    for c in &pki.countries {
        let cc: CountryCode = c.country.parse().unwrap();
        for (name, body) in [
            ("root-ca.pem", c.root.cert_pem.clone()),
            ("root-ca.crl", c.root_crl_pem.clone()),
            ("issuing-ca.crl", c.issuing_crl_pem.clone()),
        ] {
            files.push(TrustFile {
                country: cc,
                name: name.into(),
                bytes: body.into_bytes(),
            });
        }
    }
    let az = pki.country("AZ").unwrap();
    let kz = pki.country("KZ").unwrap();
    Fixture {
        trust: TrustList::from_files(files.clone()).unwrap(),
        files,
        key: SigningKey::from_pkcs8_der(&az.authority.key_pkcs8_der).unwrap(),
        chain: vec![az.authority.cert_der.clone(), az.issuing.cert_der.clone()],
        other_key: SigningKey::from_pkcs8_der(&kz.authority.key_pkcs8_der).unwrap(),
        other_chain: vec![kz.authority.cert_der.clone(), kz.issuing.cert_der.clone()],
    }
}

fn claims(chain: &[Vec<u8>]) -> Claims {
    Claims {
        receipt_id: "rcpt-0123456789abcdef01234567".into(),
        decision: "accepted".into(),
        document_sha256: "ab".repeat(32),
        lrn: Some("25KZ0000000000123".into()),
        origin: "KZ".into(),
        destination: "AZ".into(),
        issued_at: NOW - 60,
        authority_certificate_sha256: hex::encode(sha256(&chain[0])),
        reason: None,
    }
}

#[test]
fn round_trip() {
    let f = fixture();
    let c = claims(&f.chain);
    let payload = sign(&c, &f.key, &f.chain).unwrap();
    assert!(payload.starts_with(PREFIX));
    assert!(!payload.contains('\n'));
    let checked = verify(&payload, &f.trust, &[], NOW);
    assert_eq!(checked.state, State::Authentic, "{}", checked.message);
    assert_eq!(checked.claims.as_ref(), Some(&c));
    assert_eq!(checked.chain.len(), 3);
    assert!(svg(&payload).unwrap().starts_with("<?xml"));
    // A rejection carries its reason.
    let mut r = claims(&f.chain);
    r.decision = "rejected".into();
    r.reason = Some("digest_mismatch".into());
    r.lrn = None;
    let p = sign(&r, &f.key, &f.chain).unwrap();
    assert_eq!(verify(&p, &f.trust, &[], NOW).claims, Some(r));
}

#[test]
fn rsa_authority_round_trip() {
    let pki = generate(&DemoPkiOptions::new(["AZ"], NOW - 86_400)).unwrap();
    let az = pki.country("AZ").unwrap();
    let f = fixture();
    let chain = vec![
        az.authority_rsa.cert_der.clone(),
        az.issuing.cert_der.clone(),
    ];
    let key = SigningKey::from_pkcs8_der(&az.authority_rsa.key_pkcs8_der).unwrap();
    let p = sign(&claims(&chain), &key, &chain).unwrap();
    let trust = TrustList::from_files(vec![
        TrustFile {
            country: "AZ".parse().unwrap(),
            name: "root-ca.pem".into(),
            bytes: az.root.cert_pem.clone().into_bytes(),
        },
        TrustFile {
            country: "AZ".parse().unwrap(),
            name: "root-ca.crl".into(),
            bytes: az.root_crl_pem.clone().into_bytes(),
        },
        TrustFile {
            country: "AZ".parse().unwrap(),
            name: "issuing-ca.crl".into(),
            bytes: az.issuing_crl_pem.clone().into_bytes(),
        },
    ])
    .unwrap();
    assert_eq!(verify(&p, &trust, &[], NOW).state, State::Authentic);
    // The other fixture's AZ is another PKI with the same names: the certificate claims an
    // issuer whose key did not sign it, a forgery.
    let other = verify(&p, &f.trust, &[], NOW);
    assert_eq!(other.state, State::NotAuthentic, "{}", other.message);
}

/// Every byte of the signed COSE structure, altered, is refused (never authentic, never a
/// panic); the same for every character of the text.
#[test]
fn tamper_any_byte_is_rejected() {
    let f = fixture();
    let payload = sign(&claims(&f.chain), &f.key, &f.chain).unwrap();
    let body = payload.strip_prefix(PREFIX).unwrap();
    let compressed = base45::decode(body).unwrap();
    let mut cose = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_end(&mut cose)
        .unwrap();
    let mut authentic = 0;
    for i in 0..cose.len() {
        let mut t = cose.clone();
        t[i] ^= 0x01;
        let p = encode_envelope(&t);
        let c = verify(&p, &f.trust, &[], NOW);
        if c.state == State::Authentic {
            authentic += 1;
            eprintln!("byte {i} of {} altered and still authentic", cose.len());
        }
    }
    assert_eq!(authentic, 0);
    // Text-level edits (each position, one step along the alphabet).
    let chars: Vec<char> = body.chars().collect();
    for i in (0..chars.len()).step_by(7) {
        let mut t = chars.clone();
        t[i] = if t[i] == 'A' { 'B' } else { 'A' };
        let p = format!("{PREFIX}{}", t.iter().collect::<String>());
        assert_ne!(
            verify(&p, &f.trust, &[], NOW).state,
            State::Authentic,
            "char {i}"
        );
    }
}

#[test]
fn claims_tampered_and_resigned_by_another_key_is_rejected() {
    let f = fixture();
    // The KZ authority signs a payload claiming to be the AZ authority's.
    let c = claims(&f.chain);
    let err = sign(&c, &f.other_key, &f.other_chain).unwrap_err();
    assert!(matches!(err, QrError::Sign(_)));
    // Signed by a wrong key but carrying the AZ certificate: bad signature.
    let forged =
        encode_envelope(&cose::sign1(&c.to_cbor().unwrap(), &f.other_key, &f.chain).unwrap());
    let checked = verify(&forged, &f.trust, &[], NOW);
    assert_eq!(checked.state, State::NotAuthentic);
    assert_eq!(checked.code, "bad_signature");
    // Signed by KZ's authority, claiming AZ: the certificate is not the named one.
    let forged =
        encode_envelope(&cose::sign1(&c.to_cbor().unwrap(), &f.other_key, &f.other_chain).unwrap());
    let checked = verify(&forged, &f.trust, &[], NOW);
    assert_eq!(checked.state, State::NotAuthentic);
    assert_eq!(checked.code, "certificate_mismatch");
}

#[test]
fn truncated_oversize_wrong_prefix() {
    let f = fixture();
    let payload = sign(&claims(&f.chain), &f.key, &f.chain).unwrap();
    for cut in [
        5,
        6,
        10,
        payload.len() / 2,
        payload.len() - 1,
        payload.len() - 3,
    ] {
        let c = verify(&payload[..cut], &f.trust, &[], NOW);
        assert_eq!(c.state, State::NotAuthentic, "cut at {cut}");
        assert_eq!(c.code, "malformed");
    }
    assert!(matches!(
        open(&payload.replacen("TMG1:", "HC1:", 1)),
        Err(QrError::WrongPrefix)
    ));
    assert!(matches!(open(&payload[5..]), Err(QrError::WrongPrefix)));
    assert!(matches!(
        open(&payload.replacen("TMG1:", "TMG2:", 1)),
        Err(QrError::WrongPrefix)
    ));
    // Too long a text: refused before decoding.
    let long = format!("{PREFIX}{}", "0".repeat(MAX_PAYLOAD_CHARS + 3));
    assert!(matches!(open(&long), Err(QrError::Oversize)));
    // A zip bomb: 1 MiB of zeros compresses to ~1 KiB; the inflater stops at the limit.
    let bomb = encode_envelope(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < MAX_PAYLOAD_CHARS);
    assert!(matches!(open(&bomb), Err(QrError::Oversize)));
    // Not zlib, not COSE.
    assert!(matches!(
        open(&format!("{PREFIX}{}", base45::encode(b"hello"))),
        Err(QrError::Inflate(_))
    ));
    assert!(matches!(
        open(&encode_envelope(b"\x01\x02")),
        Err(QrError::Cose(_))
    ));
    assert!(matches!(open("TMG1:abc"), Err(QrError::Base45(_))));
}

#[test]
fn unknown_authority_and_kid_lookup() {
    let f = fixture();
    let payload = sign(&claims(&f.chain), &f.key, &f.chain).unwrap();
    // A trust list without AZ: could not check, never "not authentic".
    let kz_only = TrustList::from_files(
        f.files
            .iter()
            .filter(|x| x.country.to_string() == "KZ")
            .cloned()
            .collect(),
    )
    .unwrap();
    let c = verify(&payload, &kz_only, &[], NOW);
    assert_eq!(c.state, State::CouldNotCheck);
    assert_eq!(c.code, "unknown_authority");
    // Later than the CRLs' next update: could not check.
    let c = verify(&payload, &f.trust, &[], NOW + 400 * 86_400);
    assert_ne!(c.state, State::Authentic);
}

#[test]
fn bundle_round_trip_and_tamper() {
    let f = fixture();
    let b = Bundle {
        issued_at: NOW,
        next_update: NOW + 86_400,
        issuer_country: "AZ".into(),
        files: f.files.clone(),
        authorities: vec![f.chain[0].clone()],
    };
    let signed = b.sign(&f.key, &f.chain).unwrap();
    let (opened, summary) = Bundle::open(&signed, &f.trust, NOW).unwrap();
    assert_eq!(opened, b);
    assert_eq!(summary.countries, ["AZ", "KZ"]);
    assert!(!opened.is_stale(NOW + 10));
    assert!(opened.is_stale(NOW + 86_401));
    let list = opened.trust_list().unwrap();
    let payload = sign(&claims(&f.chain), &f.key, &f.chain).unwrap();
    assert_eq!(
        verify(&payload, &list, &opened.authorities, NOW).state,
        State::Authentic
    );
    let mut t = signed.clone();
    let n = t.len() / 2;
    t[n] ^= 1;
    assert!(Bundle::open(&t, &f.trust, NOW).is_err());
    // Signed by an authority the checkpoint's directory does not know.
    let kz_only = TrustList::from_files(
        f.files
            .iter()
            .filter(|x| x.country.to_string() == "KZ")
            .cloned()
            .collect(),
    )
    .unwrap();
    assert!(matches!(
        Bundle::open(&signed, &kz_only, NOW),
        Err(bundle::BundleError::Untrusted(_))
    ));
}
