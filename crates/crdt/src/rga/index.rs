//! The id index of the RGA tree: which leaf holds an element, found by the element's id.
//!
//! Remote operations name elements by id, so finding one must not scan the text. The index
//! maps disjoint runs of ids (one node, consecutive sequence numbers) to the leaf that holds
//! them, and covers exactly the ids present. A leaf split moves runs to a new leaf and
//! re-points them; splitting or tombstoning spans inside a leaf changes nothing here.
//!
//! Typing adds ids one run at a time, each right after the last; the newest run is kept aside
//! (`hot`) and grows in place, so a keystroke costs no map operation at all.

use std::collections::BTreeMap;

use crate::{Id, NodeId};

/// Ids `start..start + len` of one node, all held by `leaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    node: NodeId,
    start: u64,
    len: u64,
    leaf: u32,
}

impl Run {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct IdIndex {
    /// `(node, start) -> (len, leaf)`: disjoint runs.
    runs: BTreeMap<(NodeId, u64), (u64, u32)>,
    /// The newest run, not yet in `runs`.
    hot: Option<Run>,
}

impl IdIndex {
    /// The leaf holding `id`, if it is present.
    pub(super) fn leaf_of(&self, id: Id) -> Option<u32> {
        self.run_at(id).map(|run| run.leaf)
    }

    /// How many of the `len` consecutive ids from `id` on are present before the first
    /// missing one.
    pub(super) fn present_from(&self, id: Id, len: u64) -> u64 {
        let (mut seq, end) = (id.seq, id.seq + len);
        while seq < end
            && let Some(run) = self.run_at(Id::new(id.node, seq))
        {
            seq = run.end();
        }
        seq.min(end) - id.seq
    }

    /// Whether any of the ids `start..start + len` is present.
    pub(super) fn overlaps(&self, start: Id, len: u64) -> bool {
        let last = start.seq + len - 1;
        let overlaps =
            |run: &Run| run.node == start.node && run.start <= last && run.end() > start.seq;
        if self.hot.as_ref().is_some_and(overlaps) {
            return true;
        }
        self.floor(Id::new(start.node, last)).as_ref().is_some_and(overlaps)
    }

    /// Records new ids `start..start + len`, held by `leaf`.
    pub(super) fn add(&mut self, start: Id, len: u64, leaf: u32) {
        if let Some(hot) = &mut self.hot
            && hot.node == start.node
            && hot.end() == start.seq
            && hot.leaf == leaf
        {
            hot.len += len;
            return;
        }
        self.flush();
        self.hot = Some(Run { node: start.node, start: start.seq, len, leaf });
    }

    /// Re-points the present ids `start..start + len` to `leaf`.
    pub(super) fn relocate(&mut self, start: Id, len: u64, leaf: u32) {
        self.flush();
        let (node, end) = (start.node, start.seq + len);
        let mut seq = start.seq;
        while seq < end {
            let Some((&(run_node, run_start), (run_len, run_leaf))) =
                self.runs.range_mut(..=(node, seq)).next_back()
            else {
                debug_assert!(false, "relocating ids that are not present");
                return;
            };
            let run_end = run_start + *run_len;
            if run_node != node || run_end <= seq {
                debug_assert!(false, "relocating ids that are not present");
                return;
            }
            if run_start == seq && run_end <= end {
                // The whole run moves: one lookup, no reshaping.
                *run_leaf = leaf;
                seq = run_end;
                continue;
            }
            // Cut the run: what lies before `seq` keeps its entry, the moved part and what
            // lies past `end` get entries of their own.
            let old_leaf = *run_leaf;
            let moved_end = run_end.min(end);
            if run_start < seq {
                *run_len = seq - run_start;
                self.runs.insert((node, seq), (moved_end - seq, leaf));
            } else {
                (*run_len, *run_leaf) = (moved_end - seq, leaf);
            }
            if moved_end < run_end {
                self.runs.insert((node, moved_end), (run_end - moved_end, old_leaf));
            }
            seq = moved_end;
        }
    }

    fn run_at(&self, id: Id) -> Option<Run> {
        let holds = |run: &Run| run.node == id.node && run.start <= id.seq && id.seq < run.end();
        if let Some(hot) = self.hot.filter(holds) {
            return Some(hot);
        }
        self.floor(id).filter(holds)
    }

    /// The run in `runs` with the greatest start not after `id`.
    fn floor(&self, id: Id) -> Option<Run> {
        let (&(node, start), &(len, leaf)) = self.runs.range(..=(id.node, id.seq)).next_back()?;
        Some(Run { node, start, len, leaf })
    }

    /// Moves the hot run into `runs`, joined to the run before it where they meet.
    fn flush(&mut self) {
        let Some(hot) = self.hot.take() else { return };
        if let Some(before) = self.floor(Id::new(hot.node, hot.start))
            && before.node == hot.node
            && before.end() == hot.start
            && before.leaf == hot.leaf
        {
            self.runs.insert((hot.node, before.start), (before.len + hot.len, hot.leaf));
        } else {
            self.runs.insert((hot.node, hot.start), (hot.len, hot.leaf));
        }
    }
}
