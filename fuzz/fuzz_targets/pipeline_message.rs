//! Fuzzes what the pipeline decodes from the broker's messages: the decided frame
//! (`Decided::decode`: the binary `TMGD` frame and the legacy JSON form), the verified
//! envelope the countersigner reads (JSON), and the routing key (`parse_route`). Every input
//! is an error or a value, never a panic; a decoded frame re-encodes to a frame that decodes
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_pipeline::engine::{parse_route, Decided, Verified};

fuzz_target!(|data: &[u8]| {
    if let Ok(decided) = Decided::decode(data) {
        let again = Decided::decode(&decided.encode()).expect("an encoded frame decodes");
        assert_eq!(again, decided, "decode(encode(d)) == d");
        let _ = decided.countersigned_bytes();
        let _ = decided.receipt_bytes();
    }
    if let Ok(v) = serde_json::from_slice::<Verified>(data) {
        let _ = serde_json::to_vec(&v).expect("a verified envelope serialises");
    }
    if let Ok(key) = std::str::from_utf8(data) {
        if let Ok((from, to)) = parse_route(key) {
            assert_eq!(
                format!("{from}.{to}").to_ascii_lowercase(),
                key,
                "a route is exactly <from>.<to>"
            );
        }
    }
});
