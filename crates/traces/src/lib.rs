//! Real editing traces for tests and benchmarks, loaded from `test_data/`.
//!
//! A sequential trace is one person's editing history as index-based patches, with the text it
//! must end in. This crate only reads the files; it knows nothing of Tandem's types, so any test
//! or benchmark (of Tandem or of a peer) can replay the same edits.
//! It is a development dependency only: nothing shipped links it.

use std::{fs::File, io::BufReader, path::PathBuf};

use serde::Deserialize;

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
}

/// The sequential traces shipped in `test_data/`.
pub const SEQUENTIAL: &[&str] = &["sveltecomponent", "seph-blog1", "automerge-paper"];

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

/// Loads `test_data/{name}.json.gz`.
pub fn sequential(name: &str) -> Result<SequentialTrace, Error> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data").join(format!("{name}.json.gz"));
    let file = File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    serde_json::from_reader(reader).map_err(|source| Error::Json { path, source })
}
