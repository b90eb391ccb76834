use std::collections::HashMap;

use libxml::bindings as ffi;

use crate::error::ParseError;

/// Every ID in a document (`Id`, `ID` and `xml:id` attributes), unique by
/// construction.
///
/// Tamga never resolves `#id` through libxml2's own ID table: that table
/// depends on DTDs and attribute types, and silently keeps the first of two
/// duplicates — exactly what signature-wrapping attacks exploit.
#[derive(Debug, Default)]
pub struct IdIndex {
    map: HashMap<String, *mut ffi::xmlNode>,
}

impl IdIndex {
    pub(crate) fn insert(&mut self, id: String, node: *mut ffi::xmlNode) -> Result<(), ParseError> {
        use std::collections::hash_map::Entry;
        match self.map.entry(id) {
            Entry::Occupied(e) => Err(ParseError::DuplicateId {
                id: e.key().clone(),
            }),
            Entry::Vacant(v) => {
                v.insert(node);
                Ok(())
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<*mut ffi::xmlNode> {
        self.map.get(id).copied()
    }

    /// How many IDs the document has.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the document has no IDs.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
