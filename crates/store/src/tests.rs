//! Tests of both stores: appends, snapshots that drop the log they cover, reopening a file,
//! and refusing a damaged one.

use std::path::PathBuf;

use crate::{Batch, Error, MemoryStore, Record, RedbStore, Store, Stored};

fn record(revision: u64, text: &str) -> Record {
    Record { revision, bytes: text.as_bytes().to_vec() }
}

/// A fresh folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("tandem-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn exercise(store: &dyn Store) {
    assert_eq!(store.load("notes").expect("loads"), Stored::default());
    let batch = Batch {
        appends: vec![
            ("notes".into(), record(1, "a")),
            ("plans".into(), record(1, "x")),
            ("notes".into(), record(2, "b")),
        ],
        snapshots: vec![],
        truncations: vec![],
    };
    store.commit(&batch).expect("commits");
    store
        .commit(&Batch {
            appends: vec![("notes".into(), record(3, "c"))],
            snapshots: vec![],
            truncations: vec![],
        })
        .expect("commits");
    let loaded = store.load("notes").expect("loads");
    assert_eq!(
        loaded,
        Stored { snapshot: None, log: vec![record(1, "a"), record(2, "b"), record(3, "c")] }
    );
    // A snapshot at 2 and a truncation up to 1, in the same commit as a new entry: the entry at 2
    // is kept behind the snapshot.
    let batch = Batch {
        appends: vec![("notes".into(), record(4, "d"))],
        snapshots: vec![("notes".into(), record(2, "ab"))],
        truncations: vec![("notes".into(), 1)],
    };
    store.commit(&batch).expect("commits");
    let loaded = store.load("notes").expect("loads");
    assert_eq!(loaded, compacted_notes());
    assert_eq!(
        store.load("plans").expect("loads").log,
        [record(1, "x")],
        "other documents untouched"
    );
    assert_eq!(store.load("no/such/../path").expect("ids are keys, not paths"), Stored::default());
}

/// What `exercise` leaves of "notes": the snapshot and the log records after it.
fn compacted_notes() -> Stored {
    Stored {
        snapshot: Some(record(2, "ab")),
        log: vec![record(2, "b"), record(3, "c"), record(4, "d")],
    }
}

#[test]
fn the_memory_store_appends_and_compacts() {
    exercise(&MemoryStore::new());
}

#[test]
fn the_redb_store_appends_compacts_and_survives_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("tandem.redb");
    exercise(&RedbStore::open(&path).expect("opens"));
    let reopened = RedbStore::open(&path).expect("reopens");
    let loaded = reopened.load("notes").expect("loads");
    assert_eq!(loaded, compacted_notes());
}

#[test]
fn a_damaged_store_file_is_an_error_that_names_it() {
    let dir = TempDir::new("damaged");
    let garbage = dir.0.join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).expect("writes");
    let error = RedbStore::open(&garbage).expect_err("garbage is refused");
    assert!(
        matches!(&error, Error::Corrupt { reason, .. } if reason.contains("magic number")),
        "{error:?}"
    );
    assert!(error.to_string().contains("garbage.redb"), "{error}");

    let truncated = dir.0.join("truncated.redb");
    {
        let store = RedbStore::open(&truncated).expect("opens");
        for revision in 1..200 {
            store
                .commit(&Batch {
                    appends: vec![("notes".into(), record(revision, &"x".repeat(100)))],
                    snapshots: vec![],
                    truncations: vec![],
                })
                .expect("commits");
        }
    }
    let len = std::fs::metadata(&truncated).expect("exists").len();
    let file = std::fs::OpenOptions::new().write(true).open(&truncated).expect("opens");
    file.set_len(len / 2).expect("truncates");
    drop(file);
    let error = RedbStore::open(&truncated).expect_err("a truncated store is refused");
    assert!(
        matches!(&error, Error::Corrupt { reason, .. } if reason.contains("truncated")),
        "{error:?}"
    );
    assert!(error.to_string().contains("truncated.redb"), "{error}");
}
