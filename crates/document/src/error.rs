//! The error type of the document crate.

use tandem_crdt::{Id, NodeId};

/// What can go wrong when editing a document or applying an op to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A text edit the text itself refused (index out of range, empty edit, ...).
    #[error(transparent)]
    Text(#[from] tandem_crdt::Error),
    /// An op whose `prev` is not older than its own id.
    #[error("op {id} names {prev} as its author's previous op, which is not older than itself")]
    PrevNotOlder { id: Id, prev: u64 },
    /// An op that claims a previous op of its author older than one already applied.
    #[error("op {id} follows {node}'s op {prev}, but {node} is already at {seen}")]
    InconsistentHistory { id: Id, node: NodeId, prev: u64, seen: u64 },
    /// A delete of elements that are not older than the delete itself.
    #[error("op {id} deletes {target}, which is not older than the delete")]
    DeleteNotOlder { id: Id, target: Id },
    /// An op of a snapshot that could not be applied where the snapshot puts it.
    #[error("snapshot op {id} does not follow from the ops before it")]
    CorruptSnapshot { id: Id },
}
