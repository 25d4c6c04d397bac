//! Replays of real editing traces through index-based edits, checked against the text each
//! trace must end in; and the operations those edits made, applied to a second replica.

use crate::{Merge, NodeId, Outcome, Rga};

fn replay(name: &str) -> Rga {
    let trace = tandem_traces::sequential(name).expect("trace loads");
    let mut rga = Rga::new();
    let mut ops = Vec::new();
    for patch in trace.patches() {
        if patch.delete() > 0 {
            ops.extend(rga.delete(patch.pos(), patch.delete()).expect("patch in range"));
        }
        if !patch.insert().is_empty() {
            let id = rga.next_id(NodeId(1));
            ops.push(rga.insert(patch.pos(), patch.insert(), id).expect("patch in range"));
        }
    }
    assert_eq!(rga.to_string(), trace.end_content, "{name} replay diverged");
    rga.check_invariants();

    // The same edits as remote operations, on a replica that never saw an index.
    let mut remote = Rga::new();
    for op in ops {
        assert_eq!(remote.apply(op), Ok(Outcome::Applied));
    }
    remote.check_invariants();
    assert_eq!(remote, rga, "{name}: the operations rebuilt a different text");

    let decoded = Rga::decode(&rga.encode()).expect("the snapshot decodes");
    assert_eq!(decoded, rga, "{name}: the snapshot rebuilt a different text");
    rga
}

#[test]
fn sveltecomponent_replays_to_its_end_content() {
    let rga = replay("sveltecomponent");
    // A fresh replica that merges the final state holds the same text.
    let mut copy = Rga::new();
    copy.merge(&rga);
    assert_eq!(copy, rga);
}

#[test]
fn seph_blog1_replays_to_its_end_content() {
    replay("seph-blog1");
}

#[test]
fn automerge_paper_replays_to_its_end_content() {
    let rga = replay("automerge-paper");
    // Storage grows with runs, not with keystrokes: the trace types 182,315 characters in
    // 12,387 runs of consecutive ids (see the traces' notes); tombstoning splits some further.
    assert!(rga.span_count() < 20_000, "{} spans", rga.span_count());
}
