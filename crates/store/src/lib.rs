//! Durable storage for documents: per document, an append-only log of changes by revision, and
//! a snapshot that covers a prefix of it.
//!
//! [`Store`] is the boundary: the server hands it [`Batch`]es and reads documents back with
//! [`Store::load`]; another backend (PostgreSQL, an object store) plugs in behind the same
//! trait. The engines see opaque bytes: they know revisions, not what changed. What those bytes
//! hold is defined in [`records`]: versioned structs of the store's own, never wire messages.
//! [`RedbStore`] is the embedded default, one crash-safe redb file that is fsynced on every
//! commit; [`MemoryStore`] keeps everything in memory, for throwaway use and tests.
//! Document ids are keys inside the one file, never file names.

mod error;
mod memory;
pub mod records;
mod redb_store;

pub use crate::{error::Error, memory::MemoryStore, redb_store::RedbStore};

/// One stored record: a log entry or a snapshot, at a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub revision: u64,
    pub bytes: Vec<u8>,
}

/// A document as stored: its snapshot, if any, and the log entries kept, by revision (these
/// may reach back before the snapshot; see [`Batch::truncations`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub snapshot: Option<Record>,
    pub log: Vec<Record>,
}

/// Writes committed together, in one durable transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Log entries to append, per document.
    pub appends: Vec<(String, Record)>,
    /// Snapshots to store; each replaces the document's snapshot.
    pub snapshots: Vec<(String, Record)>,
    /// Log entries to drop, per document: all up to and including the revision given.
    pub truncations: Vec<(String, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty() && self.snapshots.is_empty() && self.truncations.is_empty()
    }
}

/// A durable home for documents.
pub trait Store: Send + Sync + 'static {
    /// Reads `doc`: its snapshot and the log entries kept. A document never stored is empty.
    fn load(&self, doc: &str) -> Result<Stored, Error>;

    /// Commits `batch` durably and atomically: when this returns `Ok`, all of it survives a
    /// crash; when the process dies first, none of it is half there.
    fn commit(&self, batch: &Batch) -> Result<(), Error>;
}

#[cfg(test)]
mod tests;
