//! Signed receipts (XSD: `schemas/receipt.xsd`, namespace `urn:tamga:receipt:1`).
//!
//! A receipt binds the SHA-256 of the exact submitted bytes, the
//! declaration's identity, the full validation report and the decision,
//! signed by the receiving authority (enveloped, XAdES-B-B). Issued for
//! rejections too: a broker needs a signed, precise reason. Anyone — the
//! broker, a border officer, an auditor — can check it later with
//! [`verify_receipt`], offline.
#![forbid(unsafe_code)]

use serde::Serialize;
use tamga_dsig::{
    countersign, countersign_parsed, sign_canonical_enveloped, DigestAlgorithm, SignError,
    SignOptions, Signer,
};
use tamga_policy::{
    verify_document, Indication, Policy, Reason, Report, SubIndication, VerifyRequest,
};
use tamga_trust::{CountryCode, TrustList};
use tamga_xml::{Document, ParseLimits, Parsed};
use thiserror::Error;

/// The receipt namespace.
pub const NAMESPACE: &str = "urn:tamga:receipt:1";

/// What the authority decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Decision {
    Accepted,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
        }
    }
}

/// The authority issuing the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authority {
    pub country: String,
    pub subject: String,
    pub certificate_sha256: String,
}

impl Authority {
    /// The authority as its certificate names it (country from C=, or `fallback_country`).
    pub fn from_certificate(der: &[u8], fallback_country: &str) -> Result<Self, ReceiptError> {
        let s = tamga_trust::summarize_certificate(der)
            .map_err(|e| ReceiptError::Certificate(e.to_string()))?;
        Ok(Self {
            country: s
                .country
                .clone()
                .unwrap_or_else(|| fallback_country.to_string()),
            subject: s.subject,
            certificate_sha256: s.sha256,
        })
    }
}

/// What verification concluded, in the form that travels from the verifier
/// to the decision (also across the bus between separate stages): the typed
/// indication, sub-indication and reason, the declaration's identity, and
/// the full report as the JSON text the receipt embeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// The stable reason code (`reason.rs`), `None` when it passed.
    pub reason: Option<String>,
    pub message: String,
    /// The origin the declaration was checked against.
    pub origin: String,
    pub document_sha256: String,
    pub document_size: usize,
    pub lrn: Option<String>,
    pub document_id: Option<String>,
    /// The full validation report (JSON text).
    pub report: String,
}

impl Verdict {
    /// From the engine's report.
    pub fn from_report(report: &Report) -> Result<Self, ReceiptError> {
        Ok(Self {
            indication: report.indication,
            sub_indication: report.sub_indication,
            reason: report.reason.map(str::to_string),
            message: report.message.clone(),
            origin: report.declared_origin.clone(),
            document_sha256: report.document_sha256.clone(),
            document_size: report.document_size,
            lrn: report.declaration.as_ref().and_then(|d| d.lrn.clone()),
            document_id: report
                .declaration
                .as_ref()
                .and_then(|d| d.document_id.clone()),
            report: serde_json::to_string(report)?,
        })
    }

    /// TOTAL_PASSED.
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// The receiving authority's key and certificates, as the decision uses them.
pub struct AuthorityKey<'a> {
    pub signer: &'a dyn Signer,
    /// Signer certificate first, then its chain (DER).
    pub certificates: &'a [Vec<u8>],
    pub info: &'a Authority,
}

impl std::fmt::Debug for AuthorityKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What [`decide`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub content: ReceiptContent,
    /// The counter-signed document, when accepted.
    pub countersigned: Option<Vec<u8>>,
    /// The signed receipt XML.
    pub receipt: Vec<u8>,
}

/// Why [`decide`] could not produce a decision.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecideError {
    #[error("countersigning: {0}")]
    Countersign(SignError),
    #[error("receipt: {0}")]
    Receipt(ReceiptError),
}

/// The decision, in one place for the CLI, the demo and the pipeline: a
/// verdict that passed is counter-signed by the authority (unless the
/// decision step refuses it: `refused`), and every outcome gets a receipt
/// signed by the same authority.
pub fn decide(
    verdict: &Verdict,
    document: &[u8],
    authority: &AuthorityKey<'_>,
    refused: Option<&Reason>,
    at_unix: i64,
    limits: ParseLimits,
) -> Result<Decided, DecideError> {
    decide_from(
        verdict,
        Source::Bytes(document),
        authority,
        refused,
        at_unix,
        limits,
    )
}

/// The declaration as [`decide_from`] gets it: its bytes, or as the verification that passed
/// it parsed them (`tamga_policy::verify_document_keeping`), so countersigning does not
/// parse it again.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Source<'s, 'a> {
    Bytes(&'s [u8]),
    Parsed(&'s Parsed<'a>),
}

/// [`decide`] from either form of the declaration.
pub fn decide_from(
    verdict: &Verdict,
    document: Source<'_, '_>,
    authority: &AuthorityKey<'_>,
    refused: Option<&Reason>,
    at_unix: i64,
    limits: ParseLimits,
) -> Result<Decided, DecideError> {
    let signing_time = time::OffsetDateTime::from_unix_timestamp(at_unix)
        .map_err(|e| DecideError::Receipt(ReceiptError::Certificate(e.to_string())))?;
    let countersigned = if verdict.passed() && refused.is_none() {
        let options = SignOptions {
            certificates: authority.certificates.to_vec(),
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time,
            limits,
        };
        let countersigned = match document {
            Source::Bytes(bytes) => countersign(bytes, authority.signer, &options),
            Source::Parsed(parsed) => countersign_parsed(parsed, authority.signer, &options),
        };
        Some(countersigned.map_err(DecideError::Countersign)?)
    } else {
        None
    };
    let mut content = ReceiptContent::for_verdict(
        verdict,
        authority.info.clone(),
        at_unix,
        countersigned.as_deref(),
        refused,
    );
    content.qr = qr_payload(&content, authority.signer, authority.certificates, at_unix);
    let receipt = issue_receipt(
        &content,
        authority.signer,
        authority.certificates.to_vec(),
        at_unix,
    )
    .map_err(DecideError::Receipt)?;
    Ok(Decided {
        content,
        countersigned,
        receipt,
    })
}

/// What a receipt's QR states.
pub fn qr_claims(content: &ReceiptContent, issued_at_unix: i64) -> tamga_qr::Claims {
    tamga_qr::Claims {
        receipt_id: content.receipt_id.clone(),
        decision: content.decision.as_str().to_string(),
        document_sha256: content.document_sha256.clone(),
        lrn: content.lrn.clone(),
        origin: content.origin.clone(),
        destination: content.destination.clone(),
        issued_at: issued_at_unix,
        authority_certificate_sha256: content.authority.certificate_sha256.clone(),
        reason: content.reason.clone(),
    }
}

/// The receipt's signed QR payload; `None` when the key has no COSE algorithm (GOST): the
/// receipt is still issued, without a QR.
fn qr_payload(
    content: &ReceiptContent,
    signer: &dyn Signer,
    certificates: &[Vec<u8>],
    at_unix: i64,
) -> Option<String> {
    match tamga_qr::sign(&qr_claims(content, at_unix), signer, certificates) {
        Ok(q) => Some(q),
        Err(e) => {
            // Not a reason to refuse the receipt: the XML signature is the receipt's proof.
            let _ = e;
            None
        }
    }
}

/// Everything a receipt states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptContent {
    pub receipt_id: String,
    pub issued_at: String,
    pub authority: Authority,
    /// SHA-256 of the exact submitted bytes, lower-case hex.
    pub document_sha256: String,
    pub document_size: usize,
    pub lrn: Option<String>,
    pub document_id: Option<String>,
    pub origin: String,
    pub destination: String,
    pub decision: Decision,
    pub indication: String,
    pub sub_indication: Option<String>,
    pub reason: Option<String>,
    pub message: String,
    /// SHA-256 of the countersigned document Tamga forwarded, when accepted.
    pub countersigned_sha256: Option<String>,
    /// The full validation report, as JSON.
    pub validation_report: String,
    /// The signed QR payload (`TMG1:…`, `schemas/qr.md`), signed by the same key.
    pub qr: Option<String>,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("the authority certificate is unusable: {0}")]
    Certificate(String),
    #[error("signing the receipt failed: {0}")]
    Sign(#[from] SignError),
    #[error("the receipt is not a Tamga receipt: {0}")]
    NotAReceipt(String),
    #[error("the report could not be serialised: {0}")]
    Json(#[from] serde_json::Error),
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b))
}

/// Text content as exclusive c14n writes it (so the receipt needs no
/// canonicalisation before signing: see [`ReceiptContent::canonical_root`]). Public for
/// the other records the authority signs the same way (the check record).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#xD;")
}

/// An attribute value as exclusive c14n writes it.
pub fn esc_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\t', "&#x9;")
        .replace('\n', "&#xA;")
        .replace('\r', "&#xD;")
}

/// What goes before the receipt's document element.
pub const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn rfc3339(unix: i64) -> String {
    tamga_policy::rfc3339(unix)
}

impl ReceiptContent {
    /// The content of a receipt for `report` (the verification of the
    /// submitted bytes), decided as the report says.
    pub fn for_report(
        report: &Report,
        authority: Authority,
        issued_at_unix: i64,
        countersigned: Option<&[u8]>,
    ) -> Result<Self, ReceiptError> {
        Ok(Self::for_verdict(
            &Verdict::from_report(report)?,
            authority,
            issued_at_unix,
            countersigned,
            None,
        ))
    }

    /// The content of a receipt for `verdict`: accepted when it passed and
    /// the document was counter-signed; otherwise rejected, for `refused`
    /// when the decision step refused it (e.g. a destination not served
    /// here), else for the verification's own reason.
    pub fn for_verdict(
        verdict: &Verdict,
        authority: Authority,
        issued_at_unix: i64,
        countersigned: Option<&[u8]>,
        refused: Option<&Reason>,
    ) -> Self {
        let decision = if verdict.passed() && countersigned.is_some() && refused.is_none() {
            Decision::Accepted
        } else {
            Decision::Rejected
        };
        let receipt_id = format!(
            "rcpt-{}",
            &sha256_hex(
                format!(
                    "{}|{}|{}|{}",
                    verdict.document_sha256,
                    authority.certificate_sha256,
                    issued_at_unix,
                    decision.as_str()
                )
                .as_bytes()
            )[..24]
        );
        let (indication, sub_indication, reason, message) = match refused {
            Some(r) => (
                r.sub_indication().indication(),
                Some(r.sub_indication()),
                Some(r.code().to_string()),
                r.sentence(),
            ),
            None => (
                verdict.indication,
                verdict.sub_indication,
                verdict.reason.clone(),
                verdict.message.clone(),
            ),
        };
        Self {
            receipt_id,
            issued_at: rfc3339(issued_at_unix),
            destination: authority.country.clone(),
            authority,
            document_sha256: verdict.document_sha256.clone(),
            document_size: verdict.document_size,
            lrn: verdict.lrn.clone(),
            document_id: verdict.document_id.clone(),
            origin: verdict.origin.clone(),
            decision,
            indication: indication.as_str().to_string(),
            sub_indication: sub_indication.map(|s| s.as_str().to_string()),
            reason,
            message,
            countersigned_sha256: countersigned.map(sha256_hex),
            validation_report: verdict.report.clone(),
            qr: None,
        }
    }

    /// The unsigned receipt XML.
    pub fn to_xml(&self) -> String {
        format!("{PROLOG}{}\n", self.canonical_root())
    }

    /// The `Receipt` element, written in exclusive canonical form (attributes
    /// in c14n order, c14n escaping, end tags, no XML declaration): its bytes
    /// are its own canonical form, which is what the enveloped signature
    /// digests — so issuing a receipt parses nothing before signing.
    pub fn canonical_root(&self) -> String {
        let opt = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| format!("    <{name}>{}</{name}>\n", esc(v)))
                .unwrap_or_default()
        };
        let rejection = if self.decision == Decision::Rejected {
            format!(
                "  <Rejection>\n    <Indication>{}</Indication>\n{}{}    <Message>{}</Message>\n  </Rejection>\n",
                esc(&self.indication),
                opt("SubIndication", &self.sub_indication),
                opt("Reason", &self.reason),
                esc(&self.message)
            )
        } else {
            String::new()
        };
        let countersigned = self
            .countersigned_sha256
            .as_ref()
            .map(|h| format!("  <Countersigned><Sha256>{h}</Sha256></Countersigned>\n"))
            .unwrap_or_default();
        format!(
            concat!(
                "<Receipt xmlns=\"{ns}\" Id=\"{idattr}\" version=\"1\">\n",
                "  <ReceiptId>{id}</ReceiptId>\n",
                "  <IssuedAt>{at}</IssuedAt>\n",
                "  <Authority>\n    <Country>{ac}</Country>\n    <Subject>{asub}</Subject>\n    <CertificateSha256>{acert}</CertificateSha256>\n  </Authority>\n",
                "  <Declaration>\n    <Sha256>{dsha}</Sha256>\n    <Size>{dsize}</Size>\n{lrn}{docid}    <Origin>{o}</Origin>\n    <Destination>{d}</Destination>\n  </Declaration>\n",
                "  <Decision>{dec}</Decision>\n",
                "{rej}",
                "{cs}",
                "{qr}",
                "  <ValidationReport mediaType=\"application/json\">{report}</ValidationReport>\n",
                "</Receipt>"
            ),
            ns = NAMESPACE,
            idattr = esc_attr(&self.receipt_id),
            id = esc(&self.receipt_id),
            at = esc(&self.issued_at),
            ac = esc(&self.authority.country),
            asub = esc(&self.authority.subject),
            acert = esc(&self.authority.certificate_sha256),
            dsha = esc(&self.document_sha256),
            dsize = self.document_size,
            lrn = opt("LRN", &self.lrn),
            docid = opt("DocumentId", &self.document_id),
            o = esc(&self.origin),
            d = esc(&self.destination),
            dec = self.decision.as_str(),
            rej = rejection,
            cs = countersigned,
            qr = self
                .qr
                .as_ref()
                .map(|q| format!("  <Qr>{}</Qr>\n", esc(q)))
                .unwrap_or_default(),
            report = esc(&self.validation_report),
        )
    }
}

/// Signs a receipt (enveloped, XAdES-B-B) with the authority's key.
pub fn issue_receipt(
    content: &ReceiptContent,
    signer: &dyn Signer,
    certificates: Vec<Vec<u8>>,
    issued_at_unix: i64,
) -> Result<Vec<u8>, ReceiptError> {
    let root = content.canonical_root();
    Ok(sign_canonical_enveloped(
        PROLOG,
        &root,
        &[content.receipt_id.as_str()],
        signer,
        &SignOptions {
            certificates,
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(issued_at_unix)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            limits: ParseLimits::default(),
        },
    )?)
}

/// Reads a receipt's fields (without checking its signature).
pub fn parse_receipt(bytes: &[u8]) -> Result<ReceiptContent, ReceiptError> {
    let doc = Document::parse(bytes, &ParseLimits::default())
        .map_err(|e| ReceiptError::NotAReceipt(e.to_string()))?;
    let root = doc.root();
    if !root.is(NAMESPACE, "Receipt") {
        return Err(ReceiptError::NotAReceipt(format!(
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
        text(parent, name).ok_or_else(|| ReceiptError::NotAReceipt(format!("missing {name}")))
    };
    let authority = root
        .child(NAMESPACE, "Authority")
        .ok_or_else(|| ReceiptError::NotAReceipt("missing Authority".into()))?;
    let declaration = root
        .child(NAMESPACE, "Declaration")
        .ok_or_else(|| ReceiptError::NotAReceipt("missing Declaration".into()))?;
    let decision = match need(root, "Decision")?.as_str() {
        "accepted" => Decision::Accepted,
        "rejected" => Decision::Rejected,
        other => {
            return Err(ReceiptError::NotAReceipt(format!(
                "unknown decision {other:?}"
            )))
        }
    };
    let rejection = root.child(NAMESPACE, "Rejection");
    let report_json = need(root, "ValidationReport")?;
    let report: serde_json::Value = serde_json::from_str(&report_json)?;
    Ok(ReceiptContent {
        receipt_id: need(root, "ReceiptId")?,
        issued_at: need(root, "IssuedAt")?,
        authority: Authority {
            country: need(authority, "Country")?,
            subject: need(authority, "Subject")?,
            certificate_sha256: need(authority, "CertificateSha256")?,
        },
        document_sha256: need(declaration, "Sha256")?,
        document_size: need(declaration, "Size")?
            .parse()
            .map_err(|_| ReceiptError::NotAReceipt("bad Size".into()))?,
        lrn: text(declaration, "LRN"),
        document_id: text(declaration, "DocumentId"),
        origin: need(declaration, "Origin")?,
        destination: need(declaration, "Destination")?,
        decision,
        indication: report["indication"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        sub_indication: rejection.and_then(|r| text(r, "SubIndication")),
        reason: rejection.and_then(|r| text(r, "Reason")),
        message: rejection
            .and_then(|r| text(r, "Message"))
            .unwrap_or_else(|| report["message"].as_str().unwrap_or_default().to_string()),
        countersigned_sha256: root
            .child(NAMESPACE, "Countersigned")
            .and_then(|c| text(c, "Sha256")),
        validation_report: report_json,
        qr: text(root, "Qr"),
    })
}

/// The outcome of checking a receipt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptVerification {
    /// True when the receipt's signature is valid, its signer is the
    /// authority it names, and (if a document was given) it is about exactly
    /// that document.
    pub valid: bool,
    pub message: String,
    pub receipt: Option<ReceiptContent>,
    /// The verification of the receipt's own signature.
    pub signature: Report,
    /// `Some(true)` when the given document's SHA-256 is the receipt's
    /// (either the submitted or the countersigned bytes).
    pub document_matches: Option<bool>,
}

/// Checks a receipt's signature against the trust list (the signer must
/// chain to the named authority's country and be the named certificate)
/// and, given the document, that the receipt is about exactly those bytes.
pub fn verify_receipt(
    receipt: &[u8],
    trust: &TrustList,
    at_unix: i64,
    document: Option<&[u8]>,
) -> ReceiptVerification {
    let parsed = parse_receipt(receipt);
    let country: CountryCode = parsed
        .as_ref()
        .ok()
        .and_then(|r| r.authority.country.parse().ok())
        .unwrap_or_else(|| CountryCode::from_upper("ZZ").unwrap_or_else(|_| unreachable_country()));
    let signature = verify_document(&VerifyRequest {
        bytes: receipt,
        trust,
        origin: country,
        at_unix,
        policy: &Policy::customs(),
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    });
    let document_matches = document.map(|d| {
        let h = sha256_hex(d);
        parsed.as_ref().is_ok_and(|r| {
            r.document_sha256 == h || r.countersigned_sha256.as_deref() == Some(h.as_str())
        })
    });
    let (valid, message) = match &parsed {
        Err(e) => (false, e.to_string()),
        Ok(_) if !signature.passed() => (
            false,
            format!(
                "The receipt's signature is not valid: {}",
                signature.message
            ),
        ),
        Ok(r)
            if signature.signer.as_ref().map(|s| &s.certificate_sha256)
                != Some(&r.authority.certificate_sha256) =>
        {
            (
                false,
                "The receipt is signed by a certificate other than the authority it names.".into(),
            )
        }
        Ok(_) if document_matches == Some(false) => (
            false,
            "The receipt is valid but about other bytes than the given document.".into(),
        ),
        Ok(r) => (
            true,
            format!(
                "Valid receipt {} from the {} customs authority: declaration {} {}.",
                r.receipt_id,
                r.authority.country,
                r.lrn.as_deref().unwrap_or(&r.document_sha256),
                r.decision.as_str()
            ),
        ),
    };
    ReceiptVerification {
        valid,
        message,
        receipt: parsed.ok(),
        signature,
        document_matches,
    }
}

#[cold]
fn unreachable_country() -> CountryCode {
    // Invariant: "ZZ" is two upper-case ASCII letters, always a valid code.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The receipt is signed from its own bytes as their canonical form; text
    /// that c14n escapes differently from plain XML (quotes, `>`, CR, tabs)
    /// must still produce a receipt whose self-check (a full re-parse and
    /// reference check) passes and whose fields read back unchanged.
    #[test]
    fn receipts_are_written_in_canonical_form() {
        let pki =
            tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ"], 1_780_000_000)).unwrap();
        let az = &pki.countries[0];
        for authority in [&az.authority, &az.authority_rsa] {
            let signer = tamga_dsig::SigningKey::from_pkcs8_der(&authority.key_pkcs8_der).unwrap();
            let nasty = "quotes \" and ' & <tags> > \r\n\ttab é ü Қ";
            let content = ReceiptContent {
                receipt_id: "r-1&\"2\"".into(),
                issued_at: "2026-12-05T00:00:00Z".into(),
                authority: Authority::from_certificate(&authority.cert_der, "AZ").unwrap(),
                document_sha256: "ab".repeat(32),
                document_size: 42,
                lrn: Some(nasty.into()),
                document_id: Some("doc\r1".into()),
                origin: "KZ".into(),
                destination: "AZ".into(),
                decision: Decision::Rejected,
                indication: "TOTAL_FAILED".into(),
                sub_indication: Some("HASH_FAILURE".into()),
                reason: Some("digest_mismatch".into()),
                message: nasty.into(),
                countersigned_sha256: None,
                validation_report: r#"{"a":"<b> & \"c\"","d":">"}"#.into(),
                qr: Some("TMG1:AB$%*+-./:".into()),
            };
            let signed = issue_receipt(
                &content,
                &signer,
                vec![authority.cert_der.clone()],
                1_780_000_000,
            )
            .unwrap();
            let back = parse_receipt(&signed).unwrap();
            assert_eq!(back.lrn.as_deref(), Some(nasty.trim()));
            assert_eq!(back.validation_report, content.validation_report);
            assert_eq!(back.receipt_id, content.receipt_id);
            assert!(signed.starts_with(PROLOG.as_bytes()));
        }
    }
}
