//! The error type of the store crate.

use std::path::PathBuf;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store file could not be opened or created.
    #[error("cannot open the store {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// The store file is damaged (truncated, overwritten, or not a store at all).
    #[error("the store {} is corrupt", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// Reading or writing failed.
    #[error("store {operation} failed")]
    Io {
        operation: &'static str,
        #[source]
        source: redb::Error,
    },
    /// A stored record does not decode.
    #[error("document {doc}: the record at revision {revision} does not decode")]
    Decode {
        doc: String,
        revision: u64,
        #[source]
        source: serde_json::Error,
    },
    /// A stored record was written by a newer version of Tandem.
    #[error(
        "document {doc}: the record at revision {revision} has format version {version}, newer than this build reads"
    )]
    Version { doc: String, revision: u64, version: u32 },
}
