//! `tandem`: the collaborative document server.
//!
//! Serves WebSocket editing sessions at `/ws/{doc}`, the web pages, `/healthz` and `/status`,
//! on one port. Ctrl-C or SIGTERM shut it down gracefully. `tandem token` prints a token signed
//! with the server's secret.

#![allow(clippy::print_stdout, reason = "tandem token prints the token")]

use std::{net::SocketAddr, num::NonZeroU32, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tandem_server::{
    ClusterConfig, Config, NatsConfig, Server, Storage,
    auth::{self, Access, Claims, Secret},
};

/// The Tandem collaborative document server.
///
/// Every option can also be set by the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TANDEM_BIND", default_value_t = defaults().bind)]
    bind: SocketAddr,
    /// Folder of the document store (one file, `tandem.redb`), created if missing.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = "./tandem-data")]
    data_dir: PathBuf,
    /// Run as one node of a cluster: documents live in NATS JetStream at these servers
    /// (`nats://host:4222`, comma-separated), shared with the other nodes, instead of in the
    /// data directory.
    #[arg(long = "nats", env = "TANDEM_NATS_URL", conflicts_with = "in_memory")]
    nats: Option<String>,
    /// A NATS credentials file, if the NATS servers ask for one.
    #[arg(long, env = "TANDEM_NATS_CREDENTIALS", requires = "nats")]
    nats_credentials: Option<PathBuf>,
    /// Copies JetStream keeps of every change: 1 with one NATS server, 3 in production.
    #[arg(long, env = "TANDEM_NATS_REPLICAS", default_value_t = 1, requires = "nats")]
    nats_replicas: usize,
    /// This node's name in the cluster (a random one by default).
    #[arg(long, env = "TANDEM_NODE_ID", requires = "nats")]
    node_id: Option<String>,
    /// How long after the heartbeat timeout the users of a node not heard from are still
    /// shown to the other nodes.
    #[arg(long, env = "TANDEM_NODE_GRACE", default_value_t = Span(Duration::from_secs(30)))]
    node_grace: Span,
    /// Memory the store may use to cache its file, in bytes.
    #[arg(long, env = "TANDEM_STORE_CACHE_BYTES", default_value_t = defaults().store_cache_bytes)]
    store_cache_bytes: usize,
    /// Keep documents (and their whole history) in memory only, losing them when the server
    /// stops.
    #[arg(long, env = "TANDEM_IN_MEMORY", conflicts_with = "data_dir")]
    in_memory: bool,
    /// Take a document with no clients out of memory after this long (it stays stored).
    #[arg(long, env = "TANDEM_UNLOAD_AFTER", default_value_t = Span(defaults().unload_after))]
    unload_after: Span,
    /// How often to ping each connection.
    #[arg(long, env = "TANDEM_HEARTBEAT_INTERVAL", default_value_t = Span(defaults().transport.heartbeat_interval))]
    heartbeat_interval: Span,
    /// Close connections silent for longer than this.
    #[arg(long, env = "TANDEM_HEARTBEAT_TIMEOUT", default_value_t = Span(defaults().transport.heartbeat_timeout))]
    heartbeat_timeout: Span,
    /// Show users as idle after this long without activity.
    #[arg(long, env = "TANDEM_IDLE_TIMEOUT", default_value_t = Span(defaults().idle_timeout))]
    idle_timeout: Span,
    /// The largest message a client may send, in bytes; a larger one closes its connection
    /// with 1009.
    #[arg(long, env = "TANDEM_MAX_MESSAGE_BYTES", default_value_t = defaults().transport.max_message_bytes)]
    max_message_bytes: usize,
    /// Bytes of outgoing messages that may wait for all connections together; past it, the
    /// client whose message does not fit is disconnected, and a new one refused with 503.
    #[arg(long, env = "TANDEM_MAX_QUEUED_BYTES", default_value_t = defaults().transport.total_queue_bytes)]
    max_queued_bytes: usize,
    /// How long a client may take to send its HTTP request head (a WebSocket upgrade
    /// included) before it is disconnected.
    #[arg(long, env = "TANDEM_HANDSHAKE_TIMEOUT", default_value_t = Span(defaults().handshake_timeout))]
    handshake_timeout: Span,
    /// Connections open at once; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS", default_value_t = defaults().max_connections)]
    max_connections: usize,
    /// Connections open at once from one IP address; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS_PER_IP", default_value_t = defaults().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// New connections one IP address may open per second; more are refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_NEW_CONNECTIONS_PER_IP", default_value_t = defaults().max_new_connections_per_ip)]
    max_new_connections_per_ip: NonZeroU32,
    /// History API requests one IP address may make per second; more are refused with 429.
    #[arg(long, env = "TANDEM_MAX_API_REQUESTS_PER_IP", default_value_t = defaults().max_api_requests_per_ip)]
    max_api_requests_per_ip: NonZeroU32,
    /// Documents loaded at once; a connection to one more is refused with HTTP 503.
    #[arg(long, env = "TANDEM_MAX_DOCUMENTS", default_value_t = defaults().max_documents)]
    max_documents: usize,
    /// Messages a connection may send per second; more get a `rate_limited` error.
    #[arg(long, env = "TANDEM_MESSAGE_RATE", default_value_t = defaults().message_rate)]
    message_rate: NonZeroU32,
    /// Messages a connection may send at once: the size of its bucket, which refills at the
    /// rate.
    #[arg(long, env = "TANDEM_MESSAGE_BURST", default_value_t = defaults().message_burst)]
    message_burst: NonZeroU32,
    /// A file holding the secret that signs tokens (at least 16 bytes). With a secret, every
    /// WebSocket needs a token, and /status an admin token; without, anyone may read and write.
    #[arg(long, env = "TANDEM_AUTH_SECRET_FILE", global = true)]
    auth_secret_file: Option<PathBuf>,
    /// The secret itself, for where a file is awkward (the file takes precedence; prefer it or
    /// the environment variable, since a command line is visible to other users).
    #[arg(long = "auth-secret", env = "TANDEM_AUTH_SECRET", hide_env_values = true, global = true)]
    auth_secret: Option<String>,
    /// An origin (such as `https://docs.example.com`) whose pages may open WebSockets; repeat it
    /// for more. When set, a browser upgrade from any other origin is refused with 403.
    #[arg(long = "allowed-origin", env = "TANDEM_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// The address (or network, as `10.0.0.0/8`) of a reverse proxy or load balancer in front
    /// of the server; repeat it for more. A request from one counts under the per-IP limits
    /// as coming from the address its `X-Forwarded-For` names.
    #[arg(long = "trusted-proxy", env = "TANDEM_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    trusted_proxies: Vec<Option<tandem_server::IpNet>>,
    /// How log lines are written.
    #[arg(long, env = "TANDEM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// A node name no other node has: `node-` and 12 random hex digits.
fn random_node() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("node-{:012x}", random & 0xffff_ffff_ffff)
}

/// How long a shutdown may take before the process ends anyway.
const SHUTDOWN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A trusted proxy: an address, or a network in CIDR notation; nothing for an empty item (as
/// an empty `TANDEM_TRUSTED_PROXIES` gives).
fn parse_proxy(text: &str) -> Result<Option<tandem_server::IpNet>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<tandem_server::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(Into::into))
        .map(Some)
        .map_err(|_| format!("{text:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

/// The server's defaults, which the options show and fall back to.
fn defaults() -> Config {
    Config::default()
}

/// A duration longer than zero, read and shown as `200ms`, `15s` or `5m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(Duration);

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        match humantime::parse_duration(text) {
            Ok(duration) if duration.is_zero() => Err("must be longer than zero".to_owned()),
            Ok(duration) => Ok(Span(duration)),
            Err(error) => Err(error.to_string()),
        }
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    /// One JSON object a line, with the connection's document and client on its lines.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a token signed with the server's secret (--auth-secret-file or TANDEM_AUTH_SECRET).
    Token {
        /// The document it opens, or a prefix ending in `*` (team-a.* opens every document whose
        /// id starts with team-a.).
        #[arg(long, required_unless_present = "admin")]
        doc: Option<String>,
        /// What it lets its holder do.
        #[arg(long, value_enum, default_value_t = Access::Write)]
        access: Access,
        /// An admin token, for /status and /metrics.
        #[arg(long, conflicts_with_all = ["doc", "access"])]
        admin: bool,
        /// How long it stays valid.
        #[arg(long, default_value_t = Span(Duration::from_secs(3600)))]
        ttl: Span,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
    }
    let secret = secret(&args)?;
    if let Some(Command::Token { doc, access, admin, ttl }) = &args.command {
        let secret = secret
            .context("tandem token needs the secret: --auth-secret-file or TANDEM_AUTH_SECRET")?;
        let (doc, access) = if *admin {
            (String::new(), Access::Admin)
        } else {
            (doc.clone().unwrap_or_default(), *access)
        };
        if !*admin && !auth::is_scope(&doc) {
            bail!("--doc is a document id (A-Z a-z 0-9 . _ -), or a prefix of one ending in *");
        }
        let exp = auth::unix_now().saturating_add(ttl.0.as_secs());
        println!("{}", secret.mint(&Claims { doc, access, exp }));
        return Ok(());
    }
    let storage = match (&args.nats, args.in_memory) {
        (Some(urls), _) => Storage::Cluster(ClusterConfig {
            nats: NatsConfig {
                urls: urls.clone(),
                credentials: args.nats_credentials.clone(),
                replicas: args.nats_replicas,
            },
            node: args.node_id.clone().unwrap_or_else(random_node),
            node_grace: args.node_grace.0,
        }),
        (None, true) => Storage::InMemory,
        (None, false) => Storage::Dir(args.data_dir.clone()),
    };
    let transport = tandem_transport::Config {
        heartbeat_interval: args.heartbeat_interval.0,
        heartbeat_timeout: args.heartbeat_timeout.0,
        max_message_bytes: args.max_message_bytes,
        total_queue_bytes: args.max_queued_bytes,
        ..defaults().transport
    };
    let config = Config {
        bind: args.bind,
        storage,
        transport,
        unload_after: args.unload_after.0,
        store_cache_bytes: args.store_cache_bytes,
        idle_timeout: args.idle_timeout.0,
        handshake_timeout: args.handshake_timeout.0,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        max_new_connections_per_ip: args.max_new_connections_per_ip,
        max_api_requests_per_ip: args.max_api_requests_per_ip,
        max_documents: args.max_documents,
        message_rate: args.message_rate,
        message_burst: args.message_burst,
        auth: secret.map(Arc::new),
        // (An empty TANDEM_ALLOWED_ORIGINS names no origin.)
        allowed_origins: args.allowed_origins.into_iter().filter(|o| !o.is_empty()).collect(),
        trusted_proxies: args.trusted_proxies.into_iter().flatten().collect(),
        ..Config::default()
    };
    let server = Server::start(config).await?;
    tokio::select! {
        signal = shutdown_signal() => signal.context("waiting for a shutdown signal")?,
        // Fail-stop: a change that may not be stored is never acknowledged, and the process
        // ends; a restart recovers what the store holds.
        error = server.failed() => {
            return Err(anyhow::Error::new(error)).context("the store failed; stopping");
        }
    }
    tracing::info!("shutting down");
    // Bounded, as a supervisor would bound it: what is not stored by then was never
    // acknowledged, and a restart recovers what the store holds.
    if tokio::time::timeout(SHUTDOWN_PATIENCE, server.shutdown()).await.is_err() {
        tracing::error!("shutting down took over {SHUTDOWN_PATIENCE:?}; stopping now");
        std::process::exit(1);
    }
    Ok(())
}

/// The signing secret, from `--auth-secret-file` or else `TANDEM_AUTH_SECRET`, if given.
fn secret(args: &Args) -> anyhow::Result<Option<Secret>> {
    let bytes = match (&args.auth_secret_file, &args.auth_secret) {
        (Some(path), _) => std::fs::read(path)
            .with_context(|| format!("reading the auth secret from {}", path.display()))?,
        (None, Some(secret)) => secret.clone().into_bytes(),
        (None, None) => return Ok(None),
    };
    // The bytes as they are, but for the line break an editor or `echo` leaves at the end.
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |at| at + 1);
    match Secret::new(&bytes[..end]) {
        Some(secret) => Ok(Some(secret)),
        None => bail!("the auth secret must be at least 16 bytes"),
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    /// Options that have no default on purpose: a secret, and a list that is empty unless given.
    const NO_DEFAULT: &[&str] = &[
        "auth_secret_file",
        "auth_secret",
        "allowed_origins",
        "trusted_proxies",
        "in_memory",
        "nats",
        "nats_credentials",
        "node_id",
    ];

    #[test]
    fn every_option_has_an_environment_variable_and_shows_its_default() {
        let command = Args::command();
        let mut checked = 0;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_long().is_none() || matches!(id, "help" | "version") {
                continue;
            }
            let env = arg.get_env().and_then(|env| env.to_str()).unwrap_or_default();
            assert!(env.starts_with("TANDEM_"), "--{id} has no TANDEM_ variable");
            assert!(
                NO_DEFAULT.contains(&id) || !arg.get_default_values().is_empty(),
                "--{id} shows no default"
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} options seen");
    }

    #[test]
    fn the_defaults_shown_are_the_servers() {
        let args = Args::try_parse_from(["tandem"]).expect("parses with no arguments");
        let defaults = super::defaults();
        assert_eq!(args.heartbeat_timeout.0, defaults.transport.heartbeat_timeout);
        assert_eq!(args.max_queued_bytes, defaults.transport.total_queue_bytes);
        assert_eq!(args.handshake_timeout.0, defaults.handshake_timeout);
        assert_eq!(args.message_burst, defaults.message_burst);
        assert_eq!(args.max_api_requests_per_ip, defaults.max_api_requests_per_ip);
    }
}
