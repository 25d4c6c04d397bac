//! Grow-only and positive-negative counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Merge, NodeId};

/// A counter that only grows: one count per node, the value is their sum.
///
/// Each node increments only its own count; merge takes the element-wise maximum.
/// Counts saturate at `u64::MAX` instead of wrapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GCounter {
    counts: BTreeMap<NodeId, u64>,
}

impl GCounter {
    pub fn new() -> GCounter {
        GCounter::default()
    }

    /// Adds `amount` to `node`'s count.
    pub fn increment(&mut self, node: NodeId, amount: u64) {
        if amount == 0 {
            return;
        }
        let count = self.counts.entry(node).or_insert(0);
        *count = count.saturating_add(amount);
    }

    /// The count contributed by `node`.
    pub fn get(&self, node: NodeId) -> u64 {
        self.counts.get(&node).copied().unwrap_or(0)
    }

    /// The sum of every node's count.
    pub fn value(&self) -> u64 {
        self.counts.values().fold(0u64, |sum, &count| sum.saturating_add(count))
    }
}

impl Merge for GCounter {
    fn merge(&mut self, other: &Self) {
        for (&node, &count) in &other.counts {
            let mine = self.counts.entry(node).or_insert(0);
            *mine = (*mine).max(count);
        }
    }
}

/// A counter that can go up and down: two [`GCounter`]s, one of increments and one of
/// decrements; the value is their difference and may be negative.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PnCounter {
    pub fn new() -> PnCounter {
        PnCounter::default()
    }

    /// Adds `amount` (negative to decrement) on behalf of `node`.
    pub fn increment(&mut self, node: NodeId, amount: i64) {
        if amount >= 0 {
            self.increments.increment(node, amount.unsigned_abs());
        } else {
            self.decrements.increment(node, amount.unsigned_abs());
        }
    }

    /// Increments minus decrements, clamped to the range of `i64`.
    pub fn value(&self) -> i64 {
        let difference = i128::from(self.increments.value()) - i128::from(self.decrements.value());
        difference.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

impl Merge for PnCounter {
    fn merge(&mut self, other: &Self) {
        self.increments.merge(&other.increments);
        self.decrements.merge(&other.decrements);
    }
}
