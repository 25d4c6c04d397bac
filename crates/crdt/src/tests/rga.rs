//! Unit tests of the RGA text: ordering rules, index editing, op delivery and merging.

use super::{assert_merge_laws, merged};
use crate::{Error, Id, IdRange, Merge, NodeId, Outcome, Rga, RgaOp};

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

/// Inserts `text` at `index` as `node`, with the next fresh id.
fn type_at(rga: &mut Rga, node: NodeId, index: usize, text: &str) -> RgaOp {
    let id = rga.next_id(node);
    rga.insert(index, text, id).expect("valid insert")
}

fn apply_all(rga: &mut Rga, ops: &[RgaOp]) {
    for op in ops {
        rga.apply(op.clone()).expect("valid op");
    }
}

#[test]
fn insert_and_delete_by_index() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "hello");
    type_at(&mut rga, A, 5, " world");
    type_at(&mut rga, A, 0, ">");
    assert_eq!(rga.to_string(), ">hello world");
    rga.delete(1, 6).expect("in range");
    assert_eq!((rga.to_string(), rga.len()), (">world".to_owned(), 6));
}

#[test]
fn to_string_omits_tombstones_but_they_stay_as_references() {
    let mut a = Rga::new();
    type_at(&mut a, A, 0, "abc");
    let b_id = a.id_at(1).expect("visible");
    a.delete(1, 1).expect("in range");
    assert_eq!(a.to_string(), "ac");
    assert_eq!(a.is_deleted(b_id), Some(true));
    // An insert after the tombstone, made elsewhere, still lands in place.
    let op = RgaOp::Insert { id: Id::new(B, 10), after: Some(b_id), text: "X".into() };
    assert_eq!(a.apply(op), Ok(Outcome::Applied));
    assert_eq!(a.to_string(), "aXc");
    assert_eq!(a.index_of(b_id), Some(1), "a tombstone sits at the index of what follows it");
}

#[test]
fn concurrent_inserts_at_one_place_put_the_higher_node_first() {
    let mut a = Rga::new();
    let mut b = Rga::new();
    let from_a = type_at(&mut a, A, 0, "aaa");
    let from_b = type_at(&mut b, B, 0, "bbb");
    a.apply(from_b).expect("valid");
    b.apply(from_a).expect("valid");
    assert_eq!(a.to_string(), "bbbaaa");
    assert_eq!(a, b);
}

#[test]
fn concurrent_inserts_with_different_seqs_put_the_newer_first() {
    let mut a = Rga::new();
    let base = type_at(&mut a, A, 0, "xy");
    let mut b = Rga::new();
    b.apply(base).expect("valid");
    // A has seen more (seq 3), so its insert after "x" is newer than B's.
    let from_a = type_at(&mut a, A, 1, "A");
    let from_b = RgaOp::Insert { id: Id::new(B, 3), after: b.id_at(0), text: "B".into() };
    b.apply(from_b.clone()).expect("valid");
    a.apply(from_b).expect("valid");
    b.apply(from_a).expect("valid");
    assert_eq!(a.to_string(), "xBAy", "equal seq 3: the higher node id (B) goes first");
    assert_eq!(a, b);
}

#[test]
fn an_insert_made_after_seeing_another_at_the_same_reference_goes_first() {
    let mut a = Rga::new();
    let x = type_at(&mut a, A, 0, "x");
    let first = type_at(&mut a, A, 1, "1");
    let mut b = Rga::new();
    apply_all(&mut b, &[x, first]);
    // B saw "1" after "x" and inserts "2" after "x" too: the newer insert comes first.
    let second = type_at(&mut b, B, 1, "2");
    a.apply(second).expect("valid");
    assert_eq!(a.to_string(), "x21");
    assert_eq!(a, b);
}

#[test]
fn runs_typed_concurrently_stay_contiguous() {
    let mut a = Rga::new();
    let base = type_at(&mut a, A, 0, "[]");
    let mut b = Rga::new();
    b.apply(base).expect("valid");
    let mut ops_a = Vec::new();
    let mut ops_b = Vec::new();
    for (i, (ca, cb)) in "abc".chars().zip("xyz".chars()).enumerate() {
        ops_a.push(type_at(&mut a, A, 1 + i, &ca.to_string()));
        ops_b.push(type_at(&mut b, B, 1 + i, &cb.to_string()));
    }
    apply_all(&mut a, &ops_b);
    apply_all(&mut b, &ops_a);
    assert_eq!(a.to_string(), "[xyzabc]");
    assert_eq!(a, b);
}

#[test]
fn an_op_whose_reference_is_missing_waits_until_it_arrives() {
    let mut a = Rga::new();
    let first = type_at(&mut a, A, 0, "ab");
    let second = type_at(&mut a, A, 2, "cd");
    let delete = a.delete(0, 1).expect("in range").remove(0);
    let mut b = Rga::new();
    assert_eq!(b.apply(delete.clone()), Ok(Outcome::Pending));
    assert_eq!(b.apply(second.clone()), Ok(Outcome::Pending));
    assert_eq!(b.apply(second.clone()), Ok(Outcome::Pending));
    assert_eq!((b.pending_len(), b.to_string()), (2, String::new()));
    assert_eq!(b.apply(first.clone()), Ok(Outcome::Applied));
    assert_eq!((b.pending_len(), b.to_string()), (0, "bcd".to_owned()));
    assert_eq!(b.apply(first), Ok(Outcome::Duplicate));
    assert_eq!(b.apply(second), Ok(Outcome::Duplicate));
    assert_eq!(b.apply(delete), Ok(Outcome::Duplicate));
    assert_eq!(a, b);
}

#[test]
fn a_run_partly_present_is_completed_not_duplicated() {
    let mut a = Rga::new();
    let ab = type_at(&mut a, A, 0, "ab");
    let cd = type_at(&mut a, A, 2, "cd");
    let mut b = Rga::new();
    apply_all(&mut b, &[ab]);
    // The same ids, delivered as one longer run (as a merge of spans would).
    let whole = RgaOp::Insert { id: Id::new(A, 1), after: None, text: "abcd".into() };
    assert_eq!(b.apply(whole), Ok(Outcome::Applied));
    assert_eq!(b.apply(cd), Ok(Outcome::Duplicate));
    assert_eq!((b.to_string(), b.len()), ("abcd".to_owned(), 4));
    assert_eq!(a, b);
}

#[test]
fn merge_is_commutative_idempotent_and_equals_op_delivery() {
    let mut a = Rga::new();
    let base = type_at(&mut a, A, 0, "shared");
    let mut b = Rga::new();
    b.apply(base).expect("valid");
    type_at(&mut a, A, 6, " by a");
    a.delete(0, 1).expect("in range");
    type_at(&mut b, B, 0, "b: ");
    b.delete(5, 3).expect("in range");
    let ab = merged(&a, &b);
    assert_eq!(ab, merged(&b, &a));
    assert_eq!(merged(&ab, &b), ab);
    assert_eq!(ab.to_string(), "b: hd by a");
    assert_merge_laws(&a, &b, &Rga::new());
}

#[test]
fn index_and_id_translate_both_ways() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "héllo wörld");
    rga.delete(2, 3).expect("in range");
    assert_eq!(rga.to_string(), "hé wörld");
    for index in 0..rga.len() {
        let id = rga.id_at(index).expect("visible");
        assert_eq!(rga.index_of(id), Some(index));
    }
    assert_eq!(rga.id_at(rga.len()), None);
    assert_eq!(rga.index_of(Id::new(B, 1)), None);
}

#[test]
fn multibyte_text_splits_on_characters() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "añb€c");
    type_at(&mut rga, A, 2, "|");
    rga.delete(4, 1).expect("in range");
    assert_eq!(rga.to_string(), "añ|bc");
    let mut other = Rga::new();
    other.merge(&rga);
    assert_eq!(other.to_string(), "añ|bc");
}

#[test]
fn bad_edits_are_errors_not_panics() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "abc");
    let id = rga.next_id(A);
    assert_eq!(rga.insert(4, "x", id), Err(Error::IndexOutOfRange { index: 4, len: 3 }));
    assert_eq!(rga.insert(0, "", id), Err(Error::Empty));
    assert_eq!(
        rga.insert(0, "x", Id::new(A, 2)),
        Err(Error::StaleId { id: Id::new(A, 2), max_seq: 3 })
    );
    assert_eq!(rga.delete(2, 2), Err(Error::RangeOutOfRange { start: 2, end: 4, len: 3 }));
    assert_eq!(
        rga.delete(usize::MAX, 2),
        Err(Error::RangeOutOfRange { start: usize::MAX, end: usize::MAX, len: 3 })
    );
    assert_eq!(rga.delete(0, 0), Err(Error::Empty));
    let backwards =
        RgaOp::Insert { id: Id::new(B, 2), after: Some(Id::new(A, 3)), text: "x".into() };
    assert_eq!(
        rga.apply(backwards),
        Err(Error::ReferenceNotOlder { id: Id::new(B, 2), after: Id::new(A, 3) })
    );
    let overflow = RgaOp::Insert { id: Id::new(B, u64::MAX), after: None, text: "xy".into() };
    assert_eq!(rga.apply(overflow), Err(Error::SeqOverflow { id: Id::new(B, u64::MAX) }));
    let empty = RgaOp::Delete { target: IdRange { start: Id::new(A, 1), len: 0 } };
    assert_eq!(rga.apply(empty), Err(Error::Empty));
    assert_eq!(rga.to_string(), "abc");
}

#[test]
fn sequence_numbers_stop_at_max_seq_without_overflow() {
    use crate::MAX_SEQ;
    let mut rga = Rga::new();
    let last = RgaOp::Insert { id: Id::new(B, MAX_SEQ), after: None, text: "z".into() };
    assert_eq!(rga.apply(last), Ok(Outcome::Applied));
    let past = RgaOp::Insert { id: Id::new(B, MAX_SEQ), after: None, text: "zz".into() };
    assert_eq!(rga.apply(past), Err(Error::SeqOverflow { id: Id::new(B, MAX_SEQ) }));
    let id = rga.next_id(A);
    assert_eq!(rga.insert(0, "a", id), Err(Error::SeqOverflow { id: Id::new(A, MAX_SEQ + 1) }));
    let delete = RgaOp::Delete { target: IdRange { start: Id::new(B, MAX_SEQ), len: 1 } };
    assert_eq!(rga.apply(delete), Ok(Outcome::Applied));
    assert_eq!((rga.to_string(), rga.len()), (String::new(), 0));
}

#[test]
fn an_insert_reusing_ids_of_other_elements_is_refused() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "abc"); // Ids A1..A3.
    // A run starting before them and running into them cannot be a real op.
    let clash = RgaOp::Insert { id: Id::new(A, 0), after: None, text: "xyz".into() };
    assert_eq!(rga.apply(clash), Err(Error::IdsInUse { id: Id::new(A, 0) }));
    assert_eq!(rga.to_string(), "abc");
}

#[test]
fn merge_never_stores_an_id_twice() {
    let p = RgaOp::Insert { id: Id::new(A, 2), after: None, text: "p".into() };
    let qr = RgaOp::Insert { id: Id::new(A, 1), after: None, text: "qr".into() };
    let mut a = Rga::new();
    a.apply(p).expect("valid");
    let mut b = Rga::new();
    b.apply(qr).expect("valid");
    // A node that reused ids for other text: the run that clashes is left out of the merge.
    a.merge(&b);
    assert_eq!((a.to_string(), a.len()), ("p".to_owned(), 1));
}

#[test]
fn merge_leaves_out_what_hangs_off_a_clashing_run_without_panicking() {
    let mut a = Rga::new();
    a.apply(RgaOp::Insert { id: Id::new(A, 2), after: None, text: "p".into() }).expect("valid");
    let mut b = Rga::new();
    b.apply(RgaOp::Insert { id: Id::new(A, 1), after: None, text: "qrs".into() }).expect("valid");
    // A tombstone whose reference sits in the run that clashes with `a`'s A2.
    let z = Id::new(B, 5);
    b.apply(RgaOp::Insert { id: z, after: Some(Id::new(A, 3)), text: "z".into() }).expect("valid");
    b.apply(RgaOp::Delete { target: IdRange { start: z, len: 1 } }).expect("valid");
    a.merge(&b);
    assert_eq!(a.to_string(), "p");
    assert!(!a.contains(z));
}

#[test]
fn contains_range_answers_for_ranges_no_replica_could_name() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "abc");
    let start = rga.id_at(0).expect("visible");
    assert!(rga.contains_range(IdRange { start, len: 3 }));
    assert!(!rga.contains_range(IdRange { start, len: 4 }));
    assert!(!rga.contains_range(IdRange { start, len: u64::MAX }));
    assert!(!rga.contains_range(IdRange { start: Id::new(A, u64::MAX), len: 2 }));
}

#[test]
fn snapshots_round_trip_concurrent_histories() {
    let mut a = Rga::new();
    let mut b = Rga::new();
    let first = type_at(&mut a, A, 0, "héllo wörld");
    b.apply(first).expect("valid");
    type_at(&mut a, A, 5, ",");
    type_at(&mut b, B, 0, ">> ");
    b.delete(4, 3).expect("in range");
    a.merge(&b);
    let decoded = Rga::decode(&a.encode()).expect("decodes");
    assert_eq!(decoded, a);
    assert_eq!(decoded.to_string(), a.to_string());
    // The tombstones came back too: what a replica that missed them sends still lands.
    let late = RgaOp::Insert { id: Id::new(B, 100), after: b.id_at(3), text: "!".into() };
    let mut original = a.clone();
    let mut rebuilt = decoded;
    assert_eq!(original.apply(late.clone()), Ok(Outcome::Applied));
    assert_eq!(rebuilt.apply(late), Ok(Outcome::Applied));
    assert_eq!(rebuilt, original);
}

#[test]
fn damaged_snapshots_are_errors_not_panics() {
    let mut rga = Rga::new();
    type_at(&mut rga, A, 0, "some text to damage");
    rga.delete(2, 5).expect("in range");
    let good = rga.encode();
    assert!(matches!(Rga::decode(&[]), Err(Error::Corrupt { .. })));
    assert!(matches!(Rga::decode_in_order(&[]), Err(Error::Corrupt { .. })));
    assert!(matches!(Rga::decode_in_order(&good[..good.len() / 2]), Err(Error::Corrupt { .. })));
    assert!(matches!(Rga::decode(&[99, 1, 2]), Err(Error::Corrupt { .. })));
    assert!(matches!(Rga::decode(&good[..good.len() / 2]), Err(Error::Corrupt { .. })));
    // Every single-byte change either fails to decode or decodes to a consistent text.
    for at in 0..good.len() {
        for flip in [1u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            if let Ok(decoded) = Rga::decode(&bad) {
                decoded.check_invariants();
            }
        }
    }
}
