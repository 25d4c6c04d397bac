//! RGA, the replicated growable array: the text CRDT.
//!
//! Every character is an element with a unique [`Id`], the id of the element it was inserted
//! after (its reference; `None` for the start of the text) and a tombstone flag.
//! The order of the text is a depth-first walk of the tree that the references form, with the
//! children of each element visited newest first (greater [`Id`] first).
//! Because a child is always newer than its reference (sequence numbers are Lamport clocks),
//! an element can be placed by starting right after its reference and skipping every element
//! newer than itself: this is the whole integration rule, and it gives the same order on every
//! replica whatever order the elements arrived in.
//!
//! Internally the elements are stored as runs ([`Span`]s): consecutive ids of one node, each
//! inserted right after the one before it, with one tombstone flag for the run. The runs sit in
//! a B-tree ([`tree`]) that counts visible characters, with an index from ids to leaves, so
//! every edit, local or remote, costs O(log n) in the number of runs; the visible text itself
//! lives apart in a rope. The public API speaks only of ids, visible indexes and [`RgaOp`]s,
//! so the storage can change without touching callers.

mod encoding;
mod index;
mod tree;

use std::fmt;

use jumprope::JumpRopeBuf;
use serde::{Deserialize, Serialize};

use self::tree::{Pos, Tree};

use crate::{Error, Id, IdRange, Merge, NodeId};

/// One replicated change to an [`Rga`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RgaOp {
    /// Inserts `text` after the element `after` (`None`: at the start). The characters take the
    /// ids `id`, `id + 1`, ...; each follows the one before it.
    Insert { id: Id, after: Option<Id>, text: String },
    /// Tombstones the elements of `target`.
    Delete { target: IdRange },
}

/// What became of an operation handed to [`Rga::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation changed the state.
    Applied,
    /// The operation had already been applied; nothing changed.
    Duplicate,
    /// The operation refers to elements that have not arrived; it waits in the pending buffer
    /// and is applied as soon as they do.
    Pending,
}

/// A run of elements: ids `id`, `id + 1`, ... of one node, each inserted right after the one
/// before it, all visible or all tombstoned. The text is not here: visible characters live in
/// the rope, and tombstones need none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    id: Id,
    after: Option<Id>,
    len: usize,
    deleted: bool,
}

impl Span {
    fn last(&self) -> Id {
        self.id.plus(self.len - 1)
    }

    fn contains(&self, id: Id) -> bool {
        id.node == self.id.node && id.seq >= self.id.seq && id.seq - self.id.seq < self.len as u64
    }

    fn visible_len(&self) -> usize {
        if self.deleted { 0 } else { self.len }
    }

    /// Whether `next` continues this run, so the two can be stored as one span.
    fn continues_with(&self, next: &Span) -> bool {
        self.deleted == next.deleted
            && next.id.node == self.id.node
            && next.id.seq == self.id.seq + self.len as u64
            && next.after == Some(self.last())
    }
}

/// A replicated text: a sequence of characters that many replicas edit concurrently and that
/// converges when they exchange operations ([`Rga::apply`]) or whole states ([`Merge`]).
///
/// `Rga` is `Send` but not `Sync`: its rope buffers the latest run of typing in a `RefCell`.
/// Share one between threads behind a `Mutex`.
#[derive(Clone, Debug, Default)]
pub struct Rga {
    /// The elements in text order, tombstones included.
    tree: Tree,
    /// The visible characters in order.
    content: JumpRopeBuf,
    /// Number of visible characters.
    visible_len: usize,
    /// The highest sequence number of any element present.
    max_seq: u64,
    /// Operations waiting for the elements they refer to.
    pending: Vec<RgaOp>,
}

impl Rga {
    pub fn new() -> Rga {
        Rga::default()
    }

    /// Number of visible characters.
    pub fn len(&self) -> usize {
        self.visible_len
    }

    pub fn is_empty(&self) -> bool {
        self.visible_len == 0
    }

    /// Number of bytes of the visible text in UTF-8.
    pub fn len_bytes(&self) -> usize {
        self.content.len_bytes()
    }

    /// The highest sequence number of any element present (0 when empty).
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// The id a local insert by `node` should take next: newer than everything seen so far.
    pub fn next_id(&self, node: NodeId) -> Id {
        Id::new(node, self.max_seq + 1)
    }

    /// Whether the element `id` is present (visible or tombstoned).
    pub fn contains(&self, id: Id) -> bool {
        id.seq <= self.max_seq && self.tree.present_from(id, 1) == 1
    }

    /// Whether `id` is present and tombstoned.
    pub fn is_deleted(&self, id: Id) -> Option<bool> {
        self.tree.find(id).map(|pos| self.tree.span(pos.leaf, pos.slot).deleted)
    }

    /// Number of operations waiting for elements that have not arrived.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The elements in text order, tombstones included, as runs of consecutive ids: each
    /// run's first id, its length, and whether it is deleted.
    pub fn id_runs(&self) -> impl Iterator<Item = (Id, usize, bool)> + '_ {
        self.tree.spans().map(|span| (span.id, span.len, span.deleted))
    }

    /// Number of runs the elements are stored as: memory grows with this, not with the
    /// number of characters ever typed.
    pub fn span_count(&self) -> usize {
        self.tree.span_count()
    }

    /// The id of the visible character at `index`.
    pub fn id_at(&self, index: usize) -> Option<Id> {
        if index >= self.visible_len {
            return None;
        }
        let pos = self.tree.locate(index);
        Some(self.tree.span(pos.leaf, pos.slot).id.plus(pos.offset))
    }

    /// The visible index of element `id`: its index when visible; for a tombstone, the index
    /// the next visible character has. `None` when `id` is not present.
    pub fn index_of(&self, id: Id) -> Option<usize> {
        self.tree.find(id).map(|pos| self.tree.visible_index(pos))
    }

    /// Inserts `text` at visible `index` as a local edit. The characters take the ids `id`,
    /// `id + 1`, ..., which must be newer than every id seen so far (see [`Rga::next_id`]).
    /// Returns the operation that carries the edit to other replicas.
    pub fn insert(&mut self, index: usize, text: &str, id: Id) -> Result<RgaOp, Error> {
        let len = text.chars().count();
        if len == 0 {
            return Err(Error::Empty);
        }
        if index > self.visible_len {
            return Err(Error::IndexOutOfRange { index, len: self.visible_len });
        }
        if id.seq <= self.max_seq {
            return Err(Error::StaleId { id, max_seq: self.max_seq });
        }
        id.checked_add(len as u64 - 1).ok_or(Error::SeqOverflow { id })?;
        // The new run is newer than everything present, so it goes right after its reference.
        let (after, pos) = if index == 0 {
            (None, self.tree.start())
        } else {
            let pos = self.tree.locate(index - 1);
            let reference = self.tree.span(pos.leaf, pos.slot).id.plus(pos.offset);
            (Some(reference), Pos { offset: pos.offset + 1, ..pos })
        };
        self.place(pos, index, Span { id, after, len, deleted: false }, text);
        Ok(RgaOp::Insert { id, after, text: text.to_owned() })
    }

    /// Deletes `len` visible characters from `index` as a local edit. Returns the operations
    /// that carry the edit to other replicas, one per run of consecutive ids.
    pub fn delete(&mut self, index: usize, len: usize) -> Result<Vec<RgaOp>, Error> {
        if len == 0 {
            return Err(Error::Empty);
        }
        let end = index.checked_add(len).filter(|&end| end <= self.visible_len);
        if end.is_none() {
            return Err(Error::RangeOutOfRange {
                start: index,
                end: index.saturating_add(len),
                len: self.visible_len,
            });
        }
        // Almost every delete is one run of ids.
        let mut ops = Vec::with_capacity(1);
        let mut remaining = len;
        while remaining > 0 {
            // The characters after a deleted piece move down to `index`.
            let pos = self.tree.locate(index);
            let span = self.tree.span(pos.leaf, pos.slot);
            let take = remaining.min(span.len - pos.offset);
            ops.push(RgaOp::Delete {
                target: IdRange { start: span.id.plus(pos.offset), len: take as u64 },
            });
            self.tombstone(pos, index, take);
            remaining -= take;
        }
        Ok(ops)
    }

    /// Applies an operation from any replica, in any order: an operation whose reference has
    /// not arrived waits in the pending buffer, and a duplicate changes nothing.
    /// Errors only on operations that no replica could have made.
    pub fn apply(&mut self, op: RgaOp) -> Result<Outcome, Error> {
        validate(&op)?;
        let Some(outcome) = self.try_apply(&op)? else {
            if !self.pending.contains(&op) {
                self.pending.push(op);
            }
            return Ok(Outcome::Pending);
        };
        if outcome == Outcome::Applied && !self.pending.is_empty() {
            self.drain_pending();
        }
        Ok(outcome)
    }

    /// Whether every element of `range` is present.
    pub fn contains_range(&self, range: IdRange) -> bool {
        if range.len == 0 {
            return true;
        }
        // A range running past the largest id holds ids that cannot exist.
        range.last().is_some_and(|last| last.seq <= self.max_seq)
            && self.tree.present_from(range.start, range.len) == range.len
    }

    /// Applies a valid operation if everything it refers to is present; `None` otherwise.
    fn try_apply(&mut self, op: &RgaOp) -> Result<Option<Outcome>, Error> {
        match op {
            RgaOp::Insert { id, after, text } => {
                self.integrate_run(*id, *after, text.chars().count(), Some(text))
            }
            RgaOp::Delete { target } => {
                if !self.contains_range(*target) {
                    return Ok(None);
                }
                Ok(Some(self.delete_range(*target)))
            }
        }
    }

    /// Integrates the run of `len` elements with ids from `id`, whose first element follows
    /// `after`: visible characters `text`, or tombstones when `text` is `None`. The elements
    /// already present are skipped; `None` if the reference is missing.
    fn integrate_run(
        &mut self,
        id: Id,
        after: Option<Id>,
        len: usize,
        text: Option<&str>,
    ) -> Result<Option<Outcome>, Error> {
        let present =
            if id.seq > self.max_seq { 0 } else { self.tree.present_from(id, len as u64) };
        let fresh = len - present as usize;
        if fresh == 0 {
            return Ok(Some(Outcome::Duplicate));
        }
        // Ids of one run are present as a prefix or not at all.
        let skip = len - fresh;
        let first = id.plus(skip);
        if first.seq <= self.max_seq && self.tree.overlaps(first, fresh as u64) {
            return Err(Error::IdsInUse { id: first });
        }
        let after = if skip == 0 { after } else { Some(id.plus(skip - 1)) };
        if after.is_some_and(|after| !self.contains(after)) {
            return Ok(None);
        }
        let text = text.map(|text| {
            let at = text.char_indices().nth(skip).map_or(text.len(), |(at, _)| at);
            &text[at..]
        });
        let span = Span { id: first, after, len: fresh, deleted: text.is_none() };
        self.integrate(span, text.unwrap_or_default());
        Ok(Some(Outcome::Applied))
    }

    /// Retries pending operations until none of them can make progress. An operation that has
    /// become impossible (its ids were taken meanwhile) is dropped.
    fn drain_pending(&mut self) {
        loop {
            let waiting = std::mem::take(&mut self.pending);
            let before = waiting.len();
            for op in waiting {
                if let Ok(None) = self.try_apply(&op) {
                    self.pending.push(op);
                }
            }
            if self.pending.len() == before {
                return;
            }
        }
    }

    /// Places a new run whose reference is present: right after the reference, past every
    /// element newer than the run.
    fn integrate(&mut self, new: Span, text: &str) {
        let mut pos = match new.after {
            None => self.tree.start(),
            Some(after) => {
                let pos = self.tree.find(after).expect("reference is present");
                Pos { offset: pos.offset + 1, ..pos }
            }
        };
        while let Some(span) = self.tree.get(pos.leaf, pos.slot) {
            if pos.offset == span.len {
                match self.tree.next_span(pos) {
                    Some(next) => pos = next,
                    None => break,
                }
            } else if span.id.plus(pos.offset) > new.id {
                // Elements of a span only get newer along it: skip the rest of it.
                pos.offset = span.len;
            } else {
                break;
            }
        }
        let at = self.tree.visible_index(pos);
        self.place(pos, at, new, text);
    }

    /// Puts the new run `span` at `pos`, whose visible index is `at`; `text` holds its
    /// characters when it is visible.
    fn place(&mut self, pos: Pos, at: usize, span: Span, text: &str) {
        self.max_seq = self.max_seq.max(span.last().seq);
        if !span.deleted {
            self.visible_len += span.len;
            self.content.insert(at, text);
        }
        self.tree.insert(pos, at, span);
    }

    /// Tombstones `len` characters of the visible span at `pos`, whose visible index is `at`.
    fn tombstone(&mut self, pos: Pos, at: usize, len: usize) {
        self.tree.tombstone(pos, at, len);
        self.content.remove(at..at + len);
        self.visible_len -= len;
    }

    /// Tombstones every element of `range`; all must be present.
    fn delete_range(&mut self, range: IdRange) -> Outcome {
        let mut outcome = Outcome::Duplicate;
        let mut seq = range.start.seq;
        let end = range.start.seq + range.len;
        while seq < end {
            let pos = self.tree.find(Id::new(range.start.node, seq)).expect("range present");
            let span = *self.tree.span(pos.leaf, pos.slot);
            let take = (span.len - pos.offset).min((end - seq) as usize);
            seq += take as u64;
            if !span.deleted {
                let at = self.tree.visible_index(pos);
                self.tombstone(pos, at, take);
                outcome = Outcome::Applied;
            }
        }
        outcome
    }

    /// Panics unless the storage is consistent: tree counts, links and index, and the rope.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        self.tree.check();
        assert_eq!(self.content.len_chars(), self.visible_len, "rope and tree disagree");
        let visible: usize = self.tree.spans().map(Span::visible_len).sum();
        assert_eq!(visible, self.visible_len, "visible length is stale");
    }

    /// The elements as maximal runs, independent of how they happen to be split in storage.
    fn runs(&self) -> Vec<Span> {
        let mut runs: Vec<Span> = Vec::new();
        for span in self.tree.spans() {
            match runs.last_mut() {
                Some(last) if last.continues_with(span) => last.len += span.len,
                _ => runs.push(*span),
            }
        }
        runs
    }
}

/// Rejects operations that no replica could have made.
fn validate(op: &RgaOp) -> Result<(), Error> {
    match op {
        RgaOp::Insert { id, after, text } => {
            validate_run(*id, *after, text.chars().count() as u64)?;
        }
        RgaOp::Delete { target } => {
            if target.len == 0 {
                return Err(Error::Empty);
            }
            target.last().ok_or(Error::SeqOverflow { id: target.start })?;
        }
    }
    Ok(())
}

/// Rejects a run of `len` new elements from `id`, after `after`, that no replica could make.
fn validate_run(id: Id, after: Option<Id>, len: u64) -> Result<(), Error> {
    if len == 0 {
        return Err(Error::Empty);
    }
    id.checked_add(len - 1).ok_or(Error::SeqOverflow { id })?;
    if let Some(after) = after
        && after >= id
    {
        return Err(Error::ReferenceNotOlder { id, after });
    }
    Ok(())
}

impl Merge for Rga {
    fn merge(&mut self, other: &Self) {
        // Other's spans are in text order, where every element comes after its reference,
        // so each run's reference is present by the time the run is integrated.
        let mut at = 0;
        for span in other.tree.spans() {
            let range = IdRange { start: span.id, len: span.len as u64 };
            let start = at;
            at += span.visible_len();
            if self.contains_range(range) {
                // Already here: only a tombstone can be news.
                if span.deleted {
                    self.delete_range(range);
                }
                continue;
            }
            let text = (!span.deleted)
                .then(|| other.content.borrow().slice_substrings(start..at).collect::<String>());
            match self.integrate_run(span.id, span.after, span.len, text.as_deref()) {
                Ok(Some(_)) if span.deleted => {
                    self.delete_range(range);
                }
                Ok(Some(_)) => {}
                // Only a node that reused ids for other text gets here (or a run after one
                // that did, whose reference is then missing); such a run cannot be held beside
                // the one already present, so it is left out.
                Err(_) | Ok(None) => {}
            }
        }
        for op in &other.pending {
            // Other accepted these, so they are valid; they stay pending here if not ready.
            let _ = self.apply(op.clone());
        }
        self.drain_pending();
    }
}

/// Two texts are equal when they hold the same elements in the same order with the same
/// tombstones, however their storage is split. Pending operations are not compared.
impl PartialEq for Rga {
    fn eq(&self, other: &Self) -> bool {
        self.visible_len == other.visible_len
            && self.content == other.content
            && self.runs() == other.runs()
    }
}

impl Eq for Rga {}

/// Writes the visible characters in order.
impl fmt::Display for Rga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for text in self.content.borrow().substrings() {
            f.write_str(text)?;
        }
        Ok(())
    }
}
