//! Hardened XML for signature verification, over libxml2.
//!
//! This is the only crate in Tamga with `unsafe` code: it owns the libxml2
//! document and hands out borrowed, read-only views of it. Everything an
//! attacker can influence — document size, depth, DOCTYPEs and entities,
//! encodings, duplicate IDs — is refused here, before any signature logic
//! sees the tree.
//!
//! Three promises the rest of Tamga relies on:
//! * **Fail closed.** Parsing never recovers from an error; a document that is
//!   not well-formed UTF-8 XML without a DOCTYPE is a [`ParseError`].
//! * **Nothing is fetched.** No network, no DTD loading, no XInclude, no
//!   entity expansion: a DOCTYPE stops the parser the moment it is seen.
//! * **One tree.** Verification and any later business-field extraction read
//!   the same [`Document`], so they can never disagree about what was signed.

mod c14n;
mod document;
mod error;
mod ids;
mod limits;
mod node;
pub mod stream;

pub use c14n::{C14nMethod, Canonicalization, Selection};
pub use document::{Document, ElementSpan, Parsed, LIBXML2_MAX_DEPTH};
pub use error::{C14nError, ParseError};
pub use ids::IdIndex;
pub use limits::ParseLimits;
pub use node::{Attribute, Node, NodeKind};

/// The XML namespace (`xml:` prefix), whose `xml:id` is an ID attribute.
pub const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
