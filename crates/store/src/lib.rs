//! Durable storage for documents: per document, an append-only log of changes by revision, and
//! a snapshot that covers a prefix of it.
//!
//! [`Store`] is the boundary: the server hands it [`Batch`]es and reads documents back with
//! [`Store::load`]; another backend (PostgreSQL, an object store) plugs in behind the same
//! trait. The engines see opaque bytes: they know revisions, not what changed. What those bytes
//! hold is defined in [`records`]: versioned structs of the store's own, never wire messages.
//! [`RedbStore`] is the embedded default, one crash-safe redb file that is fsynced on every
//! commit; [`MemoryStore`] keeps everything in memory, for throwaway use and tests; and
//! [`NatsStore`] keeps documents in NATS JetStream for a cluster of servers, where the log is
//! appended by compare-and-set ([`NatsStore::append`]) rather than through [`Store::commit`].
//! Document ids are keys inside the one file, never file names.

mod error;
mod memory;
pub mod nats;
pub mod records;
mod redb_store;

pub use crate::{error::Error, memory::MemoryStore, nats::NatsStore, redb_store::RedbStore};

/// One stored record: a log entry, a snapshot or a checkpoint, at a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub revision: u64,
    pub bytes: Vec<u8>,
}

/// What rebuilding a document needs: its latest snapshot, if any, and the log entries from a
/// little before it (see [`Store::load`]) to the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub snapshot: Option<Record>,
    pub log: Vec<Record>,
    /// Where the log ends, for a log with positions of its own (the cluster's stream sequence
    /// of the document's last message); 0 otherwise.
    pub position: u64,
}

/// How much one read of a log takes at most: `count` records, and `bytes` of them together
/// (past the first: a record larger than `bytes` still comes, alone, so that reading always
/// moves on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub count: usize,
    pub bytes: usize,
}

impl Page {
    /// At most `count` records, whatever their size.
    pub const fn count(count: usize) -> Page {
        Page { count, bytes: usize::MAX }
    }

    /// Takes the records of `records`, in order, while the page has room for them.
    pub fn fill<E>(
        self,
        records: impl IntoIterator<Item = Result<Record, E>>,
    ) -> Result<Vec<Record>, E> {
        let mut taken: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        for record in records {
            if taken.len() >= self.count {
                break;
            }
            let record = record?;
            bytes = bytes.saturating_add(record.bytes.len());
            if !taken.is_empty() && bytes > self.bytes {
                break;
            }
            taken.push(record);
        }
        Ok(taken)
    }
}

/// Writes committed together, in one durable transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Log entries to append, per document. The log is the document's history: kept whole.
    pub appends: Vec<(String, Record)>,
    /// Snapshots to store; each replaces the document's snapshot (the state a restart starts
    /// from).
    pub snapshots: Vec<(String, Record)>,
    /// Checkpoints to add, per document: kept, so that the text of any revision can be rebuilt
    /// from the nearest one before it.
    pub checkpoints: Vec<(String, Record)>,
    /// Named versions to add, per document: (document, label, record).
    pub versions: Vec<(String, String, Vec<u8>)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
            && self.snapshots.is_empty()
            && self.checkpoints.is_empty()
            && self.versions.is_empty()
    }
}

/// A durable home for documents.
pub trait Store: Send + Sync + 'static {
    /// Reads what rebuilding `doc` needs: its snapshot, and the log entries after the
    /// snapshot's revision minus `behind` (those just before the snapshot refill the room's
    /// history). A document never stored is empty.
    fn load(&self, doc: &str, behind: u64) -> Result<Stored, Error>;

    /// The log entries of `doc` with revisions in `after + 1 ..= up_to`, in revision order, as
    /// many as fit in `page`.
    fn log(&self, doc: &str, after: u64, up_to: u64, page: Page) -> Result<Vec<Record>, Error>;

    /// The last log entry of `doc`, if it has one.
    fn last(&self, doc: &str) -> Result<Option<Record>, Error>;

    /// The checkpoint of `doc` at `revision`, or the nearest one before it.
    fn checkpoint(&self, doc: &str, revision: u64) -> Result<Option<Record>, Error>;

    /// The named versions of `doc`, by label.
    fn versions(&self, doc: &str) -> Result<Vec<(String, Vec<u8>)>, Error>;

    /// The version of `doc` named `label`, if there is one.
    fn version(&self, doc: &str, label: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Commits `batch` durably and atomically: when this returns `Ok`, all of it survives a
    /// crash; when the process dies first, none of it is half there.
    fn commit(&self, batch: &Batch) -> Result<(), Error>;
}

#[cfg(test)]
mod tests;
