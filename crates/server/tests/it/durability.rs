//! Durability: what was acknowledged survives a restart, an unload, compaction and a crash;
//! a damaged store stops the server from starting.

use std::time::Duration;

use tandem_server::{Config, Server, Storage};

use crate::support::{TempDir, TestServer, within};

fn stored(dir: &TempDir) -> impl FnOnce(&mut Config) + '_ {
    move |config| config.storage = Storage::Dir(dir.0.clone())
}

/// The document as a fresh client sees it: text, title, a counter and the revision.
async fn state(server: &TestServer, doc: &str) -> (String, String, i64, u64) {
    let client = server.connect(doc).await;
    let thin = &client.thin;
    (thin.text(), thin.title().to_owned(), thin.counter("likes"), thin.revision())
}

#[tokio::test]
async fn a_restart_keeps_text_title_counters_and_revision() {
    let dir = TempDir::new("restart");
    let server = TestServer::start_with(stored(&dir)).await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "héllo wörld").expect("fits")).await;
    ada.act(|c| c.set_title("Plans")).await;
    ada.act(|c| c.increment_counter("likes", 3)).await;
    ada.act(|c| c.delete(1, 4).expect("fits")).await;
    ada.sync().await;
    let before = state(&server, "notes").await;
    assert_eq!(before, ("h wörld".to_owned(), "Plans".to_owned(), 3, 4));
    drop(ada);
    server.shutdown().await;
    let server = TestServer::start_with(stored(&dir)).await;
    assert_eq!(state(&server, "notes").await, before);
    // And editing carries on from there.
    let mut bob = server.connect("notes").await;
    bob.act(|c| c.insert(0, ">").expect("fits")).await;
    bob.sync().await;
    assert_eq!(bob.thin.revision(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unloaded_document_loads_again_from_the_store() {
    for storage in ["memory", "disk"] {
        let dir = TempDir::new("unload");
        let server = TestServer::start_with(|config| {
            config.unload_after = Duration::from_millis(50);
            if storage == "disk" {
                config.storage = Storage::Dir(dir.0.clone());
            }
        })
        .await;
        let mut ada = server.connect("notes").await;
        ada.act(|c| c.insert(0, "kept").expect("fits")).await;
        ada.sync().await;
        drop(ada);
        // Wait for the unload: the document disappears from /status.
        within(async {
            loop {
                let (_, status) = server.get("/status").await;
                if !status.contains("\"notes\"") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(server.document("notes").await, ("kept".to_owned(), 1), "{storage}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_compacted_store_restarts_to_the_same_document() {
    let dir = TempDir::new("compact");
    let server = TestServer::start_with(stored(&dir)).await;
    let mut ada = server.connect("notes").await;
    // Past two snapshots (every 1,000 revisions), with a tail of log after the last.
    for i in 0..2_100 {
        ada.act(|c| c.insert(i % 7, "x").expect("fits")).await;
        ada.sync().await;
    }
    ada.act(|c| c.delete(3, 100).expect("fits")).await;
    ada.sync().await;
    let before = state(&server, "notes").await;
    assert_eq!((before.0.chars().count(), before.3), (2_000, 2_101));
    drop(ada);
    server.shutdown().await;
    {
        use tandem_store::Store;
        let store = tandem_store::RedbStore::open(&dir.0.join("tandem.redb")).expect("opens");
        let stored = store.load("notes", 1_000).expect("loads");
        assert_eq!(
            stored.snapshot.map(|snapshot| snapshot.revision),
            Some(2_000),
            "a snapshot at 2,000"
        );
        let first = stored.log.first().map(|record| record.revision);
        assert_eq!((first, stored.log.len()), (Some(1_001), 1_101), "loading reads from behind it");
        // The whole history stays, with a checkpoint of the text every 1,000 revisions.
        assert_eq!(
            store.log("notes", 0, 10, tandem_store::Page::count(10)).expect("reads").len(),
            10,
            "from revision 1"
        );
        let checkpoint = store.checkpoint("notes", 1_999).expect("reads");
        assert_eq!(checkpoint.map(|record| record.revision), Some(1_000));
    }
    let server = TestServer::start_with(stored(&dir)).await;
    assert_eq!(state(&server, "notes").await, before);
    server.shutdown().await;
}

#[tokio::test]
async fn a_damaged_store_stops_the_server_from_starting() {
    let dir = TempDir::new("damaged");
    std::fs::write(dir.0.join("tandem.redb"), vec![0x42; 8192]).expect("writes");
    let config = Config {
        bind: ([127, 0, 0, 1], 0).into(),
        storage: Storage::Dir(dir.0.clone()),
        ..Config::default()
    };
    let error = Server::start(config).await.err().expect("refuses to start");
    let message = format!("{error:#}");
    assert!(message.contains("tandem.redb") && message.contains("corrupt"), "{message}");
}

#[tokio::test]
async fn client_ids_given_out_after_a_restart_are_new_so_no_change_is_mistaken_for_a_resend() {
    let dir = TempDir::new("ids");
    let server = TestServer::start_with(stored(&dir)).await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "A").expect("fits")).await;
    ada.sync().await;
    let ada_id = ada.id();
    drop(ada);
    server.shutdown().await;
    let server = TestServer::start_with(stored(&dir)).await;
    let bob = server.connect("notes").await;
    assert_ne!(bob.id(), ada_id);
    // Bob resumes (so resends would be deduplicated) and makes his first change.
    let mut bob = bob.reconnect(server.addr()).await;
    bob.act(|c| c.insert(0, "B").expect("fits")).await;
    bob.sync().await;
    assert_eq!(server.document("notes").await, ("BA".to_owned(), 2));
    server.shutdown().await;
}
