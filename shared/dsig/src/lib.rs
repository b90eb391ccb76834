//! XML-DSig and XAdES as mechanism: parse a `ds:Signature`, digest its
//! references, check its value, make new signatures.
//!
//! Pure: bytes and keys in, values out. No clock, no network, no files. What
//! is *acceptable* (algorithms, shapes, trust) is decided by `tamga-policy`.
#![forbid(unsafe_code)]

pub mod algorithms;
pub mod core;
pub mod countersign;
pub mod crypto;
pub mod error;
pub mod model;
pub mod reference;
pub mod sign;
mod splice;
pub mod xades;

pub use crate::core::{
    check_hmac_value, check_references, check_signature_value, find_signatures, signed_info_octets,
    ReferenceFailure, ReferenceOutcome,
};
pub use algorithms::{DigestAlgorithm, KeyFamily, SignatureAlgorithm};
pub use countersign::{countersign, countersign_parsed};
pub use crypto::{verify_signature, Curve, PublicKey};
pub use error::{CryptoError, FormatError, ReferenceError};
pub use model::{parse_signature, Budget, KeyInfo, KeyValue, Reference, SignatureModel, Transform};
pub use reference::{resolve_uri, ExternalResolver, NoExternal, Target};
pub use sign::{
    certificates_from_pem, default_digest, sign_canonical_enveloped, sign_enveloped, SignError,
    SignOptions, Signer, SigningKey,
};
pub use xades::{parse_xades, CertDigest, SignatureTimestamp, Xades};
