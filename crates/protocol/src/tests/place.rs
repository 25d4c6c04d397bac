//! Placing an edit made at an old revision by the identity of its characters gives exactly
//! what transforming it past every change since, one by one, gives.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::SmallRng};

use crate::{
    ot::{Edit, transform},
    text::{Outside, Text},
};

/// A history: the text after each revision (index 0 is the start), the next sequence number
/// at each, and the change of each revision (index r - 1 holds revision r's).
struct History {
    texts: Vec<Vec<char>>,
    next_seqs: Vec<u64>,
    changes: Vec<Edit>,
    text: Text,
}

fn random_edit(rng: &mut SmallRng, len: usize) -> Edit {
    if len > 0 && rng.random_bool(0.45) {
        let index = rng.random_range(0..len);
        let most = (len - index).min(4);
        Edit::Delete { index, len: rng.random_range(1..=most) }
    } else {
        // Few letters and near the same places, so that ties are common.
        let text: String = (0..rng.random_range(1..=3))
            .map(|_| ['x', 'y', '🙂'][rng.random_range(0..3)])
            .collect();
        Edit::Insert { index: rng.random_range(0..=len), text }
    }
}

fn apply(text: &mut Vec<char>, edit: &Edit) {
    assert!(edit.apply(text), "{edit:?} does not fit {text:?}");
}

fn history(rng: &mut SmallRng, start: &str, revisions: usize) -> History {
    let mut text = Text::new(start).expect("a text");
    let mut history = History {
        texts: vec![start.chars().collect()],
        next_seqs: vec![text.next_seq()],
        changes: Vec::new(),
        text: Text::default(),
    };
    for revision in 1..=revisions as u64 {
        let mut chars = history.texts.last().cloned().unwrap_or_default();
        let edit = random_edit(rng, chars.len());
        match &edit {
            Edit::Insert { index, text: s } => text.insert(*index, s).expect("fits"),
            Edit::Delete { index, len } => text.delete(*index, *len, revision).expect("fits"),
        }
        apply(&mut chars, &edit);
        assert_eq!(text.to_string(), chars.iter().collect::<String>());
        history.texts.push(chars);
        history.next_seqs.push(text.next_seq());
        history.changes.push(edit);
    }
    history.text = text;
    history
}

/// The text now after `edit`, made at `revision`, is carried past every later change.
fn transformed(history: &History, revision: usize, edit: &Edit) -> String {
    let mut edits = vec![edit.clone()];
    for change in &history.changes[revision..] {
        edits = transform(&edits, std::slice::from_ref(change)).0;
    }
    let mut text = history.texts.last().cloned().unwrap_or_default();
    for edit in &edits {
        apply(&mut text, edit);
    }
    text.into_iter().collect()
}

/// The text now after `edit`, made at `revision`, is placed by [`Text::place`].
fn placed(history: &History, revision: usize, edit: &Edit) -> String {
    let edits = history
        .text
        .place(revision as u64, history.next_seqs[revision], edit)
        .expect("fits its revision");
    let mut text = history.texts.last().cloned().unwrap_or_default();
    for edit in &edits {
        apply(&mut text, edit);
    }
    text.into_iter().collect()
}

fn check(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let start = ["", "ab", "hello"][rng.random_range(0..3)];
    let revisions = rng.random_range(0..120);
    let history = history(&mut rng, start, revisions);
    for _ in 0..20 {
        let revision = rng.random_range(0..=revisions);
        let edit = random_edit(&mut rng, history.texts[revision].len());
        assert_eq!(
            placed(&history, revision, &edit),
            transformed(&history, revision, &edit),
            "seed {seed}: {edit:?} at revision {revision} of {revisions}, changes {:?}",
            history.changes
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn placing_by_identity_is_transforming_one_by_one(seed: u64) {
        check(seed);
    }
}

#[test]
fn fixed_seeds_place_as_the_transform_does() {
    for seed in 0..200 {
        check(seed);
    }
}

#[test]
fn the_two_orders_of_a_delete_and_an_insert_at_its_place_are_told_apart() {
    // "pxq", with an insert typed between x and q at revision 0. Deleting x and then typing W
    // where it was puts the late insert before W; typing W before x and then deleting x puts
    // it after W: the same characters, told apart by when each change came.
    for (changes, expected) in [
        (
            vec![Edit::Delete { index: 1, len: 1 }, Edit::Insert { index: 1, text: "W".into() }],
            "pLWq",
        ),
        (
            vec![Edit::Insert { index: 1, text: "W".into() }, Edit::Delete { index: 2, len: 1 }],
            "pWLq",
        ),
    ] {
        let mut text = Text::new("pxq").expect("a text");
        let next_seq = text.next_seq();
        let mut chars: Vec<char> = "pxq".chars().collect();
        for (revision, change) in changes.iter().enumerate() {
            match change {
                Edit::Insert { index, text: s } => text.insert(*index, s).expect("fits"),
                Edit::Delete { index, len } => {
                    text.delete(*index, *len, revision as u64 + 1).expect("fits")
                }
            }
            apply(&mut chars, change);
        }
        let late = Edit::Insert { index: 2, text: "L".into() };
        for edit in text.place(0, next_seq, &late).expect("fits") {
            apply(&mut chars, &edit);
        }
        assert_eq!(chars.iter().collect::<String>(), expected);
    }
}

#[test]
fn an_edit_outside_the_text_of_its_revision_is_refused() {
    let mut text = Text::new("abc").expect("a text");
    let next_seq = text.next_seq();
    text.insert(3, "def").expect("fits");
    let late = Edit::Insert { index: 4, text: "x".into() };
    assert_eq!(text.place(0, next_seq, &late), Err(Outside { len: 3 }));
    let late = Edit::Delete { index: 2, len: 2 };
    assert_eq!(text.place(0, next_seq, &late), Err(Outside { len: 3 }));
}

#[test]
fn a_text_comes_back_from_its_bytes_with_its_history() {
    let mut rng = SmallRng::seed_from_u64(7);
    let history = history(&mut rng, "hello", 80);
    let back = Text::decode(&history.text.encode()).expect("decodes");
    assert_eq!(back.to_string(), history.text.to_string());
    for revision in [0, 10, 40, 80] {
        let edit = Edit::Insert { index: history.texts[revision].len() / 2, text: "!".into() };
        let next_seq = history.next_seqs[revision];
        assert_eq!(
            back.place(revision as u64, next_seq, &edit),
            history.text.place(revision as u64, next_seq, &edit)
        );
    }
    assert!(Text::decode(&[9, 9, 9]).is_err());
    assert!(Text::decode(&history.text.encode()[..20]).is_err());
}
