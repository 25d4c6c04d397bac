//! The registry of live connections, their outgoing queues, and the keepalive task.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use dashmap::DashMap;
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

use crate::{Closed, Config, Connection, Message};

/// A connection's id in its pool: never reused while the pool lives, so a message addressed
/// to an id never reaches a later connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The registry of live connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    connections: DashMap<ConnectionId, Arc<Shared>>,
    /// Bytes waiting in every queue together.
    pub(crate) queued_bytes: Arc<AtomicUsize>,
    next_id: AtomicU64,
    epoch: Instant,
    shutdown: watch::Sender<bool>,
}

/// What a connection shares with its handles and the pool.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: ConnectionId,
    outgoing: mpsc::Sender<Message>,
    /// Bytes of the messages waiting in `outgoing`, and how many may wait.
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    /// Bytes waiting in all the pool's queues, and how many may wait.
    total_bytes: Arc<AtomicUsize>,
    max_total_bytes: usize,
    /// Milliseconds since the pool's epoch when the client was last heard from.
    pub(crate) last_seen: AtomicU64,
    /// Whether a frame of the client's is being handled: the server, not the client, is the
    /// one keeping the next frame (and the pongs behind it) unread, so it is not silence.
    pub(crate) handling: AtomicBool,
    /// Why the connection was asked to close, and the signal to do so.
    close_reason: Mutex<Option<Closed>>,
    pub(crate) close: Notify,
    /// While held ([`Handle::hold`]): the messages sent meanwhile, and their bytes.
    held: Mutex<Option<(VecDeque<Message>, usize)>>,
    /// Signalled each time the writer has sent a message, or the connection closes.
    pub(crate) drained: Notify,
}

impl Shared {
    /// Asks the connection to close for `reason`; false if it had been asked already.
    fn request_close(&self, reason: Closed) -> bool {
        let mut slot = self.close_reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = slot.is_none();
        slot.get_or_insert(reason);
        self.close.notify_one();
        self.drained.notify_waiters();
        first
    }

    fn closing(&self) -> bool {
        self.close_reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
            || self.outgoing.is_closed()
    }

    /// Whether the queue may take a paced message now: it holds less than half its bound
    /// (or nothing), and has a free slot.
    fn has_room(&self) -> bool {
        let queued = self.queued_bytes.load(Ordering::SeqCst);
        (queued == 0 || queued < self.max_queued_bytes / 2) && self.outgoing.capacity() > 0
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<(VecDeque<Message>, usize)>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn close_reason(&self) -> Closed {
        let slot = self.close_reason.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.clone().unwrap_or(Closed::Shutdown)
    }

    /// Queues a message (or holds it, while held; pings are never held), disconnecting the
    /// client if its queue is full.
    fn deliver(&self, message: Message) -> bool {
        if !matches!(message, Message::Ping(_)) {
            let mut held = self.held();
            if let Some((messages, bytes)) = held.as_mut() {
                let len = message.len();
                let total = self.total_bytes.load(Ordering::SeqCst);
                let fits = *bytes == 0 || bytes.saturating_add(len) <= self.max_queued_bytes;
                if fits && total.saturating_add(len) <= self.max_total_bytes {
                    *bytes += len;
                    self.total_bytes.fetch_add(len, Ordering::SeqCst);
                    messages.push_back(message);
                    return true;
                }
                drop(held);
                if self.request_close(Closed::SlowConsumer) {
                    tracing::debug!(connection = %self.id, "held messages full; disconnecting");
                }
                return false;
            }
        }
        self.enqueue(message)
    }

    /// Puts a message in the outgoing queue, disconnecting the client if the queue is full.
    fn enqueue(&self, message: Message) -> bool {
        // One message of any size gets into an empty queue; past that, the bytes are bounded.
        // Every queue's bytes together are bounded too.
        let len = message.len();
        let queued = self.queued_bytes.load(Ordering::SeqCst);
        let total = self.total_bytes.load(Ordering::SeqCst);
        let fits = queued == 0 || queued.saturating_add(len) <= self.max_queued_bytes;
        if fits && total.saturating_add(len) <= self.max_total_bytes {
            // Counted before it can be sent, so the writer's subtraction never comes first.
            self.count(len as isize);
            match self.outgoing.try_send(message) {
                Ok(()) => return true,
                Err(error) => {
                    self.count(-(len as isize));
                    if matches!(error, mpsc::error::TrySendError::Closed(_)) {
                        return false;
                    }
                }
            }
        }
        if self.request_close(Closed::SlowConsumer) {
            tracing::debug!(connection = %self.id, "outgoing queue full; disconnecting");
        }
        false
    }

    /// Adds `bytes` (or takes them off, when negative) to this queue's count and the pool's.
    /// Taking off never goes below zero: a send that fails while the connection is dropped
    /// may take off what [`Shared::forget_queued`] already did.
    pub(crate) fn count(&self, bytes: isize) {
        let magnitude = bytes.unsigned_abs();
        if bytes >= 0 {
            self.queued_bytes.fetch_add(magnitude, Ordering::SeqCst);
            self.total_bytes.fetch_add(magnitude, Ordering::SeqCst);
        } else {
            take_off(&self.queued_bytes, magnitude);
            take_off(&self.total_bytes, magnitude);
        }
    }

    /// Takes whatever is still queued or held off the pool's count, when the connection is
    /// gone.
    pub(crate) fn forget_queued(&self) {
        let left = self.queued_bytes.swap(0, Ordering::SeqCst);
        take_off(&self.total_bytes, left);
        if let Some((_, bytes)) = self.held().take() {
            take_off(&self.total_bytes, bytes);
        }
    }

    /// Asks the connection to close as a slow consumer (its writer could not send in time).
    pub(crate) fn stalled(&self) {
        self.request_close(Closed::SlowConsumer);
    }
}

/// Subtracts `bytes` from `count`, stopping at zero.
fn take_off(count: &AtomicUsize, bytes: usize) {
    let _ = count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_sub(bytes)));
}

impl Pool {
    pub fn new(config: Config) -> Pool {
        let (shutdown, _) = watch::channel(false);
        let inner = Inner {
            config,
            connections: DashMap::new(),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
            shutdown,
        };
        Pool { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Registers a new connection under a fresh id. It is unregistered when the returned
    /// [`Connection`] is dropped; until then its [`Handle`] queues messages for it, even
    /// before it runs.
    pub fn register(&self) -> Connection {
        let config = &self.inner.config;
        let (outgoing, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let id = ConnectionId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let shared = Arc::new(Shared {
            id,
            outgoing,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes: config.queue_bytes,
            total_bytes: Arc::clone(&self.inner.queued_bytes),
            max_total_bytes: config.total_queue_bytes,
            last_seen: AtomicU64::new(self.now_ms()),
            handling: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            close: Notify::new(),
            held: Mutex::new(None),
            drained: Notify::new(),
        });
        self.inner.connections.insert(id, Arc::clone(&shared));
        Connection::new(self.clone(), shared, receiver)
    }

    /// The connection registered as `id`, if it is still live.
    pub fn handle(&self, id: ConnectionId) -> Option<Handle> {
        self.inner.connections.get(&id).map(|shared| Handle(Arc::clone(&shared)))
    }

    /// Number of live connections.
    pub fn connections(&self) -> usize {
        self.inner.connections.len()
    }

    /// Bytes of outgoing messages waiting in all the queues together.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued_bytes.load(Ordering::SeqCst)
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
            shared.deliver(Message::Ping(Default::default()));
        }
    }

    fn reap(&self) {
        let timeout = self.inner.config.heartbeat_timeout.as_millis() as u64;
        let now = self.now_ms();
        for shared in self.all() {
            let handling = shared.handling.load(Ordering::Relaxed);
            if !handling && now.saturating_sub(shared.last_seen.load(Ordering::Relaxed)) > timeout {
                tracing::debug!(connection = %shared.id, "reaping a silent connection");
                shared.request_close(Closed::Reaped);
            }
        }
    }

    fn all(&self) -> Vec<Arc<Shared>> {
        self.inner.connections.iter().map(|entry| Arc::clone(entry.value())).collect()
    }

    pub(crate) fn unregister(&self, id: ConnectionId) {
        self.inner.connections.remove(&id);
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }
}

/// One connection, to queue messages for or to close. Cheap to clone; it outlives the
/// connection harmlessly (sends then fail).
#[derive(Clone, Debug)]
pub struct Handle(pub(crate) Arc<Shared>);

impl Handle {
    pub fn id(&self) -> ConnectionId {
        self.0.id
    }

    /// Queues `message`; false if the connection is gone or its queue is full (then it is
    /// disconnected as a slow consumer).
    pub fn send(&self, message: Message) -> bool {
        self.0.deliver(message)
    }

    /// Closes the connection with 1008 (policy violation) and `reason`.
    pub fn close_for_policy(&self, reason: &'static str) {
        self.0.request_close(Closed::Policy(reason));
    }

    /// Holds the messages sent from now on (but pings) until [`Handle::release`]: they wait
    /// in order, within the queue's bound in bytes (past it the connection is closed as a slow
    /// consumer), while [`Handle::send_through`] sends others ahead of them.
    pub fn hold(&self) {
        self.0.held().get_or_insert_with(Default::default);
    }

    /// Queues `message` ahead of any held ones, once the queue has room: it waits while the
    /// queue holds half its bound or more, so that a long stream sent this way follows the
    /// client's pace. False if the connection is gone (or goes while waiting).
    pub async fn send_through(&self, message: Message) -> bool {
        let mut message = Some(message);
        self.paced(|shared| {
            let message = message.take_if(|_| shared.has_room())?;
            Some(shared.enqueue(message))
        })
        .await
    }

    /// Runs `step` now and whenever the queue drains, until it gives an answer; false if the
    /// connection is gone (or goes while waiting).
    async fn paced(&self, mut step: impl FnMut(&Shared) -> Option<bool>) -> bool {
        let shared = &self.0;
        loop {
            let drained = shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if shared.closing() {
                return false;
            }
            if let Some(done) = step(shared) {
                return done;
            }
            drained.await;
        }
    }

    /// Queues the held messages, in order, at the client's pace (as [`Handle::send_through`]:
    /// while the queue holds half its bound or more, they wait), and stops holding once none
    /// is left; messages sent meanwhile are held behind them. False if the connection is gone
    /// (or goes while waiting).
    pub async fn release(&self) -> bool {
        self.paced(|shared| {
            // Under the lock, so that nothing sent meanwhile can overtake them.
            let mut held = shared.held();
            let Some((messages, bytes)) = held.as_mut() else { return Some(true) };
            while shared.has_room() {
                let Some(message) = messages.pop_front() else {
                    *held = None;
                    return Some(true);
                };
                let len = message.len();
                *bytes = bytes.saturating_sub(len);
                take_off(&shared.total_bytes, len);
                if !shared.enqueue(message) {
                    return Some(false);
                }
            }
            None
        })
        .await
    }
}
