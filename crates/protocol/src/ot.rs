//! Index edits and their transformation: how two concurrent edits are made to commute.
//!
//! `transform(ours, theirs)` takes two edit sequences made on the same text and returns
//! `(ours', theirs')` such that applying `theirs` then `ours'` gives the same text as applying
//! `ours` then `theirs'`. Where both insert at the same index, `ours` goes first (left): a
//! client typing on at its caret stays ahead of what others typed there meanwhile, so runs
//! typed at one place by two people do not interleave.
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

/// The shape of an edit: where it is and how many code points it covers, without its text.
/// Carrying an edit past a concurrent one needs only the other's shape, so a room keeps its
/// history's edits as shapes and never copies their text to transform a late edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Insert { index: usize, len: usize },
    Delete { index: usize, len: usize },
}

impl Edit {
    /// Where the edit is and how many code points it covers.
    pub fn shape(&self) -> Shape {
        match self {
            Edit::Insert { index, text } => Shape::Insert { index: *index, len: chars(text) },
            Edit::Delete { index, len } => Shape::Delete { index: *index, len: *len },
        }
    }
}

impl Shape {
    /// How many code points the edit adds (negative: removes).
    pub fn delta(&self) -> isize {
        match self {
            Shape::Insert { len, .. } => *len as isize,
            Shape::Delete { len, .. } => -(*len as isize),
        }
    }
}

/// What the transform needs of `theirs`: its shape, and how to make it anew at another index
/// or as the deletes it is cut into. Implemented by [`Edit`] (clients, which apply `theirs'`)
/// and by [`Shape`] (the room, which only carries its own edit past the others').
trait Theirs: Clone {
    fn shape(&self) -> Shape;
    /// The same insert, at `index`.
    fn moved(&self, index: usize) -> Self;
    fn delete(index: usize, len: usize) -> Self;
}

impl Theirs for Edit {
    fn shape(&self) -> Shape {
        Edit::shape(self)
    }

    fn moved(&self, index: usize) -> Edit {
        match self {
            Edit::Insert { text, .. } => Edit::Insert { index, text: text.clone() },
            Edit::Delete { len, .. } => Edit::Delete { index, len: *len },
        }
    }

    fn delete(index: usize, len: usize) -> Edit {
        Edit::Delete { index, len }
    }
}

impl Theirs for Shape {
    fn shape(&self) -> Shape {
        *self
    }

    fn moved(&self, index: usize) -> Shape {
        match *self {
            Shape::Insert { len, .. } => Shape::Insert { index, len },
            Shape::Delete { len, .. } => Shape::Delete { index, len },
        }
    }

    fn delete(index: usize, len: usize) -> Shape {
        Shape::Delete { index, len }
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

/// `ours` carried past a concurrent edit of which only the shape is known: the first half of
/// [`transform`], for the room, which has no use for the other half.
pub fn carry(ours: &[Edit], theirs: Shape) -> Vec<Edit> {
    past_one(ours, &theirs).0
}

/// `ours` carried past the single edit `theirs`, and `theirs` carried past all of `ours`.
///
/// `theirs` is held as pieces: one insert (inserts never split), or deletes (a delete is cut
/// only by an insert, and only into deletes), so every step below transforms single edits.
fn past_one<T: Theirs>(ours: &[Edit], theirs: &T) -> (Vec<Edit>, Vec<T>) {
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

fn transform_one<T: Theirs>(ours: &Edit, theirs: &T) -> (Vec<Edit>, Vec<T>) {
    use Edit::{Delete, Insert};
    match (ours, theirs.shape()) {
        (Insert { index: a, text: s }, Shape::Insert { index: b, len: n }) => {
            if *a <= b {
                (vec![ours.clone()], vec![theirs.moved(b + chars(s))])
            } else {
                (vec![Insert { index: a + n, text: s.clone() }], vec![theirs.clone()])
            }
        }
        (Insert { index: a, text: s }, Shape::Delete { index: b, len: k }) => {
            let n = chars(s);
            if *a <= b {
                (vec![ours.clone()], vec![T::delete(b + n, k)])
            } else if *a >= b + k {
                (vec![Insert { index: a - k, text: s.clone() }], vec![theirs.clone()])
            } else {
                // The insert lands inside the deleted range and survives; the delete goes
                // around it.
                let before = a - b;
                let around = vec![T::delete(b, before), T::delete(b + n, k - before)];
                (vec![Insert { index: b, text: s.clone() }], around)
            }
        }
        (Delete { index: a, len: k }, Shape::Insert { index: b, len: n }) => {
            if b <= *a {
                (vec![Delete { index: a + n, len: *k }], vec![theirs.clone()])
            } else if b >= a + k {
                (vec![ours.clone()], vec![theirs.moved(b - k)])
            } else {
                // Their insert lands inside our deleted range and survives; we go around it.
                let before = b - a;
                let around = vec![
                    Delete { index: *a, len: before },
                    Delete { index: a + n, len: k - before },
                ];
                (around, vec![theirs.moved(*a)])
            }
        }
        (Delete { index: a, len: k }, Shape::Delete { index: b, len: m }) => {
            let theirs_after = delete_after(b, m, *a, *k).map(|(index, len)| T::delete(index, len));
            let ours_after = delete_after(*a, *k, b, m).map(|(index, len)| Delete { index, len });
            (ours_after.into_iter().collect(), theirs_after.into_iter().collect())
        }
    }
}

/// The delete of `len` at `index`, to apply after a concurrent delete of `other_len` at
/// `other`: what the other did not already delete, shifted. `None` if nothing is left.
fn delete_after(
    index: usize,
    len: usize,
    other: usize,
    other_len: usize,
) -> Option<(usize, usize)> {
    let overlap = index.max(other)..(index + len).min(other + other_len);
    let overlap = overlap.end.saturating_sub(overlap.start);
    let removed_before = other_len.min(index.saturating_sub(other));
    let len = len - overlap;
    (len > 0).then(|| (index - removed_before, len))
}

fn chars(s: &str) -> usize {
    s.chars().count()
}
