//! The reference thin client: the client's half of the protocol, as a state machine.
//!
//! It keeps the text, title and counters as the server last confirmed them plus its own
//! unacknowledged changes. At most one change is in flight; later ones wait in a buffer (runs of
//! typing or deleting are merged there). Every incoming change is transformed against the
//! in-flight change and the buffer before it is applied, exactly as docs/protocol.md describes.

use std::collections::{BTreeMap, VecDeque};

use crate::{
    ClientMessage, Counters, Error, ErrorCode, RequestId, ServerMessage, UserView,
    ot::{Edit, transform},
};

/// The longest insert, in code points, a client sends as one message: longer ones go out in
/// pieces. Even at six bytes a code point (JSON's `\u` escapes) a piece stays well under the
/// server's default message limit of 1 MiB.
pub const MAX_INSERT_CHARS: usize = 1 << 16;

/// A local change not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Text edits, applied in order; an in-flight edit may be split in two by a concurrent one.
    Text(Vec<Edit>),
    Title(String),
    Counter {
        name: String,
        amount: i64,
    },
}

/// The client state of one connection to one document.
#[derive(Debug, Clone)]
pub struct ThinClient {
    client_id: String,
    doc: String,
    /// The last revision received (as a change or an ack).
    revision: u64,
    /// The local text: the server's at `revision`, with the local changes applied.
    text: Vec<char>,
    /// Title and counters as the server confirmed them.
    title: String,
    counters: Counters,
    users: BTreeMap<String, UserView>,
    in_flight: Option<(u64, Change)>,
    buffer: VecDeque<Change>,
    next_id: u64,
    /// Set when a text change was refused: the local text has diverged from the server's.
    desynced: bool,
    /// After a resumed reconnect, the revision the missed changes go up to.
    catching_up: Option<u64>,
}

impl ThinClient {
    /// Starts from the server's welcome.
    pub fn new(welcome: ServerMessage) -> Result<ThinClient, Error> {
        let ServerMessage::Welcome { client_id, doc, revision, text, title, counters, users } =
            welcome
        else {
            return Err(Error::NotWelcome);
        };
        Ok(ThinClient {
            client_id,
            doc,
            revision,
            text: text.chars().collect(),
            title,
            counters: counters.into(),
            users: users.into_iter().map(|user| (user.client_id.clone(), user)).collect(),
            in_flight: None,
            buffer: VecDeque::new(),
            next_id: 1,
            desynced: false,
            catching_up: None,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn doc(&self) -> &str {
        &self.doc
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The local text, with the local changes not yet acknowledged.
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The title, showing the latest local change until the server has it.
    pub fn title(&self) -> &str {
        self.pending()
            .rev()
            .find_map(|change| match change {
                Change::Title(title) => Some(title.as_str()),
                _ => None,
            })
            .unwrap_or(&self.title)
    }

    /// A counter's value, with the local increments not yet acknowledged.
    pub fn counter(&self, name: &str) -> i64 {
        let pending: i64 = self
            .pending()
            .filter_map(|change| match change {
                Change::Counter { name: n, amount } if n == name => Some(*amount),
                _ => None,
            })
            .fold(0, i64::saturating_add);
        self.counters.get(name).saturating_add(pending)
    }

    /// The other users of the document.
    pub fn users(&self) -> impl Iterator<Item = &UserView> {
        self.users.values()
    }

    /// Whether every local change has been acknowledged.
    pub fn is_synced(&self) -> bool {
        self.in_flight.is_none() && self.buffer.is_empty()
    }

    /// Inserts `text` at `index` locally; returns the message to send now, if any.
    pub fn insert(&mut self, index: usize, text: &str) -> Result<Option<ClientMessage>, Error> {
        if index > self.text.len() {
            return Err(Error::OutOfRange { start: index, end: index, len: self.text.len() });
        }
        if text.is_empty() {
            return Ok(None);
        }
        let edit = Edit::Insert { index, text: text.to_owned() };
        edit.apply(&mut self.text);
        Ok(self.queue(Change::Text(vec![edit])))
    }

    /// Deletes `len` characters from `index` locally; returns the message to send now, if any.
    pub fn delete(&mut self, index: usize, len: usize) -> Result<Option<ClientMessage>, Error> {
        let end = index.saturating_add(len);
        if end > self.text.len() {
            return Err(Error::OutOfRange { start: index, end, len: self.text.len() });
        }
        if len == 0 {
            return Ok(None);
        }
        let edit = Edit::Delete { index, len };
        edit.apply(&mut self.text);
        Ok(self.queue(Change::Text(vec![edit])))
    }

    /// Sets the title locally; returns the message to send now, if any.
    pub fn set_title(&mut self, title: &str) -> Option<ClientMessage> {
        self.queue(Change::Title(title.to_owned()))
    }

    /// Adds `amount` to a counter locally; returns the message to send now, if any.
    pub fn increment_counter(&mut self, name: &str, amount: i64) -> Option<ClientMessage> {
        self.queue(Change::Counter { name: name.to_owned(), amount })
    }

    /// Takes in one server message; returns the next message to send, if one is due.
    pub fn receive(&mut self, message: ServerMessage) -> Result<Option<ClientMessage>, Error> {
        let next = self.receive_one(message)?;
        Ok(next.or_else(|| self.caught_up()))
    }

    fn receive_one(&mut self, message: ServerMessage) -> Result<Option<ClientMessage>, Error> {
        match message {
            ServerMessage::Ack { id, revision, value } => {
                let change = match self.in_flight.take() {
                    Some((n, change)) if id == Some(RequestId::from(n)) => change,
                    other => {
                        let expected = other.as_ref().map(|(n, _)| *n);
                        self.in_flight = other;
                        return Err(Error::UnexpectedAck { id, expected });
                    }
                };
                match change {
                    Change::Title(title) => self.title = title,
                    Change::Counter { name, amount } => {
                        let confirmed = self.counters.get(&name).saturating_add(amount);
                        self.counters.set(&name, value.unwrap_or(confirmed));
                    }
                    Change::Text(_) => {}
                }
                self.revision = revision;
                return Ok(self.send_next());
            }
            ServerMessage::Error { id, code, message } => {
                let in_flight =
                    self.in_flight.as_ref().is_some_and(|(n, _)| id == Some(RequestId::from(*n)));
                if !in_flight {
                    return Err(Error::Rejected { id, code, message });
                }
                // Not handled, only for now: the change stays in flight, to go out again.
                if matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable) {
                    return Err(Error::RateLimited { id });
                }
                return match self.in_flight.take() {
                    Some((_, Change::Text(_))) => {
                        self.desynced = true;
                        Err(Error::Desynced { id, code, message })
                    }
                    _ => Err(Error::Rejected { id, code, message }),
                };
            }
            ServerMessage::Insert { revision, index, text, .. } => {
                self.remote_edit(Edit::Insert { index, text })?;
                self.revision = revision;
            }
            ServerMessage::Delete { revision, index, length, .. } => {
                self.remote_edit(Edit::Delete { index, len: length })?;
                self.revision = revision;
            }
            ServerMessage::SetTitle { revision, title, .. } => {
                self.title = title;
                self.revision = revision;
            }
            ServerMessage::IncrementCounter { revision, name, value, .. } => {
                self.counters.set(&name, value);
                self.revision = revision;
            }
            ServerMessage::Presence(user) => {
                if user.client_id != self.client_id {
                    self.users.insert(user.client_id.clone(), user);
                }
            }
            ServerMessage::Leave { client_id } => {
                self.users.remove(&client_id);
            }
            // Answers about versions change nothing here: a restore came as changes before.
            ServerMessage::Welcome { .. }
            | ServerMessage::Resumed { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::Version { .. }
            | ServerMessage::Restored { .. } => {}
        }
        Ok(None)
    }

    /// Transforms an incoming edit past the local changes and applies it. An edit that does
    /// not fit the text the server had changes nothing.
    fn remote_edit(&mut self, edit: Edit) -> Result<(), Error> {
        let local: isize = self
            .pending()
            .filter_map(|change| match change {
                Change::Text(edits) => Some(edits.iter().map(Edit::delta).sum::<isize>()),
                _ => None,
            })
            .sum();
        let server_len = (self.text.len() as isize - local).max(0) as usize;
        if !edit.fits(server_len) {
            return Err(Error::Diverged);
        }
        let mut theirs = vec![edit];
        let local =
            self.in_flight.iter_mut().map(|(_, change)| change).chain(self.buffer.iter_mut());
        for change in local {
            if let Change::Text(ours) = change {
                let (ours_after, theirs_after) = transform(ours, &theirs);
                *ours = ours_after;
                theirs = theirs_after;
            }
        }
        for edit in &theirs {
            if !edit.apply(&mut self.text) {
                return Err(Error::Diverged);
            }
        }
        Ok(())
    }

    /// Buffers a local change, merging it into the last one where it continues it, and sends
    /// it if nothing is in flight.
    fn queue(&mut self, change: Change) -> Option<ClientMessage> {
        if let (Some(Change::Text(last)), Change::Text(new)) = (self.buffer.back_mut(), &change)
            && let ([previous], [next]) = (last.as_mut_slice(), new.as_slice())
            && let Some(merged) = merge(previous, next)
        {
            *previous = merged;
            return self.send_next();
        }
        self.buffer.push_back(change);
        self.send_next()
    }

    /// The next message to send, if one is due: after [`Error::Rejected`] for a title or
    /// counter change, this sends what was waiting behind it.
    pub fn poll_send(&mut self) -> Option<ClientMessage> {
        self.send_next()
    }

    /// Sends the next buffered change if nothing is in flight. A desynced session sends
    /// nothing: its edits stay local, to be reported as lost after the reconnect's welcome.
    fn send_next(&mut self) -> Option<ClientMessage> {
        if self.in_flight.is_some() || self.catching_up.is_some() || self.desynced {
            return None;
        }
        let change = self.buffer.pop_front()?;
        let n = self.next_id;
        self.next_id += 1;
        self.put_in_flight(n, change).or_else(|| self.send_next())
    }

    /// Makes `change` the one in flight under request `n`, and returns its message; `None` if
    /// concurrent edits cancelled it. A text change split by a concurrent edit goes out one
    /// edit at a time, and an insert longer than [`MAX_INSERT_CHARS`] in pieces of that size,
    /// so that no message comes near the server's size limit.
    fn put_in_flight(&mut self, n: u64, mut change: Change) -> Option<ClientMessage> {
        if let Change::Text(edits) = &mut change
            && edits.len() > 1
        {
            let rest = edits.split_off(1);
            self.buffer.push_front(Change::Text(rest));
        }
        if let Change::Text(edits) = &mut change
            && let Some(Edit::Insert { index, text }) = edits.first_mut()
            && let Some((cut, _)) = text.char_indices().nth(MAX_INSERT_CHARS)
        {
            let rest = text.split_off(cut);
            let at = *index + MAX_INSERT_CHARS;
            self.buffer.push_front(Change::Text(vec![Edit::Insert { index: at, text: rest }]));
        }
        let (id, revision) = (Some(RequestId::from(n)), self.revision);
        let message = match &change {
            Change::Text(edits) => match edits.first()? {
                Edit::Insert { index, text } => {
                    ClientMessage::Insert { id, revision, index: *index, text: text.clone() }
                }
                Edit::Delete { index, len } => {
                    ClientMessage::Delete { id, revision, index: *index, length: *len }
                }
            },
            Change::Title(title) => ClientMessage::SetTitle { id, title: title.clone() },
            Change::Counter { name, amount } => {
                ClientMessage::IncrementCounter { id, name: name.clone(), amount: *amount }
            }
        };
        self.in_flight = Some((n, change));
        Some(message)
    }

    /// The path to reconnect with: the same document, client id and revision.
    pub fn resume_path(&self) -> String {
        format!("/ws/{}?client={}&since={}", self.doc, self.client_id, self.revision)
    }

    /// Takes the first message after a reconnect through [`ThinClient::resume_path`].
    ///
    /// After `resumed`, the missed changes follow (the client's own as acks); once they are
    /// in, the change still in flight is sent again, with the same request id. After a full
    /// `welcome` (the server's history no longer reached back), the client starts from it, and
    /// its unacknowledged changes, which cannot be placed any more, are reported lost.
    pub fn reconnected(&mut self, first: ServerMessage) -> Result<Option<ClientMessage>, Error> {
        match first {
            ServerMessage::Resumed { revision, head, users, .. } => {
                if revision != self.revision {
                    return Err(Error::Diverged);
                }
                self.users = users.into_iter().map(|user| (user.client_id.clone(), user)).collect();
                self.catching_up = Some(head);
                Ok(self.caught_up())
            }
            welcome @ ServerMessage::Welcome { .. } => {
                let lost = self.pending().count();
                let next_id = self.next_id;
                *self = ThinClient::new(welcome)?;
                self.next_id = next_id;
                if lost > 0 { Err(Error::Lost { changes: lost }) } else { Ok(None) }
            }
            _ => Err(Error::NotWelcome),
        }
    }

    /// Ends the catch-up once the client is at the revision the server had when it resumed:
    /// the change still in flight was not applied, so it goes out again.
    fn caught_up(&mut self) -> Option<ClientMessage> {
        let head = self.catching_up?;
        if self.revision < head {
            return None;
        }
        self.catching_up = None;
        self.resend()
    }

    /// The change in flight once more, against the current revision (the remote changes
    /// received since have been transformed into it), after [`Error::RateLimited`].
    /// `None` while catching up after a reconnect, or with nothing to send.
    pub fn resend(&mut self) -> Option<ClientMessage> {
        if self.catching_up.is_some() || self.desynced {
            return None;
        }
        match self.in_flight.take() {
            Some((n, change)) => self.put_in_flight(n, change).or_else(|| self.send_next()),
            None => self.send_next(),
        }
    }

    fn pending(&self) -> impl DoubleEndedIterator<Item = &Change> {
        self.in_flight.iter().map(|(_, change)| change).chain(self.buffer.iter())
    }
}

/// One edit that does what `previous` then `next` do, when `next` continues `previous`:
/// typing on at the end of an insert, or deleting on either side of a delete.
fn merge(previous: &Edit, next: &Edit) -> Option<Edit> {
    match (previous, next) {
        (Edit::Insert { index, text }, Edit::Insert { index: at, text: more })
            if *at == index + text.chars().count() =>
        {
            Some(Edit::Insert { index: *index, text: format!("{text}{more}") })
        }
        (Edit::Delete { index, len }, Edit::Delete { index: at, len: more })
            if *at == *index || at + more == *index =>
        {
            Some(Edit::Delete { index: (*at).min(*index), len: len + more })
        }
        _ => None,
    }
}
