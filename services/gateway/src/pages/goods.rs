//! What the officer matches against the truck: the vehicle, the container and seal
//! numbers, the goods items (description, HS code) and the gross mass, read from the
//! declaration's bytes with a pull parser (outside any `Signature`, no entities, no DTD),
//! bounded.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

/// Most goods items listed on the card.
const MAX_ITEMS: usize = 5;
/// Most containers and seals listed.
const MAX_UNITS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Goods {
    pub vehicle: Option<String>,
    pub containers: Vec<String>,
    pub seals: Vec<String>,
    pub items: usize,
    /// `(description, HS code)` of the first items.
    pub first: Vec<(String, String)>,
    /// The declared total (`Totals/GrossMass`), else the items' sum.
    pub gross_mass_kg: f64,
    /// The HS codes, in order, without repeats (the first [`MAX_ITEMS`] × 4).
    pub hs_codes: Vec<String>,
}

pub fn scan(xml: &[u8]) -> Goods {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut g = Goods::default();
    let mut in_signature = 0usize;
    let mut current: Option<String> = None;
    let mut text = String::new();
    let mut description = String::new();
    let mut in_totals = false;
    let mut items_mass = 0.0;
    let mut total_mass: Option<f64> = None;
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
                    if local == "Totals" {
                        in_totals = true;
                    }
                    current = Some(local);
                    text.clear();
                }
            }
            Event::End(e) => {
                if in_signature > 0 {
                    in_signature -= 1;
                    continue;
                }
                if e.local_name().as_ref() == b"Totals" {
                    in_totals = false;
                }
                let value = text.trim().to_owned();
                match current.take().as_deref() {
                    Some("Vehicle") if g.vehicle.is_none() => g.vehicle = Some(value),
                    Some("Container") if g.containers.len() < MAX_UNITS => g.containers.push(value),
                    Some("Seal") if g.seals.len() < MAX_UNITS => g.seals.push(value),
                    Some("Description") => description = value,
                    Some("HSCode") => {
                        if g.hs_codes.len() < MAX_ITEMS * 4 && !g.hs_codes.contains(&value) {
                            g.hs_codes.push(value.clone());
                        }
                        if g.first.len() < MAX_ITEMS {
                            g.first.push((std::mem::take(&mut description), value));
                        }
                    }
                    Some("GrossMass") => {
                        let kg = value.parse::<f64>().unwrap_or(0.0);
                        if in_totals {
                            total_mass = Some(kg);
                        } else {
                            items_mass += kg;
                        }
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
    g.gross_mass_kg = total_mass.unwrap_or(items_mass);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_consignment() {
        let xml = br#"<D><Header><Transport><Vehicle>TRK-1</Vehicle><Container>TMGU0000017</Container><Seal>KZS1</Seal><Seal>KZS2</Seal></Transport></Header>
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
        assert_eq!(g.containers, ["TMGU0000017"]);
        assert_eq!(g.seals, ["KZS1", "KZS2"]);
        assert_eq!(g.hs_codes, ["110100", "740311"]);
        assert_eq!(scan(b"<<<not xml").items, 0);
        // The declared total wins over the items' sum (it is not added to it).
        let with_total = br#"<D><GoodsItem><GrossMass>1</GrossMass></GoodsItem><Totals><GrossMass unit="kg">7.5</GrossMass></Totals></D>"#;
        assert!((scan(with_total).gross_mass_kg - 7.5).abs() < 1e-9);
    }
}
