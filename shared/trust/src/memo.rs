//! A memo of successful certificate and CRL signature checks.
//!
//! Every declaration from a country carries the same issuing-CA certificate,
//! checked against the same root, and every path validation checks the same
//! two CRL signatures: four ECDSA verifications (two of them P-384), which
//! were most of the cost of verifying a 25 KB declaration. A signature check
//! is a pure function of (algorithm, public key, message, signature), so its
//! success can be remembered: webpki still asks for every check, in the same
//! order, and gets the same answer.
//!
//! Only successes are stored, keyed by SHA-256 over all four inputs (each
//! length-prefixed), so a failure is always recomputed and an entry can only
//! come from a check that really passed. The memo is process-wide (the
//! inputs, not the trust list, decide the answer) and bounded: when full it
//! is emptied, which costs only recomputation.
//!
//! A document can get its own checks remembered (say, an end-entity
//! certificate signed by an intermediate the attacker made up): that is
//! harmless, since the remembered fact, "this key signed these bytes", is
//! true whoever made the key, and trust still needs the whole path to reach
//! an anchor. The worst a flood of such documents can do is empty the memo
//! and make everyone's checks cold again.

use std::collections::HashSet;
use std::sync::Mutex;

use aws_lc_rs::digest;
use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// Most remembered checks; at two or three per CA and one per signer
/// certificate, this covers thousands of signers.
const CAPACITY: usize = 8192;

static VERIFIED: Mutex<Option<HashSet<[u8; 32]>>> = Mutex::new(None);

/// Forgets every remembered check, so the next path validations verify
/// every signature again (benchmarks measure that "cold" cost this way).
pub fn forget_verified_signatures() {
    let mut guard = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    *guard = None;
}

/// A webpki signature algorithm whose successes are remembered.
///
/// `id` tells apart algorithms with the same algorithm identifiers but
/// different rules (e.g. RSA-2048+ and RSA-3072+ with SHA-384).
#[derive(Debug)]
pub(crate) struct Memoized {
    pub(crate) id: u8,
    pub(crate) inner: &'static dyn SignatureVerificationAlgorithm,
}

fn fingerprint(id: u8, public_key: &[u8], message: &[u8], signature: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"tamga-trust signature memo v1");
    ctx.update(&[id]);
    for part in [public_key, message, signature] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn known(key: &[u8; 32]) -> bool {
    let guard = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().is_some_and(|set| set.contains(key))
}

fn remember(key: [u8; 32]) {
    let mut guard = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    if set.len() >= CAPACITY {
        set.clear();
    }
    set.insert(key);
}

impl SignatureVerificationAlgorithm for Memoized {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = fingerprint(self.id, public_key, message, signature);
        if known(&key) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        remember(key);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webpki::aws_lc_rs as algs;

    #[test]
    fn failures_are_not_remembered_and_inputs_are_all_keyed() {
        let alg = Memoized {
            id: 0,
            inner: algs::ED25519,
        };
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        let pk = aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec();
        let sig = pair.sign(b"message").as_ref().to_vec();
        assert!(alg.verify_signature(&pk, b"message", &sig).is_ok());
        let key = fingerprint(0, &pk, b"message", &sig);
        assert!(known(&key));
        // Remembered now; any other input is still checked for real.
        assert!(alg.verify_signature(&pk, b"message", &sig).is_ok());
        assert!(alg.verify_signature(&pk, b"messagf", &sig).is_err());
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(alg.verify_signature(&pk, b"message", &bad).is_err());
        assert!(alg.verify_signature(&pk, b"message", &bad).is_err());
        let other = Memoized {
            id: 1,
            inner: algs::ED25519,
        };
        assert!(other.verify_signature(&pk, b"message", &sig).is_ok());
        assert_ne!(
            fingerprint(0, &pk, b"message", &sig),
            fingerprint(1, &pk, b"message", &sig)
        );
        forget_verified_signatures();
        assert!(!known(&key));
        // Length prefixes: moving bytes between inputs changes the key.
        assert_ne!(
            fingerprint(0, b"ab", b"c", b""),
            fingerprint(0, b"a", b"bc", b"")
        );
    }
}
