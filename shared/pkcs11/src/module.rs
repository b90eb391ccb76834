//! One initialised PKCS#11 context per module, for the whole process.
//!
//! `C_Initialize` may run once per process and module; a second call gives
//! CKR_CRYPTOKI_ALREADY_INITIALIZED. The registry loads each module once
//! (keyed by its canonical path) and finalises it only to re-initialise it
//! after an outage ([`Module::reinitialize`]), so any number of signers can be
//! opened, used from several threads, and dropped.
//!
//! PKCS#11 login state is per token for the whole application, not per
//! session: once one session is logged in, `C_Login` on another says
//! CKR_USER_ALREADY_LOGGED_IN without looking at the PIN. So that a second
//! signer in the same process cannot get the key with a wrong PIN, the
//! registry remembers, per slot, an HMAC (under a random per-process key)
//! of the PIN that last logged in successfully, and a PIN that does not
//! match it is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::hmac;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::RawAuthPin;

use crate::error::Pkcs11Error;
use crate::uri::{Pin, Pkcs11Uri, SOFTHSM2_DEFAULT_MODULE};

pub(crate) struct Module {
    pub(crate) ctx: Pkcs11,
    pub(crate) path: PathBuf,
    /// Per slot: HMAC of the PIN of the last successful user login.
    logins: Mutex<HashMap<u64, hmac::Tag>>,
    pin_mac_key: hmac::Key,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

type Registry = Mutex<HashMap<PathBuf, Arc<Module>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether the module at `path` has been initialised in this process.
#[cfg_attr(not(feature = "softhsm-test"), allow(dead_code))]
pub(crate) fn is_loaded(path: &Path) -> bool {
    registry()
        .lock()
        .map(|r| r.contains_key(&canonical(path)))
        .unwrap_or(true)
}

/// The process's context for the module at `path`, loading and
/// initialising it the first time.
pub(crate) fn module(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
    let key = canonical(path);
    let mut reg = registry().lock().map_err(|_| Pkcs11Error::Poisoned)?;
    if let Some(m) = reg.get(&key) {
        return Ok(Arc::clone(m));
    }
    if !key.is_file() {
        let hint = if path == Path::new(SOFTHSM2_DEFAULT_MODULE) {
            " (SoftHSM2 is not installed: apt-get install softhsm2)"
        } else {
            ""
        };
        return Err(Pkcs11Error::Module {
            path: path.to_path_buf(),
            reason: format!("no such file{hint}"),
        });
    }
    let ctx = Pkcs11::new(&key).map_err(|e| Pkcs11Error::Module {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Initialised by someone else in this process (another library, or
        // the same module under another path): usable as it is.
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Pkcs11Error::Module {
                path: path.to_path_buf(),
                reason: format!("C_Initialize: {e}"),
            })
        }
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pin_mac_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
        .map_err(|_| Pkcs11Error::Config("no system randomness".into()))?;
    let m = Arc::new(Module {
        ctx,
        path: key.clone(),
        logins: Mutex::new(HashMap::new()),
        pin_mac_key,
    });
    reg.insert(key, Arc::clone(&m));
    Ok(m)
}

impl Module {
    /// `C_Finalize` then `C_Initialize`: after a token was removed or an HSM
    /// restarted, some modules (SoftHSM2 among them) keep a stale view of
    /// their slots until re-initialised. Every session of this module — other
    /// signers' too — is gone afterwards; they re-open theirs on their next
    /// failure. Login state is gone with them, so the remembered PINs are
    /// forgotten.
    pub(crate) fn reinitialize(&self) -> Result<(), Pkcs11Error> {
        let mut logins = self.logins.lock().map_err(|_| Pkcs11Error::Poisoned)?;
        // Not initialised (another thread already finalised) is fine.
        let _ = self.ctx.clone().finalize();
        match self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                logins.clear();
                Ok(())
            }
            Err(e) => Err(Pkcs11Error::Module {
                path: self.path.clone(),
                reason: format!("C_Initialize: {e}"),
            }),
        }
    }
}

fn trimmed(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

fn describe_selector(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(t) = uri.token() {
        parts.push(format!("token={t:?}"));
    }
    if let Some(s) = uri.serial() {
        parts.push(format!("serial={s:?}"));
    }
    if let Some(m) = uri.manufacturer() {
        parts.push(format!("manufacturer={m:?}"));
    }
    if let Some(m) = uri.model() {
        parts.push(format!("model={m:?}"));
    }
    if let Some(s) = uri.slot_id() {
        parts.push(format!("slot-id={s}"));
    }
    if parts.is_empty() {
        "any token".into()
    } else {
        parts.join(", ")
    }
}

impl Module {
    /// The one initialised token that the URI's token attributes select.
    pub(crate) fn find_token(&self, uri: &Pkcs11Uri) -> Result<(Slot, TokenInfo), Pkcs11Error> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(Pkcs11Error::op("C_GetSlotList"))?;
        let mut present = Vec::new();
        let mut found = Vec::new();
        for slot in slots {
            let info = match self.ctx.get_token_info(slot) {
                Ok(i) => i,
                // A token pulled out between the two calls is not there.
                Err(CkError::Pkcs11(RvError::TokenNotPresent, _)) => continue,
                Err(e) => return Err(Pkcs11Error::op("C_GetTokenInfo")(e)),
            };
            if !info.token_initialized() {
                continue;
            }
            present.push(format!("{:?}", trimmed(info.label())));
            let matches = uri.token().is_none_or(|t| trimmed(info.label()) == t)
                && uri
                    .serial()
                    .is_none_or(|s| trimmed(info.serial_number()) == s)
                && uri
                    .manufacturer()
                    .is_none_or(|m| trimmed(info.manufacturer_id()) == m)
                && uri.model().is_none_or(|m| trimmed(info.model()) == m)
                && uri.slot_id().is_none_or(|id| slot.id() == id);
            if matches {
                found.push((slot, info));
            }
        }
        let wanted = describe_selector(uri);
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Pkcs11Error::TokenNotFound {
                wanted,
                present: if present.is_empty() {
                    "none".into()
                } else {
                    present.join(", ")
                },
            }),
            count => Err(Pkcs11Error::AmbiguousToken { wanted, count }),
        }
    }

    /// Logs `session` in as the user. See the module docs for why a
    /// login that the token reports as already done is checked here.
    pub(crate) fn login(
        &self,
        slot: Slot,
        token: &TokenInfo,
        session: &Session,
        pin: Option<&Pin>,
    ) -> Result<(), Pkcs11Error> {
        let mut logins = self.logins.lock().map_err(|_| Pkcs11Error::Poisoned)?;
        let Some(pin) = pin else {
            if token.protected_authentication_path() {
                // PIN pad or similar: the token asks the person itself.
                return match session.login(UserType::User, None) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
                    Err(e) => Err(login_error(e)),
                };
            }
            return Err(Pkcs11Error::NoPin);
        };
        let raw = RawAuthPin::new(Box::new(pin.expose_secret().to_vec()));
        match session.login_with_raw(UserType::User, &raw) {
            Ok(()) => {
                logins.insert(
                    slot.id(),
                    hmac::sign(&self.pin_mac_key, pin.expose_secret()),
                );
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => match logins.get(&slot.id()) {
                Some(tag) => hmac::verify(&self.pin_mac_key, pin.expose_secret(), tag.as_ref())
                    .map_err(|_| Pkcs11Error::PinIncorrect),
                None => Err(Pkcs11Error::LoginUnverifiable),
            },
            Err(e) => Err(login_error(e)),
        }
    }
}

fn login_error(e: CkError) -> Pkcs11Error {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => Pkcs11Error::PinIncorrect,
        CkError::Pkcs11(RvError::PinLocked, _) => Pkcs11Error::PinLocked,
        CkError::Pkcs11(
            rv @ (RvError::PinInvalid | RvError::PinLenRange | RvError::PinExpired),
            _,
        ) => Pkcs11Error::Login(format!("{rv:?}")),
        CkError::Pkcs11(RvError::UserPinNotInitialized, _) => {
            Pkcs11Error::Login("the token's user PIN is not initialised".into())
        }
        CkError::Pkcs11(RvError::UserAnotherAlreadyLoggedIn, _) => {
            Pkcs11Error::Login("the security officer is logged in to this token".into())
        }
        other => Pkcs11Error::op("C_Login")(other),
    }
}
