//! Replaying concurrent traces: Tandem edits and merges replicas transaction by transaction, and
//! diamond-types merges an oplog built from the same trace.
//!
//! A transaction's patches are relative to the merge of its parents. Tandem rebuilds that state
//! from its first parent's state plus the operations of whatever the other parents had that the
//! first one lacked, found with a per-agent version vector (each agent's transactions form a
//! chain, so counting them describes a causal past exactly).

use anyhow::{Context, Result, ensure};
use diamond_types::{AgentId, LocalVersion, list::OpLog};
use tandem_crdt::{Merge, NodeId, Rga, RgaOp};
use tandem_traces::{ConcurrentTrace, ConcurrentTxn};

use crate::{edits::Edit, tandem::local_edit};

/// For each agent, how many of its transactions a state includes.
type Version = Vec<u32>;

/// Facts about a trace's transaction graph, worked out once, outside any timed region.
pub(crate) struct Plan {
    /// For each agent, its transactions in order.
    chains: Vec<Vec<usize>>,
    /// For each transaction, how many later ones start from its state (list it first).
    first_parent_of: Vec<usize>,
    /// Whether each transaction is its agent's last.
    agent_last: Vec<bool>,
}

impl Plan {
    pub(crate) fn new(trace: &ConcurrentTrace) -> Plan {
        let mut chains = vec![Vec::new(); trace.num_agents];
        let mut first_parent_of = vec![0; trace.txns.len()];
        for (index, txn) in trace.txns.iter().enumerate() {
            chains[txn.agent].push(index);
            if let Some(&first) = txn.parents.first() {
                first_parent_of[first] += 1;
            }
        }
        let mut agent_last = vec![false; trace.txns.len()];
        for chain in &chains {
            if let Some(&last) = chain.last() {
                agent_last[last] = true;
            }
        }
        Plan { chains, first_parent_of, agent_last }
    }

    pub(crate) fn agents_with_txns(&self) -> usize {
        self.chains.iter().filter(|chain| !chain.is_empty()).count()
    }
}

/// What a Tandem replay of a concurrent trace leaves.
pub(crate) struct Replay {
    /// The operations each transaction made, in transaction order.
    pub(crate) ops: Vec<Vec<RgaOp>>,
    /// The state after the last transaction, which includes every other one.
    pub(crate) last: Rga,
    /// The state after each agent's last transaction, when asked for.
    pub(crate) agent_finals: Vec<Rga>,
}

/// Replays `trace` as its agents would: each transaction starts from its parents' merged state
/// and makes its patches as local edits by its agent's node.
pub(crate) fn replay(
    trace: &ConcurrentTrace,
    plan: &Plan,
    keep_agent_finals: bool,
) -> Result<Replay> {
    let count = trace.txns.len();
    // States are kept only while a later transaction still starts from them.
    let mut states: Vec<Option<Rga>> = (0..count).map(|_| None).collect();
    let mut starts_left = plan.first_parent_of.clone();
    let mut versions: Vec<Version> = Vec::with_capacity(count);
    let mut ops: Vec<Vec<RgaOp>> = Vec::with_capacity(count);
    let mut agent_finals = Vec::new();
    let mut last = None;
    for (index, txn) in trace.txns.iter().enumerate() {
        let (mut rga, mut version) =
            start_state(txn, trace.num_agents, &mut states, &mut starts_left, &versions)?;
        let others = txn.parents.get(1..).unwrap_or_default();
        catch_up(&mut rga, &mut version, others, &versions, &plan.chains, &ops)
            .with_context(|| format!("merging the parents of txn {index}"))?;
        version[txn.agent] += 1;
        let made = edit(&mut rga, txn).with_context(|| format!("replaying txn {index}"))?;
        ops.push(made);
        versions.push(version);
        if keep_agent_finals && plan.agent_last[index] {
            agent_finals.push(rga.clone());
        }
        if index + 1 == count {
            last = Some(rga);
        } else if plan.first_parent_of[index] > 0 {
            states[index] = Some(rga);
        }
    }
    let last = last.context("the trace has no transactions")?;
    Ok(Replay { ops, last, agent_finals })
}

/// The state and version a transaction starts from: its first parent's, moved out when no
/// later transaction needs it any more, cloned otherwise.
fn start_state(
    txn: &ConcurrentTxn,
    agents: usize,
    states: &mut [Option<Rga>],
    starts_left: &mut [usize],
    versions: &[Version],
) -> Result<(Rga, Version)> {
    let Some(&first) = txn.parents.first() else {
        return Ok((Rga::new(), vec![0; agents]));
    };
    starts_left[first] -= 1;
    let state = if starts_left[first] == 0 { states[first].take() } else { states[first].clone() };
    let state = state.with_context(|| format!("the state after txn {first} was dropped"))?;
    Ok((state, versions[first].clone()))
}

/// Brings `rga` (at `version`) up to the merge of itself and the `others` parents, by applying
/// the operations of every transaction they include and it lacks, oldest first.
fn catch_up(
    rga: &mut Rga,
    version: &mut Version,
    others: &[usize],
    versions: &[Version],
    chains: &[Vec<usize>],
    ops: &[Vec<RgaOp>],
) -> Result<()> {
    let mut missing = Vec::new();
    for &parent in others {
        for (agent, have) in version.iter_mut().enumerate() {
            let want = versions[parent][agent];
            if want > *have {
                missing.extend_from_slice(&chains[agent][*have as usize..want as usize]);
                *have = want;
            }
        }
    }
    // Transaction order is causal order, so every operation finds what it refers to.
    missing.sort_unstable();
    for txn in missing {
        for op in &ops[txn] {
            rga.apply(op.clone())?;
        }
    }
    Ok(())
}

/// Makes a transaction's patches as local edits by its agent, returning the operations.
fn edit(rga: &mut Rga, txn: &ConcurrentTxn) -> Result<Vec<RgaOp>> {
    let node = node_of(txn.agent);
    let mut made = Vec::new();
    for patch in &txn.patches {
        local_edit(rga, node, &Edit::from_patch(patch), &mut |op| made.push(op))?;
    }
    Ok(made)
}

/// Agent `a` edits as node `a + 1`, keeping node 0 (the default) out of the replay. Node order
/// follows agent order, which is how concurrent inserts at one position are ordered.
fn node_of(agent: usize) -> NodeId {
    NodeId(agent as u64 + 1)
}

/// Merges whole states, as replicas exchanging snapshots would.
pub(crate) fn merge_states(states: &[Rga]) -> Rga {
    let mut merged = Rga::new();
    for state in states {
        merged.merge(state);
    }
    merged
}

/// Checks that a replay's replicas agree: the last transaction's state includes everything, so
/// the replica fed every operation and the merge of every agent's final state must equal it.
pub(crate) fn check_replicas(replay: &Replay, all_ops: &Rga, merged: Option<&Rga>) -> Result<()> {
    ensure!(all_ops.pending_len() == 0, "{} operations still pending", all_ops.pending_len());
    ensure!(*all_ops == replay.last, "applying every operation gives a different Rga");
    ensure!(all_ops.to_string() == replay.last.to_string(), "equal Rgas with different texts");
    if let Some(merged) = merged {
        ensure!(*merged == replay.last, "merging the agents' final states gives a different Rga");
        ensure!(merged.to_string() == replay.last.to_string(), "equal Rgas with different texts");
    }
    Ok(())
}

/// Builds a diamond-types oplog holding the trace: every patch becomes an operation whose
/// parents are the version its transaction was made at. Untimed: it is the merge's input.
pub(crate) fn diamond_oplog(trace: &ConcurrentTrace) -> OpLog {
    let mut oplog = OpLog::new();
    // Zero-padded names sort like the agent numbers, so ties between concurrent inserts break
    // in agent order, as in Tandem.
    let agents: Vec<AgentId> = (0..trace.num_agents)
        .map(|agent| oplog.get_or_create_agent_id(&format!("agent{agent:05}")))
        .collect();
    let mut frontiers: Vec<LocalVersion> = Vec::with_capacity(trace.txns.len());
    for txn in &trace.txns {
        let mut version = parents_version(&oplog, &frontiers, &txn.parents);
        for patch in &txn.patches {
            let agent = agents[txn.agent];
            if patch.delete() > 0 {
                let range = patch.pos()..patch.pos() + patch.delete();
                version = LocalVersion::from_elem(oplog.add_delete_at(agent, &version, range), 1);
            }
            if !patch.insert().is_empty() {
                let time = oplog.add_insert_at(agent, &version, patch.pos(), patch.insert());
                version = LocalVersion::from_elem(time, 1);
            }
        }
        frontiers.push(version);
    }
    oplog
}

/// The diamond-types version naming the union of the `parents` transactions' versions.
fn parents_version(oplog: &OpLog, frontiers: &[LocalVersion], parents: &[usize]) -> LocalVersion {
    let Some((&first, rest)) = parents.split_first() else {
        return LocalVersion::new();
    };
    rest.iter().fold(frontiers[first].clone(), |version, &parent| {
        oplog.version_union(&version, &frontiers[parent])
    })
}
