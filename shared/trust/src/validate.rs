use std::cell::RefCell;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use serde::{Deserialize, Serialize};
use webpki::aws_lc_rs as algs;
use webpki::{
    EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter,
    KeyUsage, RequiredEkuNotFoundContext, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy, VerifiedPath,
};
use x509_parser::certificate::X509Certificate;

use crate::country::CountryCode;
use crate::eku::Eku;
use crate::error::{map_webpki_error, PathError};
use crate::fault::{FaultEntry, FaultKind};
use crate::memo::Memoized;
use crate::summary::{
    parse_certificate, serial_hex, summarize_certificate, summary_of, CertSummary,
};
use crate::trust_list::{load_crl, AnchorEntry, CountryTrust, CrlEntry, TrustList};

/// Signature algorithms accepted on certificates and CRLs. Listed explicitly so
/// a webpki upgrade cannot widen the policy unnoticed. SHA-1, MD5, DSA and
/// RSA keys under 2048 bits are absent on purpose; GOST comes from
/// `tamga-gost` (see [`accepted_algorithms`]).
///
/// Each is wrapped in [`Memoized`], which remembers successful checks: the
/// same CA certificates and CRLs come with every declaration (see `memo.rs`).
static ACCEPTED_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    &Memoized {
        id: 0,
        inner: algs::ECDSA_P256_SHA256,
    },
    &Memoized {
        id: 1,
        inner: algs::ECDSA_P256_SHA384,
    },
    &Memoized {
        id: 2,
        inner: algs::ECDSA_P256_SHA512,
    },
    &Memoized {
        id: 3,
        inner: algs::ECDSA_P384_SHA256,
    },
    &Memoized {
        id: 4,
        inner: algs::ECDSA_P384_SHA384,
    },
    &Memoized {
        id: 5,
        inner: algs::ECDSA_P384_SHA512,
    },
    &Memoized {
        id: 6,
        inner: algs::ECDSA_P521_SHA256,
    },
    &Memoized {
        id: 7,
        inner: algs::ECDSA_P521_SHA384,
    },
    &Memoized {
        id: 8,
        inner: algs::ECDSA_P521_SHA512,
    },
    &Memoized {
        id: 9,
        inner: algs::ED25519,
    },
    &Memoized {
        id: 10,
        inner: algs::RSA_PKCS1_2048_8192_SHA256,
    },
    &Memoized {
        id: 11,
        inner: algs::RSA_PKCS1_2048_8192_SHA384,
    },
    &Memoized {
        id: 12,
        inner: algs::RSA_PKCS1_2048_8192_SHA512,
    },
    &Memoized {
        id: 13,
        inner: algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    },
    &Memoized {
        id: 14,
        inner: algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    },
    &Memoized {
        id: 15,
        inner: algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    },
    &Memoized {
        id: 16,
        inner: algs::RSA_PKCS1_3072_8192_SHA384,
    },
    &Memoized {
        id: 17,
        inner: algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    },
    &Memoized {
        id: 18,
        inner: algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    },
    &Memoized {
        id: 19,
        inner: algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    },
];

/// [`ACCEPTED_ALGORITHMS`] and GOST R 34.10-2012/2015 (TC26, CryptoPro and
/// Kazakh NCA identifiers, `tamga_gost::webpki`), each memoized under its
/// own id so a check remembered for one curve never answers for another.
pub(crate) fn accepted_algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALL: std::sync::OnceLock<Vec<&'static dyn SignatureVerificationAlgorithm>> =
        std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = ACCEPTED_ALGORITHMS.to_vec();
        let first_id = u8::try_from(all.len()).unwrap_or(u8::MAX);
        for (i, gost) in tamga_gost::webpki::certificate_algorithms()
            .iter()
            .enumerate()
        {
            let id = first_id.saturating_add(u8::try_from(i).unwrap_or(u8::MAX));
            // Built once per process: leaking gives the 'static webpki wants.
            let memo: &'static Memoized = Box::leak(Box::new(Memoized { id, inner: gost }));
            all.push(memo);
        }
        all
    })
}

/// How the revocation status of the path's certificates is established.
///
/// OCSP responses come from the signature (`xades:OCSPValues`) or from the
/// edge's fetcher ([`PathRequest::ocsp_responses`]); CRLs from the trust
/// list and the signature (`KeyInfo/X509CRL`, `xades:CRLValues`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationMode {
    /// Every non-anchor certificate in the path needs fresh evidence: a CRL
    /// from its issuer, or else a `good` OCSP response. CRLs are consulted
    /// for every certificate as under [`RevocationMode::CrlOnly`] (a stale or
    /// badly signed CRL of an issuer on the path still refuses); OCSP fills
    /// the gaps, and a `revoked` OCSP answer revokes. Without any OCSP
    /// response this is exactly `CrlOnly`.
    #[default]
    Require,
    /// OCSP first: a usable OCSP response (`good` or `revoked`) settles a
    /// certificate and its issuer's CRLs are not consulted for it (a
    /// partner's broken CRL does not matter while its responder answers).
    /// Where no usable response is at hand (none, responder down,
    /// unauthorised, stale, `unknown`) the CRL decides as under `Require`;
    /// with neither, the certificate's status is unknown (INDETERMINATE,
    /// naming the OCSP problem).
    #[serde(rename = "prefer-ocsp", alias = "preferOcsp")]
    PreferOcsp,
    /// CRLs only (the behaviour before OCSP): every non-anchor certificate
    /// must be covered by a CRL from its issuer; OCSP responses are ignored.
    #[serde(rename = "crl-only", alias = "crlOnly")]
    CrlOnly,
    /// Use a CRL where one from the issuer exists; a missing CRL is not an error,
    /// but a present one that is stale, badly signed or lists the certificate is.
    IfAvailable,
    /// No revocation checking.
    Off,
}

/// One path-validation question: does this signer chain to the declared country?
#[derive(Clone, Debug)]
pub struct PathRequest<'a> {
    /// The declared origin; only this country's anchors and CRLs are used.
    pub country: CountryCode,
    /// The signer certificate, DER.
    pub signer_der: &'a [u8],
    /// Untrusted candidate intermediates (e.g. from the document's KeyInfo), DER.
    pub intermediates_der: &'a [&'a [u8]],
    /// Validation time, Unix seconds.
    pub at_unix: u64,
    /// Revocation policy.
    pub revocation: RevocationMode,
    /// EKUs accepted on any path certificate that carries an EKU extension.
    pub accepted_ekus: &'a [Eku],
    /// More intermediates than this is refused before any parsing or crypto.
    pub max_intermediates: usize,
    /// CRLs the signature carries (`KeyInfo/X509Data/X509CRL`), DER. Used
    /// alongside the trust list's: webpki still checks each against its
    /// issuer's key and nextUpdate, so a document can only add evidence,
    /// and the newest CRL of an issuer wins. Unusable ones are ignored.
    pub document_crls: &'a [&'a [u8]],
    /// OCSP responses (DER `OCSPResponse`) carried by the signature or
    /// fetched at the edge, in any order; each is matched to the path's
    /// certificates by CertID. Ignored under `CrlOnly`, `IfAvailable` and `Off`.
    pub ocsp_responses: &'a [&'a [u8]],
}

impl<'a> PathRequest<'a> {
    /// Default intermediate budget: national PKIs are root → issuing CA, sometimes one more level.
    pub const DEFAULT_MAX_INTERMEDIATES: usize = 4;

    /// A request with the defaults: no intermediates, `RevocationMode::Require`,
    /// `Eku::DEFAULT_ACCEPTED`, `DEFAULT_MAX_INTERMEDIATES`.
    pub fn new(country: CountryCode, signer_der: &'a [u8], at_unix: u64) -> Self {
        Self {
            country,
            signer_der,
            intermediates_der: &[],
            at_unix,
            revocation: RevocationMode::default(),
            accepted_ekus: Eku::DEFAULT_ACCEPTED,
            max_intermediates: Self::DEFAULT_MAX_INTERMEDIATES,
            document_crls: &[],
            ocsp_responses: &[],
        }
    }
}

/// A signer whose path to a trust anchor of the declared country was validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedSigner {
    /// The signer certificate.
    pub signer: CertSummary,
    /// The path actually used: signer first, trust anchor last.
    pub chain: Vec<CertSummary>,
    /// The OCSP answers the decision used, one per certificate at most.
    pub ocsp: Vec<crate::ocsp::OcspEvidence>,
    /// Serials of the certificates whose CRLs were consulted (all non-anchor
    /// certificates except those `PreferOcsp` settled by OCSP).
    pub crl_checked: Vec<String>,
}

impl TrustList {
    /// Validates the signer's certificate path against the declared country's
    /// anchors and CRLs at the given time.
    ///
    /// The signer's own validity, role and keyUsage are checked first so that the
    /// error names the signer's problem rather than a downstream path failure.
    pub fn validate_signer(&self, req: &PathRequest<'_>) -> Result<ValidatedSigner, PathError> {
        if req.intermediates_der.len() > req.max_intermediates {
            return Err(PathError::BudgetExceeded);
        }

        let signer = parse_certificate(req.signer_der)?;
        check_validity_window(&signer, req.at_unix)?;
        check_signer_role(&signer)?;

        let trust = self
            .countries
            .get(&req.country)
            .ok_or(PathError::UnknownCountry(req.country))?;
        if let Some(refusal) = trust.refusal_at(req.country, req.at_unix) {
            return Err(refusal);
        }

        let signer_der = CertificateDer::from(req.signer_der);
        let ee = EndEntityCert::try_from(&signer_der).map_err(map_webpki_error)?;

        // Refuse garbage up front: webpki would otherwise rank a malformed but
        // irrelevant intermediate above "unknown issuer", making errors depend on order.
        let intermediates: Vec<CertificateDer<'_>> = req
            .intermediates_der
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        for (i, der) in intermediates.iter().enumerate() {
            parse_certificate(der).map_err(|e| prefix(e, i))?;
            EndEntityCert::try_from(der).map_err(|e| prefix(map_webpki_error(e), i))?;
        }

        let time = UnixTime::since_unix_epoch(Duration::from_secs(req.at_unix));
        // The document's CRLs (at most as many as intermediates allowed, plus
        // the signer's issuer) merged with the list's, newest first.
        let document_crls: Vec<CrlEntry> = req
            .document_crls
            .iter()
            .take(req.max_intermediates + 1)
            .filter_map(|der| load_crl(der, "the signature's KeyInfo").ok())
            .collect();
        let mut crl_entries: Vec<&CrlEntry> =
            trust.crls.iter().chain(document_crls.iter()).collect();
        crl_entries.sort_by_key(|c| std::cmp::Reverse(c.summary.this_update));
        let crl_refs: Vec<_> = crl_entries.iter().map(|c| &c.crl).collect();
        let status_policy = match req.revocation {
            RevocationMode::Require | RevocationMode::CrlOnly | RevocationMode::PreferOcsp => {
                Some(UnknownStatusPolicy::Deny)
            }
            RevocationMode::IfAvailable => Some(UnknownStatusPolicy::Allow),
            RevocationMode::Off => None,
        };
        let revocation = match status_policy {
            Some(policy) => RevocationOptionsBuilder::new(&crl_refs)
                .ok()
                .map(|builder| {
                    builder
                        .with_depth(RevocationCheckDepth::Chain)
                        .with_status_policy(policy)
                        .with_expiration_policy(ExpirationPolicy::Enforce)
                        .build()
                }),
            None => None,
        };
        let no_crls_but_required = matches!(
            req.revocation,
            RevocationMode::Require | RevocationMode::CrlOnly
        ) && revocation.is_none();
        let use_ocsp = match req.revocation {
            RevocationMode::PreferOcsp => true,
            RevocationMode::Require => !req.ocsp_responses.is_empty(),
            _ => false,
        };

        let eku = AcceptedEkus(req.accepted_ekus);
        // A listed CA whose service was not granted then: remembered so the
        // refusal can say so rather than "no chain".
        let not_granted: RefCell<Option<String>> = RefCell::new(None);
        let anchor_in_force = |path: &VerifiedPath<'_>| {
            let used = path.intermediate_certificates().count();
            admitting_anchor(trust, path.anchor(), used, req.at_unix, Some(&not_granted))
                .map(|_| ())
        };
        if use_ocsp {
            let ctx = OcspPathContext {
                trust,
                ee: &ee,
                signer: &signer,
                intermediates: &intermediates,
                time,
                eku: &eku,
                crl_entries: &crl_entries,
            };
            return ctx.validate(req);
        }
        let path = ee
            .verify_for_usage(
                accepted_algorithms(),
                &trust.webpki_anchors,
                &intermediates,
                time,
                &eku,
                revocation,
                Some(&anchor_in_force),
            )
            .map_err(|e| match map_webpki_error(e) {
                PathError::Revoked { .. } => PathError::Revoked {
                    serial_hex: revoked_serial(trust, &ee, &intermediates),
                },
                // A missing CRL that is missing because the partner's file was
                // unusable: say so, naming the file.
                PathError::RevocationUnknown if req.revocation != RevocationMode::Off => {
                    unusable_crl_for(trust, Some(signer.issuer().as_raw()))
                        .or_else(|| unusable_crl_for(trust, None))
                        .map_or(PathError::RevocationUnknown, |f| f.revocation_error())
                }
                PathError::NoChain => match not_granted.borrow_mut().take() {
                    Some(status) => PathError::ServiceNotGranted { status },
                    None => PathError::NoChain,
                },
                other => other,
            })?;

        // An unusable CRL from an issuer on this path hides whatever it
        // listed: even with another CRL of that issuer at hand, fail closed.
        if req.revocation != RevocationMode::Off {
            let mut issuers = vec![signer.issuer().as_raw().to_vec()];
            for cert in path.intermediate_certificates() {
                let der = cert.der();
                let parsed = parse_certificate(der.as_ref())?;
                issuers.push(parsed.issuer().as_raw().to_vec());
            }
            for issuer in &issuers {
                if let Some(fault) = unusable_crl_for(trust, Some(issuer)) {
                    return Err(fault.revocation_error());
                }
            }
        }

        // webpki cannot be asked to require CRLs when it has none; the path is
        // otherwise sound, so the only missing piece is revocation evidence.
        if no_crls_but_required {
            return Err(PathError::RevocationUnknown);
        }

        let signer_summary = summary_of(&signer, req.signer_der);
        let mut chain = vec![signer_summary.clone()];
        for cert in path.intermediate_certificates() {
            chain.push(summarize_certificate(cert.der().as_ref())?);
        }
        let used = chain.len() - 1;
        let anchor = admitting_anchor(trust, path.anchor(), used, req.at_unix, None)
            .map_err(map_webpki_error)?;
        chain.push(anchor.summary.clone());

        // Every certificate below the anchor (the anchor is pushed last).
        let crl_checked = if req.revocation == RevocationMode::Off {
            Vec::new()
        } else {
            chain[..chain.len() - 1]
                .iter()
                .map(|c| c.serial.clone())
                .collect()
        };
        Ok(ValidatedSigner {
            signer: signer_summary,
            chain,
            ocsp: Vec::new(),
            crl_checked,
        })
    }
}

/// A certificate of a validated path whose status OCSP can be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspTarget {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its issuer's certificate, DER.
    pub issuer_der: Vec<u8>,
    /// Its Authority Information Access OCSP URLs (may be empty).
    pub urls: Vec<String>,
    /// Serial, lower-case hex.
    pub serial_hex: String,
}

impl TrustList {
    /// The path's non-anchor certificates with their issuers, for an edge
    /// fetcher to ask OCSP about before [`TrustList::validate_signer`]. The
    /// path is built without revocation checks; any path error gives an empty
    /// list (validation will report it).
    pub fn ocsp_targets(&self, req: &PathRequest<'_>) -> Vec<OcspTarget> {
        self.ocsp_targets_inner(req).unwrap_or_default()
    }

    fn ocsp_targets_inner(&self, req: &PathRequest<'_>) -> Result<Vec<OcspTarget>, PathError> {
        if req.intermediates_der.len() > req.max_intermediates {
            return Err(PathError::BudgetExceeded);
        }
        let signer = parse_certificate(req.signer_der)?;
        let trust = self
            .countries
            .get(&req.country)
            .ok_or(PathError::UnknownCountry(req.country))?;
        let signer_der = CertificateDer::from(req.signer_der);
        let ee = EndEntityCert::try_from(&signer_der).map_err(map_webpki_error)?;
        let intermediates: Vec<CertificateDer<'_>> = req
            .intermediates_der
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        let eku = AcceptedEkus(req.accepted_ekus);
        let ctx = OcspPathContext {
            trust,
            ee: &ee,
            signer: &signer,
            intermediates: &intermediates,
            time: UnixTime::since_unix_epoch(Duration::from_secs(req.at_unix)),
            eku: &eku,
            crl_entries: &[],
        };
        let path = ctx.build(req, None)?;
        let mut ders = vec![req.signer_der.to_vec()];
        ders.extend(
            path.intermediate_certificates()
                .map(|c| c.der().as_ref().to_vec()),
        );
        let used = ders.len() - 1;
        let anchor = admitting_anchor(trust, path.anchor(), used, req.at_unix, None)
            .map_err(map_webpki_error)?;
        ders.push(anchor.der.clone());
        Ok(ders
            .windows(2)
            .filter_map(|pair| {
                let [cert, issuer] = pair else { return None };
                let serial_hex = parse_certificate(cert)
                    .map(|c| serial_hex(c.raw_serial()))
                    .ok()?;
                Some(OcspTarget {
                    urls: crate::ocsp::ocsp_urls(cert),
                    cert_der: cert.clone(),
                    issuer_der: issuer.clone(),
                    serial_hex,
                })
            })
            .collect())
    }
}

/// At most this many OCSP responses are looked at per validation (each is
/// parsed and, when it names a path certificate, verified).
const MAX_OCSP_RESPONSES: usize = 16;

/// Everything [`TrustList::validate_signer`] prepared, for the OCSP route.
struct OcspPathContext<'c, 'd> {
    trust: &'c CountryTrust,
    ee: &'c EndEntityCert<'d>,
    signer: &'c X509Certificate<'d>,
    intermediates: &'c [CertificateDer<'d>],
    time: UnixTime,
    eku: &'c AcceptedEkus<'c>,
    /// The list's and the document's CRLs, newest first.
    crl_entries: &'c [&'c CrlEntry],
}

/// What the OCSP responses at hand say about one certificate.
enum OcspOutcome {
    /// No response names it.
    None,
    /// A usable answer (the newest, when several).
    Answer(crate::ocsp::OcspEvidence),
    /// Responses name it but none is usable: the most telling problem.
    Unusable(PathError),
}

impl OcspPathContext<'_, '_> {
    /// Path building without revocation, then per certificate: OCSP (see
    /// [`RevocationMode`]), then webpki again with the CRLs of the issuers
    /// that still need them, then the evidence check.
    fn validate(&self, req: &PathRequest<'_>) -> Result<ValidatedSigner, PathError> {
        let trust = self.trust;
        let path0 = self.build(req, None)?;
        let mut path_der: Vec<Vec<u8>> = vec![req.signer_der.to_vec()];
        for cert in path0.intermediate_certificates() {
            path_der.push(cert.der().as_ref().to_vec());
        }
        let used = path_der.len() - 1;
        let anchor = admitting_anchor(trust, path0.anchor(), used, req.at_unix, None)
            .map_err(map_webpki_error)?;
        path_der.push(anchor.der.clone());

        let responses: Vec<&[u8]> = req
            .ocsp_responses
            .iter()
            .take(MAX_OCSP_RESPONSES)
            .copied()
            .collect();
        let mut outcomes = Vec::with_capacity(used + 1);
        let mut issuers_raw = Vec::with_capacity(used + 1);
        let mut serials = Vec::with_capacity(used + 1);
        for pair in path_der.windows(2) {
            let [cert, issuer] = pair else { continue };
            let parsed = parse_certificate(cert)?;
            issuers_raw.push(parsed.issuer().as_raw().to_vec());
            let serial = serial_hex(parsed.raw_serial());
            outcomes.push(ocsp_outcome(&responses, cert, issuer, req.at_unix, &serial));
            serials.push(serial);
        }

        // A revoked answer settles it whatever the CRLs say.
        for o in &outcomes {
            if let OcspOutcome::Answer(ev) = o {
                if matches!(ev.status, crate::ocsp::OcspStatus::Revoked { .. }) {
                    return Err(PathError::Revoked {
                        serial_hex: ev.certificate_serial.clone(),
                    });
                }
            }
        }
        let good = |o: &OcspOutcome| matches!(o, OcspOutcome::Answer(ev) if ev.status == crate::ocsp::OcspStatus::Good);
        let prefer_ocsp = req.revocation == RevocationMode::PreferOcsp;
        let needs_crl: Vec<bool> = outcomes.iter().map(|o| !(prefer_ocsp && good(o))).collect();

        let crls: Vec<&CrlEntry> = self
            .crl_entries
            .iter()
            .copied()
            .filter(|c| {
                issuers_raw
                    .iter()
                    .zip(&needs_crl)
                    .any(|(issuer, needed)| *needed && same_name(c.crl.issuer(), issuer))
            })
            .collect();
        let crl_refs: Vec<_> = crls.iter().map(|c| &c.crl).collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build()
        });
        let path = self.build(req, revocation)?;
        let same_path = path
            .intermediate_certificates()
            .map(|c| c.der().as_ref().to_vec())
            .eq(path_der[1..=used].iter().cloned());
        if !same_path {
            // A CRL ruled out the path OCSP was asked about; its alternative
            // has no OCSP evidence, so it is not taken.
            return Err(PathError::RevocationUnknown);
        }

        let mut crl_checked = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            if !needs_crl[i] {
                continue;
            }
            crl_checked.push(serials[i].clone());
            let issuer = &issuers_raw[i];
            let fault = unusable_crl_for(trust, Some(issuer));
            // A partitioned CRL (issuing distribution point) may not be
            // authoritative for this certificate: webpki decides that
            // privately, so it does not count as coverage here.
            let covered = fault.is_none()
                && crls.iter().any(|c| {
                    same_name(c.crl.issuer(), issuer)
                        && c.crl.issuing_distribution_point().is_none()
                });
            if covered || good(outcome) {
                continue;
            }
            let serial = serials[i].clone();
            return Err(match (outcome, fault) {
                (OcspOutcome::Answer(_), _) => {
                    PathError::CertificateStatusUnknown { serial_hex: serial }
                }
                (OcspOutcome::Unusable(_), Some(f)) if !prefer_ocsp => f.revocation_error(),
                (OcspOutcome::Unusable(e), _) => e.clone(),
                (OcspOutcome::None, Some(f)) => f.revocation_error(),
                (OcspOutcome::None, None) if prefer_ocsp => PathError::OcspUnavailable {
                    serial_hex: serial,
                    detail: "no OCSP response was at hand and no CRL from its issuer covers it"
                        .into(),
                },
                (OcspOutcome::None, None) => PathError::RevocationUnknown,
            });
        }

        let signer_summary = summary_of(self.signer, req.signer_der);
        let mut chain = vec![signer_summary.clone()];
        for der in &path_der[1..=used] {
            chain.push(summarize_certificate(der)?);
        }
        chain.push(anchor.summary.clone());
        let ocsp = outcomes
            .into_iter()
            .filter_map(|o| match o {
                OcspOutcome::Answer(ev) => Some(ev),
                _ => None,
            })
            .collect();
        Ok(ValidatedSigner {
            signer: signer_summary,
            chain,
            ocsp,
            crl_checked,
        })
    }

    /// One webpki path building, with the errors mapped as on the CRL route.
    fn build(
        &self,
        req: &PathRequest<'_>,
        revocation: Option<webpki::RevocationOptions<'_>>,
    ) -> Result<VerifiedPath<'_>, PathError> {
        let trust = self.trust;
        let not_granted: RefCell<Option<String>> = RefCell::new(None);
        let anchor_in_force = |path: &VerifiedPath<'_>| {
            let used = path.intermediate_certificates().count();
            admitting_anchor(trust, path.anchor(), used, req.at_unix, Some(&not_granted))
                .map(|_| ())
        };
        self.ee
            .verify_for_usage(
                accepted_algorithms(),
                &trust.webpki_anchors,
                self.intermediates,
                self.time,
                self.eku,
                revocation,
                Some(&anchor_in_force),
            )
            .map_err(|e| match map_webpki_error(e) {
                PathError::Revoked { .. } => PathError::Revoked {
                    serial_hex: revoked_serial(trust, self.ee, self.intermediates),
                },
                PathError::RevocationUnknown => {
                    unusable_crl_for(trust, Some(self.signer.issuer().as_raw()))
                        .map_or(PathError::RevocationUnknown, |f| f.revocation_error())
                }
                PathError::NoChain => match not_granted.borrow_mut().take() {
                    Some(status) => PathError::ServiceNotGranted { status },
                    None => PathError::NoChain,
                },
                other => other,
            })
    }
}

/// webpki gives a Name's content octets, x509-parser the whole SEQUENCE.
fn same_name(webpki_name: &[u8], x509_parser_raw: &[u8]) -> bool {
    crate::ocsp::strip_sequence(x509_parser_raw) == Some(webpki_name)
}

/// Verifies every response against one certificate: the newest usable answer
/// wins; without one, the most telling problem of a response that named it.
fn ocsp_outcome(
    responses: &[&[u8]],
    cert: &[u8],
    issuer: &[u8],
    at_unix: u64,
    serial: &str,
) -> OcspOutcome {
    use crate::ocsp::{verify_response, OcspCheck, OcspError, OcspStatus};
    let mut best: Option<crate::ocsp::OcspEvidence> = None;
    let mut problem: Option<PathError> = None;
    for der in responses {
        match verify_response(&OcspCheck {
            response_der: der,
            cert_der: cert,
            issuer_der: issuer,
            at_unix,
            expected_nonce: None,
        }) {
            Ok(ev) => {
                // A definite answer beats "unknown"; among equals, the newest.
                let rank = |e: &crate::ocsp::OcspEvidence| {
                    (e.status != OcspStatus::Unknown, e.this_update)
                };
                if best.as_ref().is_none_or(|b| rank(&ev) > rank(b)) {
                    best = Some(ev);
                }
            }
            // Responses about other certificates (or unparseable ones: the
            // same bytes are offered for every certificate) say nothing here.
            Err(OcspError::NoMatchingResponse { .. }) => {}
            Err(OcspError::Malformed(_)) if problem.is_some() => {}
            Err(e) => problem = Some(PathError::from_ocsp(serial.to_owned(), &e)),
        }
    }
    match (best, problem) {
        (Some(ev), _) => OcspOutcome::Answer(ev),
        (None, Some(p)) => OcspOutcome::Unusable(p),
        (None, None) => OcspOutcome::None,
    }
}

/// The country's unusable CRL that could hide this issuer's revocations:
/// one from that issuer, or one whose issuer could not be read.
fn unusable_crl_for<'t>(
    trust: &'t CountryTrust,
    issuer_raw: Option<&[u8]>,
) -> Option<&'t FaultEntry> {
    match issuer_raw {
        Some(issuer) => trust.faults.iter().find(|f| f.covers_issuer(issuer)),
        None => trust.faults.iter().find(|f| f.fault.kind == FaultKind::Crl),
    }
}

fn prefix(e: PathError, index: usize) -> PathError {
    match e {
        PathError::MalformedCertificate(d) => {
            PathError::MalformedCertificate(format!("intermediate #{index}: {d}"))
        }
        PathError::UnsupportedCertificate(d) => {
            PathError::UnsupportedCertificate(format!("intermediate #{index}: {d}"))
        }
        other => other,
    }
}

/// Same comparisons as webpki (`time < notBefore`, `time > notAfter`), done first
/// so an expired signer is reported as such even when it also has no path.
fn check_validity_window(cert: &X509Certificate<'_>, at_unix: u64) -> Result<(), PathError> {
    let at = i128::from(at_unix);
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if at < i128::from(not_before) {
        return Err(PathError::NotYetValid {
            not_before_unix: u64::try_from(not_before).unwrap_or(0),
        });
    }
    if at > i128::from(not_after) {
        return Err(PathError::Expired {
            not_after_unix: u64::try_from(not_after).unwrap_or(0),
        });
    }
    Ok(())
}

fn check_signer_role(cert: &X509Certificate<'_>) -> Result<(), PathError> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| PathError::MalformedCertificate(format!("basicConstraints: {e}")))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(PathError::SignerIsCa);
    }
    let ku = cert
        .key_usage()
        .map_err(|e| PathError::MalformedCertificate(format!("keyUsage: {e}")))?;
    match ku {
        Some(ku) if ku.value.digital_signature() || ku.value.non_repudiation() => Ok(()),
        _ => Err(PathError::KeyUsageNotAllowed),
    }
}

/// Indexes of stored anchors with this subject and key; several certificates
/// (e.g. a re-issued root) can share one webpki anchor.
fn matching_anchors<'t>(
    trust: &'t CountryTrust,
    anchor: &'t TrustAnchor<'_>,
) -> impl Iterator<Item = usize> + 't {
    trust
        .webpki_anchors
        .iter()
        .enumerate()
        .filter(move |(_, a)| {
            a.subject.as_ref() == anchor.subject.as_ref()
                && a.subject_public_key_info.as_ref() == anchor.subject_public_key_info.as_ref()
        })
        .map(|(i, _)| i)
}

/// Whether one stored anchor certificate admits this path: in its validity
/// window, and its pathLenConstraint (which webpki's `TrustAnchor` drops)
/// allows the number of intermediates used.
fn anchor_admits(
    entry: &AnchorEntry,
    intermediates: usize,
    at_unix: u64,
    not_granted: Option<&RefCell<Option<String>>>,
) -> Result<(), webpki::Error> {
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at_unix));
    let to_time = |secs: i64| {
        UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    };
    let s = &entry.summary;
    if let Some(services) = &entry.statuses {
        let at = i64::try_from(at_unix).unwrap_or(i64::MAX);
        let granted = services.iter().any(|statuses| {
            statuses
                .iter()
                .rev()
                .find(|p| p.from_unix <= at)
                .is_some_and(|p| crate::tsl::ACCEPTED_STATUSES.contains(&p.status.as_str()))
        });
        if !granted {
            let status = services
                .iter()
                .filter_map(|st| st.iter().rev().find(|p| p.from_unix <= at))
                .map(|p| p.status.rsplit('/').next().unwrap_or(&p.status).to_owned())
                .next()
                .unwrap_or_else(|| "none".into());
            if let Some(sink) = not_granted {
                *sink.borrow_mut() = Some(status);
            }
            // Ranked like "no such anchor", so path building tries the others.
            return Err(webpki::Error::UnknownIssuer);
        }
    }
    if i128::from(at_unix) < i128::from(s.not_before) {
        return Err(webpki::Error::CertNotValidYet {
            time,
            not_before: to_time(s.not_before),
        });
    }
    if i128::from(at_unix) > i128::from(s.not_after) {
        return Err(webpki::Error::CertExpired {
            time,
            not_after: to_time(s.not_after),
        });
    }
    match entry.path_len {
        Some(max) if u64::try_from(intermediates).unwrap_or(u64::MAX) > u64::from(max) => {
            Err(webpki::Error::PathLenConstraintViolated)
        }
        _ => Ok(()),
    }
}

/// Picks the stored anchor certificate that admits the path. webpki ignores
/// anchor validity (RFC 5280 leaves it to the relying party); the recognition
/// agreement ends with the CA certificate, so we enforce it. Errors are webpki's
/// own so path building ranks them and can go on to try other anchors.
fn admitting_anchor<'t>(
    trust: &'t CountryTrust,
    anchor: &TrustAnchor<'_>,
    intermediates: usize,
    at_unix: u64,
    not_granted: Option<&RefCell<Option<String>>>,
) -> Result<&'t AnchorEntry, webpki::Error> {
    let mut err = webpki::Error::UnknownIssuer;
    for i in matching_anchors(trust, anchor) {
        let Some(entry) = trust.anchors.get(i) else {
            continue;
        };
        match anchor_admits(entry, intermediates, at_unix, not_granted) {
            Ok(()) => return Ok(entry),
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// webpki says "revoked" without saying which certificate; find the listed one
/// so the report can name it. Falls back to the signer's serial.
fn revoked_serial(
    trust: &CountryTrust,
    signer: &EndEntityCert<'_>,
    intermediates: &[CertificateDer<'_>],
) -> String {
    let listed = |issuer: &[u8], serial: &[u8]| {
        trust
            .crls
            .iter()
            .any(|c| c.crl.issuer() == issuer && matches!(c.crl.find_serial(serial), Ok(Some(_))))
    };
    if listed(signer.issuer(), signer.serial()) {
        return serial_hex(signer.serial());
    }
    for der in intermediates {
        if let Ok(cert) = EndEntityCert::try_from(der) {
            if listed(cert.issuer(), cert.serial()) {
                return serial_hex(cert.serial());
            }
        }
    }
    serial_hex(signer.serial())
}

/// Accepts a certificate whose EKU extension contains any of the configured
/// purposes. webpki's `KeyUsage` takes exactly one OID; a custom validator lets
/// one pass do the whole set instead of re-running path building per purpose.
struct AcceptedEkus<'a>(&'a [Eku]);

/// Stands in for the single "required" OID webpki's error context wants; we
/// report the present OIDs, never this one.
const DOCUMENT_SIGNING_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];

impl ExtendedKeyUsageValidator for AcceptedEkus<'_> {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if self.0.iter().any(|e| KeyPurposeId::new(e.oid_der()) == id) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            // No EKU extension: unrestricted (webpki reports an empty extension itself).
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::required_if_present(DOCUMENT_SIGNING_DER),
                present,
            },
        ))
    }
}
