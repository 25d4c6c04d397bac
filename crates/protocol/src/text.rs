//! The room's copy of the text: an RGA whose memory follows the text, not its history.
//!
//! The room is the only writer of its text (clients send index-based edits, which the room
//! sequences), so every character can take its id from one node, and nothing of an edit needs
//! keeping once it is applied: the text holds no op history. What the RGA keeps of deleted
//! characters (a tombstone run per delete, with no text) is dropped by [`Text::compact`]ing,
//! which the text does by itself once the runs outnumber what the visible text needs, at an
//! amortised cost of a few characters copied per run created.

use tandem_crdt::{Error, Id, NodeId, Rga};

/// The node every character of a room's text is inserted by.
const NODE: NodeId = NodeId(0);

/// Runs the text may hold beyond its floor before it is rebuilt without tombstones.
const SLACK_RUNS: usize = 1024;

/// A room's text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Text {
    rga: Rga,
    /// The runs right after the last rebuild: what the visible text itself needs.
    floor: usize,
}

impl Text {
    /// A text holding `initial`.
    pub(crate) fn new(initial: &str) -> Result<Text, Error> {
        let mut text = Text::default();
        if !initial.is_empty() {
            text.insert(0, initial)?;
        }
        text.floor = text.rga.span_count();
        Ok(text)
    }

    /// Number of code points.
    pub(crate) fn len(&self) -> usize {
        self.rga.len()
    }

    /// Number of bytes in UTF-8.
    pub(crate) fn len_bytes(&self) -> usize {
        self.rga.len_bytes()
    }

    /// Number of runs the RGA stores: memory grows with this.
    pub(crate) fn runs(&self) -> usize {
        self.rga.span_count()
    }

    pub(crate) fn insert(&mut self, index: usize, text: &str) -> Result<(), Error> {
        let id: Id = self.rga.next_id(NODE);
        self.rga.insert(index, text, id)?;
        self.compact_if_needed()
    }

    pub(crate) fn delete(&mut self, index: usize, len: usize) -> Result<(), Error> {
        self.rga.delete(index, len)?;
        self.compact_if_needed()
    }

    /// Rebuilds the RGA from the visible text once the runs exceed twice the floor plus
    /// [`SLACK_RUNS`] and an eighth of the length: a rebuild copies the text, so it waits
    /// until enough runs were made to pay for it.
    fn compact_if_needed(&mut self) -> Result<(), Error> {
        let limit = 2 * self.floor + SLACK_RUNS + self.len() / 8;
        if self.runs() > limit { self.compact() } else { Ok(()) }
    }

    /// Drops every tombstone: the RGA becomes one run of the visible text.
    pub(crate) fn compact(&mut self) -> Result<(), Error> {
        *self = Text::new(&self.rga.to_string())?;
        Ok(())
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.rga.fmt(f)
    }
}
