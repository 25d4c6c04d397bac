//! Conflict-free replicated data types: the merge algebra under every Tandem document.
//!
//! This crate holds the values that replicas edit independently and merge without coordination:
//! [`GCounter`], [`PnCounter`], [`LwwRegister`] and the [`Rga`] text sequence, plus the identities
//! they are built from ([`NodeId`], [`Id`], [`VersionVector`]).
//!
//! Every type implements [`Merge`], a state-based merge that is commutative, associative and
//! idempotent. [`Rga`] also accepts operations one at a time, in any order and with duplicates.
//!
//! This crate knows nothing of documents, presence or the network, and it does no IO: it never
//! reads a clock and never draws a random number. Node ids and timestamps arrive as arguments.

mod counter;
mod error;
mod id;
mod lww;
mod rga;

pub use crate::{
    counter::{GCounter, PnCounter},
    error::Error,
    id::{Id, IdRange, MAX_SEQ, NodeId, VersionVector},
    lww::{LwwRegister, Stamp},
    rga::{Outcome, Rga, RgaOp},
};

/// A state-based CRDT: `merge` folds another replica's state into this one.
///
/// For all states `a`, `b`, `c` of one type, merging is
/// commutative (`a ⊔ b = b ⊔ a`), associative (`(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`)
/// and idempotent (`a ⊔ a = a`), so replicas that have seen the same updates are equal
/// whatever order the updates arrived in.
pub trait Merge {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: &Self);
}

#[cfg(test)]
mod tests;
