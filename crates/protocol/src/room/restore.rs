//! Rebuilding a room from what was stored, and the snapshot it is rebuilt from.

use std::time::Duration;

use super::{Limits, Room};
use crate::{Change, Error, Logged, RoomSnapshot, TakenSnapshot, text::Text};

impl Room {
    /// Rebuilds a room from its last snapshot and the changes logged after it, which must
    /// follow it revision by revision.
    pub fn restore(
        id: &str,
        limits: Limits,
        idle_after: Duration,
        snapshot: Option<RoomSnapshot>,
        log: Vec<Logged>,
    ) -> Result<Room, Error> {
        let mut room = Room::new(id, limits, idle_after);
        if let Some(snapshot) = snapshot {
            let revision = snapshot.revision;
            room.text = match &snapshot.structure {
                Some(structure) => Text::decode(structure),
                // Stored before texts kept their history: it starts here.
                None => Text::new(&snapshot.text),
            }
            .map_err(|source| Error::Invalid { revision, source })?;
            if room.text.to_string() != snapshot.text {
                let reason = "the structure does not hold the text".to_owned();
                let source = tandem_crdt::Error::Corrupt { reason };
                return Err(Error::Invalid { revision, source });
            }
            room.history_from =
                if snapshot.structure.is_some() { snapshot.history_from } else { revision + 1 };
            room.title = snapshot.title;
            room.revision = snapshot.revision;
            room.requests = snapshot.requests;
            room.counters = snapshot.counters;
        }
        // Entries the snapshot already covers are not replayed; when they run up to it, they
        // refill the history, so clients behind the snapshot can still catch up and be
        // transformed against them.
        let (covered, log): (Vec<Logged>, Vec<Logged>) =
            log.into_iter().partition(|entry| entry.revision <= room.revision);
        let consecutive = covered.windows(2).all(|pair| pair[1].revision == pair[0].revision + 1);
        if consecutive && covered.last().is_some_and(|last| last.revision == room.revision) {
            let skip = covered.len().saturating_sub(room.limits.max_history);
            let covered: Vec<Logged> = covered.into_iter().skip(skip).collect();
            // The lengths before each, worked back from the snapshot's text.
            let mut len = room.text.len() as isize;
            let mut before = vec![0; covered.len()];
            for (at, entry) in covered.iter().enumerate().rev() {
                len -= entry.change.shape().map_or(0, |shape| shape.delta());
                before[at] = len.max(0) as usize;
            }
            for (entry, len_before) in covered.into_iter().zip(before) {
                room.remember(entry, len_before);
            }
        }
        for entry in log {
            if entry.revision != room.revision + 1 {
                return Err(Error::Gap { expected: room.revision + 1, found: entry.revision });
            }
            room.replay(entry)?;
        }
        room.logged.clear();
        Ok(room)
    }

    /// The room's state now, to store as a snapshot.
    pub fn snapshot(&self) -> RoomSnapshot {
        self.take_snapshot().encode()
    }

    /// The room's state now, copied to be encoded later, outside the room's lock.
    pub fn take_snapshot(&self) -> TakenSnapshot {
        TakenSnapshot {
            revision: self.revision,
            title: self.title.clone(),
            counters: self.counters.clone(),
            requests: self.requests.clone(),
            history_from: self.history_from,
            text: self.text.clone(),
        }
    }

    /// Applies a logged change again, as it was applied the first time.
    fn replay(&mut self, entry: Logged) -> Result<(), Error> {
        let Logged { author, request, continued, change, .. } = entry;
        self.commit(&author, request, continued, change).map(drop)
    }
}

/// The text and title after `changes` (in revision order) are applied to `text` and `title`:
/// what a document was at a revision, from a checkpoint before it and the log after that.
pub fn replay(text: &str, title: &str, changes: &[Logged]) -> Result<(String, String), Error> {
    let mut current = Text::new(text).map_err(|source| Error::Invalid { revision: 0, source })?;
    let mut title = title.to_owned();
    for entry in changes {
        let revision = entry.revision;
        let applied = match &entry.change {
            Change::Insert { index, text } => current.insert(*index, text),
            Change::Delete { index, length } => current.delete(*index, *length, revision),
            Change::SetTitle { title: new } => {
                title.clone_from(new);
                Ok(())
            }
            Change::IncrementCounter { .. } => Ok(()),
        };
        applied.map_err(|source| Error::Invalid { revision, source })?;
    }
    Ok((current.to_string(), title))
}
