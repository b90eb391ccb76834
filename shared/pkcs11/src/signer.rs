//! [`Pkcs11Signer`]: Tamga's [`Signer`] over a private key that stays in a
//! PKCS#11 token.

use std::sync::{Arc, Mutex};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use tamga_dsig::{
    CryptoError, Curve, DigestAlgorithm, KeyValue, PublicKey, SignatureAlgorithm, Signer,
};

use crate::error::Pkcs11Error;
use crate::module::{module, Module};
use crate::uri::{hex, ObjectType, Pkcs11Uri};

/// DER `OBJECT IDENTIFIER`s of the named curves, as in CKA_EC_PARAMS.
const EC_PARAMS_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const EC_PARAMS_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const EC_PARAMS_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone)]
enum KeyKind {
    /// CKM_ECDSA over a digest computed here; the token returns r || s.
    Ec {
        digest: &'static aws_lc_rs::digest::Algorithm,
        field_bytes: usize,
    },
    /// CKM_SHA256_RSA_PKCS: the token hashes and pads.
    Rsa { modulus_bytes: usize },
}

/// How well the token protects the private key (its CKA_ attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProtection {
    /// CKA_SENSITIVE: the key's value can never be read in plaintext.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE: the key can be wrapped (exported encrypted).
    pub extractable: bool,
    /// CKA_ALWAYS_SENSITIVE: it has always been sensitive.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE: it has never been extractable.
    pub never_extractable: bool,
    /// CKA_LOCAL: generated on the token (not imported).
    pub local: bool,
}

/// An XML-DSig signer whose private key stays in a PKCS#11 token.
///
/// Holds one logged-in read-only session, guarded by a mutex so that
/// [`Signer::sign`] (which takes `&self`) can be called from any thread.
/// The PIN is used for the log-in and then dropped (zeroed); it is not
/// kept — but it is resolved again from the URI (`pin-source` file, or an
/// inline `pin-value`, which the URI therefore keeps) when the session has
/// to be re-opened.
///
/// When a signature fails (token removed, HSM or daemon restarted, session
/// or key handle invalidated), the signer re-opens its session, logs in
/// again, finds the key again — refusing a key whose public half differs
/// from the one it opened — and tries once more. Until the token is back,
/// signing fails with an error, which the pipeline treats as transient.
pub struct Pkcs11Signer {
    module: Arc<Module>,
    uri: Pkcs11Uri,
    live: Mutex<Live>,
    kind: KeyKind,
    algorithm: SignatureAlgorithm,
    public_key: PublicKey,
    token_label: String,
    key_label: Option<String>,
    key_id: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("module", &self.module.path)
            .field("token", &self.token_label)
            .field("key_label", &self.key_label)
            .field("key_id", &hex(&self.key_id))
            .field("algorithm", &self.algorithm.name())
            .field("public_key", &self.public_key.describe())
            .finish_non_exhaustive()
    }
}

fn selector(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(o) = uri.object() {
        parts.push(format!("object={o:?}"));
    }
    if let Some(id) = uri.id() {
        parts.push(format!("id={}", hex(id)));
    }
    if parts.is_empty() {
        "any private key".into()
    } else {
        parts.join(", ")
    }
}

/// The logged-in session and the key's handle in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// Finds the token, opens a read-only session, logs in and finds the key.
fn connect(module: &Module, uri: &Pkcs11Uri) -> Result<(Live, KeyInfo, String), Pkcs11Error> {
    let (slot, token) = module.find_token(uri)?;
    let token_label = token.label().trim_end().to_string();
    let pin = uri.resolve_pin()?;
    let session = module
        .ctx
        .open_ro_session(slot)
        .map_err(Pkcs11Error::op("C_OpenSession"))?;
    module.login(slot, &token, &session, pin.as_ref())?;
    drop(pin);
    let key = find_private_key(&session, uri, &token_label)?;
    let info = read_key(&session, key)?;
    Ok((Live { session, key }, info, token_label))
}

impl Pkcs11Signer {
    /// Opens the private key that `uri` names: loads the module (once per
    /// process), finds the token, opens a read-only session, logs in as the
    /// user and finds the key and its public half.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        if let Some(t) = uri.object_type() {
            if t != ObjectType::Private {
                return Err(Pkcs11Error::WrongObjectType(t.as_str()));
            }
        }
        let module = module(&uri.resolve_module()?)?;
        let (live, info, token_label) = connect(&module, uri)?;
        if !info.sign {
            return Err(Pkcs11Error::UnsupportedKey(
                "the key is not allowed to sign (CKA_SIGN is false)".into(),
            ));
        }
        if info.always_authenticate {
            return Err(Pkcs11Error::UnsupportedKey(
                "the key needs a PIN for every signature (CKA_ALWAYS_AUTHENTICATE), which Tamga \
                 does not support"
                    .into(),
            ));
        }
        Ok(Pkcs11Signer {
            module,
            uri: uri.clone(),
            live: Mutex::new(live),
            kind: info.kind,
            algorithm: info.algorithm,
            public_key: info.public_key,
            token_label,
            key_label: info.label,
            key_id: info.id,
        })
    }

    /// Parses `uri` and opens it.
    pub fn open_uri(uri: &str) -> Result<Self, Pkcs11Error> {
        Self::open(&Pkcs11Uri::parse(uri)?)
    }

    /// The label of the token the key is on.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// The key's CKA_LABEL, if it has one.
    pub fn key_label(&self) -> Option<&str> {
        self.key_label.as_deref()
    }

    /// The key's CKA_ID.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// Signs `message` on the token, returning the XML-DSig signature value
    /// (r || s for ECDSA, the PKCS#1 v1.5 block for RSA).
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let mut live = self.live.lock().map_err(|_| Pkcs11Error::Poisoned)?;
        match self.sign_with(&live, message) {
            Ok(sig) => Ok(sig),
            Err(first) => {
                // The session or the key handle may be stale (token removed
                // and back, HSM restarted): open them again, once.
                match self.reconnect() {
                    Ok(fresh) => {
                        *live = fresh;
                        self.sign_with(&live, message)
                    }
                    Err(again) => Err(Pkcs11Error::Unavailable(format!(
                        "{first}; re-opening the token failed: {again}"
                    ))),
                }
            }
        }
    }

    /// A new session, logged in, with the key found again; refuses a key
    /// whose public half is not the one opened at first.
    fn reconnect(&self) -> Result<Live, Pkcs11Error> {
        let (live, info, _) = match connect(&self.module, &self.uri) {
            Ok(c) => c,
            Err(_) => {
                // A stale view of the slots: start the module afresh.
                self.module.reinitialize()?;
                connect(&self.module, &self.uri)?
            }
        };
        if info.public_key != self.public_key {
            return Err(Pkcs11Error::UnsupportedKey(
                "the token now holds another key under this URI".into(),
            ));
        }
        Ok(live)
    }

    fn sign_with(&self, live: &Live, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let (session, key) = (&live.session, live.key);
        match &self.kind {
            KeyKind::Ec {
                digest,
                field_bytes,
            } => {
                let d = aws_lc_rs::digest::digest(digest, message);
                let sig = session
                    .sign(&Mechanism::Ecdsa, key, d.as_ref())
                    .map_err(Pkcs11Error::op("C_Sign (CKM_ECDSA)"))?;
                if sig.len() != 2 * field_bytes {
                    return Err(Pkcs11Error::BadSignature(format!(
                        "ECDSA signature of {} bytes, expected r || s of {}",
                        sig.len(),
                        2 * field_bytes
                    )));
                }
                Ok(sig)
            }
            KeyKind::Rsa { modulus_bytes } => {
                let sig = session
                    .sign(&Mechanism::Sha256RsaPkcs, key, message)
                    .map_err(Pkcs11Error::op("C_Sign (CKM_SHA256_RSA_PKCS)"))?;
                if sig.len() != *modulus_bytes {
                    return Err(Pkcs11Error::BadSignature(format!(
                        "RSA signature of {} bytes, expected {modulus_bytes}",
                        sig.len()
                    )));
                }
                Ok(sig)
            }
        }
    }

    /// Reads the private key's protection attributes from the token.
    pub fn key_protection(&self) -> Result<KeyProtection, Pkcs11Error> {
        let live = self.live.lock().map_err(|_| Pkcs11Error::Poisoned)?;
        key_protection(&live.session, live.key)
    }
}

impl Signer for Pkcs11Signer {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign_message(message)
            .map_err(|e| CryptoError::Signing(format!("PKCS#11 token {}: {e}", self.token_label)))
    }

    fn public_key(&self) -> PublicKey {
        self.public_key.clone()
    }
}

pub(crate) fn key_protection(
    session: &Session,
    key: ObjectHandle,
) -> Result<KeyProtection, Pkcs11Error> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Local,
            ],
        )
        .map_err(Pkcs11Error::op("C_GetAttributeValue"))?;
    // Missing attributes count as the weaker answer.
    let mut p = KeyProtection {
        sensitive: false,
        extractable: true,
        always_sensitive: false,
        never_extractable: false,
        local: false,
    };
    for a in attrs {
        match a {
            Attribute::Sensitive(v) => p.sensitive = v,
            Attribute::Extractable(v) => p.extractable = v,
            Attribute::AlwaysSensitive(v) => p.always_sensitive = v,
            Attribute::NeverExtractable(v) => p.never_extractable = v,
            Attribute::Local(v) => p.local = v,
            _ => {}
        }
    }
    Ok(p)
}

fn find_private_key(
    session: &Session,
    uri: &Pkcs11Uri,
    token: &str,
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = uri.object() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = uri.id() {
        template.push(Attribute::Id(id.to_vec()));
    }
    let found = session
        .find_objects(&template)
        .map_err(Pkcs11Error::op("C_FindObjects"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Pkcs11Error::KeyNotFound {
            token: token.to_string(),
            wanted: selector(uri),
        }),
        many => Err(Pkcs11Error::AmbiguousKey {
            token: token.to_string(),
            wanted: selector(uri),
            count: many.len(),
        }),
    }
}

/// What [`read_key`] learns about a private key.
pub(crate) struct KeyInfo {
    kind: KeyKind,
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) public_key: PublicKey,
    label: Option<String>,
    id: Vec<u8>,
    sign: bool,
    always_authenticate: bool,
}

/// Reads a private key's type, curve or size, and public half.
pub(crate) fn read_key(session: &Session, key: ObjectHandle) -> Result<KeyInfo, Pkcs11Error> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::Id,
                AttributeType::Label,
                AttributeType::Sign,
                AttributeType::AlwaysAuthenticate,
                AttributeType::EcParams,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(Pkcs11Error::op("C_GetAttributeValue"))?;
    let mut key_type = None;
    let mut id = Vec::new();
    let mut label = None;
    let mut sign = false;
    let mut always_authenticate = false;
    let mut ec_params = None;
    let mut modulus = None;
    let mut exponent = None;
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = Some(String::from_utf8_lossy(&v).into_owned()),
            Attribute::Sign(v) => sign = v,
            Attribute::AlwaysAuthenticate(v) => always_authenticate = v,
            Attribute::EcParams(v) => ec_params = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    let wanted = match &label {
        Some(l) => format!("{l:?}"),
        None => format!("id {}", hex(&id)),
    };
    let (kind, algorithm, public_key) = match key_type {
        Some(KeyType::EC) => {
            let params = ec_params.ok_or_else(|| {
                Pkcs11Error::UnsupportedKey("EC key without CKA_EC_PARAMS".into())
            })?;
            let (curve, digest, alg, field_bytes) = match params.as_slice() {
                EC_PARAMS_P256 => (
                    Curve::P256,
                    DigestAlgorithm::Sha256,
                    &aws_lc_rs::digest::SHA256,
                    32,
                ),
                EC_PARAMS_P384 => (
                    Curve::P384,
                    DigestAlgorithm::Sha384,
                    &aws_lc_rs::digest::SHA384,
                    48,
                ),
                EC_PARAMS_P521 => (
                    Curve::P521,
                    DigestAlgorithm::Sha512,
                    &aws_lc_rs::digest::SHA512,
                    66,
                ),
                _ => {
                    return Err(Pkcs11Error::UnsupportedKey(
                        "EC key on a curve other than P-256, P-384 or P-521".into(),
                    ))
                }
            };
            let point = ec_point(session, key, &id, label.as_deref(), field_bytes)?
                .ok_or(Pkcs11Error::PublicKeyNotFound { wanted })?;
            (
                KeyKind::Ec {
                    digest: alg,
                    field_bytes,
                },
                SignatureAlgorithm::Ecdsa(digest),
                PublicKey::Ec { curve, point },
            )
        }
        Some(KeyType::RSA) => {
            // CKA_MODULUS and CKA_PUBLIC_EXPONENT are public attributes of
            // an RSA private key; fall back to the public key object.
            let (modulus, exponent) = match (modulus, exponent) {
                (Some(m), Some(e)) if !m.is_empty() && !e.is_empty() => (m, e),
                _ => rsa_public_object(session, &id, label.as_deref())?
                    .ok_or(Pkcs11Error::PublicKeyNotFound { wanted })?,
            };
            let public_key = PublicKey::from_key_value(&KeyValue::Rsa {
                modulus: modulus.clone(),
                exponent,
            })
            .map_err(|e| Pkcs11Error::UnsupportedKey(e.to_string()))?;
            let bits = public_key.bits();
            if bits < MIN_RSA_BITS {
                return Err(Pkcs11Error::UnsupportedKey(format!(
                    "RSA-{bits}: RSA keys must be at least {MIN_RSA_BITS} bits"
                )));
            }
            (
                KeyKind::Rsa {
                    modulus_bytes: bits.div_ceil(8),
                },
                SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256),
                public_key,
            )
        }
        Some(other) => {
            return Err(Pkcs11Error::UnsupportedKey(format!(
                "key type {other}; only EC and RSA keys sign"
            )))
        }
        None => {
            return Err(Pkcs11Error::UnsupportedKey(
                "the token does not say the key's type".into(),
            ))
        }
    };
    Ok(KeyInfo {
        kind,
        algorithm,
        public_key,
        label,
        id,
        sign,
        always_authenticate,
    })
}

/// The public key object that pairs with a private key: same CKA_ID if the
/// private key has one, else same label.
fn public_object(
    session: &Session,
    id: &[u8],
    label: Option<&str>,
    key_type: KeyType,
) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
    ];
    if !id.is_empty() {
        template.push(Attribute::Id(id.to_vec()));
    } else if let Some(l) = label {
        template.push(Attribute::Label(l.as_bytes().to_vec()));
    } else {
        return Ok(None);
    }
    let found = session
        .find_objects(&template)
        .map_err(Pkcs11Error::op("C_FindObjects"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Pkcs11Error::UnsupportedKey(
            "several public key objects share the private key's id/label".into(),
        )),
    }
}

/// An RSA public key's CKA_MODULUS and CKA_PUBLIC_EXPONENT.
type ModulusExponent = (Vec<u8>, Vec<u8>);

fn rsa_public_object(
    session: &Session,
    id: &[u8],
    label: Option<&str>,
) -> Result<Option<ModulusExponent>, Pkcs11Error> {
    let Some(obj) = public_object(session, id, label, KeyType::RSA)? else {
        return Ok(None);
    };
    let attrs = session
        .get_attributes(
            obj,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(Pkcs11Error::op("C_GetAttributeValue"))?;
    let (mut m, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => m = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    Ok(m.zip(e))
}

/// The uncompressed EC point: from the public key object's CKA_EC_POINT,
/// else the private key's own CKA_EC_POINT (some tokens keep it there).
fn ec_point(
    session: &Session,
    key: ObjectHandle,
    id: &[u8],
    label: Option<&str>,
    field_bytes: usize,
) -> Result<Option<Vec<u8>>, Pkcs11Error> {
    let mut candidates = Vec::new();
    if let Some(obj) = public_object(session, id, label, KeyType::EC)? {
        candidates.push(obj);
    }
    candidates.push(key);
    for obj in candidates {
        let attrs = session
            .get_attributes(obj, &[AttributeType::EcPoint])
            .map_err(Pkcs11Error::op("C_GetAttributeValue"))?;
        for a in attrs {
            if let Attribute::EcPoint(raw) = a {
                if raw.is_empty() {
                    continue;
                }
                return uncompressed_point(&raw, field_bytes)
                    .map(Some)
                    .ok_or_else(|| {
                        Pkcs11Error::UnsupportedKey(
                            "CKA_EC_POINT is not an uncompressed point on the key's curve".into(),
                        )
                    });
            }
        }
    }
    Ok(None)
}

/// CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 §2.3.3);
/// some tokens give the bare point. Either way, return the bare
/// uncompressed point `04 || X || Y`.
fn uncompressed_point(raw: &[u8], field_bytes: usize) -> Option<Vec<u8>> {
    let want = 1 + 2 * field_bytes;
    if raw.len() == want && raw[0] == 0x04 {
        return Some(raw.to_vec());
    }
    let (&tag, rest) = raw.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), rest)
    } else if first == 0x81 {
        let (&l, body) = rest.split_first()?;
        (usize::from(l), body)
    } else {
        return None;
    };
    (len == want && body.len() == want && body[0] == 0x04).then(|| body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::uncompressed_point;

    #[test]
    fn ec_point_forms() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        let mut der = vec![0x04, 65];
        der.extend(&bare);
        assert_eq!(uncompressed_point(&bare, 32).as_deref(), Some(&bare[..]));
        assert_eq!(uncompressed_point(&der, 32).as_deref(), Some(&bare[..]));
        let mut p521 = vec![0x04];
        p521.extend([9u8; 132]);
        let mut der521 = vec![0x04, 0x81, 133];
        der521.extend(&p521);
        assert_eq!(uncompressed_point(&der521, 66).as_deref(), Some(&p521[..]));
        // Compressed points are refused.
        assert_eq!(uncompressed_point(&[0x04, 33, 0x02], 32), None);
    }
}
