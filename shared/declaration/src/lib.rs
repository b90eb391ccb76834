//! The bundled sample customs declaration format (`urn:tamga:declaration:1`,
//! XSD in `schemas/declaration.xsd`) and a deterministic generator of sample
//! declarations for the demo, tests, benchmarks and the load generator.
//!
//! Real deployments carry national formats; Tamga signs and verifies any
//! XML document element. This format only has to be realistic in size and
//! content: multilingual text (Kazakh, Azerbaijani, Turkish, Kyrgyz,
//! Uzbek) exercises multibyte canonicalisation.
#![forbid(unsafe_code)]

use std::fmt::Write;

/// The sample format's namespace.
pub const NAMESPACE: &str = "urn:tamga:declaration:1";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// ISO 3166 alpha-2, upper case.
    pub origin: String,
    pub destination: String,
    /// Sequence number: makes the LRN and the content unique.
    pub sequence: u64,
    /// Goods items: 45 gives ~25 KB, 2000 gives ~1 MB.
    pub items: usize,
}

impl SampleSpec {
    pub fn new(origin: &str, destination: &str, sequence: u64, items: usize) -> Self {
        Self {
            origin: origin.to_ascii_uppercase(),
            destination: destination.to_ascii_uppercase(),
            sequence,
            items,
        }
    }

    /// The local reference number this sample carries.
    pub fn lrn(&self) -> String {
        format!("{}26TMG{:010}", self.origin, self.sequence)
    }
}

struct Locale {
    broker: &'static str,
    city: &'static str,
    border: &'static str,
    goods: &'static [&'static str],
}

fn locale(cc: &str) -> Locale {
    match cc {
        "KZ" => Locale {
            broker: "«Каспий Брокер» ЖШС",
            city: "Ақтау",
            border: "Ақтау теңіз порты",
            goods: &[
                "Бидай ұны, жоғары сорт",
                "Мыс катодтары",
                "Мақта талшығы",
                "Ферроқорытпалар",
            ],
        },
        "AZ" => Locale {
            broker: "Xəzər Gömrük Broker MMC",
            city: "Ələt",
            border: "Bakı Beynəlxalq Dəniz Ticarət Limanı",
            goods: &[
                "Pambıq ipliyi",
                "Fındıq ləpəsi",
                "Polipropilen qranulları",
                "Şüşə qablar",
            ],
        },
        "TR" => Locale {
            broker: "Boğaziçi Gümrük Müşavirliği A.Ş.",
            city: "İstanbul",
            border: "Sarp Gümrük Kapısı",
            goods: &[
                "Örme pamuklu tişört",
                "Kuru kayısı",
                "Çelik boru",
                "Seramik karo",
            ],
        },
        "KG" => Locale {
            broker: "«Ала-Тоо Брокер» ЖЧК",
            city: "Бишкек",
            border: "Торугарт бажы өткөрүү пункту",
            goods: &[
                "Жүн кийиз буюмдары",
                "Кургатылган өрүк",
                "Тоо балы",
                "Алтын кендери",
            ],
        },
        "UZ" => Locale {
            broker: "Buyuk Ipak Yo'li Broker MChJ",
            city: "Toshkent",
            border: "Olot chegara bojxona posti",
            goods: &[
                "Paxta tolasi",
                "Quritilgan mayiz",
                "Ipak mato",
                "Mis simlar",
            ],
        },
        _ => Locale {
            broker: "Trans-Caspian Broker Ltd",
            city: "Capital",
            border: "Main border post",
            goods: &["General cargo", "Machine parts", "Textiles", "Foodstuffs"],
        },
    }
}

/// A tiny deterministic PRNG (xorshift): samples must be reproducible and
/// need no randomness crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An ISO 6346 container number: owner code (three letters and the category `U`), six
/// digits, and the check digit.
pub fn container_number(owner: &str, serial: u64) -> String {
    let body = format!("{owner}{:06}", serial % 1_000_000);
    let value = |c: char| -> u64 {
        match c {
            '0'..='9' => u64::from(c) - u64::from('0'),
            // A=10 … Z=38, skipping the multiples of 11.
            'A'..='Z' => {
                let mut v = 10;
                for _ in 'A'..c {
                    v += 1;
                    if v % 11 == 0 {
                        v += 1;
                    }
                }
                v
            }
            _ => 0,
        }
    };
    let sum: u64 = body.chars().enumerate().map(|(i, c)| value(c) << i).sum();
    format!("{body}{}", sum % 11 % 10)
}

/// Generates one unsigned sample declaration.
pub fn sample(spec: &SampleSpec) -> String {
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ spec.sequence.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let from = locale(&spec.origin);
    let to = locale(&spec.destination);
    let lrn = spec.lrn();
    let tin = rng.below(1_000_000_000_000);
    // Drawn in the order they always were, so the goods items stay as before.
    let veh = rng.below(100_000);
    let mut s = String::with_capacity(600 * spec.items + 2000);
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        s,
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<Declaration xmlns=\"{ns}\" Id=\"decl-{lrn}\">\n",
            "  <Header>\n",
            "    <LRN>{lrn}</LRN>\n",
            "    <DeclarationType>EX</DeclarationType>\n",
            "    <Origin>{o}</Origin>\n",
            "    <Destination>{d}</Destination>\n",
            "    <IssuePlace>{city}</IssuePlace>\n",
            "    <Declarant><Name>{broker}</Name><TIN>{o}{tin:012}</TIN><Country>{o}</Country></Declarant>\n",
            "    <Consignee><Name>{cbroker}</Name><Country>{d}</Country></Consignee>\n",
            "    <Transport><Mode>1</Mode><Vehicle>TRK-{veh:05}</Vehicle><Container>{container}</Container><Seal>{seal}</Seal><ExitPoint>{border}</ExitPoint><EntryPoint>{tborder}</EntryPoint></Transport>\n",
            "  </Header>\n",
            "  <GoodsItems count=\"{n}\">\n"
        ),
        ns = NAMESPACE,
        lrn = lrn,
        o = spec.origin,
        d = spec.destination,
        city = escape(from.city),
        broker = escape(from.broker),
        tin = tin,
        cbroker = escape(to.broker),
        veh = veh,
        container = container_number("TMGU", (veh * 7 + spec.sequence) % 1_000_000),
        seal = format!("{}S{:07}", spec.origin, (veh * 13 + spec.sequence) % 10_000_000),
        border = escape(from.border),
        tborder = escape(to.border),
        n = spec.items,
    );
    let mut total_value = 0u64;
    let mut total_mass = 0u64;
    for i in 1..=spec.items {
        let goods = from.goods[rng.below(from.goods.len() as u64) as usize];
        let hs = 100_000 + rng.below(900_000);
        let qty = 1 + rng.below(500);
        let mass = 10 + rng.below(20_000);
        let value = 100 + rng.below(1_000_000);
        total_value += value;
        total_mass += mass;
        let _ = write!(
            s,
            concat!(
                "    <GoodsItem seq=\"{i}\">\n",
                "      <Description>{goods}, партия/lot {i}</Description>\n",
                "      <HSCode>{hs}</HSCode>\n",
                "      <Quantity unit=\"pcs\">{qty}</Quantity>\n",
                "      <GrossMass unit=\"kg\">{gm}.{gf}</GrossMass>\n",
                "      <NetMass unit=\"kg\">{nm}.{gf}</NetMass>\n",
                "      <Value currency=\"USD\">{vi}.{vf:02}</Value>\n",
                "      <OriginCountry>{o}</OriginCountry>\n",
                "      <Packages kind=\"PK\">{pk}</Packages>\n",
                "      <Marks>{lrn}/{i} — {city}</Marks>\n",
                "      <PreviousDocument type=\"N380\">INV-{seq}-{i:04}</PreviousDocument>\n",
                "    </GoodsItem>\n"
            ),
            i = i,
            goods = escape(goods),
            hs = hs,
            qty = qty,
            gm = mass,
            nm = mass.saturating_sub(mass / 10),
            gf = rng.below(10),
            vi = value / 100,
            vf = value % 100,
            o = spec.origin,
            pk = 1 + rng.below(40),
            lrn = lrn,
            city = escape(from.city),
            seq = spec.sequence,
        );
    }
    let _ = write!(
        s,
        concat!(
            "  </GoodsItems>\n",
            "  <Totals><GrossMass unit=\"kg\">{m}</GrossMass><Value currency=\"USD\">{v}.{vf:02}</Value></Totals>\n",
            "</Declaration>\n"
        ),
        m = total_mass,
        v = total_value / 100,
        vf = total_value % 100,
    );
    s
}

/// What identifies a declaration, as far as the document says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Local reference number (`LRN` element).
    pub lrn: Option<String>,
    /// The document element's `Id`/`ID` attribute.
    pub document_id: Option<String>,
    pub origin: Option<String>,
    pub destination: Option<String>,
}

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Reads the identity from a parsed declaration: the first `LRN`, `Origin`
/// and `Destination` elements (any namespace) outside any signature, and the
/// document element's Id. Reads the same tree that was verified, and only
/// the document element's content, which the declarant's reference covers.
pub fn identity(doc: &tamga_xml::Document) -> Identity {
    let root = doc.root();
    let mut id = Identity {
        document_id: root.attribute("Id").or_else(|| root.attribute("ID")),
        ..Identity::default()
    };
    let mut stack: Vec<tamga_xml::Node<'_>> = root.element_children().collect();
    stack.reverse();
    while let Some(n) = stack.pop() {
        if n.is(DSIG_NS, "Signature") {
            continue;
        }
        let slot = match n.local_name() {
            "LRN" => &mut id.lrn,
            "Origin" => &mut id.origin,
            "Destination" => &mut id.destination,
            _ => {
                let mut kids: Vec<_> = n.element_children().collect();
                kids.reverse();
                stack.extend(kids);
                continue;
            }
        };
        if slot.is_none() {
            let text = n.text().trim().to_string();
            if !text.is_empty() && text.len() <= 128 {
                *slot = Some(text);
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_advertised() {
        let small = sample(&SampleSpec::new("KZ", "AZ", 1, 45));
        assert!((20_000..32_000).contains(&small.len()), "{}", small.len());
        let big = sample(&SampleSpec::new("TR", "KG", 2, 2000));
        assert!((900_000..1_400_000).contains(&big.len()), "{}", big.len());
    }

    #[test]
    fn identity_of_a_sample() {
        let text = sample(&SampleSpec::new("KZ", "AZ", 5, 2));
        let doc = tamga_xml::Document::parse(text.as_bytes(), &Default::default()).unwrap();
        let id = identity(&doc);
        assert_eq!(id.lrn.as_deref(), Some("KZ26TMG0000000005"));
        assert_eq!(id.document_id.as_deref(), Some("decl-KZ26TMG0000000005"));
        assert_eq!(id.origin.as_deref(), Some("KZ"));
        assert_eq!(id.destination.as_deref(), Some("AZ"));
    }

    #[test]
    fn container_check_digits() {
        // ISO 6346's own examples.
        assert_eq!(container_number("CSQU", 305_438), "CSQU3054383");
        assert_eq!(container_number("MSKU", 907_032), "MSKU9070323");
        let text = sample(&SampleSpec::new("KZ", "AZ", 5, 2));
        assert!(text.contains("<Container>TMGU"), "{text}");
        assert!(text.contains("<Seal>KZS"));
    }

    #[test]
    fn deterministic_and_distinct() {
        let a = sample(&SampleSpec::new("KZ", "AZ", 7, 3));
        assert_eq!(a, sample(&SampleSpec::new("KZ", "AZ", 7, 3)));
        assert_ne!(a, sample(&SampleSpec::new("KZ", "AZ", 8, 3)));
        assert!(a.contains("KZ26TMG0000000007"));
    }
}
