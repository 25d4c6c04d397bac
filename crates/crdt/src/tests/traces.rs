//! Replays of real editing traces through index-based edits, checked against the text each
//! trace must end in.

use crate::{Merge, NodeId, Rga};

fn replay(name: &str) -> Rga {
    let trace = tandem_traces::sequential(name).expect("trace loads");
    let mut rga = Rga::new();
    for patch in trace.patches() {
        if patch.delete() > 0 {
            rga.delete(patch.pos(), patch.delete()).expect("patch in range");
        }
        if !patch.insert().is_empty() {
            let id = rga.next_id(NodeId(1));
            rga.insert(patch.pos(), patch.insert(), id).expect("patch in range");
        }
    }
    assert_eq!(rga.to_string(), trace.end_content, "{name} replay diverged");
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
    replay("automerge-paper");
}
