//! The error type of the protocol crate.

use crate::{ErrorCode, RequestId};

/// What can go wrong in the protocol: on the client's side ([`crate::ThinClient`]), in a room
/// ([`crate::Room`]), and when a room is rebuilt from what was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The client's side.
    #[error("the first message must be a welcome")]
    NotWelcome,
    #[error("{start}..{end} is outside the local text (length {len})")]
    OutOfRange { start: usize, end: usize, len: usize },
    /// The server refused a message. If it was the title or counter change in flight, that
    /// change is dropped and the client carries on: call [`crate::ThinClient::poll_send`] for
    /// the next.
    #[error("the server refused message {id:?}: {code:?}: {message}")]
    Rejected { id: Option<RequestId>, code: ErrorCode, message: String },
    /// The server refused the text change in flight, so the local text no longer matches the
    /// server's: reconnect for a fresh welcome.
    #[error(
        "the server refused text change {id:?} ({code:?}: {message}); reconnect to resynchronise"
    )]
    Desynced { id: Option<RequestId>, code: ErrorCode, message: String },
    /// After a reconnect the server's history no longer reached back to the client's revision:
    /// the client starts again from the server's document, without these changes.
    #[error(
        "{changes} unacknowledged change(s) could not be placed after the reconnect and were dropped"
    )]
    Lost { changes: usize },
    #[error("an ack arrived for {id:?}, but {expected:?} is the change in flight")]
    UnexpectedAck { id: Option<RequestId>, expected: Option<u64> },
    #[error("a change from the server does not fit the local text")]
    Diverged,
    /// The server refused the change in flight for now (`rate_limited` or `unavailable`): it
    /// changed nothing, and the change stays in flight. Call [`crate::ThinClient::resend`]
    /// after a pause.
    #[error("the server refused change {id:?} as sent too fast; resend it later")]
    RateLimited { id: Option<RequestId> },

    // The room.
    /// A client id that is already in the room cannot join it again.
    #[error("client {client} is already connected to the document")]
    Taken { client: String },
    /// A frame the room refuses: the sender is answered with an `error` of this code.
    #[error("{code:?}: {message}")]
    Refused { code: ErrorCode, message: String },
    /// A plan made at revision `planned` cannot be committed: the room is at `now` (another
    /// change came first). Plan again.
    #[error("planned at revision {planned}, but the room is at {now}")]
    Stale { planned: u64, now: u64 },
    /// An edit made at a revision older than the history in memory: placing it needs that
    /// revision's next character id from the store (see [`crate::Reply::needs_past`]).
    #[error("revision {revision} is older than the history in memory")]
    NeedsPast { revision: u64 },

    // Rebuilding a room.
    #[error("the log jumps from revision {expected} to {found}")]
    Gap { expected: u64, found: u64 },
    /// A stored change or snapshot that does not apply to the text.
    #[error("revision {revision} does not apply")]
    Invalid {
        revision: u64,
        #[source]
        source: tandem_crdt::Error,
    },
}

impl Error {
    /// A refusal of a frame, answered with an `error` of `code`.
    pub(crate) fn refused(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused { code, message: message.into() }
    }
}
