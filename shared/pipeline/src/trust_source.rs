//! Loading the trust list at the edge: the `<CC>/` directory, or signed
//! ETSI TS 119 612 trusted lists (`[[trust.list]]`, or `[trust.lotl]`
//! naming each country's list and signer).
//!
//! For trusted lists this is where state lives, never in the pure crates:
//! `state_dir/state.json` holds the highest sequence number accepted per
//! territory, and `state_dir/<CC>-tl.xml` the last good list. A list that
//! is refused (bad signature, signer not pinned, rollback, unreadable)
//! becomes a fault of its country; if a last good list exists it is used
//! instead (re-verified), so the corridor keeps working on what was last
//! agreed until that list's NextUpdate, and the fault is still reported.
//! Locations are file paths (relative to the LOTL's folder, or
//! `file://`) or `http://` URLs, fetched here with a timeout
//! (`[trust] fetch_timeout_ms`); a list that cannot be fetched is a fault
//! of its country and the last good copy stays in force. `https://` is not
//! fetched (mirror such a list to a file or an http:// location: the list's
//! signature, not the transport, is what makes it trusted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tamga_policy::TlSignatureEngine;
use tamga_trust::tsl::{accept_trusted_list, AcceptedList, TlCheck};
use tamga_trust::{CountryCode, FaultKind, TrustFault, TrustFile, TrustList};

use crate::config::{TlConfig, TrustConfig};

/// Why the trust list could not be loaded at all (a per-country problem is
/// a fault of that country instead).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrustSourceError(pub String);

/// `state_dir/state.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct State {
    /// Territory (or `LOTL`) → highest sequence accepted.
    sequences: BTreeMap<String, u64>,
}

const LOTL_KEY: &str = "LOTL";

/// Loads the configured source at `now_unix`.
pub fn load_trust(cfg: &TrustConfig, now_unix: i64) -> Result<TrustList, TrustSourceError> {
    if cfg.list.is_empty() && cfg.lotl.is_none() {
        return TrustList::load_dir(&cfg.dir).map_err(|e| TrustSourceError(e.to_string()));
    }
    let state_dir = cfg.state_dir.as_ref().ok_or_else(|| {
        TrustSourceError("trusted lists need [trust] state_dir (last accepted state)".into())
    })?;
    std::fs::create_dir_all(state_dir)
        .map_err(|e| TrustSourceError(format!("{}: {e}", state_dir.display())))?;
    let mut state = read_state(state_dir)?;
    let engine = TlSignatureEngine::default();
    let mut accepted = Vec::new();
    let mut faults = Vec::new();

    let mut specs: Vec<(CountryCode, Location, Vec<Vec<u8>>)> = Vec::new();
    for l in &cfg.list {
        let cc: CountryCode = l
            .country
            .parse()
            .map_err(|e| TrustSourceError(format!("[[trust.list]]: {e}")))?;
        specs.push((
            cc,
            Location::File(l.path.clone()),
            read_signers(&l.signers)?,
        ));
    }
    let timeout = std::time::Duration::from_millis(match cfg.fetch_timeout_ms {
        0 => DEFAULT_FETCH_TIMEOUT_MS,
        ms => ms,
    });
    if let Some(lotl) = &cfg.lotl {
        let pinned = read_signers(&lotl.signers)?;
        let base = lotl
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match accept_one(
            &engine,
            &Location::File(lotl.path.clone()),
            timeout,
            &pinned,
            None,
            LOTL_KEY,
            state_dir,
            &mut state,
            now_unix,
        ) {
            Ok((list, _)) => {
                for p in &list.list.pointers {
                    // A pointer whose territory is not a country code can
                    // serve no declaration.
                    let Ok(cc) = p.territory.parse::<CountryCode>() else {
                        continue;
                    };
                    let location = match p.location.strip_prefix("file://") {
                        Some(abs) => Location::File(PathBuf::from(abs)),
                        None if p.location.starts_with("http://") => {
                            Location::Url(p.location.clone())
                        }
                        None if p.location.contains("://") => {
                            faults.push(list_fault(
                                cc,
                                &p.location,
                                "only file and http:// locations are read (mirror the list to a file or an http:// location)",
                            ));
                            continue;
                        }
                        None => Location::File(base.join(&p.location)),
                    };
                    specs.push((cc, location, p.signer_certificates.clone()));
                }
            }
            Err(e) => return Err(TrustSourceError(format!("list of trusted lists: {e}"))),
        }
    }
    for (cc, location, pinned) in &specs {
        match accept_one(
            &engine,
            location,
            timeout,
            pinned,
            Some(cc.as_str()),
            cc.as_str(),
            state_dir,
            &mut state,
            now_unix,
        ) {
            Ok((list, fell_back)) => {
                if let Some(detail) = fell_back {
                    faults.push(list_fault(*cc, &location.to_string(), &detail));
                }
                accepted.push(list);
            }
            Err(detail) => faults.push(list_fault(*cc, &location.to_string(), &detail)),
        }
    }
    write_state(state_dir, &state)?;
    let mut crls = Vec::new();
    if let Some(dir) = &cfg.crl_dir {
        // Only the CRLs are read here; anchors come from the lists.
        crls = crl_files(dir)?;
    }
    Ok(TrustList::from_trusted_lists(accepted, crls, faults))
}

fn list_fault(country: CountryCode, source: &str, detail: &str) -> TrustFault {
    TrustFault {
        country,
        kind: FaultKind::TrustList,
        source: source.to_owned(),
        detail: format!("trusted list {source} refused: {detail}"),
        issuer: None,
    }
}

/// Trusted lists larger than this are refused before parsing.
const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
/// `[trust] fetch_timeout_ms` when unset.
const DEFAULT_FETCH_TIMEOUT_MS: u64 = 10_000;

/// Where a trusted list is read from.
#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    /// `http://` only.
    Url(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Url(u) => f.write_str(u),
        }
    }
}

impl Location {
    fn read(&self, timeout: std::time::Duration) -> Result<Vec<u8>, String> {
        match self {
            Location::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            Location::Url(u) => crate::http_fetch::request(
                u,
                None,
                "application/vnd.etsi.tsl+xml, application/xml, text/xml",
                timeout,
                MAX_LIST_BYTES,
            )
            .map_err(|e| format!("cannot fetch {u}: {e}")),
        }
    }
}

/// Accepts the list at `location`; on refusal falls back to the last good copy.
/// Returns the list and, when it is the fallback, why the new one was refused.
#[allow(clippy::too_many_arguments)]
fn accept_one(
    engine: &TlSignatureEngine,
    location: &Location,
    timeout: std::time::Duration,
    pinned: &[Vec<u8>],
    territory: Option<&str>,
    key: &str,
    state_dir: &Path,
    state: &mut State,
    now_unix: i64,
) -> Result<(AcceptedList, Option<String>), String> {
    let last = state.sequences.get(key).copied();
    let copy = state_dir.join(format!("{key}-tl.xml"));
    let source = location.to_string();
    let fresh = location.read(timeout).and_then(|bytes| {
        accept_trusted_list(&TlCheck {
            bytes: &bytes,
            source: &source,
            pinned_signers: pinned,
            expected_territory: territory,
            last_accepted_sequence: last,
            at_unix: now_unix,
            signature: engine,
        })
        .map(|a| (a, bytes))
        .map_err(|e| e.to_string())
    });
    match fresh {
        Ok((list, bytes)) => {
            if last != Some(list.list.sequence) || !copy.exists() {
                std::fs::write(&copy, &bytes)
                    .map_err(|e| format!("cannot keep {}: {e}", copy.display()))?;
            }
            state.sequences.insert(key.to_owned(), list.list.sequence);
            Ok((list, None))
        }
        Err(why) => {
            let bytes = std::fs::read(&copy).map_err(|_| why.clone())?;
            let copy_source = format!("{} (last good copy)", copy.display());
            let list = accept_trusted_list(&TlCheck {
                bytes: &bytes,
                source: &copy_source,
                pinned_signers: pinned,
                expected_territory: territory,
                last_accepted_sequence: last,
                at_unix: now_unix,
                signature: engine,
            })
            .map_err(|e| format!("{why}; the last good copy is unusable too: {e}"))?;
            Ok((list, Some(why)))
        }
    }
}

fn read_signers(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, TrustSourceError> {
    let mut out = Vec::new();
    for p in paths {
        let bytes =
            std::fs::read(p).map_err(|e| TrustSourceError(format!("{}: {e}", p.display())))?;
        let certs = tamga_dsig::certificates_from_pem(&bytes)
            .map_err(|e| TrustSourceError(format!("{}: {e}", p.display())))?;
        out.extend(certs);
    }
    Ok(out)
}

fn read_state(dir: &Path) -> Result<State, TrustSourceError> {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| TrustSourceError(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(TrustSourceError(format!("{}: {e}", path.display()))),
    }
}

fn write_state(dir: &Path, state: &State) -> Result<(), TrustSourceError> {
    let path = dir.join("state.json");
    let tmp = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| TrustSourceError(e.to_string()))?;
    // Write then rename: a crash never leaves a half-written state that
    // would forget the sequence numbers (and so allow a rollback).
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| TrustSourceError(format!("{}: {e}", path.display())))
}

/// `<dir>/<CC>/*.crl` as trust files.
fn crl_files(dir: &Path) -> Result<Vec<TrustFile>, TrustSourceError> {
    let err = |p: &Path, e: std::io::Error| TrustSourceError(format!("{}: {e}", p.display()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| err(dir, e))? {
        let entry = entry.map_err(|e| err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(cc) = CountryCode::from_upper(&name) else {
            continue;
        };
        if !entry.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(entry.path()).map_err(|e| err(&entry.path(), e))? {
            let f = f.map_err(|e| err(&entry.path(), e))?;
            let fname = f.file_name().to_string_lossy().into_owned();
            if !fname.to_ascii_lowercase().ends_with(".crl") {
                continue;
            }
            let bytes = std::fs::read(f.path()).map_err(|e| err(&f.path(), e))?;
            out.push(TrustFile {
                country: cc,
                name: fname,
                bytes,
            });
        }
    }
    Ok(out)
}

/// For `[[trust.list]]` entries.
impl TlConfig {
    /// Convenience for tests and tools.
    pub fn new(country: &str, path: PathBuf, signers: Vec<PathBuf>) -> Self {
        Self {
            country: country.to_owned(),
            path,
            signers,
        }
    }
}
