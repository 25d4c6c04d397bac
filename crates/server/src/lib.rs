//! The Tandem server: wires the protocol's rooms onto the WebSocket transport behind one HTTP
//! port, and keeps every acknowledged change in the store.
//!
//! - `GET /ws/{doc}` upgrades to a WebSocket for document `doc` (see docs/protocol.md).
//! - `GET /healthz` and `GET /status` answer plain HTTP.
//! - `GET /` and `GET /d/{doc}` are the web pages, and `GET /js/tandem.js` the JavaScript client,
//!   all embedded in the binary (see `web.rs`).
//!
//! Policy lives here: which rooms are in memory, how client ids are given out, when idleness
//! is checked, when changes are stored (before anyone hears of them; see `outbox.rs`), and how
//! the server shuts down. Message handling lives in tandem-protocol, connection handling in
//! tandem-transport and storage in tandem-store.

mod api;
pub mod auth;
mod cluster;
mod history;
mod http;
mod limits;
mod metrics;
mod outbox;
mod records;
mod rooms;
mod sessions;
mod versions;
mod web;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use anyhow::Context;
use dashmap::DashMap;
use hyper_util::rt::TokioIo;
use tandem_protocol::Limits;
use tandem_store::{MemoryStore, RedbStore, Store};
use tandem_transport::Pool;
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    outbox::Outbox,
    rooms::{Slot, lock},
};

/// Where documents are kept.
#[derive(Clone, Debug)]
pub enum Storage {
    /// In memory only: lost when the server stops.
    InMemory,
    /// In the store file `tandem.redb` under this folder, created if missing.
    Dir(PathBuf),
    /// In NATS JetStream, shared with the other nodes of a cluster.
    Cluster(ClusterConfig),
}

pub use crate::{cluster::ClusterConfig, versions::MAX_VERSIONS};
pub use ipnet::IpNet;
pub use tandem_store::nats::NatsConfig;

/// Everything the server can be told on its command line. Each default is written once, in
/// `Config::default` (and, for the connections, in `tandem_transport::Config::default`); the
/// command line shows them from there.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub storage: Storage,
    /// Heartbeats, the outgoing queue of each connection and the largest message.
    pub transport: tandem_transport::Config,
    pub idle_timeout: Duration,
    /// How long a document with no clients stays in memory.
    pub unload_after: Duration,
    /// Bytes of frames whose changes may wait to be stored; past it, connections wait before
    /// their next frame is read.
    pub outbox_bytes: usize,
    /// Memory the store may use to cache its file.
    pub store_cache_bytes: usize,
    pub limits: Limits,
    /// How long a client may take to send its HTTP request head (the WebSocket upgrade
    /// included); a slower one is disconnected.
    pub handshake_timeout: Duration,
    /// Connections open at once, in total and from one IP address; more are refused with 503.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections one IP address may open per second; more are refused with 503.
    pub max_new_connections_per_ip: NonZeroU32,
    /// History API requests (`/api/docs/...`) one IP address may make per second; more are
    /// refused with 429.
    pub max_api_requests_per_ip: NonZeroU32,
    /// Documents loaded at once; a connection to one more is refused with 503.
    pub max_documents: usize,
    /// Messages one connection may send per second, and in a burst; more are refused with
    /// `rate_limited`, and a connection refused more than `max_rate_refusals` times is closed
    /// with 1008.
    pub message_rate: NonZeroU32,
    pub message_burst: NonZeroU32,
    pub max_rate_refusals: u64,
    /// The secret that signs tokens. With one, `/ws/{doc}` needs a token for `doc`, and
    /// `/status` and `/metrics` an admin token; without, anyone may read and write.
    pub auth: Option<Arc<auth::Secret>>,
    /// When not empty, a WebSocket upgrade whose `Origin` is not one of these is refused
    /// with 403 (a request without `Origin`, from a program rather than a browser, is not).
    pub allowed_origins: Vec<String>,
    /// The addresses of reverse proxies (load balancers) in front of the server. A request
    /// from one of them is taken to come from the address its `X-Forwarded-For` names (the
    /// last one there that is not a trusted proxy), and the per-address limits count that
    /// address; the proxy's own connections count only towards `max_connections`.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: Storage::InMemory,
            transport: tandem_transport::Config::default(),
            idle_timeout: Duration::from_secs(5 * 60),
            unload_after: Duration::from_secs(10 * 60),
            outbox_bytes: 64 << 20,
            store_cache_bytes: 64 << 20,
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_new_connections_per_ip: NonZeroU32::new(50).expect("not zero"),
            max_api_requests_per_ip: NonZeroU32::new(20).expect("not zero"),
            max_documents: 10_000,
            message_rate: NonZeroU32::new(100).expect("not zero"),
            message_burst: NonZeroU32::new(500).expect("not zero"),
            max_rate_refusals: 1_000,
            auth: None,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The shared state of a running server.
struct App {
    config: Config,
    pool: Pool,
    store: Arc<dyn Store>,
    outbox: Outbox,
    gate: Arc<limits::Gate>,
    metrics: Arc<metrics::Metrics>,
    rooms: DashMap<String, Arc<Mutex<Slot>>>,
    /// The (document, label) of each version being saved now, so that two saves of one label
    /// cannot both pass the check that it is free.
    saving: dashmap::DashSet<(String, String)>,
    /// In cluster mode: the node's view of the cluster.
    cluster: Option<Arc<cluster::Cluster>>,
    epoch: Instant,
    next_client: AtomicU64,
    /// Each WebSocket session holds a clone; shutdown drops this one and waits until the
    /// channel closes. `None` once shutting down, when no session is opened any more.
    alive: Mutex<Option<mpsc::Sender<()>>>,
    /// Turns true on shutdown; HTTP connections then finish gracefully.
    stopping: watch::Receiver<bool>,
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// In cluster mode: the task that publishes presence; a shutdown ends its queue and gives
    /// it a moment to send what is left.
    publisher: Option<JoinHandle<()>>,
    all_closed: mpsc::Receiver<()>,
    writer: std::thread::JoinHandle<()>,
    failure: outbox::Failure,
}

impl Server {
    /// Opens the store, binds the listener and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let metrics = Arc::new(metrics::Metrics::new());
        let (mut cluster, mut signals) = (None, None);
        let store: Arc<dyn Store> = match &config.storage {
            Storage::InMemory => Arc::new(MemoryStore::new()),
            Storage::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the data directory {}", dir.display()))?;
                let path = dir.join("tandem.redb");
                Arc::new(RedbStore::open_with_cache(&path, config.store_cache_bytes)?)
            }
            Storage::Cluster(settings) => {
                let store = tandem_store::NatsStore::connect(&settings.nats)
                    .await
                    .with_context(|| format!("connecting to NATS at {}", settings.nats.urls))?;
                let (node, queue) =
                    cluster::Cluster::new(store.clone(), settings, Arc::clone(&metrics));
                (cluster, signals) = (Some(Arc::new(node)), Some(queue));
                Arc::new(store)
            }
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let pool = Pool::new(config.transport.clone());
        let (outbox, writer, failure) =
            Outbox::start(Arc::clone(&store), config.outbox_bytes, Arc::clone(&metrics))
                .context("starting the writer thread")?;
        let (alive, all_closed) = mpsc::channel(1);
        let (stop, stopping) = watch::channel(false);
        let gate = Arc::new(limits::Gate::new(
            config.max_connections,
            config.max_connections_per_ip,
            config.max_new_connections_per_ip,
            config.max_api_requests_per_ip,
        ));
        let app = Arc::new(App {
            config,
            pool,
            store,
            outbox,
            gate,
            metrics,
            rooms: DashMap::new(),
            saving: dashmap::DashSet::new(),
            cluster,
            epoch: Instant::now(),
            next_client: AtomicU64::new(1),
            alive: Mutex::new(Some(alive)),
            stopping: stopping.clone(),
        });
        let mut tasks = vec![
            app.pool.spawn_keepalive(),
            tokio::spawn(Arc::clone(&app).housekeeping(stopping.clone())),
            tokio::spawn(Arc::clone(&app).accept(listener, stopping.clone())),
        ];
        let mut publisher = None;
        if let Some(signals) = signals {
            let (cluster_tasks, publishing) = app.spawn_cluster(stopping, signals);
            tasks.extend(cluster_tasks);
            publisher = Some(publishing);
        }
        match &app.config.storage {
            Storage::InMemory => tracing::info!("keeping documents in memory only"),
            Storage::Dir(dir) => {
                tracing::info!("storing documents in {}", dir.join("tandem.redb").display())
            }
            Storage::Cluster(settings) => tracing::info!(
                node = %settings.node,
                "storing documents in NATS at {}, as one node of a cluster",
                settings.nats.urls
            ),
        }
        if app.config.auth.is_none() {
            tracing::warn!(
                "no auth secret (--auth-secret-file or TANDEM_AUTH_SECRET): anyone who can reach this server may read and write every document"
            );
        }
        tracing::info!("listening on {addr}");
        Ok(Server { addr, app, stop, tasks, publisher, all_closed, writer, failure })
    }

    /// The address the server actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves with the error that stopped the server from storing changes, if that ever
    /// happens. Nothing of the failed commit has been acknowledged; the caller should stop the
    /// process (fail-stop), and a restart recovers from the store.
    pub fn failed(&self) -> impl std::future::Future<Output = Arc<tandem_store::Error>> + 'static {
        let mut failure = self.failure.clone();
        async move {
            loop {
                if let Some(error) = failure.borrow_and_update().clone() {
                    return error;
                }
                if failure.changed().await.is_err() {
                    // The writer ended without an error: nothing will fail any more.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Stops accepting, closes every connection with a close frame, waits for them to end, and
    /// stores what is still queued.
    pub async fn shutdown(self) {
        let Server { app, stop, tasks, publisher, mut all_closed, writer, .. } = self;
        // No session opens from here on; then every open one is closed with 1001.
        drop(app.alive.lock().unwrap_or_else(PoisonError::into_inner).take());
        stop.send_replace(true);
        app.pool.shutdown();
        // Every session holds a sender; recv() returns None once all have ended.
        let _ = tokio::time::timeout(Duration::from_secs(5), all_closed.recv()).await;
        for task in tasks {
            task.abort();
        }
        // The leaves of the connections just closed go out to the other nodes.
        if let (Some(cluster), Some(mut publisher)) = (&app.cluster, publisher) {
            cluster.close();
            // NATS away: given up, so that the task lets go of the app (and the writer ends).
            if tokio::time::timeout(Duration::from_secs(2), &mut publisher).await.is_err() {
                publisher.abort();
                let _ = publisher.await;
            }
        }
        // The writer ends once the last handle to the outbox is gone and the queue is drained.
        drop(app);
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

impl App {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// A client id no other client has had, even before a restart: the document remembers a
    /// client's last request across restarts, and a reused id would inherit it.
    fn fresh_client_id(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(self.next_client.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        format!("c{:016x}", hasher.finish())
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        loop {
            let mut failed = false;
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Small real-time messages must not wait for Nagle's algorithm.
                        if let Err(error) = stream.set_nodelay(true) {
                            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
                        }
                        let app = Arc::clone(&self);
                        // A proxy's connections carry many clients': they are counted by
                        // the address each request names (see `http.rs`).
                        let admitted = if self.is_trusted_proxy(peer.ip()) {
                            self.gate.admit_proxy()
                        } else {
                            self.gate.admit(peer.ip())
                        };
                        tokio::spawn(async move {
                            match admitted {
                                Ok(ticket) => app.serve_http(TokioIo::new(stream), peer, Arc::new(ticket)).await,
                                Err(busy) => {
                                    tracing::debug!(%peer, ?busy, "connection refused");
                                    app.metrics.refused(busy.reason());
                                    app.refuse_http(stream, busy).await;
                                }
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        failed = true;
                    }
                },
                _ = stop.wait_for(|stop| *stop) => return,
            }
            if failed {
                // Out of file descriptors, say: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Announces users who have gone idle and unloads unused documents, a few times per idle
    /// timeout and unload delay.
    async fn housekeeping(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let shortest = self.config.idle_timeout.min(self.config.unload_after);
        let every = (shortest / 10).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let slots: Vec<Arc<Mutex<Slot>>> = self.rooms.iter().map(|entry| Arc::clone(entry.value())).collect();
                    for slot in slots {
                        let mut slot = lock(&slot);
                        let idle = slot.room.tick(self.now());
                        self.announce(&mut slot, idle);
                    }
                    self.unload_idle();
                    self.gate.forget_quiet();
                }
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// `/metrics`, in the Prometheus text format.
    fn metrics_page(&self) -> String {
        self.metrics.render(self.pool.connections(), self.rooms.len(), self.outbox.queued_bytes())
    }

    /// `/status`: connections, and per loaded document its clients, revision and length.
    fn status(&self) -> serde_json::Value {
        let slots: Vec<Arc<Mutex<Slot>>> =
            self.rooms.iter().map(|entry| Arc::clone(entry.value())).collect();
        let mut documents: Vec<serde_json::Value> = slots
            .iter()
            .map(|slot| {
                let slot = lock(slot);
                let doc = slot.room.id();
                let mut document = serde_json::json!({
                    "id": doc,
                    "clients": slot.room.clients(),
                    "revision": slot.room.revision(),
                    "length": slot.room.len(),
                });
                // In a cluster: the document's clients on every node.
                if let Some(cluster) = &self.cluster {
                    let remote = cluster.remote_users(doc).len();
                    document["cluster_clients"] = (slot.room.clients() + remote).into();
                }
                document
            })
            .collect();
        documents.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        let mut status = serde_json::json!({
            "connections": self.pool.connections(),
            "outbox_bytes": self.outbox.queued_bytes(),
            "documents": documents,
        });
        if let Some(cluster) = &self.cluster {
            status["node"] = cluster.node.clone().into();
            status["nodes"] = cluster.nodes().into();
        }
        status
    }
}

#[cfg(test)]
mod tests;
