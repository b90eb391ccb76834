#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Certificate paths signed with GOST R 34.10-2012 (512 CA, 256-A broker on
//! the cofactor-4 curve), CRLs included. The PKI was made by OpenSSL's GOST
//! engine (`tests/fixtures/gost-pki/make.sh`).

use tamga_trust::{CountryCode, PathError, PathRequest, RevocationMode, TrustFile, TrustList};

const ROOT: &[u8] = include_bytes!("../../../tests/fixtures/gost-pki/root.pem");
const CA: &[u8] = include_bytes!("../../../tests/fixtures/gost-pki/ca.pem");
const BROKER: &[u8] = include_bytes!("../../../tests/fixtures/gost-pki/broker.pem");
const ROOT_CRL: &[u8] = include_bytes!("../../../tests/fixtures/gost-pki/root.crl");
const CA_CRL: &[u8] = include_bytes!("../../../tests/fixtures/gost-pki/ca.crl");
/// 2027-06-01T00:00:00Z, inside every validity window.
const AT: u64 = 1_811_808_000;

fn der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64_decode(&body)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn file(country: &str, name: &str, bytes: &[u8]) -> TrustFile {
    TrustFile {
        country: country.parse().unwrap(),
        name: name.into(),
        bytes: bytes.to_vec(),
    }
}

fn kz_trust() -> TrustList {
    TrustList::from_files(vec![
        file("KZ", "root.pem", ROOT),
        file("KZ", "root.crl", ROOT_CRL),
        file("KZ", "ca.crl", CA_CRL),
        file("AZ", "README.txt", b""),
    ])
    .unwrap()
}

fn request<'a>(country: &str, signer: &'a [u8], intermediates: &'a [&'a [u8]]) -> PathRequest<'a> {
    let mut r = PathRequest::new(country.parse::<CountryCode>().unwrap(), signer, AT);
    r.intermediates_der = intermediates;
    r.revocation = RevocationMode::Require;
    r
}

#[test]
fn gost_chain_with_gost_crls_validates() {
    let trust = kz_trust();
    let broker = der(BROKER);
    let ca = der(CA);
    let inter: [&[u8]; 1] = [&ca];
    let ok = trust
        .validate_signer(&request("KZ", &broker, &inter))
        .unwrap();
    assert_eq!(ok.chain.len(), 3);
    assert!(ok.chain[2].subject.contains("Tamga Test GOST Root"));
}

#[test]
fn a_corrupted_gost_certificate_signature_is_refused() {
    let trust = kz_trust();
    let mut broker = der(BROKER);
    let n = broker.len();
    broker[n - 5] ^= 0x01;
    let ca = der(CA);
    let inter: [&[u8]; 1] = [&ca];
    let err = trust
        .validate_signer(&request("KZ", &broker, &inter))
        .unwrap_err();
    assert!(
        matches!(err, PathError::BadSignature | PathError::NoChain),
        "{err:?}"
    );
}

#[test]
fn the_per_country_anchor_rule_holds_for_gost() {
    let trust = kz_trust();
    let broker = der(BROKER);
    let ca = der(CA);
    let inter: [&[u8]; 1] = [&ca];
    assert_eq!(
        trust
            .validate_signer(&request("AZ", &broker, &inter))
            .unwrap_err(),
        PathError::NoChain
    );
}

#[test]
fn without_the_issuing_ca_there_is_no_chain() {
    let trust = kz_trust();
    let broker = der(BROKER);
    assert_eq!(
        trust
            .validate_signer(&request("KZ", &broker, &[]))
            .unwrap_err(),
        PathError::NoChain
    );
}

/// The real NCA RK test certificate (from the Kazakh XAdES vector): webpki
/// parses it and accepts all its extensions (certificatePolicies, AIA, CRL
/// distribution points, freshestCRL, extKeyUsage emailProtection +
/// 1.2.398.3.3.4.1.1, critical keyUsage, SKI, AKI, 1.2.398.3.3.5); only the
/// issuer is missing, so path building ends in "no chain", not in a refusal
/// of the certificate.
#[test]
fn webpki_accepts_the_nca_certificate_extensions() {
    let xml = include_str!("../../../tests/fixtures/gost-kz/xades-test-signed-b.xml");
    let start = xml.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    let end = xml.find("</ds:X509Certificate>").unwrap();
    let nca = base64_decode(&xml[start..end]);
    let trust = kz_trust();
    // 2026-09-02T10:04:52Z, the vector's signing time.
    let mut req = request("KZ", &nca, &[]);
    req.at_unix = 1_788_343_492;
    assert_eq!(trust.validate_signer(&req).unwrap_err(), PathError::NoChain);
}
