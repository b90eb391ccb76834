/// Bounds on what a document may cost us before any signature work starts.
///
/// The defaults are generous for customs declarations (the largest real ones
/// are a few MiB) and small enough that one hostile message cannot take a
/// worker's memory or CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (the document element is depth 1).
    pub max_depth: usize,
    /// Most attributes (not counting namespace declarations) on one element.
    pub max_attributes_per_element: usize,
    /// Largest single text or CDATA node, in bytes.
    pub max_text_bytes: usize,
    /// Most nodes of any kind in the tree.
    pub max_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 256,
            max_attributes_per_element: 64,
            max_text_bytes: 8 * 1024 * 1024,
            max_nodes: 2_000_000,
        }
    }
}
