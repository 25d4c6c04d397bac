//! Cluster mode: several Tandem nodes share documents through NATS.
//!
//! - The log: every document's changes are in a JetStream stream ([`NatsStore`]). A node
//!   plans a client's change against the room it has, appends the plan's records only if the
//!   document's log has nothing it lacks (compare-and-set on the subject's last sequence), and
//!   only then commits it and answers; when another node appended first, it reads what it
//!   missed, applies it, and plans again. So there is one sequence of revisions per document,
//!   every change is in it once, and nobody hears of a change before JetStream stored it.
//! - Following: one ordered consumer per node delivers every document's new messages; a node
//!   applies those of the documents it has loaded, as changes from another client.
//! - Presence crosses nodes on plain NATS subjects (not stored): joins, moves and leaves of
//!   each node's clients, and a heartbeat per node with its roster (in parts, `roster.rs`);
//!   the users of a node not heard from for the heartbeat timeout plus a grace period are
//!   taken as gone. What a node has to say waits in a bounded queue, in order; when NATS is
//!   away long enough to fill it, the rest is dropped, and once the queue is through, the
//!   node sends its users' presence again (and its rosters tell who left meanwhile).
//!
//! The single-node mode (redb) does none of this.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tandem_protocol::{ErrorCode, Past, Planned, Reply, RequestId, ServerMessage, UserView};
use tandem_store::{
    NatsStore,
    nats::{AppendError, NatsConfig},
    records::ChangeRecord,
};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use crate::{App, auth, history, metrics::Metrics, outbox::Permit, records, rooms::Slot};

pub(crate) mod roster;

use roster::{Assembly, Part, Roster};

/// How many times a change is planned again after other nodes' changes came first.
const MAX_ATTEMPTS: usize = 32;

/// How long appends and reads of the log may keep failing for want of NATS (a server lost, the
/// cluster electing a leader) before the client is told to send its change again later.
const UNAVAILABLE_PATIENCE: Duration = Duration::from_secs(20);

/// How many presence signals may wait to be published (while NATS is slow or away).
const QUEUED_SIGNALS: usize = 4_096;

/// Cluster settings.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nats: NatsConfig,
    /// This node's name in the cluster (in presence and in the log's messages).
    pub node: String,
    /// How long after the heartbeat timeout a silent node's users are still shown.
    pub node_grace: Duration,
}

/// A node's view of the cluster.
pub(crate) struct Cluster {
    pub(crate) store: NatsStore,
    pub(crate) node: String,
    grace: Duration,
    /// The users connected to other nodes, per document.
    remote: Mutex<HashMap<String, RemoteUsers>>,
    /// When each other node was last heard from.
    nodes: Mutex<HashMap<String, Instant>>,
    /// The other nodes' heartbeats whose rosters are coming in parts.
    rosters: Mutex<Assembly>,
    /// What this node has to say, in order, for the publisher; taken away at shutdown, so that
    /// the publisher sends what is left and ends.
    outgoing: Mutex<Option<mpsc::Sender<Signal>>>,
    /// Whether a signal was dropped since the publisher last sent everyone's presence.
    dropped: AtomicBool,
    /// How many parts of heartbeats wait in the queue: while any do, no newer heartbeat is
    /// queued (a backlog of stale rosters would only crowd the queue).
    beats_queued: AtomicUsize,
    /// The documents whose users a roster had this node ask for (`Hello`) lately, and when.
    asked: Mutex<HashMap<String, Instant>>,
    metrics: Arc<Metrics>,
}

/// The queue of signals a node's publisher sends (see [`Cluster::new`]).
pub(crate) type Signals = mpsc::Receiver<Signal>;

/// The users of other nodes in one document: client id -> (node, presence, when heard).
type RemoteUsers = BTreeMap<String, (String, UserView, Instant)>;

/// What travels on the presence subjects.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Signal {
    /// A presence or leave message of a client of `node`.
    Presence { node: String, doc: String, message: ServerMessage },
    /// `node` has loaded `doc` and asks the others for their users there.
    Hello { node: String, doc: String },
    /// `client` has just connected to `doc` on `node`: a connection it still has elsewhere is
    /// one it left behind (a broken link not yet noticed), closed there.
    Joined { node: String, doc: String, client: String, user: Option<UserView>, at: u64 },
    /// `node` is alive, with (a part of) its clients in each document it has clients in: what
    /// the others check their view of its users against, in case a presence message was lost.
    Alive {
        node: String,
        #[serde(flatten)]
        part: Part,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// The node's view of the cluster, and the queue its publisher is to send
    /// ([`App::spawn_cluster`]).
    pub(crate) fn new(
        store: NatsStore,
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> (Cluster, Signals) {
        let (outgoing, signals) = mpsc::channel(QUEUED_SIGNALS);
        let cluster = Cluster {
            store,
            node: config.node.clone(),
            grace: config.node_grace,
            remote: Mutex::default(),
            nodes: Mutex::default(),
            rosters: Mutex::default(),
            outgoing: Mutex::new(Some(outgoing)),
            dropped: AtomicBool::new(false),
            beats_queued: AtomicUsize::new(0),
            asked: Mutex::default(),
            metrics,
        };
        (cluster, signals)
    }

    /// The users of other nodes in `doc`.
    pub(crate) fn remote_users(&self, doc: &str) -> Vec<UserView> {
        lock(&self.remote)
            .get(doc)
            .map(|users| users.values().map(|(_, user, _)| user.clone()).collect())
            .unwrap_or_default()
    }

    /// Tells the other nodes that `client` has just connected to `doc` here.
    pub(crate) fn joined(&self, doc: &str, client: &str, user: Option<UserView>, at: u64) {
        self.signal(Signal::Joined {
            node: self.node.clone(),
            doc: doc.to_owned(),
            client: client.to_owned(),
            user,
            at,
        });
    }

    /// Forgets what other nodes said of `client` in `doc`: it is connected here now.
    pub(crate) fn forget_remote(&self, doc: &str, client: &str) {
        let mut remote = lock(&self.remote);
        if let Some(users) = remote.get_mut(doc) {
            users.remove(client);
            if users.is_empty() {
                remote.remove(doc);
            }
        }
    }

    /// The presence of `client` in `doc` on another node, if it is there.
    pub(crate) fn remote_user(&self, doc: &str, client: &str) -> Option<UserView> {
        lock(&self.remote).get(doc)?.get(client).map(|(_, user, _)| user.clone())
    }

    /// The other nodes heard from, sorted.
    pub(crate) fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = lock(&self.nodes).keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// Queues `signal` for the publisher; dropped (and counted) if the queue is full.
    fn signal(&self, signal: Signal) {
        let outgoing = lock(&self.outgoing);
        let Some(outgoing) = outgoing.as_ref() else { return };
        let beat = matches!(signal, Signal::Alive { .. });
        match outgoing.try_send(signal) {
            Ok(()) if beat => {
                self.beats_queued.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.store(true, Ordering::Relaxed);
                let dropped = self.metrics.presence_dropped();
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "presence for the cluster dropped: NATS is slow or away"
                    );
                }
            }
        }
    }

    /// Ends the queue: the publisher sends what is in it, and ends.
    pub(crate) fn close(&self) {
        lock(&self.outgoing).take();
    }

    async fn publish(&self, signal: &Signal) {
        let client = self.store.client();
        let subject = match signal {
            // Not kept for later while NATS is away (the client would keep it, and send a
            // backlog of stale rosters once back): the next heartbeat is the news.
            Signal::Alive { .. }
                if client.connection_state() != async_nats::connection::State::Connected =>
            {
                return;
            }
            Signal::Alive { .. } => "tandem.nodes".to_owned(),
            Signal::Presence { doc, .. }
            | Signal::Hello { doc, .. }
            | Signal::Joined { doc, .. } => {
                format!("tandem.presence.{}", doc.replace('.', "="))
            }
        };
        let payload = serde_json::to_vec(signal).expect("a signal serializes");
        if let Err(error) = client.publish(subject, payload.into()).await {
            tracing::warn!(%error, "publishing presence to the cluster failed");
        }
    }
}

/// A change this node is appending, as it may turn up in the log.
struct Own<'a> {
    message_id: &'a str,
    client: &'a str,
    request: Option<&'a RequestId>,
}

impl Own<'_> {
    /// Whether `entry` is this change: this node's message, or the same request of the same
    /// client appended through another node.
    fn is(&self, entry: &tandem_store::nats::Entry) -> bool {
        if entry.message_id.as_deref() == Some(self.message_id) {
            return true;
        }
        let Some(request) = self.request else { return false };
        entry.records.iter().any(|record| {
            let logged = records::logged(record.clone());
            logged.author == self.client && logged.request.as_ref() == Some(request)
        })
    }
}

/// How a change was stored, when it was.
pub(crate) enum Stored {
    /// Committed here (appended first, unless it had nothing to append), or answered by the
    /// room without it (a refusal): its author had the reply as the room made it. `revision`
    /// is the change's last (the room's, for a change with nothing to append).
    Committed { revision: u64 },
    /// Found in the log (an earlier try of it was stored after all; or the client resent it
    /// through another node): applied from there, its last revision this. Its author had
    /// acks, as for any change of its own read from the log, and nothing else.
    FromLog { revision: u64 },
}

/// What a change needs next in a cluster.
enum Next {
    /// Answered, the room at this revision: nothing more to do.
    Done(u64),
    /// An edit from an old revision: the store's next id for it, then plan again.
    Past(u64),
    /// A plan to append at the document's log position.
    Append(tandem_protocol::Plan, u64),
}

impl App {
    fn cluster(&self) -> &Cluster {
        self.cluster.as_deref().expect("cluster mode")
    }

    /// Starts the node's cluster tasks: following the log, and presence; and the publisher
    /// of `signals`, returned apart: it ends once [`Cluster::close`] ends its queue.
    pub(crate) fn spawn_cluster(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
        signals: Signals,
    ) -> (Vec<tokio::task::JoinHandle<()>>, tokio::task::JoinHandle<()>) {
        let tasks = vec![
            tokio::spawn(Arc::clone(self).follow(stop.clone())),
            tokio::spawn(Arc::clone(self).presence(stop)),
        ];
        (tasks, tokio::spawn(Arc::clone(self).publish_all(signals)))
    }

    /// Publishes what this node has to say, in order, until the queue ends; once it is through
    /// after some was dropped, every user here again: its join (which closes a connection it
    /// left behind on another node) and its presence. Sent straight to NATS, not queued.
    async fn publish_all(self: Arc<Self>, mut signals: Signals) {
        let cluster = self.cluster();
        while let Some(signal) = signals.recv().await {
            cluster.publish(&signal).await;
            if matches!(signal, Signal::Alive { .. }) {
                cluster.beats_queued.fetch_sub(1, Ordering::Relaxed);
            }
            if signals.is_empty() && cluster.dropped.swap(false, Ordering::Relaxed) {
                let docs: Vec<String> =
                    self.rooms.iter().map(|entry| entry.key().clone()).collect();
                for doc in docs {
                    for signal in self.joins_here(&doc).into_iter().chain(self.presence_here(&doc))
                    {
                        cluster.publish(&signal).await;
                    }
                }
            }
        }
        if let Err(error) = cluster.store.client().flush().await {
            tracing::debug!(%error, "flushing presence to the cluster failed");
        }
    }

    /// The joins of this node's users of `doc` (when each connected), as signals.
    fn joins_here(&self, doc: &str) -> Vec<Signal> {
        let cluster = self.cluster();
        let now = self.now();
        let joins = self.with_loaded(doc, |slot| {
            let users = slot.room.users(now);
            users
                .into_iter()
                .filter_map(|user| {
                    let at = *slot.joined_at.get(&user.client_id)?;
                    Some(Signal::Joined {
                        node: cluster.node.clone(),
                        doc: doc.to_owned(),
                        client: user.client_id.clone(),
                        user: Some(user),
                        at,
                    })
                })
                .collect()
        });
        joins.unwrap_or_default()
    }

    /// The presence of this node's users of `doc`, as signals.
    fn presence_here(&self, doc: &str) -> Vec<Signal> {
        let cluster = self.cluster();
        let now = self.now();
        let users = self.with_loaded(doc, |slot| slot.room.users(now)).unwrap_or_default();
        users
            .into_iter()
            .map(|user| Signal::Presence {
                node: cluster.node.clone(),
                doc: doc.to_owned(),
                message: ServerMessage::Presence(user),
            })
            .collect()
    }

    /// Plans `plan` against the room of `doc`, appends it to the document's log, and commits
    /// it, planning again while other nodes' changes come first; the reply goes out through
    /// the outbox as any other. `plan` is asked with what the store said of an old revision
    /// when the room asked for that. `None` if the change was not stored: the client was
    /// refused, or the document is gone.
    pub(crate) async fn append_change(
        self: &Arc<Self>,
        doc: &str,
        client: &str,
        request: Option<RequestId>,
        mut permit: Option<Permit>,
        mut plan: impl FnMut(&mut Slot, Option<Past>) -> Planned,
    ) -> Option<Stored> {
        let appending = self.with_loaded(doc, |slot| Arc::clone(&slot.appending))?;
        // One change of this node's at a time per document, and no following meanwhile.
        let _turn = appending.lock().await;
        let cluster = self.cluster();
        // Fresh for this change (not the client's request id, which a client may use twice,
        // and another connection with the same client id too): it makes a publish tried again
        // after a lost answer a repeat JetStream recognises, and lets this node find its own
        // message in the log when it does not know whether it was stored.
        let message_id = format!("{doc}:{client}:{:016x}{:016x}", rand_id(), rand_id());
        let mut past = None;
        // This change, as the log would show it: by this message id, or (made through another
        // node, the client having resent it there) by its author and request.
        let own = Own { message_id: &message_id, client, request: request.as_ref() };
        let mut attempts = 0;
        // When NATS first failed it, for a bound on how long it keeps trying.
        let mut failing_since: Option<Instant> = None;
        let patient = |since: &Option<Instant>| {
            since.is_none_or(|since| since.elapsed() < UNAVAILABLE_PATIENCE)
        };
        // A node that is stopping gives up at once: its clients send again elsewhere.
        while attempts < MAX_ATTEMPTS && patient(&failing_since) && !*self.stopping.borrow() {
            // Only on the room this lock is of: one evicted and loaded again meanwhile is not
            // this change's any more.
            let next = self.with_same(doc, &appending, |slot| match plan(slot, past) {
                Planned::Reply(Reply { needs_past: Some(revision), .. }) => Next::Past(revision),
                Planned::Reply(reply) => {
                    self.dispatch_frame(slot, client, reply, permit.take());
                    Next::Done(slot.room.revision())
                }
                // Nothing to append (a delete of what others deleted first): its ack.
                Planned::Plan(plan) if plan.is_empty() => {
                    match slot.room.commit_plan(plan, self.now()) {
                        Ok(reply) => self.dispatch_frame(slot, client, reply, permit.take()),
                        Err(error) => {
                            tracing::error!(%doc, %error, "an empty plan does not commit")
                        }
                    }
                    Next::Done(slot.room.revision())
                }
                Planned::Plan(plan) => Next::Append(plan, slot.position),
            });
            let (plan, position) = match next {
                None => return None,
                Some(Next::Done(revision)) => return Some(Stored::Committed { revision }),
                Some(Next::Past(revision)) => {
                    let (store, id) = (Arc::clone(&self.store), doc.to_owned());
                    let read = move || history::next_seq(&*store, &id, revision);
                    match tokio::task::spawn_blocking(read).await {
                        Ok(Ok(Some(next_seq))) => past = Some(Past { revision, next_seq }),
                        _ => {
                            let message = "that revision is not in this document's history";
                            self.refuse(
                                doc,
                                client,
                                request,
                                permit,
                                ErrorCode::StaleRevision,
                                message,
                            );
                            return None;
                        }
                    }
                    continue;
                }
                Some(Next::Append(plan, position)) => (plan, position),
            };
            let at = auth::unix_now_ms();
            let changes: Vec<ChangeRecord> =
                plan.logged().iter().map(|entry| records::change_record(entry, at)).collect();
            let appended =
                cluster.store.append(doc, &changes, position, &message_id, &cluster.node).await;
            let seq = match appended {
                Ok(seq) => Some(seq),
                Err(AppendError::Conflict) => {
                    self.metrics.append_conflict();
                    // NATS answers again: a later failure starts a new spell.
                    failing_since = None;
                    attempts += 1;
                    None
                }
                // An earlier try of this change was stored after all: reading the log below
                // finds it, and answers the client from it, never from this plan.
                Err(AppendError::Repeated) => {
                    failing_since = None;
                    attempts += 1;
                    None
                }
                Err(AppendError::Store(error)) => {
                    let error = tandem_store::Error::source_chain(&error);
                    tracing::warn!(%client, %doc, %error, "appending a change failed; trying again");
                    self.failed_for_now(&mut failing_since).await;
                    None
                }
            };
            match seq {
                Some(seq) => {
                    self.metrics.appended();
                    let revision = changes.last().map_or(0, |record| record.revision);
                    self.with_same(doc, &appending, |slot| match slot.room.commit_plan(plan, self.now()) {
                        Ok(reply) => {
                            slot.position = seq;
                            self.dispatch_frame(slot, client, reply, permit.take());
                        }
                        Err(error) => {
                            // In the log but not here: reload from the log.
                            tracing::error!(%doc, %error, "a stored change does not commit; reloading the document");
                            self.evict(slot, "the document is being reloaded");
                        }
                    });
                    return Some(Stored::Committed { revision });
                }
                None => {
                    // Others came first (or the store hiccuped, or an earlier try was stored):
                    // take in what is there; if this change is among it, its author has had
                    // its ack from there; else plan again.
                    match self.catch_up_log(doc, &appending, Some((&own, position))).await {
                        Ok(Some(revision)) => return Some(Stored::FromLog { revision }),
                        Ok(None) => {}
                        Err(error) => {
                            let error = tandem_store::Error::source_chain(&error);
                            tracing::warn!(%client, %doc, %error, "reading the document's log failed");
                            self.failed_for_now(&mut failing_since).await;
                        }
                    }
                }
            }
        }
        let message = "the change could not be stored now; nothing changed; send it again";
        self.refuse(doc, client, request, permit, ErrorCode::Unavailable, message);
        None
    }

    /// Counts a failure for want of NATS, and pauses before the next try (longer the longer
    /// it has been failing, up to 800 ms).
    async fn failed_for_now(&self, failing_since: &mut Option<Instant>) {
        self.metrics.append_failure();
        let since = *failing_since.get_or_insert_with(Instant::now);
        let pause = Duration::from_millis(100).max(since.elapsed() / 4);
        tokio::time::sleep(pause.min(Duration::from_millis(800))).await;
    }

    /// Answers `client` with an `error` for its request `id`.
    fn refuse(
        &self,
        doc: &str,
        client: &str,
        id: Option<RequestId>,
        permit: Option<Permit>,
        code: ErrorCode,
        message: &str,
    ) {
        self.with_loaded(doc, |slot| {
            self.dispatch_frame(slot, client, Reply::refused(id, code, message), permit);
        });
    }

    /// Applies what the document's log has after this node's position to the room whose
    /// append lock `appending` is (the caller holds it). With `own`, a change this node was
    /// appending from log position `planned_at`: the last revision it made, if it is in the
    /// log (also when the room is gone meanwhile, unloaded or evicted: then nothing is applied,
    /// but whether the change was stored is still known).
    async fn catch_up_log(
        self: &Arc<Self>,
        doc: &str,
        appending: &Arc<tokio::sync::Mutex<()>>,
        own: Option<(&Own<'_>, u64)>,
    ) -> Result<Option<u64>, tandem_store::Error> {
        let here = self.with_same(doc, appending, |slot| slot.position);
        let Some(position) = here.or(own.map(|(_, planned_at)| planned_at)) else {
            return Ok(None);
        };
        let entries = self.cluster().store.tail(doc, position).await?;
        let mut found = None;
        for entry in entries {
            if own.is_some_and(|(own, _)| own.is(&entry)) {
                found = entry.records.last().map(|record| record.revision);
            }
            if here.is_some() {
                self.apply_entry(doc, appending, entry.seq, &entry.records);
            }
        }
        Ok(found)
    }

    /// Applies one message of `doc`'s log at stream sequence `seq` to the room whose append
    /// lock `appending` is, if it is new there.
    fn apply_entry(
        &self,
        doc: &str,
        appending: &Arc<tokio::sync::Mutex<()>>,
        seq: u64,
        changes: &[ChangeRecord],
    ) {
        self.with_same(doc, appending, |slot| {
            if seq <= slot.position {
                return;
            }
            let entries: Vec<_> = changes
                .iter()
                .filter(|record| record.revision > slot.room.revision())
                .cloned()
                .map(records::logged)
                .collect();
            let author = entries.first().map_or(String::new(), |entry| entry.author.clone());
            match slot.room.apply_remote(&entries) {
                Ok(reply) => {
                    slot.position = seq;
                    // Its author, if connected here, has it as acks; everyone else as changes.
                    self.dispatch(slot, &author, reply);
                }
                Err(error) => {
                    tracing::error!(%doc, %error, "a change from the cluster does not apply here; reloading the document");
                    self.evict(slot, "the document is being reloaded");
                }
            }
        });
    }

    /// Follows every document's log: the changes other nodes appended, for the documents
    /// loaded here.
    async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let followed = self.follow_once(&mut stop).await;
            if *stop.borrow() {
                return;
            }
            if let Err(error) = followed {
                let error = tandem_store::Error::source_chain(&error);
                tracing::warn!(%error, "following the cluster's log failed; again in a second");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn follow_once(
        self: &Arc<Self>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), tandem_store::Error> {
        let mut messages = self.cluster().store.follow().await?;
        // Loaded documents may have missed messages while the consumer was down.
        let loaded: Vec<String> = self.rooms.iter().map(|entry| entry.key().clone()).collect();
        for doc in loaded {
            self.caught_up(&doc).await;
        }
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            };
            let Some(message) = message else { return Ok(()) };
            let entry = message?;
            if !self.rooms.contains_key(&entry.doc) {
                continue;
            }
            let Some(appending) = self.with_loaded(&entry.doc, |slot| Arc::clone(&slot.appending))
            else {
                continue;
            };
            // One document's appends (NATS round trips, retries) never hold up the others'.
            let Ok(_turn) = appending.try_lock() else {
                self.catch_up_later(&entry.doc);
                continue;
            };
            let gap = self.with_loaded(&entry.doc, |slot| {
                let first = entry.records.first().map_or(0, |record| record.revision);
                entry.seq > slot.position && first > slot.room.revision() + 1
            });
            if gap == Some(true) {
                self.catch_up_later(&entry.doc);
            } else {
                self.apply_entry(&entry.doc, &appending, entry.seq, &entry.records);
            }
        }
    }

    /// Runs `f` on the room of `doc` if it is still the one `appending` is the append lock of
    /// (not one loaded again after an eviction).
    fn with_same<T>(
        &self,
        doc: &str,
        appending: &Arc<tokio::sync::Mutex<()>>,
        f: impl FnOnce(&mut Slot) -> T,
    ) -> Option<T> {
        self.with_loaded(doc, |slot| Arc::ptr_eq(&slot.appending, appending).then(|| f(slot)))
            .flatten()
    }

    /// Reads what `doc`'s log has that this node lacks, in a task of its own, once this
    /// node's append to it (if any) is done; one such read waits at a time.
    fn catch_up_later(self: &Arc<Self>, doc: &str) {
        let first = self.with_loaded(doc, |slot| !std::mem::replace(&mut slot.catching_up, true));
        if first != Some(true) {
            return;
        }
        let (app, doc) = (Arc::clone(self), doc.to_owned());
        tokio::spawn(async move {
            let Some(appending) = app.with_loaded(&doc, |slot| Arc::clone(&slot.appending)) else {
                return;
            };
            let _turn = appending.lock().await;
            // Cleared before the read: a message passed by from now on asks for another.
            if app.with_same(&doc, &appending, |slot| slot.catching_up = false).is_none() {
                return;
            }
            if let Err(error) = app.catch_up_log(&doc, &appending, None).await {
                let error = tandem_store::Error::source_chain(&error);
                tracing::warn!(%doc, %error, "reading the document's log failed; again in a second");
                drop(_turn);
                // Not once the node is stopping: it would hold the node up for as long as
                // NATS is away.
                let mut stopping = app.stopping.clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => app.catch_up_later(&doc),
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
            }
        });
    }

    /// Applies what `doc`'s log has that this node lacks.
    pub(crate) async fn caught_up(self: &Arc<Self>, doc: &str) {
        let Some(appending) = self.with_loaded(doc, |slot| Arc::clone(&slot.appending)) else {
            return;
        };
        let _turn = appending.lock().await;
        if let Err(error) = self.catch_up_log(doc, &appending, None).await {
            tracing::warn!(%doc, %error, "reading the document's log failed");
        }
    }

    /// Sends this node's presence changes to the others: the presence and leave messages of
    /// `messages`, for document `doc`.
    pub(crate) fn share_presence(&self, doc: &str, messages: &[ServerMessage]) {
        let Some(cluster) = self.cluster.clone() else { return };
        let signals: Vec<Signal> = messages
            .iter()
            .filter(|message| {
                matches!(message, ServerMessage::Presence(_) | ServerMessage::Leave { .. })
            })
            .map(|message| Signal::Presence {
                node: cluster.node.clone(),
                doc: doc.to_owned(),
                message: message.clone(),
            })
            .collect();
        for signal in signals {
            cluster.signal(signal);
        }
    }

    /// Asks the other nodes for their users in `doc`, just loaded here.
    pub(crate) fn hello(&self, doc: &str) {
        let Some(cluster) = &self.cluster else { return };
        cluster.signal(Signal::Hello { node: cluster.node.clone(), doc: doc.to_owned() });
    }

    /// Presence across nodes: sends this node's heartbeat, takes in the others' presence and
    /// heartbeats, and takes away the users of nodes not heard from.
    async fn presence(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let cluster = Arc::clone(self.cluster.as_ref().expect("cluster mode"));
        let client = cluster.store.client().clone();
        let subscribed = async {
            let presence = client.subscribe("tandem.presence.>").await?;
            let nodes = client.subscribe("tandem.nodes").await?;
            Ok::<_, async_nats::SubscribeError>((presence, nodes))
        };
        let (mut presence, mut nodes) = match subscribed.await {
            Ok(subscriptions) => subscriptions,
            Err(error) => {
                tracing::error!(%error, "subscribing to the cluster's presence failed");
                return;
            }
        };
        let interval = self.config.transport.heartbeat_interval;
        let mut heartbeat = tokio::time::interval(interval);
        let mut beat = 0;
        let mut sweep = tokio::time::interval(Duration::from_secs(1).min(interval));
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = heartbeat.tick() => {
                    // Not while the last one is still queued: NATS is slow or away.
                    if cluster.beats_queued.load(Ordering::Relaxed) == 0 {
                        beat += 1;
                        for part in roster::split(self.roster(), beat, roster::PART_BYTES) {
                            cluster.signal(Signal::Alive { node: cluster.node.clone(), part });
                        }
                    }
                }
                _ = sweep.tick() => self.forget_silent_nodes(),
                Some(message) = presence.next() => self.take_signal(&message.payload),
                Some(message) = nodes.next() => self.take_signal(&message.payload),
                () = &mut stopped => return,
            }
        }
    }

    fn take_signal(self: &Arc<Self>, payload: &[u8]) {
        let cluster = self.cluster();
        let Ok(signal) = serde_json::from_slice::<Signal>(payload) else { return };
        match signal {
            Signal::Alive { node, part } => {
                if node != cluster.node {
                    lock(&cluster.nodes).insert(node.clone(), Instant::now());
                    let roster = lock(&cluster.rosters).take(&node, part);
                    if let Some(roster) = roster {
                        self.reconcile(&node, &roster);
                    }
                }
            }
            Signal::Hello { node, doc } => {
                if node == cluster.node {
                    return;
                }
                for signal in self.presence_here(&doc) {
                    cluster.signal(signal);
                }
            }
            Signal::Presence { node, doc, message } => {
                if node == cluster.node {
                    return;
                }
                lock(&cluster.nodes).insert(node.clone(), Instant::now());
                {
                    let mut remote = lock(&cluster.remote);
                    let users = remote.entry(doc.clone()).or_default();
                    match &message {
                        ServerMessage::Presence(user) => {
                            let heard = (node, user.clone(), Instant::now());
                            users.insert(user.client_id.clone(), heard);
                        }
                        ServerMessage::Leave { client_id } => {
                            // Only the node that has it may take it away: a client that moved
                            // on to another node is there now.
                            if users.get(client_id).is_none_or(|(owner, ..)| *owner != node) {
                                return;
                            }
                            users.remove(client_id);
                        }
                        _ => return,
                    }
                    if users.is_empty() {
                        remote.remove(&doc);
                    }
                }
                self.with_loaded(&doc, |slot| {
                    // A client still connected here (a connection it left behind, about to
                    // close) is shown as it is here until then.
                    let client = match &message {
                        ServerMessage::Presence(user) => &user.client_id,
                        ServerMessage::Leave { client_id } => client_id,
                        _ => return,
                    };
                    if slot.room.connection(client).is_none() {
                        self.dispatch(slot, ":remote", Reply::to_others([message]));
                    }
                });
            }
            Signal::Joined { node, doc, client, user, at } => {
                if node == cluster.node {
                    return;
                }
                // Only news of a join newer than the connection here (a link cut may hold
                // such news back for a while) means that connection was left behind.
                let newer = self.with_loaded(&doc, |slot| {
                    slot.joined_at.get(&client).is_none_or(|here| *here < at)
                });
                if newer == Some(false) {
                    return;
                }
                // Where it is now, before the connection left behind here closes (whose
                // leave is then no leave: the client is there).
                if let Some(user) = user {
                    let heard = (node.clone(), user, Instant::now());
                    lock(&cluster.remote)
                        .entry(doc.clone())
                        .or_default()
                        .insert(client.clone(), heard);
                }
                let left_behind = self
                    .with_loaded(&doc, |slot| slot.room.connection(&client))
                    .flatten()
                    .and_then(|connection| {
                        self.pool.handle(tandem_transport::ConnectionId(connection))
                    });
                if let Some(handle) = left_behind {
                    tracing::info!(%client, %doc, %node, "closing a connection its client left for another node");
                    handle.close_for_policy("the client connected again on another node");
                }
            }
        }
    }

    /// This node's clients, per loaded document that has any.
    fn roster(&self) -> Roster {
        let now = self.now();
        let docs: Vec<String> = self.rooms.iter().map(|entry| entry.key().clone()).collect();
        docs.into_iter()
            .filter_map(|doc| {
                let clients: Vec<String> = self
                    .with_loaded(&doc, |slot| slot.room.users(now))?
                    .into_iter()
                    .map(|user| user.client_id)
                    .collect();
                (!clients.is_empty()).then_some((doc, clients))
            })
            .collect()
    }

    /// Checks this node's view of `node`'s users against its roster: a user it no longer
    /// lists (and that was not heard from since its last heartbeat) left unheard, and is
    /// taken away; a document where it lists users not seen here is asked for them again
    /// (`Hello`), as after a spell when this node heard nothing.
    fn reconcile(self: &Arc<Self>, node: &str, roster: &Roster) {
        let cluster = self.cluster();
        // A presence heard since the roster was sent may be newer than it.
        let settled = self.config.transport.heartbeat_interval;
        let mut gone: Vec<(String, String)> = Vec::new();
        let mut unseen: Vec<String> = Vec::new();
        {
            let mut remote = lock(&cluster.remote);
            for (doc, users) in remote.iter_mut() {
                let listed: Option<std::collections::HashSet<&String>> =
                    roster.get(doc).map(|clients| clients.iter().collect());
                users.retain(|client, (owner, _, heard)| {
                    let keep = owner != node
                        || heard.elapsed() < settled
                        || listed.as_ref().is_some_and(|clients| clients.contains(client));
                    if !keep {
                        gone.push((doc.clone(), client.clone()));
                    }
                    keep
                });
            }
            remote.retain(|_, users| !users.is_empty());
            for (doc, clients) in roster {
                let known = remote.get(doc);
                if clients
                    .iter()
                    .any(|client| known.is_none_or(|users| !users.contains_key(client)))
                {
                    unseen.push(doc.clone());
                }
            }
        }
        for (doc, client) in gone {
            self.with_loaded(&doc, |slot| {
                if slot.room.connection(&client).is_some() {
                    return;
                }
                tracing::info!(%doc, %client, %node, "a user its node no longer lists is gone");
                let leave = ServerMessage::Leave { client_id: client };
                self.dispatch(slot, ":remote", Reply::to_others([leave]));
            });
        }
        for doc in unseen {
            // Only documents loaded here need their users; a client here of the same id is
            // listed by that node only until its connection there closes.
            let wanted = self.with_loaded(&doc, |slot| {
                roster[&doc].iter().any(|client| slot.room.connection(client).is_none())
            });
            if wanted != Some(true) {
                continue;
            }
            // Once a heartbeat at most (every node answers a `Hello`): rosters that come in a
            // burst, after a cut, ask once.
            let due = {
                let mut asked = lock(&cluster.asked);
                asked.retain(|_, at| at.elapsed() < settled);
                match asked.entry(doc.clone()) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        entry.insert(Instant::now());
                        true
                    }
                }
            };
            if due {
                self.hello(&doc);
            }
        }
    }

    /// Takes away the users of the nodes not heard from for the heartbeat timeout plus the
    /// grace: a `leave` for each, to the clients here.
    fn forget_silent_nodes(self: &Arc<Self>) {
        let cluster = self.cluster();
        let patience = self.config.transport.heartbeat_timeout + cluster.grace;
        let silent: Vec<String> = {
            let mut nodes = lock(&cluster.nodes);
            let silent = nodes
                .iter()
                .filter(|(_, seen)| seen.elapsed() > patience)
                .map(|(node, _)| node.clone())
                .collect::<Vec<_>>();
            for node in &silent {
                nodes.remove(node);
                lock(&cluster.rosters).forget(node);
            }
            silent
        };
        if silent.is_empty() {
            return;
        }
        let mut gone: Vec<(String, String)> = Vec::new();
        {
            let mut remote = lock(&cluster.remote);
            for (doc, users) in remote.iter_mut() {
                users.retain(|client, (node, ..)| {
                    let keep = !silent.contains(node);
                    if !keep {
                        gone.push((doc.clone(), client.clone()));
                    }
                    keep
                });
            }
            remote.retain(|_, users| !users.is_empty());
        }
        for (doc, client) in gone {
            self.with_loaded(&doc, |slot| {
                // A client that came back here is not gone.
                if slot.room.connection(&client).is_some() {
                    return;
                }
                tracing::info!(%doc, %client, "a node went silent; its user is gone");
                let leave = ServerMessage::Leave { client_id: client };
                self.dispatch(slot, ":remote", Reply::to_others([leave]));
            });
        }
    }
}

/// A random number, for the message ids of changes.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}
