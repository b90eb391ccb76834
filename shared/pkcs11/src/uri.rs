//! RFC 7512 `pkcs11:` URIs, as given to `tamga countersign --key`.
//!
//! ```text
//! pkcs11:token=tamga-az;object=az-authority;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin
//! ```
//!
//! Parsing is strict: an attribute Tamga does not know, a repeated
//! attribute, a character the RFC's grammar does not allow there, or a bad
//! percent escape is an error, so that a typo never silently selects some
//! other key. Error messages name attributes, never values (a mistyped URI
//! may carry a PIN).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::error::Pkcs11Error;

/// The SoftHSM2 module on Debian, the last fallback for the module path.
pub const SOFTHSM2_DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Environment variable naming the PKCS#11 module when the URI has no
/// `module-path`.
pub const MODULE_ENV: &str = "TAMGA_PKCS11_MODULE";
/// Environment variable holding the user PIN when the URI has neither
/// `pin-value` nor `pin-source`.
pub const PIN_ENV: &str = "TAMGA_PKCS11_PIN";

/// Longest PIN file read (a PIN is short; this only stops `/dev/zero`).
const MAX_PIN_FILE: u64 = 4096;

/// A PKCS#11 object class, the URI's `type` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectType {
    Private,
    Public,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    /// The URI spelling: `private`, `secret-key`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A user PIN. Zeroed when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// A PIN from its bytes (PKCS#11 PINs are byte strings, usually UTF-8).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Pin(Zeroizing::new(bytes.into()))
    }

    /// The PIN's bytes. Only for handing to the token.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// Where the PIN comes from, as the URI says.
#[derive(Clone)]
enum PinSpec {
    Value(Pin),
    Source(PathBuf),
}

/// Why a `pkcs11:` URI was refused. Never carries attribute values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UriError {
    #[error("not a PKCS#11 URI (it must start with \"pkcs11:\")")]
    NotPkcs11,
    #[error("a PKCS#11 URI has no fragment ('#')")]
    Fragment,
    #[error("empty attribute in the URI's {component} (stray ';' or '&'?)")]
    EmptyAttribute { component: &'static str },
    #[error("attribute {index} of the URI's {component} has no '='")]
    MissingEquals {
        component: &'static str,
        index: usize,
    },
    #[error("unknown {component} attribute {name}")]
    UnknownAttribute {
        component: &'static str,
        name: String,
    },
    #[error("attribute {name} is given more than once")]
    Duplicate { name: String },
    #[error("attribute {name}: character at offset {offset} of its value must be percent-encoded")]
    BadCharacter { name: String, offset: usize },
    #[error("attribute {name}: bad percent escape at offset {offset} of its value")]
    BadPercent { name: String, offset: usize },
    #[error("attribute {name} is not valid UTF-8 once decoded")]
    NotUtf8 { name: String },
    #[error("attribute {name}: {reason}")]
    BadValue { name: String, reason: &'static str },
    #[error("pin-value and pin-source are both given; use one")]
    PinConflict,
    #[error("module-name is not supported; give module-path (an absolute path) instead")]
    ModuleName,
}

/// A parsed `pkcs11:` URI (RFC 7512).
///
/// Path attributes: `token`, `manufacturer`, `model`, `serial`, `slot-id`
/// select the token (all given ones must match); `object`, `id`, `type`
/// select the key. `library-*`, `slot-description` and `slot-manufacturer`
/// are accepted and ignored. Query attributes: `module-path`, `pin-value`,
/// `pin-source`.
#[derive(Clone, Default)]
pub struct Pkcs11Uri {
    token: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
    serial: Option<String>,
    slot_id: Option<u64>,
    object: Option<String>,
    id: Option<Vec<u8>>,
    object_type: Option<ObjectType>,
    module_path: Option<PathBuf>,
    pin: Option<PinSpec>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pkcs11Uri");
        d.field("token", &self.token)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("slot_id", &self.slot_id)
            .field("object", &self.object)
            .field("id", &self.id.as_deref().map(hex))
            .field("object_type", &self.object_type)
            .field("module_path", &self.module_path);
        match &self.pin {
            None => d.field("pin", &None::<()>),
            Some(PinSpec::Value(_)) => d.field("pin", &"[redacted]"),
            Some(PinSpec::Source(p)) => d.field("pin_source", p),
        };
        d.finish()
    }
}

/// Lower-case hex, for ids in messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7512 `pk11-res-avail`.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Component {
    Path,
    Query,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Path => "path",
            Component::Query => "query",
        }
    }

    fn allows(self, b: u8) -> bool {
        is_unreserved(b)
            || is_res_avail(b)
            || match self {
                // pk11-path-res-avail
                Component::Path => b == b'&',
                // pk11-query-res-avail
                Component::Query => matches!(b, b'/' | b'?' | b'|'),
            }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one attribute value (RFC 3986 §2.1), checking every
/// literal character against the component's grammar. The output is
/// zeroed on drop: it may be a PIN.
fn decode(component: Component, name: &str, value: &str) -> Result<Zeroizing<Vec<u8>>, UriError> {
    let bytes = value.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => {
                    return Err(UriError::BadPercent {
                        name: name.to_string(),
                        offset: i,
                    })
                }
            }
            i += 3;
        } else if component.allows(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(UriError::BadCharacter {
                name: name.to_string(),
                offset: i,
            });
        }
    }
    Ok(out)
}

fn decode_utf8(component: Component, name: &str, value: &str) -> Result<String, UriError> {
    let raw = decode(component, name, value)?;
    String::from_utf8(raw.to_vec()).map_err(|_| UriError::NotUtf8 {
        name: name.to_string(),
    })
}

/// An unknown attribute's name, echoed only if it looks like a name (a
/// mangled URI could put a PIN where a name should be).
fn printable_name(name: &str) -> String {
    if !name.is_empty()
        && name.len() <= 40
        && name.bytes().any(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        name.to_string()
    } else {
        "(not shown)".to_string()
    }
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate {
            name: name.to_string(),
        });
    }
    *slot = Some(value);
    Ok(())
}

fn split_attributes(
    component: Component,
    text: &str,
    sep: char,
) -> Result<Vec<(&str, &str)>, UriError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(sep)
        .enumerate()
        .map(|(index, attr)| {
            if attr.is_empty() {
                return Err(UriError::EmptyAttribute {
                    component: component.name(),
                });
            }
            attr.split_once('=').ok_or(UriError::MissingEquals {
                component: component.name(),
                index: index + 1,
            })
        })
        .collect()
}

impl Pkcs11Uri {
    /// Parses an RFC 7512 URI.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = match uri.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &uri[7..],
            _ => return Err(UriError::NotPkcs11),
        };
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, q),
            None => (rest, ""),
        };
        let mut out = Pkcs11Uri::default();
        let mut ignored: Vec<&str> = Vec::new();

        let p = Component::Path;
        for (name, value) in split_attributes(p, path, ';')? {
            match name {
                "token" => set(&mut out.token, name, decode_utf8(p, name, value)?)?,
                "manufacturer" => set(&mut out.manufacturer, name, decode_utf8(p, name, value)?)?,
                "model" => set(&mut out.model, name, decode_utf8(p, name, value)?)?,
                "serial" => set(&mut out.serial, name, decode_utf8(p, name, value)?)?,
                "object" => set(&mut out.object, name, decode_utf8(p, name, value)?)?,
                "id" => set(&mut out.id, name, decode(p, name, value)?.to_vec())?,
                "type" => {
                    let t = match decode_utf8(p, name, value)?.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        "cert" => ObjectType::Cert,
                        "secret-key" => ObjectType::SecretKey,
                        "data" => ObjectType::Data,
                        _ => {
                            return Err(UriError::BadValue {
                                name: name.to_string(),
                                reason: "must be private, public, cert, secret-key or data",
                            })
                        }
                    };
                    set(&mut out.object_type, name, t)?;
                }
                "slot-id" => {
                    let id = decode_utf8(p, name, value)?.parse::<u64>().map_err(|_| {
                        UriError::BadValue {
                            name: name.to_string(),
                            reason: "must be a decimal number",
                        }
                    })?;
                    set(&mut out.slot_id, name, id)?;
                }
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {
                    // Accepted and ignored, but still well-formed and unique.
                    decode(p, name, value)?;
                    if ignored.contains(&name) {
                        return Err(UriError::Duplicate {
                            name: name.to_string(),
                        });
                    }
                    ignored.push(name);
                }
                other => {
                    return Err(UriError::UnknownAttribute {
                        component: p.name(),
                        name: printable_name(other),
                    })
                }
            }
        }

        let q = Component::Query;
        for (name, value) in split_attributes(q, query, '&')? {
            match name {
                "module-path" => {
                    let path = PathBuf::from(decode_utf8(q, name, value)?);
                    if !path.is_absolute() {
                        return Err(UriError::BadValue {
                            name: name.to_string(),
                            reason: "must be an absolute path",
                        });
                    }
                    set(&mut out.module_path, name, path)?;
                }
                "module-name" => return Err(UriError::ModuleName),
                "pin-value" => {
                    let pin = Pin(decode(q, name, value)?);
                    match out.pin {
                        None => out.pin = Some(PinSpec::Value(pin)),
                        Some(PinSpec::Value(_)) => {
                            return Err(UriError::Duplicate {
                                name: name.to_string(),
                            })
                        }
                        Some(PinSpec::Source(_)) => return Err(UriError::PinConflict),
                    }
                }
                "pin-source" => {
                    let source = parse_pin_source(&decode_utf8(q, name, value)?)?;
                    match out.pin {
                        None => out.pin = Some(PinSpec::Source(source)),
                        Some(PinSpec::Source(_)) => {
                            return Err(UriError::Duplicate {
                                name: name.to_string(),
                            })
                        }
                        Some(PinSpec::Value(_)) => return Err(UriError::PinConflict),
                    }
                }
                other => {
                    return Err(UriError::UnknownAttribute {
                        component: q.name(),
                        name: printable_name(other),
                    })
                }
            }
        }
        Ok(out)
    }

    /// `token`: the token label.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `manufacturer`: the token's manufacturer ID.
    pub fn manufacturer(&self) -> Option<&str> {
        self.manufacturer.as_deref()
    }

    /// `model`: the token's model.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// `serial`: the token's serial number.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// `slot-id`.
    pub fn slot_id(&self) -> Option<u64> {
        self.slot_id
    }

    /// `object`: the key's label (CKA_LABEL).
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }

    /// `id`: the key's CKA_ID, decoded.
    pub fn id(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }

    /// `type`.
    pub fn object_type(&self) -> Option<ObjectType> {
        self.object_type
    }

    /// `module-path`, as given.
    pub fn module_path(&self) -> Option<&Path> {
        self.module_path.as_deref()
    }

    /// `pin-source`, as a file path.
    pub fn pin_source(&self) -> Option<&Path> {
        match &self.pin {
            Some(PinSpec::Source(p)) => Some(p),
            _ => None,
        }
    }

    /// Whether the URI itself carries a PIN (`pin-value`).
    pub fn has_pin_value(&self) -> bool {
        matches!(self.pin, Some(PinSpec::Value(_)))
    }

    /// The module to load: `module-path`, else `$TAMGA_PKCS11_MODULE`, else
    /// SoftHSM2's Debian path. Must be absolute (a bare name would be
    /// searched for along the library path).
    pub fn resolve_module(&self) -> Result<PathBuf, Pkcs11Error> {
        if let Some(p) = &self.module_path {
            return Ok(p.clone());
        }
        match std::env::var_os(MODULE_ENV) {
            Some(v) if !v.is_empty() => {
                let p = PathBuf::from(v);
                if p.is_absolute() {
                    Ok(p)
                } else {
                    Err(Pkcs11Error::Config(format!(
                        "{MODULE_ENV} must be an absolute path"
                    )))
                }
            }
            _ => Ok(PathBuf::from(SOFTHSM2_DEFAULT_MODULE)),
        }
    }

    /// The user PIN: `pin-value`, else the file named by `pin-source` (one
    /// trailing newline removed), else `$TAMGA_PKCS11_PIN`, else none.
    pub fn resolve_pin(&self) -> Result<Option<Pin>, Pkcs11Error> {
        match &self.pin {
            Some(PinSpec::Value(pin)) => Ok(Some(pin.clone())),
            Some(PinSpec::Source(path)) => read_pin_file(path).map(Some),
            None => match std::env::var_os(PIN_ENV) {
                Some(v) if !v.is_empty() => {
                    let s = Zeroizing::new(v.into_string().map_err(|_| {
                        Pkcs11Error::Config(format!("{PIN_ENV} is not valid UTF-8"))
                    })?);
                    Ok(Some(Pin::new(s.as_bytes())))
                }
                _ => Ok(None),
            },
        }
    }

    /// The URI again, with `pin-value` left out: safe to log.
    pub fn redacted(&self) -> String {
        let mut path = Vec::new();
        let mut push = |name: &str, value: Option<&[u8]>| {
            if let Some(v) = value {
                path.push(format!("{name}={}", encode(Component::Path, v)));
            }
        };
        push("token", self.token.as_deref().map(str::as_bytes));
        push(
            "manufacturer",
            self.manufacturer.as_deref().map(str::as_bytes),
        );
        push("model", self.model.as_deref().map(str::as_bytes));
        push("serial", self.serial.as_deref().map(str::as_bytes));
        let slot = self.slot_id.map(|s| s.to_string());
        push("slot-id", slot.as_deref().map(str::as_bytes));
        push("object", self.object.as_deref().map(str::as_bytes));
        push("id", self.id.as_deref());
        push("type", self.object_type.map(|t| t.as_str().as_bytes()));
        let mut query = Vec::new();
        if let Some(m) = &self.module_path {
            query.push(format!(
                "module-path={}",
                encode(Component::Query, m.to_string_lossy().as_bytes())
            ));
        }
        match &self.pin {
            Some(PinSpec::Source(p)) => query.push(format!(
                "pin-source={}",
                encode(Component::Query, p.to_string_lossy().as_bytes())
            )),
            Some(PinSpec::Value(_)) => query.push("pin-value=[redacted]".to_string()),
            None => {}
        }
        let mut s = format!("pkcs11:{}", path.join(";"));
        if !query.is_empty() {
            s.push('?');
            s.push_str(&query.join("&"));
        }
        s
    }
}

impl FromStr for Pkcs11Uri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Percent-encodes a value for a path attribute (everything but unreserved
/// characters is escaped, so the result is valid in either component).
pub fn percent_encode(value: &[u8]) -> String {
    encode(Component::Path, value)
}

fn encode(component: Component, value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        let keep = is_unreserved(b) || (component == Component::Query && b == b'/');
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pin-source`: a `file:` URI (`file:/p`, `file:///p`,
/// `file://localhost/p`) or a plain absolute path.
fn parse_pin_source(value: &str) -> Result<PathBuf, UriError> {
    let bad = |reason| UriError::BadValue {
        name: "pin-source".to_string(),
        reason,
    };
    let path = if let Some(rest) = value.strip_prefix("file:") {
        if let Some(auth) = rest.strip_prefix("//") {
            if let Some(p) = auth.strip_prefix("localhost") {
                p
            } else if auth.starts_with('/') {
                auth
            } else {
                return Err(bad("file: URIs must name a local file"));
            }
        } else {
            rest
        }
    } else if value.contains(':') && !value.starts_with('/') {
        return Err(bad("only file: URIs and absolute paths are supported"));
    } else {
        value
    };
    if !path.starts_with('/') {
        return Err(bad("must be an absolute file path"));
    }
    Ok(PathBuf::from(path))
}

fn read_pin_file(path: &Path) -> Result<Pin, Pkcs11Error> {
    let io = |e: std::io::Error| Pkcs11Error::PinSource {
        path: path.to_path_buf(),
        reason: e.kind().to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_PIN_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_PIN_FILE {
        return Err(Pkcs11Error::PinSource {
            path: path.to_path_buf(),
            reason: "the file is too long for a PIN".into(),
        });
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.is_empty() {
        return Err(Pkcs11Error::PinSource {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    Ok(Pin(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips() {
        let raw = b"a b/c;d?e%\x00\xff";
        let enc = encode(Component::Path, raw);
        assert_eq!(
            decode(Component::Path, "x", &enc).map(|v| v.to_vec()),
            Ok(raw.to_vec())
        );
    }

    #[test]
    fn odd_names_are_not_echoed() {
        assert_eq!(printable_name("1234"), "(not shown)");
        assert_eq!(printable_name("x-vendor"), "x-vendor");
    }
}
