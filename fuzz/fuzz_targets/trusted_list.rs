//! Fuzzes the ETSI TS 119 612 trusted-list loader: parsing
//! (`parse_trusted_list`), acceptance through Tamga's signature engine
//! (`accept_trusted_list` with `TlSignatureEngine`; nothing is pinned, so
//! nothing may ever be accepted), and mapping a parsed list to anchors
//! (`TrustList::from_trusted_lists`). Every input is an error or a value,
//! never a panic, and an unsigned or self-signed input is never trusted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_policy::TlSignatureEngine;
use tamga_trust::tsl::{accept_trusted_list, parse_trusted_list, AcceptedList, TlCheck};
use tamga_trust::{CertSummary, TrustList};

fuzz_target!(|data: &[u8]| {
    let accepted = accept_trusted_list(&TlCheck {
        bytes: data,
        source: "fuzz",
        pinned_signers: &[],
        expected_territory: None,
        last_accepted_sequence: None,
        at_unix: 1_750_000_000,
        signature: &TlSignatureEngine::default(),
    });
    assert!(
        accepted.is_err(),
        "nothing is pinned, nothing can be accepted"
    );
    if let Ok(list) = parse_trusted_list(data) {
        // Pretend it was accepted, to exercise the mapping to anchors.
        let signer = CertSummary {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            country: None,
            not_before: 0,
            not_after: 0,
            sha256: String::new(),
        };
        let trust = TrustList::from_trusted_lists(
            vec![AcceptedList {
                list,
                signer,
                source: "fuzz".into(),
                sha256: String::new(),
            }],
            Vec::new(),
            Vec::new(),
        );
        let _ = trust.faults();
    }
});
