#![allow(dead_code)]
//! A key generated inside a SoftHSM2 token, certified by a country's demo
//! issuing CA (shared by the PKCS#11 tests).

use rcgen::{
    CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use std::path::{Path, PathBuf};
use tamga_dsig::{Curve, PublicKey};
use tamga_pkcs11::softhsm::{KeySpec, SoftHsm};

struct TokenKey(PublicKey);

impl PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        match &self.0 {
            PublicKey::Ec { point, .. } => point,
            PublicKey::Rsa { der, .. } => der,
            other => panic!("no certificate for {other:?}"),
        }
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match &self.0 {
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => &rcgen::PKCS_ECDSA_P256_SHA256,
            PublicKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            other => panic!("no certificate for {other:?}"),
        }
    }
}

/// Generates `label` in `token` and has `country`'s issuing CA (from the demo
/// PKI's `keys/`) certify it as that country's customs authority; returns
/// the certificate's path.
#[allow(clippy::too_many_arguments)] // a test fixture: every argument is one fact of the key
pub fn certified_token_key(
    hsm: &SoftHsm,
    token: &str,
    pin: &str,
    spec: KeySpec,
    label: &str,
    keys: &Path,
    country: &str,
    out: &Path,
) -> PathBuf {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let public = hsm
        .generate_key_pair(token, pin, spec, label, label.as_bytes())
        .unwrap();
    let ca_key = KeyPair::from_pem(
        &std::fs::read_to_string(keys.join(country).join("issuing-ca.key")).unwrap(),
    )
    .unwrap();
    let ca = Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(keys.join(country).join("issuing-ca.pem")).unwrap(),
        ca_key,
    )
    .unwrap();
    let mut leaf = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country);
    dn.push(
        DnType::OrganizationName,
        format!("{country} Customs Authority"),
    );
    dn.push(
        DnType::CommonName,
        format!("{country} Customs Authority HSM {label}"),
    );
    leaf.distinguished_name = dn;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    leaf.not_before = time::OffsetDateTime::from_unix_timestamp(now - 3600).unwrap();
    leaf.not_after = time::OffsetDateTime::from_unix_timestamp(now + 86_400 * 30).unwrap();
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&TokenKey(public), &ca).unwrap();
    let cert_path = out.join(format!("{label}.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    cert_path
}
