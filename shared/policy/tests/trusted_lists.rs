#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! ETSI TS 119 612 trusted lists that Tamga builds and signs itself,
//! accepted (or refused) by Tamga's own engine, then used for path
//! validation: signature tampered, signer not pinned, sequence rollback,
//! NextUpdate passed, service withdrawn before / after the signing time,
//! duplicate country, and a LOTL naming a country's list and its signer.

use std::sync::OnceLock;

use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, CountryPki, DemoPki, DemoPkiOptions};
use tamga_policy::{verify_document, Policy, TlSignatureEngine, VerifyRequest};
use tamga_trust::tsl::{
    accept_trusted_list, build_trusted_list, parse_trusted_list, AcceptedList, StatusPeriod,
    TlBuild, TlCheck, TlError, TlPointer, TlService, STATUS_GRANTED, STATUS_WITHDRAWN, SVC_CA_PKC,
    SVC_CA_QC,
};
use tamga_trust::{
    CountryCode, FaultKind, PathError, PathRequest, TrustFault, TrustFile, TrustList, TrustSource,
};

/// Fixed time: tests never read the clock.
const T0: i64 = 1_750_000_000;
const DAY: i64 = 86_400;

fn pki() -> &'static DemoPki {
    static P: OnceLock<DemoPki> = OnceLock::new();
    P.get_or_init(|| tamga_pki::generate(&DemoPkiOptions::new(["KZ", "AZ"], T0)).unwrap())
}

fn country(cc: &str) -> &'static CountryPki {
    pki().country(cc).unwrap()
}

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn granted_from(t: i64) -> Vec<StatusPeriod> {
    vec![StatusPeriod {
        status: STATUS_GRANTED.into(),
        from_unix: t,
    }]
}

fn ca_service(c: &CountryPki, statuses: Vec<StatusPeriod>) -> TlService {
    TlService {
        provider: format!("{} Demo PKI", c.country),
        name: format!("{} Demo Root CA", c.country),
        service_type: SVC_CA_PKC.into(),
        certificates: vec![c.root.cert_der.clone()],
        statuses,
    }
}

/// The country's list, signed by its customs authority's seal.
fn signed_list(
    territory: &str,
    sequence: u64,
    services: &[TlService],
    signer: &CountryPki,
) -> Vec<u8> {
    let xml = build_trusted_list(&TlBuild {
        territory,
        operator: &format!("{territory} Customs Trust Operator"),
        sequence,
        issued_unix: T0,
        next_update_unix: T0 + 180 * DAY,
        services,
        pointers: &[],
    })
    .unwrap();
    sign(xml.as_bytes(), signer)
}

fn sign(xml: &[u8], signer: &CountryPki) -> Vec<u8> {
    sign_enveloped(
        xml,
        &SigningKey::from_pkcs8_pem(signer.authority.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![signer.authority.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(T0).unwrap(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn accept(bytes: &[u8], pinned: &[Vec<u8>], last: Option<u64>) -> Result<AcceptedList, TlError> {
    accept_trusted_list(&TlCheck {
        bytes,
        source: "test-tl.xml",
        pinned_signers: pinned,
        expected_territory: None,
        last_accepted_sequence: last,
        at_unix: T0,
        signature: &TlSignatureEngine::default(),
    })
}

fn pinned(c: &CountryPki) -> Vec<Vec<u8>> {
    vec![c.authority.cert_der.clone()]
}

fn crl_files(c: &CountryPki) -> Vec<TrustFile> {
    vec![
        TrustFile {
            country: cc(&c.country),
            name: "root-ca.crl".into(),
            bytes: c.root_crl_der.clone(),
        },
        TrustFile {
            country: cc(&c.country),
            name: "issuing-ca.crl".into(),
            bytes: c.issuing_crl_der.clone(),
        },
    ]
}

fn path(list: &TrustList, c: &CountryPki, at: i64) -> Result<(), PathError> {
    let broker = c.broker(BrokerKind::Ecdsa).unwrap();
    let ints = [c.issuing.cert_der.as_slice()];
    list.validate_signer(&PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc(&c.country), &broker.cert_der, at as u64)
    })
    .map(|_| ())
}

/// Both countries on their own signed lists.
fn two_lists(kz_services: &[TlService]) -> TrustList {
    let kz = country("KZ");
    let az = country("AZ");
    let kz_list = accept(&signed_list("KZ", 42, kz_services, kz), &pinned(kz), None).unwrap();
    let az_list = accept(
        &signed_list("AZ", 7, &[ca_service(az, granted_from(T0 - DAY))], az),
        &pinned(az),
        None,
    )
    .unwrap();
    let mut crls = crl_files(kz);
    crls.extend(crl_files(az));
    TrustList::from_trusted_lists(vec![kz_list, az_list], crls, Vec::new())
}

#[test]
fn a_signed_list_is_accepted_and_its_cas_validate_declarations() {
    let kz = country("KZ");
    let bytes = signed_list("KZ", 42, &[ca_service(kz, granted_from(T0 - DAY))], kz);
    let accepted = accept(&bytes, &pinned(kz), Some(41)).unwrap();
    assert_eq!(accepted.list.sequence, 42);
    assert_eq!(accepted.list.territory, "KZ");
    assert_eq!(accepted.list.services.len(), 1);
    assert_eq!(accepted.signer.sha256, sha256(&kz.authority.cert_der));
    // The same sequence number again is not a rollback (a re-read of the same list).
    assert!(accept(&bytes, &pinned(kz), Some(42)).is_ok());

    let list = TrustList::from_trusted_lists(vec![accepted], crl_files(kz), Vec::new());
    assert!(list.faults().is_empty(), "{:?}", list.faults());
    assert_eq!(list.anchor_count(cc("KZ")), 1);
    assert_eq!(list.crl_count(cc("KZ")), 2);
    match list.source(cc("KZ")).unwrap() {
        TrustSource::TrustedList {
            sequence,
            next_update_unix,
            ..
        } => {
            assert_eq!(sequence, 42);
            assert_eq!(next_update_unix, Some(T0 + 180 * DAY));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(path(&list, kz, T0 + DAY), Ok(()));

    // End to end: a KZ declaration verifies against the list-based trust.
    let broker = kz.broker(BrokerKind::Ecdsa).unwrap();
    let doc = sign_enveloped(
        tamga_declaration::sample(&tamga_declaration::SampleSpec::new("KZ", "AZ", 1, 2)).as_bytes(),
        &SigningKey::from_pkcs8_pem(broker.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![broker.cert_der.clone(), kz.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(T0 + DAY).unwrap(),
            limits: Default::default(),
        },
    )
    .unwrap();
    let report = verify_document(&VerifyRequest {
        bytes: &doc,
        trust: &list,
        origin: cc("KZ"),
        at_unix: T0 + DAY,
        policy: &Policy::customs(),
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    });
    assert!(report.passed(), "{report:?}");
    // The report names the trust source and the revocation evidence.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["trustSource"]["kind"], "trustedList");
    assert_eq!(json["trustSource"]["sequence"], 42);
    assert_eq!(
        json["trustSource"]["signerSha256"],
        sha256(&kz.authority.cert_der)
    );
    assert_eq!(report.revocation.len(), 2, "{:?}", report.revocation);
    assert_eq!(report.revocation[0].source, "KZ/issuing-ca.crl");
    assert_eq!(report.revocation[0].certificate_serial, broker.serial_hex);
    assert_eq!(report.revocation[1].source, "KZ/root-ca.crl");
    assert!(report.revocation.iter().all(|r| r.crl_number.is_some()));
}

fn sha256(der: &[u8]) -> String {
    tamga_trust::summarize_certificate(der).unwrap().sha256
}

#[test]
fn tampered_list_is_refused() {
    let kz = country("KZ");
    let bytes = signed_list("KZ", 42, &[ca_service(kz, granted_from(T0 - DAY))], kz);
    let text = String::from_utf8(bytes).unwrap();
    // Add a second CA by editing the service name after signing.
    let tampered = text.replacen("KZ Demo Root CA", "KZ Demo Root CA (extended)", 1);
    assert_ne!(tampered, text);
    match accept(tampered.as_bytes(), &pinned(kz), None) {
        Err(TlError::Signature(detail)) => assert!(detail.contains("digest_mismatch"), "{detail}"),
        other => panic!("{other:?}"),
    }
    // Unsigned: refused too.
    let unsigned = build_trusted_list(&TlBuild {
        territory: "KZ",
        operator: "KZ",
        sequence: 1,
        issued_unix: T0,
        next_update_unix: T0 + DAY,
        services: &[ca_service(kz, granted_from(T0))],
        pointers: &[],
    })
    .unwrap();
    match accept(unsigned.as_bytes(), &pinned(kz), None) {
        Err(TlError::Signature(detail)) => assert!(detail.contains("no_signature"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn signer_not_pinned_is_refused() {
    let kz = country("KZ");
    let az = country("AZ");
    // Signed by AZ's seal, but only KZ's is pinned for the KZ list.
    let bytes = signed_list("KZ", 42, &[ca_service(kz, granted_from(T0))], az);
    match accept(&bytes, &pinned(kz), None) {
        Err(TlError::SignerNotPinned { sha256: got }) => {
            assert_eq!(got, sha256(&az.authority.cert_der))
        }
        other => panic!("{other:?}"),
    }
    // Nothing pinned: nothing accepted.
    assert!(matches!(
        accept(&bytes, &[], None),
        Err(TlError::SignerNotPinned { .. })
    ));
}

#[test]
fn sequence_rollback_is_refused() {
    let kz = country("KZ");
    let bytes = signed_list("KZ", 41, &[ca_service(kz, granted_from(T0))], kz);
    assert_eq!(
        accept(&bytes, &pinned(kz), Some(42)).unwrap_err(),
        TlError::Rollback { got: 41, last: 42 }
    );
}

#[test]
fn territory_must_match_what_was_configured() {
    let kz = country("KZ");
    let bytes = signed_list("KZ", 1, &[ca_service(kz, granted_from(T0))], kz);
    let r = accept_trusted_list(&TlCheck {
        bytes: &bytes,
        source: "az-tl.xml",
        pinned_signers: &pinned(kz),
        expected_territory: Some("AZ"),
        last_accepted_sequence: None,
        at_unix: T0,
        signature: &TlSignatureEngine::default(),
    });
    assert!(matches!(r, Err(TlError::TerritoryMismatch { .. })), "{r:?}");
}

#[test]
fn next_update_passed_makes_only_that_country_indeterminate() {
    let kz = country("KZ");
    let az = country("AZ");
    let kz_list = accept(
        &{
            let xml = build_trusted_list(&TlBuild {
                territory: "KZ",
                operator: "KZ",
                sequence: 3,
                issued_unix: T0 - 10 * DAY,
                next_update_unix: T0 + 2 * DAY,
                services: &[ca_service(kz, granted_from(T0 - DAY))],
                pointers: &[],
            })
            .unwrap();
            sign(xml.as_bytes(), kz)
        },
        &pinned(kz),
        None,
    )
    .unwrap();
    let az_list = accept(
        &signed_list("AZ", 7, &[ca_service(az, granted_from(T0 - DAY))], az),
        &pinned(az),
        None,
    )
    .unwrap();
    let mut crls = crl_files(kz);
    crls.extend(crl_files(az));
    let list = TrustList::from_trusted_lists(vec![kz_list, az_list], crls, Vec::new());
    assert_eq!(path(&list, kz, T0 + DAY), Ok(()));
    assert_eq!(
        path(&list, kz, T0 + 3 * DAY),
        Err(PathError::TrustListStale {
            country: cc("KZ"),
            next_update_unix: (T0 + 2 * DAY) as u64
        })
    );
    assert_eq!(path(&list, az, T0 + 3 * DAY), Ok(()));
    let reason = tamga_policy::Reason::Path(path(&list, kz, T0 + 3 * DAY).unwrap_err());
    assert_eq!(reason.code(), "trust_list_stale");
    assert_eq!(reason.indication(), tamga_policy::Indication::Indeterminate);
}

#[test]
fn service_withdrawn_before_or_after_the_signing_time() {
    let kz = country("KZ");
    let statuses = vec![
        StatusPeriod {
            status: STATUS_GRANTED.into(),
            from_unix: T0 - 2 * DAY,
        },
        StatusPeriod {
            status: STATUS_WITHDRAWN.into(),
            from_unix: T0 + 10 * DAY,
        },
    ];
    let list = two_lists(&[ca_service(kz, statuses)]);
    // The history survives the round trip through XML.
    // Signed before the withdrawal: the CA counted then.
    assert_eq!(path(&list, kz, T0 + DAY), Ok(()));
    // Signed after it: refused, saying why.
    assert_eq!(
        path(&list, kz, T0 + 11 * DAY),
        Err(PathError::ServiceNotGranted {
            status: "withdrawn".into()
        })
    );
    // Before the service was first granted: nothing in force.
    assert_eq!(
        path(&list, kz, T0 - 3 * DAY + 3600),
        Err(PathError::NotYetValid {
            not_before_unix: country("KZ")
                .broker(BrokerKind::Ecdsa)
                .unwrap()
                .not_before_unix as u64
        })
    );
    let reason = tamga_policy::Reason::Path(PathError::ServiceNotGranted {
        status: "withdrawn".into(),
    });
    assert_eq!(reason.code(), "trust_service_not_granted");
}

#[test]
fn history_is_read_back_in_time_order() {
    let kz = country("KZ");
    let statuses = vec![
        StatusPeriod {
            status: STATUS_GRANTED.into(),
            from_unix: T0 - 100 * DAY,
        },
        StatusPeriod {
            status: STATUS_WITHDRAWN.into(),
            from_unix: T0 - 50 * DAY,
        },
        StatusPeriod {
            status: STATUS_GRANTED.into(),
            from_unix: T0 - 10 * DAY,
        },
    ];
    let mut qc = ca_service(kz, statuses.clone());
    qc.service_type = SVC_CA_QC.into();
    let bytes = signed_list("KZ", 5, &[qc], kz);
    let parsed = parse_trusted_list(&bytes).unwrap();
    assert_eq!(parsed.services[0].statuses, statuses);
    assert!(parsed.services[0].trusted_at(T0));
    assert!(!parsed.services[0].trusted_at(T0 - 20 * DAY));
    assert!(parsed.services[0].trusted_at(T0 - 60 * DAY));
    assert!(!parsed.services[0].trusted_at(T0 - 200 * DAY));
}

#[test]
fn duplicate_country_blocks_that_country_only() {
    let kz = country("KZ");
    let az = country("AZ");
    let one = accept(
        &signed_list("KZ", 1, &[ca_service(kz, granted_from(T0 - DAY))], kz),
        &pinned(kz),
        None,
    )
    .unwrap();
    let mut two = accept(
        &signed_list("KZ", 2, &[ca_service(kz, granted_from(T0 - DAY))], kz),
        &pinned(kz),
        None,
    )
    .unwrap();
    two.source = "other-kz-tl.xml".into();
    let az_list = accept(
        &signed_list("AZ", 7, &[ca_service(az, granted_from(T0 - DAY))], az),
        &pinned(az),
        None,
    )
    .unwrap();
    let mut crls = crl_files(kz);
    crls.extend(crl_files(az));
    let list = TrustList::from_trusted_lists(vec![one, two, az_list], crls, Vec::new());
    match path(&list, kz, T0 + DAY) {
        Err(PathError::TrustListInvalid { country, detail }) => {
            assert_eq!(country, cc("KZ"));
            assert!(
                detail.contains("more than one trusted list claims KZ"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(path(&list, az, T0 + DAY), Ok(()));
    assert_eq!(list.degraded_countries(), vec![cc("KZ")]);
}

#[test]
fn a_refused_list_blocks_its_country_unless_a_last_good_one_is_used() {
    let kz = country("KZ");
    let az = country("AZ");
    let fault = TrustFault {
        country: cc("KZ"),
        kind: FaultKind::TrustList,
        source: "KZ-tl.xml".into(),
        detail:
            "trusted list KZ-tl.xml refused: sequence number 3 is lower than the last accepted (4)"
                .into(),
        issuer: None,
    };
    // No list for KZ at all: blocked.
    let az_list = accept(
        &signed_list("AZ", 7, &[ca_service(az, granted_from(T0 - DAY))], az),
        &pinned(az),
        None,
    )
    .unwrap();
    let list =
        TrustList::from_trusted_lists(vec![az_list.clone()], crl_files(az), vec![fault.clone()]);
    assert!(matches!(
        path(&list, kz, T0 + DAY),
        Err(PathError::TrustListInvalid { .. })
    ));
    assert_eq!(path(&list, az, T0 + DAY), Ok(()));
    // The last good KZ list is used: KZ works, and stays reported as degraded.
    let last_good = accept(
        &signed_list("KZ", 4, &[ca_service(kz, granted_from(T0 - DAY))], kz),
        &pinned(kz),
        None,
    )
    .unwrap();
    let mut crls = crl_files(kz);
    crls.extend(crl_files(az));
    let list = TrustList::from_trusted_lists(vec![last_good, az_list], crls, vec![fault]);
    assert_eq!(path(&list, kz, T0 + DAY), Ok(()));
    assert_eq!(list.degraded_countries(), vec![cc("KZ")]);
}

#[test]
fn a_lotl_names_each_countrys_list_and_signer() {
    let kz = country("KZ");
    let az = country("AZ");
    let lotl = build_trusted_list(&TlBuild {
        territory: "EU",
        operator: "Mutual recognition secretariat",
        sequence: 9,
        issued_unix: T0,
        next_update_unix: T0 + 180 * DAY,
        services: &[],
        pointers: &[TlPointer {
            territory: "KZ".into(),
            location: "KZ-tl.xml".into(),
            mime_type: None,
            signer_certificates: vec![kz.authority.cert_der.clone()],
        }],
    })
    .unwrap();
    // The LOTL is signed by AZ's seal (pinned in the configuration).
    let lotl = accept(&sign(lotl.as_bytes(), az), &pinned(az), None).unwrap();
    assert_eq!(lotl.list.pointers.len(), 1);
    let ptr = &lotl.list.pointers[0];
    assert_eq!(ptr.territory, "KZ");
    assert_eq!(ptr.location, "KZ-tl.xml");
    // The country list is checked against the signer the LOTL names.
    let kz_bytes = signed_list("KZ", 42, &[ca_service(kz, granted_from(T0 - DAY))], kz);
    let check = |bytes: &[u8]| {
        accept_trusted_list(&TlCheck {
            bytes,
            source: &ptr.location,
            pinned_signers: &ptr.signer_certificates,
            expected_territory: Some(&ptr.territory),
            last_accepted_sequence: None,
            at_unix: T0,
            signature: &TlSignatureEngine::default(),
        })
    };
    assert!(check(&kz_bytes).is_ok());
    let forged = signed_list("KZ", 43, &[ca_service(kz, granted_from(T0 - DAY))], az);
    assert!(matches!(
        check(&forged),
        Err(TlError::SignerNotPinned { .. })
    ));
}

#[test]
fn hostile_and_malformed_lists_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"<x/>",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
        b"<tsl:TrustServiceStatusList xmlns:tsl=\"http://uri.etsi.org/02231/v2#\"/>",
    ] {
        assert!(matches!(
            parse_trusted_list(bad),
            Err(TlError::Malformed(_))
        ));
    }
}

// --- public lists (EU DSS test resources, see tests/fixtures/trusted-lists) ---

const DSS_ZZ: &[u8] = include_bytes!("../../../tests/fixtures/trusted-lists/mra-zz-tl.xml");
const DSS_DK: &[u8] = include_bytes!("../../../tests/fixtures/trusted-lists/dk_tl-sn21.xml");
const DSS_EMPTY: &[u8] = include_bytes!("../../../tests/fixtures/trusted-lists/tl-empty.xml");

/// The certificate in the list's own `ds:KeyInfo` (the last X509Certificate
/// of the document), as the operator would pin it.
fn embedded_signer(xml: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::str::from_utf8(xml).unwrap();
    let sig = text.rfind("Signature ").unwrap();
    let tail = &text[sig..];
    let start = tail.find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let end = start + tail[start..].find('<').unwrap();
    let b64: String = tail[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn dss_time(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// DSS's signed `ZZ` list: Tamga's engine verifies its digests and RSA
/// signature (it gets as far as the signer's certificate), notices any
/// change, and then refuses it because the list is signed with a CA
/// certificate: Tamga requires an end-entity signer for lists as for
/// declarations (TS 119 612 signers are end-entity certificates with the
/// tslSigning purpose; DSS's test list uses its CA directly).
#[test]
fn dss_signed_list_is_verified_and_its_ca_signer_refused() {
    let signer = embedded_signer(DSS_ZZ);
    let check = |bytes: &[u8]| {
        accept_trusted_list(&TlCheck {
            bytes,
            source: "mra-zz-tl.xml",
            pinned_signers: std::slice::from_ref(&signer),
            expected_territory: Some("ZZ"),
            last_accepted_sequence: None,
            at_unix: dss_time("2022-07-14T00:00:00Z"),
            signature: &TlSignatureEngine::default(),
        })
    };
    let list = parse_trusted_list(DSS_ZZ).unwrap();
    assert_eq!(
        (list.territory.as_str(), list.sequence, list.version),
        ("ZZ", 4, 5)
    );
    match check(DSS_ZZ) {
        Err(TlError::Signature(d)) => assert!(d.contains("signer_is_ca"), "{d}"),
        other => panic!("{other:?}"),
    }
    let tampered = String::from_utf8(DSS_ZZ.to_vec()).unwrap().replacen(
        "<TSLSequenceNumber>4<",
        "<TSLSequenceNumber>5<",
        1,
    );
    assert_ne!(tampered.as_bytes(), DSS_ZZ);
    match check(tampered.as_bytes()) {
        Err(TlError::Signature(d)) => assert!(d.contains("digest_mismatch"), "{d}"),
        other => panic!("{other:?}"),
    }
}

/// A real national list parses (v5, sequence 21, its CA/QC service); its
/// signature is refused because its XAdES SigningCertificate digest is
/// SHA-1, which Tamga's engine does not accept anywhere (EU DSS does): a
/// known, documented divergence, failing closed.
#[test]
fn dss_national_list_parses_and_its_sha1_cert_digest_is_refused() {
    let list = parse_trusted_list(DSS_DK).unwrap();
    assert_eq!(list.territory, "DK");
    assert_eq!(list.sequence, 21);
    assert_eq!(
        list.next_update_unix,
        Some(dss_time("2020-02-05T00:00:00Z"))
    );
    assert_eq!(list.services.len(), 1);
    assert!(list.services[0].certificates.iter().all(|c| !c.is_empty()));
    let signer = embedded_signer(DSS_DK);
    let r = accept_trusted_list(&TlCheck {
        bytes: DSS_DK,
        source: "dk_tl-sn21.xml",
        pinned_signers: &[signer],
        expected_territory: Some("DK"),
        last_accepted_sequence: None,
        at_unix: dss_time("2019-08-06T00:00:00Z"),
        signature: &TlSignatureEngine::default(),
    });
    match r {
        Err(TlError::Signature(d)) => assert!(d.contains("weak_algorithm"), "{d}"),
        other => panic!("{other:?}"),
    }
    // An empty list is not a list.
    assert!(matches!(
        parse_trusted_list(DSS_EMPTY),
        Err(TlError::Malformed(_))
    ));
}

/// A CRL carried in the signature's `KeyInfo/X509Data/X509CRL` is used as
/// revocation evidence (and named in the report) when the site has none.
#[test]
fn keyinfo_crl_is_used_when_present() {
    use base64::Engine as _;
    let kz = country("KZ");
    let accepted = accept(
        &signed_list("KZ", 42, &[ca_service(kz, granted_from(T0 - DAY))], kz),
        &pinned(kz),
        None,
    )
    .unwrap();
    // The site has only the root's CRL.
    let root_crl: Vec<TrustFile> = crl_files(kz).into_iter().take(1).collect();
    let list = TrustList::from_trusted_lists(vec![accepted], root_crl, Vec::new());
    let broker = kz.broker(BrokerKind::Ecdsa).unwrap();
    let doc = sign_enveloped(
        tamga_declaration::sample(&tamga_declaration::SampleSpec::new("KZ", "AZ", 9, 2)).as_bytes(),
        &SigningKey::from_pkcs8_pem(broker.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![broker.cert_der.clone(), kz.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(T0 + DAY).unwrap(),
            limits: Default::default(),
        },
    )
    .unwrap();
    let verify = |bytes: &[u8]| {
        verify_document(&VerifyRequest {
            bytes,
            trust: &list,
            origin: cc("KZ"),
            at_unix: T0 + DAY,
            policy: &Policy::customs(),
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        })
    };
    assert_eq!(verify(&doc).reason, Some("revocation_unknown"));
    // KeyInfo is not signed: a relying party (or the broker) may add evidence.
    let text = String::from_utf8(doc).unwrap();
    let crl = base64::engine::general_purpose::STANDARD.encode(&kz.issuing_crl_der);
    let at = text.find("</ds:X509Data>").expect("X509Data");
    let with_crl = format!(
        "{}<ds:X509CRL>{crl}</ds:X509CRL>{}",
        &text[..at],
        &text[at..]
    );
    let report = verify(with_crl.as_bytes());
    assert!(report.passed(), "{report:?}");
    assert!(
        report
            .revocation
            .iter()
            .any(|r| r.source == "KeyInfo/X509CRL" && r.certificate_serial == broker.serial_hex),
        "{:?}",
        report.revocation
    );
}
