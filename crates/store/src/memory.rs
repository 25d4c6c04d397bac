//! The in-memory store: the same behaviour as a durable one, lost when the process ends.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use crate::{Batch, Error, Record, Store, Stored};

/// Keeps every document in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    documents: Mutex<BTreeMap<String, Stored>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&self, doc: &str) -> Result<Stored, Error> {
        let documents = self.documents.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(documents.get(doc).cloned().unwrap_or_default())
    }

    fn commit(&self, batch: &Batch) -> Result<(), Error> {
        let mut documents = self.documents.lock().unwrap_or_else(PoisonError::into_inner);
        for (doc, record) in &batch.appends {
            documents.entry(doc.clone()).or_default().log.push(record.clone());
        }
        for (doc, snapshot) in &batch.snapshots {
            let stored = documents.entry(doc.clone()).or_default();
            stored.snapshot =
                Some(Record { revision: snapshot.revision, bytes: snapshot.bytes.clone() });
        }
        for (doc, upto) in &batch.truncations {
            documents.entry(doc.clone()).or_default().log.retain(|entry| entry.revision > *upto);
        }
        Ok(())
    }
}
