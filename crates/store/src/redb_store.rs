//! The embedded default: one redb file, crash-safe and fsynced on every commit.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::{Batch, Error, Page, Record, Store, Stored};

/// Log entries by (document, revision): each document's whole history.
const LOG: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("log");
/// Each document's snapshot: (revision, bytes).
const SNAPSHOTS: TableDefinition<'_, &str, (u64, &[u8])> = TableDefinition::new("snapshots");
/// Checkpoints by (document, revision).
const CHECKPOINTS: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("checkpoints");
/// Named versions by (document, label).
const VERSIONS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("versions");

/// A store in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Opens the store at `path`, creating it if it does not exist, with redb's default cache
    /// (1 GiB). The whole file is checked first: a truncated or damaged file is an error that
    /// names it, never a silent loss.
    pub fn open(path: &Path) -> Result<RedbStore, Error> {
        RedbStore::open_with_cache(path, 1 << 30)
    }

    /// As [`RedbStore::open`], with at most `cache_bytes` of memory caching the file.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, Error> {
        let mut builder = Database::builder();
        builder.set_check_integrity_on_open(true).set_cache_size(cache_bytes);
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

impl RedbStore {
    /// The records of `table` for `doc` in `range` of revisions, in order, at most `limit`;
    /// from the end when `backwards`.
    fn range(
        &self,
        table: TableDefinition<'_, (&str, u64), &[u8]>,
        doc: &str,
        range: std::ops::RangeInclusive<u64>,
        page: Page,
        backwards: bool,
    ) -> Result<Vec<Record>, Error> {
        let txn = self.db.begin_read().map_err(io("read"))?;
        let table = txn.open_table(table).map_err(io("read"))?;
        let (start, end) = range.into_inner();
        let entries = table.range((doc, start)..=(doc, end)).map_err(io("read"))?;
        let record = |entry: Result<_, redb::StorageError>| -> Result<Record, Error> {
            let (key, value): (redb::AccessGuard<'_, (&str, u64)>, redb::AccessGuard<'_, &[u8]>) =
                entry.map_err(io("read"))?;
            Ok(Record { revision: key.value().1, bytes: value.value().to_vec() })
        };
        if backwards {
            page.fill(entries.rev().map(record))
        } else {
            page.fill(entries.map(record))
        }
    }
}

impl Store for RedbStore {
    fn load(&self, doc: &str, behind: u64) -> Result<Stored, Error> {
        let txn = self.db.begin_read().map_err(io("read"))?;
        let snapshots = txn.open_table(SNAPSHOTS).map_err(io("read"))?;
        let snapshot = snapshots.get(doc).map_err(io("read"))?.map(|guard| {
            let (revision, bytes) = guard.value();
            Record { revision, bytes: bytes.to_vec() }
        });
        drop(txn);
        let from = snapshot.as_ref().map_or(0, |s| s.revision.saturating_sub(behind));
        let log = self.range(LOG, doc, from + 1..=u64::MAX, Page::count(usize::MAX), false)?;
        Ok(Stored { snapshot, log, position: 0 })
    }

    fn log(&self, doc: &str, after: u64, up_to: u64, page: Page) -> Result<Vec<Record>, Error> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        self.range(LOG, doc, after + 1..=up_to, page, false)
    }

    fn last(&self, doc: &str) -> Result<Option<Record>, Error> {
        Ok(self.range(LOG, doc, 0..=u64::MAX, Page::count(1), true)?.pop())
    }

    fn checkpoint(&self, doc: &str, revision: u64) -> Result<Option<Record>, Error> {
        Ok(self.range(CHECKPOINTS, doc, 0..=revision, Page::count(1), true)?.pop())
    }

    fn versions(&self, doc: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let txn = self.db.begin_read().map_err(io("read"))?;
        let table = txn.open_table(VERSIONS).map_err(io("read"))?;
        let entries = table.range((doc, "")..).map_err(io("read"))?;
        let mut versions = Vec::new();
        for entry in entries {
            let (key, value) = entry.map_err(io("read"))?;
            let (owner, label) = key.value();
            if owner != doc {
                break;
            }
            versions.push((label.to_owned(), value.value().to_vec()));
        }
        Ok(versions)
    }

    fn version(&self, doc: &str, label: &str) -> Result<Option<Vec<u8>>, Error> {
        let txn = self.db.begin_read().map_err(io("read"))?;
        let table = txn.open_table(VERSIONS).map_err(io("read"))?;
        let found = table.get((doc, label)).map_err(io("read"))?;
        Ok(found.map(|guard| guard.value().to_vec()))
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
            let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(io("write"))?;
            for (doc, record) in &batch.checkpoints {
                checkpoints
                    .insert((doc.as_str(), record.revision), record.bytes.as_slice())
                    .map_err(io("write"))?;
            }
            let mut versions = txn.open_table(VERSIONS).map_err(io("write"))?;
            for (doc, label, bytes) in &batch.versions {
                versions
                    .insert((doc.as_str(), label.as_str()), bytes.as_slice())
                    .map_err(io("write"))?;
            }
        }
        txn.commit().map_err(io("write"))
    }
}
