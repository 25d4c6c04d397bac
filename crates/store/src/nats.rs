//! The cluster's store: documents in NATS JetStream.
//!
//! One stream (`TANDEM`) holds every document's log: one subject per document
//! (`tandem.doc.{doc}`, a `.` of the id written `=`), one message per committed change, which
//! holds the change's records (a change cut into pieces is several revisions, stored together).
//! A message is appended only if the subject's last message is the one the appender had seen
//! ([`NatsStore::append`], JetStream's expected last subject sequence): that compare-and-set
//! is what gives each document one sequence of revisions however many servers write to it.
//! A key-value bucket (`TANDEM_STATE`) holds each document's snapshot, its checkpoints (one per
//! thousand revisions, by the thousand they fall in) and its versions.
//!
//! The [`Store`] methods block on the async client (call them on a blocking thread, as the
//! server does); the log is never written through [`Store::commit`].

use std::{collections::BTreeMap, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{
        self, Context,
        context::PublishErrorKind,
        kv,
        message::PublishMessage,
        stream::{self, DirectGetErrorKind, StorageType},
    },
};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{
    Batch, Error, Page, Record, Store, Stored,
    records::{ChangeRecord, Encoded, SnapshotRecord},
};

/// The stream of every document's log.
const STREAM: &str = "TANDEM";
/// The bucket of snapshots, checkpoints and versions.
const BUCKET: &str = "TANDEM_STATE";
/// How long a message id is remembered to drop a publish repeated after a timeout.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The header naming the server that appended a message.
const NODE_HEADER: &str = "Tandem-Node";

/// How to reach NATS and how to keep documents there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs, comma-separated (`nats://host:4222,nats://other:4222`).
    pub urls: String,
    /// A credentials file, if the servers ask for one.
    pub credentials: Option<std::path::PathBuf>,
    /// Copies JetStream keeps of every message (1 for one server, 3 in production).
    pub replicas: usize,
}

/// One message of a document's log: its stream sequence, its records, and the id and server
/// it was appended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub records: Vec<ChangeRecord>,
    pub message_id: Option<String>,
    pub node: Option<String>,
}

/// A message of some document's log, as [`NatsStore::follow`] delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    pub doc: String,
    pub seq: u64,
    pub records: Vec<ChangeRecord>,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The subject has messages the appender had not seen: read them, and try again.
    #[error("the document's log has moved on")]
    Conflict,
    /// A message with this id is stored already (an earlier try of this append whose answer
    /// was lost): nothing was appended now; read the log to find it.
    #[error("a message with this id is in the log already")]
    Repeated,
    #[error(transparent)]
    Store(#[from] Error),
}

/// Documents in NATS JetStream (see the module docs).
#[derive(Clone, Debug)]
pub struct NatsStore {
    runtime: tokio::runtime::Handle,
    client: async_nats::Client,
    jetstream: Context,
    stream: stream::Stream,
    bucket: kv::Store,
}

fn nats<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl Fn(E) -> Error {
    move |source| Error::Nats { operation, source: Box::new(source) }
}

/// A document id as a subject token or key: `.` (a separator there) written `=`.
fn token(doc: &str) -> String {
    doc.replace('.', "=")
}

fn subject(doc: &str) -> String {
    format!("tandem.doc.{}", token(doc))
}

impl NatsStore {
    /// Connects, and creates the stream and the bucket if they are missing.
    pub async fn connect(config: &NatsConfig) -> Result<NatsStore, Error> {
        let mut options = async_nats::ConnectOptions::new()
            .name("tandem")
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect();
        if let Some(path) = &config.credentials {
            options =
                options.credentials_file(path).await.map_err(nats("reading the credentials"))?;
        }
        let urls: Vec<&str> =
            config.urls.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
        let client = options.connect(urls.as_slice()).await.map_err(nats("connecting"))?;
        let jetstream = jetstream::new(client.clone());
        let stream = jetstream
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["tandem.doc.>".into()],
                storage: StorageType::File,
                num_replicas: config.replicas.max(1),
                duplicate_window: DUPLICATE_WINDOW,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(nats("creating the stream"))?;
        let bucket = jetstream
            .create_key_value(kv::Config {
                bucket: BUCKET.into(),
                storage: StorageType::File,
                num_replicas: config.replicas.max(1),
                history: 1,
                ..Default::default()
            })
            .await
            .map_err(nats("creating the bucket"))?;
        Ok(NatsStore {
            runtime: tokio::runtime::Handle::current(),
            client,
            jetstream,
            stream,
            bucket,
        })
    }

    /// The connection, for what else travels over NATS (presence).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Appends `records` to `doc`'s log if its last message is still the one at stream
    /// sequence `expected` (0: none), and returns the new message's sequence once JetStream
    /// has stored it on its replicas. `message_id` makes a repeat after a timeout harmless:
    /// when the first try was stored, the repeat finds the log moved on, and the caller finds
    /// its own message there ([`NatsStore::next`]).
    pub async fn append(
        &self,
        doc: &str,
        records: &[ChangeRecord],
        expected: u64,
        message_id: &str,
        node: &str,
    ) -> Result<u64, AppendError> {
        let payload =
            serde_json::to_vec(records).expect("records serialize: every map key is a string");
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, node);
        let message = PublishMessage::build()
            .payload(Bytes::from(payload))
            .headers(headers)
            .message_id(message_id)
            .expected_last_subject_sequence(expected);
        let sent = self.jetstream.send_publish(subject(doc), message).await;
        let acked = match sent {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match acked {
            Ok(ack) if ack.duplicate => Err(AppendError::Repeated),
            Ok(ack) => Ok(ack.sequence),
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                Err(AppendError::Conflict)
            }
            Err(error) => {
                Err(Error::Nats { operation: "appending", source: Box::new(error) }.into())
            }
        }
    }

    /// The first message of `doc`'s log after stream sequence `after`, if there is one.
    pub async fn next(&self, doc: &str, after: u64) -> Result<Option<Entry>, Error> {
        let found = self.stream.direct_get_next_for_subject(subject(doc), Some(after + 1)).await;
        let message = match found {
            Ok(message) => message,
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(nats("reading the log")(error)),
        };
        let records: Vec<ChangeRecord> = serde_json::from_slice(&message.payload)
            .map_err(|source| Error::Decode { doc: doc.to_owned(), revision: 0, source })?;
        let header = |name: &str| message.headers.get(name).map(|value| value.as_str().to_owned());
        Ok(Some(Entry {
            seq: message.sequence,
            records,
            message_id: header("Nats-Msg-Id"),
            node: header(NODE_HEADER),
        }))
    }

    /// Every document's new messages, from now on, in stream order.
    pub async fn follow(
        &self,
    ) -> Result<impl futures_util::Stream<Item = Result<Followed, Error>> + Send + use<>, Error>
    {
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: "tandem.doc.>".into(),
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(nats("following the log"))?;
        let messages = consumer.messages().await.map_err(nats("following the log"))?;
        Ok(messages.map(|message| {
            let message = message.map_err(nats("following the log"))?;
            let seq = message
                .info()
                .map_err(|source| Error::Nats { operation: "following the log", source })?
                .stream_sequence;
            let doc = message
                .subject
                .as_str()
                .strip_prefix("tandem.doc.")
                .unwrap_or_default()
                .replace('=', ".");
            let records: Vec<ChangeRecord> = serde_json::from_slice(&message.payload)
                .map_err(|source| Error::Decode { doc: doc.clone(), revision: 0, source })?;
            Ok(Followed { doc, seq, records })
        }))
    }

    /// Every message of `doc`'s log after stream sequence `after`, in order.
    pub async fn tail(&self, doc: &str, mut after: u64) -> Result<Vec<Entry>, Error> {
        let mut entries = Vec::new();
        while let Some(entry) = self.next(doc, after).await? {
            after = entry.seq;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The stream sequence of `doc`'s last message (0: none).
    async fn last_seq(&self, doc: &str) -> Result<u64, Error> {
        match self.stream.direct_get_last_for_subject(subject(doc)).await {
            Ok(message) => Ok(message.sequence),
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => Ok(0),
            Err(error) => Err(nats("reading the log")(error)),
        }
    }

    /// A stream sequence after which the next message of `doc` is the first holding a
    /// revision above `after`: a binary search over the stream (a subject's messages are in
    /// revision order), a read per step.
    async fn seek(&self, doc: &str, after: u64) -> Result<u64, Error> {
        // The answer is in low..=high: nothing after `high` comes before the message wanted,
        // and the messages after `low` up to it hold only revisions up to `after`.
        let (mut low, mut high) = (0, self.last_seq(doc).await?);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.next(doc, middle).await? {
                Some(entry) if entry.records.last().is_none_or(|last| last.revision <= after) => {
                    low = entry.seq;
                }
                _ => high = middle,
            }
        }
        Ok(low)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        self.bucket.get(key).await.map_err(nats("reading the bucket"))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.bucket.put(key, Bytes::from(value)).await.map_err(nats("writing the bucket"))?;
        Ok(())
    }

    /// Adds version `label` (its record) to `doc`'s versions, by compare-and-set on the
    /// bucket: true if it was added (or found there already, as a write whose answer was lost
    /// leaves it), false if the label was taken already by another record (on this node or
    /// another), which is left as it is.
    pub async fn create_version(
        &self,
        doc: &str,
        label: &str,
        record: &[u8],
    ) -> Result<bool, Error> {
        let key = format!("ver.{}", token(doc));
        let value: serde_json::Value = serde_json::from_slice(record)
            .map_err(|source| Error::Decode { doc: doc.to_owned(), revision: 0, source })?;
        // Each failed write is another writer's list coming first (or the bucket failing):
        // read again, a bounded number of times.
        let mut last_failure: Option<Box<dyn std::error::Error + Send + Sync>> = None;
        // Whether a write failed in a way that leaves it unknown whether it was stored.
        let mut maybe_written = false;
        for _ in 0..32 {
            let entry = self.bucket.entry(&key).await.map_err(nats("reading the bucket"))?;
            let (mut versions, revision) =
                match &entry {
                    Some(entry) if !entry.value.is_empty() => {
                        let versions: BTreeMap<String, serde_json::Value> =
                            serde_json::from_slice(&entry.value).map_err(|source| {
                                Error::Decode { doc: doc.to_owned(), revision: 0, source }
                            })?;
                        (versions, Some(entry.revision))
                    }
                    Some(entry) => (BTreeMap::new(), Some(entry.revision)),
                    None => (BTreeMap::new(), None),
                };
            // After a write of unknown outcome, the very record there is that write having
            // gone through (its answer lost on the way).
            if let Some(saved) = versions.get(label) {
                return Ok(maybe_written && *saved == value);
            }
            versions.insert(label.to_owned(), value.clone());
            let bytes = Bytes::from(serde_json::to_vec(&versions).expect("json values serialize"));
            // An update from revision 0 creates the key only if it is missing; its failure says
            // whether the write may have been stored all the same (`create` would not: after a
            // lost answer it finds the key and says it existed).
            let written =
                self.bucket.update(&key, bytes, revision.unwrap_or(0)).await.map_err(|error| {
                    use kv::UpdateErrorKind::{InvalidKey, WrongLastRevision};
                    (!matches!(error.kind(), WrongLastRevision | InvalidKey), error)
                });
            match written {
                Ok(_) => return Ok(true),
                Err((unsure, error)) => {
                    maybe_written |= unsure;
                    last_failure = Some(Box::new(error));
                }
            }
        }
        let source = last_failure.unwrap_or_else(|| "no write was tried".into());
        Err(Error::Nats { operation: "writing a version", source })
    }

    async fn versions_map(&self, doc: &str) -> Result<BTreeMap<String, serde_json::Value>, Error> {
        match self.get(&format!("ver.{}", token(doc))).await? {
            Some(bytes) if !bytes.is_empty() => serde_json::from_slice(&bytes)
                .map_err(|source| Error::Decode { doc: doc.to_owned(), revision: 0, source }),
            _ => Ok(BTreeMap::new()),
        }
    }

    fn records(entries: Vec<Entry>) -> Vec<Record> {
        entries
            .into_iter()
            .flat_map(|entry| entry.records)
            .map(|record| Record { revision: record.revision, bytes: record.encode() })
            .collect()
    }

    async fn load_async(&self, doc: &str) -> Result<Stored, Error> {
        let snapshot = match self.get(&format!("snap.{}", token(doc))).await? {
            Some(bytes) => {
                let record = SnapshotRecord::decode(doc, 0, &bytes)?;
                Some((record.revision, record.position.unwrap_or(0), bytes.to_vec()))
            }
            None => None,
        };
        let from = snapshot.as_ref().map_or(0, |(_, position, _)| *position);
        let entries = self.tail(doc, from).await?;
        let position = entries.last().map_or(from, |entry| entry.seq);
        let log = NatsStore::records(entries);
        let snapshot = snapshot.map(|(revision, _, bytes)| Record { revision, bytes });
        Ok(Stored { snapshot, log, position })
    }

    async fn log_async(
        &self,
        doc: &str,
        after: u64,
        up_to: u64,
        page: Page,
    ) -> Result<Vec<Record>, Error> {
        let mut seq = self.seek(doc, after).await?;
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut full = false;
        while !full {
            let Some(entry) = self.next(doc, seq).await? else { break };
            seq = entry.seq;
            let mut past_end = false;
            for record in entry.records {
                if record.revision > up_to {
                    past_end = true;
                    break;
                }
                if record.revision > after {
                    let encoded = record.encode();
                    bytes = bytes.saturating_add(encoded.len());
                    if records.len() >= page.count || (!records.is_empty() && bytes > page.bytes) {
                        full = true;
                        break;
                    }
                    records.push(Record { revision: record.revision, bytes: encoded });
                }
            }
            if past_end {
                break;
            }
        }
        Ok(records)
    }
}

impl Store for NatsStore {
    fn load(&self, doc: &str, _behind: u64) -> Result<Stored, Error> {
        // The changes before the snapshot are read when a client needs them, not to refill
        // the history in memory.
        self.runtime.block_on(self.load_async(doc))
    }

    fn log(&self, doc: &str, after: u64, up_to: u64, page: Page) -> Result<Vec<Record>, Error> {
        if after >= up_to || page.count == 0 {
            return Ok(Vec::new());
        }
        self.runtime.block_on(self.log_async(doc, after, up_to, page))
    }

    fn last(&self, doc: &str) -> Result<Option<Record>, Error> {
        self.runtime.block_on(async {
            let seq = self.last_seq(doc).await?;
            if seq == 0 {
                return Ok(None);
            }
            let entry = self.next(doc, seq - 1).await?;
            Ok(entry.and_then(|entry| NatsStore::records(vec![entry]).pop()))
        })
    }

    fn checkpoint(&self, doc: &str, revision: u64) -> Result<Option<Record>, Error> {
        self.runtime.block_on(async {
            // One checkpoint per thousand revisions, under the thousand its revision is in.
            for thousand in (0..=revision / 1_000).rev() {
                let Some(bytes) = self.get(&format!("cp.{}.{thousand}", token(doc))).await? else {
                    continue;
                };
                let record = SnapshotRecord::decode(doc, 0, &bytes)?;
                if record.revision <= revision {
                    return Ok(Some(Record { revision: record.revision, bytes: bytes.to_vec() }));
                }
            }
            Ok(None)
        })
    }

    fn versions(&self, doc: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let versions = self.runtime.block_on(self.versions_map(doc))?;
        Ok(versions
            .into_iter()
            .map(|(label, value)| {
                (label, serde_json::to_vec(&value).expect("json values serialize"))
            })
            .collect())
    }

    fn version(&self, doc: &str, label: &str) -> Result<Option<Vec<u8>>, Error> {
        let versions = self.runtime.block_on(self.versions_map(doc))?;
        Ok(versions
            .get(label)
            .map(|value| serde_json::to_vec(value).expect("json values serialize")))
    }

    fn commit(&self, batch: &Batch) -> Result<(), Error> {
        if !batch.appends.is_empty() {
            return Err(Error::Unsupported { what: "log appends in a batch" });
        }
        self.runtime.block_on(async {
            for (doc, record) in &batch.snapshots {
                self.put(&format!("snap.{}", token(doc)), record.bytes.clone()).await?;
            }
            for (doc, record) in &batch.checkpoints {
                let thousand = record.revision / 1_000;
                self.put(&format!("cp.{}.{thousand}", token(doc)), record.bytes.clone()).await?;
            }
            for (doc, label, bytes) in &batch.versions {
                self.create_version(doc, label, bytes).await?;
            }
            Ok(())
        })
    }
}
