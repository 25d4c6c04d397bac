//! Presence: who is in each document, where their cursor is, and whether they are idle.
//!
//! Presence is short-lived state that is not replicated as a CRDT: one authority (the server)
//! holds it and tells clients about changes. [`Presence`] keeps, per document and user, a
//! [`Cursor`], optional display fields and the time of last activity; a user silent for longer
//! than the idle threshold is idle.
//!
//! This crate does no IO and never reads a clock: every call that needs the time takes `now`,
//! a [`Duration`](std::time::Duration) since an epoch the caller chooses (such as server start),
//! so tests control time exactly.

mod cursor;
mod error;
mod presence;

pub use crate::{
    cursor::Cursor,
    error::Error,
    presence::{DEFAULT_IDLE_AFTER, Fields, Presence, User},
};

#[cfg(test)]
mod tests;
