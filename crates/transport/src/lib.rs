//! WebSocket connections and the pool that holds them.
//!
//! A [`Pool`] registers connections by room (document) and client id, and sends to one client
//! or broadcasts to a room except the sender. Every connection has a bounded
//! outgoing queue: a client that stops reading is disconnected when its queue is full, so it
//! neither grows memory nor stalls the others. A keepalive task pings every connection and a
//! reaper closes the ones that have been silent too long.
//!
//! The transport moves frames without looking inside: it knows nothing of documents, messages
//! or JSON. Rooms and clients are opaque strings.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use dashmap::DashMap;
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{Notify, mpsc, oneshot, watch},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self,
        error::CapacityError,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

pub use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How long a closing connection may take to send its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How often every connection is pinged.
    pub heartbeat_interval: Duration,
    /// How long a connection may stay silent before the reaper closes it.
    pub heartbeat_timeout: Duration,
    /// How many outgoing messages may wait for a slow client before it is disconnected.
    pub queue_capacity: usize,
    /// How many bytes of outgoing messages may wait for a slow client before it is
    /// disconnected (one message of any size is always let in to an empty queue).
    pub queue_bytes: usize,
    /// The largest incoming message; a larger one closes the connection with code 1009.
    pub max_message_bytes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            queue_capacity: 1024,
            queue_bytes: 16 << 20,
            max_message_bytes: 1 << 20,
        }
    }
}

impl Config {
    /// The WebSocket settings for these limits. Buffers start small (tungstenite's default read
    /// buffer of 128 KiB per connection is far too much for many idle connections) and grow
    /// only for large messages.
    pub fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

/// What can go wrong in the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("client {client} is already connected to {room}")]
    AlreadyConnected { room: String, client: String },
}

/// An incoming data frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it or the socket ended.
    ByPeer,
    /// The client sent a message over the size limit (closed with 1009).
    TooLarge,
    /// The client sent a text message that is not UTF-8 (closed with 1007).
    InvalidUtf8,
    /// The client broke the WebSocket protocol: an unmasked frame, reserved bits, a control
    /// frame fragmented or over 125 bytes, an unknown opcode (closed with 1002).
    ProtocolViolation(String),
    /// The server closed it for breaking its policy (closed with 1008), for the reason given.
    Policy(&'static str),
    /// The client was silent past the heartbeat timeout.
    Reaped,
    /// The client's outgoing queue was full (closed with 1008).
    SlowConsumer,
    /// The server is shutting down (closed with 1001).
    Shutdown,
    /// The connection failed.
    Failed(String),
}

impl Closed {
    fn frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Closed::TooLarge => (CloseCode::Size, "message too big"),
            Closed::InvalidUtf8 => (CloseCode::Invalid, "text is not UTF-8"),
            Closed::ProtocolViolation(_) => (CloseCode::Protocol, "protocol error"),
            Closed::Policy(reason) => (CloseCode::Policy, *reason),
            Closed::Reaped => (CloseCode::Away, "heartbeat timeout"),
            Closed::SlowConsumer => (CloseCode::Policy, "outgoing queue full"),
            Closed::Shutdown => (CloseCode::Away, "server shutting down"),
            Closed::ByPeer | Closed::Failed(_) => return None,
        };
        Some(CloseFrame { code, reason: reason.into() })
    }
}

/// The registry of live connections and of the room each is in. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    /// The connections of each room by client id. One map, so joining and leaving a room are
    /// atomic under its entry's lock, and there is no lock order between maps to get wrong.
    rooms: DashMap<String, BTreeMap<String, Arc<Shared>>>,
    epoch: Instant,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug)]
struct Shared {
    client: String,
    room: String,
    outgoing: mpsc::Sender<Message>,
    /// Bytes of the messages waiting in `outgoing`, and how many may wait.
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    /// Milliseconds since the pool's epoch when the client was last heard from.
    last_seen: AtomicU64,
    /// Why the pool asked the connection to close, and the signal to do so.
    close_reason: Mutex<Option<Closed>>,
    close: Notify,
}

impl Shared {
    /// Asks the connection to close for `reason`; false if it had been asked already.
    fn request_close(&self, reason: Closed) -> bool {
        let mut slot = self.close_reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = slot.is_none();
        slot.get_or_insert(reason);
        self.close.notify_one();
        first
    }

    fn close_reason(&self) -> Closed {
        let slot = self.close_reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.clone().unwrap_or(Closed::Shutdown)
    }
}

impl Pool {
    pub fn new(config: Config) -> Pool {
        let (shutdown, _) = watch::channel(false);
        let inner = Inner { config, rooms: DashMap::new(), epoch: Instant::now(), shutdown };
        Pool { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Registers `client` in `room`; a client id is unique within a room. The connection is
    /// unregistered when the returned [`Connection`] is dropped.
    pub fn register(&self, room: &str, client: &str) -> Result<Connection, Error> {
        let (outgoing, receiver) = mpsc::channel(self.inner.config.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            client: client.to_owned(),
            room: room.to_owned(),
            outgoing,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes: self.inner.config.queue_bytes,
            last_seen: AtomicU64::new(self.now_ms()),
            close_reason: Mutex::new(None),
            close: Notify::new(),
        });
        let mut clients = self.inner.rooms.entry(room.to_owned()).or_default();
        if clients.contains_key(client) {
            return Err(Error::AlreadyConnected {
                room: room.to_owned(),
                client: client.to_owned(),
            });
        }
        clients.insert(client.to_owned(), Arc::clone(&shared));
        drop(clients);
        Ok(Connection { pool: self.clone(), shared, receiver: Some(receiver) })
    }

    /// Queues `message` for `client` in `room`; false if it is not connected or its queue is
    /// full (then it is disconnected as a slow consumer).
    pub fn send(&self, room: &str, client: &str, message: Message) -> bool {
        match self.connection(room, client) {
            Some(shared) => deliver(&shared, message),
            None => false,
        }
    }

    /// Queues `message` for every client in `room` except `except`. The message is encoded once
    /// and shared by all the queues.
    pub fn broadcast(&self, room: &str, except: Option<&str>, message: &Message) {
        let targets: Vec<Arc<Shared>> = match self.inner.rooms.get(room) {
            Some(clients) => clients
                .iter()
                .filter(|(client, _)| Some(client.as_str()) != except)
                .map(|(_, shared)| Arc::clone(shared))
                .collect(),
            None => Vec::new(),
        };
        for shared in targets {
            deliver(&shared, message.clone());
        }
    }

    /// The connection of `client` in `room` now.
    pub fn handle(&self, room: &str, client: &str) -> Option<Handle> {
        self.connection(room, client).map(Handle)
    }

    /// Number of live connections.
    pub fn connections(&self) -> usize {
        self.inner.rooms.iter().map(|clients| clients.len()).sum()
    }

    /// The clients in `room`, sorted.
    pub fn clients(&self, room: &str) -> Vec<String> {
        self.inner
            .rooms
            .get(room)
            .map(|clients| clients.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts the keepalive task: a ping to every connection each heartbeat interval, and the
    /// reaper, which closes connections silent for longer than the heartbeat timeout. It stops
    /// on [`Pool::shutdown`].
    pub fn spawn_keepalive(&self) -> JoinHandle<()> {
        let pool = self.clone();
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let config = &pool.inner.config;
            let floor = Duration::from_millis(5);
            let mut heartbeat = tokio::time::interval(config.heartbeat_interval.max(floor));
            let mut reaper = tokio::time::interval((config.heartbeat_timeout / 4).max(floor));
            heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            reaper.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = heartbeat.tick() => pool.ping_all(),
                    _ = reaper.tick() => pool.reap(),
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        })
    }

    /// Closes every connection with 1001 and stops the keepalive task.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        for shared in self.all() {
            shared.request_close(Closed::Shutdown);
        }
    }

    fn ping_all(&self) {
        for shared in self.all() {
            deliver(&shared, Message::Ping(Default::default()));
        }
    }

    fn reap(&self) {
        let timeout = self.inner.config.heartbeat_timeout.as_millis() as u64;
        let now = self.now_ms();
        for shared in self.all() {
            if now.saturating_sub(shared.last_seen.load(Ordering::Relaxed)) > timeout {
                tracing::info!(client = %shared.client, room = %shared.room, "reaping a silent connection");
                shared.request_close(Closed::Reaped);
            }
        }
    }

    fn connection(&self, room: &str, client: &str) -> Option<Arc<Shared>> {
        self.inner.rooms.get(room)?.get(client).map(Arc::clone)
    }

    fn all(&self) -> Vec<Arc<Shared>> {
        let mut all = Vec::new();
        for clients in self.inner.rooms.iter() {
            all.extend(clients.values().map(Arc::clone));
        }
        all
    }

    /// Removes this connection (and not a later one with the same id) from its room.
    fn unregister(&self, shared: &Arc<Shared>) {
        if let Some(mut clients) = self.inner.rooms.get_mut(&shared.room)
            && clients.get(&shared.client).is_some_and(|registered| Arc::ptr_eq(registered, shared))
        {
            clients.remove(&shared.client);
        }
        self.inner.rooms.remove_if(&shared.room, |_, clients| clients.is_empty());
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }
}

/// One connection, to queue messages for: unlike a client id, a handle never reaches a later
/// connection that took the same id.
#[derive(Clone, Debug)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// Closes the connection with 1008 (policy violation) and `reason`.
    pub fn close_for_policy(&self, reason: &'static str) {
        self.0.request_close(Closed::Policy(reason));
    }

    /// Queues `message`; false if the connection is gone or its queue is full (then it is
    /// disconnected as a slow consumer).
    pub fn send(&self, message: Message) -> bool {
        deliver(&self.0, message)
    }
}

/// Queues a message, disconnecting the client if its queue is full.
fn deliver(shared: &Shared, message: Message) -> bool {
    // One message of any size gets into an empty queue; past that, the bytes are bounded too.
    let len = message.len();
    let queued = shared.queued_bytes.load(Ordering::SeqCst);
    let room = queued == 0 || queued.saturating_add(len) <= shared.max_queued_bytes;
    if room {
        // Counted before it can be sent, so the writer's subtraction never comes first.
        shared.queued_bytes.fetch_add(len, Ordering::SeqCst);
        match shared.outgoing.try_send(message) {
            Ok(()) => return true,
            Err(error) => {
                shared.queued_bytes.fetch_sub(len, Ordering::SeqCst);
                if matches!(error, mpsc::error::TrySendError::Closed(_)) {
                    return false;
                }
            }
        }
    }
    if shared.request_close(Closed::SlowConsumer) {
        tracing::warn!(client = %shared.client, room = %shared.room, "outgoing queue full; disconnecting");
    }
    false
}

/// A registered connection, before and while it runs.
#[derive(Debug)]
pub struct Connection {
    pool: Pool,
    shared: Arc<Shared>,
    receiver: Option<mpsc::Receiver<Message>>,
}

impl Connection {
    pub fn client(&self) -> &str {
        &self.shared.client
    }

    pub fn room(&self) -> &str {
        &self.shared.room
    }

    /// Drives the WebSocket until it ends: queued messages go out, and every incoming data
    /// frame goes to `on_frame`, whose future is awaited before the next frame is read (so a
    /// handler that waits, for room in a queue say, holds the client back: backpressure).
    /// Returns why it ended. The connection stays registered until it is dropped, so the
    /// caller can leave its room and unregister in one step.
    pub async fn run<S, F>(
        &mut self,
        socket: WebSocketStream<S>,
        mut on_frame: impl FnMut(Frame) -> F,
    ) -> Closed
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: std::future::Future<Output = ()>,
    {
        let Some(mut receiver) = self.receiver.take() else {
            return Closed::Failed("already run".into());
        };
        let (mut sink, mut stream) = socket.split();
        let (close_sender, mut close_receiver) = oneshot::channel::<Option<CloseFrame>>();
        let queue = Arc::clone(&self.shared);
        let writer = tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Some(message) => {
                            let len = message.len();
                            let sent = sink.send(message).await;
                            queue.queued_bytes.fetch_sub(len, Ordering::SeqCst);
                            if sent.is_err() {
                                return;
                            }
                        }
                        None => return,
                    },
                    frame = &mut close_receiver => {
                        match frame {
                            Ok(Some(frame)) => {
                                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
                            }
                            // The peer closed: flush the reply tungstenite queued to its close.
                            _ => {
                                let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                            }
                        }
                        return;
                    }
                }
            }
        });
        let shared = Arc::clone(&self.shared);
        let closed = loop {
            let frame = tokio::select! {
                incoming = stream.next() => {
                    shared.last_seen.store(self.pool.now_ms(), Ordering::Relaxed);
                    match incoming {
                        Some(Ok(Message::Text(text))) => Frame::Text(text),
                        Some(Ok(Message::Binary(_))) => Frame::Binary,
                        Some(Ok(Message::Close(_))) | None => break Closed::ByPeer,
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }))) => {
                            break Closed::TooLarge;
                        }
                        Some(Err(tungstenite::Error::Utf8(_))) => break Closed::InvalidUtf8,
                        Some(Err(tungstenite::Error::Protocol(
                            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                        ))) => break Closed::ByPeer,
                        Some(Err(tungstenite::Error::Protocol(error))) => {
                            break Closed::ProtocolViolation(error.to_string());
                        }
                        Some(Err(error)) => break Closed::Failed(error.to_string()),
                    }
                }
                _ = shared.close.notified() => break shared.close_reason(),
            };
            on_frame(frame).await;
        };
        let _ = close_sender.send(closed.frame());
        let mut writer = writer;
        if tokio::time::timeout(CLOSE_GRACE * 2, &mut writer).await.is_err() {
            writer.abort();
        }
        closed
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.pool.unregister(&self.shared);
    }
}

#[cfg(test)]
mod tests;
