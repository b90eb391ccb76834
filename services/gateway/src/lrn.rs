//! The LRN a declaration names, read by the gateway for `?lrn=` filtering: the text of the
//! first `LRN` element (any namespace) outside any `Signature`. A pull parser over the
//! bytes, no tree, no entities, no DTD: whatever the document is, the answer is a string
//! or nothing. The pipeline's own reading (in the receipt) is what the status API shows.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Longest LRN kept.
const MAX_LRN: usize = 128;

/// The LRN, trimmed, when the bytes name one.
pub fn scan_lrn(xml: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut in_signature = 0usize;
    let mut in_lrn = false;
    let mut text = String::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                let local = e.local_name();
                if in_signature > 0 || local.as_ref() == b"Signature" {
                    in_signature += 1;
                } else if local.as_ref() == b"LRN" {
                    in_lrn = true;
                } else if in_lrn {
                    // A nested element: the LRN is its own text only.
                    return finish(&text);
                }
            }
            Event::End(_) => {
                if in_signature > 0 {
                    in_signature -= 1;
                } else if in_lrn {
                    return finish(&text);
                }
            }
            Event::Text(t) if in_lrn => {
                let s = std::str::from_utf8(t.as_ref()).ok()?;
                text.push_str(s);
                if text.len() > 4 * MAX_LRN {
                    return None;
                }
            }
            Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

fn finish(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t.len() <= MAX_LRN).then(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_lrn_outside_signatures() {
        assert_eq!(
            scan_lrn(b"<D><H><LRN> L1 </LRN></H><LRN>L2</LRN></D>").as_deref(),
            Some("L1")
        );
        assert_eq!(
            scan_lrn(b"<D xmlns:ds='x'><ds:Signature><LRN>in</LRN></ds:Signature><n:LRN xmlns:n='y'>out</n:LRN></D>")
                .as_deref(),
            Some("out")
        );
        assert_eq!(scan_lrn(b"<D><LRN></LRN></D>"), None);
        assert_eq!(scan_lrn(b"<D><LRN>"), None);
        assert_eq!(scan_lrn(b"not xml at all"), None);
        assert_eq!(scan_lrn(b"\xff\xfe<"), None);
    }
}
