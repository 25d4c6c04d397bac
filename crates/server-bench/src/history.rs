//! `cargo xtask bench history`: what an edit made at an old revision costs the room.
//!
//! Builds a document from a real editing trace (automerge-paper: 259,778 edits, one revision
//! each), then times the room handling an insert made at head minus 10, 1,000 and 100,000.
//! The first two are transformed past each change since (the last 1,000 are in memory); the
//! third is placed by the identity of its characters, with the one number the store gives for
//! that revision (read here from the log kept in memory, as the server reads it from its
//! store). The baseline, timed in the same process, is what placing it used to take:
//! transforming it past each of the 100,000 changes since, one by one.
//!
//! Then it times loading a snapshot where merging is at its worst, a text typed backwards (every
//! character typed at the start, so each run has the same reference): trusting the snapshot's
//! order (`Rga::decode_in_order`, what a room loads with) against integrating each run again
//! (`Rga::decode`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tandem_crdt::{Id, NodeId, Rga};
use tandem_protocol::{
    Limits, Logged, Past, Room, Seat, ServerMessage,
    ot::{Edit, transform},
};

/// Samples per distance; the median is reported.
const SAMPLES: usize = 31;

const DISTANCES: [u64; 3] = [10, 1_000, 100_000];

/// A room built from the trace, the log of every change it made, and the text's length after
/// each revision.
struct Built {
    room: Room,
    log: Vec<Logged>,
    lengths: Vec<usize>,
}

fn build(trace: &str) -> Result<Built> {
    let trace = tandem_traces::sequential(trace).context("loading the trace")?;
    let mut room = Room::new("bench", Limits::default(), Duration::from_secs(300));
    room.join("writer", Seat::default(), Duration::ZERO)?;
    let mut built = Built { room, log: Vec::new(), lengths: vec![0] };
    let apply = |built: &mut Built, frame: serde_json::Value| -> Result<()> {
        let reply = built.room.handle("writer", &frame.to_string(), Duration::ZERO);
        if !matches!(reply.to_sender.as_slice(), [ServerMessage::Ack { .. }]) {
            anyhow::bail!("the room refused a trace edit: {:?}", reply.to_sender);
        }
        for _ in &reply.logged {
            built.lengths.push(built.room.len());
        }
        built.log.extend(reply.logged);
        Ok(())
    };
    for patch in trace.patches() {
        if patch.delete() > 0 {
            let revision = built.room.revision();
            let frame = serde_json::json!({"type": "delete", "revision": revision, "index": patch.pos(), "length": patch.delete()});
            apply(&mut built, frame)?;
        }
        if !patch.insert().is_empty() {
            let revision = built.room.revision();
            let frame = serde_json::json!({"type": "insert", "revision": revision, "index": patch.pos(), "text": patch.insert()});
            apply(&mut built, frame)?;
        }
    }
    Ok(built)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let mut built = build("automerge-paper")?;
    let head = built.room.revision();
    println!(
        "automerge-paper replayed into a room: {head} revisions, {} characters, {:.1} s",
        built.room.len(),
        started.elapsed().as_secs_f64()
    );
    let footprint = built.room.footprint();
    println!("the room's text holds {} runs and deletions", footprint.text_runs);
    snapshot_cost(&built.room);
    println!();
    println!("| edit made at | how | median per edit |");
    println!("|---|---|---:|");
    let mut medians = Vec::new();
    for distance in DISTANCES {
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let revision = built.room.revision() - distance;
            let index = built.lengths[revision as usize] / 2;
            let frame = serde_json::json!({"type": "insert", "revision": revision, "index": index, "text": "x"}).to_string();
            let timed = Instant::now();
            let mut reply = built.room.handle("writer", &frame, Duration::ZERO);
            if let Some(asked) = reply.needs_past {
                let next_seq = built.log[asked as usize - 1].next_seq;
                let past = Past { revision: asked, next_seq };
                reply = built.room.handle_with("writer", &frame, past, Duration::ZERO).1;
            }
            samples.push(timed.elapsed());
            if !matches!(reply.to_sender.as_slice(), [ServerMessage::Ack { .. }]) {
                anyhow::bail!("the room refused an old edit: {:?}", reply.to_sender);
            }
            built.lengths.push(built.room.len());
            built.log.extend(reply.logged);
        }
        let how = if distance <= 1_000 {
            "transformed past each change since"
        } else {
            "placed by identity"
        };
        let median = median(samples);
        medians.push(median);
        println!("| head - {distance} | {how} | {:.1} µs |", micros(median));
    }
    // The baseline: the edit at head - 100,000 transformed past each change since.
    let mut samples = Vec::new();
    for _ in 0..5 {
        let revision = built.room.revision() - 100_000;
        let index = built.lengths[revision as usize] / 2;
        let timed = Instant::now();
        let mut edits = vec![Edit::Insert { index, text: "x".into() }];
        for entry in &built.log[revision as usize..] {
            if let Some(change) = change_edit(entry) {
                edits = transform(&edits, std::slice::from_ref(&change)).0;
            }
        }
        samples.push(timed.elapsed());
        std::hint::black_box(edits);
    }
    let baseline = median(samples);
    println!(
        "| head - 100000 | transformed past each of the 100,000 changes (baseline) | {:.1} µs |",
        micros(baseline)
    );
    println!();
    println!(
        "placing by identity at head - 100,000: {:.1}x faster than transforming one by one",
        baseline.as_secs_f64() / medians[2].as_secs_f64()
    );
    load()
}

/// What taking a snapshot holds the room's lock for: copying the state (what the room does
/// now, encoding it later on the store's thread) against encoding it there and then.
#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn snapshot_cost(room: &Room) {
    let time = |take: &dyn Fn()| {
        let mut samples = Vec::new();
        for _ in 0..11 {
            let timed = Instant::now();
            take();
            samples.push(timed.elapsed());
        }
        median(samples)
    };
    let taken = time(&|| drop(std::hint::black_box(room.take_snapshot())));
    let encoded = time(&|| drop(std::hint::black_box(room.snapshot())));
    println!(
        "a snapshot holds the room's lock for {:.1} µs (copied; {:.1} µs when it was encoded there)",
        micros(taken),
        micros(encoded)
    );
}

/// Characters in the text typed backwards.
const BACKWARDS: usize = 20_000;

#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
fn load() -> Result<()> {
    let mut rga = Rga::new();
    for _ in 0..BACKWARDS {
        let id: Id = rga.next_id(NodeId(1));
        rga.insert(0, "x", id)?;
    }
    let bytes = rga.encode();
    let time = |decode: fn(&[u8]) -> Result<Rga, tandem_crdt::Error>| -> Result<Duration> {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let timed = Instant::now();
            let decoded = decode(&bytes)?;
            samples.push(timed.elapsed());
            anyhow::ensure!(decoded == rga, "the snapshot decoded to another text");
        }
        Ok(median(samples))
    };
    let in_order = time(Rga::decode_in_order)?;
    let merged = time(Rga::decode)?;
    println!();
    println!("| loading {BACKWARDS} characters typed backwards | median |");
    println!("|---|---:|");
    println!("| in the snapshot's order (Rga::decode_in_order) | {:.1} µs |", micros(in_order));
    println!("| integrating each run (Rga::decode, baseline) | {:.1} µs |", micros(merged));
    println!();
    println!(
        "loading in order: {:.1}x faster than integrating",
        merged.as_secs_f64() / in_order.as_secs_f64()
    );
    Ok(())
}

/// A logged change's text edit.
fn change_edit(entry: &Logged) -> Option<Edit> {
    match &entry.change {
        tandem_protocol::Change::Insert { index, text } => {
            Some(Edit::Insert { index: *index, text: text.clone() })
        }
        tandem_protocol::Change::Delete { index, length } => {
            Some(Edit::Delete { index: *index, len: *length })
        }
        _ => None,
    }
}
