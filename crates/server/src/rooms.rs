//! Rooms in memory: loaded from the store on first use (on a blocking thread, never on the
//! async workers), unloaded when nobody has used them for a while and everything they queued
//! has been stored.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tandem_protocol::{Broadcast, Logged, Reply, Room, ServerMessage};
use tandem_store::records::{ChangeRecord, Encoded, SnapshotRecord, VersionRecord};
use tandem_transport::{ConnectionId, Handle};

use crate::{
    App,
    outbox::{Item, Permit},
    records,
};

/// How many revisions pass between snapshots. Each replaces the document's snapshot (a
/// restart starts from it) and leaves a checkpoint of its text (the text of any revision is
/// rebuilt from the nearest checkpoint before it, never by replaying from the start).
const SNAPSHOT_EVERY: u64 = 1_000;

/// A room and its bookkeeping, behind one lock.
pub(crate) struct Slot {
    pub(crate) room: Room,
    /// The number of the last outbox item this room queued.
    pub(crate) last_item: u64,
    /// The revision of the last snapshot queued.
    snapshot_at: u64,
    /// Since when the room has had no client.
    empty_since: Option<Duration>,
    /// Set when the slot has been taken out of the map; whoever finds it so must look again.
    unloaded: bool,
    /// In a cluster: the stream sequence of the last message of the document's log applied
    /// here, and the lock that lets one change of this node's at a time be appended.
    pub(crate) position: u64,
    pub(crate) appending: Arc<tokio::sync::Mutex<()>>,
    /// In a cluster: a read of the log is on its way for messages the follower passed by.
    pub(crate) catching_up: bool,
    /// In a cluster: when each client here joined (Unix milliseconds), so that news of a
    /// join elsewhere older than it does not close it.
    pub(crate) joined_at: std::collections::HashMap<String, u64>,
    /// The allowance of edits made at revisions older than the history in memory.
    pub(crate) old_edits: crate::limits::OldEdits,
}

/// Why a document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(transparent)]
    Store(#[from] tandem_store::Error),
    #[error("document {doc}: the snapshot's structure is not base64")]
    Structure { doc: String },
    #[error("document {doc} cannot be rebuilt")]
    Restore {
        doc: String,
        #[source]
        source: tandem_protocol::Error,
    },
    #[error("loading document {doc} stopped: {source}")]
    Interrupted {
        doc: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

pub(crate) fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    /// The slot of `doc`, loading it from the store on a blocking thread if it is not in
    /// memory. The slot may be unloaded again before it is locked: see [`App::with_room`].
    async fn slot(self: &Arc<Self>, doc: &str) -> Result<Arc<Mutex<Slot>>, LoadError> {
        if let Some(slot) = self.rooms.get(doc) {
            return Ok(Arc::clone(slot.value()));
        }
        let (app, id) = (Arc::clone(self), doc.to_owned());
        let loaded = tokio::task::spawn_blocking(move || app.load(&id))
            .await
            .map_err(|source| LoadError::Interrupted { doc: doc.to_owned(), source })??;
        let loaded = Arc::new(Mutex::new(loaded));
        let slot = Arc::clone(self.rooms.entry(doc.to_owned()).or_insert(loaded).value());
        if self.cluster.is_some() {
            // What was appended between reading the log and the room being here, the follower
            // passed by (it follows loaded documents only): read it now, before anyone joins.
            self.caught_up(doc).await;
            // Ask the other nodes who is in it there.
            self.hello(doc);
        }
        Ok(slot)
    }

    /// Runs `f` on the room of `doc`, loading it first if it is not in memory.
    pub(crate) async fn with_room<T>(
        self: &Arc<Self>,
        doc: &str,
        f: impl FnOnce(&mut Slot) -> T,
    ) -> Result<T, LoadError> {
        let mut f = Some(f);
        loop {
            let slot = self.slot(doc).await?;
            let mut guard = lock(&slot);
            if !guard.unloaded
                && let Some(f) = f.take()
            {
                return Ok(f(&mut guard));
            }
        }
    }

    /// Runs `f` on the room of `doc` if it is in memory: a room with a client in it always is.
    pub(crate) fn with_loaded<T>(&self, doc: &str, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let slot = Arc::clone(self.rooms.get(doc)?.value());
        let mut guard = lock(&slot);
        (!guard.unloaded).then(|| f(&mut guard))
    }

    /// Reads `doc` from the store and rebuilds its room: blocking work.
    fn load(&self, doc: &str) -> Result<Slot, LoadError> {
        // The changes just before the snapshot refill the history in memory.
        let stored = self.store.load(doc, self.config.limits.max_history as u64)?;
        let snapshot = match &stored.snapshot {
            Some(record) => {
                let record = SnapshotRecord::decode(doc, record.revision, &record.bytes)?;
                let snapshot = records::snapshot(record);
                Some(snapshot.ok_or_else(|| LoadError::Structure { doc: doc.to_owned() })?)
            }
            None => None,
        };
        let log: Vec<Logged> = stored
            .log
            .iter()
            .map(|record| {
                ChangeRecord::decode(doc, record.revision, &record.bytes).map(records::logged)
            })
            .collect::<Result<_, _>>()?;
        let snapshot_at = snapshot.as_ref().map_or(0, |snapshot| snapshot.revision);
        let (limits, idle) = (self.config.limits.clone(), self.config.idle_timeout);
        let room = Room::restore(doc, limits, idle, snapshot, log)
            .map_err(|source| LoadError::Restore { doc: doc.to_owned(), source })?;
        if room.revision() > 0 {
            tracing::info!(%doc, revision = room.revision(), "loaded");
        }
        Ok(Slot {
            room,
            last_item: 0,
            snapshot_at,
            empty_since: Some(self.now()),
            unloaded: false,
            position: stored.position,
            appending: Arc::default(),
            catching_up: false,
            joined_at: std::collections::HashMap::new(),
            old_edits: crate::limits::OldEdits::new(),
        })
    }

    /// Queues a reply: stored first, then sent to the sender and to the others in the room now.
    pub(crate) fn dispatch(&self, slot: &mut Slot, client: &str, reply: Reply) {
        self.dispatch_frame(slot, client, reply, None);
    }

    /// Queues the reply to a frame, holding the frame's room in the outbox until it is sent.
    pub(crate) fn dispatch_frame(
        &self,
        slot: &mut Slot,
        client: &str,
        reply: Reply,
        permit: Option<Permit>,
    ) {
        let mut reply = reply;
        if client != ":remote"
            && let Some(cluster) = &self.cluster
        {
            // In a cluster, this node's presence changes go to the other nodes too; but a
            // client that left here for another node is not gone: the others keep it, and
            // the clients here see it as it is there.
            let doc = slot.room.id().to_owned();
            let moved = |message: &ServerMessage| match message {
                ServerMessage::Leave { client_id } => cluster.remote_user(&doc, client_id),
                _ => None,
            };
            let shared: Vec<ServerMessage> =
                reply.to_others.iter().filter(|m| moved(m).is_none()).cloned().collect();
            self.share_presence(&doc, &shared);
            for message in &mut reply.to_others {
                if let Some(user) = moved(message) {
                    *message = ServerMessage::Presence(user);
                }
            }
        }
        let sender = self.handles_of(slot, client);
        let others = self.handles(slot, client);
        let mut sends = Vec::with_capacity(reply.to_sender.len() + reply.to_others.len());
        sends.extend(reply.to_sender.into_iter().map(|message| (sender.clone(), message)));
        sends.extend(reply.to_others.into_iter().map(|message| (others.clone(), message)));
        self.queue(slot, reply.logged, sends, permit);
    }

    /// The connection of `client`, if it is in the room, as a list of recipients.
    pub(crate) fn handles_of(&self, slot: &Slot, client: &str) -> Vec<Handle> {
        slot.room.connection(client).and_then(|id| self.handle(id)).into_iter().collect()
    }

    fn handle(&self, connection: u64) -> Option<Handle> {
        self.pool.handle(ConnectionId(connection))
    }

    /// The connections of everyone in the room but `except`, as they are now: a message queued
    /// for them never reaches a later connection that takes the same client id.
    fn handles(&self, slot: &Slot, except: &str) -> Vec<Handle> {
        let connections = slot.room.connections_except(except);
        connections.into_iter().filter_map(|id| self.handle(id)).collect()
    }

    /// Queues idle announcements.
    pub(crate) fn announce(&self, slot: &mut Slot, broadcasts: Vec<Broadcast>) {
        let messages: Vec<ServerMessage> = broadcasts.iter().map(|b| b.message.clone()).collect();
        self.share_presence(slot.room.id(), &messages);
        let sends = broadcasts
            .into_iter()
            .map(|Broadcast { except, message }| (self.handles(slot, &except), message))
            .collect();
        self.queue(slot, Vec::new(), sends, None);
    }

    fn queue(
        &self,
        slot: &mut Slot,
        logged: Vec<Logged>,
        sends: Vec<(Vec<Handle>, ServerMessage)>,
        permit: Option<Permit>,
    ) {
        self.queue_item(slot, logged, Vec::new(), sends, permit);
    }

    /// Queues what a room has to store (changes, versions) and then send; returns the item's
    /// number (see [`crate::outbox::Outbox::stored`]).
    pub(crate) fn queue_item(
        &self,
        slot: &mut Slot,
        logged: Vec<Logged>,
        versions: Vec<VersionRecord>,
        sends: Vec<(Vec<Handle>, ServerMessage)>,
        permit: Option<Permit>,
    ) -> u64 {
        if logged.is_empty() && versions.is_empty() && sends.is_empty() {
            return slot.last_item;
        }
        let revision = slot.room.revision();
        let snapshot = (revision >= slot.snapshot_at + SNAPSHOT_EVERY).then(|| {
            slot.snapshot_at = revision;
            (slot.room.take_snapshot(), slot.position)
        });
        // In a cluster the changes are in the stream already: the outbox only sends.
        let logged = if self.cluster.is_some() { Vec::new() } else { logged };
        slot.empty_since =
            if slot.room.clients() == 0 { slot.empty_since.or(Some(self.now())) } else { None };
        let doc = slot.room.id().to_owned();
        let at = crate::auth::unix_now_ms();
        let item = Item { doc, logged, at, snapshot, versions, sends, permit };
        slot.last_item = self.outbox.push(item);
        slot.last_item
    }

    /// Takes `slot`'s room out of memory at once and closes its clients' connections (1008),
    /// for a room that can no longer be trusted (in a cluster, one that diverged from the
    /// log): its clients come back, resume, and find it loaded afresh from the store.
    pub(crate) fn evict(&self, slot: &mut Slot, reason: &'static str) {
        slot.unloaded = true;
        self.rooms.remove(slot.room.id());
        for connection in slot.room.connections_except("") {
            if let Some(handle) = self.handle(connection) {
                handle.close_for_policy(reason);
            }
        }
    }

    /// Takes out of memory the rooms nobody has used for `unload_after` whose queued items
    /// have all been stored; they load again from the store when next needed.
    pub(crate) fn unload_idle(&self) {
        self.unload(self.config.unload_after, usize::MAX);
    }

    /// Whether `doc` is loaded or may be: below `max_documents`, or once `make_room` has made
    /// room. Checked before loading; concurrent first requests for different documents may
    /// take it a few past the limit, never without bound.
    pub(crate) fn may_load(&self, doc: &str) -> bool {
        self.rooms.contains_key(doc)
            || self.rooms.len() < self.config.max_documents
            || self.make_room()
    }

    /// Makes room for one more document when `max_documents` are loaded: unloads the room
    /// empty for longest whose queued items are all stored. False if every room has clients
    /// (or items still to store).
    pub(crate) fn make_room(&self) -> bool {
        self.unload(Duration::ZERO, 1) > 0
    }

    /// Unloads up to `most` rooms empty for at least `after` whose queued items are stored,
    /// those empty longest first; returns how many.
    fn unload(&self, after: Duration, most: usize) -> usize {
        let now = self.now();
        let slots: Vec<(String, Arc<Mutex<Slot>>)> = self
            .rooms
            .iter()
            .map(|entry| (entry.key().clone(), Arc::clone(entry.value())))
            .collect();
        let mut empty: Vec<(Duration, String, Arc<Mutex<Slot>>)> = slots
            .into_iter()
            .filter_map(|(doc, slot)| {
                let since = lock(&slot).empty_since?;
                Some((since, doc, slot))
            })
            .collect();
        empty.sort_by_key(|(since, _, _)| *since);
        let mut unloaded = 0;
        for (_, doc, slot) in empty {
            if unloaded >= most {
                break;
            }
            let mut guard = lock(&slot);
            let idle = guard.room.clients() == 0
                && guard.empty_since.is_some_and(|since| now.saturating_sub(since) >= after);
            if idle && guard.last_item <= self.outbox.done() && !guard.unloaded {
                guard.unloaded = true;
                self.rooms.remove_if(&doc, |_, current| Arc::ptr_eq(current, &slot));
                tracing::info!(%doc, "unloaded");
                unloaded += 1;
            }
        }
        unloaded
    }
}
