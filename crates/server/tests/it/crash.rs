//! Crashes: the real `tandem` binary is killed with SIGKILL at random moments while several
//! clients write; after each restart on the same data dir, every acknowledged change is there,
//! and nothing is half there.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::Child,
    sync::{Arc, Mutex, PoisonError},
};

use futures_util::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng, rngs::SmallRng};
use tandem_protocol::{ServerMessage, ThinClient};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, TempDir, within};

/// Starts the binary on `dir` and returns it with the address it logged.
fn spawn(dir: &TempDir) -> (Child, SocketAddr) {
    let data = dir.0.to_string_lossy();
    crate::support::spawn_binary(&["--data-dir", &data])
}

type Tokens = Arc<Mutex<BTreeSet<String>>>;

fn add(tokens: &Tokens, token: &str) {
    tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(token.to_owned());
}

/// Writes tokens one at a time, each acknowledged before the next, until the server dies.
async fn writer(
    addr: SocketAddr,
    name: String,
    seed: u64,
    sent: Tokens,
    acked: Tokens,
    acks: mpsc::UnboundedSender<()>,
) {
    let Ok((mut socket, _)) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws/crash")).await
    else {
        return;
    };
    let Some(Ok(Message::Text(welcome))) = socket.next().await else { return };
    let Ok(mut thin) = ThinClient::new(serde_json::from_str(&welcome).expect("a message")) else {
        return;
    };
    let mut rng = SmallRng::seed_from_u64(seed);
    for n in 0.. {
        let token = format!("[{name}:{n}]");
        // Only at either end, so tokens never split each other.
        let index = if rng.random_bool(0.5) { 0 } else { thin.len() };
        let Ok(Some(message)) = thin.insert(index, &token) else { return };
        add(&sent, &token);
        let frame = serde_json::to_string(&message).expect("serializes");
        if socket.send(Message::text(frame)).await.is_err() {
            return;
        }
        loop {
            let Some(Ok(frame)) = socket.next().await else { return };
            let Message::Text(text) = frame else { continue };
            let message: ServerMessage = serde_json::from_str(&text).expect("a message");
            let is_ack = matches!(message, ServerMessage::Ack { .. });
            if thin.receive(message).is_err() {
                return;
            }
            if is_ack {
                add(&acked, &token);
                let _ = acks.send(());
                break;
            }
        }
    }
}

/// Checks the document against what was sent and acknowledged.
fn check(text: &str, sent: &Tokens, acked: &Tokens, seed: u64) {
    let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner);
    let mut present = BTreeSet::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(']')
            .map(|at| at + 1)
            .unwrap_or_else(|| panic!("seed {seed}: a cut token in {rest:?}"));
        let token = &rest[..end];
        assert!(sent.contains(token), "seed {seed}: {token:?} was never sent: half-applied?");
        assert!(present.insert(token.to_owned()), "seed {seed}: {token} applied twice");
        rest = &rest[end..];
    }
    let lost: Vec<&String> = acked.difference(&present).collect();
    assert!(lost.is_empty(), "seed {seed}: acknowledged but lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_sigkill() {
    let seed: u64 = rand::random();
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = TempDir::new("crash");
    let (sent, acked): (Tokens, Tokens) = Default::default();
    for round in 0..10 {
        let (mut child, addr) = spawn(&dir);
        let client = Client::connect(addr, "/ws/crash").await;
        check(&client.thin.text(), &sent, &acked, seed);
        drop(client);
        let (acks, mut acknowledged) = mpsc::unbounded_channel();
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let name = format!("r{round}w{w}");
                tokio::spawn(writer(
                    addr,
                    name,
                    rng.random(),
                    Arc::clone(&sent),
                    Arc::clone(&acked),
                    acks.clone(),
                ))
            })
            .collect();
        // Kill at a random moment: after a random number of acknowledgements.
        let kill_after = rng.random_range(1..80);
        for _ in 0..kill_after {
            within(acknowledged.recv()).await.expect("the writers are acknowledged");
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        for writer in writers {
            within(writer).await.expect("the writer ends once the server is gone");
        }
    }
    let (mut child, addr) = spawn(&dir);
    let client = Client::connect(addr, "/ws/crash").await;
    check(&client.thin.text(), &sent, &acked, seed);
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner).len();
    assert!(acked >= 10, "seed {seed}: only {acked} acknowledgements over ten rounds");
    child.kill().expect("stops");
    child.wait().expect("reaped");
}
