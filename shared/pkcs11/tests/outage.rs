//! An HSM outage: the token disappears (SoftHSM2's token directory moved
//! away, as when a network HSM or its daemon restarts), signing fails with
//! an error (never a panic, never a wrong signature), and once the token is
//! back the same signer signs again — it re-opens its session and logs in
//! again instead of staying broken until the process restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tamga_dsig::{verify_signature, Signer};
use tamga_pkcs11::softhsm::{KeySpec, SoftHsm};
use tamga_pkcs11::Pkcs11Signer;

const MESSAGE: &[u8] = b"<ds:SignedInfo>canonical octets</ds:SignedInfo>";

#[test]
fn signing_fails_while_the_token_is_gone_and_recovers_when_it_is_back() {
    let hsm = SoftHsm::shared_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    hsm.init_token("outage", "so-pin-5521", "user-pin-5521")
        .unwrap();
    hsm.generate_key_pair("outage", "user-pin-5521", KeySpec::EcP256, "seal", &[7])
        .unwrap();
    let signer = Pkcs11Signer::open_uri(&hsm.uri("outage", "seal", "user-pin-5521")).unwrap();
    let check = |sig: &[u8]| {
        verify_signature(&signer.algorithm(), &signer.public_key(), MESSAGE, sig)
            .expect("the token's signature verifies")
    };
    check(&signer.sign(MESSAGE).unwrap());

    let tokens = hsm.dir().join("tokens");
    let away = hsm.dir().join("tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    let during = signer.sign(MESSAGE);
    eprintln!("while the token is gone: {during:?}");
    assert!(during.is_err(), "signed without the token: {during:?}");

    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    let after = signer.sign(MESSAGE);
    eprintln!("once it is back: {:?}", after.as_ref().map(Vec::len));
    check(&after.unwrap());
}
