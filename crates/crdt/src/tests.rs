//! Tests of the crdt crate: unit tests per rule, property tests of convergence and the merge
//! laws, and replays of real editing traces.

mod counters;
mod props;
mod rga;
mod traces;

use crate::Merge;

/// `a ⊔ b`, leaving both inputs alone.
fn merged<T: Merge + Clone>(a: &T, b: &T) -> T {
    let mut result = a.clone();
    result.merge(b);
    result
}

/// Asserts the three merge laws on `a`, `b` and `c`.
fn assert_merge_laws<T: Merge + Clone + PartialEq + std::fmt::Debug>(a: &T, b: &T, c: &T) {
    assert_eq!(merged(a, b), merged(b, a), "merge is not commutative");
    assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)), "merge is not associative");
    assert_eq!(merged(a, a), *a, "merging a state with itself changed it");
    assert_eq!(merged(&merged(a, b), b), merged(a, b), "merging twice differs from merging once");
}
