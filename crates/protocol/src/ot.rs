//! Index edits and their transformation: how two concurrent edits are made to commute.
//!
//! `transform(ours, theirs)` takes two edit sequences made on the same text and returns
//! `(ours', theirs')` such that applying `theirs` then `ours'` gives the same text as applying
//! `ours` then `theirs'`. Where both insert at the same index, `ours` goes first (left).
//! The server and every client call it with the same roles (`ours` is the client's own edit,
//! `theirs` the concurrent edit the server applied first), so all of them agree.
//! Text inserted inside a range that is concurrently deleted survives; text deleted by both is
//! deleted once.

/// One edit of a text, in code points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    Insert { index: usize, text: String },
    Delete { index: usize, len: usize },
}

impl Edit {
    /// How many code points the edit adds (negative: removes).
    pub fn delta(&self) -> isize {
        match self {
            Edit::Insert { text, .. } => text.chars().count() as isize,
            Edit::Delete { len, .. } => -(*len as isize),
        }
    }

    /// Applies the edit to `text`; false (and no change) if it does not fit.
    pub fn apply(&self, text: &mut Vec<char>) -> bool {
        match self {
            Edit::Insert { index, text: inserted } if *index <= text.len() => {
                text.splice(*index..*index, inserted.chars());
                true
            }
            Edit::Delete { index, len }
                if index.checked_add(*len).is_some_and(|end| end <= text.len()) =>
            {
                text.drain(*index..*index + *len);
                true
            }
            _ => false,
        }
    }
}

/// Transforms two concurrent edit sequences against each other (see the module docs).
pub fn transform(ours: &[Edit], theirs: &[Edit]) -> (Vec<Edit>, Vec<Edit>) {
    match (ours, theirs) {
        ([], _) => (Vec::new(), theirs.to_vec()),
        (_, []) => (ours.to_vec(), Vec::new()),
        ([one], [other]) => transform_one(one, other),
        ([first, rest @ ..], _) if !rest.is_empty() => {
            let (first, theirs) = transform(std::slice::from_ref(first), theirs);
            let (mut rest, theirs) = transform(rest, &theirs);
            let mut ours = first;
            ours.append(&mut rest);
            (ours, theirs)
        }
        (_, [first, rest @ ..]) => {
            let (ours, first) = transform(ours, std::slice::from_ref(first));
            let (ours, mut rest) = transform(&ours, rest);
            let mut theirs = first;
            theirs.append(&mut rest);
            (ours, theirs)
        }
    }
}

fn transform_one(ours: &Edit, theirs: &Edit) -> (Vec<Edit>, Vec<Edit>) {
    use Edit::{Delete, Insert};
    match (ours, theirs) {
        (Insert { index: a, text: s }, Insert { index: b, text: t }) => {
            if a <= b {
                (vec![ours.clone()], vec![Insert { index: b + chars(s), text: t.clone() }])
            } else {
                (vec![Insert { index: a + chars(t), text: s.clone() }], vec![theirs.clone()])
            }
        }
        (Insert { index: a, text: s }, Delete { index: b, len: k }) => {
            let (ours, theirs) = insert_vs_delete(*a, s, *b, *k);
            (vec![ours], theirs)
        }
        (Delete { index: a, len: k }, Insert { index: b, text: t }) => {
            let (theirs, ours) = insert_vs_delete(*b, t, *a, *k);
            (ours, vec![theirs])
        }
        (Delete { index: a, len: k }, Delete { index: b, len: m }) => {
            (delete_after(*a, *k, *b, *m), delete_after(*b, *m, *a, *k))
        }
    }
}

/// An insert of `s` at `a` and a concurrent delete of `k` at `b`: returns the insert to apply
/// after the delete, and the delete (possibly in two parts) to apply after the insert.
fn insert_vs_delete(a: usize, s: &str, b: usize, k: usize) -> (Edit, Vec<Edit>) {
    let n = chars(s);
    if a <= b {
        (Edit::Insert { index: a, text: s.to_owned() }, vec![Edit::Delete { index: b + n, len: k }])
    } else if a >= b + k {
        (Edit::Insert { index: a - k, text: s.to_owned() }, vec![Edit::Delete { index: b, len: k }])
    } else {
        // The insert lands inside the deleted range and survives; the delete goes around it.
        let before = a - b;
        (
            Edit::Insert { index: b, text: s.to_owned() },
            vec![
                Edit::Delete { index: b, len: before },
                Edit::Delete { index: b + n, len: k - before },
            ],
        )
    }
}

/// The delete of `len` at `index`, to apply after a concurrent delete of `other_len` at
/// `other`: what the other did not already delete, shifted. Empty if nothing is left.
fn delete_after(index: usize, len: usize, other: usize, other_len: usize) -> Vec<Edit> {
    let overlap = index.max(other)..(index + len).min(other + other_len);
    let overlap = overlap.end.saturating_sub(overlap.start);
    let removed_before = other_len.min(index.saturating_sub(other));
    let len = len - overlap;
    if len == 0 { Vec::new() } else { vec![Edit::Delete { index: index - removed_before, len }] }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}
