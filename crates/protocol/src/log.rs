//! What a room hands out to be persisted: each applied change with its author and request, and
//! snapshots of its state.
//!
//! A room's state is its last snapshot plus the changes logged after it, replayed in revision
//! order ([`crate::Room::restore`]). How they are stored is the store's business: the server
//! converts them to the store's own records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Counters, RequestId, ServerMessage,
    ot::{Edit, Shape},
    text::Text,
};

/// One applied change, as the server applied it (positions against the revision before it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Insert {
        index: usize,
        text: String,
    },
    Delete {
        index: usize,
        length: usize,
    },
    SetTitle {
        title: String,
    },
    /// `value` is the counter's value after the change.
    IncrementCounter {
        name: String,
        amount: i64,
        value: i64,
    },
}

impl Change {
    pub(crate) fn from_edit(edit: &Edit) -> Change {
        match edit {
            Edit::Insert { index, text } => Change::Insert { index: *index, text: text.clone() },
            Edit::Delete { index, len } => Change::Delete { index: *index, length: *len },
        }
    }

    /// The bytes of text the change holds (what its size grows with).
    pub(crate) fn text_bytes(&self) -> usize {
        match self {
            Change::Insert { text, .. } => text.len(),
            Change::SetTitle { title } => title.len(),
            Change::IncrementCounter { name, .. } => name.len(),
            Change::Delete { .. } => 0,
        }
    }

    /// The shape of its text edit, for changes of the text: where it is and how long.
    pub(crate) fn shape(&self) -> Option<Shape> {
        match self {
            Change::Insert { index, text } => {
                Some(Shape::Insert { index: *index, len: text.chars().count() })
            }
            Change::Delete { index, length } => Some(Shape::Delete { index: *index, len: *length }),
            Change::SetTitle { .. } | Change::IncrementCounter { .. } => None,
        }
    }
}

/// A change in the log: its revision, who made it, and the request that carried it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    pub revision: u64,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    /// Whether this is a later piece of the same request as the entry before it (a delete cut
    /// into pieces by concurrent inserts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// The sequence number of the text's next character id after this change: what placing
    /// an edit made at this revision needs (see [`crate::Room::handle_with`]).
    #[serde(default)]
    pub next_seq: u64,
    #[serde(flatten)]
    pub change: Change,
}

impl Logged {
    /// The change as it is broadcast to the other clients.
    pub fn message(&self) -> ServerMessage {
        let (client_id, revision) = (self.author.clone(), self.revision);
        match &self.change {
            Change::Insert { index, text } => {
                ServerMessage::Insert { client_id, revision, index: *index, text: text.clone() }
            }
            Change::Delete { index, length } => {
                ServerMessage::Delete { client_id, revision, index: *index, length: *length }
            }
            Change::SetTitle { title } => {
                ServerMessage::SetTitle { client_id, revision, title: title.clone() }
            }
            Change::IncrementCounter { name, amount, value } => ServerMessage::IncrementCounter {
                client_id,
                revision,
                name: name.clone(),
                amount: *amount,
                value: *value,
            },
        }
    }

    /// The acknowledgement its author got.
    pub fn ack(&self) -> ServerMessage {
        ServerMessage::Ack {
            id: self.request.clone(),
            revision: self.revision,
            value: self.value(),
        }
    }

    /// The counter's value after the change, for a counter change.
    pub(crate) fn value(&self) -> Option<i64> {
        match &self.change {
            Change::IncrementCounter { value, .. } => Some(*value),
            _ => None,
        }
    }
}

/// The last change a client made with a request id: when the client resumes its session and
/// resends that request, it is acknowledged again instead of applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRequest {
    pub id: RequestId,
    /// The revision it was acknowledged at.
    pub revision: u64,
    /// The counter's value it was acknowledged with, for a counter change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

impl LastRequest {
    /// The acknowledgement it got.
    pub fn ack(&self) -> ServerMessage {
        ServerMessage::Ack { id: Some(self.id.clone()), revision: self.revision, value: self.value }
    }
}

/// A room's state at one revision: what a restart needs besides the log after it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub revision: u64,
    pub text: String,
    pub title: String,
    pub counters: Counters,
    pub requests: BTreeMap<String, LastRequest>,
    /// The text's structure: its characters' ids and when the deleted ones went (opaque
    /// bytes). Without it (a snapshot from before structures were kept) the text starts afresh
    /// from `text`, and its history from this snapshot's revision.
    pub structure: Option<Vec<u8>>,
    /// The first revision the text's history reaches back to.
    pub history_from: u64,
}

/// A room's state at one revision, taken but not yet encoded ([`crate::Room::take_snapshot`]):
/// taking it copies the text's structure, which is quick; encoding it compresses that
/// structure, which for a long history is not, and is left to whoever stores it, away from
/// the room's lock.
#[derive(Clone, Debug)]
pub struct TakenSnapshot {
    pub(crate) revision: u64,
    pub(crate) title: String,
    pub(crate) counters: Counters,
    pub(crate) requests: BTreeMap<String, LastRequest>,
    pub(crate) history_from: u64,
    pub(crate) text: Text,
}

impl TakenSnapshot {
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The snapshot, encoded.
    pub fn encode(&self) -> RoomSnapshot {
        RoomSnapshot {
            revision: self.revision,
            text: self.text.to_string(),
            title: self.title.clone(),
            counters: self.counters.clone(),
            requests: self.requests.clone(),
            structure: Some(self.text.encode()),
            history_from: self.history_from,
        }
    }
}

/// The catch-up messages for `client` of the changes `entries` (in revision order): the others'
/// changes as they were broadcast, and the client's own as the acks it missed, one per request
/// (a change applied in several pieces is acknowledged at its last, so the last entry's ack is
/// left out when `continued_after` says the change after them continues it).
pub fn catch_up(client: &str, entries: &[Logged], continued_after: bool) -> Vec<ServerMessage> {
    let mut messages = Vec::with_capacity(entries.len());
    for (at, entry) in entries.iter().enumerate() {
        if entry.author != client {
            messages.push(entry.message());
        } else {
            let continued = entries.get(at + 1).map_or(continued_after, |next| next.continued);
            if !continued {
                messages.push(entry.ack());
            }
        }
    }
    messages
}
