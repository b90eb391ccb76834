//! Test-only TSA: rcgen certificates and a hand-built DER token builder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use x509_parser::prelude::FromDer;

// ---------------------------------------------------------------- DER writer

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// DER SET OF: elements sorted.
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    let mut v: Vec<&[u8]> = parts.to_vec();
    v.sort();
    tlv(0x31, &v.concat())
}

pub fn oid(content: &[u8]) -> Vec<u8> {
    tlv(0x06, content)
}

pub fn octets(content: &[u8]) -> Vec<u8> {
    tlv(0x04, content)
}

pub fn int(v: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = v
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.is_empty() || bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

pub fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, inner)
}

pub fn alg(oid_content: &[u8], params: Option<&[u8]>) -> Vec<u8> {
    match params {
        Some(p) => seq(&[&oid(oid_content), p]),
        None => seq(&[&oid(oid_content)]),
    }
}

// ---------------------------------------------------------------- OIDs

pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
pub const MD5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
pub const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
pub const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
pub const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
pub const TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
pub const ATTR_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
pub const ATTR_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
pub const ATTR_SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
pub const ATTR_SIGNING_CERT: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c,
];
pub const ATTR_SIGNING_CERT_V2: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
];
pub const ATTR_ALG_PROTECTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34];
pub const POLICY: &[u8] = &[0x2a, 0x03, 0x04, 0x05]; // 1.2.3.4.5

pub const EKU_TIME_STAMPING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 8];
pub const EKU_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];

// ---------------------------------------------------------------- hashes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl H {
    pub fn oid(self) -> &'static [u8] {
        match self {
            H::Sha1 => SHA1,
            H::Sha256 => SHA256,
            H::Sha384 => SHA384,
            H::Sha512 => SHA512,
        }
    }
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let a = match self {
            H::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            H::Sha256 => &digest::SHA256,
            H::Sha384 => &digest::SHA384,
            H::Sha512 => &digest::SHA512,
        };
        digest::digest(a, data).as_ref().to_vec()
    }
    pub fn len(self) -> u64 {
        self.digest(b"").len() as u64
    }
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    H::Sha256.digest(data)
}

// ---------------------------------------------------------------- PKI

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    EcP256,
    EcP384,
    Rsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eku {
    /// Critical EKU with id-kp-timeStamping (RFC 3161 profile).
    CriticalTimeStamping,
    NonCriticalTimeStamping,
    ServerAuthOnly,
    Absent,
}

#[derive(Clone, Debug)]
pub struct TsaOptions {
    pub key: KeyAlg,
    pub eku: Eku,
    /// Issue the TSA certificate from an intermediate CA (whose EKU, if any, is given).
    pub intermediate: Option<Option<&'static [u64]>>,
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    pub ski: Option<Vec<u8>>,
    pub key_usage: Vec<KeyUsagePurpose>,
}

impl Default for TsaOptions {
    fn default() -> Self {
        Self {
            key: KeyAlg::EcP256,
            eku: Eku::CriticalTimeStamping,
            intermediate: None,
            not_before: (2020, 1, 1),
            not_after: (2040, 1, 1),
            ski: None,
            key_usage: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
        }
    }
}

pub struct Pki {
    pub root_der: Vec<u8>,
    pub intermediate_der: Option<Vec<u8>>,
    pub tsa_der: Vec<u8>,
    pub tsa_key_pkcs8: Vec<u8>,
    pub key: KeyAlg,
}

/// Validation time used by the tests: 2025-06-01T00:00:00Z.
pub const AT: u64 = 1_748_736_000;

fn cached_key(alg: KeyAlg, slot: usize) -> Vec<u8> {
    // RSA key generation is slow; reuse a few keys per algorithm.
    type KeyCache = std::sync::Mutex<std::collections::HashMap<(u8, usize), Vec<u8>>>;
    static KEYS: OnceLock<KeyCache> = OnceLock::new();
    let map = KEYS.get_or_init(Default::default);
    let tag = match alg {
        KeyAlg::EcP256 => 0,
        KeyAlg::EcP384 => 1,
        KeyAlg::Rsa => 2,
    };
    let mut m = map.lock().unwrap();
    m.entry((tag, slot))
        .or_insert_with(|| {
            let a = match alg {
                KeyAlg::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                KeyAlg::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
                KeyAlg::Rsa => &rcgen::PKCS_RSA_SHA256,
            };
            KeyPair::generate_for(a).unwrap().serialize_der()
        })
        .clone()
}

fn key_pair(alg: KeyAlg, slot: usize) -> KeyPair {
    let der = cached_key(alg, slot);
    let a = match alg {
        KeyAlg::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlg::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlg::Rsa => &rcgen::PKCS_RSA_SHA256,
    };
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
    KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, a).unwrap()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "LU");
    d.push(DnType::OrganizationName, "Tamga Test");
    d.push(DnType::CommonName, cn);
    d
}

fn ca_params(cn: &str, eku: Option<&[u64]>) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2019, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    if let Some(eku) = eku {
        let content = seq(&[&oid(&encode_oid(eku))]);
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&[2, 5, 29, 37], content));
    }
    p
}

pub fn encode_oid(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        out.extend(tmp);
    };
    enc(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        enc(*a);
    }
    out
}

/// Builds root (→ optional intermediate) → TSA. `root_slot` picks the root key,
/// so two PKIs with different slots are unrelated.
pub fn pki(opts: &TsaOptions, root_name: &str, root_slot: usize) -> Pki {
    let root_key = key_pair(KeyAlg::EcP256, 100 + root_slot);
    let root_params = ca_params(root_name, None);
    let root_cert = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);

    let (intermediate_der, int_issuer) = match opts.intermediate {
        Some(eku) => {
            let k = key_pair(KeyAlg::EcP256, 200 + root_slot);
            let p = ca_params(&format!("{root_name} Intermediate"), eku);
            let c = p.signed_by(&k, &root_issuer).unwrap();
            (Some(c.der().to_vec()), Some(Issuer::new(p, k)))
        }
        None => (None, None),
    };

    let tsa_key = key_pair(opts.key, root_slot);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn("Tamga Test TSA");
    p.is_ca = IsCa::NoCa;
    p.serial_number = Some(SerialNumber::from(0x00c0_ffee_u64));
    p.key_usages = opts.key_usage.clone();
    p.not_before = rcgen::date_time_ymd(opts.not_before.0, opts.not_before.1, opts.not_before.2);
    p.not_after = rcgen::date_time_ymd(opts.not_after.0, opts.not_after.1, opts.not_after.2);
    let eku = match opts.eku {
        Eku::CriticalTimeStamping => Some((EKU_TIME_STAMPING, true)),
        Eku::NonCriticalTimeStamping => Some((EKU_TIME_STAMPING, false)),
        Eku::ServerAuthOnly => Some((EKU_SERVER_AUTH, true)),
        Eku::Absent => None,
    };
    if let Some((arcs, critical)) = eku {
        let content = seq(&[&oid(&encode_oid(arcs))]);
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], content);
        ext.set_criticality(critical);
        p.custom_extensions.push(ext);
    }
    if let Some(ski) = &opts.ski {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[2, 5, 29, 14],
            octets(ski),
        ));
    }
    let tsa_cert = match &int_issuer {
        Some(i) => p.signed_by(&tsa_key, i).unwrap(),
        None => p.signed_by(&tsa_key, &root_issuer).unwrap(),
    };
    Pki {
        root_der: root_cert.der().to_vec(),
        intermediate_der,
        tsa_der: tsa_cert.der().to_vec(),
        tsa_key_pkcs8: cached_key(opts.key, root_slot),
        key: opts.key,
    }
}

pub fn default_pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| pki(&TsaOptions::default(), "Tamga Test TSA Root", 0))
}

// ---------------------------------------------------------------- token builder

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    /// sha*WithRSAEncryption.
    RsaPkcs1(H),
    /// rsaEncryption as signatureAlgorithm; hash from digestAlgorithm.
    RsaBare,
    RsaPss(H),
    Ecdsa(H),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ess {
    None,
    V1,
    V2,
    V2Sha512,
    V2WithIssuerSerial,
    /// v2 naming a different certificate (hash of the root).
    V2Wrong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidKind {
    IssuerSerial,
    Ski,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub data: Vec<u8>,
    pub imprint_hash: H,
    /// Overrides the imprint hashedMessage.
    pub imprint_override: Option<Vec<u8>>,
    /// Overrides the imprint hash algorithm OID.
    pub imprint_oid: Option<&'static [u8]>,
    /// Replaces the whole TSTInfo (still signed properly).
    pub tst_override: Option<Vec<u8>>,
    /// Overrides the declared signatureAlgorithm (the signature is made as `sig` says).
    pub sig_alg_override: Option<Vec<u8>>,
    pub digest: H,
    pub sig: Option<Sig>,
    pub gen_time: String,
    pub serial: u64,
    pub nonce: Option<u64>,
    pub accuracy: bool,
    pub tsa_name: Option<Vec<u8>>,
    pub critical_extension: bool,
    pub include_certs: bool,
    pub ess: Ess,
    pub sid: SidKind,
    pub content_type_attr: Vec<u8>,
    pub econtent_type: Vec<u8>,
    pub alg_protection: Option<(Vec<u8>, Vec<u8>)>,
    pub two_signer_infos: bool,
    pub flip_signature: bool,
    /// Change the TSTInfo after the message digest was computed.
    pub tamper_tst_after_digest: bool,
    /// Change the TSTInfo and fix the message digest, keeping the old signature.
    pub tamper_tst_and_digest: bool,
}

impl Default for Token {
    fn default() -> Self {
        Self {
            data: b"<ds:SignatureValue>covered</ds:SignatureValue>".to_vec(),
            imprint_hash: H::Sha256,
            imprint_override: None,
            imprint_oid: None,
            sig_alg_override: None,
            tst_override: None,
            digest: H::Sha256,
            sig: None,
            gen_time: "20250315120000Z".into(),
            serial: 0x0102_0304,
            nonce: Some(0x4242),
            accuracy: true,
            tsa_name: None,
            critical_extension: false,
            include_certs: true,
            ess: Ess::V2,
            sid: SidKind::IssuerSerial,
            content_type_attr: TST_INFO.to_vec(),
            econtent_type: TST_INFO.to_vec(),
            alg_protection: None,
            two_signer_infos: false,
            flip_signature: false,
            tamper_tst_after_digest: false,
            tamper_tst_and_digest: false,
        }
    }
}

pub fn default_sig(key: KeyAlg) -> Sig {
    match key {
        KeyAlg::EcP256 => Sig::Ecdsa(H::Sha256),
        KeyAlg::EcP384 => Sig::Ecdsa(H::Sha384),
        KeyAlg::Rsa => Sig::RsaPkcs1(H::Sha256),
    }
}

pub fn sig_alg_der(s: Sig) -> Vec<u8> {
    match s {
        Sig::RsaPkcs1(H::Sha1) => alg(SHA1_WITH_RSA, Some(&null())),
        Sig::RsaPkcs1(H::Sha256) => alg(SHA256_WITH_RSA, Some(&null())),
        Sig::RsaPkcs1(H::Sha384) => alg(SHA384_WITH_RSA, Some(&null())),
        Sig::RsaPkcs1(H::Sha512) => alg(SHA512_WITH_RSA, Some(&null())),
        Sig::RsaBare => alg(RSA_ENCRYPTION, Some(&null())),
        Sig::RsaPss(h) => {
            let hash = alg(h.oid(), Some(&null()));
            let mgf = alg(MGF1, Some(&hash));
            let params = seq(&[
                &explicit(0, &hash),
                &explicit(1, &mgf),
                &explicit(2, &int(h.len())),
            ]);
            alg(RSASSA_PSS, Some(&params))
        }
        Sig::Ecdsa(H::Sha256) => alg(ECDSA_SHA256, None),
        Sig::Ecdsa(H::Sha384) => alg(ECDSA_SHA384, None),
        Sig::Ecdsa(h) => panic!("test builder: no ECDSA with {h:?}"),
    }
}

fn sign(pki: &Pki, s: Sig, digest: H, msg: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match s {
        Sig::RsaPkcs1(_) | Sig::RsaBare | Sig::RsaPss(_) => {
            let kp = RsaKeyPair::from_pkcs8(&pki.tsa_key_pkcs8).unwrap();
            let h = match s {
                Sig::RsaPkcs1(h) | Sig::RsaPss(h) => h,
                _ => digest,
            };
            let enc: &'static dyn sig::RsaEncoding = match (s, h) {
                (Sig::RsaPss(_), H::Sha256) => &sig::RSA_PSS_SHA256,
                (Sig::RsaPss(_), H::Sha384) => &sig::RSA_PSS_SHA384,
                (Sig::RsaPss(_), H::Sha512) => &sig::RSA_PSS_SHA512,
                (_, H::Sha256) => &sig::RSA_PKCS1_SHA256,
                (_, H::Sha384) => &sig::RSA_PKCS1_SHA384,
                (_, H::Sha512) => &sig::RSA_PKCS1_SHA512,
                (_, H::Sha1) => &sig::RSA_PKCS1_SHA256, // wrong on purpose: refused before verification
            };
            let mut out = vec![0u8; kp.public_modulus_len()];
            kp.sign(enc, &rng, msg, &mut out).unwrap();
            out
        }
        Sig::Ecdsa(h) => {
            let a = match (pki.key, h) {
                (KeyAlg::EcP256, H::Sha256) => &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                (KeyAlg::EcP384, H::Sha384) => &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                other => panic!("test builder: no ECDSA signing for {other:?}"),
            };
            let kp = EcdsaKeyPair::from_pkcs8(a, &pki.tsa_key_pkcs8).unwrap();
            kp.sign(&rng, msg).unwrap().as_ref().to_vec()
        }
    }
}

pub struct CertInfo {
    pub issuer_raw: Vec<u8>,
    pub serial_raw: Vec<u8>,
    pub subject_raw: Vec<u8>,
}

pub fn cert_info(der: &[u8]) -> CertInfo {
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    CertInfo {
        issuer_raw: c.issuer().as_raw().to_vec(),
        serial_raw: c.raw_serial().to_vec(),
        subject_raw: c.subject().as_raw().to_vec(),
    }
}

impl Token {
    pub fn tst_info(&self, serial: u64) -> Vec<u8> {
        let imprint = self
            .imprint_override
            .clone()
            .unwrap_or_else(|| self.imprint_hash.digest(&self.data));
        let mut parts: Vec<Vec<u8>> = vec![
            int(1),
            oid(POLICY),
            seq(&[
                &alg(
                    self.imprint_oid.unwrap_or(self.imprint_hash.oid()),
                    Some(&null()),
                ),
                &octets(&imprint),
            ]),
            int(serial),
            tlv(0x18, self.gen_time.as_bytes()),
        ];
        if self.accuracy {
            // seconds 1, millis [0] 500
            parts.push(seq(&[&int(1), &tlv(0x80, &[0x01, 0xf4])]));
        }
        if let Some(n) = self.nonce {
            parts.push(int(n));
        }
        if let Some(name) = &self.tsa_name {
            parts.push(explicit(0, &tlv(0xa4, name)));
        }
        if self.critical_extension {
            let ext = seq(&[
                &oid(&[0x2a, 0x03, 0x09]),
                &[0x01, 0x01, 0xff],
                &octets(&[0x05, 0x00]),
            ]);
            parts.push(tlv(0xa1, &ext));
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        seq(&refs)
    }

    pub fn build(&self, pki: &Pki) -> Vec<u8> {
        let s = self.sig.unwrap_or_else(|| default_sig(pki.key));
        let tsa = cert_info(&pki.tsa_der);
        let tst = self
            .tst_override
            .clone()
            .unwrap_or_else(|| self.tst_info(self.serial));
        let md = self.digest.digest(&tst);

        let mut attrs: Vec<Vec<u8>> = vec![
            seq(&[
                &oid(ATTR_CONTENT_TYPE),
                &set(&[&oid(&self.content_type_attr)]),
            ]),
            seq(&[
                &oid(ATTR_SIGNING_TIME),
                &set(&[&tlv(0x17, b"250315120001Z")]),
            ]),
            seq(&[&oid(ATTR_MESSAGE_DIGEST), &set(&[&octets(&md)])]),
        ];
        let ess_v2 = |hash: Option<H>, cert: &[u8], issuer_serial: bool| {
            let h = hash.unwrap_or(H::Sha256);
            let mut fields: Vec<Vec<u8>> = Vec::new();
            if let Some(h) = hash {
                fields.push(alg(h.oid(), None));
            }
            fields.push(octets(&h.digest(cert)));
            if issuer_serial {
                let names = seq(&[&tlv(0xa4, &tsa.issuer_raw)]);
                fields.push(seq(&[&names, &tlv(0x02, &tsa.serial_raw)]));
            }
            let refs: Vec<&[u8]> = fields.iter().map(|f| f.as_slice()).collect();
            seq(&[&seq(&[&seq(&refs)])])
        };
        match self.ess {
            Ess::None => {}
            Ess::V1 => {
                let v = seq(&[&seq(&[&seq(&[&octets(&H::Sha1.digest(&pki.tsa_der))])])]);
                attrs.push(seq(&[&oid(ATTR_SIGNING_CERT), &set(&[&v])]));
            }
            Ess::V2 => attrs.push(seq(&[
                &oid(ATTR_SIGNING_CERT_V2),
                &set(&[&ess_v2(None, &pki.tsa_der, false)]),
            ])),
            Ess::V2Sha512 => attrs.push(seq(&[
                &oid(ATTR_SIGNING_CERT_V2),
                &set(&[&ess_v2(Some(H::Sha512), &pki.tsa_der, false)]),
            ])),
            Ess::V2WithIssuerSerial => attrs.push(seq(&[
                &oid(ATTR_SIGNING_CERT_V2),
                &set(&[&ess_v2(None, &pki.tsa_der, true)]),
            ])),
            Ess::V2Wrong => attrs.push(seq(&[
                &oid(ATTR_SIGNING_CERT_V2),
                &set(&[&ess_v2(None, &pki.root_der, false)]),
            ])),
        }
        if let Some((d, sg)) = &self.alg_protection {
            let v = seq(&[d, &tlv(0xa1, &sg[2..])]);
            attrs.push(seq(&[&oid(ATTR_ALG_PROTECTION), &set(&[&v])]));
        }
        let attr_refs: Vec<&[u8]> = attrs.iter().map(|a| a.as_slice()).collect();
        let signed_attrs = set(&attr_refs);
        let mut signature = sign(pki, s, self.digest, &signed_attrs);
        if self.flip_signature {
            let n = signature.len() / 2;
            signature[n] ^= 0x01;
        }

        let mut econtent = tst.clone();
        if self.tamper_tst_after_digest || self.tamper_tst_and_digest {
            econtent = self.tst_info(self.serial + 1);
        }
        let mut signed_attrs_implicit = signed_attrs.clone();
        signed_attrs_implicit[0] = 0xa0;
        if self.tamper_tst_and_digest {
            // Recompute the message digest for the tampered content, keep the old signature.
            attrs[2] = seq(&[
                &oid(ATTR_MESSAGE_DIGEST),
                &set(&[&octets(&self.digest.digest(&econtent))]),
            ]);
            let attr_refs: Vec<&[u8]> = attrs.iter().map(|a| a.as_slice()).collect();
            signed_attrs_implicit = set(&attr_refs);
            signed_attrs_implicit[0] = 0xa0;
        }

        let sid = match self.sid {
            SidKind::IssuerSerial => seq(&[&tsa.issuer_raw, &tlv(0x02, &tsa.serial_raw)]),
            SidKind::Ski => tlv(0x80, self.ski_of(pki)),
        };
        let version = match self.sid {
            SidKind::IssuerSerial => int(1),
            SidKind::Ski => int(3),
        };
        let signer_info = seq(&[
            &version,
            &sid,
            &alg(self.digest.oid(), Some(&null())),
            &signed_attrs_implicit,
            &self
                .sig_alg_override
                .clone()
                .unwrap_or_else(|| sig_alg_der(s)),
            &octets(&signature),
        ]);
        let signer_infos = if self.two_signer_infos {
            set(&[&signer_info, &signer_info])
        } else {
            set(&[&signer_info])
        };
        let mut sd_parts: Vec<Vec<u8>> = vec![
            int(3),
            set(&[&alg(self.digest.oid(), Some(&null()))]),
            seq(&[&oid(&self.econtent_type), &explicit(0, &octets(&econtent))]),
        ];
        if self.include_certs {
            let mut certs: Vec<&[u8]> = vec![&pki.tsa_der];
            if let Some(i) = &pki.intermediate_der {
                certs.push(i);
            }
            certs.push(&pki.root_der);
            sd_parts.push(tlv(0xa0, &certs.concat()));
        }
        sd_parts.push(signer_infos);
        let refs: Vec<&[u8]> = sd_parts.iter().map(|p| p.as_slice()).collect();
        let signed_data = seq(&refs);
        seq(&[&oid(SIGNED_DATA), &explicit(0, &signed_data)])
    }

    fn ski_of<'p>(&self, pki: &'p Pki) -> &'p [u8] {
        let (_, c) = x509_parser::certificate::X509Certificate::from_der(&pki.tsa_der).unwrap();
        let kid = c
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .expect("TSA certificate has no SKI");
        let pos = pki
            .tsa_der
            .windows(kid.len())
            .position(|w| w == kid.as_slice())
            .unwrap();
        &pki.tsa_der[pos..pos + kid.len()]
    }
}
