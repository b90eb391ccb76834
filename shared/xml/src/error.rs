use thiserror::Error;

/// Why a document was refused before any signature logic ran.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("the document is empty")]
    Empty,
    #[error("the document is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "the document is not valid UTF-8 (first bad byte at offset {offset}); {}; only UTF-8 is accepted",
        match declared {
            Some(e) => format!("it declares the encoding {e:?}"),
            None => "it declares no encoding".to_string(),
        }
    )]
    NotUtf8 {
        offset: usize,
        /// The encoding the document says it is in (its XML declaration, or
        /// a UTF-16 byte-order mark), so that the sender learns what to fix.
        declared: Option<String>,
    },
    #[error("the document declares encoding {declared:?}; only UTF-8 is accepted")]
    UnsupportedEncoding { declared: String },
    #[error("the document has a DOCTYPE; DTDs and entity declarations are forbidden")]
    Doctype,
    #[error("the document is not well-formed XML (line {line}, column {column}): {message}")]
    Malformed {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("the document has no document element")]
    NoDocumentElement,
    #[error("elements are nested {depth} deep, over the limit of {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error("an element has {count} attributes, over the limit of {limit}")]
    TooManyAttributes { count: usize, limit: usize },
    #[error("a text node is {size} bytes, over the limit of {limit} bytes")]
    TextTooLarge { size: usize, limit: usize },
    #[error("the document has more than {limit} nodes")]
    TooManyNodes { limit: usize },
    #[error(
        "the document contains an entity reference or declaration node; entities are forbidden"
    )]
    EntityReference,
    #[error("the ID {id:?} is used more than once; references to it would be ambiguous")]
    DuplicateId { id: String },
    #[error("libxml2 could not allocate a parser")]
    Allocation,
}

/// Canonicalisation failed inside libxml2 or while writing its output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum C14nError {
    #[error("libxml2 canonicalisation failed")]
    Failed,
    #[error("writing canonical output failed")]
    Output,
    #[error("an inclusive namespace prefix contains a NUL byte")]
    BadPrefix,
}
