//! The transform: both orders of two concurrent edits end in the same text.

use proptest::prelude::*;

use crate::ot::{Edit, transform};

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        assert!(edit.apply(&mut chars), "{edit:?} does not fit {chars:?}");
    }
    chars.into_iter().collect()
}

fn converge(text: &str, ours: &[Edit], theirs: &[Edit]) -> String {
    let (ours_after, theirs_after) = transform(ours, theirs);
    let a = apply(&apply(text, ours), &theirs_after);
    let b = apply(&apply(text, theirs), &ours_after);
    assert_eq!(a, b, "ours {ours:?} theirs {theirs:?}");
    a
}

fn ins(index: usize, text: &str) -> Edit {
    Edit::Insert { index, text: text.into() }
}

fn del(index: usize, len: usize) -> Edit {
    Edit::Delete { index, len }
}

#[test]
fn the_abcd_case() {
    assert_eq!(converge("ABCD", &[ins(3, "X")], &[del(1, 1)]), "ACXD");
    assert_eq!(converge("ABCD", &[del(1, 1)], &[ins(3, "X")]), "ACXD");
}

#[test]
fn at_the_same_index_ours_goes_first() {
    assert_eq!(converge("ab", &[ins(1, "X")], &[ins(1, "Y")]), "aXYb");
    assert_eq!(converge("ab", &[ins(1, "Y")], &[ins(1, "X")]), "aYXb");
}

#[test]
fn text_inserted_inside_a_deleted_range_survives() {
    assert_eq!(converge("abcdef", &[ins(3, "X")], &[del(1, 4)]), "aXf");
    assert_eq!(converge("abcdef", &[del(1, 4)], &[ins(3, "X")]), "aXf");
    let (ours, _) = transform(&[del(1, 4)], &[ins(3, "X")]);
    assert_eq!(ours, [del(1, 2), del(2, 2)], "the delete goes around the insert");
}

#[test]
fn overlapping_deletes_delete_once() {
    assert_eq!(converge("abcdef", &[del(1, 3)], &[del(2, 3)]), "af");
    let (ours, theirs) = transform(&[del(1, 2)], &[del(0, 4)]);
    assert_eq!((ours, theirs), (vec![], vec![del(0, 2)]));
}

#[test]
fn a_long_history_transforms_without_recursion() {
    // A delete of the whole text against thousands of concurrent inserts inside it: once deep
    // recursion overflowed the stack here.
    let n = 3_000;
    let text = "x".repeat(n);
    let theirs: Vec<Edit> = (0..n).map(|i| ins(2 * i + 1, "y")).collect();
    let (ours, _) = transform(&[del(0, n)], &theirs);
    // Every insert but the last (which lands after the final character) cuts the delete.
    assert_eq!(ours.len(), n, "the delete goes around every insert");
    assert_eq!(converge(&text, &[del(0, n)], &theirs), "y".repeat(n));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_two_edits_converge(
        text in "[A-Z]{1,8}",
        seeds in proptest::collection::vec(any::<(bool, u8, u8)>(), 1..7),
        theirs in proptest::collection::vec(any::<(bool, u8, u8)>(), 1..7),
    ) {
        // Build valid sequences: each edit fits the text left by the ones before it.
        let build = |plan: &[(bool, u8, u8)]| {
            let mut len = text.chars().count();
            let mut edits = Vec::new();
            for &(insert, at, n) in plan {
                let edit = if insert || len == 0 {
                    Edit::Insert { index: at as usize % (len + 1), text: "xyz"[..1 + n as usize % 3].to_owned() }
                } else {
                    let index = at as usize % len;
                    Edit::Delete { index, len: 1 + n as usize % (len - index) }
                };
                len = (len as isize + edit.delta()) as usize;
                edits.push(edit);
            }
            edits
        };
        converge(&text, &build(&seeds), &build(&theirs));
    }
}
