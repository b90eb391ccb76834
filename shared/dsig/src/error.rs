use thiserror::Error;

/// The signature's XML structure is not what XML-DSig allows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("{path}: unexpected {what}")]
    Unexpected { path: String, what: String },
    #[error("{path}: missing {what}")]
    Missing { path: String, what: &'static str },
    #[error("{path}: missing attribute {name}")]
    MissingAttribute { path: String, name: &'static str },
    #[error("{what} is not valid base64")]
    BadBase64 { what: &'static str },
    #[error("more {what} than the budget of {limit}")]
    Budget { what: &'static str, limit: usize },
}

/// A reference could not be dereferenced, transformed or digested.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("reference URI {uri:?} does not resolve to anything in the document")]
    NotFound { uri: String },
    #[error("reference URI {uri:?} points outside the document; nothing is ever fetched")]
    External { uri: String },
    #[error("reference has no URI and no detached content was supplied")]
    NoUri,
    #[error("transform {name} is not supported")]
    UnsupportedTransform { name: String },
    #[error("digest algorithm {uri} is not supported")]
    UnsupportedDigest { uri: String },
    #[error("canonicalisation failed: {0}")]
    C14n(#[from] tamga_xml::C14nError),
    #[error("the transform input is not valid base64")]
    Base64,
    #[error("the referenced octets are not acceptable XML: {0}")]
    Xml(#[from] tamga_xml::ParseError),
}

/// The signature value could not be checked, or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("signature algorithm {0} is not supported")]
    UnsupportedAlgorithm(String),
    #[error("the key ({key}) does not fit the signature algorithm {algorithm}")]
    KeyMismatch { key: String, algorithm: String },
    #[error("the public key is not usable: {0}")]
    BadKey(String),
    #[error("the signature value does not verify with the signer's key")]
    BadSignature,
    #[error("HMAC output truncated to {bits} bits, below the safe minimum")]
    HmacTooShort { bits: u32 },
    #[error("no key was available to check the signature")]
    NoKey,
    #[error("signing failed: {0}")]
    Signing(String),
}
