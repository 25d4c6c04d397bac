//! `cargo xtask bench`: how fast the server acknowledges durable changes.
//!
//! Starts the server in-process on a free port and drives real WebSocket writers, each with one
//! change in flight at a time as the protocol prescribes, and measures changes acknowledged per
//! second and each acknowledgement's latency. Every scenario runs against the durable store
//! and against `--in-memory` in the same process, several times; medians are reported.
//! It asserts no timing: it fails only if the server fails.
//!
//! Then `memory.rs` reports the live heap of one document under endless insert-and-delete, and
//! `history.rs` what an edit made at an old revision costs.

#![allow(clippy::print_stdout, reason = "the report is the output")]

mod cluster;
mod history;
mod memory;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tandem_protocol::{ServerMessage, ThinClient};
use tandem_server::{Config, Server, Storage};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The system allocator, counting what is allocated and freed (see `memory.rs`).
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Runs of each scenario; the median is reported.
pub(crate) const RUNS: usize = 3;

pub(crate) struct Scenario {
    name: &'static str,
    writers: usize,
    documents: usize,
    changes_per_writer: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario { name: "1 writer, 1 document", writers: 1, documents: 1, changes_per_writer: 2_000 },
    Scenario {
        name: "100 writers, 100 documents",
        writers: 100,
        documents: 100,
        changes_per_writer: 200,
    },
];

pub(crate) struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("memory") => return memory::churn().await,
        Some("history") => return history::run(),
        Some("cluster") => return cluster::run_all().await,
        _ => {}
    }
    let data = std::env::temp_dir().join(format!("tandem-bench-{}", std::process::id()));
    println!("durable changes: {RUNS} runs per row, medians; store in {}", data.display());
    println!();
    println!("| scenario | storage | changes/s | ack p50 | ack p99 |");
    println!("|---|---|---:|---:|---:|");
    for scenario in SCENARIOS {
        for (label, durable) in [("redb (fsync)", true), ("in-memory", false)] {
            let mut runs = Vec::with_capacity(RUNS);
            for run in 0..RUNS {
                let storage = if durable {
                    let dir = data.join(format!("{}-{run}", scenario.writers));
                    let _ = std::fs::remove_dir_all(&dir);
                    Storage::Dir(dir)
                } else {
                    Storage::InMemory
                };
                runs.push(
                    measure(scenario, storage)
                        .await
                        .with_context(|| format!("{} ({label})", scenario.name))?,
                );
            }
            let median = |value: &dyn Fn(&Measured) -> f64| {
                let mut values: Vec<f64> = runs.iter().map(value).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let per_second = median(&|m| m.per_second);
            let p50 = median(&|m| m.p50.as_secs_f64() * 1e3);
            let p99 = median(&|m| m.p99.as_secs_f64() * 1e3);
            println!(
                "| {} | {label} | {per_second:.0} | {p50:.2} ms | {p99:.2} ms |",
                scenario.name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&data);
    println!();
    memory::churn().await
}

/// A server on a free loopback port with `storage`, whose limits let the benchmark's writers
/// through.
fn config(storage: Storage) -> Result<Config> {
    // Writers as fast as the server acknowledges, far above a person's message rate.
    let fast = std::num::NonZeroU32::new(1_000_000).context("not zero")?;
    Ok(Config {
        bind: ([127, 0, 0, 1], 0).into(),
        storage,
        message_rate: fast,
        message_burst: fast,
        // Every writer connects from 127.0.0.1 at once.
        max_new_connections_per_ip: fast,
        ..Config::default()
    })
}

async fn measure(scenario: &Scenario, storage: Storage) -> Result<Measured> {
    let server = Server::start(config(storage)?).await?;
    let measured = measure_on(scenario, &[server.local_addr()], "bench").await;
    server.shutdown().await;
    measured
}

/// Runs `scenario` against the servers at `addrs` (writer `n` on the `n`th, round robin), on
/// documents named `{prefix}-{n}`.
pub(crate) async fn measure_on(
    scenario: &Scenario,
    addrs: &[std::net::SocketAddr],
    prefix: &str,
) -> Result<Measured> {
    let mut clients = Vec::with_capacity(scenario.writers);
    for writer in 0..scenario.writers {
        let addr = addrs[writer % addrs.len()];
        let url = format!("ws://{addr}/ws/{prefix}-{}", writer % scenario.documents);
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.context("connecting")?;
        let welcome = next(&mut socket).await?;
        clients.push((socket, ThinClient::new(welcome)?));
    }
    let started = Instant::now();
    let writers: Vec<_> = clients
        .into_iter()
        .map(|(socket, thin)| tokio::spawn(write(socket, thin, scenario.changes_per_writer)))
        .collect();
    let mut latencies = Vec::with_capacity(scenario.writers * scenario.changes_per_writer);
    for writer in writers {
        latencies.extend(writer.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Measured {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    })
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Makes `changes` inserts, each sent once the one before is acknowledged; returns the latencies.
async fn write(mut socket: Socket, mut thin: ThinClient, changes: usize) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(changes);
    for _ in 0..changes {
        let Some(message) = thin.insert(thin.len(), "x")? else {
            bail!("the previous change is still in flight")
        };
        let sent = Instant::now();
        socket.send(Message::text(serde_json::to_string(&message)?)).await?;
        loop {
            let message = next(&mut socket).await?;
            let acked = matches!(message, ServerMessage::Ack { .. });
            thin.receive(message)?;
            if acked {
                latencies.push(sent.elapsed());
                break;
            }
        }
    }
    Ok(latencies)
}

pub(crate) async fn next(socket: &mut Socket) -> Result<ServerMessage> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
            None => bail!("the server closed the connection"),
        }
    }
}
