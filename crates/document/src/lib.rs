//! The collaborative document: a title, a text and named counters, edited by many replicas.
//!
//! A [`Document`] is built from tandem-crdt values: the title is an LWW register, the text an
//! RGA, each counter a PN-counter. Local edits return an [`Op`]; [`Document::apply`] takes ops
//! from any replica in any order; [`Document::diff`] gives exactly the ops another replica lacks;
//! a [`Snapshot`] is the whole document as plain serde data.
//!
//! This crate knows nothing of presence, the wire or storage, and does no IO: node ids arrive as
//! arguments, and the only clock is the Lamport clock carried in op ids.

mod document;
mod error;
mod op;

pub use crate::{
    document::{Document, Snapshot},
    error::Error,
    op::{Op, OpKind},
};
pub use tandem_crdt::{Id, IdRange, Merge, NodeId, Outcome, VersionVector};

#[cfg(test)]
mod tests;
