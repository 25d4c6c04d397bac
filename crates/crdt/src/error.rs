//! The error type of the crdt crate.

use crate::Id;

/// What can go wrong when editing or applying operations to a CRDT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An insert with no text, or a delete of zero characters.
    #[error("nothing to insert or delete")]
    Empty,
    /// A visible index past the end of the text.
    #[error("index {index} is out of range for a text of length {len}")]
    IndexOutOfRange { index: usize, len: usize },
    /// A visible range that runs past the end of the text.
    #[error("range {start}..{end} is out of range for a text of length {len}")]
    RangeOutOfRange { start: usize, end: usize, len: usize },
    /// A local insert whose id is not newer than everything this replica has seen.
    #[error("id {id} is not newer than every id seen so far (highest seq {max_seq})")]
    StaleId { id: Id, max_seq: u64 },
    /// An operation whose reference is not older than the operation itself.
    #[error(
        "{id} cannot be inserted after {after}: a reference must be older than what follows it"
    )]
    ReferenceNotOlder { id: Id, after: Id },
    /// Sequence numbers would pass [`crate::MAX_SEQ`].
    #[error("sequence numbers run past the maximum at {id}")]
    SeqOverflow { id: Id },
    /// An insert that reuses ids held by other elements.
    #[error("insert {id} reuses ids of elements already present")]
    IdsInUse { id: Id },
    /// A snapshot that [`crate::Rga::decode`] cannot read back.
    #[error("the snapshot is damaged: {reason}")]
    Corrupt { reason: String },
}
