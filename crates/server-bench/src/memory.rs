//! Memory of one busy document: live heap bytes, counted by a global allocator, after rounds
//! of "insert 100 KB, delete it" through the real server, with its durable store in a
//! temporary folder (the store keeps the whole history, on disk; an in-memory store would keep
//! it in this heap). Bounded memory means the figure stops growing with what was typed once
//! the history window is full: what remains is the text's record of its deleted runs (ids,
//! no text), a few dozen bytes a change.

use anyhow::{Context, Result};
use futures_util::SinkExt;
use stats_alloc::INSTRUMENTED_SYSTEM;
use tandem_protocol::ThinClient;
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
    let data = std::env::temp_dir().join(format!("tandem-bench-memory-{}", std::process::id()));
    // One client writing as fast as the server acknowledges: far above a person's rate.
    let fast = std::num::NonZeroU32::new(1_000_000).context("not zero")?;
    let config = Config {
        bind: ([127, 0, 0, 1], 0).into(),
        storage: Storage::Dir(data.clone()),
        message_rate: fast,
        message_burst: fast,
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
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// Sends `message` and reads until every local change is acknowledged (a long insert goes out
/// in pieces, each after the ack of the one before).
async fn acknowledged(
    socket: &mut crate::Socket,
    thin: &mut ThinClient,
    message: Option<tandem_protocol::ClientMessage>,
) -> Result<()> {
    let message = message.context("a change was still in flight")?;
    socket.send(Message::text(serde_json::to_string(&message)?)).await?;
    while !thin.is_synced() {
        let message = next(socket).await?;
        if let Some(next) = thin.receive(message)? {
            socket.send(Message::text(serde_json::to_string(&next)?)).await?;
        }
    }
    Ok(())
}
