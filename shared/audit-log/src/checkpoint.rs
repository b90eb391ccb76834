//! The signed checkpoint document (XSD: `schemas/checkpoint.xsd`, namespace
//! `urn:tamga:checkpoint:1`): tree size, root hash, when, by whom, and every chain's head,
//! signed by the authority's key (enveloped XML-DSig with XAdES-B-B, as receipts are), so
//! that anyone with the authority's certificate — or `xmlsec1` — can check it offline.
//!
//! ```xml
//! <Checkpoint xmlns="urn:tamga:checkpoint:1" Id="cp-120" version="1">
//!   <TreeSize>120</TreeSize>
//!   <RootHash>…64 hex…</RootHash>
//!   <IssuedAt>2026-12-05T10:00:00.123Z</IssuedAt>
//!   <Authority>
//!     <Country>AZ</Country>
//!     <Subject>CN=…</Subject>
//!     <CertificateSha256>…</CertificateSha256>
//!   </Authority>
//!   <Chains>
//!     <Chain hash="…" name="site-1/fused/0" seq="40"></Chain>
//!   </Chains>
//!   <ds:Signature>…</ds:Signature>
//! </Checkpoint>
//! ```

use aws_lc_rs::digest;
use tamga_dsig::{
    check_references, check_signature_value, find_signatures, parse_signature,
    sign_canonical_enveloped, Budget, NoExternal, PublicKey, SignOptions, Signer, Transform,
};
use tamga_merkle::Hash;
use tamga_store::ChainHead;
use tamga_xml::{Document, Node, ParseLimits};

/// The checkpoint namespace.
pub const NAMESPACE: &str = "urn:tamga:checkpoint:1";

const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Who signed a checkpoint: the authority as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointAuthority {
    /// ISO 3166 alpha-2.
    pub country: String,
    /// The certificate's subject.
    pub subject: String,
    /// SHA-256 of the certificate (DER), lower-case hex: the key id.
    pub certificate_sha256: String,
}

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Events covered: the first `tree_size` leaves of the log's tree.
    pub tree_size: u64,
    /// The root hash of that tree.
    pub root: Hash,
    /// When it was signed, milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
    /// The signer.
    pub authority: CheckpointAuthority,
    /// Every chain's head, ordered by chain name (byte order), names unique.
    pub chains: Vec<ChainHead>,
}

/// Why a checkpoint could not be made, read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Not well-formed XML, or over the parser's limits.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not a checkpoint as `schemas/checkpoint.xsd` describes it.
    #[error("not a Tamga checkpoint: {0}")]
    NotACheckpoint(String),
    /// A value XML cannot carry (a control character in a chain name, say).
    #[error("cannot be written as XML: {0}")]
    Unencodable(String),
    /// Signing failed (the key or token refused, the certificate does not match it).
    #[error("signing the checkpoint failed: {0}")]
    Sign(String),
    /// The signature is missing, malformed, does not cover the whole document, or does
    /// not verify.
    #[error("the checkpoint's signature is not valid: {0}")]
    Signature(String),
    /// Signed by a certificate that is not one of those trusted for checkpoints.
    #[error("the checkpoint is signed by certificate {certificate_sha256}, which is not a configured authority certificate")]
    UnknownSigner { certificate_sha256: String },
}

/// SHA-256 of `bytes`, lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// Text content as exclusive c14n writes it.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#xD;")
}

/// An attribute value as exclusive c14n writes it.
fn esc_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\t', "&#x9;")
        .replace('\n', "&#xA;")
        .replace('\r', "&#xD;")
}

/// Refuses characters XML 1.0 cannot carry at all.
fn xml_safe<'a>(what: &str, s: &'a str) -> Result<&'a str, CheckpointError> {
    let bad = s.chars().find(|&c| {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    });
    match bad {
        Some(c) => Err(CheckpointError::Unencodable(format!(
            "{what} {s:?} contains U+{:04X}",
            c as u32
        ))),
        None => Ok(s),
    }
}

fn rfc3339_ms(ms: i64) -> Result<String, CheckpointError> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| CheckpointError::Unencodable(format!("time {ms} ms: {e}")))?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| CheckpointError::Unencodable(format!("time {ms} ms: {e}")))
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 64 lower-case hex digits as a hash.
#[must_use]
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    if !is_hex64(s) {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

impl Checkpoint {
    /// The document element's `Id`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("cp-{}", self.tree_size)
    }

    /// The root hash, lower-case hex.
    #[must_use]
    pub fn root_hex(&self) -> String {
        hex::encode(self.root)
    }

    /// When it was signed, RFC 3339.
    #[must_use]
    pub fn issued_at(&self) -> String {
        rfc3339_ms(self.issued_at_ms).unwrap_or_else(|_| self.issued_at_ms.to_string())
    }

    /// The `Checkpoint` element in exclusive canonical form (its bytes are their own
    /// canonical form, as a receipt's are: nothing is parsed before signing).
    pub fn canonical_root(&self) -> Result<String, CheckpointError> {
        let a = &self.authority;
        let mut chains = String::new();
        for h in &self.chains {
            if !is_hex64(&h.hash) {
                return Err(CheckpointError::Unencodable(format!(
                    "chain {:?}: head hash {:?} is not 64 lower-case hex digits",
                    h.chain, h.hash
                )));
            }
            chains.push_str(&format!(
                "    <Chain hash=\"{}\" name=\"{}\" seq=\"{}\"></Chain>\n",
                h.hash,
                esc_attr(xml_safe("chain name", &h.chain)?),
                h.seq
            ));
        }
        let chains = if chains.is_empty() {
            "  <Chains></Chains>\n".to_owned()
        } else {
            format!("  <Chains>\n{chains}  </Chains>\n")
        };
        Ok(format!(
            concat!(
                "<Checkpoint xmlns=\"{ns}\" Id=\"{id}\" version=\"1\">\n",
                "  <TreeSize>{size}</TreeSize>\n",
                "  <RootHash>{root}</RootHash>\n",
                "  <IssuedAt>{at}</IssuedAt>\n",
                "  <Authority>\n    <Country>{c}</Country>\n    <Subject>{s}</Subject>\n",
                "    <CertificateSha256>{cert}</CertificateSha256>\n  </Authority>\n",
                "{chains}",
                "</Checkpoint>"
            ),
            ns = NAMESPACE,
            id = self.id(),
            size = self.tree_size,
            root = self.root_hex(),
            at = rfc3339_ms(self.issued_at_ms)?,
            c = esc(xml_safe("country", &a.country)?),
            s = esc(xml_safe("subject", &a.subject)?),
            cert = esc(xml_safe("certificate digest", &a.certificate_sha256)?),
            chains = chains,
        ))
    }

    /// The signed document. `certificates`: the signer's certificate first (its SHA-256
    /// must be `authority.certificate_sha256`), then its chain.
    pub fn sign(
        &self,
        signer: &dyn Signer,
        certificates: &[Vec<u8>],
    ) -> Result<Vec<u8>, CheckpointError> {
        match certificates.first() {
            Some(c) if sha256_hex(c) == self.authority.certificate_sha256 => {}
            _ => {
                return Err(CheckpointError::Sign(
                    "the signing certificate is not the checkpoint's authority certificate".into(),
                ))
            }
        }
        let root = self.canonical_root()?;
        let id = self.id();
        let signing_time =
            time::OffsetDateTime::from_unix_timestamp(self.issued_at_ms.div_euclid(1000))
                .map_err(|e| CheckpointError::Unencodable(e.to_string()))?;
        sign_canonical_enveloped(
            PROLOG,
            &root,
            &[id.as_str()],
            signer,
            &SignOptions {
                certificates: certificates.to_vec(),
                digest: tamga_dsig::default_digest(signer),
                xades: true,
                signing_time,
                limits: ParseLimits::default(),
            },
        )
        .map_err(|e| CheckpointError::Sign(e.to_string()))
    }
}

fn not(what: String) -> CheckpointError {
    CheckpointError::NotACheckpoint(what)
}

fn text_of(parent: Node<'_>, name: &str) -> Result<String, CheckpointError> {
    parent
        .child(NAMESPACE, name)
        .map(|n| n.text())
        .ok_or_else(|| not(format!("missing {name}")))
}

/// Reads a checkpoint's fields, strictly, without checking its signature.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let doc = Document::parse(bytes, &ParseLimits::default())
        .map_err(|e| CheckpointError::Xml(e.to_string()))?;
    read_fields(&doc)
}

fn read_fields(doc: &Document) -> Result<Checkpoint, CheckpointError> {
    let root = doc.root();
    if !root.is(NAMESPACE, "Checkpoint") {
        return Err(not(format!(
            "the document element is {{{}}}{}",
            root.namespace().unwrap_or(""),
            root.local_name()
        )));
    }
    if root.attribute("version").as_deref() != Some("1") {
        return Err(not("version is not 1".into()));
    }
    let size_text = text_of(root, "TreeSize")?;
    let tree_size: u64 = size_text
        .parse()
        .map_err(|_| not(format!("TreeSize {size_text:?} is not a number")))?;
    let root_text = text_of(root, "RootHash")?;
    let root_hash = hash_from_hex(&root_text).ok_or_else(|| {
        not(format!(
            "RootHash {root_text:?} is not 64 lower-case hex digits"
        ))
    })?;
    let at_text = text_of(root, "IssuedAt")?;
    let issued_at_ms = parse_rfc3339_ms(&at_text)
        .ok_or_else(|| not(format!("IssuedAt {at_text:?} is not an RFC 3339 time")))?;
    let authority = root
        .child(NAMESPACE, "Authority")
        .ok_or_else(|| not("missing Authority".into()))?;
    let authority = CheckpointAuthority {
        country: text_of(authority, "Country")?,
        subject: text_of(authority, "Subject")?,
        certificate_sha256: text_of(authority, "CertificateSha256")?,
    };
    if !is_hex64(&authority.certificate_sha256) {
        return Err(not(
            "CertificateSha256 is not 64 lower-case hex digits".into()
        ));
    }
    let chains_el = root
        .child(NAMESPACE, "Chains")
        .ok_or_else(|| not("missing Chains".into()))?;
    let mut chains: Vec<ChainHead> = Vec::new();
    for c in chains_el.element_children() {
        if !c.is(NAMESPACE, "Chain") {
            return Err(not(format!("unexpected {} in Chains", c.local_name())));
        }
        let attr = |name: &str| {
            c.attribute(name)
                .ok_or_else(|| not(format!("a Chain without {name}")))
        };
        let name = attr("name")?;
        let seq_text = attr("seq")?;
        let seq: i64 = seq_text.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
            not(format!(
                "chain {name:?}: seq {seq_text:?} is not a number ≥ 1"
            ))
        })?;
        let hash = attr("hash")?;
        if !is_hex64(&hash) {
            return Err(not(format!(
                "chain {name:?}: hash is not 64 lower-case hex digits"
            )));
        }
        if let Some(prev) = chains.last() {
            if prev.chain.as_bytes() >= name.as_bytes() {
                return Err(not(format!(
                    "chains are not in byte order without repeats: {:?} then {name:?}",
                    prev.chain
                )));
            }
        }
        chains.push(ChainHead {
            chain: name,
            seq,
            hash,
        });
    }
    // Checked: three chains near i64::MAX would wrap a plain sum, and a wrapped sum could
    // be made to equal a stated TreeSize.
    let covered = chains
        .iter()
        .try_fold(0u64, |acc, c| acc.checked_add(c.seq.unsigned_abs()))
        .ok_or_else(|| not("the chain heads add up to more than 2^64 events".into()))?;
    if covered != tree_size {
        return Err(not(format!(
            "the chain heads add up to {covered} events, TreeSize says {tree_size}"
        )));
    }
    Ok(Checkpoint {
        tree_size,
        root: root_hash,
        issued_at_ms,
        authority,
        chains,
    })
}

/// Reads a checkpoint and checks its signature: exactly one, enveloped, covering the whole
/// document, by the key of the pinned certificate (DER) whose SHA-256 the checkpoint
/// names. Everything returned is covered by that signature.
pub fn verify_checkpoint(bytes: &[u8], pinned: &[Vec<u8>]) -> Result<Checkpoint, CheckpointError> {
    let limits = ParseLimits::default();
    let doc = Document::parse(bytes, &limits).map_err(|e| CheckpointError::Xml(e.to_string()))?;
    let checkpoint = read_fields(&doc)?;
    let sig = |m: String| CheckpointError::Signature(m);
    let signatures = find_signatures(&doc);
    let [signature] = signatures.as_slice() else {
        return Err(sig(format!(
            "{} signatures where one was expected",
            signatures.len()
        )));
    };
    if signature.parent() != Some(doc.root()) {
        return Err(sig("the signature is not a child of Checkpoint".into()));
    }
    let model = parse_signature(*signature, &Budget::default()).map_err(|e| sig(e.to_string()))?;
    for r in check_references(&doc, &model, &NoExternal, &limits) {
        if let Err(e) = r.result {
            return Err(sig(format!(
                "reference {} ({:?}) does not verify: {e:?}",
                r.index,
                r.uri.unwrap_or_default()
            )));
        }
    }
    let whole = model.references.iter().any(|r| {
        r.uri.as_deref() == Some("")
            && r.transforms
                .iter()
                .all(|t| matches!(t, Transform::Enveloped | Transform::C14n(_)))
    });
    if !whole {
        return Err(sig(
            "no reference covers the whole document (URI=\"\" with only the enveloped and \
             canonicalization transforms)"
                .into(),
        ));
    }
    let cert = pinned
        .iter()
        .find(|c| sha256_hex(c) == checkpoint.authority.certificate_sha256)
        .ok_or_else(|| CheckpointError::UnknownSigner {
            certificate_sha256: checkpoint.authority.certificate_sha256.clone(),
        })?;
    let key = PublicKey::from_certificate_der(cert).map_err(|e| sig(e.to_string()))?;
    check_signature_value(&doc, &model, &key).map_err(|e| sig(e.to_string()))?;
    Ok(checkpoint)
}

/// The external file name of the checkpoint of `tree_size` leaves: zero-padded, so that
/// names sort as sizes do.
#[must_use]
pub fn file_name(tree_size: u64) -> String {
    format!("checkpoint-{tree_size:020}.xml")
}

/// The tree size a checkpoint file name stands for; `None` for any other name.
#[must_use]
pub fn size_of_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?.strip_suffix(".xml")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
