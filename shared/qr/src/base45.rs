//! Base45 (RFC 9285): the QR alphanumeric alphabet, as the EU DCC uses it.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Encodes bytes (two bytes → three characters, a last byte → two).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() / 2 * 3 + 2);
    let mut push = |v: usize| out.push(char::from(ALPHABET[v % 45]));
    for pair in bytes.chunks(2) {
        match *pair {
            [a, b] => {
                let n = usize::from(a) * 256 + usize::from(b);
                push(n);
                push(n / 45);
                push(n / 2025);
            }
            [a] => {
                let n = usize::from(a);
                push(n);
                push(n / 45);
            }
            _ => {}
        }
    }
    out
}

fn value(c: u8) -> Result<usize, String> {
    ALPHABET
        .iter()
        .position(|&a| a == c)
        .ok_or_else(|| format!("{:?} is not a Base45 character", char::from(c)))
}

/// Decodes, refusing characters outside the alphabet, a dangling character and values
/// above what the group can hold.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    for group in bytes.chunks(3) {
        match *group {
            [c, d, e] => {
                let n = value(c)? + value(d)? * 45 + value(e)? * 2025;
                let hi =
                    u8::try_from(n / 256).map_err(|_| "a group is out of range".to_string())?;
                out.push(hi);
                out.push((n % 256) as u8);
            }
            [c, d] => {
                let n = value(c)? + value(d)? * 45;
                out.push(
                    u8::try_from(n).map_err(|_| "the last group is out of range".to_string())?,
                );
            }
            _ => return Err("the length is not a Base45 length".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").unwrap(), b"ietf!");
        assert!(decode("GGW").is_err()); // 65535 < n: out of range
        assert!(decode("A").is_err());
        assert!(decode("aa").is_err());
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }
}
