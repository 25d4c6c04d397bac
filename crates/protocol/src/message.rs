//! The wire messages: JSON text frames tagged by `"type"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A client's name for one of its requests, echoed in the reply: a string, or an integer of
/// at most 2^53 - 1 in magnitude (a "safe integer", which every JSON reader, JavaScript's
/// included, holds exactly); any other number is refused, never rounded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(serde_json::Number),
    String(String),
}

/// The largest safe integer, 2^53 - 1.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RequestId, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(serde_json::Number),
            String(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::String(id) => Ok(RequestId::String(id)),
            Raw::Number(n) if n.as_i64().is_some_and(|v| v.unsigned_abs() <= MAX_SAFE_INTEGER) => {
                Ok(RequestId::Number(n))
            }
            Raw::Number(n) => Err(serde::de::Error::custom(format_args!(
                "id {n} is not a string or an integer of at most 2^53 - 1"
            ))),
        }
    }
}

impl From<u64> for RequestId {
    fn from(n: u64) -> RequestId {
        RequestId::Number(n.into())
    }
}

/// A message from a client to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Inserts `text` at code point `index` of the document as it was at `revision`.
    Insert {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        revision: u64,
        index: usize,
        text: String,
    },
    /// Deletes `length` code points from `index` of the document as it was at `revision`.
    Delete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        revision: u64,
        index: usize,
        length: usize,
    },
    SetTitle {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        title: String,
    },
    /// Adds `amount` to the counter `name`; a negative amount decrements.
    IncrementCounter {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        name: String,
        amount: i64,
    },
    CursorMove {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        line: usize,
        column: usize,
    },
    /// Sets the display fields that are present; absent ones keep their value.
    PresenceUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<String>,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Saves the document's current revision as a named version.
    SaveVersion {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        label: String,
    },
    /// Turns the text back into that of a named version, as one new change everyone sees.
    RestoreVersion {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        label: String,
    },
}

impl ClientMessage {
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientMessage::Insert { id, .. }
            | ClientMessage::Delete { id, .. }
            | ClientMessage::SetTitle { id, .. }
            | ClientMessage::IncrementCounter { id, .. }
            | ClientMessage::CursorMove { id, .. }
            | ClientMessage::PresenceUpdate { id, .. }
            | ClientMessage::SaveVersion { id, .. }
            | ClientMessage::RestoreVersion { id, .. }
            | ClientMessage::Ping { id } => id.as_ref(),
        }
    }

    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Insert { .. } => "insert",
            ClientMessage::Delete { .. } => "delete",
            ClientMessage::SetTitle { .. } => "set_title",
            ClientMessage::IncrementCounter { .. } => "increment_counter",
            ClientMessage::CursorMove { .. } => "cursor_move",
            ClientMessage::PresenceUpdate { .. } => "presence_update",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::SaveVersion { .. } => "save_version",
            ClientMessage::RestoreVersion { .. } => "restore_version",
        }
    }
}

/// A cursor position: 0-based line (split on `\n`) and column in code points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorView {
    pub line: usize,
    pub column: usize,
}

/// One user's presence as the wire shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    pub cursor: CursorView,
    pub idle: bool,
}

/// Why a client message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    InvalidJson,
    /// Unknown type, missing or mistyped field, or a binary frame.
    InvalidMessage,
    /// An index or range outside the document at the given revision.
    OutOfRange,
    /// A revision from the future, or older than the history the server keeps.
    StaleRevision,
    /// A message, field or document over the server's limits.
    TooLarge,
    /// More messages than the connection's rate allows; the message was not handled.
    RateLimited,
    /// A change from a connection whose token only lets it read.
    Forbidden,
    /// A named version that does not exist.
    NotFound,
    /// A named version that exists already.
    Conflict,
    /// The change could not be stored now (a cluster's store out of reach, or too busy):
    /// nothing changed, and it can be sent again later.
    Unavailable,
}

/// A message from the server to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The first message on a connection: the whole document and who is in it.
    Welcome {
        client_id: String,
        doc: String,
        revision: u64,
        text: String,
        title: String,
        counters: BTreeMap<String, i64>,
        users: Vec<UserView>,
    },
    /// The first message on a resumed connection: the changes after `revision` follow, up to
    /// `head`, the document's revision now; the client's own changes among them come as acks.
    Resumed { client_id: String, doc: String, revision: u64, head: u64, users: Vec<UserView> },
    /// The sender's change was applied; the document is now at `revision`. The ack of an
    /// `increment_counter` carries the counter's new `value`.
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        revision: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<i64>,
    },
    /// The sender's message was refused; nothing changed.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
    /// Another client's insert, at an index of the revision just before `revision`.
    Insert { client_id: String, revision: u64, index: usize, text: String },
    /// Another client's delete, at an index of the revision just before `revision`.
    Delete { client_id: String, revision: u64, index: usize, length: usize },
    /// The title after another client's change: the winning title.
    SetTitle { client_id: String, revision: u64, title: String },
    /// Another client's counter change, with the counter's new `value`.
    IncrementCounter { client_id: String, revision: u64, name: String, amount: i64, value: i64 },
    /// A user joined, moved, changed fields, or went idle or active.
    Presence(UserView),
    /// A user left.
    Leave { client_id: String },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// The sender's version was saved: `label` names `revision`, saved at `created_at`
    /// (RFC 3339).
    Version {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        label: String,
        revision: u64,
        created_at: String,
    },
    /// The sender's restore of version `label` is done: the changes that made the text that
    /// version's came before this, as changes from the server; `revision` is the last of them.
    Restored {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        label: String,
        revision: u64,
    },
}

impl ServerMessage {
    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Resumed { .. } => "resumed",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Insert { .. } => "insert",
            ServerMessage::Delete { .. } => "delete",
            ServerMessage::SetTitle { .. } => "set_title",
            ServerMessage::IncrementCounter { .. } => "increment_counter",
            ServerMessage::Presence(_) => "presence",
            ServerMessage::Leave { .. } => "leave",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Version { .. } => "version",
            ServerMessage::Restored { .. } => "restored",
        }
    }

    /// The message as a JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a message serializes: every map key is a string")
    }
}
