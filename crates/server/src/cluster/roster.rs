//! A node's roster (its clients, per document) in parts small enough for one NATS message
//! each, and the assembly of those parts on the other nodes: a node with many clients would
//! otherwise send a heartbeat NATS refuses (1 MiB by default), and be taken for dead.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Client ids per document.
pub(crate) type Roster = BTreeMap<String, Vec<String>>;

/// About the most bytes of ids in one part: far below NATS's smallest usual message limit.
pub(crate) const PART_BYTES: usize = 64 << 10;

/// One part of the roster one heartbeat carries. Its fields sit beside the heartbeat's own
/// (`roster` where a heartbeat of the release before had its whole roster, so that a roster
/// of one part reads the same to both), and a heartbeat without them is one whole part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// Which heartbeat of its node it is of.
    #[serde(default)]
    pub(crate) beat: u64,
    /// Its place among that heartbeat's parts, from 0.
    #[serde(default)]
    pub(crate) index: u32,
    /// Whether it is that heartbeat's last part.
    #[serde(default = "whole")]
    pub(crate) last: bool,
    #[serde(default)]
    pub(crate) roster: Roster,
}

fn whole() -> bool {
    true
}

/// Splits `roster` into parts of about `budget` bytes of ids or fewer (one document's clients
/// over several parts if need be); always at least one part.
pub(crate) fn split(roster: Roster, beat: u64, budget: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = Roster::new();
    let mut size = 0;
    for (doc, clients) in roster {
        // A document with no clients is still listed (in the part it starts in).
        let mut cost = doc.len() + 8;
        if size + cost > budget && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
            size = 0;
        }
        size += cost;
        current.entry(doc.clone()).or_default();
        for client in clients {
            cost = client.len() + 4;
            if size + cost > budget {
                parts.push(std::mem::take(&mut current));
                size = doc.len() + 8;
            }
            size += cost;
            current.entry(doc.clone()).or_default().push(client);
        }
    }
    parts.push(current);
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, roster)| Part {
            beat,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            last: index + 1 == count,
            roster,
        })
        .collect()
}

/// The heartbeat whose parts are coming in, per other node.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    /// Node -> (its heartbeat, the index of the part expected next, the roster so far).
    coming: HashMap<String, (u64, u32, Roster)>,
}

impl Assembly {
    /// Takes in `part` from `node`: its heartbeat's whole roster once its last part is in,
    /// every part having come in order; a heartbeat missing a part gives none (the next one
    /// will do).
    pub(crate) fn take(&mut self, node: &str, part: Part) -> Option<Roster> {
        let Part { beat, index, last, roster } = part;
        if index == 0 {
            self.coming.insert(node.to_owned(), (beat, 0, Roster::new()));
        }
        let (coming_beat, expected, so_far) = self.coming.get_mut(node)?;
        if *coming_beat != beat || *expected != index {
            self.coming.remove(node);
            return None;
        }
        *expected += 1;
        for (doc, clients) in roster {
            so_far.entry(doc).or_default().extend(clients);
        }
        if !last {
            return None;
        }
        self.coming.remove(node).map(|(_, _, roster)| roster)
    }

    /// Forgets what `node` was sending (it went silent).
    pub(crate) fn forget(&mut self, node: &str) {
        self.coming.remove(node);
    }
}
