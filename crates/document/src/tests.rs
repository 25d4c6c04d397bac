//! Tests of the document crate: unit tests per rule, property tests of convergence, diff and
//! snapshots, and a replay of a real editing trace.

mod props;
mod units;
