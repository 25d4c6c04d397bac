//! Randomized convergence over real sockets: several thin clients edit at random with random
//! delays between sends and reads; at quiescence all equal the server.

use std::time::Duration;

use futures_util::StreamExt;
use rand::{RngExt, SeedableRng, rngs::SmallRng};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, TestServer, within};

/// One client's session: `edits` random edits, reading whatever arrives in between.
async fn session(mut client: Client, seed: u64, edits: usize) -> Client {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut made = 0;
    while made < edits {
        // A random delay, during which whatever the server sends is read and applied.
        let pause = tokio::time::sleep(Duration::from_micros(rng.random_range(0..2_000)));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                frame = client.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let message = serde_json::from_str(&text).expect("a server message");
                        if let Some(next) = client.thin.receive(message).expect("accepted") {
                            client.send(&next).await;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("connection ended: {other:?}"),
                },
                _ = &mut pause => break,
            }
        }
        let len = client.thin.len();
        if len > 0 && rng.random_bool(0.35) {
            let index = rng.random_range(0..len);
            let count = rng.random_range(1..=(len - index).min(3));
            client.act(|c| c.delete(index, count).expect("fits")).await;
        } else {
            let text = ["a", "bc", "é", "\n", "xyz"][rng.random_range(0..5)];
            let index = rng.random_range(0..=len);
            client.act(|c| c.insert(index, text).expect("fits")).await;
        }
        made += 1;
    }
    within(client.sync()).await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_converge_with_the_server_across_seeds() {
    for seed in 0..10u64 {
        let server = TestServer::start().await;
        let mut clients = Vec::new();
        for _ in 0..5 {
            clients.push(server.connect("race").await);
        }
        let sessions: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, client)| tokio::spawn(session(client, seed * 100 + i as u64, 30)))
            .collect();
        let mut clients = Vec::new();
        for session in sessions {
            clients.push(within(session).await.expect("the session ran"));
        }
        // Quiescence: no client has anything unacknowledged, so the server's revision is final.
        let (text, revision) = server.document("race").await;
        // Merged typing and deletes of already deleted text take fewer revisions than edits.
        assert!(revision > 0, "seed {seed}: nothing was applied");
        for client in &mut clients {
            within(client.catch_up(revision)).await;
            assert_eq!(
                client.thin.text(),
                text,
                "seed {seed}: {} differs from the server",
                client.id()
            );
            assert_eq!(client.thin.revision(), revision, "seed {seed}");
        }
        server.shutdown().await;
    }
}
