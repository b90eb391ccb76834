//! GOST signatures on certificates and CRLs, for rustls-webpki's path
//! building (`rustls_pki_types::SignatureVerificationAlgorithm`).
//!
//! webpki picks an algorithm by comparing the issuer's SubjectPublicKeyInfo
//! algorithm identifier and the certificate's signature algorithm
//! identifier byte for byte, so there is one entry per (key OID, parameter
//! set OID, digest OID present or not, signature OID, NULL parameters or
//! not) that producers emit: the TC26/CryptoPro OIDs (RFC 9215) and the
//! Kazakh NCA ones. The signature octets are RFC 4491's s‖r big-endian for
//! both families (the NCA's certificates are made by a BouncyCastle fork,
//! which writes the CMS form).

use crate::der::{oid, tlv};
use std::sync::OnceLock;

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

use crate::params::OIDS;
use crate::{der, verify_message, ParamSet, PublicKey, Signature};

/// One accepted combination of identifiers.
#[derive(Debug)]
pub struct CertificateAlgorithm {
    set: ParamSet,
    key_alg_id: &'static [u8],
    sig_alg_id: &'static [u8],
}

impl CertificateAlgorithm {
    pub fn param_set(&self) -> ParamSet {
        self.set
    }
}

impl SignatureVerificationAlgorithm for CertificateAlgorithm {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let octets = der::key_octets(public_key).map_err(|_| InvalidSignature)?;
        let key = PublicKey::from_xy_le(self.set, octets).map_err(|_| InvalidSignature)?;
        let sig = Signature::from_rfc4491(signature, self.set).map_err(|_| InvalidSignature)?;
        verify_message(&key, message, &sig).map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        AlgorithmIdentifier::from_slice(self.key_alg_id)
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        AlgorithmIdentifier::from_slice(self.sig_alg_id)
    }
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    // Built once per process (see `certificate_algorithms`).
    Box::leak(v.into_boxed_slice())
}

/// Every GOST combination accepted on certificates and CRLs.
pub fn certificate_algorithms() -> &'static [CertificateAlgorithm] {
    static ALL: OnceLock<Vec<CertificateAlgorithm>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = Vec::new();
        for (param_oid, set) in OIDS {
            if matches!(set, ParamSet::Test256 | ParamSet::Test512) {
                continue;
            }
            let kazakh = param_oid.starts_with("1.2.398.");
            let big = set.bits() == 512;
            let (key_oid, digest_oid) = match (kazakh, big) {
                (true, true) => ("1.2.398.3.10.1.1.2.2", "1.2.398.3.10.1.3.3"),
                (true, false) => ("1.2.398.3.10.1.1.2.1", "1.2.398.3.10.1.3.2"),
                (false, true) => ("1.2.643.7.1.1.1.2", "1.2.643.7.1.1.2.3"),
                (false, false) => ("1.2.643.7.1.1.1.1", "1.2.643.7.1.1.2.2"),
            };
            let sig_oids: [&str; 2] = if big {
                ["1.2.643.7.1.1.3.3", "1.2.398.3.10.1.1.2.3.2"]
            } else {
                ["1.2.643.7.1.1.3.2", "1.2.398.3.10.1.1.2.3.1"]
            };
            for with_digest in [true, false] {
                let mut params = oid(param_oid);
                if with_digest {
                    params.extend(oid(digest_oid));
                }
                let mut key_id = oid(key_oid);
                key_id.extend(tlv(0x30, &params));
                let key_id = leak(key_id);
                for sig_oid in sig_oids {
                    for null in [false, true] {
                        let mut sig_id = oid(sig_oid);
                        if null {
                            sig_id.extend([0x05, 0x00]);
                        }
                        out.push(CertificateAlgorithm {
                            set: *set,
                            key_alg_id: key_id,
                            sig_alg_id: leak(sig_id),
                        });
                    }
                }
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_match_the_kazakh_certificate() {
        // From the NCA test certificate: SPKI algorithm and signature algorithm
        // (contents of the AlgorithmIdentifier SEQUENCEs).
        let key = hex_bytes(
            "06092a830e030a01010202\
             3016060a2a830e030a0101020201\
             06082a830e030a010303",
        );
        let sig = hex_bytes("060a2a830e030a01010203020500");
        assert!(certificate_algorithms().iter().any(|a| {
            a.public_key_alg_id().as_ref() == key.as_slice()
                && a.signature_alg_id().as_ref() == sig.as_slice()
                && a.param_set() == ParamSet::Tc26_512A
        }));
        assert!(certificate_algorithms().len() > 50);
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }
}
