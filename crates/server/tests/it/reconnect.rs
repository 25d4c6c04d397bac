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
