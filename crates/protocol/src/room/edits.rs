//! What changes the document: one handler per change message, the transform of late text
//! edits past the ones applied since, and the history they are transformed against.

use std::time::Duration;

use super::{Applied, Plan, Room, check_field};
use crate::{
    Change, Error, ErrorCode, LastRequest, Logged, Reply, RequestId, ServerMessage, counters,
    ot::{Edit, carry},
};

/// The refusal of an edit that does not fit the text of its revision.
fn outside(revision: u64, edit: &Edit, len: usize) -> Error {
    let (start, end) = match edit {
        Edit::Insert { index, .. } => (*index, *index),
        Edit::Delete { index, len } => (*index, index.saturating_add(*len)),
    };
    let message =
        format!("{start}..{end} is outside the text of revision {revision} (length {len})");
    Error::refused(ErrorCode::OutOfRange, message)
}

impl Room {
    pub(super) fn handle_insert(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        revision: u64,
        index: usize,
        text: String,
    ) -> Result<Plan, Error> {
        if text.is_empty() {
            return Err(Error::refused(ErrorCode::InvalidMessage, "insert has empty text"));
        }
        let grown = self.text.len().saturating_add(text.chars().count());
        if grown > self.limits.max_document_chars {
            let limit = self.limits.max_document_chars;
            let message = format!("the document would grow past {limit} characters");
            return Err(Error::refused(ErrorCode::TooLarge, message));
        }
        self.edit(client, id, revision, Edit::Insert { index, text })
    }

    pub(super) fn handle_delete(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        revision: u64,
        index: usize,
        length: usize,
    ) -> Result<Plan, Error> {
        if length == 0 {
            return Err(Error::refused(ErrorCode::InvalidMessage, "delete has length 0"));
        }
        self.edit(client, id, revision, Edit::Delete { index, len: length })
    }

    pub(super) fn handle_set_title(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        title: String,
    ) -> Result<Plan, Error> {
        check_field("title", &title, self.limits.max_field_chars)?;
        Ok(self.plan_changes(client, id, vec![Change::SetTitle { title }]))
    }

    pub(super) fn handle_increment_counter(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        name: String,
        amount: i64,
    ) -> Result<Plan, Error> {
        check_field("counter name", &name, self.limits.max_field_chars)?;
        if name.is_empty() {
            return Err(Error::refused(ErrorCode::InvalidMessage, "counter name is empty"));
        }
        let max = self.limits.max_counters;
        let value = self.counters.after(&name, amount, max).map_err(|refused| {
            let message = match refused {
                counters::Refused::TooMany => format!("a document has at most {max} counters"),
                counters::Refused::Overflow => format!("counter {name} would overflow"),
            };
            Error::refused(ErrorCode::TooLarge, message)
        })?;
        let change = Change::IncrementCounter { name, amount, value };
        Ok(self.plan_changes(client, id, vec![change]))
    }

    /// Applies a text edit made at `revision`: checks it against the text of that revision,
    /// carries it past the edits applied since (transformed one by one when the history in
    /// memory reaches back to it, placed by identity when it does not), and applies what
    /// remains, one revision per piece.
    fn edit(
        &self,
        client: &str,
        id: Option<RequestId>,
        revision: u64,
        edit: Edit,
    ) -> Result<Plan, Error> {
        if revision > self.revision {
            let message =
                format!("revision {revision} is ahead of the document's {}", self.revision);
            return Err(Error::refused(ErrorCode::StaleRevision, message));
        }
        let edits = if revision >= self.oldest_revision() {
            self.transform_late(revision, edit)?
        } else {
            self.place_old(revision, edit)?
        };
        if edits.len() > self.limits.max_pieces {
            let message = format!(
                "changes since revision {revision} cut this edit into more than {} pieces; send it in parts",
                self.limits.max_pieces
            );
            return Err(Error::refused(ErrorCode::TooLarge, message));
        }
        // Every piece must fit before any is applied, so an edit is applied whole or not at all.
        let mut len = self.text.len();
        for edit in &edits {
            if !edit.fits(len) {
                let message = "the transformed edit does not fit the text";
                return Err(Error::refused(ErrorCode::OutOfRange, message));
            }
            len = (len as isize + edit.delta()) as usize;
        }
        let changes = edits.iter().map(Change::from_edit).collect();
        Ok(self.plan_changes(client, id, changes))
    }

    /// A plan of `changes` by `client` for its request `id`, against the room as it is.
    fn plan_changes(&self, client: &str, id: Option<RequestId>, changes: Vec<Change>) -> Plan {
        Plan {
            client: client.to_owned(),
            author: client.to_owned(),
            id,
            base: self.revision,
            next_seq: self.text.next_seq(),
            changes,
            restored: None,
        }
    }

    /// Applies a plan: its changes become the next revisions, and the reply says so (an ack
    /// for the sender, the changes for the others; for a restore, the changes and `restored`
    /// for the sender). Refused with [`Error::Stale`] if the room has moved on since it was
    /// planned: plan again.
    pub fn commit_plan(&mut self, plan: Plan, now: Duration) -> Result<Reply, Error> {
        if plan.base != self.revision {
            return Err(Error::Stale { planned: plan.base, now: self.revision });
        }
        let Plan { client, author, id, changes, restored, .. } = plan;
        // A restore is not a change the client keeps in flight: it has no request id.
        let request = if restored.is_some() { None } else { id.clone() };
        for (piece, change) in changes.into_iter().enumerate() {
            // An error is unreachable: a plan is checked against this very text.
            self.commit(&author, request.clone(), piece > 0, change)?;
        }
        let mut reply = match restored {
            Some(label) => {
                let changes: Vec<ServerMessage> = self.logged.iter().map(Logged::message).collect();
                let mut to_others = changes.clone();
                to_others.extend(self.touch(&client, now));
                let restored = ServerMessage::Restored { id, label, revision: self.revision };
                let mut to_sender = changes;
                to_sender.push(restored);
                Reply { to_sender, to_others, ..Reply::default() }
            }
            None => self.changed(&client, id, now),
        };
        reply.logged = std::mem::take(&mut self.logged);
        Ok(reply)
    }

    /// Applies changes another node sequenced (and stored), in revision order from the room's
    /// next: they go to every client here as any change does, but to their author (in the
    /// reply's `to_sender`: dispatch it with the author as the sender) as acks, as a catch-up
    /// would give them. A change that does not follow on, or does not apply exactly as it was
    /// logged, is refused: this room has diverged.
    pub fn apply_remote(&mut self, entries: &[Logged]) -> Result<Reply, Error> {
        if let Err(error) = self.apply_remote_entries(entries) {
            // Diverged: what was applied of them goes to no one.
            self.logged.clear();
            return Err(error);
        }
        let logged = std::mem::take(&mut self.logged);
        let to_others: Vec<ServerMessage> = logged.iter().map(Logged::message).collect();
        let to_sender = match logged.first() {
            Some(first) => crate::catch_up(&first.author, &logged, false),
            None => Vec::new(),
        };
        // Remembered, so that the author resending it (a client that moved here) is not
        // acknowledged twice.
        let acked = to_sender.iter().rev().find_map(|message| match message {
            ServerMessage::Ack { id, .. } => id.clone(),
            _ => None,
        });
        if let (Some(first), Some(acked)) = (logged.first(), acked)
            && let Some(member) = self.members.get_mut(&first.author)
        {
            member.acked_from_log = Some(acked);
        }
        Ok(Reply { to_sender, to_others, ..Reply::default() })
    }

    fn apply_remote_entries(&mut self, entries: &[Logged]) -> Result<(), Error> {
        for entry in entries {
            let revision = self.revision + 1;
            if entry.revision != revision {
                return Err(Error::Gap { expected: revision, found: entry.revision });
            }
            let (request, change) = (entry.request.clone(), entry.change.clone());
            self.commit(&entry.author, request, entry.continued, change)?;
            if self.text.next_seq() != entry.next_seq {
                let reason = format!(
                    "ids run to {} here, {} where it was made",
                    self.text.next_seq(),
                    entry.next_seq
                );
                let source = tandem_crdt::Error::Corrupt { reason };
                return Err(Error::Invalid { revision, source });
            }
        }
        Ok(())
    }

    /// An edit made at `revision`, inside the history in memory, transformed past every change
    /// since, one by one (by their shapes: no text is copied).
    fn transform_late(&self, revision: u64, edit: Edit) -> Result<Vec<Edit>, Error> {
        let since = (revision - self.oldest_revision()) as usize;
        // The length of the text at `revision`: before the first change after it.
        let len_then = self.history.get(since).map_or(self.text.len(), |entry| entry.len_before);
        if !edit.fits(len_then) {
            return Err(outside(revision, &edit, len_then));
        }
        let mut edits = vec![edit];
        for other in self.history.range(since..).filter_map(|entry| entry.shape) {
            edits = carry(&edits, other);
            if edits.len() > self.limits.max_pieces {
                break;
            }
        }
        Ok(edits)
    }

    /// An edit made at `revision`, older than the history in memory, placed by the identity
    /// of the characters it was made among: the same result as transforming it past every
    /// change since, at a cost that follows the document's size rather than the revisions
    /// since. Needs the revision's next character id from the store.
    fn place_old(&self, revision: u64, edit: Edit) -> Result<Vec<Edit>, Error> {
        if revision < self.history_from {
            let message = format!(
                "revision {revision} is from before this document's history was kept (from {})",
                self.history_from
            );
            return Err(Error::refused(ErrorCode::StaleRevision, message));
        }
        let Some(past) = self.past.filter(|past| past.revision == revision) else {
            return Err(Error::NeedsPast { revision });
        };
        self.text
            .place(revision, past.next_seq, &edit)
            .map_err(|outside_then| outside(revision, &edit, outside_then.len))
    }

    /// Plans turning the text into `target` (the text of version `label`), as `client` asked
    /// with request `id` (a client id of no member for a request from outside the room): one
    /// change that everyone sees as ordinary changes (a delete of what differs, then an insert
    /// of what the version has there, the second continuing the first), so nothing of the later
    /// history is lost. Committed, the sender gets the changes too, then `restored`.
    pub fn plan_restore(
        &self,
        client: &str,
        id: Option<RequestId>,
        label: &str,
        target: &str,
    ) -> Plan {
        let current: Vec<char> = self.text.to_string().chars().collect();
        let target: Vec<char> = target.chars().collect();
        let prefix = current.iter().zip(&target).take_while(|(a, b)| a == b).count();
        let suffix = current[prefix..]
            .iter()
            .rev()
            .zip(target[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let removed = current.len() - prefix - suffix;
        let added: String = target[prefix..target.len() - suffix].iter().collect();
        let mut changes = Vec::new();
        if removed > 0 {
            changes.push(Change::Delete { index: prefix, length: removed });
        }
        if !added.is_empty() {
            changes.push(Change::Insert { index: prefix, text: added });
        }
        Plan {
            restored: Some(label.to_owned()),
            author: super::RESTORER.to_owned(),
            ..self.plan_changes(client, id, changes)
        }
    }

    /// [`Room::plan_restore`], committed at once.
    pub fn restore_text(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        label: &str,
        target: &str,
        now: Duration,
    ) -> Reply {
        let plan = self.plan_restore(client, id.clone(), label, target);
        self.commit_plan(plan, now).unwrap_or_else(|error| {
            // Unreachable: the plan was made on this very room.
            Reply::refused(id, ErrorCode::OutOfRange, error.to_string())
        })
    }

    /// Applies `change` to the text (or the title) as the next revision and records it;
    /// returns that revision. Refused, without a trace, if it does not fit the text.
    pub(super) fn commit(
        &mut self,
        author: &str,
        request: Option<RequestId>,
        continued: bool,
        change: Change,
    ) -> Result<u64, Error> {
        let len_before = self.text.len();
        let revision = self.revision + 1;
        let applied = match &change {
            Change::Insert { index, text } => self.text.insert(*index, text),
            Change::Delete { index, length } => self.text.delete(*index, *length, revision),
            Change::SetTitle { title } => {
                self.title.clone_from(title);
                Ok(())
            }
            Change::IncrementCounter { .. } => Ok(()),
        };
        applied.map_err(|source| Error::Invalid { revision, source })?;
        self.revision = revision;
        if let Change::IncrementCounter { name, value, .. } = &change {
            self.counters.set(name, *value);
        }
        let entry = Logged {
            revision: self.revision,
            author: author.to_owned(),
            request,
            continued,
            next_seq: self.text.next_seq(),
            change,
        };
        if let Some(id) = &entry.request {
            let last =
                LastRequest { id: id.clone(), revision: entry.revision, value: entry.value() };
            self.requests.insert(entry.author.clone(), last);
        }
        self.remember(entry.clone(), len_before);
        self.logged.push(entry);
        Ok(self.revision)
    }

    /// Adds the newest change to the history, then drops the oldest ones while the history
    /// holds more than [`super::Limits::max_history`] changes or
    /// [`super::Limits::max_history_bytes`] of text. Each time the history has moved a whole
    /// window on, the clients' last requests older than it are forgotten: a client resuming
    /// from inside the window has heard their acks.
    pub(super) fn remember(&mut self, logged: Logged, len_before: usize) {
        self.history_bytes += logged.change.text_bytes();
        let shape = logged.change.shape();
        self.history.push_back(Applied { logged, shape, len_before });
        while self.history.len() > self.limits.max_history.max(1)
            || (self.history_bytes > self.limits.max_history_bytes && self.history.len() > 1)
        {
            if let Some(dropped) = self.history.pop_front() {
                self.history_bytes -= dropped.logged.change.text_bytes();
            }
        }
        if self.revision.is_multiple_of(self.limits.max_history.max(1) as u64) {
            let oldest = self.oldest_revision();
            self.requests.retain(|_, last| last.revision > oldest);
        }
    }

    /// The reply to a change: an ack for the sender (the ack of the last revision it made, or of
    /// the current revision if it changed nothing), the changes for the others, and the
    /// sender's presence if this activity ended an idle spell.
    fn changed(&mut self, client: &str, id: Option<RequestId>, now: Duration) -> Reply {
        let ack = match self.logged.last() {
            Some(last) => last.ack(),
            None => ServerMessage::Ack { id, revision: self.revision, value: None },
        };
        let mut to_others: Vec<ServerMessage> = self.logged.iter().map(Logged::message).collect();
        to_others.extend(self.touch(client, now));
        Reply { to_sender: vec![ack], to_others, ..Reply::default() }
    }
}
