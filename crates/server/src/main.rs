//! `tandem`: the collaborative document server.
//!
//! Serves WebSocket editing sessions at `/ws/{doc}`, plus `/healthz` and `/status`, on one port.
//! Ctrl-C or SIGTERM shut it down gracefully.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use tandem_server::{Config, Server, Storage};

/// The Tandem collaborative document server.
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
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// Take a document with no clients out of memory after this long (it stays stored).
    #[arg(long, default_value = "10m", value_parser = positive_duration)]
    unload_after: Duration,
    /// How often to ping each connection.
    #[arg(long, default_value = "15s", value_parser = positive_duration)]
    heartbeat_interval: Duration,
    /// Close connections silent for longer than this.
    #[arg(long, default_value = "45s", value_parser = positive_duration)]
    heartbeat_timeout: Duration,
    /// Show users as idle after this long without activity.
    #[arg(long, default_value = "5m", value_parser = positive_duration)]
    idle_timeout: Duration,
    /// The largest message a client may send, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_message_bytes: usize,
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
