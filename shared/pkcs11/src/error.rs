//! Errors. None of them ever carries a PIN: PINs are never formatted, and
//! URI errors name attributes, not values.

use std::path::PathBuf;

use thiserror::Error;

use crate::uri::UriError;

/// Why a PKCS#11 key could not be opened or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    #[error("bad PKCS#11 URI: {0}")]
    Uri(#[from] UriError),
    #[error("{0}")]
    Config(String),
    #[error("cannot load the PKCS#11 module {path}: {reason}")]
    Module { path: PathBuf, reason: String },
    #[error("no token matches the URI ({wanted}); tokens present: {present}")]
    TokenNotFound { wanted: String, present: String },
    #[error("{count} tokens match the URI ({wanted}); add serial= or slot-id= to choose one")]
    AmbiguousToken { wanted: String, count: usize },
    #[error("no PIN given: use pin-source=file:/path, pin-value=..., or $TAMGA_PKCS11_PIN")]
    NoPin,
    #[error("cannot read the PIN from {path}: {reason}")]
    PinSource { path: PathBuf, reason: String },
    #[error("the token refused the PIN (incorrect PIN)")]
    PinIncorrect,
    #[error("the token's user PIN is locked")]
    PinLocked,
    #[error(
        "the token is already logged in by another part of this process, and this PIN cannot be \
         checked against that login"
    )]
    LoginUnverifiable,
    #[error("log-in failed: {0}")]
    Login(String),
    #[error("no private key on token {token} matches the URI ({wanted})")]
    KeyNotFound { token: String, wanted: String },
    #[error("{count} private keys on token {token} match the URI ({wanted}); add object= or id=")]
    AmbiguousKey {
        token: String,
        wanted: String,
        count: usize,
    },
    #[error("the public half of key {wanted} was not found on the token")]
    PublicKeyNotFound { wanted: String },
    #[error("the key cannot be used: {0}")]
    UnsupportedKey(String),
    #[error("the URI names a {0} object; a signing key needs type=private (or no type)")]
    WrongObjectType(&'static str),
    #[error("PKCS#11 {operation} failed: {source}")]
    Pkcs11 {
        operation: &'static str,
        #[source]
        source: cryptoki::error::Error,
    },
    #[error("the token returned a malformed signature: {0}")]
    BadSignature(String),
    /// A signature failed and the token could not be opened again (removed,
    /// HSM or daemon down): transient for the pipeline.
    #[error("the token is unavailable: {0}")]
    Unavailable(String),
    #[error("the signing session is unusable after a panic in another thread")]
    Poisoned,
    #[error("SoftHSM2 test setup: {0}")]
    Setup(String),
}

impl Pkcs11Error {
    pub(crate) fn op(operation: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Self {
        move |source| Pkcs11Error::Pkcs11 { operation, source }
    }
}
