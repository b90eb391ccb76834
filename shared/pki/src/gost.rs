//! The GOST flavour of the demo PKI (Kazakhstan): a GOST R 34.10-2015
//! 512-bit root CA and issuing CA on TC26-512-A with Streebog-512, GOST-signed
//! CRLs, and GOST brokers, beside the country's RSA/ECDSA hierarchy.
//!
//! rcgen cannot sign with GOST, so certificates and CRLs are written here as
//! DER by hand (RFC 5280 profile, RFC 4491 / RFC 9215 for the GOST parts:
//! TC26 OIDs, the signature as s‖r big-endian, the key as X‖Y
//! little-endian in an OCTET STRING), signed with `tamga-gost`'s demo signer
//! (variable time, demo keys only). The TC26 OIDs rather than the NCA's
//! Kazakh aliases are used so that OpenSSL's GOST engine, the independent
//! check of this material, can verify it; Tamga accepts both.

use aws_lc_rs::digest;
use base64::Engine;
use rcgen::SerialNumber;
use tamga_gost::demo::DemoSecretKey;
use tamga_gost::der::{oid, tlv};
use tamga_gost::ParamSet;
use time::{Duration, OffsetDateTime};

use crate::{Clock, Issued, KeyAlgorithm, PkiError, Serials, YEAR};

/// The GOST brokers of the flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GostBrokerKind {
    /// Valid, GOST R 34.10-2015 512-bit (TC26-512-A): what NCA RK issues today.
    Gost512,
    /// Valid, GOST R 34.10-2015 256-bit on TC26-256-A (the cofactor-4 curve).
    Gost256,
    /// 512-bit, revoked (keyCompromise) in the GOST issuing CA's CRL.
    Revoked,
}

impl GostBrokerKind {
    pub const ALL: [GostBrokerKind; 3] = [Self::Gost512, Self::Gost256, Self::Revoked];

    /// File stem: `broker-gost`, `broker-gost-256`, `broker-gost-revoked`.
    pub fn stem(self) -> &'static str {
        match self {
            Self::Gost512 => "broker-gost",
            Self::Gost256 => "broker-gost-256",
            Self::Revoked => "broker-gost-revoked",
        }
    }

    fn param_set(self) -> ParamSet {
        match self {
            Self::Gost256 => ParamSet::Tc26_256A,
            Self::Gost512 | Self::Revoked => ParamSet::Tc26_512A,
        }
    }
}

/// A GOST broker certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GostBroker {
    pub kind: GostBrokerKind,
    pub issued: Issued,
}

/// A country's GOST hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GostPki {
    /// Self-signed GOST-512 root CA (a second trust anchor of the country).
    pub root: Issued,
    /// GOST-512 issuing CA, signed by the root.
    pub issuing: Issued,
    pub root_crl_pem: String,
    pub root_crl_der: Vec<u8>,
    /// Revokes [`GostBrokerKind::Revoked`].
    pub issuing_crl_pem: String,
    pub issuing_crl_der: Vec<u8>,
    /// One per [`GostBrokerKind::ALL`], in that order.
    pub brokers: Vec<GostBroker>,
}

impl GostPki {
    pub fn broker(&self, kind: GostBrokerKind) -> Option<&Issued> {
        self.brokers
            .iter()
            .find(|b| b.kind == kind)
            .map(|b| &b.issued)
    }
}

// ------------------------------------------------------------------ DER

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude octets.
fn uint(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(bytes);
    tlv(0x03, &body)
}

/// UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
fn time_der(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (y, mo, d, h, mi, s) = (
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(0x17, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(0x18, text.as_bytes())
    }
}

fn name(country: &str, org: &str, cn: &str) -> Vec<u8> {
    let rdn = |attr: &str, tag: u8, value: &str| {
        tlv(0x31, &seq(&[&oid(attr), &tlv(tag, value.as_bytes())]))
    };
    seq(&[
        &rdn("2.5.4.6", 0x13, country),
        &rdn("2.5.4.10", 0x0c, org),
        &rdn("2.5.4.3", 0x0c, cn),
    ])
}

fn extension(id: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let crit = if critical {
        vec![0x01, 0x01, 0xff]
    } else {
        Vec::new()
    };
    seq(&[&oid(id), &crit, &tlv(0x04, value)])
}

/// keyUsage bits, numbered as in RFC 5280 (0 = digitalSignature).
fn key_usage(bits: &[u8]) -> Vec<u8> {
    let mut v = [0u8; 2];
    for b in bits {
        v[usize::from(b / 8)] |= 0x80 >> (b % 8);
    }
    let used = if v[1] == 0 { 1 } else { 2 };
    let last = v[used - 1];
    let unused = last.trailing_zeros().min(7) as u8;
    let mut body = vec![unused];
    body.extend_from_slice(&v[..used]);
    tlv(0x03, &body)
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey BIT STRING's value.
fn key_id(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = |e: tamga_gost::GostError| PkiError::Reparse(e.to_string());
    let (_, body, _) = tamga_gost::der::read_tlv(spki).map_err(bad)?;
    let (_, _alg, rest) = tamga_gost::der::read_tlv(body).map_err(bad)?;
    let (_, bits, _) = tamga_gost::der::read_tlv(rest).map_err(bad)?;
    let d = digest::digest(&digest::SHA256, bits.get(1..).unwrap_or_default());
    Ok(d.as_ref()[..20].to_vec())
}

/// id-tc26-signwithdigest-gost3410-12-512 / -256, parameters absent (RFC 9215).
fn signature_algorithm(issuer: &DemoSecretKey) -> Vec<u8> {
    let id = if issuer.param_set().bits() == 512 {
        "1.2.643.7.1.1.3.3"
    } else {
        "1.2.643.7.1.1.3.2"
    };
    seq(&[&oid(id)])
}

/// Signs `tbs` and wraps it as Certificate / CertificateList.
fn signed(tbs: &[u8], issuer: &DemoSecretKey) -> Result<Vec<u8>, PkiError> {
    let sig = issuer
        .sign_message(tbs)
        .map_err(|e| PkiError::Reparse(e.to_string()))?;
    let value = sig.to_rfc4491(issuer.param_set());
    Ok(seq(&[
        tbs,
        &signature_algorithm(issuer),
        &bit_string(&value),
    ]))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// ---------------------------------------------------------- certificates

struct Party {
    key: DemoSecretKey,
    name: Vec<u8>,
    key_id: Vec<u8>,
}

struct CertSpec<'a> {
    serial: &'a SerialNumber,
    subject: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// None: end entity (cA FALSE); Some(n): CA with pathLenConstraint n.
    ca_path_len: Option<u8>,
    key_usage: &'a [u8],
}

fn certificate(
    spec: &CertSpec<'_>,
    subject_key: &DemoSecretKey,
    issuer: Option<&Party>,
) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let spki = subject_key
        .spki_der()
        .map_err(|e| PkiError::Reparse(e.to_string()))?;
    let ski = key_id(&spki)?;
    let (issuer_name, issuer_key, aki) = match issuer {
        Some(p) => (p.name.clone(), &p.key, p.key_id.clone()),
        None => (spec.subject.clone(), subject_key, ski.clone()),
    };
    let basic = match spec.ca_path_len {
        Some(n) => seq(&[&[0x01, 0x01, 0xff], &tlv(0x02, &[n])]),
        None => seq(&[]),
    };
    let extensions = [
        extension("2.5.29.19", true, &basic),
        extension("2.5.29.15", true, &key_usage(spec.key_usage)),
        extension("2.5.29.14", false, &tlv(0x04, &ski)),
        extension("2.5.29.35", false, &seq(&[&tlv(0x80, &aki)])),
    ]
    .concat();
    let tbs = seq(&[
        &tlv(0xa0, &[0x02, 0x01, 0x02]),
        &uint(&spec.serial.to_bytes()),
        &signature_algorithm(issuer_key),
        &issuer_name,
        &seq(&[&time_der(spec.not_before), &time_der(spec.not_after)]),
        &spec.subject,
        &spki,
        &tlv(0xa3, &tlv(0x30, &extensions)),
    ]);
    Ok((signed(&tbs, issuer_key)?, ski))
}

fn issued(
    cert_der: Vec<u8>,
    key: &DemoSecretKey,
    algorithm: KeyAlgorithm,
) -> Result<Issued, PkiError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| PkiError::Reparse(e.to_string()))?;
    let key_der = key
        .to_pkcs8_der()
        .map_err(|e| PkiError::Reparse(e.to_string()))?;
    Ok(Issued {
        subject: parsed.subject().to_string(),
        serial_hex: parsed
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        algorithm,
        not_before_unix: parsed.validity().not_before.timestamp(),
        not_after_unix: parsed.validity().not_after.timestamp(),
        cert_pem: pem("CERTIFICATE", &cert_der),
        cert_der,
        key_pkcs8_pem: pem("PRIVATE KEY", &key_der),
        key_pkcs8_der: key_der,
    })
}

fn algorithm_of(set: ParamSet) -> KeyAlgorithm {
    if set.bits() == 512 {
        KeyAlgorithm::Gost2012_512
    } else {
        KeyAlgorithm::Gost2012_256
    }
}

fn new_key(set: ParamSet) -> Result<DemoSecretKey, PkiError> {
    DemoSecretKey::generate(set).map_err(|_| PkiError::Random)
}

/// A v2 CRL with AKI and CRL number, revoking `revoked` (keyCompromise).
fn crl(
    issuer: &Party,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    number: u64,
    revoked: &[SerialNumber],
) -> Result<Vec<u8>, PkiError> {
    let entries: Vec<Vec<u8>> = revoked
        .iter()
        .map(|serial| {
            // reasonCode keyCompromise (1): ENUMERATED.
            let reason = extension("2.5.29.21", false, &[0x0a, 0x01, 0x01]);
            seq(&[
                &uint(&serial.to_bytes()),
                &time_der(this_update),
                &seq(&[&reason]),
            ])
        })
        .collect();
    let revoked_certs = if entries.is_empty() {
        Vec::new()
    } else {
        tlv(0x30, &entries.concat())
    };
    let extensions = [
        extension("2.5.29.35", false, &seq(&[&tlv(0x80, &issuer.key_id)])),
        extension("2.5.29.20", false, &uint(&number.to_be_bytes())),
    ]
    .concat();
    let tbs = seq(&[
        &[0x02, 0x01, 0x01],
        &signature_algorithm(&issuer.key),
        &issuer.name,
        &time_der(this_update),
        &time_der(next_update),
        &revoked_certs,
        &tlv(0xa0, &tlv(0x30, &extensions)),
    ]);
    signed(&tbs, &issuer.key)
}

const KEY_CERT_SIGN: u8 = 5;
const CRL_SIGN: u8 = 6;
const DIGITAL_SIGNATURE: u8 = 0;
const NON_REPUDIATION: u8 = 1;

pub(crate) fn generate_gost(
    cc: &str,
    clock: &Clock,
    serials: &mut Serials,
) -> Result<GostPki, PkiError> {
    let day_ago = clock.offset(-Duration::days(1))?;
    let hour_ago = clock.offset(-Duration::hours(1))?;
    let org = format!("{cc} Demo PKI");

    let root_key = new_key(ParamSet::Tc26_512A)?;
    let root_name = name(cc, &org, &format!("{cc} Demo GOST Root CA"));
    let (root_der, root_ski) = certificate(
        &CertSpec {
            serial: &serials.next()?,
            subject: root_name.clone(),
            not_before: day_ago,
            not_after: clock.offset(10 * YEAR)?,
            ca_path_len: Some(1),
            key_usage: &[KEY_CERT_SIGN, CRL_SIGN],
        },
        &root_key,
        None,
    )?;
    let root_issued = issued(root_der, &root_key, KeyAlgorithm::Gost2012_512)?;
    let root = Party {
        key: root_key,
        name: root_name,
        key_id: root_ski,
    };

    let issuing_key = new_key(ParamSet::Tc26_512A)?;
    let issuing_name = name(cc, &org, &format!("{cc} Demo GOST Issuing CA"));
    let (issuing_der, issuing_ski) = certificate(
        &CertSpec {
            serial: &serials.next()?,
            subject: issuing_name.clone(),
            not_before: day_ago,
            not_after: clock.offset(5 * YEAR)?,
            ca_path_len: Some(0),
            key_usage: &[KEY_CERT_SIGN, CRL_SIGN],
        },
        &issuing_key,
        Some(&root),
    )?;
    let issuing_issued = issued(issuing_der, &issuing_key, KeyAlgorithm::Gost2012_512)?;
    let issuing = Party {
        key: issuing_key,
        name: issuing_name,
        key_id: issuing_ski,
    };

    let mut brokers = Vec::new();
    let mut revoked = Vec::new();
    for kind in GostBrokerKind::ALL {
        let serial = serials.next()?;
        if kind == GostBrokerKind::Revoked {
            revoked.push(serial.clone());
        }
        let key = new_key(kind.param_set())?;
        let (der, _) = certificate(
            &CertSpec {
                serial: &serial,
                subject: name(
                    cc,
                    &format!("{cc} Customs Broker LLC"),
                    &format!("{cc} Broker {}", kind.stem().trim_start_matches("broker-")),
                ),
                not_before: day_ago,
                not_after: clock.offset(2 * YEAR)?,
                ca_path_len: None,
                key_usage: &[DIGITAL_SIGNATURE, NON_REPUDIATION],
            },
            &key,
            Some(&issuing),
        )?;
        brokers.push(GostBroker {
            kind,
            issued: issued(der, &key, algorithm_of(kind.param_set()))?,
        });
    }

    let next_update = clock.offset(Duration::days(30))?;
    let root_crl = crl(&root, hour_ago, next_update, clock.crl_number, &[])?;
    let issuing_crl = crl(&issuing, hour_ago, next_update, clock.crl_number, &revoked)?;
    Ok(GostPki {
        root: root_issued,
        issuing: issuing_issued,
        root_crl_pem: pem("X509 CRL", &root_crl),
        root_crl_der: root_crl,
        issuing_crl_pem: pem("X509 CRL", &issuing_crl),
        issuing_crl_der: issuing_crl,
        brokers,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn der_helpers() {
        assert_eq!(uint(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0x00, 0x00]), vec![0x02, 0x01, 0x00]);
        assert_eq!(uint(&[0x7f]), vec![0x02, 0x01, 0x7f]);
        // keyCertSign | cRLSign = bits 5, 6: 0x06 with one unused bit.
        assert_eq!(key_usage(&[5, 6]), vec![0x03, 0x02, 0x01, 0x06]);
        // digitalSignature | nonRepudiation: 0xc0, six unused bits.
        assert_eq!(key_usage(&[0, 1]), vec![0x03, 0x02, 0x06, 0xc0]);
        assert_eq!(oid("2.5.29.19"), vec![0x06, 0x03, 0x55, 0x1d, 0x13]);
        let t = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        assert_eq!(time_der(t)[0], 0x17);
        assert_eq!(&time_der(t)[2..], b"250615150640Z");
    }
}
