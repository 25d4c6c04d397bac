//! Replica identities, element ids and version vectors.

use std::{cmp::Ordering, collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

/// Identifies one replica (a node).
///
/// Node ids are compared as unsigned integers, which is the lexicographic order of their
/// fixed-width big-endian bytes, so every replica breaks ties between nodes the same way.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// The highest sequence number an id may have: 2^53 - 1.
///
/// The bound keeps arithmetic on sequence numbers far from overflow, and keeps them exact as
/// JSON numbers in every language (JavaScript's integers are exact up to 2^53).
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// The unique id of one element or operation: the node that made it and its Lamport sequence
/// number.
///
/// Ids are ordered by sequence number, then by node: the greater id is the newer one, and
/// between equal sequence numbers the higher node id counts as newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Id {
    pub node: NodeId,
    pub seq: u64,
}

impl Id {
    pub const fn new(node: NodeId, seq: u64) -> Id {
        Id { node, seq }
    }

    /// The id `n` places further along this node's sequence, if it stays within [`MAX_SEQ`].
    pub fn checked_add(self, n: u64) -> Option<Id> {
        let seq = self.seq.checked_add(n).filter(|&seq| seq <= MAX_SEQ)?;
        Some(Id { node: self.node, seq })
    }

    /// The id `n` places further along; callers guarantee it does not overflow.
    pub(crate) fn plus(self, n: usize) -> Id {
        Id { node: self.node, seq: self.seq + n as u64 }
    }
}

impl Ord for Id {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seq, self.node).cmp(&(other.seq, other.node))
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node, self.seq)
    }
}

/// A run of `len` consecutive ids of one node, starting at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdRange {
    pub start: Id,
    pub len: u64,
}

impl IdRange {
    /// The last id of the run, if the run is not empty and stays within [`MAX_SEQ`].
    pub fn last(&self) -> Option<Id> {
        self.start.checked_add(self.len.checked_sub(1)?)
    }
}

/// For each node, the highest sequence number seen from it.
///
/// A replica that applies each node's operations in that node's order holds every operation of
/// a node up to the sequence number recorded here, so the vector describes its whole content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(BTreeMap<NodeId, u64>);

impl VersionVector {
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// The highest sequence number seen from `node`, 0 when none.
    pub fn get(&self, node: NodeId) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }

    /// Records that `node` has been seen up to `seq`; a lower `seq` changes nothing.
    pub fn observe(&mut self, node: NodeId, seq: u64) {
        let entry = self.0.entry(node).or_insert(0);
        *entry = (*entry).max(seq);
    }

    /// Whether the operation or element `id` is covered by this version.
    pub fn contains(&self, id: Id) -> bool {
        id.seq <= self.get(id.node)
    }

    /// The highest sequence number seen from any node: the replica's Lamport clock.
    pub fn max_seq(&self) -> u64 {
        self.0.values().copied().max().unwrap_or(0)
    }

    /// Whether this version includes everything `other` includes.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(&node, &seq)| self.get(node) >= seq)
    }

    /// The nodes and their highest sequence numbers, in node order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().map(|(&node, &seq)| (node, seq))
    }
}

impl crate::Merge for VersionVector {
    fn merge(&mut self, other: &Self) {
        for (node, seq) in other.iter() {
            self.observe(node, seq);
        }
    }
}
