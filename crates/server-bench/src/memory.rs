//! Memory of one busy document: live heap bytes, counted by a global allocator, after rounds
//! of "insert 100 KB, delete it" through the real server (in memory, so the store holds
//! nothing). Bounded memory means the figure stops growing once the history window is full.

use anyhow::{Context, Result};
use futures_util::SinkExt;
use stats_alloc::INSTRUMENTED_SYSTEM;
use tandem_protocol::{ServerMessage, ThinClient};
use tandem_server::{Config, Server, Storage};
use tokio_tungstenite::tungstenite::Message;

use crate::next;

/// Bytes allocated and not yet freed, as the process's global allocator counts them.
fn live() -> usize {
    // A reallocation's growth or shrinkage is already in these two.
    let stats = INSTRUMENTED_SYSTEM.stats();
    stats.bytes_allocated.saturating_sub(stats.bytes_deallocated)
}

const CHECKPOINTS: [usize; 3] = [100, 1_000, 5_000];
const SIZE: usize = 100_000;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub(crate) async fn churn() -> Result<()> {
    let config = Config {
        bind: ([127, 0, 0, 1], 0).into(),
        storage: Storage::InMemory,
        ..Config::default()
    };
    let server = Server::start(config).await?;
    let url = format!("ws://{}/ws/churn", server.local_addr());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.context("connecting")?;
    let mut thin = ThinClient::new(next(&mut socket).await?)?;
    let baseline = live();
    println!(
        "live heap of the whole process (server and client), \"insert 100 KB, delete it\" on one document:"
    );
    println!();
    println!("| rounds | live heap | growth since the connection |");
    println!("|---:|---:|---:|");
    let text = "x".repeat(SIZE);
    let mut round = 0;
    for checkpoint in CHECKPOINTS {
        while round < checkpoint {
            let insert = thin.insert(0, &text)?;
            acknowledged(&mut socket, &mut thin, insert).await?;
            let delete = thin.delete(0, SIZE)?;
            acknowledged(&mut socket, &mut thin, delete).await?;
            round += 1;
        }
        let live = live();
        println!("| {round} | {:.1} MiB | {:+.1} MiB |", mib(live), mib(live) - mib(baseline));
    }
    server.shutdown().await;
    Ok(())
}

/// Sends `message` and reads until its ack.
async fn acknowledged(
    socket: &mut crate::Socket,
    thin: &mut ThinClient,
    message: Option<tandem_protocol::ClientMessage>,
) -> Result<()> {
    let message = message.context("a change was still in flight")?;
    socket.send(Message::text(serde_json::to_string(&message)?)).await?;
    loop {
        let message = next(socket).await?;
        let acked = matches!(message, ServerMessage::Ack { .. });
        thin.receive(message)?;
        if acked {
            return Ok(());
        }
    }
}
