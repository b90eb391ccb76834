//! The soak's declarations: a weighted mix of valid ones and one of every
//! rejection class the customs policy decides (`shared/policy/src/reason.rs`),
//! over four corridors, each with the outcome it must get. The manifest is
//! the checker's "enqueue" history.

use std::collections::HashMap;
use std::sync::Arc;

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, DemoPki};
use tamga_xml::ParseLimits;

/// The four corridors (origin → destination); every country is both.
pub const CORRIDORS: [(&str, &str); 4] = [("KZ", "AZ"), ("AZ", "TR"), ("TR", "KG"), ("KG", "KZ")];
/// Countries the site countersigns for (their keys are in the HSM).
pub const SERVED: [&str; 4] = ["KZ", "AZ", "TR", "KG"];
/// In the trust list but not served here: `destination_not_served`.
pub const UNSERVED: &str = "UZ";
/// Not in the trust list at all: `origin_not_trusted`.
pub const UNTRUSTED_ORIGIN: &str = "GE";
/// The site policy's document size limit; `Oversize` declarations exceed it.
pub const MAX_BYTES: usize = 256 * 1024;

/// What the pipeline must do with a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Countersigned and forwarded to `tamga.outbound.<to>`.
    Accepted,
    /// A signed rejection receipt with this reason code on `tamga.rejected.<from>`.
    Rejected(&'static str),
    /// `tamga.verify.dlq`, with an audit event: poison (an impossible
    /// route), or a rejection no queue takes (an origin outside the trust
    /// list: there is no partner to return it to).
    DeadLettered,
}

impl Expect {
    pub fn side(self) -> &'static str {
        match self {
            Expect::Accepted => "accepted",
            Expect::Rejected(_) => "rejected",
            Expect::DeadLettered => "dead-lettered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    ValidEcdsa,
    ValidRsa,
    ValidXades,
    DigestMismatch,
    SignatureInvalid,
    SignatureWrapping,
    UntrustedSigner,
    Expired,
    Revoked,
    KeyUsage,
    WeakAlgorithm,
    Doctype,
    Oversize,
    Malformed,
    NoSignature,
    OriginMismatch,
    DestinationNotServed,
    OriginNotTrusted,
    Poison,
}

impl Class {
    pub const ALL: [Class; 19] = [
        Class::ValidEcdsa,
        Class::ValidRsa,
        Class::ValidXades,
        Class::DigestMismatch,
        Class::SignatureInvalid,
        Class::SignatureWrapping,
        Class::UntrustedSigner,
        Class::Expired,
        Class::Revoked,
        Class::KeyUsage,
        Class::WeakAlgorithm,
        Class::Doctype,
        Class::Oversize,
        Class::Malformed,
        Class::NoSignature,
        Class::OriginMismatch,
        Class::DestinationNotServed,
        Class::OriginNotTrusted,
        Class::Poison,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::ValidEcdsa => "valid (ECDSA)",
            Class::ValidRsa => "valid (RSA)",
            Class::ValidXades => "valid (XAdES)",
            Class::DigestMismatch => "content changed",
            Class::SignatureInvalid => "bad signature value",
            Class::SignatureWrapping => "signature wrapping",
            Class::UntrustedSigner => "untrusted CA",
            Class::Expired => "expired certificate",
            Class::Revoked => "revoked certificate",
            Class::KeyUsage => "no signing key usage",
            Class::WeakAlgorithm => "weak algorithm",
            Class::Doctype => "DTD",
            Class::Oversize => "oversize",
            Class::Malformed => "malformed XML",
            Class::NoSignature => "unsigned",
            Class::OriginMismatch => "origin mismatch",
            Class::DestinationNotServed => "destination not served",
            Class::OriginNotTrusted => "origin not trusted",
            Class::Poison => "poison route",
        }
    }

    /// Share in the mix (per mille): 60 % valid.
    fn weight(self) -> u32 {
        match self {
            Class::ValidEcdsa => 400,
            Class::ValidRsa => 100,
            Class::ValidXades => 100,
            Class::Oversize | Class::Poison | Class::OriginNotTrusted => 10,
            Class::KeyUsage | Class::NoSignature | Class::OriginMismatch => 20,
            _ => 30,
        }
    }

    pub fn expect(self) -> Expect {
        use Expect::{Accepted, DeadLettered, Rejected};
        match self {
            Class::ValidEcdsa | Class::ValidRsa | Class::ValidXades => Accepted,
            Class::DigestMismatch => Rejected("digest_mismatch"),
            Class::SignatureInvalid => Rejected("signature_invalid"),
            Class::SignatureWrapping => Rejected("signature_wrapping"),
            Class::UntrustedSigner => Rejected("untrusted_signer"),
            Class::Expired => Rejected("certificate_expired"),
            Class::Revoked => Rejected("certificate_revoked"),
            Class::KeyUsage => Rejected("key_usage_not_allowed"),
            Class::WeakAlgorithm => Rejected("weak_algorithm"),
            Class::Doctype => Rejected("doctype_forbidden"),
            Class::Oversize => Rejected("document_too_large"),
            Class::Malformed => Rejected("malformed_xml"),
            Class::NoSignature => Rejected("no_signature"),
            Class::OriginMismatch => Rejected("origin_mismatch"),
            Class::DestinationNotServed => Rejected("destination_not_served"),
            Class::OriginNotTrusted => DeadLettered,
            Class::Poison => DeadLettered,
        }
    }
}

/// One message the driver publishes.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub class: Class,
    pub from: String,
    pub to: String,
    pub route: String,
    pub body: Arc<Vec<u8>>,
    /// SHA-256 of the body: the same bytes under two ids are one declaration.
    pub group: String,
    /// Published a second time (same id, same bytes) later on.
    pub resend: bool,
}

impl Entry {
    pub fn expect(&self) -> Expect {
        self.class.expect()
    }

    /// Where its one result must land.
    pub fn expected_queue(&self) -> String {
        match self.expect() {
            Expect::Accepted => format!("tamga.outbound.{}", self.to.to_ascii_lowercase()),
            Expect::Rejected(_) => format!("tamga.rejected.{}", self.from.to_ascii_lowercase()),
            Expect::DeadLettered => "tamga.verify.dlq".into(),
        }
    }
}

/// A small deterministic generator (xorshift64*): the mix is reproducible
/// from `SOAK_SEED`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The classes of `n` declarations: each class once first (so even a short
/// run has every one), then drawn by weight.
fn classes(n: usize, rng: &mut Rng) -> Vec<Class> {
    let total: u32 = Class::ALL.iter().map(|c| c.weight()).sum();
    let mut out: Vec<Class> = Class::ALL.iter().copied().take(n).collect();
    while out.len() < n {
        let mut x = (rng.next() % u64::from(total)) as u32;
        for c in Class::ALL {
            if x < c.weight() {
                out.push(c);
                break;
            }
            x -= c.weight();
        }
    }
    // Spread the first-of-each over the run rather than all at its start.
    for i in (1..out.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// A signing key and the certificates its signatures carry.
type Signer = (SigningKey, Vec<Vec<u8>>);

struct Keys {
    broker: HashMap<(String, BrokerKind), Signer>,
    rogue: Signer,
}

fn keys(pki: &DemoPki, rogue: &DemoPki) -> Keys {
    let mut broker = HashMap::new();
    for (cc, _) in CORRIDORS {
        let c = pki.country(cc).expect("corridor country in the PKI");
        for kind in BrokerKind::ALL {
            let b = c.broker(kind).expect("every broker kind");
            broker.insert(
                (cc.to_string(), kind),
                (
                    SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).expect("broker key"),
                    vec![b.cert_der.clone(), c.issuing.cert_der.clone()],
                ),
            );
        }
    }
    let rc = &rogue.countries[0];
    let rb = rc.broker(BrokerKind::Ecdsa).expect("rogue broker");
    Keys {
        broker,
        // Without its issuing CA: nothing chains to a trusted root.
        rogue: (
            SigningKey::from_pkcs8_pem(rb.key_pkcs8_pem.as_bytes()).expect("rogue key"),
            vec![rb.cert_der.clone()],
        ),
    }
}

fn sign(doc: &str, (key, certs): &Signer, xades: bool) -> String {
    let out = sign_enveloped(
        doc.as_bytes(),
        key,
        &SignOptions {
            certificates: certs.clone(),
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: ParseLimits::default(),
        },
    )
    .expect("sign_enveloped");
    String::from_utf8(out).expect("signed output is UTF-8")
}

const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const ECDSA_SHA1: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1";

fn replace1(s: &str, from: &str, to: &str) -> String {
    assert!(s.contains(from), "corpus bug: {from:?} not in the document");
    s.replacen(from, to, 1)
}

/// One declaration of `class` on corridor (`from`, `to`), number `seq`.
fn make(class: Class, from: &str, to: &str, seq: u64, k: &Keys) -> (String, String, Vec<u8>) {
    let route = |f: &str, t: &str| format!("{}.{}", f.to_ascii_lowercase(), t.to_ascii_lowercase());
    let broker = |kind| &k.broker[&(from.to_string(), kind)];
    let doc = || sample(&SampleSpec::new(from, to, seq, 4));
    let ecdsa = || sign(&doc(), broker(BrokerKind::Ecdsa), false);
    let (r, body) = match class {
        Class::ValidEcdsa => (route(from, to), ecdsa()),
        Class::ValidRsa => (
            route(from, to),
            sign(&doc(), broker(BrokerKind::Rsa), false),
        ),
        Class::ValidXades => (
            route(from, to),
            sign(&doc(), broker(BrokerKind::Ecdsa), true),
        ),
        Class::DigestMismatch => (route(from, to), replace1(&ecdsa(), "<HSCode>", "<HSCode>9")),
        Class::SignatureInvalid => {
            let s = ecdsa();
            let at = s.find("<ds:SignatureValue").expect("SignatureValue");
            let v = at + s[at..].find('>').expect("tag end") + 1;
            let first = if s.as_bytes()[v] == b'A' { "B" } else { "A" };
            (
                route(from, to),
                format!("{}{first}{}", &s[..v], &s[v + 1..]),
            )
        }
        Class::SignatureWrapping => {
            // The demo's forgery: a forged declaration (another LRN) wraps
            // the signed original, whose signature still verifies.
            let forged = sample(&SampleSpec::new(from, to, seq + 500_000_000, 4));
            let original = ecdsa();
            let original = original.strip_prefix(PROLOG).expect("prolog").trim_end();
            let i = forged.rfind("</Declaration>").expect("root end");
            (
                route(from, to),
                format!(
                    "{}<Extension>{original}</Extension>{}",
                    &forged[..i],
                    &forged[i..]
                ),
            )
        }
        Class::UntrustedSigner => (route(from, to), sign(&doc(), &k.rogue, false)),
        Class::Expired => (
            route(from, to),
            sign(&doc(), broker(BrokerKind::Expired), false),
        ),
        Class::Revoked => (
            route(from, to),
            sign(&doc(), broker(BrokerKind::Revoked), false),
        ),
        Class::KeyUsage => (
            route(from, to),
            sign(&doc(), broker(BrokerKind::NoSigningKeyUsage), false),
        ),
        Class::WeakAlgorithm => (
            route(from, to),
            replace1(&ecdsa(), ECDSA_SHA256, ECDSA_SHA1),
        ),
        Class::Doctype => (
            route(from, to),
            replace1(
                &ecdsa(),
                PROLOG,
                &format!("{PROLOG}<!DOCTYPE Declaration [<!ENTITY x \"y\">]>\n"),
            ),
        ),
        Class::Oversize => {
            let big = sample(&SampleSpec::new(from, to, seq, 600));
            assert!(
                big.len() > MAX_BYTES,
                "corpus bug: the oversize sample is small"
            );
            (route(from, to), big)
        }
        Class::Malformed => {
            let s = ecdsa();
            let mut cut = s.len() * 3 / 5;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            (route(from, to), s[..cut].to_string())
        }
        Class::NoSignature => (route(from, to), doc()),
        Class::OriginMismatch => {
            // Signed by `from`'s broker, but stating another origin.
            let other = CORRIDORS
                .iter()
                .map(|(f, _)| *f)
                .find(|f| *f != from && *f != to)
                .expect("a third country");
            let stated = sample(&SampleSpec::new(other, to, seq, 4));
            (
                route(from, to),
                sign(&stated, broker(BrokerKind::Ecdsa), false),
            )
        }
        Class::DestinationNotServed => {
            let d = sample(&SampleSpec::new(from, UNSERVED, seq, 4));
            (
                route(from, UNSERVED),
                sign(&d, broker(BrokerKind::Ecdsa), false),
            )
        }
        Class::OriginNotTrusted => (route(UNTRUSTED_ORIGIN, to), ecdsa()),
        Class::Poison => ("garbage".into(), ecdsa()),
    };
    let from = match class {
        Class::OriginNotTrusted => UNTRUSTED_ORIGIN,
        _ => from,
    };
    let to = match class {
        Class::DestinationNotServed => UNSERVED,
        _ => to,
    };
    (format!("{from}>{to}"), r, body.into_bytes())
}

fn sha256_hex(b: &[u8]) -> String {
    tamga_pipeline::engine::sha256_hex(b)
}

/// `n` declarations (plus copies of ~1 % of them under another message id:
/// a broker resubmitting the same bytes), ~2 % marked for a resend under the
/// same id. Signed on every core.
pub fn generate(tag: &str, n: usize, seed: u64, pki: &DemoPki, rogue: &DemoPki) -> Vec<Entry> {
    let mut rng = Rng::new(seed);
    let classes = classes(n, &mut rng);
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .min(8);
    let chunk = n.div_ceil(threads).max(1);
    let base = time::OffsetDateTime::now_utc().unix_timestamp() as u64 % 1_000_000 * 1000;
    let mut out: Vec<Option<Entry>> = vec![None; n];
    std::thread::scope(|s| {
        for (c, slots) in out.chunks_mut(chunk).enumerate() {
            let classes = &classes;
            s.spawn(move || {
                let k = keys(pki, rogue);
                for (j, slot) in slots.iter_mut().enumerate() {
                    let i = c * chunk + j;
                    let (from, to) = CORRIDORS[i % CORRIDORS.len()];
                    let class = classes[i];
                    let (pair, route, body) = make(class, from, to, base + i as u64, &k);
                    let (from, to) = pair.split_once('>').expect("pair");
                    *slot = Some(Entry {
                        id: format!("{tag}-{i}"),
                        class,
                        from: from.into(),
                        to: to.into(),
                        route,
                        group: sha256_hex(&body),
                        body: Arc::new(body),
                        resend: false,
                    });
                }
            });
        }
    });
    let mut entries: Vec<Entry> = out.into_iter().map(|e| e.expect("every slot")).collect();
    for e in entries.iter_mut() {
        e.resend = rng.next() % 100 < 2;
    }
    // Same bytes under another message id, published some way after the
    // original (the pipeline decides the bytes once, under the first id it sees).
    let copies: Vec<Entry> = entries
        .iter()
        .filter(|e| e.class != Class::Poison)
        .filter(|_| rng.next() % 100 < 1)
        .map(|e| Entry {
            id: format!("{}-copy", e.id),
            resend: false,
            ..e.clone()
        })
        .collect();
    for c in copies {
        let at = entries.iter().position(|e| e.group == c.group).unwrap_or(0);
        let to = (at + 1 + rng.range(0, 200) as usize).min(entries.len());
        entries.insert(to, c);
    }
    entries
}

/// Verifies one declaration of each class as the pipeline would (same trust
/// directory and policy) and checks it gets the outcome the manifest
/// expects: a wrong-side count must mean a pipeline fault, never a corpus
/// mistake.
pub fn self_check(entries: &[Entry], trust_dir: &std::path::Path, policy: &tamga_policy::Policy) {
    let trust = tamga_trust::TrustList::load_dir(trust_dir).expect("trust list");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        if !seen.insert(e.class) {
            continue;
        }
        let Some((from, _)) = e.route.split_once('.') else {
            assert_eq!(e.class, Class::Poison, "corpus bug: a route without a dot");
            continue;
        };
        let origin: tamga_trust::CountryCode =
            from.to_ascii_uppercase().parse().expect("country code");
        let report = tamga_policy::verify_document(&tamga_policy::VerifyRequest {
            bytes: &e.body,
            trust: &trust,
            origin,
            at_unix: now,
            policy,
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        });
        let got = report.reason;
        let want = match (e.class, e.expect()) {
            (Class::OriginNotTrusted, _) => Some("origin_not_trusted"),
            (_, Expect::Accepted) => None,
            // Verifies; refused only at the decision step.
            (_, Expect::Rejected("destination_not_served")) => None,
            (_, Expect::Rejected(code)) => Some(code),
            (_, Expect::DeadLettered) => continue,
        };
        assert_eq!(
            got,
            want,
            "corpus self-check: {} ({}) verifies as {got:?}: {}",
            e.id,
            e.class.name(),
            report.message
        );
    }
}
