//! Unit tests of the counters and the last-writer-wins register.

use super::{assert_merge_laws, merged};
use crate::{GCounter, LwwRegister, Merge, NodeId, PnCounter, Stamp};

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

#[test]
fn g_counter_value_is_the_sum_of_node_counts() {
    let mut counter = GCounter::new();
    counter.increment(A, 2);
    counter.increment(B, 5);
    counter.increment(A, 1);
    assert_eq!((counter.get(A), counter.get(B), counter.value()), (3, 5, 8));
}

#[test]
fn g_counter_merge_takes_the_elementwise_max() {
    let mut a = GCounter::new();
    a.increment(A, 4);
    a.increment(B, 1);
    let mut b = GCounter::new();
    b.increment(A, 2);
    b.increment(B, 7);
    let ab = merged(&a, &b);
    assert_eq!((ab.get(A), ab.get(B), ab.value()), (4, 7, 11));
    assert_merge_laws(&a, &b, &GCounter::new());
}

#[test]
fn g_counter_saturates_instead_of_overflowing() {
    let mut counter = GCounter::new();
    counter.increment(A, u64::MAX);
    counter.increment(A, 3);
    counter.increment(B, 3);
    assert_eq!((counter.get(A), counter.value()), (u64::MAX, u64::MAX));
}

#[test]
fn pn_counter_goes_negative_and_merges() {
    let mut a = PnCounter::new();
    a.increment(A, 3);
    a.increment(A, -5);
    assert_eq!(a.value(), -2);
    let mut b = PnCounter::new();
    b.increment(B, -4);
    let ab = merged(&a, &b);
    assert_eq!(ab.value(), -6);
    assert_eq!(merged(&ab, &a), ab, "re-merging a known state changed the value");
}

#[test]
fn lww_higher_timestamp_wins_whatever_the_order() {
    let mut register = LwwRegister::new(String::new());
    assert!(register.set("late".into(), Stamp { time: 9, node: A }));
    assert!(!register.set("early".into(), Stamp { time: 3, node: B }));
    assert_eq!(register.get(), "late");
}

#[test]
fn lww_tie_is_broken_by_the_larger_node_id() {
    let mut a = LwwRegister::new(String::new());
    a.set("from a".into(), Stamp { time: 5, node: A });
    let mut b = LwwRegister::new(String::new());
    b.set("from b".into(), Stamp { time: 5, node: B });
    assert_eq!(merged(&a, &b).get(), "from b");
    assert_eq!(merged(&b, &a).get(), "from b");
}

#[test]
fn lww_initial_value_loses_to_any_write_and_merges_lawfully() {
    let fresh = LwwRegister::new("initial".to_owned());
    let mut written = fresh.clone();
    written.set("a".into(), Stamp { time: 0, node: NodeId(0) });
    assert_eq!(merged(&fresh, &written).get(), "a");
    // Same stamp, different values (a misuse) still merges commutatively.
    let mut other = fresh.clone();
    other.set("b".into(), Stamp { time: 0, node: NodeId(0) });
    assert_merge_laws(&written, &other, &fresh);
    let mut both = written.clone();
    both.merge(&other);
    assert_eq!(both.get(), "b");
}

#[test]
fn lww_untouched_registers_with_different_initial_values_merge_commutatively() {
    let a = LwwRegister::new(1);
    let b = LwwRegister::new(2);
    assert_eq!(merged(&a, &b), merged(&b, &a));
    assert_eq!(merged(&a, &b).get(), &2);
}
