//! Property tests: replicas make random edits of every kind, exchange ops (shuffled and
//! duplicated), whole states and diffs, and must all end equal; diffs from earlier versions and
//! snapshots must reproduce the current state.
//!
//! Each case is driven by a `seed`, which proptest prints on failure with the other inputs.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::SmallRng};

use crate::{Document, Merge, NodeId, Op, OpKind};

fn node(replica: usize) -> NodeId {
    NodeId((replica as u64 * 7919) % 13 + 1)
}

struct Network {
    rng: SmallRng,
    replicas: Vec<Document>,
    inboxes: Vec<Vec<Op>>,
    /// Earlier states of replica 0, to diff against at the end.
    checkpoints: Vec<Document>,
    history: Vec<Op>,
}

impl Network {
    fn new(seed: u64, replicas: usize) -> Network {
        Network {
            rng: SmallRng::seed_from_u64(seed),
            replicas: vec![Document::new(); replicas],
            inboxes: vec![Vec::new(); replicas],
            checkpoints: vec![Document::new()],
            history: Vec::new(),
        }
    }

    fn local_edit(&mut self, r: usize) -> Op {
        let doc = &mut self.replicas[r];
        let len = doc.len();
        match self.rng.random_range(0..10) {
            0..=4 => {
                let index = self.rng.random_range(0..=len);
                let text = ["a", "bc", "é€", "\n", "xyz"][self.rng.random_range(0..5)];
                doc.insert(node(r), index, text).expect("valid insert")
            }
            5..=6 if len > 0 => {
                let index = self.rng.random_range(0..len);
                let count = self.rng.random_range(1..=(len - index).min(4));
                doc.delete(node(r), index, count).expect("valid delete")
            }
            7 => {
                let title = format!("title {}", self.rng.random_range(0..100));
                doc.set_title(node(r), &title).expect("valid title")
            }
            _ => {
                let name = ["likes", "views"][self.rng.random_range(0..2)];
                let amount = self.rng.random_range(-5..=5);
                doc.increment_counter(node(r), name, amount).expect("valid increment")
            }
        }
    }

    fn deliver_one(&mut self, to: usize) {
        if self.inboxes[to].is_empty() {
            return;
        }
        let at = self.rng.random_range(0..self.inboxes[to].len());
        let op = if self.rng.random_bool(0.2) {
            self.inboxes[to][at].clone()
        } else {
            self.inboxes[to].swap_remove(at)
        };
        self.replicas[to].apply(op).expect("ops made by replicas are valid");
    }

    fn step(&mut self) {
        let r = self.rng.random_range(0..self.replicas.len());
        let from = self.rng.random_range(0..self.replicas.len());
        match self.rng.random_range(0..12) {
            0..=4 => {
                let op = self.local_edit(r);
                for (to, inbox) in self.inboxes.iter_mut().enumerate() {
                    if to != r {
                        inbox.push(op.clone());
                    }
                }
                self.history.push(op);
            }
            5 => {
                let other = self.replicas[from].clone();
                self.replicas[r].merge(&other);
            }
            6 => {
                for op in self.replicas[from].diff(self.replicas[r].version()) {
                    self.replicas[r].apply(op).expect("valid");
                }
            }
            7 => self.checkpoints.push(self.replicas[0].clone()),
            _ => self.deliver_one(r),
        }
    }
}

fn replay(seed: u64, replicas: usize, steps: usize) {
    let mut net = Network::new(seed, replicas);
    for _ in 0..steps {
        net.step();
    }
    // Diffs from every earlier version of replica 0 bring it to replica 0's current state,
    // holding exactly the ops that version lacks.
    let current = &net.replicas[0];
    for earlier in &net.checkpoints {
        let diff = current.diff(earlier.version());
        assert_eq!(diff.len(), current.history().len() - earlier.history().len());
        let mut caught_up = earlier.clone();
        for op in diff {
            assert!(!earlier.version().contains(op.id), "diff repeats {op:?}");
            caught_up.apply(op).expect("valid");
        }
        // Ops the earlier version was still waiting on may be waiting on replica 0 as well.
        let still_waiting = current.snapshot().pending;
        assert!(caught_up.snapshot().pending.iter().all(|op| still_waiting.contains(op)));
        assert_eq!(&caught_up, current);
    }
    // Everything reaches everyone, shuffled and duplicated.
    for to in 0..replicas {
        while !net.inboxes[to].is_empty() {
            net.deliver_one(to);
        }
    }
    let expected_likes: i64 = net
        .history
        .iter()
        .filter_map(|op| match &op.kind {
            OpKind::IncrementCounter { name, amount } if name == "likes" => Some(amount),
            _ => None,
        })
        .sum();
    let expected_title = net
        .history
        .iter()
        .filter_map(|op| match &op.kind {
            OpKind::SetTitle { title } => Some((op.id, title.as_str())),
            _ => None,
        })
        .max()
        .map_or("", |(_, title)| title);
    for (i, doc) in net.replicas.iter().enumerate() {
        assert_eq!(doc.pending_len(), 0, "replica {i} has pending ops");
        assert_eq!(doc, &net.replicas[0], "replica {i} differs from replica 0");
        assert_eq!(doc.counter("likes"), expected_likes);
        assert_eq!(doc.title(), expected_title);
        let loaded = Document::from_snapshot(doc.snapshot()).expect("snapshot loads");
        assert_eq!(&loaded, doc, "snapshot of replica {i} does not round-trip");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn documents_converge(seed: u64, replicas in 2usize..=5, steps in 0usize..150) {
        replay(seed, replicas, steps);
    }

    #[test]
    fn merge_obeys_the_laws(seed: u64, steps in 0usize..80) {
        let mut net = Network::new(seed, 3);
        for _ in 0..steps {
            net.step();
        }
        let [a, b, c] = [&net.replicas[0], &net.replicas[1], &net.replicas[2]];
        let merged = |x: &Document, y: &Document| {
            let mut result = x.clone();
            result.merge(y);
            result
        };
        prop_assert_eq!(merged(a, b), merged(b, a));
        prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
        prop_assert_eq!(&merged(a, a), a);
        prop_assert_eq!(merged(&merged(a, b), b), merged(a, b));
    }
}

#[test]
fn fixed_seeds_converge() {
    for seed in 0..20 {
        replay(seed, 4, 200);
    }
}
