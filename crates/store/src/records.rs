//! The records the store keeps, in a format of their own: versioned structs, encoded as JSON,
//! that change only on purpose. The server converts its changes and snapshots to these at the
//! edge, so a change to the wire protocol never changes what is on disk.
//!
//! Every record carries `"v"`, its format's version; `test_data/` has records of each version,
//! which every later version must still read.
//! - Version 0 (no `"v"`): records written before versions existed; a snapshot's last requests
//!   hold their whole ack.
//! - Version 1: last requests hold their revision and value.
//! - Version 2: a change holds the text's next id after it (`next_seq`) and when it was made
//!   (`at`); a snapshot holds the text's structure (ids and deletions, for placing old edits)
//!   and the revision its history starts from; named versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The version records are written in.
pub const VERSION: u32 = 2;

/// A client's request id, as it came: a safe integer or a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestIdRecord {
    Number(i64),
    String(String),
}

/// What one change did (positions against the revision before it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    Insert {
        index: usize,
        text: String,
    },
    Delete {
        index: usize,
        length: usize,
    },
    SetTitle {
        title: String,
    },
    /// `value` is the counter's value after the change.
    IncrementCounter {
        name: String,
        amount: i64,
        value: i64,
    },
}

/// One change in a document's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    #[serde(default)]
    pub v: u32,
    pub revision: u64,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestIdRecord>,
    /// A later piece of the same request as the change before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// The sequence number of the text's next character id after this change (0 before
    /// version 2, when it was not kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_seq: u64,
    /// When the change was made, in milliseconds since the Unix epoch (from version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    #[serde(flatten)]
    pub change: ChangeKind,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A client's last request that changed something, as a snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastRequestRecord {
    pub id: RequestIdRecord,
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

impl<'de> Deserialize<'de> for LastRequestRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Version 0 kept the whole ack message; version 1 its revision and value.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Any {
            V1 {
                id: RequestIdRecord,
                revision: u64,
                #[serde(default)]
                value: Option<i64>,
            },
            V0 {
                id: RequestIdRecord,
                ack: AckV0,
            },
        }
        #[derive(Deserialize)]
        struct AckV0 {
            revision: u64,
            #[serde(default)]
            value: Option<i64>,
        }
        Ok(match Any::deserialize(deserializer)? {
            Any::V1 { id, revision, value } => LastRequestRecord { id, revision, value },
            Any::V0 { id, ack } => {
                LastRequestRecord { id, revision: ack.revision, value: ack.value }
            }
        })
    }
}

/// A document's state at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    #[serde(default)]
    pub v: u32,
    pub revision: u64,
    pub text: String,
    pub title: String,
    pub counters: BTreeMap<String, i64>,
    pub requests: BTreeMap<String, LastRequestRecord>,
    /// The text's structure (character ids and deletions), base64 of the protocol's encoding
    /// (from version 2; a checkpoint kept for its text has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<String>,
    /// The first revision the text's history reaches back to: 0, or for a document written
    /// before version 2, the revision of its first snapshot of version 2 or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_from: Option<u64>,
    /// Where in the log the snapshot is, for a log that has positions of its own (the
    /// cluster's stream sequence of the last message it covers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

/// A named version of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    #[serde(default)]
    pub v: u32,
    pub label: String,
    pub revision: u64,
    /// When it was saved, in milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A record the store can encode and decode.
pub trait Encoded: Serialize + serde::de::DeserializeOwned {
    /// The record's version.
    fn version(&self) -> u32;

    /// The bytes to store.
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serializes: every map key is a string")
    }

    /// Reads a record back; `doc` and `revision` say which, if it does not decode.
    fn decode(doc: &str, revision: u64, bytes: &[u8]) -> Result<Self, Error> {
        let record: Self = serde_json::from_slice(bytes).map_err(|source| Error::Decode {
            doc: doc.to_owned(),
            revision,
            source,
        })?;
        if record.version() > VERSION {
            return Err(Error::Version {
                doc: doc.to_owned(),
                revision,
                version: record.version(),
            });
        }
        Ok(record)
    }
}

impl Encoded for ChangeRecord {
    fn version(&self) -> u32 {
        self.v
    }
}

impl Encoded for SnapshotRecord {
    fn version(&self) -> u32 {
        self.v
    }
}

impl Encoded for VersionRecord {
    fn version(&self) -> u32 {
        self.v
    }
}
