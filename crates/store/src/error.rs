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
    /// NATS could not be reached, or refused an operation.
    #[error("NATS {operation} failed")]
    Nats {
        operation: &'static str,
        #[source]
        source: async_nats::Error,
    },
    /// An operation this store does not take: the cluster's log is appended by
    /// [`crate::NatsStore::append`], not through a batch.
    #[error("this store does not take {what}")]
    Unsupported { what: &'static str },
    /// A stored record was written by a newer version of Tandem.
    #[error(
        "document {doc}: the record at revision {revision} has format version {version}, newer than this build reads"
    )]
    Version { doc: String, revision: u64, version: u32 },
}

impl Error {
    /// The error and every source under it, one after another: what a log line should say.
    pub fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
