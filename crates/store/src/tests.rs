//! Tests of both stores: appends, snapshots that drop the log they cover, reopening a file,
//! and refusing a damaged one.

use std::path::PathBuf;

use crate::{Batch, Error, MemoryStore, Page, Record, RedbStore, Store, Stored};

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
    assert_eq!(store.load("notes", 0).expect("loads"), Stored::default());
    assert_eq!(store.last("notes").expect("reads"), None);
    let appends = |doc: &str, from: u64, to: u64| -> Vec<(String, Record)> {
        (from..=to).map(|r| (doc.to_owned(), record(r, &format!("{doc}{r}")))).collect()
    };
    let mut batch = Batch { appends: appends("notes", 1, 2), ..Batch::default() };
    batch.appends.extend(appends("plans", 1, 1));
    store.commit(&batch).expect("commits");
    store
        .commit(&Batch { appends: appends("notes", 3, 2_500), ..Batch::default() })
        .expect("commits");
    // A snapshot and a checkpoint at 2,000, with a version, in one commit with more entries.
    let batch = Batch {
        appends: appends("notes", 2_501, 2_600),
        snapshots: vec![("notes".into(), record(2_000, "snapshot"))],
        checkpoints: vec![
            ("notes".into(), record(1_000, "text at 1000")),
            ("notes".into(), record(2_000, "text at 2000")),
        ],
        versions: vec![("notes".into(), "draft".into(), b"at 1500".to_vec())],
    };
    store.commit(&batch).expect("commits");
    // Loading takes the snapshot and the log from `behind` revisions before it.
    let loaded = store.load("notes", 100).expect("loads");
    assert_eq!(loaded.snapshot, Some(record(2_000, "snapshot")));
    assert_eq!(loaded.log.first(), Some(&record(1_901, "notes1901")));
    assert_eq!(loaded.log.last(), Some(&record(2_600, "notes2600")));
    assert_eq!(loaded.log.len(), 700);
    // The whole history stays, and reads in pages.
    let page = store.log("notes", 0, 2_600, Page::count(3)).expect("reads");
    assert_eq!(page, [record(1, "notes1"), record(2, "notes2"), record(3, "notes3")]);
    let page = store.log("notes", 1_499, 1_501, Page::count(10)).expect("reads");
    assert_eq!(page, [record(1_500, "notes1500"), record(1_501, "notes1501")]);
    assert_eq!(store.log("notes", 5, 5, Page::count(10)).expect("reads"), []);
    // Pages are bounded by bytes too ("notes1" is 6), but always move on by one.
    let page = store.log("notes", 0, 2_600, Page { count: 10, bytes: 13 }).expect("reads");
    assert_eq!(page, [record(1, "notes1"), record(2, "notes2")]);
    let page = store.log("notes", 0, 2_600, Page { count: 10, bytes: 1 }).expect("reads");
    assert_eq!(page, [record(1, "notes1")]);
    assert_eq!(store.last("notes").expect("reads"), Some(record(2_600, "notes2600")));
    // The nearest checkpoint at or before a revision.
    assert_eq!(store.checkpoint("notes", 999).expect("reads"), None);
    assert_eq!(
        store.checkpoint("notes", 1_999).expect("reads"),
        Some(record(1_000, "text at 1000"))
    );
    assert_eq!(
        store.checkpoint("notes", 9_999).expect("reads"),
        Some(record(2_000, "text at 2000"))
    );
    // Versions by label.
    store
        .commit(&Batch {
            versions: vec![("notes".into(), "a-first".into(), b"at 10".to_vec())],
            ..Batch::default()
        })
        .expect("commits");
    let versions = store.versions("notes").expect("reads");
    assert_eq!(
        versions,
        [("a-first".into(), b"at 10".to_vec()), ("draft".into(), b"at 1500".to_vec())]
    );
    assert_eq!(store.version("notes", "draft").expect("reads"), Some(b"at 1500".to_vec()));
    assert_eq!(store.version("notes", "nope").expect("reads"), None);
    assert_eq!(store.versions("plans").expect("reads"), []);
    // Other documents are untouched, and ids are keys, not paths.
    assert_eq!(store.load("plans", 0).expect("loads").log, [record(1, "plans1")]);
    assert_eq!(store.load("no/such/../path", 0).expect("ids are keys"), Stored::default());
}

#[test]
fn the_memory_store_keeps_history_checkpoints_and_versions() {
    exercise(&MemoryStore::new());
}

#[test]
fn the_redb_store_keeps_them_and_survives_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("tandem.redb");
    exercise(&RedbStore::open(&path).expect("opens"));
    let reopened = RedbStore::open(&path).expect("reopens");
    assert_eq!(reopened.last("notes").expect("reads"), Some(record(2_600, "notes2600")));
    assert_eq!(reopened.load("notes", 0).expect("loads").log.len(), 600);
}

#[test]
fn a_damaged_store_file_is_an_error_that_names_it() {
    let dir = TempDir::new("damaged");
    let garbage = dir.0.join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).expect("writes");
    let error = RedbStore::open(&garbage).expect_err("garbage is refused");
    assert!(
        matches!(&error, Error::Corrupt { source, .. } if source.to_string().contains("magic number")),
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
                    ..Batch::default()
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
        matches!(&error, Error::Corrupt { source, .. } if source.to_string().contains("truncated")),
        "{error:?}"
    );
    assert!(error.to_string().contains("truncated.redb"), "{error}");
}

mod records {
    //! The record format: golden files of every version decode, and today's records encode to
    //! exactly today's files (`TANDEM_BLESS=1` rewrites those, for a reviewed change).

    use std::{collections::BTreeMap, path::PathBuf};

    use crate::{
        Error,
        records::{
            ChangeKind, ChangeRecord, Encoded, LastRequestRecord, RequestIdRecord, SnapshotRecord,
            VERSION, VersionRecord,
        },
    };

    fn path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/records").join(name)
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(path(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
    }

    fn changes(v: u32) -> Vec<(&'static str, ChangeRecord)> {
        // Version 2 added the next id and the time.
        let change = |revision, author: &str, request, continued, change| ChangeRecord {
            v,
            revision,
            author: author.into(),
            request,
            continued,
            next_seq: if v >= 2 { 10 + revision } else { 0 },
            at: (v >= 2).then_some(1_765_000_000_000 + revision),
            change,
        };
        vec![
            (
                "insert",
                change(
                    1,
                    "ada",
                    Some(RequestIdRecord::Number(7)),
                    false,
                    ChangeKind::Insert { index: 0, text: "hé 🚀".into() },
                ),
            ),
            (
                "delete",
                change(
                    2,
                    "c00ff",
                    Some(RequestIdRecord::String("r-2".into())),
                    true,
                    ChangeKind::Delete { index: 1, length: 2 },
                ),
            ),
            (
                "title",
                change(3, "bob", None, false, ChangeKind::SetTitle { title: "Plans".into() }),
            ),
            (
                "counter",
                change(
                    4,
                    "bob",
                    Some(RequestIdRecord::Number((1 << 53) - 1)),
                    false,
                    ChangeKind::IncrementCounter { name: "likes".into(), amount: -3, value: -1 },
                ),
            ),
        ]
    }

    fn snapshot(v: u32) -> SnapshotRecord {
        let requests = BTreeMap::from([
            (
                "ada".to_owned(),
                LastRequestRecord { id: RequestIdRecord::Number(7), revision: 1, value: None },
            ),
            (
                "bob".to_owned(),
                LastRequestRecord {
                    id: RequestIdRecord::Number((1 << 53) - 1),
                    revision: 4,
                    value: Some(-1),
                },
            ),
        ]);
        SnapshotRecord {
            v,
            revision: 4,
            text: "h🚀".into(),
            title: "Plans".into(),
            counters: BTreeMap::from([("likes".to_owned(), -1)]),
            requests,
            structure: (v >= 2).then(|| "AQIDBA==".to_owned()),
            history_from: (v >= 2).then_some(0),
            position: None,
        }
    }

    /// `record` encodes to the golden file `name` (written anew with `TANDEM_BLESS=1`).
    fn golden<R: Encoded + PartialEq + std::fmt::Debug>(name: &str, record: &R) {
        let bytes = record.encode();
        if std::env::var_os("TANDEM_BLESS").is_some() {
            std::fs::write(path(name), &bytes).expect("writes the golden file");
        }
        assert_eq!(String::from_utf8(read(name)), String::from_utf8(bytes), "{name} changed");
        assert_eq!(&R::decode("notes", 0, &read(name)).expect("decodes"), record);
    }

    #[test]
    fn records_of_every_version_decode() {
        for v in 0..=VERSION {
            for (kind, record) in changes(v) {
                let name = format!("change-v{v}-{kind}.json");
                let decoded = ChangeRecord::decode("notes", 0, &read(&name)).expect("decodes");
                assert_eq!(decoded, record, "{name}");
            }
            let name = format!("snapshot-v{v}.json");
            let decoded = SnapshotRecord::decode("notes", 0, &read(&name)).expect("decodes");
            assert_eq!(decoded, snapshot(v), "{name}");
        }
        let name = "version-v2.json";
        assert_eq!(VersionRecord::decode("notes", 0, &read(name)).expect("decodes"), version());
    }

    fn version() -> VersionRecord {
        VersionRecord {
            v: 2,
            label: "draft-1".into(),
            revision: 1_500,
            created_at: 1_765_000_000_000,
        }
    }

    #[test]
    fn records_written_now_are_the_golden_files_of_this_version() {
        for (kind, record) in changes(VERSION) {
            golden(&format!("change-v{VERSION}-{kind}.json"), &record);
        }
        golden(&format!("snapshot-v{VERSION}.json"), &snapshot(VERSION));
        golden(&format!("version-v{VERSION}.json"), &version());
    }

    #[test]
    fn a_record_from_a_newer_version_or_damaged_is_an_error_naming_it() {
        let newer = br#"{"v":99,"revision":5,"author":"ada","kind":"set_title","title":"x"}"#;
        let error = ChangeRecord::decode("notes", 5, newer).expect_err("too new");
        assert!(matches!(error, Error::Version { version: 99, revision: 5, .. }), "{error:?}");
        let error = ChangeRecord::decode("notes", 6, b"{\"revision\":").expect_err("damaged");
        assert!(matches!(&error, Error::Decode { doc, revision: 6, .. } if doc == "notes"));
        assert!(std::error::Error::source(&error).is_some(), "keeps serde's error as its source");
    }
}
