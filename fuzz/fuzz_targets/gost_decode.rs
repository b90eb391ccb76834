//! Fuzzes GOST key and signature decoding (`tamga_gost`): SubjectPublicKeyInfo,
//! the X‖Y key octets, the three signature codecs and webpki's entry point.
//! Every input is refused with an error or decodes to values that re-encode
//! to the same octets; verification of whatever decodes never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::SignatureVerificationAlgorithm;
use tamga_gost::{der, verify_message, ParamSet, PublicKey, Signature};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let _ = der::public_key_from_spki(rest);
    let set = ParamSet::ALL[usize::from(selector) % ParamSet::ALL.len()];
    let n = set.size();
    let (key_octets, rest) = rest.split_at(rest.len().min(2 * n));
    let (sig_octets, message) = rest.split_at(rest.len().min(2 * n));
    let key = PublicKey::from_xy_le(set, key_octets);
    if let Ok(k) = &key {
        assert_eq!(k.to_xy_le(), key_octets);
    }
    for (sig, back) in [
        (
            Signature::from_kz_xml(sig_octets, set),
            Signature::to_kz_xml as fn(&Signature, ParamSet) -> Vec<u8>,
        ),
        (
            Signature::from_rfc4491(sig_octets, set),
            Signature::to_rfc4491,
        ),
        (
            Signature::from_cryptopro_xml(sig_octets, set),
            Signature::to_rfc4491,
        ),
    ] {
        if let Ok(sig) = sig {
            assert_eq!(back(&sig, set), sig_octets);
            if let Ok(k) = &key {
                let _ = verify_message(k, message, &sig);
            }
        }
    }
    // webpki's view: subjectPublicKey bits, message, signature.
    let algs = tamga_gost::webpki::certificate_algorithms();
    let alg = &algs[usize::from(selector) % algs.len()];
    let mut spk = vec![0x04, u8::try_from(key_octets.len()).unwrap_or(0)];
    spk.extend_from_slice(key_octets);
    let _ = alg.verify_signature(&spk, message, sig_octets);
});
