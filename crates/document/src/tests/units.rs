//! Unit tests of documents: local edits, op delivery, title and counters, merge, diff and
//! snapshots.

use crate::{Document, Error, Id, IdRange, Merge, NodeId, Op, OpKind, Outcome, Snapshot};

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

fn apply_all(document: &mut Document, ops: &[Op]) {
    for op in ops {
        document.apply(op.clone()).expect("valid op");
    }
}

#[test]
fn local_edits_change_the_document_and_return_their_ops() {
    let mut doc = Document::new();
    let ops = [
        doc.insert(A, 0, "ABCD").expect("in range"),
        doc.delete(A, 1, 2).expect("in range"),
        doc.set_title(A, "Plans").expect("valid"),
        doc.increment_counter(A, "likes", 2).expect("valid"),
        doc.increment_counter(A, "likes", -5).expect("valid"),
    ];
    assert_eq!((doc.text(), doc.title(), doc.counter("likes")), ("AD".to_owned(), "Plans", -3));
    assert_eq!(doc.history(), &ops);
    assert_eq!(doc.version().get(A), 8, "4 characters, then one seq per op");
    let mut replica = Document::new();
    apply_all(&mut replica, &ops);
    assert_eq!(replica, doc);
    assert_eq!(replica.counters().collect::<Vec<_>>(), vec![("likes", -3)]);
}

#[test]
fn the_latest_title_wins_and_ties_go_to_the_higher_node() {
    let mut a = Document::new();
    let mut b = Document::new();
    let from_a = a.set_title(A, "from a").expect("valid");
    let from_b = b.set_title(B, "from b").expect("valid");
    a.apply(from_b.clone()).expect("valid");
    b.apply(from_a).expect("valid");
    assert_eq!((a.title(), b.title()), ("from b", "from b"), "same seq: node 2 beats node 1");
    // A set made after seeing the others is newer and wins even from the lower node.
    let later = a.set_title(A, "later").expect("valid");
    b.apply(later).expect("valid");
    assert_eq!((a.title(), b.title()), ("later", "later"));
}

#[test]
fn concurrent_counter_increments_add_up() {
    let mut a = Document::new();
    let mut b = Document::new();
    let from_a = a.increment_counter(A, "votes", 3).expect("valid");
    let from_b = b.increment_counter(B, "votes", -1).expect("valid");
    a.apply(from_b).expect("valid");
    b.apply(from_a).expect("valid");
    assert_eq!((a.counter("votes"), b.counter("votes"), a.counter("other")), (2, 2, 0));
}

#[test]
fn ops_wait_for_their_authors_previous_op_and_their_references() {
    let mut a = Document::new();
    let first = a.insert(A, 0, "hi").expect("in range");
    let title = a.set_title(A, "t").expect("valid");
    let mut b = Document::new();
    let reply = {
        let mut c = Document::new();
        c.apply(first.clone()).expect("valid");
        c.insert(B, 2, "!").expect("in range")
    };
    assert_eq!(b.apply(title.clone()), Ok(Outcome::Pending), "A's earlier op is missing");
    assert_eq!(b.apply(reply.clone()), Ok(Outcome::Pending), "its reference is missing");
    assert_eq!(b.apply(title.clone()), Ok(Outcome::Pending));
    assert_eq!((b.pending_len(), b.text()), (2, String::new()));
    assert_eq!(b.apply(first.clone()), Ok(Outcome::Applied));
    assert_eq!((b.pending_len(), b.text(), b.title()), (0, "hi!".to_owned(), "t"));
    for op in [first, title, reply] {
        assert_eq!(b.apply(op), Ok(Outcome::Duplicate));
    }
}

#[test]
fn the_abcd_case_converges_in_both_delivery_orders() {
    let mut base = Document::new();
    let setup = base.insert(NodeId(9), 0, "ABCD").expect("in range");
    let mut a = base.clone();
    let mut b = base.clone();
    let insert_x = a.insert(A, 3, "X").expect("in range");
    let delete_b = b.delete(B, 1, 1).expect("in range");
    a.apply(delete_b.clone()).expect("valid");
    b.apply(insert_x.clone()).expect("valid");
    assert_eq!((a.text(), b.text()), ("ACXD".to_owned(), "ACXD".to_owned()));
    let mut late = Document::new();
    apply_all(&mut late, &[delete_b, insert_x, setup]);
    assert_eq!(late, a);
}

#[test]
fn merge_is_commutative_and_idempotent() {
    let mut a = Document::new();
    let mut b = Document::new();
    a.insert(A, 0, "left").expect("in range");
    a.set_title(A, "A").expect("valid");
    b.insert(B, 0, "right").expect("in range");
    b.increment_counter(B, "n", 4).expect("valid");
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!((ab.text(), ab.title(), ab.counter("n")), ("rightleft".to_owned(), "A", 4));
    let once = ab.clone();
    ab.merge(&b);
    ab.merge(&ab.clone());
    assert_eq!(ab, once);
}

#[test]
fn diff_holds_exactly_the_missing_ops() {
    let mut doc = Document::new();
    doc.insert(A, 0, "abc").expect("in range");
    let earlier = doc.clone();
    let later_ops = vec![
        doc.delete(A, 0, 1).expect("in range"),
        doc.set_title(A, "x").expect("valid"),
        doc.insert(B, 2, "Z").expect("in range"),
    ];
    assert_eq!(doc.diff(earlier.version()), later_ops);
    assert_eq!(doc.diff(doc.version()), vec![]);
    let mut caught_up = earlier.clone();
    apply_all(&mut caught_up, &doc.diff(earlier.version()));
    assert_eq!(caught_up, doc);
}

#[test]
fn snapshots_round_trip_through_json() {
    let mut doc = Document::new();
    doc.insert(A, 0, "héllo").expect("in range");
    doc.delete(A, 1, 1).expect("in range");
    doc.set_title(B, "T").expect("valid");
    doc.increment_counter(B, "c", -2).expect("valid");
    let pending = Op { id: Id::new(B, 99), prev: 50, kind: OpKind::SetTitle { title: "p".into() } };
    assert_eq!(doc.apply(pending), Ok(Outcome::Pending));
    let json = serde_json::to_string(&doc).expect("serializes");
    let loaded: Document = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(loaded, doc);
    assert_eq!(loaded.snapshot(), doc.snapshot(), "history and pending ops survive too");
    assert_eq!(loaded.text(), "hllo");
}

#[test]
fn a_snapshot_whose_ops_do_not_follow_is_rejected() {
    let mut doc = Document::new();
    doc.insert(A, 0, "ab").expect("in range");
    doc.insert(A, 2, "c").expect("in range");
    let mut ops = doc.snapshot().ops;
    ops.reverse();
    let reversed = Snapshot { ops, pending: vec![] };
    assert_eq!(
        Document::from_snapshot(reversed),
        Err(Error::CorruptSnapshot { id: Id::new(A, 3) })
    );
    let garbage = r#"{"ops":[{"id":{"node":1,"seq":1},"prev":1,"op":"set_title","title":"x"}]}"#;
    let error = serde_json::from_str::<Document>(garbage).expect_err("prev must be older");
    assert!(error.to_string().contains("previous op"), "{error}");
}

#[test]
fn ops_no_replica_could_make_are_errors() {
    let mut doc = Document::new();
    doc.insert(A, 0, "abc").expect("in range");
    let op = |seq, prev, kind| Op { id: Id::new(A, seq), prev, kind };
    let title = || OpKind::SetTitle { title: "t".into() };
    assert_eq!(
        doc.apply(op(9, 9, title())),
        Err(Error::PrevNotOlder { id: Id::new(A, 9), prev: 9 })
    );
    assert_eq!(
        doc.apply(op(9, 1, title())),
        Err(Error::InconsistentHistory { id: Id::new(A, 9), node: A, prev: 1, seen: 3 })
    );
    let ranges = vec![IdRange { start: Id::new(A, 1), len: 20 }];
    assert_eq!(
        doc.apply(op(9, 3, OpKind::Delete { ranges })),
        Err(Error::DeleteNotOlder { id: Id::new(A, 9), target: Id::new(A, 20) })
    );
    let empty = OpKind::Insert { after: None, text: String::new() };
    assert_eq!(doc.apply(op(9, 3, empty)), Err(Error::Text(tandem_crdt::Error::Empty)));
    assert_eq!(
        doc.insert(A, 4, "x"),
        Err(Error::Text(tandem_crdt::Error::IndexOutOfRange { index: 4, len: 3 }))
    );
    assert_eq!((doc.text(), doc.version().get(A)), ("abc".to_owned(), 3), "nothing changed");
}

#[test]
fn a_real_trace_replays_and_travels_by_diff_and_snapshot() {
    let trace = tandem_traces::sequential("sveltecomponent").expect("trace loads");
    let mut doc = Document::new();
    for patch in trace.patches() {
        if patch.delete() > 0 {
            doc.delete(A, patch.pos(), patch.delete()).expect("in range");
        }
        if !patch.insert().is_empty() {
            doc.insert(A, patch.pos(), patch.insert()).expect("in range");
        }
    }
    assert_eq!(doc.text(), trace.end_content);
    let mut remote = Document::new();
    let everything = doc.diff(remote.version());
    apply_all(&mut remote, &everything);
    assert_eq!(remote, doc);
    let loaded = Document::from_snapshot(doc.snapshot()).expect("loads");
    assert_eq!(loaded.text(), trace.end_content);
}

#[test]
fn sequence_numbers_stop_at_max_seq_on_every_op_kind() {
    use tandem_crdt::MAX_SEQ;
    let mut doc = Document::new();
    let last =
        Op { id: Id::new(B, MAX_SEQ), prev: 0, kind: OpKind::SetTitle { title: "t".into() } };
    assert_eq!(doc.apply(last), Ok(Outcome::Applied));
    let overflow = Error::Text(tandem_crdt::Error::SeqOverflow { id: Id::new(A, MAX_SEQ + 1) });
    assert_eq!(doc.set_title(A, "x"), Err(overflow.clone()));
    assert_eq!(doc.increment_counter(A, "n", 1), Err(overflow.clone()));
    assert_eq!(doc.insert(A, 0, "x"), Err(overflow));
    let past =
        Op { id: Id::new(A, MAX_SEQ + 1), prev: 0, kind: OpKind::SetTitle { title: "p".into() } };
    let error = doc.apply(past).expect_err("past the maximum");
    assert_eq!(error, Error::Text(tandem_crdt::Error::SeqOverflow { id: Id::new(A, MAX_SEQ + 1) }));
    assert_eq!((doc.title(), doc.counter("n"), doc.history().len()), ("t", 0, 1));
}

#[test]
fn a_local_delete_at_max_seq_is_refused_before_changing_anything() {
    use tandem_crdt::MAX_SEQ;
    let mut doc = Document::new();
    doc.insert(A, 0, "ab").expect("in range");
    let last =
        Op { id: Id::new(B, MAX_SEQ), prev: 0, kind: OpKind::SetTitle { title: "t".into() } };
    doc.apply(last).expect("valid");
    let overflow = Error::Text(tandem_crdt::Error::SeqOverflow { id: Id::new(A, MAX_SEQ + 1) });
    assert_eq!(doc.delete(A, 0, 1), Err(overflow));
    assert_eq!(doc.text(), "ab");
    assert!(Document::from_snapshot(doc.snapshot()).is_ok());
}

#[test]
fn a_pending_op_that_can_never_apply_is_dropped_and_the_document_still_loads() {
    let mut doc = Document::new();
    let bogus = Op { id: Id::new(A, 9), prev: 2, kind: OpKind::SetTitle { title: "x".into() } };
    assert_eq!(doc.apply(bogus), Ok(Outcome::Pending));
    let real = Document::new().insert(A, 0, "abc").expect("in range"); // A@1..3, prev 0.
    doc.apply(real).expect("valid");
    assert_eq!(doc.pending_len(), 0, "A is at 3, past the 2 the bogus op waits for");
    let json = serde_json::to_string(&doc).expect("serializes");
    let loaded: Document = serde_json::from_str(&json).expect("loads");
    assert_eq!((loaded.text(), loaded.title()), ("abc".to_owned(), ""));
}
