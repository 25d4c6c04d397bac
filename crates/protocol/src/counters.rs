//! Named counters with exact values: the one type the room, its snapshots and the thin client
//! keep them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Named counters, each an exact integer of at most 2^53 - 1 in magnitude (what every JSON
/// reader, JavaScript's included, holds exactly): an increment that would leave that range is
/// refused rather than clamped, so a counter's value is always the sum of its increments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters {
    values: BTreeMap<String, i64>,
}

/// Why an increment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The counter is new and there are as many counters as allowed.
    TooMany,
    /// The value would be more than 2^53 - 1 in magnitude.
    Overflow,
}

impl Counters {
    /// The value of counter `name` (0 if it was never incremented).
    pub fn get(&self, name: &str) -> i64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Every counter with its value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.values.iter().map(|(name, value)| (name.as_str(), *value))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value `name` would have after adding `amount`, if allowed: at most `max` counters,
    /// and no overflow.
    pub(crate) fn after(&self, name: &str, amount: i64, max: usize) -> Result<i64, Refused> {
        if !self.values.contains_key(name) && self.values.len() >= max {
            return Err(Refused::TooMany);
        }
        let value = self.get(name).checked_add(amount).ok_or(Refused::Overflow)?;
        if value.unsigned_abs() > crate::message::MAX_SAFE_INTEGER {
            return Err(Refused::Overflow);
        }
        Ok(value)
    }

    /// Sets `name` to `value`, as the server confirmed it.
    pub(crate) fn set(&mut self, name: &str, value: i64) {
        match self.values.get_mut(name) {
            Some(current) => *current = value,
            None => {
                self.values.insert(name.to_owned(), value);
            }
        }
    }

    /// The counters as the wire carries them.
    pub(crate) fn to_map(&self) -> BTreeMap<String, i64> {
        self.values.clone()
    }
}

impl From<BTreeMap<String, i64>> for Counters {
    fn from(values: BTreeMap<String, i64>) -> Counters {
        Counters { values }
    }
}
