use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::Serialize;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList as X509Crl;

use crate::country::CountryCode;
use crate::error::{PathError, TrustLoadError};
use crate::fault::{FaultEntry, FaultKind, TrustFault};
use crate::summary::{parse_certificate, serial_hex, sha256_hex, summary_of, CertSummary};

/// One file of the trust list, as read from `<DIR>/<CC>/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustFile {
    /// The country folder the file sits in.
    pub country: CountryCode,
    /// The file name (its extension decides how it is read).
    pub name: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// What a report or an operator sees about one loaded CRL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlSummary {
    /// Issuer DN.
    pub issuer: String,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// CRL number as lower-case hex, if present.
    pub crl_number: Option<String>,
    /// How many certificates it lists.
    pub revoked_count: usize,
    /// The file it came from, `CC/filename`.
    pub source: String,
    /// Lower-case hex SHA-256 of the CRL DER.
    pub sha256: String,
}

/// The mutual-recognition trust list: per partner country, the CA certificates
/// whose signers are recognised and the CRLs published by that country's CAs.
///
/// Immutable once built, and `Send + Sync`, so one instance can serve every request.
#[derive(Debug, Default)]
pub struct TrustList {
    pub(crate) countries: BTreeMap<CountryCode, CountryTrust>,
}

#[derive(Debug, Default)]
pub(crate) struct CountryTrust {
    pub(crate) anchors: Vec<AnchorEntry>,
    /// Parallel to `anchors`; webpki wants a plain slice.
    pub(crate) webpki_anchors: Vec<TrustAnchor<'static>>,
    /// Newest first: webpki uses the first CRL whose issuer (and scope) matches.
    pub(crate) crls: Vec<CrlEntry>,
    /// Material of this country that could not be used.
    pub(crate) faults: Vec<FaultEntry>,
    /// Set when nothing of this country can be trusted (a bad anchor file, an
    /// invalid trusted list): every validation for it returns this.
    pub(crate) blocked: Option<PathError>,
    /// Directory or trusted list (sequence number, NextUpdate).
    pub(crate) source: crate::tl_source::TrustSource,
}

#[derive(Debug)]
pub(crate) struct AnchorEntry {
    pub(crate) summary: CertSummary,
    /// The anchor's own pathLenConstraint: webpki's `TrustAnchor` drops it, so we enforce it.
    pub(crate) path_len: Option<u32>,
    /// The certificate itself, for checks outside webpki (TSA paths).
    pub(crate) der: Vec<u8>,
    /// From a trusted list: the statuses of each service listing this
    /// certificate; it is an anchor at a time when any of them is granted
    /// or recognised. `None` (directory source): always, within its validity.
    pub(crate) statuses: Option<Vec<Vec<crate::tsl::StatusPeriod>>>,
}

#[derive(Debug)]
pub(crate) struct CrlEntry {
    pub(crate) crl: CertRevocationList<'static>,
    pub(crate) summary: CrlSummary,
}

enum FileKind {
    /// `.pem`: one or more PEM certificates.
    PemCerts,
    /// `.crt`: PEM or DER certificate(s).
    AnyCerts,
    /// `.der`: one DER certificate.
    DerCert,
    /// `.crl`: PEM or DER CRL(s).
    Crls,
}

fn file_kind(name: &str) -> Option<FileKind> {
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "pem" => Some(FileKind::PemCerts),
        "crt" => Some(FileKind::AnyCerts),
        "der" => Some(FileKind::DerCert),
        "crl" => Some(FileKind::Crls),
        _ => None,
    }
}

/// Summarises a DER CRL (e.g. one carried in a signature's KeyInfo) as the
/// report shows it; `None` when Tamga would not use it.
pub fn summarize_crl(der: &[u8], source: &str) -> Option<CrlSummary> {
    load_crl(der, source).ok().map(|c| c.summary)
}

impl TrustList {
    /// Reads `<dir>/<CC>/*`. This is the crate's only I/O.
    ///
    /// Hidden entries and top-level files are skipped; a non-hidden top-level
    /// directory must be named by an upper-case country code. Inside a country
    /// folder, `*.pem`, `*.crt`, `*.der` and `*.crl` are read and everything else
    /// is skipped. A country folder is known even when empty (its signers then
    /// fail with `NoChain`, not `UnknownCountry`).
    pub fn load_dir(dir: &Path) -> Result<TrustList, TrustLoadError> {
        let mut countries = BTreeSet::new();
        let mut files = Vec::new();
        let mut faults = Vec::new();
        for entry in sorted_entries(dir)? {
            let (name, path) = entry;
            if name.starts_with('.') {
                continue;
            }
            // Follows symlinks, so a linked country folder counts as a folder.
            let meta = fs::metadata(&path).map_err(|source| TrustLoadError::ReadFile {
                path: path.clone(),
                source,
            })?;
            if !meta.is_dir() {
                continue;
            }
            let cc = CountryCode::from_upper(&name)
                .map_err(|_| TrustLoadError::InvalidCountryFolder { name: name.clone() })?;
            countries.insert(cc);
            let entries = match sorted_entries(&path) {
                Ok(entries) => entries,
                Err(e) => {
                    faults.push(FaultEntry::country(
                        cc,
                        FaultKind::Anchor,
                        cc.to_string(),
                        &e,
                    ));
                    continue;
                }
            };
            for (file_name, file_path) in entries {
                let Some(kind) = file_kind(&file_name) else {
                    continue;
                };
                if file_name.starts_with('.') {
                    continue;
                }
                let read = fs::metadata(&file_path).and_then(|meta| {
                    if meta.is_file() {
                        fs::read(&file_path).map(Some)
                    } else {
                        Ok(None)
                    }
                });
                match read {
                    Ok(Some(bytes)) => files.push(TrustFile {
                        country: cc,
                        name: file_name,
                        bytes,
                    }),
                    Ok(None) => {}
                    Err(source) => {
                        let e = TrustLoadError::ReadFile {
                            path: file_path.clone(),
                            source,
                        };
                        let label = format!("{cc}/{file_name}");
                        faults.push(FaultEntry::country(cc, kind.fault_kind(), label, &e));
                    }
                }
            }
        }
        Ok(Self::build(countries, files, faults))
    }

    /// Builds a trust list from file contents. Every country that has at least
    /// one file (of any name) becomes known; files with other extensions are skipped.
    ///
    /// Never fails as a whole: a file that cannot be used becomes a fault of
    /// its country (see [`TrustList::faults`]). The `Result` is kept so that
    /// callers need not change if a list-wide check is ever added.
    pub fn from_files(files: Vec<TrustFile>) -> Result<TrustList, TrustLoadError> {
        let countries = files.iter().map(|f| f.country).collect();
        Ok(Self::build(countries, files, Vec::new()))
    }

    pub(crate) fn build(
        countries: BTreeSet<CountryCode>,
        files: Vec<TrustFile>,
        faults: Vec<FaultEntry>,
    ) -> TrustList {
        let mut map: BTreeMap<CountryCode, CountryTrust> = countries
            .into_iter()
            .map(|cc| (cc, CountryTrust::default()))
            .collect();
        for fault in faults {
            map.entry(fault.fault.country).or_default().add_fault(fault);
        }
        for file in files {
            let Some(kind) = file_kind(&file.name) else {
                continue;
            };
            let label = format!("{}/{}", file.country, file.name);
            let trust = map.entry(file.country).or_default();
            match kind {
                FileKind::Crls => match crl_ders(&file.bytes, &label) {
                    Ok(ders) => {
                        for der in ders {
                            match load_crl(&der, &label) {
                                Ok(crl) => trust.crls.push(crl),
                                Err(e) => trust.add_fault(FaultEntry::crl(
                                    file.country,
                                    label.clone(),
                                    &e,
                                    &der,
                                )),
                            }
                        }
                    }
                    Err(e) => trust.add_fault(FaultEntry::crl(file.country, label, &e, &[])),
                },
                FileKind::PemCerts | FileKind::AnyCerts | FileKind::DerCert => {
                    let added = cert_ders(&file.bytes, &kind, &label).and_then(|ders| {
                        ders.into_iter()
                            .try_for_each(|der| trust.add_anchor(der, &label))
                    });
                    if let Err(e) = added {
                        trust.add_fault(FaultEntry::country(
                            file.country,
                            FaultKind::Anchor,
                            label,
                            &e,
                        ));
                    }
                }
            }
        }
        for trust in map.values_mut() {
            // Stable sort keeps file order among CRLs issued at the same second.
            trust
                .crls
                .sort_by_key(|c| std::cmp::Reverse(c.summary.this_update));
        }
        TrustList { countries: map }
    }

    /// Everything that could not be used, country by country. Empty when the
    /// whole list loaded cleanly.
    pub fn faults(&self) -> Vec<TrustFault> {
        self.countries
            .values()
            .flat_map(|t| t.faults.iter().map(|f| f.fault.clone()))
            .collect()
    }

    /// Countries with at least one fault: some or all of their declarations
    /// will be INDETERMINATE until the partner fixes what it published.
    pub fn degraded_countries(&self) -> Vec<CountryCode> {
        self.countries
            .iter()
            .filter(|(_, t)| !t.faults.is_empty() || t.blocked.is_some())
            .map(|(cc, _)| *cc)
            .collect()
    }

    /// One line for an operator's terminal naming every degraded country, or
    /// `None` when nothing is degraded.
    pub fn degraded_warning(&self) -> Option<String> {
        let faults = self.faults();
        if faults.is_empty() {
            return None;
        }
        let parts: Vec<String> = faults
            .iter()
            .map(|f| format!("{} ({})", f.country, f.detail))
            .collect();
        let line = format!(
            "warning: trust list degraded, affected declarations will be INDETERMINATE: {}",
            parts.join("; ")
        );
        Some(line.replace(['\n', '\r'], " "))
    }

    /// Countries present in the trust list, in order.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.countries.keys().copied().collect()
    }

    /// Whether the country has a folder.
    pub fn contains(&self, cc: CountryCode) -> bool {
        self.countries.contains_key(&cc)
    }

    /// Number of distinct trusted CA certificates for the country (0 if unknown).
    pub fn anchor_count(&self, cc: CountryCode) -> usize {
        self.countries.get(&cc).map_or(0, |t| t.anchors.len())
    }

    /// Number of CRLs loaded for the country (0 if unknown).
    pub fn crl_count(&self, cc: CountryCode) -> usize {
        self.countries.get(&cc).map_or(0, |t| t.crls.len())
    }

    /// The country's trusted CA certificates.
    pub fn anchors(&self, cc: CountryCode) -> Vec<CertSummary> {
        self.countries.get(&cc).map_or_else(Vec::new, |t| {
            t.anchors.iter().map(|a| a.summary.clone()).collect()
        })
    }

    /// The country's trust anchors as DER certificates (e.g. to check a
    /// time-stamping authority that chains to the same national roots).
    pub fn anchor_certificates(&self, cc: CountryCode) -> Vec<Vec<u8>> {
        self.countries.get(&cc).map_or_else(Vec::new, |t| {
            t.anchors.iter().map(|a| a.der.clone()).collect()
        })
    }

    /// The country's CRLs, newest first.
    pub fn crls(&self, cc: CountryCode) -> Vec<CrlSummary> {
        self.countries.get(&cc).map_or_else(Vec::new, |t| {
            t.crls.iter().map(|c| c.summary.clone()).collect()
        })
    }
}

impl FileKind {
    fn fault_kind(&self) -> FaultKind {
        match self {
            FileKind::Crls => FaultKind::Crl,
            FileKind::PemCerts | FileKind::AnyCerts | FileKind::DerCert => FaultKind::Anchor,
        }
    }
}

impl FaultEntry {
    /// A fault that makes the whole country unusable (anchor file, listing error).
    pub(crate) fn country(
        country: CountryCode,
        kind: FaultKind,
        source: String,
        error: &TrustLoadError,
    ) -> FaultEntry {
        FaultEntry {
            fault: TrustFault {
                country,
                kind,
                source,
                detail: error.to_string(),
                issuer: None,
            },
            issuer_raw: None,
        }
    }

    /// An unusable CRL; its issuer is recovered when the DER still parses
    /// that far, so that only that CA's certificates are affected.
    pub(crate) fn crl(
        country: CountryCode,
        source: String,
        error: &TrustLoadError,
        der: &[u8],
    ) -> FaultEntry {
        let issuer = X509Crl::from_der(der)
            .ok()
            .map(|(_, crl)| (crl.issuer().as_raw().to_vec(), crl.issuer().to_string()));
        FaultEntry {
            fault: TrustFault {
                country,
                kind: FaultKind::Crl,
                source,
                detail: error.to_string(),
                issuer: issuer.as_ref().map(|(_, s)| s.clone()),
            },
            issuer_raw: issuer.map(|(raw, _)| raw),
        }
    }
}

impl CountryTrust {
    pub(crate) fn add_fault(&mut self, fault: FaultEntry) {
        if fault.fault.kind != FaultKind::Crl && self.blocked.is_none() {
            self.blocked = Some(PathError::TrustListInvalid {
                country: fault.fault.country,
                detail: fault.fault.detail.clone(),
            });
        }
        self.faults.push(fault);
    }

    pub(crate) fn add_anchor(&mut self, der: Vec<u8>, label: &str) -> Result<(), TrustLoadError> {
        let malformed = |detail: String| TrustLoadError::MalformedCertificate {
            file: label.to_owned(),
            detail,
        };
        let cert = parse_certificate(&der).map_err(|e| malformed(e.to_string()))?;
        let summary = summary_of(&cert, &der);
        // v1 roots carry no extensions, so they cannot say they are CAs; webpki
        // accepts them as anchors and so do we. A v3 certificate must say cA=true,
        // which catches an end-entity certificate dropped into the folder by mistake.
        let mut path_len = None;
        if cert.version().0 >= 2 {
            let bc = cert
                .basic_constraints()
                .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
            match bc {
                Some(bc) if bc.value.ca => path_len = bc.value.path_len_constraint,
                _ => {
                    return Err(TrustLoadError::NotACa {
                        file: label.to_owned(),
                        subject: summary.subject,
                    })
                }
            }
        }
        let cert_der = CertificateDer::from(der.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&cert_der)
            .map_err(|e| malformed(format!("{e:?}")))?
            .to_owned();
        if self
            .anchors
            .iter()
            .any(|a| a.summary.sha256 == summary.sha256)
        {
            return Ok(());
        }
        self.anchors.push(AnchorEntry {
            summary,
            path_len,
            der: der.clone(),
            statuses: None,
        });
        self.webpki_anchors.push(anchor);
        Ok(())
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, TrustLoadError> {
    let read_err = |source| TrustLoadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        // A non-UTF-8 name cannot be a country code or a recognised extension;
        // the lossy form still fails the country check, which is what we want.
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path()));
    }
    // Directory order is filesystem-dependent; sorting makes errors and CRL ties reproducible.
    out.sort();
    Ok(out)
}

/// DER starts with a SEQUENCE tag; PEM (with or without explanatory text in
/// front) never starts with byte 0x30 ('0') in practice.
fn looks_like_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30)
}

fn pem_sections(
    bytes: &[u8],
    wanted: SectionKind,
    what: &str,
    label: &str,
    err: impl Fn(String, String) -> TrustLoadError,
) -> Result<Vec<Vec<u8>>, TrustLoadError> {
    let mut out = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|e| err(label.to_owned(), format!("PEM: {e}")))?;
        if kind != wanted {
            return Err(err(
                label.to_owned(),
                format!("unexpected PEM section {kind:?} in a {what} file"),
            ));
        }
        out.push(der);
    }
    if out.is_empty() {
        return Err(err(
            label.to_owned(),
            format!("no PEM {what} section found"),
        ));
    }
    Ok(out)
}

fn cert_ders(bytes: &[u8], kind: &FileKind, label: &str) -> Result<Vec<Vec<u8>>, TrustLoadError> {
    let err = |file, detail| TrustLoadError::MalformedCertificate { file, detail };
    let der = match kind {
        FileKind::DerCert => true,
        FileKind::AnyCerts => looks_like_der(bytes),
        _ => false,
    };
    if der {
        Ok(vec![bytes.to_vec()])
    } else {
        pem_sections(bytes, SectionKind::Certificate, "CERTIFICATE", label, err)
    }
}

fn crl_ders(bytes: &[u8], label: &str) -> Result<Vec<Vec<u8>>, TrustLoadError> {
    let err = |file, detail| TrustLoadError::MalformedCrl { file, detail };
    if looks_like_der(bytes) {
        Ok(vec![bytes.to_vec()])
    } else {
        pem_sections(bytes, SectionKind::Crl, "X509 CRL", label, err)
    }
}

pub(crate) fn load_crl(der: &[u8], label: &str) -> Result<CrlEntry, TrustLoadError> {
    let malformed = |detail: String| TrustLoadError::MalformedCrl {
        file: label.to_owned(),
        detail,
    };
    let parsed = match X509Crl::from_der(der) {
        Ok(([], crl)) => crl,
        Ok(_) => return Err(malformed("trailing bytes after the CRL".into())),
        Err(e) => return Err(malformed(e.to_string())),
    };
    // RFC 5280 §5.2.3 makes the CRL number mandatory, and it is what a report
    // cites as revocation evidence; a CRL without one is refused (for its
    // issuer only, see `fault.rs`) rather than accepted with a warning.
    if parsed.crl_number().is_none() {
        return Err(malformed(
            "the CRL has no CRL number extension (RFC 5280 section 5.2.3 requires one)".into(),
        ));
    }
    // webpki decides what is usable (v2 only, no delta/indirect CRLs, ...);
    // x509-parser only supplies the human-readable summary.
    let owned = OwnedCertRevocationList::from_der(der).map_err(|e| malformed(format!("{e:?}")))?;
    let next_update = parsed
        .next_update()
        .ok_or_else(|| malformed("nextUpdate is missing".into()))?;
    let summary = CrlSummary {
        issuer: parsed.issuer().to_string(),
        this_update: parsed.last_update().timestamp(),
        next_update: next_update.timestamp(),
        crl_number: parsed.crl_number().map(|n| serial_hex(&n.to_bytes_be())),
        revoked_count: parsed.iter_revoked_certificates().count(),
        source: label.to_owned(),
        sha256: sha256_hex(der),
    };
    Ok(CrlEntry {
        crl: owned.into(),
        summary,
    })
}
