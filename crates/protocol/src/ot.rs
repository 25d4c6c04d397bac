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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    /// Whether the edit fits a text of `len` code points.
    pub fn fits(&self, len: usize) -> bool {
        match self {
            Edit::Insert { index, .. } => *index <= len,
            Edit::Delete { index, len: n } => index.checked_add(*n).is_some_and(|end| end <= len),
        }
    }

    /// Applies the edit to `text`; false (and no change) if it does not fit.
    pub fn apply(&self, text: &mut Vec<char>) -> bool {
        if !self.fits(text.len()) {
            return false;
        }
        match self {
            Edit::Insert { index, text: inserted } => {
                text.splice(*index..*index, inserted.chars());
            }
            Edit::Delete { index, len } => {
                text.drain(*index..*index + *len);
            }
        }
        true
    }
}

/// Transforms two concurrent edit sequences against each other (see the module docs).
///
/// Iterative and quadratic at worst: `theirs` is taken one edit at a time, and each edit is
/// carried past every edit of `ours`. Inserts never split; a delete splits only around an insert.
pub fn transform(ours: &[Edit], theirs: &[Edit]) -> (Vec<Edit>, Vec<Edit>) {
    let mut ours = ours.to_vec();
    let mut theirs_after = Vec::with_capacity(theirs.len());
    for edit in theirs {
        let (ours_next, pieces) = past_one(&ours, edit);
        ours = ours_next;
        theirs_after.extend(pieces);
    }
    (ours, theirs_after)
}

/// `ours` carried past the single edit `theirs`, and `theirs` carried past all of `ours`.
///
/// `theirs` is held as pieces: one insert (inserts never split), or deletes (a delete is cut
/// only by an insert, and only into deletes), so every step below transforms single edits.
fn past_one(ours: &[Edit], theirs: &Edit) -> (Vec<Edit>, Vec<Edit>) {
    let mut ours_after = Vec::with_capacity(ours.len() + 1);
    let mut pieces = vec![theirs.clone()];
    for edit in ours {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        match edit {
            Edit::Insert { .. } => {
                // The insert stays one edit while it goes past each piece in turn.
                let mut insert = edit.clone();
                for piece in &pieces {
                    let (mut moved, piece_after) = transform_one(&insert, piece);
                    insert = moved.pop().unwrap_or(insert);
                    next.extend(piece_after);
                }
                ours_after.push(insert);
            }
            Edit::Delete { .. } => {
                // Against an insert the delete may split; against deletes it only shrinks.
                let mut delete = vec![edit.clone()];
                for piece in &pieces {
                    let (delete_after, piece_after) = match delete.as_slice() {
                        [] => (Vec::new(), vec![piece.clone()]),
                        [single] => transform_one(single, piece),
                        several => {
                            // The parts are deletes, so the piece carried past them stays at most
                            // one edit (it can only shrink or vanish).
                            let mut parts = Vec::with_capacity(several.len() + 1);
                            let mut carried = Some(piece.clone());
                            for part in several {
                                match &carried {
                                    Some(current) => {
                                        let (part_after, moved) = transform_one(part, current);
                                        parts.extend(part_after);
                                        carried = moved.into_iter().next();
                                    }
                                    None => parts.push(part.clone()),
                                }
                            }
                            (parts, carried.into_iter().collect())
                        }
                    };
                    delete = delete_after;
                    next.extend(piece_after);
                }
                ours_after.extend(delete);
            }
        }
        pieces = next;
    }
    (ours_after, pieces)
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
