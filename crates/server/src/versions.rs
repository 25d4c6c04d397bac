//! Named versions: saving the revision a document is at under a label, listing them, and
//! restoring one, which applies, as one new change everyone sees, what turns the text now
//! into that version's text. Over HTTP (`api.rs`) and the WebSocket alike.

use std::sync::Arc;

use tandem_protocol::{Reply, RequestId, ServerMessage};
use tandem_store::records::{Encoded, VERSION, VersionRecord};

use crate::{App, auth, cluster::Stored, history, rooms::LoadError};

/// The most named versions one document keeps; saving one more is refused.
pub const MAX_VERSIONS: usize = 1_000;

/// Why a version could not be saved or restored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VersionError {
    #[error("there is already a version named {label}")]
    Exists { label: String },
    #[error("there is no version named {label}")]
    Missing { label: String },
    #[error("the document has {MAX_VERSIONS} versions, the most it keeps")]
    TooMany,
    #[error("the text of revision {revision} is no longer kept")]
    NotKept { revision: u64 },
    #[error("the server stopped before the version was stored")]
    Stopped,
    /// In a cluster: the restore could not be stored now (its asker, if a client, was told).
    #[error("the restore could not be stored now; nothing changed")]
    NotStored,
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("reading the store stopped")]
    Interrupted(#[from] tokio::task::JoinError),
}

/// Who asked: a client of the document over its WebSocket, with its request id, or someone
/// over HTTP.
#[derive(Clone, Debug)]
pub(crate) enum Asker {
    Client { client: String, id: Option<RequestId> },
    Http,
}

impl Asker {
    fn client(&self) -> &str {
        match self {
            Asker::Client { client, .. } => client,
            // Not a client id (those have no `:`), so never a member: every client of the
            // document is one of "the others", and none takes its changes for its own.
            Asker::Http => ":api",
        }
    }
}

impl App {
    /// Saves `label` as the name of the revision `doc` is at (`revision` when the room said
    /// which), once everything up to it is stored; a client asker gets `version`.
    pub(crate) async fn save_version(
        self: &Arc<Self>,
        doc: &str,
        asker: Asker,
        label: &str,
        revision: Option<u64>,
    ) -> Result<VersionRecord, VersionError> {
        // The label is taken for the time of this save, then checked against the store: a
        // second save of it finds it taken here, or, once this one is stored, in the store.
        let Some(_saving) = Saving::take(self, doc, label) else {
            return Err(VersionError::Exists { label: label.to_owned() });
        };
        let (store, id, name) = (Arc::clone(&self.store), doc.to_owned(), label.to_owned());
        let stored = tokio::task::spawn_blocking(move || -> Result<_, history::HistoryError> {
            let versions = store.versions(&id)?;
            Ok((versions.iter().any(|(label, _)| *label == name), versions.len()))
        });
        let (exists, count) = stored.await??;
        if exists {
            return Err(VersionError::Exists { label: label.to_owned() });
        }
        if count >= MAX_VERSIONS {
            return Err(VersionError::TooMany);
        }
        let message = |record: &VersionRecord| match &asker {
            Asker::Client { client, id } => Some((
                client.clone(),
                ServerMessage::Version {
                    id: id.clone(),
                    label: label.to_owned(),
                    revision: record.revision,
                    created_at: auth::rfc3339(record.created_at),
                },
            )),
            Asker::Http => None,
        };
        let cluster = self.cluster.clone();
        let (record, item) = self
            .with_room(doc, |slot| {
                let revision = revision.unwrap_or(slot.room.revision());
                let created_at = auth::unix_now_ms();
                let record =
                    VersionRecord { v: VERSION, label: label.to_owned(), revision, created_at };
                if cluster.is_some() {
                    // Stored below, by compare-and-set, so that only one node's save wins.
                    return (record, None);
                }
                let sends = message(&record)
                    .map(|(client, message)| (self.handles_of(slot, &client), message))
                    .into_iter()
                    .collect();
                // Stored after every change up to `revision`, queued before it.
                let item = self.queue_item(slot, Vec::new(), vec![record.clone()], sends, None);
                (record, Some(item))
            })
            .await?;
        let item = match (item, cluster) {
            (Some(item), _) => item,
            // In a cluster every change up to `revision` is in the log already.
            (None, Some(cluster)) => {
                let bytes = record.encode();
                if !cluster
                    .store
                    .create_version(doc, label, &bytes)
                    .await
                    .map_err(history::HistoryError::from)?
                {
                    return Err(VersionError::Exists { label: label.to_owned() });
                }
                let queued = self.with_room(doc, |slot| {
                    let sends = message(&record)
                        .map(|(client, message)| (self.handles_of(slot, &client), message))
                        .into_iter()
                        .collect();
                    self.queue_item(slot, Vec::new(), Vec::new(), sends, None)
                });
                queued.await?
            }
            (None, None) => return Err(VersionError::Stopped),
        };
        if !self.outbox.stored(item).await {
            return Err(VersionError::Stopped);
        }
        Ok(record)
    }

    /// Restores version `label` of `doc`: the changes that make the text that version's are
    /// applied as one new change, stored, and sent to everyone (a client asker gets them and
    /// then `restored`). Returns the revision after it.
    pub(crate) async fn restore_version(
        self: &Arc<Self>,
        doc: &str,
        asker: Asker,
        label: &str,
    ) -> Result<u64, VersionError> {
        let (store, id, name) = (Arc::clone(&self.store), doc.to_owned(), label.to_owned());
        let read = move || -> Result<_, history::HistoryError> {
            let Some(version) = history::version(&*store, &id, &name)? else {
                return Ok(None);
            };
            let text = history::text_at(&*store, &id, version.revision)?;
            Ok(Some((version, text)))
        };
        let found = tokio::task::spawn_blocking(read).await??;
        let Some((version, text)) = found else {
            return Err(VersionError::Missing { label: label.to_owned() });
        };
        let Some((text, _title)) = text else {
            return Err(VersionError::NotKept { revision: version.revision });
        };
        let id = match &asker {
            Asker::Client { id, .. } => id.clone(),
            Asker::Http => None,
        };
        let client = asker.client();
        if self.cluster.is_some() {
            // Appended to the shared log before it is committed, as any change there.
            self.with_room(doc, |_| ()).await?;
            let plan = |slot: &mut crate::rooms::Slot, _| {
                tandem_protocol::Planned::Plan(slot.room.plan_restore(
                    client,
                    id.clone(),
                    label,
                    &text,
                ))
            };
            // Its last revision, and whether it was found in the log rather than committed
            // here (its asker then heard it as an ordinary change, and is owed `restored`).
            let (revision, from_log) =
                match self.append_change(doc, client, id.clone(), None, plan).await {
                    None => return Err(VersionError::NotStored),
                    Some(Stored::Committed { revision }) => (revision, false),
                    Some(Stored::FromLog { revision }) => (revision, true),
                };
            // Stored in the shared log: done, whether or not the room is still loaded here.
            let item = self.with_loaded(doc, |slot| {
                if from_log {
                    let label = label.to_owned();
                    let restored = ServerMessage::Restored { id: id.clone(), label, revision };
                    self.dispatch(slot, client, Reply::to_sender(restored));
                }
                slot.last_item
            });
            if let Some(item) = item
                && !self.outbox.stored(item).await
            {
                return Err(VersionError::Stopped);
            }
            return Ok(revision);
        }
        let (revision, item) = self
            .with_room(doc, |slot| {
                let reply = slot.room.restore_text(client, id.clone(), label, &text, self.now());
                self.dispatch(slot, client, reply);
                (slot.room.revision(), slot.last_item)
            })
            .await?;
        if !self.outbox.stored(item).await {
            return Err(VersionError::Stopped);
        }
        Ok(revision)
    }
}

/// A label taken for the time of one save (see [`App::save_version`]); dropping it frees it.
struct Saving<'a> {
    app: &'a App,
    key: (String, String),
}

impl<'a> Saving<'a> {
    fn take(app: &'a App, doc: &str, label: &str) -> Option<Saving<'a>> {
        let key = (doc.to_owned(), label.to_owned());
        // Built only once taken: dropping a `Saving` frees its label.
        if !app.saving.insert(key.clone()) {
            return None;
        }
        Some(Saving { app, key })
    }
}

impl Drop for Saving<'_> {
    fn drop(&mut self) {
        self.app.saving.remove(&self.key);
    }
}
