//! The error type of the presence crate.

/// What can go wrong when updating presence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An update for a user who has not joined the document.
    #[error("user {user} has not joined document {doc}")]
    NotJoined { doc: String, user: String },
}
