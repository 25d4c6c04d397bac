//! What can go wrong in the transport.

/// What can go wrong in the transport: only an upgrade request can be refused; a connection
/// that fails ends with a [`crate::Closed`] reason instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is not a WebSocket upgrade (or lacks its key).
    #[error("expected a WebSocket upgrade")]
    NotAnUpgrade,
    /// The request asks for a WebSocket version other than 13.
    #[error("expected a WebSocket upgrade (version 13)")]
    UnsupportedVersion,
}
