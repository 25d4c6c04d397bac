//! Who is in the room: joining, resuming after a reconnect, leaving, and presence (cursors,
//! names, idleness).

use std::time::Duration;

use tandem_presence::{Cursor, Fields, User};

use super::{Room, check_field};
use crate::{
    CursorView, Error, ErrorCode, Logged, Reply, Resumed, ServerMessage, UserView, catch_up,
};

/// How a client sits in the room: the connection that reaches it, and what it may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seat {
    /// The caller's number for the connection that reaches the client.
    pub connection: u64,
    /// Whether the client may only read: every change it sends is refused with `forbidden`.
    pub read_only: bool,
}

impl Seat {
    /// A client that may read and write, reached through `connection`.
    pub fn writer(connection: u64) -> Seat {
        Seat { connection, read_only: false }
    }

    /// A client that may only read, reached through `connection`.
    pub fn reader(connection: u64) -> Seat {
        Seat { connection, read_only: true }
    }
}

/// A client in the room.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub(super) connection: u64,
    pub(super) read_only: bool,
    /// The session resumed with `since`: the client continues its request ids, so a request
    /// repeating its last one is a resend, acknowledged again and not applied twice.
    pub(super) resumed: bool,
    /// The last request of its that changes sequenced elsewhere acknowledged to it (see
    /// [`Room::apply_remote`]): a resend of it then needs no second ack.
    pub(super) acked_from_log: Option<crate::RequestId>,
}

impl Room {
    /// Number of clients in the room.
    pub fn clients(&self) -> usize {
        self.members.len()
    }

    /// The clients in the room, by id, with the connection of each.
    pub fn members(&self) -> impl Iterator<Item = (&str, u64)> {
        self.members.iter().map(|(client, member)| (client.as_str(), member.connection))
    }

    /// The users in the room as the wire shows them.
    pub fn users(&self, now: Duration) -> Vec<UserView> {
        let idle_after = self.presence.idle_after();
        self.presence.users(&self.id).map(|(id, user)| view(id, user, now, idle_after)).collect()
    }

    /// The connection of `client`, if it is in the room.
    pub fn connection(&self, client: &str) -> Option<u64> {
        self.members.get(client).map(|member| member.connection)
    }

    /// The connections of everyone in the room but `except`.
    pub fn connections_except(&self, except: &str) -> Vec<u64> {
        self.members().filter(|(client, _)| *client != except).map(|(_, c)| c).collect()
    }

    /// Adds `client`: a welcome with the whole document for it, its presence for the others.
    /// Refused with [`Error::Taken`] if the client is in the room already.
    pub fn join(&mut self, client: &str, seat: Seat, now: Duration) -> Result<Reply, Error> {
        let (users, to_others) = self.enter(client, seat, false, now)?;
        let welcome = ServerMessage::Welcome {
            client_id: client.to_owned(),
            doc: self.id.clone(),
            revision: self.revision,
            text: self.text.to_string(),
            title: self.title.clone(),
            counters: self.counters.to_map(),
            users,
        };
        Ok(Reply { to_sender: vec![welcome], to_others, ..Reply::default() })
    }

    /// Adds `client` back after a reconnect, from its revision `since`: a `resumed` message,
    /// then every change after `since` in order, the client's own as the acks it missed (from
    /// memory, or, when the history in memory does not reach back that far, partly from the
    /// store: see [`Resumed::FromStore`]). `Ok(None)` when `since` is not a revision the
    /// document's history has (then [`Room::join`] instead); [`Error::Taken`] if the client
    /// is in the room already.
    pub fn resume(
        &mut self,
        client: &str,
        seat: Seat,
        since: u64,
        now: Duration,
    ) -> Result<Option<Resumed>, Error> {
        let unknown = since < self.oldest_revision() && since < self.history_from;
        if since > self.revision || unknown {
            return if self.members.contains_key(client) {
                Err(Error::Taken { client: client.to_owned() })
            } else {
                Ok(None)
            };
        }
        let (users, to_others) = self.enter(client, seat, true, now)?;
        let resumed = ServerMessage::Resumed {
            client_id: client.to_owned(),
            doc: self.id.clone(),
            revision: since,
            head: self.revision,
            users,
        };
        let oldest = self.oldest_revision();
        let from = since.max(oldest);
        let window: Vec<Logged> = self
            .history
            .iter()
            .skip((from - oldest) as usize)
            .map(|entry| entry.logged.clone())
            .collect();
        let missed = catch_up(client, &window, false);
        if since >= oldest {
            let mut to_sender = vec![resumed];
            to_sender.extend(missed);
            return Ok(Some(Resumed::Reply(Reply { to_sender, to_others, ..Reply::default() })));
        }
        let continued_after = window.first().is_some_and(|first| first.continued);
        let reply = Reply { to_sender: vec![resumed], to_others, ..Reply::default() };
        Ok(Some(Resumed::FromStore { reply, since, until: oldest, continued_after, tail: missed }))
    }

    /// Makes `client` a member with its presence: returns the others in the room, and the
    /// announcement of `client` for them.
    fn enter(
        &mut self,
        client: &str,
        seat: Seat,
        resumed: bool,
        now: Duration,
    ) -> Result<(Vec<UserView>, Vec<ServerMessage>), Error> {
        if self.members.contains_key(client) {
            return Err(Error::Taken { client: client.to_owned() });
        }
        let member = Member {
            connection: seat.connection,
            read_only: seat.read_only,
            resumed,
            acked_from_log: None,
        };
        self.members.insert(client.to_owned(), member);
        self.presence.join(&self.id, client, now);
        let idle_after = self.presence.idle_after();
        let users = self
            .presence
            .users(&self.id)
            .filter(|(id, _)| *id != client)
            .map(|(id, user)| view(id, user, now, idle_after))
            .collect();
        Ok((users, self.presence_of(client, now).into_iter().collect()))
    }

    /// Removes `client`; the others are told it left.
    pub fn leave(&mut self, client: &str) -> Reply {
        self.members.remove(client);
        match self.presence.leave(&self.id, client) {
            Some(_) => Reply::to_others([ServerMessage::Leave { client_id: client.to_owned() }]),
            None => Reply::none(),
        }
    }

    /// Users who have just gone idle, announced to the others.
    pub fn tick(&mut self, now: Duration) -> Vec<super::Broadcast> {
        let idle = self.presence.newly_idle(now);
        idle.into_iter()
            .filter_map(|(_, client)| {
                let message = self.presence_of(&client, now)?;
                Some(super::Broadcast { except: client, message })
            })
            .collect()
    }

    pub(super) fn handle_cursor_move(
        &mut self,
        client: &str,
        line: usize,
        column: usize,
        now: Duration,
    ) -> Result<Reply, Error> {
        let max = crate::message::MAX_SAFE_INTEGER;
        if line as u64 > max || column as u64 > max {
            let message = format!("line and column are at most {max}");
            return Err(Error::refused(ErrorCode::InvalidMessage, message));
        }
        let moved = self.presence.move_cursor(&self.id, client, Cursor::new(line, column), now);
        moved.map_err(|error| Error::refused(ErrorCode::InvalidMessage, error.to_string()))?;
        Ok(Reply::to_others(self.presence_of(client, now)))
    }

    pub(super) fn handle_presence_update(
        &mut self,
        client: &str,
        name: Option<String>,
        color: Option<String>,
        now: Duration,
    ) -> Result<Reply, Error> {
        let max_field = self.limits.max_field_chars;
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
            return Err(Error::refused(ErrorCode::InvalidMessage, message));
        }
        let updated = self.presence.update_fields(&self.id, client, Fields { name, color }, now);
        updated.map_err(|error| Error::refused(ErrorCode::InvalidMessage, error.to_string()))?;
        Ok(Reply::to_others(self.presence_of(client, now)))
    }

    /// Marks `client` active after a change; if that ended an idle spell, its presence for the
    /// others.
    pub(super) fn touch(&mut self, client: &str, now: Duration) -> Option<ServerMessage> {
        let was_idle = self.presence.user(&self.id, client).is_some_and(User::reported_idle);
        let _ = self.presence.touch(&self.id, client, now);
        if was_idle { self.presence_of(client, now) } else { None }
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

/// Whether `color` is `#rgb` or `#rrggbb`.
fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
