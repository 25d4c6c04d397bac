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
//! inserted right after the one before it, with one tombstone flag for the run. The public API
//! speaks only of ids, visible indexes and [`RgaOp`]s, so the storage can change without
//! touching callers.

use std::fmt;

use serde::{Deserialize, Serialize};

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
/// before it, all visible or all tombstoned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    id: Id,
    after: Option<Id>,
    /// Number of characters in `text`.
    len: usize,
    text: String,
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

    /// Byte offset of character `chars` in `text`.
    fn byte_offset(&self, chars: usize) -> usize {
        if self.text.len() == self.len {
            return chars; // All ASCII.
        }
        self.text.char_indices().nth(chars).map_or(self.text.len(), |(at, _)| at)
    }

    /// Cuts the span before character `at` (0 < at < len) and returns the right part.
    fn split_off(&mut self, at: usize) -> Span {
        let text = self.text.split_off(self.byte_offset(at));
        let right = Span {
            id: self.id.plus(at),
            after: Some(self.id.plus(at - 1)),
            len: self.len - at,
            text,
            deleted: self.deleted,
        };
        self.len = at;
        right
    }
}

/// A replicated text: a sequence of characters that many replicas edit concurrently and that
/// converges when they exchange operations ([`Rga::apply`]) or whole states ([`Merge`]).
#[derive(Clone, Debug, Default)]
pub struct Rga {
    /// The elements in text order, tombstones included.
    spans: Vec<Span>,
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
        self.find(id).is_some()
    }

    /// Whether `id` is present and tombstoned.
    pub fn is_deleted(&self, id: Id) -> Option<bool> {
        self.find(id).map(|(span, _)| self.spans[span].deleted)
    }

    /// Number of operations waiting for elements that have not arrived.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The id of the visible character at `index`.
    pub fn id_at(&self, index: usize) -> Option<Id> {
        if index >= self.visible_len {
            return None;
        }
        let (span, offset) = self.locate(index);
        Some(self.spans[span].id.plus(offset))
    }

    /// The visible index of element `id`: its index when visible; for a tombstone, the index
    /// the next visible character has. `None` when `id` is not present.
    pub fn index_of(&self, id: Id) -> Option<usize> {
        let mut index = 0;
        for span in &self.spans {
            if span.contains(id) {
                let offset = if span.deleted { 0 } else { (id.seq - span.id.seq) as usize };
                return Some(index + offset);
            }
            index += span.visible_len();
        }
        None
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
        let (after, at) = if index == 0 {
            (None, (0, 0))
        } else {
            let (span, offset) = self.locate(index - 1);
            (Some(self.spans[span].id.plus(offset)), (span, offset + 1))
        };
        self.place(at, Span { id, after, len, text: text.to_owned(), deleted: false });
        Ok(RgaOp::Insert { id, after, text: text.to_owned() })
    }

    /// Deletes `len` visible characters from `index` as a local edit. Returns the operations
    /// that carry the edit to other replicas, one per run of consecutive ids.
    pub fn delete(&mut self, index: usize, len: usize) -> Result<Vec<RgaOp>, Error> {
        if len == 0 {
            return Err(Error::Empty);
        }
        let end = index.checked_add(len).filter(|&end| end <= self.visible_len);
        let Some(end) = end else {
            return Err(Error::RangeOutOfRange {
                start: index,
                end: index.saturating_add(len),
                len: self.visible_len,
            });
        };
        let (mut span, mut offset) = self.locate(index);
        let first = span;
        let mut ops = Vec::new();
        let mut remaining = end - index;
        while remaining > 0 {
            if self.spans[span].deleted {
                span += 1;
                offset = 0;
                continue;
            }
            let take = remaining.min(self.spans[span].len - offset);
            let target = IdRange { start: self.spans[span].id.plus(offset), len: take as u64 };
            span = self.tombstone(span, offset, take);
            ops.push(RgaOp::Delete { target });
            remaining -= take;
            span += 1;
            offset = 0;
        }
        self.coalesce(first, span);
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
        if outcome == Outcome::Applied {
            self.drain_pending();
        }
        Ok(outcome)
    }

    /// Applies a valid operation if everything it refers to is present; `None` otherwise.
    fn try_apply(&mut self, op: &RgaOp) -> Result<Option<Outcome>, Error> {
        match op {
            RgaOp::Insert { id, after, text } => self.integrate_run(*id, *after, text),
            RgaOp::Delete { target } => {
                if !self.contains_range(*target) {
                    return Ok(None);
                }
                Ok(Some(self.delete_range(*target)))
            }
        }
    }

    /// Integrates the run `text` with ids from `id`, whose first character follows `after`.
    /// The characters already present are skipped; `None` if the reference is missing.
    fn integrate_run(
        &mut self,
        id: Id,
        after: Option<Id>,
        text: &str,
    ) -> Result<Option<Outcome>, Error> {
        let len = text.chars().count();
        let fresh = self.missing_suffix(id, len);
        if fresh > 0 {
            // Ids of one run are present as a prefix or not at all.
            let first = id.plus(len - fresh);
            if self.overlaps(IdRange { start: first, len: fresh as u64 }) {
                return Err(Error::IdsInUse { id: first });
            }
            if after.is_some_and(|after| !self.contains(after)) {
                return Ok(None);
            }
        }
        Ok(Some(self.integrate_suffix(id, after, text, fresh)))
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

    /// Whether any element of `range` is present.
    fn overlaps(&self, range: IdRange) -> bool {
        let (start, end) = (range.start.seq, range.start.seq + range.len);
        self.spans.iter().any(|span| {
            span.id.node == range.start.node
                && span.id.seq < end
                && start < span.id.seq + span.len as u64
        })
    }

    /// How many trailing characters of the run `id..id + len` are not present yet.
    /// Within a run each character refers to the one before it, so the present ones always
    /// form a prefix.
    fn missing_suffix(&self, id: Id, len: usize) -> usize {
        let mut present = 0;
        while present < len {
            match self.find(id.plus(present)) {
                Some((span, offset)) => present += self.spans[span].len - offset,
                None => break,
            }
        }
        len.saturating_sub(present)
    }

    /// Integrates the last `fresh` characters of the run `id..` (whose first character follows
    /// `after`); the characters before them are already present.
    fn integrate_suffix(&mut self, id: Id, after: Option<Id>, text: &str, fresh: usize) -> Outcome {
        if fresh == 0 {
            return Outcome::Duplicate;
        }
        let len = text.chars().count();
        let skip = len - fresh;
        let (id, after, text) = if skip == 0 {
            (id, after, text)
        } else {
            let at = text.char_indices().nth(skip).map_or(text.len(), |(at, _)| at);
            (id.plus(skip), Some(id.plus(skip - 1)), &text[at..])
        };
        self.integrate(Span { id, after, len: fresh, text: text.to_owned(), deleted: false });
        Outcome::Applied
    }

    /// Places a new run whose reference is present: right after the reference, past every
    /// element newer than the run.
    fn integrate(&mut self, new: Span) {
        let (mut span, mut offset) = match new.after {
            None => (0, 0),
            Some(after) => {
                let (span, offset) = self.find(after).expect("reference is present");
                (span, offset + 1)
            }
        };
        loop {
            if span < self.spans.len() && offset == self.spans[span].len {
                span += 1;
                offset = 0;
            }
            // Elements of a span only get newer along it, so one comparison decides the rest.
            if span < self.spans.len() && self.spans[span].id.plus(offset) > new.id {
                span += 1;
                offset = 0;
            } else {
                break;
            }
        }
        self.place((span, offset), new);
    }

    /// Puts a new run at `(span, offset)`: before the element at that position, or at the end.
    fn place(&mut self, (span, offset): (usize, usize), new: Span) {
        self.max_seq = self.max_seq.max(new.last().seq);
        self.visible_len += new.visible_len();
        let mut at = span;
        if offset > 0 && offset < self.spans[span].len {
            let right = self.spans[span].split_off(offset);
            self.spans.insert(span + 1, right);
            at = span + 1;
        } else if offset > 0 {
            at = span + 1;
        }
        if at > 0 && self.spans[at - 1].continues_with(&new) {
            let previous = &mut self.spans[at - 1];
            previous.len += new.len;
            previous.text.push_str(&new.text);
        } else {
            self.spans.insert(at, new);
        }
    }

    /// Whether every element of `range` is present.
    pub fn contains_range(&self, range: IdRange) -> bool {
        let mut seq = range.start.seq;
        let end = range.start.seq + range.len;
        while seq < end {
            match self.find(Id::new(range.start.node, seq)) {
                Some((span, offset)) => seq += (self.spans[span].len - offset) as u64,
                None => return false,
            }
        }
        true
    }

    /// Tombstones every element of `range`; all must be present.
    fn delete_range(&mut self, range: IdRange) -> Outcome {
        let mut outcome = Outcome::Duplicate;
        let mut seq = range.start.seq;
        let end = range.start.seq + range.len;
        while seq < end {
            let (span, offset) = self.find(Id::new(range.start.node, seq)).expect("range present");
            let take = (self.spans[span].len - offset).min((end - seq) as usize);
            seq += take as u64;
            if !self.spans[span].deleted {
                let last = self.tombstone(span, offset, take);
                self.coalesce(span, last + 1);
                outcome = Outcome::Applied;
            }
        }
        outcome
    }

    /// Tombstones `len` characters of the visible span `span` from `offset`, splitting it as
    /// needed. Returns the index of the span now holding exactly those characters.
    fn tombstone(&mut self, mut span: usize, offset: usize, len: usize) -> usize {
        if offset > 0 {
            let right = self.spans[span].split_off(offset);
            self.spans.insert(span + 1, right);
            span += 1;
        }
        if len < self.spans[span].len {
            let right = self.spans[span].split_off(len);
            self.spans.insert(span + 1, right);
        }
        self.spans[span].deleted = true;
        self.visible_len -= len;
        span
    }

    /// Joins neighbouring spans that continue each other, around `from..to`.
    fn coalesce(&mut self, from: usize, to: usize) {
        let to = to.min(self.spans.len().saturating_sub(1));
        let mut at = to;
        while at > from.saturating_sub(1) && at > 0 {
            if self.spans[at - 1].continues_with(&self.spans[at]) {
                let next = self.spans.remove(at);
                let previous = &mut self.spans[at - 1];
                previous.len += next.len;
                previous.text.push_str(&next.text);
            }
            at -= 1;
        }
    }

    /// The span and offset of element `id`.
    fn find(&self, id: Id) -> Option<(usize, usize)> {
        let span = self.spans.iter().position(|span| span.contains(id))?;
        Some((span, (id.seq - self.spans[span].id.seq) as usize))
    }

    /// The span and offset of the visible character at `index` (< `len()`).
    fn locate(&self, mut index: usize) -> (usize, usize) {
        for (at, span) in self.spans.iter().enumerate() {
            let visible = span.visible_len();
            if index < visible {
                return (at, index);
            }
            index -= visible;
        }
        unreachable!("index checked against the visible length")
    }

    /// The elements as maximal runs, independent of how they happen to be split in storage.
    fn runs(&self) -> Vec<Span> {
        let mut runs: Vec<Span> = Vec::with_capacity(self.spans.len());
        for span in &self.spans {
            match runs.last_mut() {
                Some(last) if last.continues_with(span) => {
                    last.len += span.len;
                    last.text.push_str(&span.text);
                }
                _ => runs.push(span.clone()),
            }
        }
        runs
    }
}

/// Rejects operations that no replica could have made.
fn validate(op: &RgaOp) -> Result<(), Error> {
    match op {
        RgaOp::Insert { id, after, text } => {
            let len = text.chars().count() as u64;
            if len == 0 {
                return Err(Error::Empty);
            }
            id.checked_add(len - 1).ok_or(Error::SeqOverflow { id: *id })?;
            if let Some(after) = after
                && after >= id
            {
                return Err(Error::ReferenceNotOlder { id: *id, after: *after });
            }
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

impl Merge for Rga {
    fn merge(&mut self, other: &Self) {
        // Other's spans are in text order, where every element comes after its reference,
        // so each run's reference is present by the time the run is integrated.
        for span in &other.spans {
            if self.integrate_run(span.id, span.after, &span.text).is_err() {
                // Only a node that reused ids for other text gets here; such a run cannot be
                // held beside the one already present, so it is left out.
                continue;
            }
            if span.deleted {
                self.delete_range(IdRange { start: span.id, len: span.len as u64 });
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
        self.visible_len == other.visible_len && self.runs() == other.runs()
    }
}

impl Eq for Rga {}

/// Writes the visible characters in order.
impl fmt::Display for Rga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for span in self.spans.iter().filter(|span| !span.deleted) {
            f.write_str(&span.text)?;
        }
        Ok(())
    }
}
