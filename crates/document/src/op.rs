//! Operations: the unit of change that replicas exchange.

use serde::{Deserialize, Serialize};
use tandem_crdt::{Id, IdRange};

use crate::Error;

/// One change to a document, made by one node.
///
/// `id` is the op's place on the document's Lamport clock; an insert of `n` characters uses the
/// ids `id .. id + n` for them. `prev` is the last sequence number used by the author's previous
/// op (0 for its first), so that each node's ops are applied in the order it made them and a
/// [`tandem_crdt::VersionVector`] describes exactly what a replica holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: Id,
    pub prev: u64,
    #[serde(flatten)]
    pub kind: OpKind,
}

/// What an [`Op`] does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind {
    /// Inserts `text` after the character `after` (`None`: at the start).
    Insert { after: Option<Id>, text: String },
    /// Deletes the characters in `ranges`.
    Delete { ranges: Vec<IdRange> },
    /// Sets the title; the greatest op id wins.
    SetTitle { title: String },
    /// Adds `amount` (negative to subtract) to the counter `name`.
    IncrementCounter { name: String, amount: i64 },
}

impl Op {
    /// How many sequence numbers the op uses.
    fn width(&self) -> u64 {
        match &self.kind {
            OpKind::Insert { text, .. } => text.chars().count() as u64,
            _ => 1,
        }
    }

    /// The last sequence number the op uses.
    pub fn last_seq(&self) -> u64 {
        self.id.seq.saturating_add(self.width().saturating_sub(1))
    }

    /// Rejects ops that no replica could have made.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let id = self.id;
        if self.prev >= id.seq {
            return Err(Error::PrevNotOlder { id, prev: self.prev });
        }
        let width = self.width().checked_sub(1).ok_or(tandem_crdt::Error::Empty)?;
        id.checked_add(width).ok_or(tandem_crdt::Error::SeqOverflow { id })?;
        match &self.kind {
            OpKind::Insert { after, .. } => {
                if let Some(after) = *after
                    && after >= id
                {
                    return Err(tandem_crdt::Error::ReferenceNotOlder { id, after }.into());
                }
            }
            OpKind::Delete { ranges } => {
                if ranges.is_empty() {
                    return Err(tandem_crdt::Error::Empty.into());
                }
                for range in ranges {
                    if range.len == 0 {
                        return Err(tandem_crdt::Error::Empty.into());
                    }
                    let last =
                        range.last().ok_or(tandem_crdt::Error::SeqOverflow { id: range.start })?;
                    if last >= id {
                        return Err(Error::DeleteNotOlder { id, target: last });
                    }
                }
            }
            OpKind::SetTitle { .. } | OpKind::IncrementCounter { .. } => {}
        }
        Ok(())
    }
}
