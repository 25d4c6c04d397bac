//! The Tandem server: wires the protocol's rooms onto the WebSocket transport behind one HTTP
//! port.
//!
//! - `GET /ws/{doc}` upgrades to a WebSocket for document `doc` (see docs/protocol.md).
//! - `GET /healthz` and `GET /status` answer plain HTTP.
//!
//! Policy lives here: which rooms exist, how client ids are given out, when idleness is
//! checked, and how the server shuts down. Message handling lives in tandem-protocol and
//! connection handling in tandem-transport.

mod http;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use anyhow::Context;
use dashmap::DashMap;
use hyper_util::rt::TokioIo;
use tandem_protocol::{Limits, Reply, Room};
use tandem_transport::{Closed, Connection, Frame, Message, Pool};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

/// Everything the server can be told on its command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_message_bytes: usize,
    /// Outgoing messages that may wait for one slow client before it is disconnected.
    pub queue_capacity: usize,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Config {
        let transport = tandem_transport::Config::default();
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            heartbeat_interval: transport.heartbeat_interval,
            heartbeat_timeout: transport.heartbeat_timeout,
            idle_timeout: Duration::from_secs(5 * 60),
            max_message_bytes: transport.max_message_bytes,
            queue_capacity: transport.queue_capacity,
            limits: Limits::default(),
        }
    }
}

/// The shared state of a running server.
struct App {
    config: Config,
    pool: Pool,
    rooms: DashMap<String, Arc<Mutex<Room>>>,
    epoch: Instant,
    next_client: AtomicU64,
    /// Each WebSocket session holds a clone; shutdown drops this one and waits until the
    /// channel closes. `None` once shutting down, when no session is opened any more.
    alive: Mutex<Option<mpsc::Sender<()>>>,
    /// Turns true on shutdown; HTTP connections then finish gracefully.
    stopping: watch::Receiver<bool>,
}

/// An open WebSocket session: its connection, its room, and its share in the shutdown wait.
struct Session {
    connection: Connection,
    room: Arc<Mutex<Room>>,
    _alive: mpsc::Sender<()>,
}

/// Why a session could not be opened.
enum Refused {
    /// The client id is already connected to the document.
    Taken,
    ShuttingDown,
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    all_closed: mpsc::Receiver<()>,
}

impl Server {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let pool = Pool::new(tandem_transport::Config {
            heartbeat_interval: config.heartbeat_interval,
            heartbeat_timeout: config.heartbeat_timeout,
            queue_capacity: config.queue_capacity,
            max_message_bytes: config.max_message_bytes,
        });
        let (alive, all_closed) = mpsc::channel(1);
        let (stop, stopping) = watch::channel(false);
        let app = Arc::new(App {
            config,
            pool,
            rooms: DashMap::new(),
            epoch: Instant::now(),
            next_client: AtomicU64::new(1),
            alive: Mutex::new(Some(alive)),
            stopping: stopping.clone(),
        });
        let tasks = vec![
            app.pool.spawn_keepalive(),
            tokio::spawn(Arc::clone(&app).idle_ticker(stopping.clone())),
            tokio::spawn(Arc::clone(&app).accept(listener, stopping)),
        ];
        tracing::info!("listening on {addr}");
        Ok(Server { addr, app, stop, tasks, all_closed })
    }

    /// The address the server actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection with a close frame, and waits for them to end.
    pub async fn shutdown(self) {
        let Server { app, stop, tasks, mut all_closed, .. } = self;
        // No session opens from here on; then every open one is closed with 1001.
        drop(app.alive.lock().unwrap_or_else(PoisonError::into_inner).take());
        stop.send_replace(true);
        app.pool.shutdown();
        // Every session holds a sender; recv() returns None once all have ended.
        let _ = tokio::time::timeout(Duration::from_secs(5), all_closed.recv()).await;
        for task in tasks {
            task.abort();
        }
    }
}

impl App {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let app = Arc::clone(&self);
                        tokio::spawn(async move { app.serve_http(TokioIo::new(stream), peer).await });
                    }
                    Err(error) => tracing::warn!(%error, "accepting a connection failed"),
                },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Announces users who have gone idle, a few times per idle timeout.
    async fn idle_ticker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every =
            (self.config.idle_timeout / 10).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let rooms: Vec<Arc<Mutex<Room>>> = self.rooms.iter().map(|entry| Arc::clone(entry.value())).collect();
                    for room in rooms {
                        let mut room = lock(&room);
                        for broadcast in room.tick(self.now()) {
                            let frame = Message::text(broadcast.message.to_json());
                            self.pool.broadcast(room.id(), Some(&broadcast.except), &frame);
                        }
                    }
                }
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Registers `client` in document `doc` and joins its room, queueing the welcome.
    /// Done under the room's lock, so no change can be queued for the client before its welcome.
    fn open(&self, doc: &str, client: &str) -> Result<Session, Refused> {
        let alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let alive = alive.ok_or(Refused::ShuttingDown)?;
        let room = self.room(doc);
        let mut guard = lock(&room);
        let connection = self.pool.register(doc, client).map_err(|_| Refused::Taken)?;
        let reply = guard.join(client, self.now());
        self.dispatch(doc, client, reply);
        drop(guard);
        Ok(Session { connection, room, _alive: alive })
    }

    /// Runs an upgraded connection until it ends, then closes its session.
    async fn serve_socket<S>(
        &self,
        mut session: Session,
        socket: tokio_tungstenite::WebSocketStream<S>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (doc, client) =
            (session.connection.room().to_owned(), session.connection.client().to_owned());
        tracing::info!(%client, %doc, "connected");
        let room = Arc::clone(&session.room);
        let closed = session
            .connection
            .run(socket, |frame| {
                let mut room = lock(&room);
                let reply = match frame {
                    Frame::Text(text) => room.handle(&client, &text, self.now()),
                    Frame::Binary => room.handle_binary(),
                };
                self.dispatch(&doc, &client, reply);
            })
            .await;
        match &closed {
            Closed::Failed(error) => tracing::warn!(%client, %doc, %error, "connection failed"),
            closed => tracing::info!(%client, %doc, ?closed, "disconnected"),
        }
        self.close(session);
    }

    /// Unregisters a session's connection and takes its client out of the room, in one step
    /// under the room's lock: a reconnect with the same client id cannot slip in between.
    fn close(&self, session: Session) {
        let Session { connection, room, _alive } = session;
        let (doc, client) = (connection.room().to_owned(), connection.client().to_owned());
        let mut room = lock(&room);
        drop(connection);
        let reply = room.leave(&client);
        self.dispatch(&doc, &client, reply);
    }

    /// Sends a reply: to the sender, and to everyone else in the document.
    fn dispatch(&self, doc: &str, client: &str, reply: Reply) {
        for message in reply.to_sender {
            self.pool.send(doc, client, Message::text(message.to_json()));
        }
        for message in reply.to_others {
            self.pool.broadcast(doc, Some(client), &Message::text(message.to_json()));
        }
    }

    /// The room of `doc`, created empty on first use.
    fn room(&self, doc: &str) -> Arc<Mutex<Room>> {
        let entry = self.rooms.entry(doc.to_owned()).or_insert_with(|| {
            Arc::new(Mutex::new(Room::new(
                doc,
                self.config.limits.clone(),
                self.config.idle_timeout,
            )))
        });
        Arc::clone(entry.value())
    }

    /// `/status`: connections, and per document its clients, revision and length.
    fn status(&self) -> serde_json::Value {
        let rooms: Vec<Arc<Mutex<Room>>> =
            self.rooms.iter().map(|entry| Arc::clone(entry.value())).collect();
        let mut documents: Vec<serde_json::Value> = rooms
            .iter()
            .map(|room| {
                let room = lock(room);
                serde_json::json!({
                    "id": room.id(),
                    "clients": room.clients(),
                    "revision": room.revision(),
                    "length": room.document().len(),
                })
            })
            .collect();
        documents.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        serde_json::json!({ "connections": self.pool.connections(), "documents": documents })
    }
}

/// Locks a room. A panic while a room was locked would be a bug; the room's state is still
/// consistent between messages, so the lock is taken over rather than poisoning the document.
fn lock(room: &Mutex<Room>) -> MutexGuard<'_, Room> {
    room.lock().unwrap_or_else(PoisonError::into_inner)
}
