//! Tamga's XML-DSig [`Signer`](tamga_dsig::Signer) over PKCS#11: the
//! receiving authority countersigns with a key that never leaves its HSM.
//!
//! ```no_run
//! use tamga_dsig::Signer;
//! use tamga_pkcs11::{Pkcs11Signer, Pkcs11Uri};
//!
//! let uri = Pkcs11Uri::parse(
//!     "pkcs11:token=tamga-az;object=az-authority;type=private\
//!      ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin",
//! )?;
//! let signer = Pkcs11Signer::open(&uri)?;
//! let signature = signer.sign(b"canonical SignedInfo octets")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`Pkcs11Uri`]: RFC 7512 URIs, strictly parsed; module and PIN fall back
//!   to `$TAMGA_PKCS11_MODULE` / SoftHSM2's path and `$TAMGA_PKCS11_PIN`.
//! * [`Pkcs11Signer`]: finds the token and key, logs in, signs with
//!   CKM_ECDSA (over a SHA-256/384/512 digest made here, for P-256/384/521)
//!   or CKM_SHA256_RSA_PKCS (RSA ≥ 2048).
//! * `softhsm` (feature `softhsm-test`): throw-away SoftHSM2 tokens with
//!   keys generated inside them, for tests.
//!
//! The integration tests run against SoftHSM2 (Debian package `softhsm2`,
//! module `/usr/lib/softhsm/libsofthsm2.so`) and fail, saying so, where it
//! is not installed. They need nothing else: each test process makes its
//! own token directory under Cargo's target `tmp/` and points
//! `SOFTHSM2_CONF` at it.
//!
//! PINs are zeroed after use, never kept by a signer, and never formatted:
//! `Debug` shows `[redacted]`, and no error message carries one.
#![forbid(unsafe_code)]

mod error;
mod module;
mod signer;
#[cfg(feature = "softhsm-test")]
pub mod softhsm;
mod uri;

pub use error::Pkcs11Error;
pub use signer::{KeyProtection, Pkcs11Signer, MIN_RSA_BITS};
pub use uri::{
    percent_encode, ObjectType, Pin, Pkcs11Uri, UriError, MODULE_ENV, PIN_ENV,
    SOFTHSM2_DEFAULT_MODULE,
};
