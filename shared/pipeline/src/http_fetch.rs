//! Plain HTTP/1.0 over `std::net` for the edge fetchers (OCSP responders,
//! trusted lists named by URL): one request, `Connection: close`, a bounded
//! body and one deadline for the whole exchange. What is fetched is signed
//! and verified by the pure crates; the transport adds nothing to trust, so
//! no TLS client is carried for it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// One HTTP/1.0 exchange with an `http://host[:port]/path` URL: a POST of
/// `body` (with its content type) or, without one, a GET. The response
/// body on 200; at most `max_body` bytes are accepted.
pub(crate) fn request(
    url: &str,
    body: Option<(&[u8], &str)>,
    accept: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs are fetched".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| format!("responder unreachable ({last})"))?;
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(left(deadline)))
        .and_then(|()| stream.set_read_timeout(Some(left(deadline))))
        .map_err(|e| e.to_string())?;
    let head = match body {
        Some((bytes, content_type)) => format!(
            "POST {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
             Accept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        ),
        None => format!(
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        ),
    };
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.map_or(&[][..], |(b, _)| b)))
        .map_err(|e| format!("sending the request: {e}"))?;
    // Headers plus the largest response accepted; more is refused, not read.
    let cap = max_body + 16 * 1024;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() >= deadline {
            return Err("timed out".into());
        }
        stream
            .set_read_timeout(Some(left(deadline)))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > cap {
                    return Err(format!("response larger than {cap} bytes"));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out".into())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the response: {e}")),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let start = match resp.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("truncated HTTP response".into()),
        Err(e) => return Err(format!("malformed HTTP response: {e}")),
    };
    let code = resp.code.unwrap_or(0);
    if code != 200 {
        return Err(format!("HTTP {code}"));
    }
    let mut content = raw.get(start..).unwrap_or_default().to_vec();
    if let Some(len) = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        if content.len() < len {
            return Err("truncated HTTP body".into());
        }
        content.truncate(len);
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_and_unreachable_urls_are_failures_not_panics() {
        assert!(request(
            "https://example.invalid/",
            None,
            "*/*",
            Duration::from_millis(50),
            10
        )
        .is_err());
        assert!(request("ftp://x/", None, "*/*", Duration::from_millis(50), 10).is_err());
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = request(
            &format!("http://127.0.0.1:{port}/"),
            Some((b"x", "application/octet-stream")),
            "*/*",
            Duration::from_millis(500),
            10,
        )
        .unwrap_err();
        assert!(e.contains("unreachable"), "{e}");
    }
}
