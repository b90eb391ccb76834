//! API tokens: 256 random bits, shown once; the database keeps only their SHA-256.

use base64::Engine as _;

/// Prefix of every token (so that secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "tmg_";

/// A new random token.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system RNG failed".to_string())?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// What the database stores and looks up: SHA-256 of the token, hex.
pub fn hash(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A new declaration id: 128 random bits, hex (never 64 characters long, so never
/// mistaken for the SHA-256 the pipeline uses as identity of messages without an id).
pub fn declaration_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system RNG failed".to_string())?;
    Ok(hex::encode(bytes))
}

/// The token of an `Authorization: Bearer …` header value, if well formed.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= 256
        && token.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(declaration_id().unwrap().len(), 32);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer a b"), None);
    }
}
