//! The compact binary snapshot of an [`Rga`]: every element with its id, reference and
//! tombstone, and the visible text.
//!
//! The runs are written in text order, column by column (flags, ids, lengths, references,
//! text), because each column alone is regular and compresses well: sequence numbers as
//! deltas, most references as "the element just before me". The columns are serialized with
//! postcard (variable-length integers) and the result deflated. A snapshot is everything a
//! replica needs to merge with any other; it does not hold the text of deleted characters.
//!
//! Decoding rebuilds the text by integrating the runs in order, then checks that the result
//! has exactly the runs it was given, so a damaged or forged snapshot is an error, never a
//! text that differs from the one encoded.

use std::io::{Read, Write};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
use serde::{Deserialize, Serialize};

use super::{Rga, Span};
use crate::{Error, Id, NodeId, Outcome};

/// The first byte of every snapshot; a new layout takes a new number.
const FORMAT: u8 = 1;

/// Flags of a run.
const DELETED: u64 = 1;
/// The run's reference is the last element of the run before it in text order.
const AFTER_PREVIOUS: u64 = 2;
/// The run's reference is written out in `after_nodes` and `after_gaps`.
const AFTER_EXPLICIT: u64 = 4;
/// Flags sit in the low bits of a head; the node's number in the `nodes` table above them.
const FLAG_BITS: u32 = 3;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Columns {
    /// The nodes, numbered in order of first appearance.
    nodes: Vec<NodeId>,
    /// Per run: node number and flags.
    heads: Vec<u64>,
    /// Per run: its first sequence number minus the previous run's.
    seq_deltas: Vec<i64>,
    lens: Vec<u64>,
    /// Per run with an explicit reference: the reference's node number, and how far its
    /// sequence number is below the run's.
    after_nodes: Vec<u64>,
    after_gaps: Vec<u64>,
    /// The visible characters in order.
    text: String,
}

impl Rga {
    /// Encodes the whole state (not the pending operations) as a compact snapshot.
    pub fn encode(&self) -> Vec<u8> {
        let mut columns = Columns { text: self.to_string(), ..Columns::default() };
        let mut numbers = std::collections::HashMap::new();
        let mut number = |node: NodeId, nodes: &mut Vec<NodeId>| -> u64 {
            *numbers.entry(node).or_insert_with(|| {
                nodes.push(node);
                nodes.len() as u64 - 1
            })
        };
        let (mut previous_seq, mut previous_last) = (0u64, None);
        for run in self.runs() {
            let node = number(run.id.node, &mut columns.nodes);
            let mut flags = if run.deleted { DELETED } else { 0 };
            match run.after {
                None => {}
                Some(after) if Some(after) == previous_last => flags |= AFTER_PREVIOUS,
                Some(after) => {
                    flags |= AFTER_EXPLICIT;
                    let after_node = number(after.node, &mut columns.nodes);
                    columns.after_nodes.push(after_node);
                    columns.after_gaps.push(run.id.seq - after.seq);
                }
            }
            columns.heads.push(node << FLAG_BITS | flags);
            columns.seq_deltas.push(run.id.seq.wrapping_sub(previous_seq) as i64);
            columns.lens.push(run.len as u64);
            previous_seq = run.id.seq;
            previous_last = Some(run.last());
        }
        columns.pack()
    }

    /// Rebuilds a text from [`Rga::encode`]'s snapshot.
    ///
    /// Meant for snapshots this program wrote. Decoding costs what merging the same state
    /// costs, which for many runs hanging off one reference is quadratic in their number, and
    /// it inflates without a size cap; bound the input before decoding bytes from elsewhere.
    pub fn decode(bytes: &[u8]) -> Result<Rga, Error> {
        let corrupt = |reason: &str| Error::Corrupt { reason: reason.to_owned() };
        let (columns, runs) = Columns::unpack(bytes)?;
        let mut rga = Rga::new();
        let mut text = columns.text.as_str();
        for run in &runs {
            let visible = if run.deleted { None } else { Some(take_chars(&mut text, run.len)?) };
            super::validate_run(run.id, run.after, run.len as u64)
                .map_err(|_| corrupt("a run breaks the id rules"))?;
            match rga.integrate_run(run.id, run.after, run.len, visible) {
                Ok(Some(Outcome::Applied)) => {}
                _ => return Err(corrupt("a run repeats ids or refers to a missing element")),
            }
        }
        if !text.is_empty() {
            return Err(corrupt("the text is longer than the runs"));
        }
        if rga.runs() != runs {
            return Err(corrupt("the runs are not in the order their ids give"));
        }
        Ok(rga)
    }
}

impl Rga {
    /// Rebuilds a text from [`Rga::encode`]'s snapshot, trusting the order of its runs: each is
    /// put after the one before it, not integrated by the merge rule, so decoding costs
    /// O(n log n) in the runs however they hang off their references. Meant for a snapshot
    /// this replica wrote itself, that only edits locally ([`Rga::insert`], [`Rga::delete`],
    /// which go by visible index) from then on: ids, references and lengths are still checked,
    /// but not that the order is the one merging would give.
    pub fn decode_in_order(bytes: &[u8]) -> Result<Rga, Error> {
        let corrupt = |reason: &str| Error::Corrupt { reason: reason.to_owned() };
        let (columns, runs) = Columns::unpack(bytes)?;
        let mut rga = Rga::new();
        let mut text = columns.text.as_str();
        for run in &runs {
            super::validate_run(run.id, run.after, run.len as u64)
                .map_err(|_| corrupt("a run breaks the id rules"))?;
            let fresh = run.id.seq > rga.max_seq || !rga.tree.overlaps(run.id, run.len as u64);
            if !fresh || run.after.is_some_and(|after| !rga.contains(after)) {
                return Err(corrupt("a run repeats ids or refers to a missing element"));
            }
            let visible = if run.deleted { "" } else { take_chars(&mut text, run.len)? };
            let pos = rga.tree.end();
            let at = rga.visible_len;
            rga.place(pos, at, *run, visible);
        }
        if !text.is_empty() {
            return Err(corrupt("the text is longer than the runs"));
        }
        Ok(rga)
    }
}

/// The first `count` characters of `text` (at least one), taken off it.
fn take_chars<'a>(text: &mut &'a str, count: usize) -> Result<&'a str, Error> {
    let (at, last) = count
        .checked_sub(1)
        .and_then(|index| text.char_indices().nth(index))
        .ok_or_else(|| Error::Corrupt { reason: "the text is shorter than the runs".to_owned() })?;
    let (chars, rest) = text.split_at(at + last.len_utf8());
    *text = rest;
    Ok(chars)
}

impl Columns {
    /// The columns of snapshot `bytes` ([`Columns::pack`]'s), and the runs they describe.
    fn unpack(bytes: &[u8]) -> Result<(Columns, Vec<Span>), Error> {
        let corrupt = |reason: &str| Error::Corrupt { reason: reason.to_owned() };
        let Some((&FORMAT, deflated)) = bytes.split_first() else {
            return Err(corrupt("unknown format"));
        };
        let mut packed = Vec::new();
        DeflateDecoder::new(deflated)
            .read_to_end(&mut packed)
            .map_err(|_| corrupt("the data does not inflate"))?;
        let columns: Columns =
            postcard::from_bytes(&packed).map_err(|_| corrupt("the columns do not parse"))?;
        let runs = columns.runs().ok_or_else(|| corrupt("the columns disagree"))?;
        Ok((columns, runs))
    }

    /// The snapshot bytes: the format byte, then the deflated postcard encoding.
    fn pack(&self) -> Vec<u8> {
        let packed = postcard::to_allocvec(self).expect("columns always serialize");
        let mut out = DeflateEncoder::new(vec![FORMAT], Compression::default());
        out.write_all(&packed).expect("writing to memory cannot fail");
        out.finish().expect("writing to memory cannot fail")
    }

    /// The runs the columns describe, or `None` if the columns do not fit together.
    fn runs(&self) -> Option<Vec<Span>> {
        let count = self.heads.len();
        if self.seq_deltas.len() != count
            || self.lens.len() != count
            || self.after_nodes.len() != self.after_gaps.len()
        {
            return None;
        }
        let node = |number: u64| self.nodes.get(usize::try_from(number).ok()?).copied();
        let mut explicit = self.after_nodes.iter().zip(&self.after_gaps);
        let (mut previous_seq, mut previous_last): (u64, Option<Id>) = (0, None);
        let mut runs = Vec::with_capacity(count);
        for at in 0..count {
            let head = self.heads[at];
            let flags = head & ((1 << FLAG_BITS) - 1);
            let seq = previous_seq.wrapping_add(self.seq_deltas[at] as u64);
            let id = Id::new(node(head >> FLAG_BITS)?, seq);
            let after = match flags & (AFTER_PREVIOUS | AFTER_EXPLICIT) {
                0 => None,
                AFTER_PREVIOUS => Some(previous_last?),
                AFTER_EXPLICIT => {
                    let (&after_node, &gap) = explicit.next()?;
                    Some(Id::new(node(after_node)?, seq.checked_sub(gap)?))
                }
                _ => return None,
            };
            let len = usize::try_from(self.lens[at]).ok().filter(|&len| len > 0)?;
            let run = Span { id, after, len, deleted: flags & DELETED != 0 };
            id.checked_add(len as u64 - 1)?;
            previous_seq = seq;
            previous_last = Some(run.last());
            runs.push(run);
        }
        explicit.next().is_none().then_some(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_runs_at_the_start(first_seq: u64, second_seq: u64) -> Columns {
        Columns {
            nodes: vec![NodeId(1)],
            heads: vec![0, 0],
            seq_deltas: vec![first_seq as i64, second_seq as i64 - first_seq as i64],
            lens: vec![1, 1],
            text: "ab".into(),
            ..Columns::default()
        }
    }

    #[test]
    fn runs_in_the_order_their_ids_give_decode() {
        // Both start the text; the newer one comes first.
        let rga = Rga::decode(&two_runs_at_the_start(2, 1).pack()).expect("decodes");
        assert_eq!(rga.to_string(), "ab");
    }

    #[test]
    fn runs_in_an_order_no_replica_holds_are_rejected() {
        // The older run first: integration would put the newer one first instead.
        let decoded = Rga::decode(&two_runs_at_the_start(1, 2).pack());
        assert!(matches!(decoded, Err(Error::Corrupt { .. })), "{decoded:?}");
    }

    #[test]
    fn columns_that_disagree_are_rejected() {
        let mut columns = two_runs_at_the_start(2, 1);
        columns.lens.pop();
        assert!(matches!(Rga::decode(&columns.pack()), Err(Error::Corrupt { .. })));
        let mut columns = two_runs_at_the_start(2, 1);
        columns.heads[1] = 1 << FLAG_BITS; // A node number past the table.
        assert!(matches!(Rga::decode(&columns.pack()), Err(Error::Corrupt { .. })));
        let mut columns = two_runs_at_the_start(2, 1);
        columns.text.pop();
        assert!(matches!(Rga::decode(&columns.pack()), Err(Error::Corrupt { .. })));
        let mut columns = two_runs_at_the_start(2, 1);
        columns.text.push('c');
        assert!(matches!(Rga::decode(&columns.pack()), Err(Error::Corrupt { .. })));
    }
}
