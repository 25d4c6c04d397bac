//! The outbox: every message leaves through here, after the changes before it are durable.
//!
//! Rooms queue [`Item`]s under their lock, so each room's items are in its order. A writer
//! thread takes whatever has queued up, stores all the changes in one transaction (group
//! commit: changes arriving during a commit go into the next), and only then sends the
//! messages. An acknowledgement therefore never leaves before its change is on disk, and a
//! client never hears of a change the store could lose.
//!
//! A commit that fails stops the writer before anything of its batch is sent (fail-stop: no
//! ack for a change that may not be stored), and reports the error through
//! [`Outbox::start`]'s watch, which the server passes on to `main`.
//!
//! The queue is bounded in bytes: a connection takes room for each frame before its room
//! handles it ([`Outbox::reserve`]), and waits, reading nothing more, while the queue is full;
//! the room is given back once the item is stored. Joins, leaves and idle marks
//! queue without waiting (there are as many as connections, not as many as frames).

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
};

use tandem_protocol::{Logged, ServerMessage, TakenSnapshot};
use tandem_store::{
    Batch, Record, Store,
    records::{Encoded, VersionRecord},
};
use tandem_transport::{Handle, Message};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::{metrics::Metrics, records};

/// The error that stopped the writer, once there is one.
pub(crate) type Failure = watch::Receiver<Option<Arc<tandem_store::Error>>>;

/// The most items one commit takes.
const MAX_BATCH: usize = 4096;

/// What one room has to store and then send.
pub(crate) struct Item {
    pub(crate) doc: String,
    /// Changes to append to the document's log, made at `at` (milliseconds since the epoch).
    pub(crate) logged: Vec<Logged>,
    pub(crate) at: u64,
    /// A snapshot to store (with where in the log it is, for a log with positions), which
    /// also leaves a checkpoint of its text.
    pub(crate) snapshot: Option<(TakenSnapshot, u64)>,
    /// Named versions to store.
    pub(crate) versions: Vec<VersionRecord>,
    /// Messages and the connections that get them, fixed when the item was queued.
    pub(crate) sends: Vec<(Vec<Handle>, ServerMessage)>,
    /// The room in the queue the frame behind this item took, given back once it is stored.
    pub(crate) permit: Option<Permit>,
}

/// Room in the outbox for one frame's item.
pub(crate) struct Permit {
    _held: OwnedSemaphorePermit,
}

/// The sending side; cheap to share.
pub(crate) struct Outbox {
    /// The channel and the number of items queued so far, together: an item's number and its
    /// place in the channel are taken in one step, so `done` counts items in number order.
    items: Mutex<(mpsc::UnboundedSender<Item>, u64)>,
    done: Arc<AtomicU64>,
    /// The same count as `done`, to wait on.
    done_watch: watch::Receiver<u64>,
    /// Bytes of frames whose items have not been sent yet may take at most this many permits.
    room: Arc<Semaphore>,
    capacity: usize,
}

impl Outbox {
    /// Starts the writer thread, with a queue of `capacity` bytes of frames. The watch turns
    /// to the error that stopped the writer, if a commit fails.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Outbox, JoinHandle<()>, Failure)> {
        let (items, receiver) = mpsc::unbounded_channel();
        let done = Arc::new(AtomicU64::new(0));
        let (failed, failure) = watch::channel(None);
        let (done_sender, done_watch) = watch::channel(0);
        let writer = {
            let done = Arc::clone(&done);
            std::thread::Builder::new().name("tandem-writer".into()).spawn(move || {
                let done = (&*done, &done_sender);
                if let Err(error) = write(store.as_ref(), receiver, done, &metrics) {
                    tracing::error!(%error, "storing changes failed; nothing of the failed batch is acknowledged");
                    failed.send_replace(Some(Arc::new(error)));
                }
            })?
        };
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        let room = Arc::new(Semaphore::new(capacity));
        let outbox = Outbox { items: Mutex::new((items, 0)), done, done_watch, room, capacity };
        Ok((outbox, writer, failure))
    }

    /// Waits for room in the queue for the item of a frame of `bytes`: a connection calls
    /// this before its room handles the frame, so that a full queue holds it back.
    pub(crate) async fn reserve(&self, bytes: usize) -> Permit {
        let permits = bytes.clamp(1, self.capacity) as u32;
        let permit = Arc::clone(&self.room).acquire_many_owned(permits).await;
        Permit { _held: permit.expect("the outbox's semaphore is never closed") }
    }

    /// Bytes of frames whose items wait to be stored and sent.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.capacity - self.room.available_permits()
    }

    /// Queues an item; returns its number, which [`Outbox::done`] reaches once it is sent.
    pub(crate) fn push(&self, item: Item) -> u64 {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        items.1 += 1;
        if items.0.send(item).is_err() {
            tracing::warn!("the writer has stopped; a message was dropped");
        }
        items.1
    }

    /// How many items have been stored and sent.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until item `number` has been stored and sent; false if the writer stopped first.
    pub(crate) async fn stored(&self, number: u64) -> bool {
        let mut done = self.done_watch.clone();
        done.wait_for(|done| *done >= number).await.is_ok()
    }
}

/// Stores and sends items until the last sender is gone, or a commit fails.
fn write(
    store: &dyn Store,
    mut items: mpsc::UnboundedReceiver<Item>,
    (done, done_watch): (&AtomicU64, &watch::Sender<u64>),
    metrics: &Metrics,
) -> Result<(), tandem_store::Error> {
    while let Some(first) = items.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match items.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let writes = to_batch(&batch);
        let started = tokio::time::Instant::now();
        if !writes.is_empty() {
            // Fail-stop: nothing of this batch is sent; a restart recovers the store.
            store.commit(&writes)?;
            metrics.committed(started.elapsed(), batch.len());
        }
        let count = batch.len() as u64;
        for item in batch {
            // Stored: the frame's room in the queue is free again (before anyone hears of it,
            // so that a client that has its ack sees the queue without it).
            drop(item.permit);
            for (recipients, message) in &item.sends {
                metrics.sent(message, recipients.len());
                let frame = Message::text(message.to_json());
                for connection in recipients {
                    connection.send(frame.clone());
                }
            }
        }
        let now = done.fetch_add(count, Ordering::SeqCst) + count;
        done_watch.send_replace(now);
    }
    Ok(())
}

fn to_batch(items: &[Item]) -> Batch {
    let mut batch = Batch::default();
    for item in items {
        for entry in &item.logged {
            let bytes = records::change_record(entry, item.at).encode();
            batch.appends.push((item.doc.clone(), Record { revision: entry.revision, bytes }));
        }
        if let Some((taken, position)) = &item.snapshot {
            // Encoded here, on the writer's thread, not under the room's lock.
            let snapshot = &taken.encode();
            let revision = snapshot.revision;
            let mut record = records::snapshot_record(snapshot);
            record.position = (*position > 0).then_some(*position);
            let bytes = record.encode();
            batch.snapshots.push((item.doc.clone(), Record { revision, bytes }));
            let bytes = records::checkpoint_record(snapshot).encode();
            batch.checkpoints.push((item.doc.clone(), Record { revision, bytes }));
        }
        for version in &item.versions {
            let entry = (item.doc.clone(), version.label.clone(), version.encode());
            batch.versions.push(entry);
        }
    }
    batch
}
