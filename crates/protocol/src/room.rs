//! The server's half of the protocol: one document, the clients in it, and the handling of
//! every frame they send. Sans-IO: frames in, messages out, time passed in.

use std::{collections::BTreeMap, collections::VecDeque, time::Duration};

use tandem_document::{Document, NodeId};
use tandem_presence::{Cursor, Fields, Presence, User};

use crate::{
    ClientMessage, CursorView, ErrorCode, RequestId, ServerMessage, UserView,
    ot::{Edit, transform},
};

/// Limits that keep one client from hurting the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest a document may grow, in code points.
    pub max_document_chars: usize,
    /// The longest a title, counter name, user name or colour may be, in code points.
    pub max_field_chars: usize,
    /// How many revisions of history the room keeps to transform late edits against; an edit
    /// made at an older revision is refused as stale.
    pub max_history: usize,
    /// Into how many pieces concurrent inserts may cut one late delete; an edit cut into more
    /// is refused as stale, since applying it would flood every client with changes.
    pub max_pieces: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_document_chars: 10_000_000,
            max_field_chars: 256,
            max_history: 1_000,
            max_pieces: 100,
        }
    }
}

/// What to send after handling a frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Messages for the client that sent the frame, in order.
    pub to_sender: Vec<ServerMessage>,
    /// Messages for every other client of the document, in order.
    pub to_others: Vec<ServerMessage>,
}

/// A message for every client of the document except `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub except: String,
    pub message: ServerMessage,
}

/// A refusal: the error reply to the sender.
struct Refusal(ErrorCode, String);

/// One document and the clients editing it.
///
/// The room is the source of truth. Each text edit arrives tagged with the revision its author
/// had seen; the room transforms it against the edits applied since, applies it to the
/// [`Document`], gives it the next revision, acknowledges it to the sender and broadcasts it to
/// the others, with positions against the revision just before it.
#[derive(Debug)]
pub struct Room {
    id: String,
    document: Document,
    revision: u64,
    /// The text edit of each of the last revisions (`None` for title and counter changes);
    /// the last entry is `revision`.
    history: VecDeque<Option<Edit>>,
    /// The node id under which each client's edits enter the document.
    nodes: BTreeMap<String, NodeId>,
    presence: Presence,
    limits: Limits,
}

impl Room {
    /// An empty document `id`, whose users count as idle after `idle_after` of silence.
    pub fn new(id: &str, limits: Limits, idle_after: Duration) -> Room {
        Room {
            id: id.to_owned(),
            document: Document::new(),
            revision: 0,
            history: VecDeque::new(),
            nodes: BTreeMap::new(),
            presence: Presence::new(idle_after),
            limits,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn document(&self) -> &Document {
        &self.document
    }

    /// Number of clients in the room.
    pub fn clients(&self) -> usize {
        self.presence.users(&self.id).count()
    }

    /// Adds `client`: a welcome with the whole document for it, its presence for the others.
    pub fn join(&mut self, client: &str, now: Duration) -> Reply {
        self.presence.join(&self.id, client, now);
        let users = self
            .presence
            .users(&self.id)
            .filter(|(id, _)| *id != client)
            .map(|(id, user)| view(id, user, now, self.presence.idle_after()))
            .collect();
        let welcome = ServerMessage::Welcome {
            client_id: client.to_owned(),
            doc: self.id.clone(),
            revision: self.revision,
            text: self.document.text(),
            title: self.document.title().to_owned(),
            counters: self
                .document
                .counters()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            users,
        };
        Reply {
            to_sender: vec![welcome],
            to_others: self.presence_of(client, now).into_iter().collect(),
        }
    }

    /// Removes `client`; the others are told it left.
    pub fn leave(&mut self, client: &str) -> Reply {
        let left = self.presence.leave(&self.id, client).is_some();
        let to_others =
            if left { vec![ServerMessage::Leave { client_id: client.to_owned() }] } else { vec![] };
        Reply { to_sender: vec![], to_others }
    }

    /// Handles a binary frame: refused, since the protocol is JSON text.
    pub fn handle_binary(&mut self) -> Reply {
        let message = "binary frames are not supported; send JSON text frames".to_owned();
        error_reply(None, Refusal(ErrorCode::InvalidMessage, message))
    }

    /// Handles one text frame from `client`.
    pub fn handle(&mut self, client: &str, frame: &str, now: Duration) -> Reply {
        let message = match parse(frame) {
            Ok(message) => message,
            Err((id, refusal)) => return error_reply(id, refusal),
        };
        let id = message.id().cloned();
        match self.handle_message(client, message, now) {
            Ok(reply) => reply,
            Err(refusal) => error_reply(id, refusal),
        }
    }

    /// Users who have just gone idle, announced to the others.
    pub fn tick(&mut self, now: Duration) -> Vec<Broadcast> {
        let idle = self.presence.newly_idle(now);
        idle.into_iter()
            .filter_map(|(_, client)| {
                let message = self.presence_of(&client, now)?;
                Some(Broadcast { except: client, message })
            })
            .collect()
    }

    fn handle_message(
        &mut self,
        client: &str,
        message: ClientMessage,
        now: Duration,
    ) -> Result<Reply, Refusal> {
        let max_field = self.limits.max_field_chars;
        match message {
            ClientMessage::Insert { id, revision, index, text } => {
                if text.is_empty() {
                    return Err(Refusal(ErrorCode::InvalidMessage, "insert has empty text".into()));
                }
                let grown = self.document.len().saturating_add(text.chars().count());
                if grown > self.limits.max_document_chars {
                    let limit = self.limits.max_document_chars;
                    let message = format!("the document would grow past {limit} characters");
                    return Err(Refusal(ErrorCode::TooLarge, message));
                }
                self.edit(client, id, revision, Edit::Insert { index, text }, now)
            }
            ClientMessage::Delete { id, revision, index, length } => {
                if length == 0 {
                    return Err(Refusal(ErrorCode::InvalidMessage, "delete has length 0".into()));
                }
                self.edit(client, id, revision, Edit::Delete { index, len: length }, now)
            }
            ClientMessage::SetTitle { id, title } => {
                check_field("title", &title, max_field)?;
                let node = self.node(client);
                self.document.set_title(node, &title).map_err(internal)?;
                let title = self.document.title().to_owned();
                let revision = self.commit(None);
                let change =
                    ServerMessage::SetTitle { client_id: client.to_owned(), revision, title };
                Ok(self.changed(client, id, None, vec![change], now))
            }
            ClientMessage::IncrementCounter { id, name, amount } => {
                check_field("counter name", &name, max_field)?;
                if name.is_empty() {
                    return Err(Refusal(ErrorCode::InvalidMessage, "counter name is empty".into()));
                }
                let node = self.node(client);
                self.document.increment_counter(node, &name, amount).map_err(internal)?;
                let value = self.document.counter(&name);
                let revision = self.commit(None);
                let client_id = client.to_owned();
                let change =
                    ServerMessage::IncrementCounter { client_id, revision, name, amount, value };
                Ok(self.changed(client, id, Some(value), vec![change], now))
            }
            ClientMessage::CursorMove { line, column, .. } => {
                let moved =
                    self.presence.move_cursor(&self.id, client, Cursor::new(line, column), now);
                moved.map_err(|error| Refusal(ErrorCode::InvalidMessage, error.to_string()))?;
                Ok(Reply {
                    to_sender: vec![],
                    to_others: self.presence_of(client, now).into_iter().collect(),
                })
            }
            ClientMessage::PresenceUpdate { name, color, .. } => {
                for (field, value) in [("name", &name), ("color", &color)] {
                    if let Some(value) = value {
                        check_field(field, value, max_field)?;
                    }
                }
                let updated =
                    self.presence.update_fields(&self.id, client, Fields { name, color }, now);
                updated.map_err(|error| Refusal(ErrorCode::InvalidMessage, error.to_string()))?;
                Ok(Reply {
                    to_sender: vec![],
                    to_others: self.presence_of(client, now).into_iter().collect(),
                })
            }
            ClientMessage::Ping { id } => {
                Ok(Reply { to_sender: vec![ServerMessage::Pong { id }], to_others: vec![] })
            }
        }
    }

    /// Applies a text edit made at `revision`: checks it against the text of that revision,
    /// transforms it past the edits applied since, and applies what remains.
    fn edit(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        revision: u64,
        edit: Edit,
        now: Duration,
    ) -> Result<Reply, Refusal> {
        let oldest = self.revision - self.history.len() as u64;
        if revision > self.revision {
            let message =
                format!("revision {revision} is ahead of the document's {}", self.revision);
            return Err(Refusal(ErrorCode::StaleRevision, message));
        }
        if revision < oldest {
            let message =
                format!("revision {revision} is older than the history kept (from {oldest})");
            return Err(Refusal(ErrorCode::StaleRevision, message));
        }
        let since = (revision - oldest) as usize;
        let concurrent: Vec<&Edit> = self.history.iter().skip(since).flatten().collect();
        let len_then =
            concurrent.iter().fold(self.document.len() as isize, |len, edit| len - edit.delta());
        let len_then = len_then.max(0) as usize;
        if !edit.fits(len_then) {
            let (start, end) = match &edit {
                Edit::Insert { index, .. } => (*index, *index),
                Edit::Delete { index, len } => (*index, index.saturating_add(*len)),
            };
            let message = format!(
                "{start}..{end} is outside the text of revision {revision} (length {len_then})"
            );
            return Err(Refusal(ErrorCode::OutOfRange, message));
        }
        let mut edits = vec![edit];
        for other in concurrent {
            edits = transform(&edits, std::slice::from_ref(other)).0;
            if edits.len() > self.limits.max_pieces {
                let message = format!(
                    "revision {revision} is too far behind: concurrent edits cut this one into more than {} pieces",
                    self.limits.max_pieces
                );
                return Err(Refusal(ErrorCode::StaleRevision, message));
            }
        }
        // Every piece must fit before any is applied, so an edit is applied whole or not at all.
        let mut len = self.document.len();
        for edit in &edits {
            if !edit.fits(len) {
                return Err(Refusal(
                    ErrorCode::OutOfRange,
                    "the transformed edit does not fit the text".into(),
                ));
            }
            len = (len as isize + edit.delta()) as usize;
        }
        let node = self.node(client);
        let mut changes = Vec::with_capacity(edits.len());
        for edit in edits {
            let client_id = client.to_owned();
            let change = match &edit {
                Edit::Insert { index, text } => {
                    self.document.insert(node, *index, text).map_err(internal)?;
                    ServerMessage::Insert {
                        client_id,
                        revision: self.revision + 1,
                        index: *index,
                        text: text.clone(),
                    }
                }
                Edit::Delete { index, len } => {
                    self.document.delete(node, *index, *len).map_err(internal)?;
                    ServerMessage::Delete {
                        client_id,
                        revision: self.revision + 1,
                        index: *index,
                        length: *len,
                    }
                }
            };
            self.commit(Some(edit));
            changes.push(change);
        }
        Ok(self.changed(client, id, None, changes, now))
    }

    /// Records a new revision with its text edit, if any, and returns it.
    fn commit(&mut self, edit: Option<Edit>) -> u64 {
        self.revision += 1;
        self.history.push_back(edit);
        while self.history.len() > self.limits.max_history {
            self.history.pop_front();
        }
        self.revision
    }

    /// The reply to an applied change: an ack (with a counter's new `value`) for the sender,
    /// the changes for the others, and the sender's presence if this ended an idle spell.
    fn changed(
        &mut self,
        client: &str,
        id: Option<RequestId>,
        value: Option<i64>,
        mut changes: Vec<ServerMessage>,
        now: Duration,
    ) -> Reply {
        let revision = self.revision;
        let was_idle = self.presence.user(&self.id, client).is_some_and(User::reported_idle);
        let _ = self.presence.touch(&self.id, client, now);
        if was_idle {
            changes.extend(self.presence_of(client, now));
        }
        Reply { to_sender: vec![ServerMessage::Ack { id, revision, value }], to_others: changes }
    }

    fn presence_of(&self, client: &str, now: Duration) -> Option<ServerMessage> {
        let user = self.presence.user(&self.id, client)?;
        Some(ServerMessage::Presence(view(client, user, now, self.presence.idle_after())))
    }

    /// The node id of `client`'s edits, assigned on first use.
    fn node(&mut self, client: &str) -> NodeId {
        let next = NodeId(self.nodes.len() as u64 + 1);
        *self.nodes.entry(client.to_owned()).or_insert(next)
    }
}

fn view(client: &str, user: &User, now: Duration, idle_after: Duration) -> UserView {
    UserView {
        client_id: client.to_owned(),
        name: user.fields.name.clone(),
        color: user.fields.color.clone(),
        cursor: CursorView { line: user.cursor.line, column: user.cursor.column },
        idle: user.is_idle(now, idle_after),
    }
}

/// Decodes a frame: not JSON is `invalid_json`; JSON that is not a message is
/// `invalid_message`, echoing the frame's `id` when it has a usable one.
fn parse(frame: &str) -> Result<ClientMessage, (Option<RequestId>, Refusal)> {
    let value: serde_json::Value = serde_json::from_str(frame).map_err(|error| {
        (None, Refusal(ErrorCode::InvalidJson, format!("not valid JSON: {error}")))
    })?;
    let id = value.get("id").and_then(|id| serde_json::from_value(id.clone()).ok());
    serde_json::from_value(value)
        .map_err(|error| (id, Refusal(ErrorCode::InvalidMessage, error.to_string())))
}

fn check_field(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.chars().count() > max {
        return Err(Refusal(
            ErrorCode::TooLarge,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// A change the document refused after the room's own checks passed; reported, never a panic.
fn internal(error: tandem_document::Error) -> Refusal {
    Refusal(ErrorCode::OutOfRange, error.to_string())
}

fn error_reply(id: Option<RequestId>, Refusal(code, message): Refusal) -> Reply {
    Reply { to_sender: vec![ServerMessage::Error { id, code, message }], to_others: vec![] }
}
