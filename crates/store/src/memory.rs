//! The in-memory store: the same behaviour as a durable one, lost when the process ends.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use crate::{Batch, Error, Page, Record, Store, Stored};

/// Keeps every document in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    documents: Mutex<BTreeMap<String, Document>>,
}

#[derive(Debug, Default)]
struct Document {
    snapshot: Option<Record>,
    log: BTreeMap<u64, Vec<u8>>,
    checkpoints: BTreeMap<u64, Vec<u8>>,
    versions: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn documents(&self) -> MutexGuard<'_, BTreeMap<String, Document>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, doc: &str, f: impl FnOnce(&Document) -> T) -> T {
        let documents = self.documents();
        f(documents.get(doc).unwrap_or(&Document::default()))
    }
}

fn record((revision, bytes): (&u64, &Vec<u8>)) -> Record {
    Record { revision: *revision, bytes: bytes.clone() }
}

impl Store for MemoryStore {
    fn load(&self, doc: &str, behind: u64) -> Result<Stored, Error> {
        Ok(self.read(doc, |document| {
            let from = document.snapshot.as_ref().map_or(0, |s| s.revision.saturating_sub(behind));
            let log = document.log.range(from + 1..).map(record).collect();
            Stored { snapshot: document.snapshot.clone(), log, position: 0 }
        }))
    }

    fn log(&self, doc: &str, after: u64, up_to: u64, page: Page) -> Result<Vec<Record>, Error> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        self.read(doc, |document| {
            page.fill(document.log.range(after + 1..=up_to).map(|entry| Ok(record(entry))))
        })
    }

    fn last(&self, doc: &str) -> Result<Option<Record>, Error> {
        Ok(self.read(doc, |document| document.log.iter().next_back().map(record)))
    }

    fn checkpoint(&self, doc: &str, revision: u64) -> Result<Option<Record>, Error> {
        Ok(self
            .read(doc, |document| document.checkpoints.range(..=revision).next_back().map(record)))
    }

    fn versions(&self, doc: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        Ok(self.read(doc, |document| {
            document.versions.iter().map(|(label, bytes)| (label.clone(), bytes.clone())).collect()
        }))
    }

    fn version(&self, doc: &str, label: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.read(doc, |document| document.versions.get(label).cloned()))
    }

    fn commit(&self, batch: &Batch) -> Result<(), Error> {
        let mut documents = self.documents();
        for (doc, record) in &batch.appends {
            let log = &mut documents.entry(doc.clone()).or_default().log;
            log.insert(record.revision, record.bytes.clone());
        }
        for (doc, snapshot) in &batch.snapshots {
            documents.entry(doc.clone()).or_default().snapshot = Some(snapshot.clone());
        }
        for (doc, record) in &batch.checkpoints {
            let checkpoints = &mut documents.entry(doc.clone()).or_default().checkpoints;
            checkpoints.insert(record.revision, record.bytes.clone());
        }
        for (doc, label, bytes) in &batch.versions {
            let versions = &mut documents.entry(doc.clone()).or_default().versions;
            versions.insert(label.clone(), bytes.clone());
        }
        Ok(())
    }
}
