//! The last-writer-wins register.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::{Merge, NodeId};

/// When and by whom a register was written. Stamps are ordered by time, then by node id,
/// so two writes with the same time are still ordered the same way on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub time: u64,
    pub node: NodeId,
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.node).cmp(&(other.time, other.node))
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A register holding one value: the write with the greatest [`Stamp`] wins.
///
/// A fresh register holds its initial value with no stamp, which loses to every write.
/// Between equal stamps (one node writing twice with the same time, a misuse, or two untouched
/// registers with different initial values) the greater value wins, so merging stays
/// commutative even then.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    value: T,
    stamp: Option<Stamp>,
}

impl<T: Ord> LwwRegister<T> {
    /// A register holding `initial`, which any write replaces.
    pub fn new(initial: T) -> LwwRegister<T> {
        LwwRegister { value: initial, stamp: None }
    }

    pub fn get(&self) -> &T {
        &self.value
    }

    /// The stamp of the winning write, `None` while the initial value stands.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp
    }

    /// Writes `value` at `stamp`; returns whether it won and is now the register's value.
    pub fn set(&mut self, value: T, stamp: Stamp) -> bool {
        if self.beaten_by(&value, Some(stamp)) {
            self.value = value;
            self.stamp = Some(stamp);
            true
        } else {
            false
        }
    }

    fn beaten_by(&self, value: &T, stamp: Option<Stamp>) -> bool {
        match stamp.cmp(&self.stamp) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => *value > self.value,
        }
    }
}

impl<T: Ord + Clone> Merge for LwwRegister<T> {
    fn merge(&mut self, other: &Self) {
        if self.beaten_by(&other.value, other.stamp) {
            self.value = other.value.clone();
            self.stamp = other.stamp;
        }
    }
}
