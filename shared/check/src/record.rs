//! The signed check record (`schemas/check.xsd`, namespace `urn:tamga:check:1`): what one
//! check found, signed by the site's authority key like a receipt (enveloped XML-DSig,
//! XAdES-B-B, exclusive c14n), so that it can be printed or attached and checked later by
//! anyone with the trust list — `xmlsec1 --verify` included.
//!
//! Like the receipt, the record is written in its own canonical form, so signing it parses
//! nothing before the signature's self-check.

use tamga_dsig::{sign_canonical_enveloped, DigestAlgorithm, SignOptions, Signer};
use tamga_policy::{verify_document, Policy, Report, VerifyRequest};
use tamga_receipt::{esc, esc_attr, Authority, PROLOG};
use tamga_trust::{CountryCode, TrustList};
use tamga_xml::{Document, ParseLimits};

use crate::{Check, CheckError, CheckResult, Presented, Subject};

/// The check record namespace.
pub const NAMESPACE: &str = "urn:tamga:check:1";

/// What a record states besides the check itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub authority: Authority,
    /// When the authority recorded the check (Unix seconds): for an offline check, the
    /// upload.
    pub recorded_at: i64,
}

fn rfc3339(unix: i64) -> String {
    tamga_policy::rfc3339(unix)
}

/// The `CheckRecord` element in exclusive canonical form (see
/// [`tamga_receipt::ReceiptContent::canonical_root`]).
pub fn canonical_root(c: &Check, issued: &Issued) -> String {
    let el = |name: &str, v: &str| format!("  <{name}>{}</{name}>\n", esc(v));
    let opt = |pad: &str, name: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("{pad}<{name}>{}</{name}>\n", esc(v)))
            .unwrap_or_default()
    };
    let mut s = format!(
        "<CheckRecord xmlns=\"{NAMESPACE}\" Id=\"{}\" version=\"1\">\n",
        esc_attr(&c.id)
    );
    s.push_str(&el("CheckId", &c.id));
    s.push_str(&el("CheckedAt", &rfc3339(c.at_ms.div_euclid(1000))));
    s.push_str(&el("RecordedAt", &rfc3339(issued.recorded_at)));
    s.push_str(&el("Checkpoint", &c.checkpoint));
    s.push_str(&el("Officer", &c.officer));
    s.push_str(&el("Device", &c.device));
    s.push_str(&el("Offline", if c.offline { "true" } else { "false" }));
    s.push_str(&opt(
        "  ",
        "BundleVersion",
        &c.bundle_version.map(|v| v.to_string()),
    ));
    s.push_str(&el("Result", c.result.as_str()));
    s.push_str(&opt("  ", "Reason", &c.reason));
    s.push_str(&format!(
        "  <Input kind=\"{}\">\n    <Sha256>{}</Sha256>\n  </Input>\n",
        c.input_kind.as_str(),
        esc(&c.input_sha256)
    ));
    if let Some(d) = &c.subject {
        s.push_str("  <Declaration>\n");
        s.push_str(&format!(
            "    <ReceiptId>{}</ReceiptId>\n",
            esc(&d.receipt_id)
        ));
        s.push_str(&format!(
            "    <Sha256>{}</Sha256>\n",
            esc(&d.document_sha256)
        ));
        s.push_str(&opt("    ", "LRN", &d.lrn));
        s.push_str(&format!("    <Origin>{}</Origin>\n", esc(&d.origin)));
        s.push_str(&format!(
            "    <Destination>{}</Destination>\n",
            esc(&d.destination)
        ));
        s.push_str(&opt("    ", "DeclarationId", &d.declaration_id));
        s.push_str("  </Declaration>\n");
    }
    if let Some(p) = &c.repeated_of {
        s.push_str(&format!(
            "  <AlreadyPresented>\n    <CheckId>{}</CheckId>\n    <Checkpoint>{}</Checkpoint>\n    <At>{}</At>\n  </AlreadyPresented>\n",
            esc(&p.check_id),
            esc(&p.checkpoint),
            rfc3339(p.at_ms.div_euclid(1000))
        ));
    }
    let a = &issued.authority;
    s.push_str(&format!(
        "  <Authority>\n    <Country>{}</Country>\n    <Subject>{}</Subject>\n    <CertificateSha256>{}</CertificateSha256>\n  </Authority>\n",
        esc(&a.country),
        esc(&a.subject),
        esc(&a.certificate_sha256)
    ));
    s.push_str("</CheckRecord>");
    s
}

/// Signs the record with the authority's key; `certificates`: its certificate first, then
/// its chain (DER).
pub fn sign(
    c: &Check,
    issued: &Issued,
    signer: &dyn Signer,
    certificates: Vec<Vec<u8>>,
) -> Result<Vec<u8>, CheckError> {
    c.validate()?;
    let root = canonical_root(c, issued);
    Ok(sign_canonical_enveloped(
        PROLOG,
        &root,
        &[c.id.as_str()],
        signer,
        &SignOptions {
            certificates,
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(issued.recorded_at)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            limits: ParseLimits::default(),
        },
    )?)
}

/// A record's fields read back (without checking its signature). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub check: Check,
    pub issued: Issued,
}

fn unix_of(s: &str) -> Result<i64, CheckError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| CheckError::NotARecord(format!("{s:?} is not an RFC 3339 time")))
}

/// Reads a check record.
pub fn parse(bytes: &[u8]) -> Result<Parsed, CheckError> {
    let bad = |m: String| CheckError::NotARecord(m);
    let doc = Document::parse(bytes, &ParseLimits::default()).map_err(|e| bad(e.to_string()))?;
    let root = doc.root();
    if !root.is(NAMESPACE, "CheckRecord") {
        return Err(bad(format!(
            "the document element is {{{}}}{}",
            root.namespace().unwrap_or(""),
            root.local_name()
        )));
    }
    let text = |parent: tamga_xml::Node<'_>, name: &str| {
        parent
            .child(NAMESPACE, name)
            .map(|n| n.text().trim().to_string())
    };
    let need = |parent: tamga_xml::Node<'_>, name: &'static str| {
        text(parent, name).ok_or_else(|| bad(format!("missing {name}")))
    };
    let result = need(root, "Result")?;
    let input = root
        .child(NAMESPACE, "Input")
        .ok_or_else(|| bad("missing Input".into()))?;
    let input_kind = match input.attribute("kind").as_deref() {
        Some("qr") => crate::InputKind::Qr,
        Some("receipt_id") => crate::InputKind::ReceiptId,
        Some("declaration_id") => crate::InputKind::DeclarationId,
        Some("lrn") => crate::InputKind::Lrn,
        other => return Err(bad(format!("unknown input kind {other:?}"))),
    };
    let subject = match root.child(NAMESPACE, "Declaration") {
        Some(d) => Some(Subject {
            receipt_id: need(d, "ReceiptId")?,
            document_sha256: need(d, "Sha256")?,
            lrn: text(d, "LRN"),
            origin: need(d, "Origin")?,
            destination: need(d, "Destination")?,
            declaration_id: text(d, "DeclarationId"),
        }),
        None => None,
    };
    let repeated_of = match root.child(NAMESPACE, "AlreadyPresented") {
        Some(p) => Some(Presented {
            check_id: need(p, "CheckId")?,
            checkpoint: need(p, "Checkpoint")?,
            at_ms: unix_of(&need(p, "At")?)?.saturating_mul(1000),
        }),
        None => None,
    };
    let authority = root
        .child(NAMESPACE, "Authority")
        .ok_or_else(|| bad("missing Authority".into()))?;
    Ok(Parsed {
        check: Check {
            id: need(root, "CheckId")?,
            at_ms: unix_of(&need(root, "CheckedAt")?)?.saturating_mul(1000),
            checkpoint: need(root, "Checkpoint")?,
            officer: need(root, "Officer")?,
            device: need(root, "Device")?,
            offline: need(root, "Offline")? == "true",
            bundle_version: match text(root, "BundleVersion") {
                Some(v) => Some(v.parse().map_err(|_| bad("bad BundleVersion".into()))?),
                None => None,
            },
            result: CheckResult::parse(&result)
                .ok_or_else(|| bad(format!("unknown result {result:?}")))?,
            reason: text(root, "Reason"),
            input_kind,
            input_sha256: need(input, "Sha256")?,
            subject,
            repeated_of,
        },
        issued: Issued {
            authority: Authority {
                country: need(authority, "Country")?,
                subject: need(authority, "Subject")?,
                certificate_sha256: need(authority, "CertificateSha256")?,
            },
            recorded_at: unix_of(&need(root, "RecordedAt")?)?,
        },
    })
}

/// The outcome of [`verify`].
#[derive(Debug, Clone)]
pub struct Verification {
    /// The signature is valid, its signer chains to the named authority's country and is
    /// the certificate the record names.
    pub valid: bool,
    pub message: String,
    pub record: Option<Parsed>,
    /// The verification of the record's signature (absent when it was not reached).
    pub signature: Option<Report>,
}

/// Checks a record's signature against `trust` at `at_unix` (the customs profile, the
/// authority's country's anchors only).
pub fn verify(bytes: &[u8], trust: &TrustList, at_unix: i64) -> Verification {
    let parsed = parse(bytes);
    let country: Option<CountryCode> = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.issued.authority.country.parse().ok());
    let Some(country) = country else {
        let message = match &parsed {
            Err(e) => e.to_string(),
            Ok(_) => "the record's authority country is not a country code".into(),
        };
        return Verification {
            valid: false,
            message,
            record: parsed.ok(),
            signature: None,
        };
    };
    let signature = verify_document(&VerifyRequest {
        bytes,
        trust,
        origin: country,
        at_unix,
        policy: &Policy::customs(),
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    });
    let (valid, message) = match &parsed {
        Err(e) => (false, e.to_string()),
        Ok(_) if !signature.passed() => (
            false,
            format!("The record's signature is not valid: {}", signature.message),
        ),
        Ok(p)
            if signature.signer.as_ref().map(|s| &s.certificate_sha256)
                != Some(&p.issued.authority.certificate_sha256) =>
        {
            (
                false,
                "The record is signed by another certificate than the authority it names.".into(),
            )
        }
        Ok(p) => (
            true,
            format!(
                "Valid check record {} of the {} customs authority: {} at {}.",
                p.check.id,
                p.issued.authority.country,
                p.check.result.as_str(),
                p.check.checkpoint
            ),
        ),
    };
    Verification {
        valid,
        message,
        record: parsed.ok(),
        signature: Some(signature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputKind;

    fn check() -> Check {
        Check {
            id: "chk-0123456789abcdef0123456789abcdef".into(),
            at_ms: 1_780_000_000_123,
            checkpoint: "AZ-ƏLƏT <1> & \"2\"".into(),
            officer: "officer-alat".into(),
            device: "handheld \"3\" <&>".into(),
            offline: true,
            bundle_version: Some(1_779_990_000),
            result: CheckResult::CouldNotCheck,
            reason: Some(crate::reason::ALREADY_PRESENTED.into()),
            input_kind: InputKind::Qr,
            input_sha256: "cd".repeat(32),
            subject: Some(Subject {
                receipt_id: "rcpt-1".into(),
                document_sha256: "ab".repeat(32),
                lrn: Some("KZ26TMG0000000001".into()),
                origin: "KZ".into(),
                destination: "AZ".into(),
                declaration_id: None,
            }),
            repeated_of: Some(Presented {
                check_id: "chk-ffffffffffffffffffffffffffffffff".into(),
                checkpoint: "AZ-ASTARA".into(),
                at_ms: 1_779_999_000_000,
            }),
        }
    }

    #[test]
    fn signs_verifies_and_reads_back() {
        let pki = tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ", "KZ"], 1_779_000_000))
            .unwrap();
        let az = &pki.countries[0];
        let dir = tempfile::tempdir().unwrap();
        pki.write_to(dir.path()).unwrap();
        let trust = TrustList::load_dir(&dir.path().join("trust")).unwrap();
        for authority in [&az.authority, &az.authority_rsa] {
            let signer = tamga_dsig::SigningKey::from_pkcs8_der(&authority.key_pkcs8_der).unwrap();
            let issued = Issued {
                authority: Authority::from_certificate(&authority.cert_der, "AZ").unwrap(),
                recorded_at: 1_780_000_100,
            };
            let mut certs = vec![authority.cert_der.clone()];
            certs.push(az.issuing.cert_der.clone());
            let c = check();
            let signed = sign(&c, &issued, &signer, certs).unwrap();
            let v = verify(&signed, &trust, 1_780_000_200);
            assert!(v.valid, "{}", v.message);
            let back = v.record.unwrap();
            let mut expected = c.clone();
            expected.at_ms = 1_780_000_000_000;
            assert_eq!(back.check, expected);
            assert_eq!(back.issued, issued);
            // One changed character: refused.
            let text = String::from_utf8(signed.clone()).unwrap();
            let forged = text.replace("<Result>could_not_check", "<Result>accepted");
            assert!(!verify(forged.as_bytes(), &trust, 1_780_000_200).valid);
            // Another country's anchors do not make it valid.
            let mut other = issued.clone();
            other.authority.country = "KZ".into();
            let signed = sign(&c, &other, &signer, vec![authority.cert_der.clone()]).unwrap();
            assert!(!verify(&signed, &trust, 1_780_000_200).valid);
        }
        let mut bad = check();
        bad.checkpoint = String::new();
        assert!(bad.validate().is_err());
    }
}
