//! Tandem's wire protocol, without any IO.
//!
//! - [`ClientMessage`] and [`ServerMessage`]: the JSON text frames, tagged by `"type"`.
//! - [`Room`]: the server's half. One document and its clients: it parses each frame, checks
//!   it, transforms late edits past the ones applied since ([`ot`]), applies them to the
//!   document, and says what to send to the sender and to the others.
//! - [`ThinClient`]: the client's half, as specified in docs/protocol.md; tests use it, and any
//!   Rust program can embed it.
//!
//! This crate knows nothing of sockets, tasks or clocks: frames and times are arguments.
//! The wire types are its own, converted from document and presence values, so those can
//! change without changing the wire.

mod client;
mod counters;
mod error;
mod log;
mod message;
pub mod ot;
mod room;
mod text;

pub use crate::{
    client::{MAX_INSERT_CHARS, ThinClient},
    counters::Counters,
    error::Error,
    log::{Change, LastRequest, Logged, RoomSnapshot, TakenSnapshot, catch_up},
    message::{ClientMessage, CursorView, ErrorCode, RequestId, ServerMessage, UserView},
    room::{
        Broadcast, Footprint, Limits, Past, Plan, Planned, RESTORER, Reply, Resumed, Room, Seat,
        VersionRequest, is_label, refusal, replay, request_id,
    },
};

#[cfg(test)]
mod tests;
