//! The document: its state, local edits, op delivery, merge, diff and snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tandem_crdt::{
    Id, LwwRegister, Merge, NodeId, Outcome, PnCounter, Rga, RgaOp, Stamp, VersionVector,
};

use crate::{Error, Op, OpKind};

/// A collaborative document: an LWW title, an RGA text and named PN-counters, plus the version
/// vector of what it holds and the history of ops it applied.
///
/// A document has no identity of its own: each local edit names the node making it, so two
/// replicas that hold the same ops are equal.
#[derive(Clone, Debug, Default)]
pub struct Document {
    text: Rga,
    title: LwwRegister<String>,
    counters: BTreeMap<String, PnCounter>,
    version: VersionVector,
    /// Every applied op, in the order it was applied: each op comes after those it depends on.
    history: Vec<Op>,
    /// Ops waiting for their author's previous op or for the characters they refer to.
    pending: Vec<Op>,
}

/// A whole document as plain serde data: its history in an order in which it applies, and the
/// ops still waiting for something. [`Document::from_snapshot`] rebuilds an equal document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub ops: Vec<Op>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Op>,
}

impl Document {
    pub fn new() -> Document {
        Document::default()
    }

    /// The visible text.
    pub fn text(&self) -> String {
        self.text.to_string()
    }

    /// The text CRDT, to translate between visible indexes and character ids.
    pub fn rga(&self) -> &Rga {
        &self.text
    }

    /// Number of visible characters.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn title(&self) -> &str {
        self.title.get()
    }

    /// The value of counter `name` (0 if it was never touched).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).map_or(0, PnCounter::value)
    }

    /// Every counter ever touched, by name.
    pub fn counters(&self) -> impl Iterator<Item = (&str, i64)> {
        self.counters.iter().map(|(name, counter)| (name.as_str(), counter.value()))
    }

    /// What this replica holds: per node, the last sequence number applied.
    pub fn version(&self) -> &VersionVector {
        &self.version
    }

    /// Every applied op, in an order in which they apply.
    pub fn history(&self) -> &[Op] {
        &self.history
    }

    /// Number of ops waiting for something they depend on.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Inserts `text` at visible `index` on behalf of `node`.
    pub fn insert(&mut self, node: NodeId, index: usize, text: &str) -> Result<Op, Error> {
        let (id, prev) = self.next(node)?;
        let after = match self.text.insert(index, text, id)? {
            RgaOp::Insert { after, .. } => after,
            RgaOp::Delete { .. } => unreachable!("an insert yields an insert op"),
        };
        Ok(self.record(Op { id, prev, kind: OpKind::Insert { after, text: text.to_owned() } }))
    }

    /// Deletes `len` visible characters from `index` on behalf of `node`.
    pub fn delete(&mut self, node: NodeId, index: usize, len: usize) -> Result<Op, Error> {
        let (id, prev) = self.next(node)?;
        let ranges = self
            .text
            .delete(index, len)?
            .into_iter()
            .filter_map(|op| match op {
                RgaOp::Delete { target } => Some(target),
                RgaOp::Insert { .. } => None,
            })
            .collect();
        Ok(self.record(Op { id, prev, kind: OpKind::Delete { ranges } }))
    }

    /// Sets the title on behalf of `node`. A later set (on the Lamport clock) wins.
    pub fn set_title(&mut self, node: NodeId, title: &str) -> Result<Op, Error> {
        let (id, prev) = self.next(node)?;
        let op = Op { id, prev, kind: OpKind::SetTitle { title: title.to_owned() } };
        self.title.set(title.to_owned(), Stamp { time: id.seq, node });
        Ok(self.record(op))
    }

    /// Adds `amount` to counter `name` on behalf of `node`; a negative amount decrements.
    pub fn increment_counter(
        &mut self,
        node: NodeId,
        name: &str,
        amount: i64,
    ) -> Result<Op, Error> {
        let (id, prev) = self.next(node)?;
        let op = Op { id, prev, kind: OpKind::IncrementCounter { name: name.to_owned(), amount } };
        self.counters.entry(name.to_owned()).or_default().increment(node, amount);
        Ok(self.record(op))
    }

    /// Applies an op from any replica, in any order: an op whose dependencies have not arrived
    /// waits, and a duplicate changes nothing. Errors only on ops no replica could have made.
    pub fn apply(&mut self, op: Op) -> Result<Outcome, Error> {
        op.validate()?;
        let seen = self.version.get(op.id.node);
        if op.id.seq <= seen {
            return Ok(Outcome::Duplicate);
        }
        if op.prev < seen {
            let (id, node, prev) = (op.id, op.id.node, op.prev);
            return Err(Error::InconsistentHistory { id, node, prev, seen });
        }
        if !self.is_ready(&op) {
            if !self.pending.contains(&op) {
                self.pending.push(op);
            }
            return Ok(Outcome::Pending);
        }
        self.execute(op)?;
        self.drain_pending()?;
        Ok(Outcome::Applied)
    }

    /// Exactly the ops that a replica at version `since` lacks, in an order in which they apply.
    pub fn diff(&self, since: &VersionVector) -> Vec<Op> {
        self.history.iter().filter(|op| !since.contains(op.id)).cloned().collect()
    }

    /// The whole document as serde data.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { ops: self.history.clone(), pending: self.pending.clone() }
    }

    /// Rebuilds a document from a snapshot, checking that every op follows from those before it.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Document, Error> {
        let mut document = Document::new();
        for op in snapshot.ops {
            let id = op.id;
            if document.apply(op)? != Outcome::Applied {
                return Err(Error::CorruptSnapshot { id });
            }
        }
        for op in snapshot.pending {
            // Pending ops are not part of the state; one that cannot wait any more is dropped.
            let _ = document.apply(op);
        }
        Ok(document)
    }

    /// The id and `prev` of `node`'s next op: newer than everything this replica has seen.
    /// Checked against [`tandem_crdt::MAX_SEQ`] before any local change is made.
    fn next(&self, node: NodeId) -> Result<(Id, u64), Error> {
        let id = Id::new(node, self.version.max_seq() + 1);
        id.checked_add(0).ok_or(tandem_crdt::Error::SeqOverflow { id })?;
        Ok((id, self.version.get(node)))
    }

    /// Adds an applied op to the version and the history.
    fn record(&mut self, op: Op) -> Op {
        self.version.observe(op.id.node, op.last_seq());
        self.history.push(op.clone());
        op
    }

    /// Whether the author's previous op and every character `op` refers to are present.
    fn is_ready(&self, op: &Op) -> bool {
        if self.version.get(op.id.node) != op.prev {
            return false;
        }
        match &op.kind {
            OpKind::Insert { after, .. } => after.is_none_or(|after| self.text.contains(after)),
            OpKind::Delete { ranges } => {
                ranges.iter().all(|&range| self.text.contains_range(range))
            }
            OpKind::SetTitle { .. } | OpKind::IncrementCounter { .. } => true,
        }
    }

    /// Applies a valid, ready op.
    fn execute(&mut self, op: Op) -> Result<(), Error> {
        let id = op.id;
        match &op.kind {
            OpKind::Insert { after, text } => {
                self.text.apply(RgaOp::Insert { id, after: *after, text: text.clone() })?;
            }
            OpKind::Delete { ranges } => {
                for &target in ranges {
                    self.text.apply(RgaOp::Delete { target })?;
                }
            }
            OpKind::SetTitle { title } => {
                self.title.set(title.clone(), Stamp { time: id.seq, node: id.node });
            }
            OpKind::IncrementCounter { name, amount } => {
                self.counters.entry(name.clone()).or_default().increment(id.node, *amount);
            }
        }
        self.record(op);
        Ok(())
    }

    /// Applies pending ops until none of them can make progress. Ops that never can, because
    /// their author's history has moved past the `prev` they name, are dropped as invalid.
    fn drain_pending(&mut self) -> Result<(), Error> {
        loop {
            let waiting = std::mem::take(&mut self.pending);
            let before = waiting.len();
            let mut failure = None;
            for op in waiting {
                let seen = self.version.get(op.id.node);
                if op.id.seq <= seen || op.prev < seen {
                    continue; // Arrived again meanwhile, or can never apply.
                }
                if !self.is_ready(&op) {
                    self.pending.push(op);
                } else if let Err(error) = self.execute(op) {
                    failure.get_or_insert(error);
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
            if self.pending.len() == before {
                return Ok(());
            }
        }
    }
}

impl Merge for Document {
    /// Applies every op of `other` that this replica lacks, pending ones included.
    fn merge(&mut self, other: &Self) {
        for op in other.diff(&self.version).into_iter().chain(other.pending.iter().cloned()) {
            // `other` accepted these ops, so they are valid; any that cannot apply yet wait.
            let _ = self.apply(op);
        }
    }
}

/// Two documents are equal when they hold the same ops: same text (with its tombstones), title,
/// counters and version. The order the ops were applied in and pending ops are not compared.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.title == other.title
            && self.counters == other.counters
            && self.text == other.text
    }
}

impl Eq for Document {}

impl Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.snapshot().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Document::from_snapshot(Snapshot::deserialize(deserializer)?)
            .map_err(serde::de::Error::custom)
    }
}
