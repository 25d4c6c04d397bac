//! The server's half of the protocol: one document, the clients in it, and the handling of
//! every frame they send. Sans-IO: frames in, messages out, time passed in.
//!
//! The room is split by concern: who is in it (`members.rs`: joining, resuming, leaving,
//! presence), what changes it (`edits.rs`: one handler per change message, the transform of
//! late edits, the history), and how it is rebuilt (`restore.rs`). This file holds the state,
//! the frame dispatch and the reply type.

mod edits;
mod members;
mod restore;

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use tandem_presence::Presence;

use crate::{
    Change, ClientMessage, Counters, Error, ErrorCode, LastRequest, Logged, RequestId,
    ServerMessage, text::Text,
};

pub use members::Seat;
pub use restore::replay;

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
    /// How many bytes of inserted text the history may hold: the oldest changes are dropped
    /// first, so a few huge inserts shorten the history rather than fill memory.
    pub max_history_bytes: usize,
    /// How many named counters a document may have.
    pub max_counters: usize,
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
            max_history_bytes: 16 << 20,
            max_counters: 100,
            max_pieces: 100,
        }
    }
}

/// What to send after handling a frame, and what to persist before sending it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Messages for the client that sent the frame, in order.
    pub to_sender: Vec<ServerMessage>,
    /// Messages for every other client of the document, in order.
    pub to_others: Vec<ServerMessage>,
    /// The changes applied, to be stored durably before any of the messages is sent.
    pub logged: Vec<Logged>,
    /// Set when the frame was not handled because it is an edit made at this revision, older
    /// than the history in memory: nothing else is in the reply. Read that revision's
    /// [`Logged::next_seq`] from the store and hand the frame to [`Room::handle_with`].
    pub needs_past: Option<u64>,
    /// A named version to save or restore, which the caller does with the store (see
    /// [`VersionRequest`]); nothing else is in the reply.
    pub version: Option<VersionRequest>,
}

/// What a `save_version` or `restore_version` asks of the caller, who keeps the versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionRequest {
    /// Save the revision the document is at now as `label` (refused if the label exists),
    /// then answer with `version`.
    Save { id: Option<RequestId>, label: String, revision: u64 },
    /// Read the text of version `label` and hand it to [`Room::restore_text`].
    Restore { id: Option<RequestId>, label: String },
}

impl Reply {
    /// Nothing to send.
    pub fn none() -> Reply {
        Reply::default()
    }

    /// Nothing handled yet: the frame needs revision `revision`'s next character id.
    fn asking_past(revision: u64) -> Reply {
        Reply { needs_past: Some(revision), ..Reply::default() }
    }

    /// One message for the sender.
    pub fn to_sender(message: ServerMessage) -> Reply {
        Reply { to_sender: vec![message], ..Reply::default() }
    }

    /// Messages for everyone else.
    pub fn to_others(messages: impl IntoIterator<Item = ServerMessage>) -> Reply {
        Reply { to_others: messages.into_iter().collect(), ..Reply::default() }
    }

    /// The `error` that answers a refused frame whose request id was `id`.
    pub fn refused(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::to_sender(ServerMessage::Error { id, code, message: message.into() })
    }

    /// The answer to an error from a handler: a refusal as an `error` for the sender; any other
    /// error (the text refusing what the room's checks let through) as `out_of_range`.
    fn from_error(id: Option<RequestId>, error: Error) -> Reply {
        match error {
            Error::Refused { code, message } => Reply::refused(id, code, message),
            Error::NeedsPast { revision } => Reply::asking_past(revision),
            other => Reply::refused(id, ErrorCode::OutOfRange, other.to_string()),
        }
    }
}

/// What a room holds that could grow with use: see [`Room::footprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub history_entries: usize,
    pub history_bytes: usize,
    pub text_runs: usize,
    pub requests: usize,
}

/// A change in the history, with what transforming a late edit past it needs: its edit's
/// shape (no text to copy) and the length of the text before it.
#[derive(Debug)]
struct Applied {
    logged: Logged,
    shape: Option<crate::ot::Shape>,
    len_before: usize,
}

/// The changes a frame makes, worked out against the room as it is (at revision
/// [`Plan::base`]) and not yet applied: [`Room::commit_plan`] applies them. A caller that must
/// have them stored elsewhere first (the cluster's log) stores [`Plan::logged`], then commits;
/// a room that moved on meanwhile refuses the plan, and the frame is planned again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    client: String,
    /// Whom the log names as the changes' author: the client, or for a restore
    /// [`RESTORER`], so that nobody takes a restore's changes for its own.
    author: String,
    id: Option<RequestId>,
    base: u64,
    /// The text's next character id at `base`.
    next_seq: u64,
    /// One per revision; a later piece continues the one before.
    changes: Vec<Change>,
    /// For a restore: the version's label, for the sender's `restored`.
    restored: Option<String>,
}

impl Plan {
    /// The revision the plan was made at.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The client whose change it is, and the id of its request.
    pub fn request(&self) -> (&str, Option<&RequestId>) {
        (&self.client, self.id.as_ref())
    }

    /// Whether it changes nothing (a delete of what others deleted first, say): it is still
    /// committed, for its ack.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes as committing the plan logs them.
    pub fn logged(&self) -> Vec<Logged> {
        let mut next_seq = self.next_seq;
        let request = if self.restored.is_some() { None } else { self.id.clone() };
        self.changes
            .iter()
            .enumerate()
            .map(|(piece, change)| {
                if let Change::Insert { text, .. } = change {
                    next_seq += text.chars().count() as u64;
                }
                Logged {
                    revision: self.base + piece as u64 + 1,
                    author: self.author.clone(),
                    request: request.clone(),
                    continued: piece > 0,
                    next_seq,
                    change: change.clone(),
                }
            })
            .collect()
    }
}

/// The author the log names for a version's restore: not a client id (those have no `:`), so
/// that no client, catching up after a reconnect, takes the restore's changes for its own (and
/// waits for acks of them): everyone gets them as changes.
pub const RESTORER: &str = ":version";

/// What planning a frame gives ([`Room::plan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Nothing to store: the reply is all (a refusal, presence, a pong, a repeated ack...).
    Reply(Reply),
    /// Changes to store and commit.
    Plan(Plan),
}

/// What placing an edit made at an old revision needs from the store: that revision's next
/// character id ([`Logged::next_seq`] of its change; 1 for revision 0 of a document).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Past {
    pub revision: u64,
    pub next_seq: u64,
}

/// How a client comes back ([`Room::resume`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// The whole reply: `resumed`, then the changes missed, from the history in memory.
    Reply(Reply),
    /// The history in memory does not reach back far enough. The reply holds `resumed` (and
    /// the client's presence for the others); the changes of revisions after `since` up to
    /// `until` come next, from the store, as [`crate::catch_up`] makes them (with
    /// `continued_after` for the last of them), and then `tail`, the changes in memory.
    FromStore {
        reply: Reply,
        since: u64,
        until: u64,
        continued_after: bool,
        tail: Vec<ServerMessage>,
    },
}

/// A message for every client of the document except `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub except: String,
    pub message: ServerMessage,
}

/// One document and the clients editing it.
///
/// The room is the source of truth. Each text edit arrives tagged with the revision its author
/// had seen; the room transforms it against the edits applied since, applies it to its text,
/// gives it the next revision, acknowledges it to the sender and broadcasts it to
/// the others, with positions against the revision just before it. Every applied change is
/// also handed out in [`Reply::logged`], so that the caller can store it before telling anyone.
///
/// The room also owns who is in the document: each member's client id, the connection that
/// reaches it (the caller's number for it) and what it may do. A client id is in a room at
/// most once.
#[derive(Debug)]
pub struct Room {
    id: String,
    text: Text,
    title: String,
    revision: u64,
    /// The changes of the last revisions, the newest last (its revision is `revision`).
    history: VecDeque<Applied>,
    /// The bytes of text the history holds, kept under [`Limits::max_history_bytes`].
    history_bytes: usize,
    counters: Counters,
    limits: Limits,
    /// The clients in the room.
    members: BTreeMap<String, members::Member>,
    /// Cursors, names and activity of the members.
    presence: Presence,
    /// Each client's last request that changed something, to acknowledge a resend again.
    requests: BTreeMap<String, LastRequest>,
    /// Changes applied while handling the current frame.
    logged: Vec<Logged>,
    /// The first revision the text's history reaches back to (above 0 only for a document
    /// stored before texts kept their history).
    history_from: u64,
    /// While [`Room::handle_with`] runs: what the store said of an old revision.
    past: Option<Past>,
}

impl Room {
    /// An empty document `id`, whose users count as idle after `idle_after` of silence.
    pub fn new(id: &str, limits: Limits, idle_after: Duration) -> Room {
        Room {
            id: id.to_owned(),
            text: Text::default(),
            title: String::new(),
            revision: 0,
            history: VecDeque::new(),
            history_bytes: 0,
            counters: Counters::default(),
            limits,
            members: BTreeMap::new(),
            presence: Presence::new(idle_after),
            requests: BTreeMap::new(),
            logged: Vec::new(),
            history_from: 0,
            past: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The oldest revision the history reaches back to: an edit made at it or later can be
    /// transformed, and a client that saw it can resume.
    pub fn oldest_revision(&self) -> u64 {
        self.revision - self.history.len() as u64
    }

    /// The text now.
    pub fn text(&self) -> String {
        self.text.to_string()
    }

    /// The length of the text, in code points.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.len() == 0
    }

    /// About how many bytes a welcome to this room takes: its text and title in UTF-8, and a
    /// little for the rest (users and counters are bounded in number and size).
    pub fn welcome_bytes(&self) -> usize {
        self.text.len_bytes() + self.title.len() + 256 * (self.members.len() + self.counters.len())
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// The value of counter `name` (0 if it was never incremented).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name)
    }

    /// What the room holds in memory that grows with use rather than with the text: the
    /// history's entries and bytes, the runs of the text's RGA, and the clients remembered
    /// for their last request. Each stays bounded, whatever is typed and deleted.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            history_entries: self.history.len(),
            history_bytes: self.history_bytes,
            text_runs: self.text.runs(),
            requests: self.requests.len(),
        }
    }

    /// Handles a binary frame: refused, since the protocol is JSON text.
    pub fn handle_binary(&mut self) -> Reply {
        let message = "binary frames are not supported; send JSON text frames";
        Reply::refused(None, ErrorCode::InvalidMessage, message)
    }

    /// Handles one text frame from `client`.
    pub fn handle(&mut self, client: &str, frame: &str, now: Duration) -> Reply {
        self.handle_typed(client, frame, now).1
    }

    /// Handles a frame again, with what the store said of an old revision, after
    /// [`Reply::needs_past`] asked for it.
    pub fn handle_with(
        &mut self,
        client: &str,
        frame: &str,
        past: Past,
        now: Duration,
    ) -> (Option<&'static str>, Reply) {
        self.past = Some(past);
        let handled = self.handle_typed(client, frame, now);
        self.past = None;
        handled
    }

    /// Handles one text frame from `client`, and says what type of message it was (`None`
    /// when it was not one), for the caller's counts: [`Room::plan`], with any plan committed
    /// at once.
    pub fn handle_typed(
        &mut self,
        client: &str,
        frame: &str,
        now: Duration,
    ) -> (Option<&'static str>, Reply) {
        let (kind, planned) = self.plan(client, frame, now);
        let reply = match planned {
            Planned::Reply(reply) => reply,
            // The plan was made on this room just now.
            Planned::Plan(plan) => self.commit_plan(plan, now).unwrap_or_else(|error| {
                Reply::refused(None, ErrorCode::OutOfRange, error.to_string())
            }),
        };
        (kind, reply)
    }

    /// Works out what one text frame from `client` does, and says what type of message it was
    /// (`None` when it was not one): a reply to send at once, or a [`Plan`] of changes to
    /// store and commit.
    pub fn plan(
        &mut self,
        client: &str,
        frame: &str,
        now: Duration,
    ) -> (Option<&'static str>, Planned) {
        let message = match parse(frame) {
            Ok(message) => message,
            Err((id, code, message)) => {
                return (None, Planned::Reply(Reply::refused(id, code, message)));
            }
        };
        let kind = message.kind();
        let id = message.id().cloned();
        let planned = match self.dispatch(client, message, now) {
            Ok(planned) => planned,
            Err(error) => Planned::Reply(Reply::from_error(id, error)),
        };
        (Some(kind), planned)
    }

    /// [`Room::plan`] again, with what the store said of an old revision, after
    /// [`Reply::needs_past`] asked for it.
    pub fn plan_with(
        &mut self,
        client: &str,
        frame: &str,
        past: Past,
        now: Duration,
    ) -> (Option<&'static str>, Planned) {
        self.past = Some(past);
        let planned = self.plan(client, frame, now);
        self.past = None;
        planned
    }

    /// Checks what applies to every message, then hands it to its handler.
    fn dispatch(
        &mut self,
        client: &str,
        message: ClientMessage,
        now: Duration,
    ) -> Result<Planned, Error> {
        // A request id is kept with the change it made (in the history, the log and the
        // client's last request), so it is held to the size of a field.
        let max_field = self.limits.max_field_chars;
        if let Some(RequestId::String(id)) = message.id()
            && id.len() > max_field
        {
            let message = format!("a string id is at most {max_field} bytes");
            return Err(Error::refused(ErrorCode::TooLarge, message));
        }
        if is_change(&message) {
            if self.members.get(client).is_some_and(|member| member.read_only) {
                let message = "this connection may read the document but not change it";
                return Err(Error::refused(ErrorCode::Forbidden, message));
            }
            if let Some(reply) = self.resent(client, message.id()) {
                return Ok(Planned::Reply(reply));
            }
        }
        let reply = match message {
            ClientMessage::Insert { id, revision, index, text } => {
                return self.handle_insert(client, id, revision, index, text).map(Planned::Plan);
            }
            ClientMessage::Delete { id, revision, index, length } => {
                return self.handle_delete(client, id, revision, index, length).map(Planned::Plan);
            }
            ClientMessage::SetTitle { id, title } => {
                return self.handle_set_title(client, id, title).map(Planned::Plan);
            }
            ClientMessage::IncrementCounter { id, name, amount } => {
                return self.handle_increment_counter(client, id, name, amount).map(Planned::Plan);
            }
            ClientMessage::CursorMove { line, column, .. } => {
                self.handle_cursor_move(client, line, column, now)
            }
            ClientMessage::PresenceUpdate { name, color, .. } => {
                self.handle_presence_update(client, name, color, now)
            }
            ClientMessage::Ping { id } => Ok(Reply::to_sender(ServerMessage::Pong { id })),
            ClientMessage::SaveVersion { id, label } => {
                check_label(&label)?;
                let request = VersionRequest::Save { id, label, revision: self.revision };
                Ok(Reply { version: Some(request), ..Reply::default() })
            }
            ClientMessage::RestoreVersion { id, label } => {
                check_label(&label)?;
                let request = VersionRequest::Restore { id, label };
                Ok(Reply { version: Some(request), ..Reply::default() })
            }
        };
        reply.map(Planned::Reply)
    }

    /// For a resumed client resending its last request: the ack it got, to send again (or
    /// nothing, if changes sequenced elsewhere acknowledged it on this connection already).
    fn resent(&self, client: &str, id: Option<&RequestId>) -> Option<Reply> {
        let member = self.members.get(client).filter(|member| member.resumed)?;
        let last = self.requests.get(client).filter(|last| id == Some(&last.id))?;
        if member.acked_from_log.as_ref() == Some(&last.id) {
            return Some(Reply::none());
        }
        Some(Reply::to_sender(last.ack()))
    }
}

/// Whether the message changes the document (and so is refused to a reader).
fn is_change(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::Insert { .. }
            | ClientMessage::Delete { .. }
            | ClientMessage::SetTitle { .. }
            | ClientMessage::IncrementCounter { .. }
            | ClientMessage::SaveVersion { .. }
            | ClientMessage::RestoreVersion { .. }
    )
}

/// Whether `label` can name a version: 1 to 64 of `A-Z a-z 0-9 . _ -`, as a document id.
pub fn is_label(label: &str) -> bool {
    (1..=64).contains(&label.len())
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && label.bytes().any(|b| b != b'.')
}

fn check_label(label: &str) -> Result<(), Error> {
    if is_label(label) {
        return Ok(());
    }
    let message = "a version's label is 1-64 of A-Z a-z 0-9 . _ -, not only dots";
    Err(Error::refused(ErrorCode::InvalidMessage, message))
}

/// Decodes a frame: not JSON is `invalid_json`; JSON that is not a message is
/// `invalid_message`, echoing the frame's `id` when it has a usable one.
///
/// The frame is parsed once, straight into its message type, so a key given twice is refused
/// (`duplicate field`) rather than the last one silently winning. Only a refused frame is read
/// a second time, for its `id`.
fn parse(frame: &str) -> Result<ClientMessage, (Option<RequestId>, ErrorCode, String)> {
    serde_json::from_str(frame).map_err(|error| {
        if matches!(error.classify(), serde_json::error::Category::Data) {
            (request_id(frame), ErrorCode::InvalidMessage, error.to_string())
        } else {
            (None, ErrorCode::InvalidJson, format!("not valid JSON: {error}"))
        }
    })
}

/// The request id of a frame, if it has a usable one, read without taking in the rest.
pub fn request_id(frame: &str) -> Option<RequestId> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<RequestId>,
    }
    serde_json::from_str::<IdOnly>(frame).ok().and_then(|only| only.id)
}

/// The `error` that refuses a frame without handling it (for a limit the server enforces
/// before the room sees the frame, such as its message rate), echoing the frame's `id`.
pub fn refusal(frame: &str, code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error { id: request_id(frame), code, message: message.into() }
}

/// Refuses `value` for `field` if it is longer than `max` code points.
fn check_field(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        let message = format!("{field} is longer than {max} characters");
        return Err(Error::refused(ErrorCode::TooLarge, message));
    }
    Ok(())
}
