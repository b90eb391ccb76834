//! The one error type of this crate.

/// Why a time-stamp token was refused.
///
/// Every failure is one of these: the crate never panics on crafted input and
/// never reports success for a token it could not fully check.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The bytes are not a well-formed DER time-stamp token (CMS ContentInfo /
    /// SignedData / TSTInfo), or violate a structural rule of RFC 3161 / RFC 5652.
    #[error("malformed time-stamp token: {0}")]
    Malformed(String),
    /// Well-formed CMS, but not a time-stamp token: the ContentInfo is not
    /// signedData or the encapsulated content type is not id-ct-TSTInfo.
    #[error("not an RFC 3161 time-stamp token")]
    NotATimestamp,
    /// The token's messageImprint is not the hash of the data it was asked to cover.
    #[error("the time-stamp's message imprint does not match the covered data")]
    ImprintMismatch,
    /// A hash or signature algorithm that is refused (SHA-1, MD5, ...) or unknown.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The SignerInfo signature over the signed attributes does not verify.
    #[error("the time-stamp signature is invalid")]
    SignatureInvalid,
    /// No certificate in the token, `extra_certs_der` or the trust anchors
    /// matches the SignerInfo's signer identifier.
    #[error("the TSA signing certificate was not found")]
    SignerCertificateNotFound,
    /// The message-digest signed attribute is not the hash of the encapsulated TSTInfo.
    #[error("the message-digest attribute does not match the TSTInfo")]
    MessageDigestMismatch,
    /// The ESS signing-certificate(-v2) attribute names a different certificate
    /// than the one whose key verified the signature.
    #[error("the ESS signing-certificate attribute does not match the signer certificate")]
    SigningCertificateMismatch,
    /// The CMS algorithm-protection attribute (RFC 6211) disagrees with the
    /// SignerInfo's digest or signature algorithm.
    #[error("the CMS algorithm-protection attribute does not match the SignerInfo algorithms")]
    AlgorithmProtectionMismatch,
    /// The TSTInfo `tsa` name is not the subject of the signer certificate.
    #[error("the TSTInfo tsa name does not match the signer certificate subject")]
    TsaNameMismatch,
    /// A critical TSTInfo extension this crate does not understand.
    #[error("unsupported critical TSTInfo extension {0}")]
    UnsupportedCriticalExtension(String),
    /// The TSA certificate does not chain to any of the trust anchors.
    #[error("the TSA certificate is not trusted: {0}")]
    UntrustedTsa(String),
    /// The TSA certificate lacks a critical extended key usage with id-kp-timeStamping
    /// (RFC 3161 §2.3), or a CA on its path restricts usage to other purposes.
    #[error("the TSA certificate is not authorised for time-stamping (critical EKU id-kp-timeStamping required)")]
    TsaNotForTimestamping,
    /// The TSA certificate or its path is otherwise invalid at the validation time
    /// (expired, not yet valid, bad signature, key usage, ...).
    #[error("the TSA certificate is invalid: {0}")]
    TsaCertificateInvalid(String),
    /// One of the configured trust anchors is not a usable certificate.
    #[error("invalid trust anchor: {0}")]
    InvalidTrustAnchor(String),
}

pub(crate) fn malformed(msg: impl Into<String>) -> TimestampError {
    TimestampError::Malformed(msg.into())
}
