//! Test PKI builders. ECDSA P-256 throughout: fast to generate.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU8, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use tamga_trust::{TrustFile, TrustList};
use time::OffsetDateTime;

/// Fixed validation time (2025-06-15): tests never read the clock.
pub const NOW: i64 = 1_750_000_000;
pub const DAY: i64 = 86_400;

pub fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static SERIAL: AtomicU8 = AtomicU8::new(1);

/// Minimal positive INTEGER content, so certificate and CRL encodings agree byte for byte.
pub fn next_serial() -> Vec<u8> {
    vec![0x5a, SERIAL.fetch_add(1, Ordering::Relaxed) % 0x7f + 1]
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn dn(cn: &str, country: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country);
    dn.push(DnType::OrganizationName, "Test Customs PKI");
    dn.push(DnType::CommonName, cn);
    dn
}

pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: Vec<u8>,
    pub serial: Vec<u8>,
}

fn ca_params(
    cn: &str,
    country: &str,
    not_before: i64,
    not_after: i64,
) -> (CertificateParams, Vec<u8>) {
    let serial = next_serial();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn, country);
    p.not_before = ts(not_before);
    p.not_after = ts(not_after);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.use_authority_key_identifier_extension = true;
    (p, serial)
}

impl Ca {
    pub fn root(cn: &str, country: &str, not_before: i64, not_after: i64) -> Ca {
        let (params, serial) = ca_params(cn, country, not_before, not_after);
        let key = key();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca {
            params,
            key,
            der,
            serial,
        }
    }

    pub fn root_with(cn: &str, country: &str, f: impl FnOnce(&mut CertificateParams)) -> Ca {
        let (mut params, serial) = ca_params(cn, country, NOW - 3650 * DAY, NOW + 3650 * DAY);
        f(&mut params);
        let key = key();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca {
            params,
            key,
            der,
            serial,
        }
    }

    pub fn intermediate(
        cn: &str,
        country: &str,
        parent: &Ca,
        not_before: i64,
        not_after: i64,
        path_len: Option<u8>,
    ) -> Ca {
        let (mut params, serial) = ca_params(cn, country, not_before, not_after);
        if let Some(n) = path_len {
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(n));
        }
        let key = key();
        let der = params
            .signed_by(&key, &parent.issuer())
            .unwrap()
            .der()
            .to_vec();
        Ca {
            params,
            key,
            der,
            serial,
        }
    }

    /// A sub-CA with a unique name, customised by `f`.
    pub fn intermediate_with(parent: &Ca, f: impl FnOnce(&mut CertificateParams)) -> Ca {
        let cn = format!("Sub CA {}", hex(&next_serial()));
        let (mut params, serial) = ca_params(&cn, "KZ", NOW - 400 * DAY, NOW + 1000 * DAY);
        f(&mut params);
        let key = key();
        let der = params
            .signed_by(&key, &parent.issuer())
            .unwrap()
            .der()
            .to_vec();
        Ca {
            params,
            key,
            der,
            serial,
        }
    }

    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

pub fn leaf_cert(issuer: &Ca, serial: Vec<u8>, f: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("Signer", "KZ");
    if let Some(c) = issuer.params.distinguished_name.get(&DnType::CountryName) {
        p.distinguished_name.push(DnType::CountryName, c.clone());
    }
    p.not_before = ts(NOW - 30 * DAY);
    p.not_after = ts(NOW + 335 * DAY);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.use_authority_key_identifier_extension = true;
    f(&mut p);
    p.signed_by(&key(), &issuer.issuer())
        .unwrap()
        .der()
        .to_vec()
}

pub fn crl_der(issuer: &Ca, revoked: &[&[u8]], this_update: i64, next_update: i64) -> Vec<u8> {
    crl_params(revoked, this_update, next_update)
        .signed_by(&issuer.issuer())
        .unwrap()
        .der()
        .to_vec()
}

/// Signs with the issuer's name and key but no declared key usages, bypassing
/// rcgen's own cRLSign check so webpki's can be tested.
pub fn crl_der_ignoring_ku(
    issuer: &Ca,
    revoked: &[&[u8]],
    this_update: i64,
    next_update: i64,
) -> Vec<u8> {
    let mut params = issuer.params.clone();
    params.key_usages = vec![];
    crl_params(revoked, this_update, next_update)
        .signed_by(&Issuer::from_params(&params, &issuer.key))
        .unwrap()
        .der()
        .to_vec()
}

/// A CRL with an issuing distribution point naming `uri`.
pub fn crl_der_with_idp(
    issuer: &Ca,
    uri: &str,
    scope: Option<rcgen::CrlScope>,
    this_update: i64,
    next_update: i64,
) -> Vec<u8> {
    let mut params = crl_params(&[], this_update, next_update);
    params.issuing_distribution_point = Some(rcgen::CrlIssuingDistributionPoint {
        distribution_point: rcgen::CrlDistributionPoint {
            uris: vec![uri.to_owned()],
        },
        scope,
    });
    params.signed_by(&issuer.issuer()).unwrap().der().to_vec()
}

fn crl_params(
    revoked: &[&[u8]],
    this_update: i64,
    next_update: i64,
) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update: ts(this_update),
        next_update: ts(next_update),
        crl_number: SerialNumber::from_slice(&[(this_update % 100) as u8 + 1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: ts(this_update),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

pub fn pem_cert(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}

pub fn pem(label: &str, der: &[u8]) -> String {
    use std::fmt::Write;
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        let _ = writeln!(out, "{}", std::str::from_utf8(chunk).unwrap());
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
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

pub fn cert_file(cc: &str, name: &str, der: &[u8]) -> TrustFile {
    TrustFile {
        country: cc.parse().unwrap(),
        name: name.into(),
        bytes: pem_cert(der).into_bytes(),
    }
}

pub fn crl_file(cc: &str, name: &str, der: &[u8]) -> TrustFile {
    TrustFile {
        country: cc.parse().unwrap(),
        name: name.into(),
        bytes: der.to_vec(),
    }
}

/// Root → issuing CA → signer, all named after the country.
pub struct Pki {
    pub cc: String,
    pub root: Ca,
    pub int: Ca,
    pub leaf: Vec<u8>,
    pub leaf_serial: Vec<u8>,
}

impl Pki {
    pub fn new(cc: &str) -> Pki {
        let root = Ca::root(
            &format!("{cc} Root CA"),
            cc,
            NOW - 3650 * DAY,
            NOW + 3650 * DAY,
        );
        let int = Ca::intermediate(
            &format!("{cc} Issuing CA"),
            cc,
            &root,
            NOW - 1000 * DAY,
            NOW + 1000 * DAY,
            Some(0),
        );
        let leaf_serial = next_serial();
        let leaf = leaf_cert(&int, leaf_serial.clone(), |_| {});
        Pki {
            cc: cc.to_owned(),
            root,
            int,
            leaf,
            leaf_serial,
        }
    }

    pub fn leaf_with(&self, f: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
        leaf_cert(&self.int, next_serial(), f)
    }

    pub fn root_crl_file(&self, revoked: &[&[u8]]) -> TrustFile {
        crl_file(
            &self.cc,
            "root.crl",
            &crl_der(&self.root, revoked, NOW - DAY, NOW + 30 * DAY),
        )
    }

    pub fn int_crl_file(&self) -> TrustFile {
        crl_file(
            &self.cc,
            "issuing.crl",
            &crl_der(&self.int, &[], NOW - DAY, NOW + 7 * DAY),
        )
    }

    /// The root as anchor, plus empty CRLs from root and issuing CA when `crls`.
    pub fn files(&self, crls: bool) -> Vec<TrustFile> {
        let mut files = vec![cert_file(&self.cc, "root.pem", &self.root.der)];
        if crls {
            files.push(self.root_crl_file(&[]));
            files.push(self.int_crl_file());
        }
        files
    }

    pub fn trust_list(&self, crls: bool) -> TrustList {
        TrustList::from_files(self.files(crls)).unwrap()
    }
}
