//! CRLs carried in the signature (`KeyInfo/X509Data/X509CRL`) are used
//! alongside the trust list's, but can only add evidence: each is checked
//! against its issuer's key, and the newest CRL of an issuer wins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tamga_trust::{CountryCode, PathError, PathRequest, TrustList};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn check(list: &TrustList, pki: &Pki, document_crls: &[&[u8]]) -> Result<(), PathError> {
    let ints = [pki.int.der.as_slice()];
    list.validate_signer(&PathRequest {
        intermediates_der: &ints,
        document_crls,
        ..PathRequest::new(cc(&pki.cc), &pki.leaf, NOW as u64)
    })
    .map(|_| ())
}

#[test]
fn a_carried_crl_supplies_missing_evidence() {
    let kz = Pki::new("KZ");
    // Only the root's CRL in the list: the issuing CA's status is unknown.
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
    ])
    .unwrap();
    assert_eq!(check(&list, &kz, &[]), Err(PathError::RevocationUnknown));
    let carried = crl_der(&kz.int, &[], NOW - DAY, NOW + 7 * DAY);
    assert_eq!(check(&list, &kz, &[&carried]), Ok(()));
    // One that revokes the signer is heeded.
    let revoking = crl_der(&kz.int, &[&kz.leaf_serial], NOW - DAY, NOW + 7 * DAY);
    assert!(matches!(
        check(&list, &kz, &[&revoking]),
        Err(PathError::Revoked { .. })
    ));
    // Garbage is ignored (the status stays unknown), never a panic.
    assert_eq!(
        check(&list, &kz, &[b"not a CRL", &[0x30, 0x00]]),
        Err(PathError::RevocationUnknown)
    );
}

#[test]
fn a_carried_crl_cannot_hide_a_revocation() {
    let kz = Pki::new("KZ");
    // The list's CRL (newer) revokes the signer.
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        crl_file(
            "KZ",
            "issuing.crl",
            &crl_der(&kz.int, &[&kz.leaf_serial], NOW - DAY, NOW + 7 * DAY),
        ),
    ])
    .unwrap();
    // An older, still unexpired CRL without the revocation does not win.
    let older = crl_der(&kz.int, &[], NOW - 3 * DAY, NOW + 7 * DAY);
    assert!(matches!(
        check(&list, &kz, &[&older]),
        Err(PathError::Revoked { .. })
    ));
    // A forged "newer" CRL (same issuer name, another key) is refused, not trusted.
    let impostor = Ca::intermediate(
        "KZ Issuing CA",
        "KZ",
        &kz.root,
        NOW - 100 * DAY,
        NOW + 100 * DAY,
        Some(0),
    );
    let forged = crl_der(&impostor, &[], NOW - 3600, NOW + 7 * DAY);
    assert!(matches!(
        check(&list, &kz, &[&forged]),
        Err(PathError::CrlInvalid(_))
    ));
}
