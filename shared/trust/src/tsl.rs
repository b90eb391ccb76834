//! ETSI TS 119 612 trusted lists (TL) and lists of trusted lists (LOTL).
//!
//! Pure: bytes in, values out. The enveloped XAdES signature of a list is
//! checked by a [`TlSignatureCheck`] the caller supplies (Tamga's own engine,
//! `tamga_policy::TlSignatureEngine`, in practice: this crate sits below the
//! policy crate), and the last accepted sequence number is an input: keeping
//! it, and the last good list, on disk is the edge's job.
//!
//! What is read (v5 and v6 lists):
//!
//! * `SchemeInformation`: `TSLVersionIdentifier`, `TSLSequenceNumber`,
//!   `SchemeTerritory`, `SchemeOperatorName`, `ListIssueDateTime`,
//!   `NextUpdate/dateTime` (absent: a closed list) and, in a LOTL,
//!   `PointersToOtherTSL` (each pointer's territory, `TSLLocation`, MIME type
//!   and signer certificates);
//! * every `TSPService` of type `…/Svctype/CA/QC` or `…/Svctype/CA/PKC`: its
//!   certificates (`ServiceDigitalIdentity/DigitalId/X509Certificate`) and
//!   its status over time, from `ServiceInformation` (current) and
//!   `ServiceHistory` (earlier), each valid from its `StatusStartingTime`.
//!
//! A CA counts at time *t* when the status in force at *t* is one of
//! [`ACCEPTED_STATUSES`] (granted, recognised at national level, and the
//! pre-2016 equivalents accredited / under supervision / supervision in
//! cessation). Other service types (TSA, OCSP, …) are ignored.

use serde::Serialize;
use tamga_xml::{Document, Node, ParseLimits};

use crate::country::CountryCode;
use crate::summary::{sha256_hex, summarize_certificate, CertSummary};

/// The TS 119 612 namespace.
pub const TSL_NS: &str = "http://uri.etsi.org/02231/v2#";
/// Service type of a CA issuing qualified certificates.
pub const SVC_CA_QC: &str = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC";
/// Service type of a CA issuing public key certificates.
pub const SVC_CA_PKC: &str = "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC";
/// Status: granted.
pub const STATUS_GRANTED: &str = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted";
/// Status: withdrawn.
pub const STATUS_WITHDRAWN: &str = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn";
/// Status: recognised at national level (non-qualified services).
pub const STATUS_RECOGNISED: &str =
    "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/recognisedatnationallevel";

/// Statuses under which a CA's certificates are trusted.
pub const ACCEPTED_STATUSES: &[&str] = &[
    STATUS_GRANTED,
    STATUS_RECOGNISED,
    // Before eIDAS (TS 119 612 v1): the same meaning under older names.
    "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/accredited",
    "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/undersupervision",
    "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/supervisionincessation",
];

/// Most services, pointers or certificates read from one list: a real
/// national TL has tens of services; this refuses a list built to exhaust memory.
const MAX_ENTRIES: usize = 10_000;

/// One status of a service, in force from `from_unix` until the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusPeriod {
    /// The status URI.
    pub status: String,
    /// `StatusStartingTime`, Unix seconds.
    pub from_unix: i64,
}

/// A CA service of a trusted list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlService {
    /// The provider's name (`TSPName`, first `Name`).
    pub provider: String,
    /// The service's name (`ServiceName`, first `Name`).
    pub name: String,
    /// `ServiceTypeIdentifier` (CA/QC or CA/PKC).
    pub service_type: String,
    /// The service's certificates, DER.
    #[serde(skip)]
    pub certificates: Vec<Vec<u8>>,
    /// Statuses, oldest first (history, then the current one).
    pub statuses: Vec<StatusPeriod>,
}

impl TlService {
    /// The status in force at `at_unix`, if the service existed then.
    pub fn status_at(&self, at_unix: i64) -> Option<&StatusPeriod> {
        self.statuses.iter().rev().find(|p| p.from_unix <= at_unix)
    }

    /// Whether its certificates are trusted at `at_unix`.
    pub fn trusted_at(&self, at_unix: i64) -> bool {
        self.status_at(at_unix)
            .is_some_and(|p| ACCEPTED_STATUSES.contains(&p.status.as_str()))
    }
}

/// A LOTL's pointer to one country's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlPointer {
    /// The pointed list's `SchemeTerritory`.
    pub territory: String,
    /// `TSLLocation`.
    pub location: String,
    /// `MimeType` from `AdditionalInformation`, if given.
    pub mime_type: Option<String>,
    /// Certificates allowed to sign the pointed list, DER.
    #[serde(skip)]
    pub signer_certificates: Vec<Vec<u8>>,
}

/// A parsed (not yet trusted) trusted list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedList {
    /// `TSLVersionIdentifier` (5 or 6).
    pub version: u32,
    /// `TSLSequenceNumber`.
    pub sequence: u64,
    /// `SchemeTerritory` (a country code, or `EU` for the LOTL).
    pub territory: String,
    /// `SchemeOperatorName`, first `Name`.
    pub operator: String,
    /// `ListIssueDateTime`, Unix seconds.
    pub issued_unix: i64,
    /// `NextUpdate/dateTime`, Unix seconds; `None` for a closed list.
    pub next_update_unix: Option<i64>,
    /// The CA services (other service types are not kept).
    pub services: Vec<TlService>,
    /// LOTL pointers to other lists.
    pub pointers: Vec<TlPointer>,
}

/// Why a trusted list is refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlError {
    /// Not XML Tamga accepts, or not a TS 119 612 list.
    #[error("not a usable ETSI TS 119 612 trusted list: {0}")]
    Malformed(String),
    /// The enveloped signature does not verify (or is missing).
    #[error("the trusted list's signature is not valid: {0}")]
    Signature(String),
    /// The signature verifies, but with a certificate that is not pinned.
    #[error(
        "the trusted list is signed by a certificate that is not pinned for it (SHA-256 {sha256})"
    )]
    SignerNotPinned {
        /// SHA-256 of the signer certificate.
        sha256: String,
    },
    /// A lower sequence number than the last list accepted for the territory.
    #[error("sequence number {got} is lower than the last accepted ({last}): refusing a rollback")]
    Rollback {
        /// This list's sequence number.
        got: u64,
        /// The last accepted one.
        last: u64,
    },
    /// The list is for another territory than it was configured for.
    #[error("the list is for territory {got}, expected {expected}")]
    TerritoryMismatch {
        /// Expected territory.
        expected: String,
        /// The list's `SchemeTerritory`.
        got: String,
    },
}

/// Checks a list's enveloped signature and says who signed it.
pub trait TlSignatureCheck {
    /// Verifies the enveloped signature over the whole list at `at_unix` and
    /// returns the SHA-256 (lower-case hex) of the signer certificate. The
    /// caller compares it with the pinned certificates; the implementation
    /// must not decide trust in the signer.
    fn signer_sha256(&self, xml: &[u8], at_unix: i64) -> Result<String, String>;
}

/// A list whose signature and sequence number were accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedList {
    /// The list.
    pub list: TrustedList,
    /// The pinned certificate that signed it.
    pub signer: CertSummary,
    /// Where it came from (path or location), for reports and logs.
    pub source: String,
    /// SHA-256 of the list's bytes.
    pub sha256: String,
}

/// One list to accept.
pub struct TlCheck<'a> {
    /// The list's bytes.
    pub bytes: &'a [u8],
    /// Where it came from.
    pub source: &'a str,
    /// Certificates allowed to sign it (from the configuration or the LOTL), DER.
    pub pinned_signers: &'a [Vec<u8>],
    /// The territory the list must be for, when known (LOTL pointer, configuration).
    pub expected_territory: Option<&'a str>,
    /// Highest sequence number accepted so far for this territory.
    pub last_accepted_sequence: Option<u64>,
    /// Time of the check (signature validity of the signer), Unix seconds.
    pub at_unix: i64,
    /// The signature engine.
    pub signature: &'a dyn TlSignatureCheck,
}

impl std::fmt::Debug for TlCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlCheck")
            .field("source", &self.source)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Parses, then checks signature, pinning, territory and sequence number, in
/// that order (the cheap structural refusal first, the rollback last so
/// that it is only reported for an authentic list).
///
/// NextUpdate is not checked here: staleness depends on the validation
/// time, and a stale list is still better evidence than none when reading
/// old declarations. Path validation reports it ([`crate::PathError::TrustListStale`]).
pub fn accept_trusted_list(check: &TlCheck<'_>) -> Result<AcceptedList, TlError> {
    let list = parse_trusted_list(check.bytes)?;
    let signer_sha = check
        .signature
        .signer_sha256(check.bytes, check.at_unix)
        .map_err(TlError::Signature)?;
    let signer = check
        .pinned_signers
        .iter()
        .find(|der| sha256_hex(der) == signer_sha)
        .ok_or_else(|| TlError::SignerNotPinned {
            sha256: signer_sha.clone(),
        })?;
    let signer = summarize_certificate(signer)
        .map_err(|e| TlError::Signature(format!("pinned signer: {e}")))?;
    if let Some(expected) = check.expected_territory {
        if !expected.eq_ignore_ascii_case(&list.territory) {
            return Err(TlError::TerritoryMismatch {
                expected: expected.to_owned(),
                got: list.territory.clone(),
            });
        }
    }
    if let Some(last) = check.last_accepted_sequence {
        if list.sequence < last {
            return Err(TlError::Rollback {
                got: list.sequence,
                last,
            });
        }
    }
    Ok(AcceptedList {
        list,
        signer,
        source: check.source.to_owned(),
        sha256: sha256_hex(check.bytes),
    })
}

impl AcceptedList {
    /// The list's territory as a country code (`EU` parses too: it is two letters).
    pub fn country(&self) -> Result<CountryCode, TlError> {
        self.list
            .territory
            .parse()
            .map_err(|_| TlError::Malformed(format!("territory {:?}", self.list.territory)))
    }
}

/// Parses a trusted list without any trust decision.
pub fn parse_trusted_list(bytes: &[u8]) -> Result<TrustedList, TlError> {
    let doc = Document::parse(bytes, &ParseLimits::default())
        .map_err(|e| TlError::Malformed(e.to_string()))?;
    let root = doc.root();
    if !root.is(TSL_NS, "TrustServiceStatusList") {
        return Err(TlError::Malformed(format!(
            "the document element is {{{}}}{}, not TrustServiceStatusList",
            root.namespace().unwrap_or(""),
            root.local_name()
        )));
    }
    let info = required(root, "SchemeInformation")?;
    let version = number(
        required(info, "TSLVersionIdentifier")?,
        "TSLVersionIdentifier",
    )?;
    let version = u32::try_from(version)
        .map_err(|_| TlError::Malformed("TSLVersionIdentifier is out of range".into()))?;
    if !(5..=6).contains(&version) {
        return Err(TlError::Malformed(format!(
            "TSLVersionIdentifier {version} (5 or 6 expected)"
        )));
    }
    let sequence = number(required(info, "TSLSequenceNumber")?, "TSLSequenceNumber")?;
    let territory = text(required(info, "SchemeTerritory")?);
    if territory.len() != 2 || !territory.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(TlError::Malformed(format!(
            "SchemeTerritory {territory:?} is not a two-letter code"
        )));
    }
    let operator = info
        .child(TSL_NS, "SchemeOperatorName")
        .map(first_name)
        .unwrap_or_default();
    let issued_unix = date_time(required(info, "ListIssueDateTime")?, "ListIssueDateTime")?;
    let next_update_unix = match info.child(TSL_NS, "NextUpdate") {
        Some(n) => match n.child(TSL_NS, "dateTime") {
            Some(dt) => Some(date_time(dt, "NextUpdate")?),
            None => None,
        },
        None => {
            return Err(TlError::Malformed(
                "SchemeInformation has no NextUpdate".into(),
            ))
        }
    };
    let mut pointers = Vec::new();
    if let Some(ptrs) = info.child(TSL_NS, "PointersToOtherTSL") {
        for p in children(ptrs, "OtherTSLPointer") {
            if pointers.len() >= MAX_ENTRIES {
                return Err(TlError::Malformed(
                    "too many OtherTSLPointer entries".into(),
                ));
            }
            pointers.push(pointer(p)?);
        }
    }
    let mut services = Vec::new();
    if let Some(tsps) = root.child(TSL_NS, "TrustServiceProviderList") {
        for tsp in children(tsps, "TrustServiceProvider") {
            let provider = tsp
                .child(TSL_NS, "TSPInformation")
                .and_then(|i| i.child(TSL_NS, "TSPName"))
                .map(first_name)
                .unwrap_or_default();
            let Some(svcs) = tsp.child(TSL_NS, "TSPServices") else {
                continue;
            };
            for svc in children(svcs, "TSPService") {
                if services.len() >= MAX_ENTRIES {
                    return Err(TlError::Malformed("too many TSPService entries".into()));
                }
                if let Some(s) = service(svc, &provider)? {
                    services.push(s);
                }
            }
        }
    }
    Ok(TrustedList {
        version,
        sequence,
        territory: territory.to_ascii_uppercase(),
        operator,
        issued_unix,
        next_update_unix,
        services,
        pointers,
    })
}

fn service(svc: Node<'_>, provider: &str) -> Result<Option<TlService>, TlError> {
    let current = required(svc, "ServiceInformation")?;
    let service_type = text(required(current, "ServiceTypeIdentifier")?);
    if service_type != SVC_CA_QC && service_type != SVC_CA_PKC {
        return Ok(None);
    }
    let name = current
        .child(TSL_NS, "ServiceName")
        .map(first_name)
        .unwrap_or_default();
    let certificates = digital_ids(required(current, "ServiceDigitalIdentity")?)?;
    if certificates.is_empty() {
        return Err(TlError::Malformed(format!(
            "CA service {name:?} has no X509Certificate"
        )));
    }
    let mut statuses = vec![status(current)?];
    if let Some(history) = svc.child(TSL_NS, "ServiceHistory") {
        for h in children(history, "ServiceHistoryInstance") {
            if statuses.len() >= MAX_ENTRIES {
                return Err(TlError::Malformed(
                    "too many ServiceHistoryInstance entries".into(),
                ));
            }
            // A history instance of another type (the service changed type)
            // says nothing about it as a CA.
            let t = text(required(h, "ServiceTypeIdentifier")?);
            let mut period = status(h)?;
            if t != SVC_CA_QC && t != SVC_CA_PKC {
                period.status = format!("(as {t}) {}", period.status);
            }
            statuses.push(period);
        }
    }
    statuses.sort_by_key(|p| p.from_unix);
    Ok(Some(TlService {
        provider: provider.to_owned(),
        name,
        service_type,
        certificates,
        statuses,
    }))
}

fn status(n: Node<'_>) -> Result<StatusPeriod, TlError> {
    Ok(StatusPeriod {
        status: text(required(n, "ServiceStatus")?),
        from_unix: date_time(required(n, "StatusStartingTime")?, "StatusStartingTime")?,
    })
}

fn pointer(p: Node<'_>) -> Result<TlPointer, TlError> {
    let location = text(required(p, "TSLLocation")?);
    let mut signer_certificates = Vec::new();
    if let Some(ids) = p.child(TSL_NS, "ServiceDigitalIdentities") {
        for id in children(ids, "ServiceDigitalIdentity") {
            signer_certificates.extend(digital_ids(id)?);
        }
    }
    let mut territory = None;
    let mut mime_type = None;
    if let Some(info) = p.child(TSL_NS, "AdditionalInformation") {
        for other in children(info, "OtherInformation") {
            for c in other.element_children() {
                match c.local_name() {
                    "SchemeTerritory" => territory = Some(text(c)),
                    "MimeType" => mime_type = Some(text(c)),
                    _ => {}
                }
            }
        }
    }
    let territory = territory.ok_or_else(|| {
        TlError::Malformed(format!("pointer to {location} names no SchemeTerritory"))
    })?;
    Ok(TlPointer {
        territory: territory.to_ascii_uppercase(),
        location,
        mime_type,
        signer_certificates,
    })
}

fn digital_ids(identity: Node<'_>) -> Result<Vec<Vec<u8>>, TlError> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for id in children(identity, "DigitalId") {
        if let Some(c) = id.child(TSL_NS, "X509Certificate") {
            let b64: String = text(c).chars().filter(|c| !c.is_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| TlError::Malformed(format!("X509Certificate: {e}")))?;
            summarize_certificate(&der)
                .map_err(|e| TlError::Malformed(format!("X509Certificate: {e}")))?;
            out.push(der);
            if out.len() > MAX_ENTRIES {
                return Err(TlError::Malformed("too many certificates".into()));
            }
        }
    }
    Ok(out)
}

fn children<'d>(n: Node<'d>, local: &'static str) -> impl Iterator<Item = Node<'d>> {
    n.element_children().filter(move |c| c.is(TSL_NS, local))
}

fn required<'d>(n: Node<'d>, local: &str) -> Result<Node<'d>, TlError> {
    n.child(TSL_NS, local)
        .ok_or_else(|| TlError::Malformed(format!("{} has no {local}", n.local_name())))
}

fn text(n: Node<'_>) -> String {
    n.text().trim().to_owned()
}

fn first_name(n: Node<'_>) -> String {
    n.child(TSL_NS, "Name").map(text).unwrap_or_default()
}

fn number(n: Node<'_>, what: &str) -> Result<u64, TlError> {
    text(n)
        .parse()
        .map_err(|_| TlError::Malformed(format!("{what} {:?} is not a number", text(n))))
}

fn date_time(n: Node<'_>, what: &str) -> Result<i64, TlError> {
    let s = text(n);
    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| TlError::Malformed(format!("{what} {s:?} is not an xsd:dateTime with a zone")))
}

/// What [`build_trusted_list`] writes.
#[derive(Clone, Debug)]
pub struct TlBuild<'a> {
    /// `SchemeTerritory`.
    pub territory: &'a str,
    /// `SchemeOperatorName`.
    pub operator: &'a str,
    /// `TSLSequenceNumber`.
    pub sequence: u64,
    /// `ListIssueDateTime`, Unix seconds.
    pub issued_unix: i64,
    /// `NextUpdate`, Unix seconds.
    pub next_update_unix: i64,
    /// CA services; each one's `statuses` oldest first, the last one current.
    pub services: &'a [TlService],
    /// LOTL pointers (empty for a country's list).
    pub pointers: &'a [TlPointer],
}

/// Writes an unsigned TS 119 612 (v5) list; sign it with an enveloped XAdES
/// signature (`tamga_dsig::sign_enveloped`, `xades: true`) before use.
pub fn build_trusted_list(b: &TlBuild<'_>) -> Result<String, TlError> {
    use std::fmt::Write as _;
    let lotl = !b.pointers.is_empty();
    let mut x = String::new();
    let tsl_type = format!(
        "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/{}{}",
        b.territory,
        if lotl { "listofthelists" } else { "list" }
    );
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tsl:TrustServiceStatusList xmlns:tsl=\"{TSL_NS}\" TSLTag=\"http://uri.etsi.org/19612/TSLTag\">\n<tsl:SchemeInformation>\n<tsl:TSLVersionIdentifier>5</tsl:TSLVersionIdentifier>\n<tsl:TSLSequenceNumber>{}</tsl:TSLSequenceNumber>\n<tsl:TSLType>{}</tsl:TSLType>\n<tsl:SchemeOperatorName><tsl:Name xml:lang=\"en\">{}</tsl:Name></tsl:SchemeOperatorName>\n<tsl:SchemeTerritory>{}</tsl:SchemeTerritory>\n<tsl:ListIssueDateTime>{}</tsl:ListIssueDateTime>\n<tsl:NextUpdate><tsl:dateTime>{}</tsl:dateTime></tsl:NextUpdate>\n",
        b.sequence,
        escape(&tsl_type),
        escape(b.operator),
        escape(b.territory),
        rfc3339(b.issued_unix)?,
        rfc3339(b.next_update_unix)?,
    );
    if lotl {
        x.push_str("<tsl:PointersToOtherTSL>\n");
        for p in b.pointers {
            x.push_str("<tsl:OtherTSLPointer>\n<tsl:ServiceDigitalIdentities>\n");
            for der in &p.signer_certificates {
                let _ = writeln!(
                    x,
                    "<tsl:ServiceDigitalIdentity><tsl:DigitalId><tsl:X509Certificate>{}</tsl:X509Certificate></tsl:DigitalId></tsl:ServiceDigitalIdentity>",
                    b64(der)
                );
            }
            let _ = write!(
                x,
                "</tsl:ServiceDigitalIdentities>\n<tsl:TSLLocation>{}</tsl:TSLLocation>\n<tsl:AdditionalInformation>\n<tsl:OtherInformation><tsl:SchemeTerritory>{}</tsl:SchemeTerritory></tsl:OtherInformation>\n<tsl:OtherInformation><tslx:MimeType xmlns:tslx=\"http://uri.etsi.org/02231/v2/additionaltypes#\">{}</tslx:MimeType></tsl:OtherInformation>\n</tsl:AdditionalInformation>\n</tsl:OtherTSLPointer>\n",
                escape(&p.location),
                escape(&p.territory),
                escape(p.mime_type.as_deref().unwrap_or("application/vnd.etsi.tsl+xml")),
            );
        }
        x.push_str("</tsl:PointersToOtherTSL>\n");
    }
    x.push_str("</tsl:SchemeInformation>\n");
    if !b.services.is_empty() {
        x.push_str("<tsl:TrustServiceProviderList>\n");
        // One provider per distinct provider name, in order of first appearance.
        let mut providers: Vec<&str> = Vec::new();
        for s in b.services {
            if !providers.contains(&s.provider.as_str()) {
                providers.push(&s.provider);
            }
        }
        for provider in providers {
            let _ = write!(
                x,
                "<tsl:TrustServiceProvider>\n<tsl:TSPInformation><tsl:TSPName><tsl:Name xml:lang=\"en\">{}</tsl:Name></tsl:TSPName></tsl:TSPInformation>\n<tsl:TSPServices>\n",
                escape(provider)
            );
            for s in b.services.iter().filter(|s| s.provider == provider) {
                let Some((current, history)) = s.statuses.split_last() else {
                    return Err(TlError::Malformed(format!(
                        "service {:?} has no status",
                        s.name
                    )));
                };
                x.push_str("<tsl:TSPService>\n<tsl:ServiceInformation>\n");
                service_body(&mut x, s, current)?;
                x.push_str("</tsl:ServiceInformation>\n");
                if !history.is_empty() {
                    x.push_str("<tsl:ServiceHistory>\n");
                    for h in history.iter().rev() {
                        x.push_str("<tsl:ServiceHistoryInstance>\n");
                        service_body(&mut x, s, h)?;
                        x.push_str("</tsl:ServiceHistoryInstance>\n");
                    }
                    x.push_str("</tsl:ServiceHistory>\n");
                }
                x.push_str("</tsl:TSPService>\n");
            }
            x.push_str("</tsl:TSPServices>\n</tsl:TrustServiceProvider>\n");
        }
        x.push_str("</tsl:TrustServiceProviderList>\n");
    }
    x.push_str("</tsl:TrustServiceStatusList>\n");
    Ok(x)
}

fn service_body(x: &mut String, s: &TlService, status: &StatusPeriod) -> Result<(), TlError> {
    use std::fmt::Write as _;
    let _ = write!(
        x,
        "<tsl:ServiceTypeIdentifier>{}</tsl:ServiceTypeIdentifier>\n<tsl:ServiceName><tsl:Name xml:lang=\"en\">{}</tsl:Name></tsl:ServiceName>\n<tsl:ServiceDigitalIdentity>\n",
        escape(&s.service_type),
        escape(&s.name)
    );
    for der in &s.certificates {
        let _ = writeln!(
            x,
            "<tsl:DigitalId><tsl:X509Certificate>{}</tsl:X509Certificate></tsl:DigitalId>",
            b64(der)
        );
    }
    let _ = write!(
        x,
        "</tsl:ServiceDigitalIdentity>\n<tsl:ServiceStatus>{}</tsl:ServiceStatus>\n<tsl:StatusStartingTime>{}</tsl:StatusStartingTime>\n",
        escape(&status.status),
        rfc3339(status.from_unix)?
    );
    Ok(())
}

fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rfc3339(unix: i64) -> Result<String, TlError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| TlError::Malformed(format!("time {unix} is out of range")))
}
