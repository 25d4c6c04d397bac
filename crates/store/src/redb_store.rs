//! The embedded default: one redb file, crash-safe and fsynced on every commit.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::{Batch, Error, Record, Store, Stored};

/// Log entries by (document, revision).
const LOG: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("log");
/// Each document's snapshot: (revision, bytes).
const SNAPSHOTS: TableDefinition<'_, &str, (u64, &[u8])> = TableDefinition::new("snapshots");

/// A store in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Opens the store at `path`, creating it if it does not exist. The whole file is checked
    /// first: a truncated or damaged file is an error that names it, never a silent loss.
    pub fn open(path: &Path) -> Result<RedbStore, Error> {
        let mut builder = Database::builder();
        builder.set_check_integrity_on_open(true);
        let db = builder.create(path).map_err(|source| {
            let corrupt = match &source {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
                redb::DatabaseError::Storage(redb::StorageError::Io(error)) => {
                    error.kind() == std::io::ErrorKind::InvalidData
                }
                _ => false,
            };
            let path = path.to_owned();
            if corrupt { Error::Corrupt { path, source } } else { Error::Open { path, source } }
        })?;
        let store = RedbStore { db, path: path.to_owned() };
        // Create the tables, so that reads never meet a missing one.
        store.commit(&Batch::default())?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Wraps a redb error as the failure of `operation`.
fn io<E: Into<redb::Error>>(operation: &'static str) -> impl Fn(E) -> Error {
    move |error| Error::Io { operation, source: error.into() }
}

impl Store for RedbStore {
    fn load(&self, doc: &str) -> Result<Stored, Error> {
        let txn = self.db.begin_read().map_err(io("read"))?;
        let snapshots = txn.open_table(SNAPSHOTS).map_err(io("read"))?;
        let snapshot = snapshots.get(doc).map_err(io("read"))?.map(|guard| {
            let (revision, bytes) = guard.value();
            Record { revision, bytes: bytes.to_vec() }
        });
        let log = txn.open_table(LOG).map_err(io("read"))?;
        let mut entries = Vec::new();
        let range = log.range((doc, 0)..=(doc, u64::MAX)).map_err(io("read"))?;
        for entry in range {
            let (key, value) = entry.map_err(io("read"))?;
            entries.push(Record { revision: key.value().1, bytes: value.value().to_vec() });
        }
        Ok(Stored { snapshot, log: entries })
    }

    fn commit(&self, batch: &Batch) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(io("write"))?;
        {
            let mut log = txn.open_table(LOG).map_err(io("write"))?;
            for (doc, record) in &batch.appends {
                log.insert((doc.as_str(), record.revision), record.bytes.as_slice())
                    .map_err(io("write"))?;
            }
            let mut snapshots = txn.open_table(SNAPSHOTS).map_err(io("write"))?;
            for (doc, record) in &batch.snapshots {
                snapshots
                    .insert(doc.as_str(), (record.revision, record.bytes.as_slice()))
                    .map_err(io("write"))?;
            }
            for (doc, upto) in &batch.truncations {
                log.retain_in((doc.as_str(), 0)..=(doc.as_str(), *upto), |_, _| false)
                    .map_err(io("write"))?;
            }
        }
        txn.commit().map_err(io("write"))
    }
}
