//! Real editing traces for tests and benchmarks, loaded from `test_data/`.
//!
//! A sequential trace is one person's editing history as index-based patches, with the text it
//! must end in. A concurrent trace is several people's histories as a graph of transactions, each
//! naming the earlier ones it was made on top of. This crate only reads the files; it knows
//! nothing of Tandem's types, so any test or benchmark (of Tandem or of a peer) can replay the
//! same edits.
//! It is a development dependency only: nothing shipped links it.

use std::{fs::File, io::BufReader, path::PathBuf};

use serde::{Deserialize, de::DeserializeOwned};

/// What can go wrong when loading a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file decodes but breaks an invariant that replays rely on.
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The sequential traces the tests replay.
pub const SEQUENTIAL: &[&str] = &["sveltecomponent", "seph-blog1", "automerge-paper"];

/// The sequential traces the trace benchmark replays (every sequential file in `test_data/`).
pub const BENCH_SEQUENTIAL: &[&str] = &[
    "automerge-paper",
    "seph-blog1",
    "rustcode",
    "sveltecomponent",
    "friendsforever_flat",
    "clownschool_flat",
];

/// The concurrent traces the trace benchmark replays, as names for [`concurrent`].
pub const BENCH_CONCURRENT: &[&str] =
    &["concurrent/friendsforever", "concurrent/clownschool", "egwalker-paper/A1"];

/// One edit: at code point `pos`, delete `delete` code points, then insert `insert`.
#[derive(Debug, Clone, Deserialize)]
pub struct Patch(pub usize, pub usize, pub String);

impl Patch {
    pub fn pos(&self) -> usize {
        self.0
    }

    pub fn delete(&self) -> usize {
        self.1
    }

    pub fn insert(&self) -> &str {
        &self.2
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Txn {
    pub patches: Vec<Patch>,
}

/// A single-author editing history.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialTrace {
    pub start_content: String,
    pub end_content: String,
    pub txns: Vec<Txn>,
}

impl SequentialTrace {
    /// Every patch in the order it must be applied.
    pub fn patches(&self) -> impl Iterator<Item = &Patch> {
        self.txns.iter().flat_map(|txn| &txn.patches)
    }
}

/// One transaction of a concurrent trace: an agent's patches, made on the document as it was at
/// the merge of the `parents` transactions.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrentTxn {
    /// Indexes of earlier transactions; empty only for a transaction on the empty document.
    pub parents: Vec<usize>,
    /// How many later transactions list this one as a parent.
    pub num_children: usize,
    /// The author, in `0..num_agents`. Each agent's transactions form a chain: every one of them
    /// has the agent's previous transaction in its causal past.
    pub agent: usize,
    /// Applied one after another; positions are relative to the document at `parents`.
    pub patches: Vec<Patch>,
    /// The diamond-types local-version range of this transaction, in the egwalker-paper files.
    #[serde(rename = "_dtSpan", default)]
    pub dt_span: Option<(usize, usize)>,
}

/// A multi-author editing history: a graph of transactions in an order where every parent comes
/// before its children, with the text that merging all of them must give.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrentTrace {
    pub kind: String,
    pub end_content: String,
    pub num_agents: usize,
    pub txns: Vec<ConcurrentTxn>,
}

impl ConcurrentTrace {
    /// Checks the invariants a replay relies on, so that it can index without checking.
    fn validate(&self) -> Result<(), String> {
        if self.kind != "concurrent" {
            return Err(format!("kind is {:?}, not \"concurrent\"", self.kind));
        }
        let mut children = vec![0; self.txns.len()];
        for (index, txn) in self.txns.iter().enumerate() {
            if txn.agent >= self.num_agents {
                return Err(format!("txn {index}: agent {} of {}", txn.agent, self.num_agents));
            }
            for &parent in &txn.parents {
                if parent >= index {
                    return Err(format!("txn {index}: parent {parent} does not come before it"));
                }
                children[parent] += 1;
            }
        }
        let mismatch = self.txns.iter().zip(&children).position(|(txn, &n)| txn.num_children != n);
        match mismatch {
            Some(index) => Err(format!("txn {index}: numChildren does not match the parents")),
            None => Ok(()),
        }
    }
}

/// Loads `test_data/{name}.json.gz`.
pub fn sequential(name: &str) -> Result<SequentialTrace, Error> {
    load(name)
}

/// Loads `test_data/{name}.json.gz`, a trace in the concurrent schema, and checks that its
/// parents come before their children and its agents are in range.
pub fn concurrent(name: &str) -> Result<ConcurrentTrace, Error> {
    let trace: ConcurrentTrace = load(name)?;
    trace.validate().map_err(|reason| Error::Invalid { path: path_of(name), reason })?;
    Ok(trace)
}

fn path_of(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data").join(format!("{name}.json.gz"))
}

fn load<T: DeserializeOwned>(name: &str) -> Result<T, Error> {
    let path = path_of(name);
    let file = File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    serde_json::from_reader(reader).map_err(|source| Error::Json { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bench_trace_loads() {
        for name in BENCH_SEQUENTIAL {
            let trace = sequential(name).expect("sequential trace loads");
            assert!(trace.patches().next().is_some(), "{name} has no patches");
        }
        for name in BENCH_CONCURRENT {
            let trace = concurrent(name).expect("concurrent trace loads and is valid");
            assert!(trace.txns[0].parents.is_empty(), "{name} does not start from the empty text");
        }
    }

    #[test]
    fn a_parent_after_its_child_is_rejected() {
        let json = r#"{"kind":"concurrent","endContent":"","numAgents":1,"txns":[
            {"parents":[1],"numChildren":0,"agent":0,"patches":[]},
            {"parents":[],"numChildren":1,"agent":0,"patches":[]}]}"#;
        let trace: ConcurrentTrace = serde_json::from_str(json).expect("decodes");
        assert_eq!(trace.validate(), Err("txn 0: parent 1 does not come before it".to_owned()));
    }
}
