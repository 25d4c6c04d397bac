//! The server's half of the protocol: one document, the clients in it, and the handling of
//! every frame they send. Sans-IO: frames in, messages out, time passed in.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::Duration,
};

use tandem_presence::{Cursor, Fields, Presence, User};

use crate::{
    Change, ClientMessage, CursorView, ErrorCode, LastRequest, Logged, RequestId, RestoreError,
    RoomSnapshot, ServerMessage, UserView,
    ot::{Edit, transform},
    text::Text,
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
}

/// What a room holds that could grow with use: see [`Room::footprint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub history_entries: usize,
    pub history_bytes: usize,
    pub text_runs: usize,
    pub requests: usize,
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
/// had seen; the room transforms it against the edits applied since, applies it to its text,
/// gives it the next revision, acknowledges it to the sender and broadcasts it to
/// the others, with positions against the revision just before it. Every applied change is
/// also handed out in [`Reply::logged`], so that the caller can store it before telling anyone.
#[derive(Debug)]
pub struct Room {
    id: String,
    text: Text,
    title: String,
    revision: u64,
    /// The changes of the last revisions, the newest last (its revision is `revision`).
    history: VecDeque<Logged>,
    /// The bytes of text the history holds, kept under [`Limits::max_history_bytes`].
    history_bytes: usize,
    presence: Presence,
    limits: Limits,
    /// Each client's last request that changed something, to acknowledge a resend again.
    requests: BTreeMap<String, LastRequest>,
    /// Changes applied while handling the current frame.
    logged: Vec<Logged>,
    /// Counter values, exactly: an increment that would overflow is refused.
    counters: BTreeMap<String, i64>,
    /// Clients whose session resumed with `since`: they continue their request ids, so a
    /// request repeating their last one is a resend, acknowledged again and not applied twice.
    resumed: BTreeSet<String>,
    /// Clients that may read but not change the document.
    read_only: BTreeSet<String>,
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
            presence: Presence::new(idle_after),
            limits,
            requests: BTreeMap::new(),
            logged: Vec::new(),
            counters: BTreeMap::new(),
            resumed: BTreeSet::new(),
            read_only: BTreeSet::new(),
        }
    }

    /// Rebuilds a room from its last snapshot and the changes logged after it, which must
    /// follow it revision by revision.
    pub fn restore(
        id: &str,
        limits: Limits,
        idle_after: Duration,
        snapshot: Option<RoomSnapshot>,
        log: Vec<Logged>,
    ) -> Result<Room, RestoreError> {
        let mut room = Room::new(id, limits, idle_after);
        if let Some(snapshot) = snapshot {
            room.text = Text::new(&snapshot.text).map_err(|reason| RestoreError::Invalid {
                revision: snapshot.revision,
                reason: reason.to_string(),
            })?;
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
            for entry in covered.into_iter().skip(skip) {
                room.remember(entry);
            }
        }
        for entry in log {
            if entry.revision != room.revision + 1 {
                return Err(RestoreError::Gap {
                    expected: room.revision + 1,
                    found: entry.revision,
                });
            }
            let revision = entry.revision;
            room.replay(entry).map_err(|reason| RestoreError::Invalid { revision, reason })?;
        }
        room.logged.clear();
        Ok(room)
    }

    /// The room's state now, to store as a snapshot.
    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            revision: self.revision,
            text: self.text.to_string(),
            title: self.title.clone(),
            counters: self.counters.clone(),
            requests: self.requests.clone(),
        }
    }

    /// The clients in the room, by id.
    pub fn members(&self) -> Vec<String> {
        self.presence.users(&self.id).map(|(id, _)| id.to_owned()).collect()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn revision(&self) -> u64 {
        self.revision
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

    pub fn title(&self) -> &str {
        &self.title
    }

    /// The value of counter `name` (0 if it was never incremented).
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
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

    /// Number of clients in the room.
    pub fn clients(&self) -> usize {
        self.presence.users(&self.id).count()
    }

    /// Adds `client`: a welcome with the whole document for it, its presence for the others.
    pub fn join(&mut self, client: &str, now: Duration) -> Reply {
        let (users, to_others) = self.enter(client, now);
        let welcome = ServerMessage::Welcome {
            client_id: client.to_owned(),
            doc: self.id.clone(),
            revision: self.revision,
            text: self.text.to_string(),
            title: self.title.clone(),
            counters: self.counters.clone(),
            users,
        };
        Reply { to_sender: vec![welcome], to_others, logged: Vec::new() }
    }

    /// Adds `client`'s presence: returns the others in the room, and the announcement of
    /// `client` for them.
    fn enter(&mut self, client: &str, now: Duration) -> (Vec<UserView>, Vec<ServerMessage>) {
        self.presence.join(&self.id, client, now);
        let idle_after = self.presence.idle_after();
        let users = self
            .presence
            .users(&self.id)
            .filter(|(id, _)| *id != client)
            .map(|(id, user)| view(id, user, now, idle_after))
            .collect();
        (users, self.presence_of(client, now).into_iter().collect())
    }

    /// Adds `client` back after a reconnect, from its revision `since`: a `resumed` message,
    /// then every change after `since` in order, the client's own as the acks it missed. `None`
    /// when the history kept no longer reaches back to `since` (then [`Room::join`] instead).
    pub fn resume(&mut self, client: &str, since: u64, now: Duration) -> Option<Reply> {
        let oldest = self.revision - self.history.len() as u64;
        if since < oldest || since > self.revision {
            return None;
        }
        let (users, to_others) = self.enter(client, now);
        let head = self.revision;
        let resumed = ServerMessage::Resumed {
            client_id: client.to_owned(),
            doc: self.id.clone(),
            revision: since,
            head,
            users,
        };
        let missed: Vec<&Logged> = self.history.iter().skip((since - oldest) as usize).collect();
        let mut to_sender = vec![resumed];
        for (at, entry) in missed.iter().enumerate() {
            if entry.author != client {
                to_sender.push(entry.message());
            } else if missed.get(at + 1).is_none_or(|next| !next.continued) {
                // One ack per request: a change applied in several pieces is acked at its last.
                to_sender.push(entry.ack());
            }
        }
        let reply = Reply { to_sender, to_others, logged: Vec::new() };
        self.resumed.insert(client.to_owned());
        Some(reply)
    }

    /// Lets `client` only read: every change it sends is refused with `forbidden`. Kept until
    /// it leaves; call it before [`Room::join`] or [`Room::resume`].
    pub fn set_read_only(&mut self, client: &str) {
        self.read_only.insert(client.to_owned());
    }

    /// Removes `client`; the others are told it left.
    pub fn leave(&mut self, client: &str) -> Reply {
        self.resumed.remove(client);
        self.read_only.remove(client);
        let left = self.presence.leave(&self.id, client).is_some();
        let to_others =
            if left { vec![ServerMessage::Leave { client_id: client.to_owned() }] } else { vec![] };
        Reply { to_sender: vec![], to_others, logged: Vec::new() }
    }

    /// Handles a binary frame: refused, since the protocol is JSON text.
    pub fn handle_binary(&mut self) -> Reply {
        let message = "binary frames are not supported; send JSON text frames".to_owned();
        error_reply(None, Refusal(ErrorCode::InvalidMessage, message))
    }

    /// Handles one text frame from `client`.
    pub fn handle(&mut self, client: &str, frame: &str, now: Duration) -> Reply {
        self.handle_typed(client, frame, now).1
    }

    /// Handles one text frame from `client`, and says what type of message it was (`None`
    /// when it was not one), for the caller's counts.
    pub fn handle_typed(
        &mut self,
        client: &str,
        frame: &str,
        now: Duration,
    ) -> (Option<&'static str>, Reply) {
        let message = match parse(frame) {
            Ok(message) => message,
            Err((id, refusal)) => return (None, error_reply(id, refusal)),
        };
        let kind = message.kind();
        (Some(kind), self.handle_parsed(client, message, now))
    }

    fn handle_parsed(&mut self, client: &str, message: ClientMessage, now: Duration) -> Reply {
        let id = message.id().cloned();
        let mut reply = match self.handle_message(client, message, now) {
            Ok(reply) => reply,
            Err(refusal) => error_reply(id, refusal),
        };
        reply.logged = std::mem::take(&mut self.logged);
        reply
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
        // A request id is kept with the change it made (in the history, the log and the
        // client's last request), so it is held to the size of a field.
        if let Some(RequestId::String(id)) = message.id()
            && id.len() > max_field
        {
            let message = format!("a string id is at most {max_field} bytes");
            return Err(Refusal(ErrorCode::TooLarge, message));
        }
        let changes = matches!(
            message,
            ClientMessage::Insert { .. }
                | ClientMessage::Delete { .. }
                | ClientMessage::SetTitle { .. }
                | ClientMessage::IncrementCounter { .. }
        );
        if changes && self.read_only.contains(client) {
            let message = "this connection may read the document but not change it".to_owned();
            return Err(Refusal(ErrorCode::Forbidden, message));
        }
        if changes
            && self.resumed.contains(client)
            && let (Some(id), Some(last)) = (message.id(), self.requests.get(client))
            && *id == last.id
        {
            return Ok(Reply {
                to_sender: vec![last.ack.clone()],
                to_others: vec![],
                logged: vec![],
            });
        }
        match message {
            ClientMessage::Insert { id, revision, index, text } => {
                if text.is_empty() {
                    return Err(Refusal(ErrorCode::InvalidMessage, "insert has empty text".into()));
                }
                let grown = self.text.len().saturating_add(text.chars().count());
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
                self.title.clone_from(&title);
                self.commit(client, id.clone(), false, Change::SetTitle { title });
                Ok(self.changed(client, id, now))
            }
            ClientMessage::IncrementCounter { id, name, amount } => {
                check_field("counter name", &name, max_field)?;
                if name.is_empty() {
                    return Err(Refusal(ErrorCode::InvalidMessage, "counter name is empty".into()));
                }
                if !self.counters.contains_key(&name)
                    && self.counters.len() >= self.limits.max_counters
                {
                    let limit = self.limits.max_counters;
                    let message = format!("a document has at most {limit} counters");
                    return Err(Refusal(ErrorCode::TooLarge, message));
                }
                // Exact arithmetic: a counter never saturates, so its stored value is its value.
                let current = self.counters.get(&name).copied().unwrap_or(0);
                let Some(value) = current.checked_add(amount) else {
                    let message = format!("counter {name} would overflow");
                    return Err(Refusal(ErrorCode::TooLarge, message));
                };
                let change = Change::IncrementCounter { name, amount, value };
                self.commit(client, id.clone(), false, change);
                Ok(self.changed(client, id, now))
            }
            ClientMessage::CursorMove { line, column, .. } => {
                let moved =
                    self.presence.move_cursor(&self.id, client, Cursor::new(line, column), now);
                moved.map_err(|error| Refusal(ErrorCode::InvalidMessage, error.to_string()))?;
                Ok(Reply {
                    to_sender: vec![],
                    to_others: self.presence_of(client, now).into_iter().collect(),
                    logged: Vec::new(),
                })
            }
            ClientMessage::PresenceUpdate { name, color, .. } => {
                for (field, value) in [("name", &name), ("color", &color)] {
                    if let Some(value) = value {
                        check_field(field, value, max_field)?;
                    }
                }
                // Pages draw the colour into styles: only a plain hex colour is passed on.
                if let Some(color) = &color
                    && !is_hex_color(color)
                {
                    let message = format!("color {color:?} is not #rgb or #rrggbb");
                    return Err(Refusal(ErrorCode::InvalidMessage, message));
                }
                let updated =
                    self.presence.update_fields(&self.id, client, Fields { name, color }, now);
                updated.map_err(|error| Refusal(ErrorCode::InvalidMessage, error.to_string()))?;
                Ok(Reply {
                    to_sender: vec![],
                    to_others: self.presence_of(client, now).into_iter().collect(),
                    logged: Vec::new(),
                })
            }
            ClientMessage::Ping { id } => Ok(Reply {
                to_sender: vec![ServerMessage::Pong { id }],
                to_others: vec![],
                logged: Vec::new(),
            }),
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
        let concurrent: Vec<Edit> =
            self.history.iter().skip(since).filter_map(|entry| entry.change.edit()).collect();
        let len_then =
            concurrent.iter().fold(self.text.len() as isize, |len, edit| len - edit.delta());
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
        for other in &concurrent {
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
        let mut len = self.text.len();
        for edit in &edits {
            if !edit.fits(len) {
                return Err(Refusal(
                    ErrorCode::OutOfRange,
                    "the transformed edit does not fit the text".into(),
                ));
            }
            len = (len as isize + edit.delta()) as usize;
        }
        for (piece, edit) in edits.into_iter().enumerate() {
            match &edit {
                Edit::Insert { index, text } => self.text.insert(*index, text),
                Edit::Delete { index, len } => self.text.delete(*index, *len),
            }
            .map_err(internal)?;
            self.commit(client, id.clone(), piece > 0, Change::from_edit(&edit));
        }
        Ok(self.changed(client, id, now))
    }

    /// Records an applied change as the next revision, and returns that revision.
    fn commit(
        &mut self,
        author: &str,
        request: Option<RequestId>,
        continued: bool,
        change: Change,
    ) -> u64 {
        self.revision += 1;
        if let Change::IncrementCounter { name, value, .. } = &change {
            self.counters.insert(name.clone(), *value);
        }
        let entry = Logged {
            revision: self.revision,
            author: author.to_owned(),
            request,
            continued,
            change,
        };
        if let Some(id) = &entry.request {
            let last = LastRequest { id: id.clone(), ack: entry.ack() };
            self.requests.insert(entry.author.clone(), last);
        }
        self.remember(entry.clone());
        self.logged.push(entry);
        self.revision
    }

    /// Adds the newest change to the history, then drops the oldest ones while the history
    /// holds more than [`Limits::max_history`] changes or [`Limits::max_history_bytes`] of text.
    /// Each time the history has moved a whole window on, the clients' last requests older
    /// than it are forgotten: a client resuming from inside the window has heard their acks.
    fn remember(&mut self, entry: Logged) {
        self.history_bytes += entry.change.text_bytes();
        self.history.push_back(entry);
        while self.history.len() > self.limits.max_history.max(1)
            || (self.history_bytes > self.limits.max_history_bytes && self.history.len() > 1)
        {
            if let Some(dropped) = self.history.pop_front() {
                self.history_bytes -= dropped.change.text_bytes();
            }
        }
        if self.revision.is_multiple_of(self.limits.max_history.max(1) as u64) {
            let oldest = self.revision - self.history.len() as u64;
            self.requests.retain(|_, last| last.revision() > oldest);
        }
    }

    /// Applies a logged change again, as it was applied the first time.
    fn replay(&mut self, entry: Logged) -> Result<(), String> {
        match &entry.change {
            Change::Insert { index, text } => self.text.insert(*index, text),
            Change::Delete { index, length } => self.text.delete(*index, *length),
            Change::SetTitle { title } => {
                self.title.clone_from(title);
                Ok(())
            }
            Change::IncrementCounter { .. } => Ok(()),
        }
        .map_err(|error| error.to_string())?;
        let Logged { author, request, continued, change, .. } = entry;
        self.commit(&author, request, continued, change);
        Ok(())
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
        let was_idle = self.presence.user(&self.id, client).is_some_and(User::reported_idle);
        let _ = self.presence.touch(&self.id, client, now);
        if was_idle {
            to_others.extend(self.presence_of(client, now));
        }
        Reply { to_sender: vec![ack], to_others, logged: Vec::new() }
    }

    fn presence_of(&self, client: &str, now: Duration) -> Option<ServerMessage> {
        let user = self.presence.user(&self.id, client)?;
        Some(ServerMessage::Presence(view(client, user, now, self.presence.idle_after())))
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
///
/// The frame is parsed once, straight into its message type, so a key given twice is refused
/// (`duplicate field`) rather than the last one silently winning. Only a refused frame is read
/// a second time, for its `id`.
fn parse(frame: &str) -> Result<ClientMessage, (Option<RequestId>, Refusal)> {
    serde_json::from_str(frame).map_err(|error| {
        if matches!(error.classify(), serde_json::error::Category::Data) {
            (request_id(frame), Refusal(ErrorCode::InvalidMessage, error.to_string()))
        } else {
            (None, Refusal(ErrorCode::InvalidJson, format!("not valid JSON: {error}")))
        }
    })
}

/// The request id of a frame, if it has a usable one, read without taking in the rest.
fn request_id(frame: &str) -> Option<RequestId> {
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

/// Whether `color` is `#rgb` or `#rrggbb`.
fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
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

/// A change the text refused after the room's own checks passed; reported, never a panic.
fn internal(error: tandem_crdt::Error) -> Refusal {
    Refusal(ErrorCode::OutOfRange, error.to_string())
}

fn error_reply(id: Option<RequestId>, Refusal(code, message): Refusal) -> Reply {
    Reply {
        to_sender: vec![ServerMessage::Error { id, code, message }],
        to_others: vec![],
        logged: Vec::new(),
    }
}
