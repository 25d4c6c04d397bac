//! The edits of a sequential trace, flattened once so that every system replays the same input
//! and no system's timing includes walking the trace's JSON-shaped structure.

use tandem_traces::{Patch, SequentialTrace};

/// One patch: at code point `pos`, delete `delete` code points, then insert `insert`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit<'a> {
    pub(crate) pos: usize,
    pub(crate) delete: usize,
    pub(crate) insert: &'a str,
}

impl<'a> Edit<'a> {
    pub(crate) fn from_patch(patch: &'a Patch) -> Edit<'a> {
        Edit { pos: patch.pos(), delete: patch.delete(), insert: patch.insert() }
    }

    /// Every patch of `trace`, in the order it must be applied.
    pub(crate) fn all(trace: &'a SequentialTrace) -> Vec<Edit<'a>> {
        trace.patches().map(Edit::from_patch).collect()
    }
}

/// Where two texts that should be equal first differ, for error messages.
pub(crate) fn first_difference(actual: &str, expected: &str) -> String {
    let at = actual.chars().zip(expected.chars()).take_while(|(a, b)| a == b).count();
    format!(
        "{} code points, expected {}; first difference at code point {at}",
        actual.chars().count(),
        expected.chars().count()
    )
}
