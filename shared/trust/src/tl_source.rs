//! The second trust source: countries from signed trusted lists.
//!
//! [`TrustList::from_trusted_lists`] takes lists already accepted by
//! [`crate::tsl::accept_trusted_list`] (signature, pinning, sequence number)
//! and the CRL files the edge found for each country, and builds the same
//! [`TrustList`] the directory source builds, so path validation does not
//! care where trust came from. What differs is recorded per country
//! ([`TrustSource`]): the list's sequence number and NextUpdate (a stale
//! list makes the country INDETERMINATE at validation time), and each
//! anchor's service statuses (a CA counts only while granted / recognised).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::country::CountryCode;
use crate::error::{PathError, TrustLoadError};
use crate::fault::{FaultEntry, FaultKind, TrustFault};
use crate::trust_list::{CountryTrust, TrustFile, TrustList};
use crate::tsl::{AcceptedList, StatusPeriod};

/// Where a country's trust came from; reports cite it.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum TrustSource {
    /// A folder of CA certificates and CRLs (`<DIR>/<CC>/`).
    #[default]
    Directory,
    /// A signed ETSI TS 119 612 trusted list.
    TrustedList {
        /// `TSLSequenceNumber`.
        sequence: u64,
        /// `ListIssueDateTime`, Unix seconds.
        issued_unix: i64,
        /// `NextUpdate`, Unix seconds (`None`: closed list).
        next_update_unix: Option<i64>,
        /// Where the list was read from.
        location: String,
        /// SHA-256 of the list's bytes.
        sha256: String,
        /// SHA-256 of the pinned certificate that signed it.
        signer_sha256: String,
    },
}

impl TrustList {
    /// Builds the trust list from accepted trusted lists (one per country),
    /// the countries' CRL files (`TrustFile`s named `*.crl`; anything else
    /// is ignored: anchors come from the lists only) and the faults the edge
    /// met while loading.
    ///
    /// * Two lists for one territory: that country is blocked
    ///   ([`PathError::TrustListInvalid`]); the others are unaffected.
    /// * A fault of kind [`FaultKind::TrustList`] for a country without an
    ///   accepted list blocks it; with an accepted list (the edge fell back
    ///   to the last good one) it is recorded, and the country works.
    pub fn from_trusted_lists(
        lists: Vec<AcceptedList>,
        crl_files: Vec<TrustFile>,
        faults: Vec<TrustFault>,
    ) -> TrustList {
        let mut by_country: BTreeMap<CountryCode, Vec<AcceptedList>> = BTreeMap::new();
        for l in lists {
            // The parser only accepts two-letter territories, so this always holds.
            if let Ok(cc) = l.country() {
                by_country.entry(cc).or_default().push(l);
            }
        }
        let countries: BTreeSet<CountryCode> = by_country
            .keys()
            .copied()
            .chain(faults.iter().map(|f| f.country))
            .collect();
        let crls: Vec<TrustFile> = crl_files
            .into_iter()
            .filter(|f| f.name.to_ascii_lowercase().ends_with(".crl"))
            .filter(|f| by_country.contains_key(&f.country))
            .collect();
        let mut list = TrustList::build(countries, crls, Vec::new());
        for (cc, lists) in by_country {
            let trust = list.countries.entry(cc).or_default();
            match lists.as_slice() {
                [one] => trust.adopt_list(cc, one),
                many => {
                    let sources: Vec<&str> = many.iter().map(|l| l.source.as_str()).collect();
                    trust.add_fault(FaultEntry::country(
                        cc,
                        FaultKind::TrustList,
                        sources.join(", "),
                        &TrustLoadError::DuplicateTerritory {
                            country: cc,
                            sources: sources.join(", "),
                        },
                    ));
                }
            }
        }
        for f in faults {
            let trust = list.countries.entry(f.country).or_default();
            let has_list = matches!(trust.source, TrustSource::TrustedList { .. });
            let entry = FaultEntry {
                fault: f,
                issuer_raw: None,
            };
            if has_list {
                trust.faults.push(entry);
            } else {
                trust.add_fault(entry);
            }
        }
        list
    }

    /// Where the country's trust came from (`None` for an unknown country).
    pub fn source(&self, cc: CountryCode) -> Option<TrustSource> {
        self.countries.get(&cc).map(|t| t.source.clone())
    }
}

impl CountryTrust {
    fn adopt_list(&mut self, cc: CountryCode, accepted: &AcceptedList) {
        self.source = TrustSource::TrustedList {
            sequence: accepted.list.sequence,
            issued_unix: accepted.list.issued_unix,
            next_update_unix: accepted.list.next_update_unix,
            location: accepted.source.clone(),
            sha256: accepted.sha256.clone(),
            signer_sha256: accepted.signer.sha256.clone(),
        };
        for (i, service) in accepted.list.services.iter().enumerate() {
            let label = format!("{} service #{} ({})", accepted.source, i + 1, service.name);
            for der in &service.certificates {
                if let Err(e) = self.add_listed_anchor(der.clone(), &label, &service.statuses) {
                    self.add_fault(FaultEntry::country(
                        cc,
                        FaultKind::TrustList,
                        label.clone(),
                        &e,
                    ));
                }
            }
        }
    }

    fn add_listed_anchor(
        &mut self,
        der: Vec<u8>,
        label: &str,
        statuses: &[StatusPeriod],
    ) -> Result<(), TrustLoadError> {
        let sha = crate::summary::sha256_hex(&der);
        if let Some(existing) = self.anchors.iter_mut().find(|a| a.summary.sha256 == sha) {
            // The same CA certificate under two services: trusted while either is.
            existing
                .statuses
                .get_or_insert_with(Vec::new)
                .push(statuses.to_vec());
            return Ok(());
        }
        self.add_anchor(der, label)?;
        if let Some(last) = self.anchors.last_mut() {
            last.statuses = Some(vec![statuses.to_vec()]);
        }
        Ok(())
    }

    /// The country-wide refusal at `at_unix`, if any: blocked, or its list is stale.
    pub(crate) fn refusal_at(&self, cc: CountryCode, at_unix: u64) -> Option<PathError> {
        if let Some(blocked) = &self.blocked {
            return Some(blocked.clone());
        }
        if let TrustSource::TrustedList {
            next_update_unix: Some(next),
            ..
        } = self.source
        {
            if i128::from(at_unix) > i128::from(next) {
                return Some(PathError::TrustListStale {
                    country: cc,
                    next_update_unix: u64::try_from(next).unwrap_or(0),
                });
            }
        }
        None
    }
}
