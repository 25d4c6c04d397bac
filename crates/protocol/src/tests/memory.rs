//! A busy room's memory follows its text, its history window and the number of changes, not
//! how much was ever typed.

use super::{IDLE, secs};
use crate::{Footprint, Limits, Room};

/// Sends `frame` from `client`, and checks it was acknowledged.
fn acked(room: &mut Room, client: &str, frame: &str) {
    let reply = room.handle(client, frame, secs(1));
    assert!(
        matches!(reply.to_sender.as_slice(), [crate::ServerMessage::Ack { .. }]),
        "{frame:.60} -> {:?}",
        reply.to_sender
    );
}

/// Inserts `size` characters and deletes them again, `rounds` times; returns the footprint
/// after each round.
fn churn(room: &mut Room, rounds: usize, size: usize) -> Vec<Footprint> {
    let text = "é".repeat(size);
    (0..rounds)
        .map(|_| {
            let revision = room.revision();
            acked(
                room,
                "ada",
                &format!(r#"{{"type":"insert","revision":{revision},"index":1,"text":"{text}"}}"#),
            );
            let revision = room.revision();
            acked(
                room,
                "ada",
                &format!(r#"{{"type":"delete","revision":{revision},"index":1,"length":{size}}}"#),
            );
            room.footprint()
        })
        .collect()
}

#[test]
fn inserting_and_deleting_forever_keeps_the_room_bounded() {
    let limits = Limits { max_history: 200, max_history_bytes: 256 << 10, ..Limits::default() };
    let mut room = Room::new("notes", limits.clone(), IDLE);
    room.join("ada", crate::Seat::default(), secs(0)).expect("joins");
    acked(&mut room, "ada", r#"{"type":"insert","revision":0,"index":0,"text":"[]"}"#);
    let footprints = churn(&mut room, 3_000, 10_000);
    assert_eq!(room.text(), "[]");
    let last = *footprints.last().expect("rounds");
    // Each insert holds 20,000 bytes: the byte bound, not the count, limits the history.
    assert!(last.history_bytes <= limits.max_history_bytes, "{last:?}");
    assert!(last.history_entries < limits.max_history, "{last:?}");
    // The text keeps its deleted characters' ids (no text) and when they went, so that old
    // edits can be placed: a run and a deletion per round, however much each round typed.
    assert!(last.text_runs <= 2 * 3_000 + 4, "the text's runs reached {}", last.text_runs);
    let mut small = Room::new("notes", limits.clone(), IDLE);
    small.join("ada", crate::Seat::default(), secs(0)).expect("joins");
    acked(&mut small, "ada", r#"{"type":"insert","revision":0,"index":0,"text":"[]"}"#);
    let small = churn(&mut small, 3_000, 10);
    assert_eq!(small.last().map(|f| f.text_runs), Some(last.text_runs), "size changed the runs");
    // And the history window behaves as before: a client from inside it can still resume.
    let oldest = room.revision() - last.history_entries as u64;
    assert!(
        room.resume("bob", crate::Seat::default(), oldest, secs(2)).expect("not taken").is_some()
    );
    assert!(matches!(
        room.resume("cy", crate::Seat::default(), oldest - 1, secs(2)).expect("not taken"),
        Some(crate::Resumed::FromStore { .. })
    ));
}

#[test]
fn the_last_requests_of_clients_long_gone_are_forgotten() {
    let limits = Limits { max_history: 100, ..Limits::default() };
    let mut room = Room::new("notes", limits, IDLE);
    // A thousand clients come, each makes one change with a request id, and goes.
    for i in 0..1_000 {
        let client = format!("c{i}");
        room.join(&client, crate::Seat::default(), secs(0)).expect("joins");
        let revision = room.revision();
        acked(
            &mut room,
            &client,
            &format!(r#"{{"type":"insert","id":1,"revision":{revision},"index":0,"text":"x"}}"#),
        );
        room.leave(&client);
    }
    // Only those whose change is within the history window are remembered.
    let remembered = room.footprint().requests;
    assert!((100..=200).contains(&remembered), "{remembered} clients remembered");
    // The most recent one still gets its resend acknowledged rather than applied again.
    let revision = room.revision();
    super::in_memory(
        room.resume("c999", crate::Seat::default(), revision - 1, secs(2))
            .expect("not taken")
            .expect("in the window"),
    );
    let reply = room.handle(
        "c999",
        r#"{"type":"insert","id":1,"revision":999,"index":0,"text":"x"}"#,
        secs(2),
    );
    assert_eq!(room.revision(), revision, "the resend was not applied again: {reply:?}");
}
