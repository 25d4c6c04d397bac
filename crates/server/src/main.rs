//! `tandem`: the collaborative document server.
//!
//! Serves WebSocket editing sessions at `/ws/{doc}`, plus `/healthz` and `/status`, on one port.
//! Ctrl-C or SIGTERM shut it down gracefully.

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use tandem_server::{Config, Server, Storage};

/// The Tandem collaborative document server.
///
/// Every option can also be set by the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TANDEM_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Folder of the document store (one file, `tandem.redb`), created if missing.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = "./tandem-data")]
    data_dir: PathBuf,
    /// Keep documents in memory only, losing them when the server stops.
    #[arg(long, env = "TANDEM_IN_MEMORY", conflicts_with = "data_dir")]
    in_memory: bool,
    /// Take a document with no clients out of memory after this long (it stays stored).
    #[arg(long, env = "TANDEM_UNLOAD_AFTER", default_value = "10m", value_parser = positive_duration)]
    unload_after: Duration,
    /// How often to ping each connection.
    #[arg(long, env = "TANDEM_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = positive_duration)]
    heartbeat_interval: Duration,
    /// Close connections silent for longer than this.
    #[arg(long, env = "TANDEM_HEARTBEAT_TIMEOUT", default_value = "45s", value_parser = positive_duration)]
    heartbeat_timeout: Duration,
    /// Show users as idle after this long without activity.
    #[arg(long, env = "TANDEM_IDLE_TIMEOUT", default_value = "5m", value_parser = positive_duration)]
    idle_timeout: Duration,
    /// The largest message a client may send, in bytes; a larger one closes its connection
    /// with 1009.
    #[arg(long, env = "TANDEM_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// How long a client may take to send its HTTP request head (a WebSocket upgrade
    /// included) before it is disconnected.
    #[arg(long, env = "TANDEM_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    handshake_timeout: Duration,
    /// Connections open at once; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Connections open at once from one IP address; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    max_connections_per_ip: usize,
    /// New connections one IP address may open per second; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_NEW_CONNECTIONS_PER_IP", default_value = "50")]
    max_new_connections_per_ip: NonZeroU32,
    /// Documents loaded at once; a connection to one more is refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_DOCUMENTS", default_value_t = 10_000)]
    max_documents: usize,
    /// Messages a connection may send per second; more get a `rate_limited` error.
    #[arg(long, env = "TANDEM_MESSAGE_RATE", default_value = "100")]
    message_rate: NonZeroU32,
    /// Messages a connection may send at once above its rate.
    #[arg(long, env = "TANDEM_MESSAGE_BURST", default_value = "500")]
    message_burst: NonZeroU32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let storage = if args.in_memory { Storage::InMemory } else { Storage::Dir(args.data_dir) };
    let config = Config {
        bind: args.bind,
        storage,
        unload_after: args.unload_after,
        heartbeat_interval: args.heartbeat_interval,
        heartbeat_timeout: args.heartbeat_timeout,
        idle_timeout: args.idle_timeout,
        max_message_bytes: args.max_message_bytes,
        handshake_timeout: args.handshake_timeout,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        max_new_connections_per_ip: args.max_new_connections_per_ip,
        max_documents: args.max_documents,
        message_rate: args.message_rate,
        message_burst: args.message_burst,
        ..Config::default()
    };
    let server = Server::start(config).await?;
    shutdown_signal().await.context("waiting for a shutdown signal")?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// A duration such as `200ms`, `15s` or `5m`, which must not be zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("must be longer than zero".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
