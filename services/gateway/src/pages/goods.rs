//! What the officer matches against the truck: the vehicle, the goods items (description,
//! HS code) and the gross mass, read from the declaration's bytes with a pull parser
//! (outside any `Signature`, no entities, no DTD), bounded.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

/// Most goods items listed on the card.
const MAX_ITEMS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Goods {
    pub vehicle: Option<String>,
    pub items: usize,
    /// `(description, HS code)` of the first items.
    pub first: Vec<(String, String)>,
    pub gross_mass_kg: f64,
}

pub fn scan(xml: &[u8]) -> Goods {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut g = Goods::default();
    let mut in_signature = 0usize;
    let mut current: Option<String> = None;
    let mut text = String::new();
    let mut description = String::new();
    while let Ok(ev) = reader.read_event_into(&mut buf) {
        match ev {
            Event::Start(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if in_signature > 0 || local == "Signature" {
                    in_signature += 1;
                } else {
                    if local == "GoodsItem" {
                        g.items += 1;
                    }
                    current = Some(local);
                    text.clear();
                }
            }
            Event::End(_) => {
                if in_signature > 0 {
                    in_signature -= 1;
                    continue;
                }
                match current.take().as_deref() {
                    Some("Vehicle") if g.vehicle.is_none() => g.vehicle = Some(text.trim().into()),
                    Some("Description") => description = text.trim().to_owned(),
                    Some("HSCode") if g.first.len() < MAX_ITEMS => {
                        g.first
                            .push((std::mem::take(&mut description), text.trim().to_owned()));
                    }
                    Some("GrossMass") => {
                        g.gross_mass_kg += text.trim().parse::<f64>().unwrap_or(0.0)
                    }
                    _ => {}
                }
            }
            Event::Text(t) if current.is_some() => {
                if let Ok(s) = std::str::from_utf8(t.as_ref()) {
                    if text.len() < 512 {
                        text.push_str(s);
                    }
                }
            }
            Event::GeneralRef(r) if current.is_some() => {
                // Only the predefined entities are expanded (no DTD is read).
                let name: &[u8] = &r;
                let s = match name {
                    b"amp" => "&",
                    b"lt" => "<",
                    b"gt" => ">",
                    b"quot" => "\"",
                    b"apos" => "'",
                    _ => "",
                };
                text.push_str(s);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_consignment() {
        let xml = br#"<D><Header><Transport><Vehicle>TRK-1</Vehicle></Transport></Header>
<GoodsItems><GoodsItem><Description>Flour &amp; bran</Description><HSCode>110100</HSCode><GrossMass>10.5</GrossMass></GoodsItem>
<GoodsItem><Description>Copper</Description><HSCode>740311</HSCode><GrossMass>2</GrossMass></GoodsItem></GoodsItems>
<Signature><Description>x</Description><HSCode>1</HSCode></Signature></D>"#;
        let g = scan(xml);
        assert_eq!(g.vehicle.as_deref(), Some("TRK-1"));
        assert_eq!(g.items, 2);
        assert_eq!(
            g.first[0],
            ("Flour & bran".to_string(), "110100".to_string())
        );
        assert_eq!(g.first.len(), 2);
        assert!((g.gross_mass_kg - 12.5).abs() < 1e-9);
        assert_eq!(scan(b"<<<not xml").items, 0);
    }
}
