//! Reconnection: a client whose connection drops with changes in flight resumes from its
//! revision, and every change is applied exactly once.

use crate::support::TestServer;

fn tokens(text: &str) -> Vec<&str> {
    let mut tokens: Vec<&str> = text.split_inclusive(']').collect();
    tokens.sort_unstable();
    tokens
}

#[tokio::test]
async fn a_client_that_drops_with_changes_in_flight_resumes_and_nothing_is_applied_twice() {
    for round in 0..10 {
        let server = TestServer::start().await;
        let mut ada = server.connect("notes").await;
        let mut bob = server.connect("notes").await;
        ada.recv().await; // Bob's arrival.
        // Ada types three tokens: the first goes out, the others wait behind it.
        let mut first = None;
        for n in 0..3 {
            let message =
                ada.thin.insert(ada.thin.len(), &format!("[a{round}.{n}]")).expect("fits");
            first = first.or(message);
        }
        ada.send(&first.expect("the first is sent at once")).await;
        if round % 2 == 0 {
            // Sometimes the server has applied it before the connection drops.
            bob.until(|m| matches!(m, tandem_protocol::ServerMessage::Insert { .. })).await;
        }
        let mut ada = ada.reconnect(server.addr()).await;
        // Bob edits while Ada is away and while she catches up.
        bob.act(|c| c.insert(0, "[b]").expect("fits")).await;
        bob.sync().await;
        ada.sync().await;
        let (text, revision) = server.document("notes").await;
        for client in [&mut ada, &mut bob] {
            client.catch_up(revision).await;
            assert_eq!(client.thin.text(), text, "round {round}");
        }
        let expected = [
            "[b]".to_owned(),
            format!("[a{round}.0]"),
            format!("[a{round}.1]"),
            format!("[a{round}.2]"),
        ];
        let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(tokens(&text), expected, "round {round}: each change exactly once");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_client_away_for_thousands_of_revisions_and_a_restart_comes_back_with_its_edits() {
    use tandem_server::{Config, Storage};

    use crate::support::TempDir;

    let dir = TempDir::new("away");
    let config = |config: &mut Config| {
        config.storage = Storage::Dir(dir.0.clone());
        // A short history in memory, so that coming back needs the store.
        config.limits.max_history = 100;
    };
    let server = TestServer::start_with(config).await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    ada.act(|c| c.insert(0, "[start]").expect("fits")).await;
    ada.sync().await;
    bob.catch_up(1).await;
    // Bob's edit goes out as his connection drops: it may or may not arrive.
    bob.act(|c| c.insert(7, "[bob in flight]").expect("fits")).await;
    let mut thin = bob.thin.clone();
    drop(bob);
    // Offline, Bob goes on typing; the edit waits behind the one in flight.
    assert_eq!(thin.insert(0, "[bob offline 🚲]").expect("fits"), None);
    // Meanwhile Ada makes three thousand changes, with a restart halfway.
    for i in 0..1_500 {
        ada.act(|c| c.insert(c.len(), if i % 2 == 0 { "a" } else { "é" }).expect("fits")).await;
        ada.sync().await;
    }
    drop(ada);
    server.shutdown().await;
    let server = TestServer::start_with(config).await;
    let mut ada = server.connect("notes").await;
    // Only her own text: typing at the end, and now and then deleting what she typed last.
    for i in 0..1_500 {
        let delete = i % 3 == 0;
        let end = ada.thin.len();
        ada.act(|c| if delete { c.delete(end - 1, 1) } else { c.insert(end, "z") }.expect("fits"))
            .await;
        ada.sync().await;
    }
    // Bob comes back from revision 1: the changes since come from the store, then his own.
    let mut bob = crate::support::Client::resume(server.addr(), thin, "").await;
    bob.sync().await;
    let (text, revision) = server.document("notes").await;
    assert!(revision > 3_000, "{revision}");
    for client in [&mut ada, &mut bob] {
        client.catch_up(revision).await;
        assert_eq!(client.thin.text(), text);
    }
    assert_eq!(text.matches("[bob in flight]").count(), 1, "{text:.80}");
    assert_eq!(text.matches("[bob offline 🚲]").count(), 1, "{text:.80}");
    assert!(text.starts_with("[bob offline 🚲][start"), "{text:.80}");
    server.shutdown().await;
}
