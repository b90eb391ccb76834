//! Fuzzes the gateway's request parsing (`tamga_gateway::api`): the input is a raw
//! HTTP/1.1 request (head parsed with httparse, as a stand-in for hyper's framing), whose
//! headers go through the submission checks (`parse_submission_headers`,
//! `check_content_type`, `declared_length`, the bearer token), whose query string goes
//! through every query parser (declarations list, notifications, the pages'), and whose
//! body through the LRN scan. Every input is a Problem or a value, never a panic; what is
//! accepted is what the API documents.
#![no_main]

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tamga_gateway::api::{
    check_content_type, declared_length, decode_cursor, encode_cursor, parse_submission_headers,
    ListQuery, NotificationsQuery, MAX_PAGE, MAX_WAIT_SECS,
};
use tamga_gateway::{lrn::scan_lrn, pages::parse_query, token::bearer};

fuzz_target!(|data: &[u8]| {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut slots);
    let (head_len, path) = match req.parse(data) {
        Ok(httparse::Status::Complete(n)) => (n, req.path),
        // Not a request head: still a body to scan.
        _ => (0, None),
    };
    let mut headers = HeaderMap::new();
    for h in req.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(s) = parse_submission_headers(&headers) {
        let key = &s.idempotency_key;
        assert!(!key.is_empty() && key.len() <= 255, "{key:?}");
        assert!(key.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
        for cc in [&s.origin, &s.destination] {
            assert!(
                cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()),
                "{cc:?}"
            );
        }
    }
    let _ = check_content_type(&headers);
    let _ = declared_length(&headers);
    if let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    {
        assert!(!token.is_empty() && token.len() <= 256);
    }

    let query = path.and_then(|p| p.split_once('?')).map(|(_, q)| q);
    if let Ok(q) = ListQuery::parse(query.unwrap_or("")) {
        assert!((1..=MAX_PAGE).contains(&q.limit), "{q:?}");
        if let Some((ms, id)) = &q.after {
            assert_eq!(
                decode_cursor(&encode_cursor(*ms, id)),
                Some((*ms, id.clone()))
            );
        }
    }
    if let Ok(q) = NotificationsQuery::parse(query) {
        assert!(q.after >= 0 && q.wait <= MAX_WAIT_SECS, "{q:?}");
    }
    let _ = parse_query(query);
    if let Some(q) = query {
        if let Some((ms, id)) = decode_cursor(q) {
            assert_eq!(decode_cursor(&encode_cursor(ms, &id)), Some((ms, id)));
        }
    }

    if let Some(lrn) = scan_lrn(&data[head_len..]) {
        assert_eq!(lrn.trim(), lrn, "the LRN is trimmed");
    }
});
