//! Tandem's RGA driven by the bench: local edits by index, and remote replays of the operations
//! those edits produced.

use anyhow::{Context, Result, ensure};
use tandem_crdt::{NodeId, Rga, RgaOp};

use crate::{
    edits::{Edit, first_difference},
    measure::{Samples, repeat, time},
    sequential::{Editor, Encoded},
};

/// The node that makes every edit of a sequential trace.
const AUTHOR: NodeId = NodeId(1);

/// Tandem's `Rga`, edited through `insert` and `delete` as one node.
pub(crate) struct Tandem;

impl Editor for Tandem {
    const NAME: &'static str = "tandem";
    const HOW: &'static str = "Rga::delete then Rga::insert per patch, one NodeId";
    type Doc = Rga;

    fn replay(edits: &[Edit<'_>]) -> Result<Rga> {
        let mut rga = Rga::new();
        for edit in edits {
            // The operations are what a server would broadcast; this replay drops them.
            local_edit(&mut rga, AUTHOR, edit, &mut |_| {})?;
        }
        Ok(rga)
    }

    fn text(rga: &Rga) -> Result<String> {
        Ok(rga.to_string())
    }

    fn encode(rga: &mut Rga) -> Result<Option<Encoded>> {
        encode(rga)
    }
}

/// Applies one patch to `rga` as a local edit by `node` (delete, then insert, as the trace
/// format prescribes), handing each operation it produces to `sink`.
pub(crate) fn local_edit(
    rga: &mut Rga,
    node: NodeId,
    edit: &Edit<'_>,
    sink: &mut impl FnMut(RgaOp),
) -> Result<()> {
    if edit.delete > 0 {
        let ops = rga
            .delete(edit.pos, edit.delete)
            .with_context(|| format!("deleting {} at {}", edit.delete, edit.pos))?;
        ops.into_iter().for_each(&mut *sink);
    }
    if !edit.insert.is_empty() {
        let id = rga.next_id(node);
        let op = rga.insert(edit.pos, edit.insert, id).with_context(|| {
            format!("inserting {} code points at {}", edit.insert.chars().count(), edit.pos)
        })?;
        sink(op);
    }
    Ok(())
}

/// The operations a local replay of `edits` produces, in order. Collected untimed, as the input
/// of the remote replay.
pub(crate) fn operations(edits: &[Edit<'_>]) -> Result<Vec<RgaOp>> {
    let mut rga = Rga::new();
    let mut ops = Vec::with_capacity(edits.len());
    for edit in edits {
        local_edit(&mut rga, AUTHOR, edit, &mut |op| ops.push(op))?;
    }
    Ok(ops)
}

/// Applies `ops` in order to a fresh `Rga`, as a replica receiving them would.
pub(crate) fn apply_all(ops: Vec<RgaOp>) -> Result<Rga> {
    let mut rga = Rga::new();
    for op in ops {
        rga.apply(op).context("applying a remote operation")?;
    }
    Ok(rga)
}

/// Times [`apply_all`] on fresh copies of `ops` (copied outside the timed region), checking that
/// every operation was integrated and the text is `expected`.
pub(crate) fn measure_remote(ops: &[RgaOp], expected: &str, runs: usize) -> Result<Samples> {
    repeat(runs, || {
        let input = ops.to_vec();
        let (rga, elapsed) = time(|| apply_all(input))?;
        ensure!(rga.pending_len() == 0, "{} operations are still pending", rga.pending_len());
        let text = rga.to_string();
        ensure!(
            text == expected,
            "tandem-remote replay does not end in the trace's endContent: {}",
            first_difference(&text, expected)
        );
        Ok(elapsed)
    })
}

/// The size of Tandem's binary snapshot, after checking that it decodes to an equal `Rga`.
pub(crate) fn encode(rga: &Rga) -> Result<Option<Encoded>> {
    let bytes = rga.encode();
    let decoded = Rga::decode(&bytes).context("decoding Rga::encode's output")?;
    ensure!(decoded == *rga, "Rga::decode(rga.encode()) differs from rga");
    ensure!(decoded.to_string() == rga.to_string(), "the decoded Rga has another text");
    Ok(Some(Encoded { what: "Rga::encode (decodes to an equal Rga)", bytes: bytes.len() }))
}
