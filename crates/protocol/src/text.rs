//! The room's copy of the text: an RGA that keeps every character it ever held, and when each
//! deleted one was deleted, so that an edit made at any old revision can be placed where its
//! author meant it.
//!
//! The room is the only writer of its text (clients send index-based edits, which the room
//! sequences), so every character takes its id from one node, in order: the ids say which
//! characters existed at a revision (those below the next id of that revision) and, with the
//! deletions kept here, which were still visible. Deleted characters keep no text: a deleted
//! run costs its ids and one entry here, whatever its length.
//!
//! [`Text::place`] carries an edit made at an old revision to the text now, with exactly the
//! result of transforming it past every change since, one by one (see `ot.rs`), in one pass
//! over the runs: its cost follows the size of the document (runs and deletions), not the
//! number of revisions since.

use std::{collections::BTreeMap, io::Read};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
use tandem_crdt::{Error, Id, NodeId, Rga, RgaOp};

use crate::ot::Edit;

/// The node every character of a room's text is inserted by.
const NODE: NodeId = NodeId(0);

/// The format byte of [`Text::encode`].
const FORMAT: u8 = 1;

/// A run of characters deleted by one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Deleted {
    len: u64,
    /// The revision whose change deleted them.
    revision: u64,
    /// The next id's sequence number at that revision: characters below it existed then.
    next_seq: u64,
}

/// A room's text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Text {
    rga: Rga,
    /// Every deleted run, by the sequence number of its first character.
    deleted: BTreeMap<u64, Deleted>,
}

/// Why an edit cannot be placed: it does not fit the text of its revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outside {
    /// The length of the text at that revision.
    pub(crate) len: usize,
}

impl Text {
    /// A text holding `initial`, with no history (a document stored before texts kept theirs).
    pub(crate) fn new(initial: &str) -> Result<Text, Error> {
        let mut text = Text::default();
        if !initial.is_empty() {
            text.insert(0, initial)?;
        }
        Ok(text)
    }

    /// Number of code points.
    pub(crate) fn len(&self) -> usize {
        self.rga.len()
    }

    /// Number of bytes in UTF-8.
    pub(crate) fn len_bytes(&self) -> usize {
        self.rga.len_bytes()
    }

    /// Number of runs the RGA stores, and of deleted runs remembered: memory grows with these.
    pub(crate) fn runs(&self) -> usize {
        self.rga.span_count() + self.deleted.len()
    }

    /// The sequence number the next inserted character takes: every character below it exists.
    pub(crate) fn next_seq(&self) -> u64 {
        self.rga.max_seq() + 1
    }

    pub(crate) fn insert(&mut self, index: usize, text: &str) -> Result<(), Error> {
        let id: Id = self.rga.next_id(NODE);
        self.rga.insert(index, text, id).map(drop)
    }

    /// Deletes `len` code points at `index`, by the change of `revision`.
    pub(crate) fn delete(&mut self, index: usize, len: usize, revision: u64) -> Result<(), Error> {
        let next_seq = self.next_seq();
        for op in self.rga.delete(index, len)? {
            if let RgaOp::Delete { target } = op {
                let deleted = Deleted { len: target.len, revision, next_seq };
                self.deleted.insert(target.start.seq, deleted);
            }
        }
        Ok(())
    }

    /// The whole state, ids and deletions included, as bytes for [`Text::decode`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        use std::io::Write;
        let rga = self.rga.encode();
        let deleted: Vec<(u64, u64, u64, u64)> = self
            .deleted
            .iter()
            .map(|(seq, run)| (*seq, run.len, run.revision, run.next_seq))
            .collect();
        let packed = postcard::to_allocvec(&deleted).expect("numbers always serialize");
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&packed).expect("writing to memory cannot fail");
        let deflated = encoder.finish().expect("writing to memory cannot fail");
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&(rga.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&rga);
        bytes.extend_from_slice(&deflated);
        bytes
    }

    /// Reads back [`Text::encode`]'s bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Text, Error> {
        let corrupt = |reason: &str| Error::Corrupt { reason: reason.to_owned() };
        let Some((&FORMAT, rest)) = bytes.split_first() else {
            return Err(corrupt("unknown text format"));
        };
        let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("truncated"))?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| corrupt("too long"))?;
        if len > rest.len() {
            return Err(corrupt("truncated"));
        }
        let (rga, deflated) = rest.split_at(len);
        // The snapshot was written by a room, in its own order: no need to integrate again.
        let rga = Rga::decode_in_order(rga)?;
        let mut packed = Vec::new();
        DeflateDecoder::new(deflated)
            .read_to_end(&mut packed)
            .map_err(|_| corrupt("the deletions do not inflate"))?;
        let deleted: Vec<(u64, u64, u64, u64)> =
            postcard::from_bytes(&packed).map_err(|_| corrupt("the deletions do not parse"))?;
        let deleted = deleted
            .into_iter()
            .map(|(seq, len, revision, next_seq)| (seq, Deleted { len, revision, next_seq }))
            .collect();
        Ok(Text { rga, deleted })
    }

    /// Carries `edit`, made on the text of `revision` (when the next id's sequence number was
    /// `next_seq`), to the text now: the edits to apply, in order, with exactly the result of
    /// transforming it past every change since. Refused if it does not fit the text of its
    /// revision.
    ///
    /// A delete removes the characters it covered that are still there. An insert goes where
    /// the transform puts it: right after the character before it, and when that one is
    /// deleted, right after the character that was visible before that one at the time, and so
    /// on; before everything inserted at its place later.
    pub(crate) fn place(
        &self,
        revision: u64,
        next_seq: u64,
        edit: &Edit,
    ) -> Result<Vec<Edit>, Outside> {
        let segments = self.segments();
        let then = |segment: &Segment| segment.visible_at(revision, next_seq);
        match edit {
            Edit::Insert { index, text } => {
                let at = if *index == 0 {
                    0
                } else {
                    let (k, offset) = nth(&segments, *index - 1, then)
                        .ok_or(Outside { len: count(&segments, then) })?;
                    after(&segments, k, offset)
                };
                Ok(vec![Edit::Insert { index: at, text: text.clone() }])
            }
            Edit::Delete { index, len } => {
                let end = index
                    .checked_add(*len)
                    .ok_or_else(|| Outside { len: count(&segments, then) })?;
                // The characters it covered, found in one pass, as ranges of the text now.
                let mut ranges: Vec<(usize, usize)> = Vec::new();
                let mut seen = 0;
                for segment in &segments {
                    if seen >= end {
                        break;
                    }
                    let visible = then(segment);
                    let (from, to) = (seen.max(*index), (seen + visible).min(end));
                    if from < to && segment.now.is_none() {
                        let start = segment.before_now + (from - seen);
                        match ranges.last_mut() {
                            Some(last) if last.0 + last.1 == start => last.1 += to - from,
                            _ => ranges.push((start, to - from)),
                        }
                    }
                    seen += visible;
                }
                if seen < end {
                    return Err(Outside { len: count(&segments, then) });
                }
                // Left to right, each after the ones before it are gone.
                let mut removed = 0;
                Ok(ranges
                    .into_iter()
                    .map(|(start, len)| {
                        let edit = Edit::Delete { index: start - removed, len };
                        removed += len;
                        edit
                    })
                    .collect())
            }
        }
    }

    /// The characters in text order, tombstones included, as segments that are alike
    /// throughout: consecutive ids, all visible now or all deleted by one change.
    fn segments(&self) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut before_now = 0;
        for (id, len, deleted) in self.rga.id_runs() {
            let (start, end) = (id.seq, id.seq + len as u64);
            if !deleted {
                segments.push(Segment { seq: start, len: len as u64, now: None, before_now });
                before_now += len;
                continue;
            }
            // The deleted runs that cover this one: the one holding its first character, and
            // those starting inside it.
            let first = self.deleted.range(..=start).next_back();
            let inside = self.deleted.range(start + 1..end);
            for (&seq, run) in first.into_iter().chain(inside) {
                let (from, to) = (seq.max(start), (seq + run.len).min(end));
                if from < to {
                    segments.push(Segment {
                        seq: from,
                        len: to - from,
                        now: Some(*run),
                        before_now,
                    });
                }
            }
        }
        segments
    }
}

/// Characters alike throughout (see [`Text::segments`]).
#[derive(Clone, Copy, Debug)]
struct Segment {
    /// The first character's sequence number; the others follow it.
    seq: u64,
    len: u64,
    /// `None` if visible now, else the change that deleted them.
    now: Option<Deleted>,
    /// How many characters visible now come before it.
    before_now: usize,
}

impl Segment {
    /// How many of its characters were visible at `revision`, when the next sequence number
    /// was `next_seq` (they are the first ones: ids grow along a segment).
    fn visible_at(&self, revision: u64, next_seq: u64) -> usize {
        if self.now.is_some_and(|deleted| deleted.revision <= revision) {
            return 0;
        }
        next_seq.saturating_sub(self.seq).min(self.len) as usize
    }
}

/// How many characters `visible` counts.
fn count(segments: &[Segment], visible: impl Fn(&Segment) -> usize) -> usize {
    segments.iter().map(visible).sum()
}

/// The segment and offset of the `n`th character (from 0) that `visible` counts.
fn nth(
    segments: &[Segment],
    mut n: usize,
    visible: impl Fn(&Segment) -> usize,
) -> Option<(usize, usize)> {
    for (k, segment) in segments.iter().enumerate() {
        let here = visible(segment);
        if n < here {
            return Some((k, n));
        }
        n -= here;
    }
    None
}

/// Where an insert typed right after character `offset` of segment `k` goes now: right after
/// it if it is still there; if it was deleted, right after the character that was visible
/// before it when it went, and so on.
fn after(segments: &[Segment], mut k: usize, mut offset: usize) -> usize {
    loop {
        let segment = &segments[k];
        let Some(deleted) = segment.now else {
            return segment.before_now + offset + 1;
        };
        // The nearest character to the left that existed when this one was deleted and was
        // still visible after that change.
        let (mut j, mut below) = (k, offset);
        let found = loop {
            let candidate = &segments[j];
            let alive = candidate.now.is_none_or(|other| other.revision > deleted.revision);
            let existed = deleted.next_seq.saturating_sub(candidate.seq).min(below as u64);
            if alive && existed > 0 {
                break Some((j, existed as usize - 1));
            }
            if j == 0 {
                break None;
            }
            j -= 1;
            below = segments[j].len as usize;
        };
        match found {
            Some((j, at)) => (k, offset) = (j, at),
            None => return 0,
        }
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.rga.fmt(f)
    }
}
