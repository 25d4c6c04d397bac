//! The room: what each message does, what the sender and the others are told, and every
//! refusal.

use serde_json::json;

use super::{IDLE, join, json, room, secs};
use crate::{
    ClientMessage, CursorView, ErrorCode, Limits, Reply, Room, ServerMessage, ThinClient, UserView,
};

fn send(room: &mut Room, client: &str, message: &ClientMessage) -> Reply {
    room.handle(client, &serde_json::to_string(message).expect("serializes"), secs(1))
}

/// Lets a thin client act, sends what it produced and feeds the sender's replies back to it.
fn act(
    room: &mut Room,
    client: &mut ThinClient,
    action: impl FnOnce(&mut ThinClient) -> Option<ClientMessage>,
) -> Reply {
    let message = action(client).expect("a message to send");
    let reply = send(room, client.client_id(), &message);
    for answer in reply.to_sender.clone() {
        assert!(client.receive(answer).expect("accepted").is_none());
    }
    reply
}

fn error_code(reply: &Reply) -> (ErrorCode, serde_json::Value) {
    match reply.to_sender.as_slice() {
        [message @ ServerMessage::Error { code, .. }] => (*code, json(message)),
        other => panic!("expected one error, got {other:?}"),
    }
}

#[test]
fn welcome_holds_the_document_and_the_others() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    act(&mut room, &mut ada, |c| c.insert(0, "ABCD").expect("fits"));
    send(
        &mut room,
        "ada",
        &ClientMessage::PresenceUpdate {
            id: None,
            name: Some("Ada".into()),
            color: Some("#e11d48".into()),
        },
    );
    send(&mut room, "ada", &ClientMessage::CursorMove { id: None, line: 0, column: 3 });
    send(
        &mut room,
        "ada",
        &ClientMessage::IncrementCounter { id: None, name: "likes".into(), amount: 2 },
    );
    let reply = room.join("bob", crate::Seat::default(), secs(2)).expect("joins");
    assert_eq!(
        json(&reply.to_sender[0]),
        json!({"type": "welcome", "client_id": "bob", "doc": "notes", "revision": 2, "text": "ABCD", "title": "",
               "counters": {"likes": 2},
               "users": [{"client_id": "ada", "name": "Ada", "color": "#e11d48", "cursor": {"line": 0, "column": 3}, "idle": false}]})
    );
    assert_eq!(
        reply.to_others,
        [ServerMessage::Presence(UserView {
            client_id: "bob".into(),
            name: None,
            color: None,
            cursor: CursorView::default(),
            idle: false
        })]
    );
    assert_eq!(room.clients(), 2);
}

#[test]
fn changes_are_acked_to_the_sender_and_broadcast_to_the_others() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    join(&mut room, "bob");
    let reply = act(&mut room, &mut ada, |c| c.insert(0, "héllo").expect("fits"));
    assert_eq!(json(&reply.to_sender[0]), json!({"type": "ack", "id": 1, "revision": 1}));
    assert_eq!(
        json(&reply.to_others[0]),
        json!({"type": "insert", "client_id": "ada", "revision": 1, "index": 0, "text": "héllo"})
    );
    let reply = act(&mut room, &mut ada, |c| c.delete(1, 2).expect("fits"));
    assert_eq!(
        json(&reply.to_others[0]),
        json!({"type": "delete", "client_id": "ada", "revision": 2, "index": 1, "length": 2})
    );
    let reply = act(&mut room, &mut ada, |c| c.set_title("Plans"));
    assert_eq!(
        json(&reply.to_others[0]),
        json!({"type": "set_title", "client_id": "ada", "revision": 3, "title": "Plans"})
    );
    let reply = act(&mut room, &mut ada, |c| c.increment_counter("likes", -3));
    assert_eq!(
        json(&reply.to_others[0]),
        json!({"type": "increment_counter", "client_id": "ada", "revision": 4, "name": "likes", "amount": -3, "value": -3})
    );
    assert_eq!((room.text(), room.title(), room.revision()), ("hlo".to_owned(), "Plans", 4));
    assert_eq!(
        (ada.text(), ada.title(), ada.counter("likes"), ada.revision()),
        ("hlo".to_owned(), "Plans", -3, 4)
    );
    assert!(ada.is_synced());
}

#[test]
fn presence_changes_and_leaving_reach_the_others_only() {
    let mut room = room();
    join(&mut room, "ada");
    join(&mut room, "bob");
    let reply = send(&mut room, "ada", &ClientMessage::CursorMove { id: None, line: 2, column: 5 });
    assert!(reply.to_sender.is_empty());
    assert_eq!(
        json(&reply.to_others[0]),
        json!({"type": "presence", "client_id": "ada", "name": null, "color": null, "cursor": {"line": 2, "column": 5}, "idle": false})
    );
    let reply = send(
        &mut room,
        "ada",
        &ClientMessage::PresenceUpdate { id: None, name: Some("Ada".into()), color: None },
    );
    assert_eq!(json(&reply.to_others[0])["name"], "Ada");
    assert_eq!(json(&room.leave("ada").to_others[0]), json!({"type": "leave", "client_id": "ada"}));
    assert!(room.leave("ada").to_others.is_empty(), "leaving twice says nothing");
    assert_eq!(room.clients(), 1);
}

#[test]
fn the_abcd_case_converges_in_both_arrival_orders() {
    for insert_first in [true, false] {
        let mut room = room();
        let mut setup = join(&mut room, "setup");
        act(&mut room, &mut setup, |c| c.insert(0, "ABCD").expect("fits"));
        let mut one = join(&mut room, "one");
        let mut two = join(&mut room, "two");
        let insert = one.insert(3, "X").expect("fits").expect("sent");
        let delete = two.delete(1, 1).expect("fits").expect("sent");
        let order = if insert_first {
            [("one", insert), ("two", delete)]
        } else {
            [("two", delete), ("one", insert)]
        };
        for (sender, message) in order {
            let reply = send(&mut room, sender, &message);
            for (client, name) in [(&mut one, "one"), (&mut two, "two")] {
                let inbox = if name == sender { &reply.to_sender } else { &reply.to_others };
                for message in inbox {
                    client.receive(message.clone()).expect("accepted");
                }
            }
        }
        assert_eq!(room.text(), "ACXD");
        assert_eq!((one.text(), two.text()), ("ACXD".to_owned(), "ACXD".to_owned()));
        assert_eq!((one.revision(), two.revision()), (3, 3));
    }
}

#[test]
fn bad_input_gets_the_right_error_and_changes_nothing() {
    let mut room = Room::new(
        "notes",
        Limits { max_history: 2, max_field_chars: 8, ..Limits::default() },
        IDLE,
    );
    let mut ada = join(&mut room, "ada");
    join(&mut room, "bob");
    act(&mut room, &mut ada, |c| c.insert(0, "abc").expect("fits"));
    let cases = [
        (r#"{"type": "insert", "#, ErrorCode::InvalidJson),
        (r#"{"type": "shout", "id": 7}"#, ErrorCode::InvalidMessage),
        (r#"{"type": "insert", "id": 8, "revision": 1, "text": "x"}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type": "insert", "id": "a", "revision": 1, "index": "0", "text": "x"}"#,
            ErrorCode::InvalidMessage,
        ),
        (r#"[1, 2]"#, ErrorCode::InvalidMessage),
        (r#"{"type": "insert", "revision": 1, "index": 0, "text": ""}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type": "insert", "id": 9, "revision": 1, "index": 4, "text": "x"}"#,
            ErrorCode::OutOfRange,
        ),
        (r#"{"type": "delete", "revision": 1, "index": 2, "length": 2}"#, ErrorCode::OutOfRange),
        (
            r#"{"type": "delete", "revision": 1, "index": 18446744073709551615, "length": 2}"#,
            ErrorCode::OutOfRange,
        ),
        (r#"{"type": "insert", "revision": 2, "index": 0, "text": "x"}"#, ErrorCode::StaleRevision),
        (r#"{"type": "set_title", "title": "far too long a title"}"#, ErrorCode::TooLarge),
        (r#"{"type": "increment_counter", "name": "", "amount": 1}"#, ErrorCode::InvalidMessage),
        (r#"{"type": "presence_update", "color": "red;x"}"#, ErrorCode::InvalidMessage),
        (r#"{"type": "presence_update", "color": "url(x)"}"#, ErrorCode::InvalidMessage),
        (r##"{"type": "presence_update", "color": "#12345"}"##, ErrorCode::InvalidMessage),
        (r#"{"type": "ping", "id": "nine chars"}"#, ErrorCode::TooLarge),
        (r##"{"type": "presence_update", "color": "#abcdeg"}"##, ErrorCode::InvalidMessage),
        (
            r#"{"type": "cursor_move", "line": 9007199254740992, "column": 0}"#,
            ErrorCode::InvalidMessage,
        ),
        (
            r#"{"type": "cursor_move", "line": 0, "column": 9007199254740992}"#,
            ErrorCode::InvalidMessage,
        ),
    ];
    for (frame, code) in cases {
        let reply = room.handle("ada", frame, secs(1));
        assert_eq!(error_code(&reply).0, code, "{frame}");
        assert!(reply.to_others.is_empty(), "{frame} reached the others");
    }
    let (_, unknown) = error_code(&room.handle("ada", r#"{"type": "shout", "id": 7}"#, secs(1)));
    assert_eq!(unknown["id"], 7, "the id is echoed");
    assert!(unknown["message"].as_str().is_some_and(|m| m.contains("shout")), "{unknown}");
    let (_, missing) = error_code(&room.handle("ada", cases[2].0, secs(1)));
    assert!(missing["message"].as_str().is_some_and(|m| m.contains("index")), "{missing}");
    assert_eq!(error_code(&room.handle_binary()).0, ErrorCode::InvalidMessage);
    assert_eq!((room.text(), room.revision()), ("abc".to_owned(), 1));
    // A revision older than the history in memory is not refused: the room asks for what the
    // store knows of it, and places the edit with that.
    for text in ["d", "e"] {
        act(&mut room, &mut ada, |c| c.insert(c.len(), text).expect("fits"));
    }
    let old = r#"{"type": "insert", "id": 5, "revision": 0, "index": 0, "text": "x"}"#;
    let asked = room.handle("ada", old, secs(1));
    assert_eq!(asked, Reply { needs_past: Some(0), ..Reply::default() }, "nothing handled yet");
    let far = r#"{"type": "insert", "revision": 0, "index": 1, "text": "x"}"#;
    let past = crate::Past { revision: 0, next_seq: 1 };
    let (_, outside) = room.handle_with("ada", far, past, secs(1));
    assert_eq!(error_code(&outside).0, ErrorCode::OutOfRange, "the text of revision 0 is empty");
    let (_, placed) = room.handle_with("ada", old, past, secs(1));
    assert_eq!(json(&placed.to_sender[0]), json!({"type": "ack", "id": 5, "revision": 4}));
    assert_eq!(room.text(), "xabcde");
    ada.receive(placed.to_sender[0].clone()).expect_err("not its change in flight");
    let mut ada = join(&mut room, "ada2");
    // And the connection carries on.
    let reply = act(&mut room, &mut ada, |c| c.insert(0, ">").expect("fits"));
    assert_eq!(json(&reply.to_sender[0])["type"], "ack");
    assert_eq!(room.text(), ">xabcde");
}

#[test]
fn a_document_cannot_grow_past_its_limit() {
    let mut room = Room::new("notes", Limits { max_document_chars: 4, ..Limits::default() }, IDLE);
    join(&mut room, "ada");
    let frame = r#"{"type": "insert", "revision": 0, "index": 0, "text": "abcde"}"#;
    assert_eq!(error_code(&room.handle("ada", frame, secs(1))).0, ErrorCode::TooLarge);
}

#[test]
fn ping_is_answered_with_pong() {
    let mut room = room();
    join(&mut room, "ada");
    let reply = room.handle("ada", r#"{"type": "ping", "id": "p"}"#, secs(1));
    assert_eq!(json(&reply.to_sender[0]), json!({"type": "pong", "id": "p"}));
}

#[test]
fn users_go_idle_after_the_threshold_and_come_back_on_activity() {
    let mut room = room();
    join(&mut room, "ada");
    join(&mut room, "bob");
    assert!(room.tick(IDLE - secs(1)).is_empty());
    let idle = room.tick(IDLE);
    assert_eq!(idle.len(), 2);
    assert_eq!(idle[0].except, "ada");
    assert_eq!(json(&idle[0].message)["idle"], true);
    assert!(room.tick(IDLE + secs(1)).is_empty(), "each idle spell is announced once");
    let frame = r#"{"type": "insert", "revision": 0, "index": 0, "text": "x"}"#;
    let reply = room.handle("ada", frame, IDLE + secs(2));
    assert_eq!(json(&reply.to_others[0])["type"], "insert");
    assert_eq!(
        json(&reply.to_others[1]),
        json!({"type": "presence", "client_id": "ada", "name": null, "color": null, "cursor": {"line": 0, "column": 0}, "idle": false})
    );
}

#[test]
fn counters_at_the_extremes_agree_between_client_and_server() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    // Counters stay within the safe integers, which every JSON reader holds exactly.
    let max = (1i64 << 53) - 1;
    act(&mut room, &mut ada, |c| c.increment_counter("n", max));
    for over in [1, i64::MAX] {
        let over = ada.increment_counter("n", over).expect("sent at once");
        let refused = ada.receive(send(&mut room, "ada", &over).to_sender[0].clone());
        assert!(
            matches!(refused, Err(crate::Error::Rejected { code: ErrorCode::TooLarge, .. })),
            "{refused:?}"
        );
    }
    act(&mut room, &mut ada, |c| c.increment_counter("n", -1));
    assert_eq!((ada.counter("n"), room.counter("n")), (max - 1, max - 1));
    act(&mut room, &mut ada, |c| c.increment_counter("n", -2 * max + 1));
    assert_eq!(room.counter("n"), -max);
}

#[test]
fn a_refused_title_is_dropped_and_the_client_carries_on() {
    let mut room = Room::new("notes", Limits { max_field_chars: 4, ..Limits::default() }, IDLE);
    let mut ada = join(&mut room, "ada");
    let long = ada.set_title("far too long").expect("sent at once");
    let insert = ada.insert(0, "x").expect("fits");
    assert!(insert.is_none(), "waits behind the title");
    let reply = send(&mut room, "ada", &long);
    let refused = ada.receive(reply.to_sender[0].clone());
    assert!(
        matches!(refused, Err(crate::Error::Rejected { code: ErrorCode::TooLarge, .. })),
        "{refused:?}"
    );
    assert_eq!(ada.title(), "", "the refused title is gone");
    let next = ada.poll_send().expect("the insert goes out now");
    for answer in send(&mut room, "ada", &next).to_sender {
        ada.receive(answer).expect("accepted");
    }
    assert!(ada.is_synced());
    assert_eq!((ada.text(), room.text()), ("x".to_owned(), "x".to_owned()));
}

#[test]
fn a_refused_text_change_asks_for_a_resync() {
    let mut room = Room::new("notes", Limits { max_document_chars: 2, ..Limits::default() }, IDLE);
    let mut ada = join(&mut room, "ada");
    let insert = ada.insert(0, "abc").expect("fits locally").expect("sent");
    let reply = send(&mut room, "ada", &insert);
    let refused = ada.receive(reply.to_sender[0].clone());
    assert!(
        matches!(refused, Err(crate::Error::Desynced { code: ErrorCode::TooLarge, .. })),
        "{refused:?}"
    );
    // Edits made until the fresh welcome stay local, are not sent, and are reported lost (the
    // refused change itself came with the error).
    assert_eq!(ada.insert(0, "x"), Ok(None));
    assert_eq!(ada.set_title("t"), None);
    assert_eq!(ada.text(), "xabc");
    room.leave("ada");
    let welcome =
        room.join("ada", crate::Seat::default(), secs(2)).expect("joins").to_sender.remove(0);
    match ada.reconnected(welcome) {
        Err(crate::Error::Lost { changes }) => assert_eq!(changes, 2),
        other => panic!("expected the local changes reported lost, got {other:?}"),
    }
    assert_eq!(ada.text(), "");
}

#[test]
fn a_change_refused_as_too_fast_stays_in_flight_and_is_resent_past_a_remote_edit() {
    let mut room = room();
    let (mut ada, mut bob) = (join(&mut room, "ada"), join(&mut room, "bob"));
    let insert = ada.insert(0, "🚀").expect("fits").expect("sent");
    assert_eq!(ada.insert(1, "!"), Ok(None), "waits behind the one in flight");
    let refused = crate::refusal(
        &serde_json::to_string(&insert).expect("serializes"),
        ErrorCode::RateLimited,
        "slow down",
    );
    let id = insert.id().cloned();
    assert_eq!(ada.receive(refused), Err(crate::Error::RateLimited { id }));
    assert!(!ada.is_synced());
    // Someone else's insert comes in meanwhile: the resend is against the new revision.
    let reply = act(&mut room, &mut bob, |c| c.insert(0, ">").expect("fits"));
    for message in reply.to_others {
        ada.receive(message).expect("accepted");
    }
    let resent = ada.resend().expect("the change in flight goes out again");
    let reply = send(&mut room, "ada", &resent);
    let next = ada.receive(reply.to_sender[0].clone()).expect("acked").expect("the buffer");
    for answer in send(&mut room, "ada", &next).to_sender {
        assert_eq!(ada.receive(answer), Ok(None));
    }
    assert!(ada.is_synced());
    // Both inserted at 0: the late one goes first, on both sides.
    assert_eq!((ada.text(), room.text()), ("🚀!>".to_owned(), "🚀!>".to_owned()));
}

#[test]
fn a_delete_cut_into_too_many_pieces_is_refused_as_too_large() {
    let mut room = Room::new("notes", Limits { max_pieces: 3, ..Limits::default() }, IDLE);
    let mut ada = join(&mut room, "ada");
    act(&mut room, &mut ada, |c| c.insert(0, "abcdef").expect("fits"));
    for index in [5, 4, 3, 2, 1] {
        act(&mut room, &mut ada, |c| c.insert(index, "-").expect("fits"));
    }
    let late = r#"{"type": "delete", "revision": 1, "index": 0, "length": 6}"#;
    assert_eq!(error_code(&room.handle("ada", late, secs(1))).0, ErrorCode::TooLarge);
    // Cut into pieces within the limit, a delete is applied piece by piece, acked once.
    let mut room = Room::new("notes", Limits::default(), IDLE);
    let mut ada = join(&mut room, "ada");
    join(&mut room, "bob");
    act(&mut room, &mut ada, |c| c.insert(0, "abcdef").expect("fits"));
    act(&mut room, &mut ada, |c| c.insert(3, "-").expect("fits"));
    let reply = room.handle(
        "bob",
        r#"{"type": "delete", "id": 1, "revision": 1, "index": 0, "length": 6}"#,
        secs(1),
    );
    assert_eq!(json(&reply.to_sender[0]), json!({"type": "ack", "id": 1, "revision": 4}));
    let pieces: Vec<_> = reply.to_others.iter().map(json).collect();
    assert_eq!(
        pieces,
        [
            json!({"type": "delete", "client_id": "bob", "revision": 3, "index": 0, "length": 3}),
            json!({"type": "delete", "client_id": "bob", "revision": 4, "index": 1, "length": 3}),
        ]
    );
    assert_eq!(room.text(), "-");
}

#[test]
fn a_change_from_the_server_that_does_not_fit_changes_nothing() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    let pending = ada.insert(0, "ab").expect("fits");
    assert!(pending.is_some());
    let bogus = ServerMessage::Insert {
        client_id: "x".into(),
        revision: 1,
        index: usize::MAX,
        text: "z".into(),
    };
    assert_eq!(ada.receive(bogus), Err(crate::Error::Diverged));
    assert_eq!((ada.text(), ada.revision()), ("ab".to_owned(), 0));
}

#[test]
fn the_log_and_a_snapshot_rebuild_the_room() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    let mut log = Vec::new();
    let mut snapshot = None;
    type Step = Box<dyn Fn(&mut ThinClient) -> Option<ClientMessage>>;
    let steps: Vec<Step> = vec![
        Box::new(|c| c.insert(0, "héllo world").expect("fits")),
        Box::new(|c| c.set_title("Plans")),
        Box::new(|c| c.delete(1, 4).expect("fits")),
        Box::new(|c| c.increment_counter("likes", 3)),
        Box::new(|c| c.insert(0, ">").expect("fits")),
        Box::new(|c| c.increment_counter("likes", -1)),
    ];
    for (i, step) in steps.iter().enumerate() {
        let reply = act(&mut room, &mut ada, step);
        log.extend(reply.logged);
        if i == 2 {
            snapshot = Some((room.snapshot(), log.len()));
        }
    }
    assert_eq!(log.iter().map(|entry| entry.revision).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let state = |room: &Room| {
        (room.text(), room.title().to_owned(), room.counter("likes"), room.revision())
    };
    let replayed =
        Room::restore("notes", Limits::default(), IDLE, None, log.clone()).expect("restores");
    assert_eq!(state(&replayed), state(&room));
    let (snapshot, covered) = snapshot.expect("taken");
    let resumed =
        Room::restore("notes", Limits::default(), IDLE, Some(snapshot), log[covered..].to_vec())
            .expect("restores");
    assert_eq!(state(&resumed), state(&room));
    assert_eq!(state(&room), (">h world".to_owned(), "Plans".to_owned(), 2, 6));
    // With the log kept behind the snapshot, a client from before the snapshot can resume.
    let mut behind =
        Room::restore("notes", Limits::default(), IDLE, Some(room.snapshot()), log.clone())
            .expect("restores");
    assert_eq!(state(&behind), state(&room));
    assert!(
        behind.resume("ada", crate::Seat::default(), 2, secs(3)).expect("not taken").is_some(),
        "history reaches back past the snapshot"
    );
    let gap = Room::restore("notes", Limits::default(), IDLE, None, log[1..].to_vec());
    assert_eq!(gap.err(), Some(crate::Error::Gap { expected: 1, found: 2 }));
}

#[test]
fn a_resumed_client_that_resends_its_last_change_is_acked_again_not_applied_twice() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    let insert = ada.insert(0, "once").expect("fits").expect("sent");
    let first = send(&mut room, "ada", &insert);
    assert_eq!(json(&first.to_sender[0]), json!({"type": "ack", "id": 1, "revision": 1}));
    // Without a resumed session the same id is a new request (a fresh client may reuse ids).
    room.leave("ada");
    let resumed = super::in_memory(
        room.resume("ada", crate::Seat::default(), 0, secs(2))
            .expect("not taken")
            .expect("history reaches back"),
    );
    let kinds: Vec<_> = resumed.to_sender.iter().map(|m| json(m)["type"].clone()).collect();
    assert_eq!(
        kinds,
        [json!("resumed"), json!("ack")],
        "its own missed change comes back as its ack"
    );
    let again = send(&mut room, "ada", &insert);
    assert_eq!(again.to_sender, first.to_sender, "the same ack");
    assert!(again.logged.is_empty() && again.to_others.is_empty(), "nothing applied");
    assert_eq!((room.text(), room.revision()), ("once".to_owned(), 1));
    // Too far back for the history kept: no resume.
    let mut small = Room::new("notes", Limits { max_history: 1, ..Limits::default() }, IDLE);
    let mut bob = join(&mut small, "bob");
    act(&mut small, &mut bob, |c| c.insert(0, "a").expect("fits"));
    act(&mut small, &mut bob, |c| c.insert(0, "b").expect("fits"));
    assert_eq!(
        small.resume("bob", crate::Seat::default(), 1, secs(1)).err(),
        Some(crate::Error::Taken { client: "bob".into() }),
        "a client in the room cannot come in again"
    );
    small.leave("bob");
    // Too far back for the history in memory: the rest comes from the store.
    let resumed = small.resume("bob", crate::Seat::default(), 0, secs(1)).expect("not taken");
    assert!(
        matches!(&resumed, Some(crate::Resumed::FromStore { since: 0, until: 1, tail, .. }) if tail.len() == 1),
        "{resumed:?}"
    );
    small.leave("bob");
    assert!(small.resume("bob", crate::Seat::default(), 1, secs(1)).expect("not taken").is_some());
}

#[test]
fn a_counter_never_overflows_so_snapshot_and_log_agree() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    let max = (1i64 << 53) - 1;
    act(&mut room, &mut ada, |c| c.increment_counter("n", max));
    let reply = room.handle(
        "ada",
        &format!(r#"{{"type": "increment_counter", "name": "n", "amount": {}}}"#, i64::MAX),
        secs(1),
    );
    assert_eq!(error_code(&reply).0, ErrorCode::TooLarge);
    let snapshot = room.snapshot();
    let mut log = Vec::new();
    log.extend(act(&mut room, &mut ada, |c| c.increment_counter("n", -max)).logged);
    let restored =
        Room::restore("notes", Limits::default(), IDLE, Some(snapshot), log).expect("restores");
    let welcome = |room: &mut Room| {
        json(&room.join("probe", crate::Seat::default(), secs(2)).expect("joins").to_sender[0])["counters"]["n"].clone()
    };
    assert_eq!(welcome(&mut room), json!(0));
    assert_eq!(welcome(&mut { restored }), json!(0));
}

#[test]
fn resume_acks_every_request_once_even_without_ids() {
    let mut room = room();
    join(&mut room, "ada");
    for text in ["a", "b"] {
        let frame = format!(
            r#"{{"type": "insert", "revision": {}, "index": 0, "text": "{text}"}}"#,
            room.revision()
        );
        room.handle("ada", &frame, secs(1));
    }
    room.leave("ada");
    let resumed = super::in_memory(
        room.resume("ada", crate::Seat::default(), 0, secs(2))
            .expect("not taken")
            .expect("history reaches back"),
    );
    let acks = resumed.to_sender.iter().filter(|m| matches!(m, ServerMessage::Ack { .. })).count();
    assert_eq!(acks, 2);
}

#[test]
fn a_long_insert_goes_out_in_pieces_that_the_room_applies_in_order() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    let mut bob = join(&mut room, "bob");
    let text: String = "é😀x".repeat(50_000);
    let mut message = ada.insert(0, &text).expect("fits");
    let mut pieces = Vec::new();
    while let Some(sent) = message.take() {
        if let ClientMessage::Insert { text, .. } = &sent {
            pieces.push(text.chars().count());
        }
        let reply = send(&mut room, "ada", &sent);
        for broadcast in reply.to_others {
            assert!(bob.receive(broadcast).expect("accepted").is_none());
        }
        for answer in reply.to_sender {
            message = ada.receive(answer).expect("accepted");
        }
    }
    assert_eq!(
        pieces,
        [crate::MAX_INSERT_CHARS, crate::MAX_INSERT_CHARS, 150_000 - 2 * crate::MAX_INSERT_CHARS]
    );
    assert!(ada.is_synced());
    assert_eq!((room.text(), room.revision()), (text.clone(), 3));
    assert_eq!((ada.text(), bob.text()), (text.clone(), text));
}

#[test]
fn a_key_given_twice_is_refused_rather_than_the_last_one_winning() {
    let mut room = room();
    join(&mut room, "ada");
    for frame in [
        r#"{"type":"insert","id":3,"revision":0,"index":0,"text":"A","text":"B"}"#,
        r#"{"type":"insert","type":"delete","id":3,"revision":0,"index":0,"length":1}"#,
        r#"{"type":"set_title","id":3,"title":"a","title":"b"}"#,
    ] {
        let reply = room.handle("ada", frame, secs(1));
        let (code, error) = error_code(&reply);
        assert_eq!(code, ErrorCode::InvalidMessage, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("duplicate")), "{error}");
        assert!(reply.logged.is_empty());
    }
    assert_eq!((room.text(), room.title(), room.revision()), (String::new(), "", 0));
}

#[test]
fn numeric_ids_are_echoed_exactly_and_unsafe_ones_refused() {
    let mut room = room();
    join(&mut room, "ada");
    for id in ["9007199254740991", "-9007199254740991", "0", "\"any text\""] {
        let reply = room.handle("ada", &format!(r#"{{"type":"ping","id":{id}}}"#), secs(1));
        let pong = reply.to_sender[0].to_json();
        assert_eq!(pong.to_string(), format!(r#"{{"type":"pong","id":{id}}}"#));
    }
    for id in ["9007199254740992", "18446744073709551616", "1.5", "1e3", "-9007199254740992"] {
        let reply = room.handle("ada", &format!(r#"{{"type":"ping","id":{id}}}"#), secs(1));
        let (code, error) = error_code(&reply);
        assert_eq!(code, ErrorCode::InvalidMessage, "{id}");
        assert_eq!(
            error.get("id"),
            None,
            "an id that cannot be held exactly is not echoed: {error}"
        );
    }
}

#[test]
fn a_read_only_client_reads_and_moves_its_caret_but_changes_nothing() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    act(&mut room, &mut ada, |c| c.insert(0, "hello").expect("fits"));
    let welcome = room.join("rex", crate::Seat::reader(0), secs(1)).expect("joins");
    assert!(
        matches!(&welcome.to_sender[0], ServerMessage::Welcome { text, .. } if text == "hello")
    );
    for frame in [
        r#"{"type":"insert","id":1,"revision":1,"index":0,"text":"x"}"#,
        r#"{"type":"delete","id":2,"revision":1,"index":0,"length":1}"#,
        r#"{"type":"set_title","id":3,"title":"mine"}"#,
        r#"{"type":"increment_counter","id":4,"name":"likes","amount":1}"#,
    ] {
        let reply = room.handle("rex", frame, secs(2));
        let (code, error) = error_code(&reply);
        assert_eq!(code, ErrorCode::Forbidden, "{frame}");
        assert!(error["id"].is_number(), "the id is echoed: {error}");
        assert!(reply.to_others.is_empty() && reply.logged.is_empty());
    }
    // Presence and pings are fine.
    let moved = room.handle("rex", r#"{"type":"cursor_move","line":0,"column":2}"#, secs(3));
    assert_eq!(moved.to_others.len(), 1);
    let pong = room.handle("rex", r#"{"type":"ping","id":5}"#, secs(3));
    assert!(matches!(pong.to_sender[0], ServerMessage::Pong { .. }));
    assert_eq!(
        (room.text(), room.title(), room.counter("likes"), room.revision()),
        ("hello".to_owned(), "", 0, 1)
    );
    // The mark goes with the connection: the same id joining again with write access writes.
    room.leave("rex");
    let mut rex = join(&mut room, "rex");
    act(&mut room, &mut rex, |c| c.insert(5, "!").expect("fits"));
    assert_eq!(room.text(), "hello!");
}

#[test]
fn a_document_has_a_bounded_number_of_counters() {
    let mut room = Room::new("notes", Limits { max_counters: 3, ..Limits::default() }, IDLE);
    join(&mut room, "ada");
    for name in ["a", "b", "c", "a"] {
        let frame = format!(r#"{{"type":"increment_counter","name":"{name}","amount":1}}"#);
        assert!(matches!(
            room.handle("ada", &frame, secs(1)).to_sender[0],
            ServerMessage::Ack { .. }
        ));
    }
    let reply =
        room.handle("ada", r#"{"type":"increment_counter","name":"d","amount":1}"#, secs(1));
    assert_eq!(error_code(&reply).0, ErrorCode::TooLarge);
    assert_eq!((room.counter("a"), room.counter("d"), room.revision()), (2, 0, 4));
}

#[test]
fn a_client_that_resumes_across_its_own_restore_gets_the_restore_as_changes() {
    let mut room = room();
    let mut ada = join(&mut room, "ada");
    act(&mut room, &mut ada, |c| c.insert(0, "hello").expect("fits"));
    act(&mut room, &mut ada, |c| c.insert(5, " world").expect("fits"));
    // Ada asks for the restore, and her connection drops before she hears of it.
    let reply = room.restore_text("ada", Some(9.into()), "v1", "hello", secs(2));
    assert_eq!(reply.logged[0].author, crate::RESTORER, "not hers: everyone's");
    room.leave("ada");
    let resumed = super::in_memory(
        room.resume("ada", crate::Seat::default(), 2, secs(3)).expect("not taken").expect("known"),
    );
    assert!(ada.reconnected(resumed.to_sender[0].clone()).expect("resumes").is_none());
    for message in &resumed.to_sender[1..] {
        assert!(!matches!(message, ServerMessage::Ack { .. }), "{message:?}");
        ada.receive(message.clone()).expect("a change");
    }
    assert_eq!((ada.text(), room.text()), ("hello".to_owned(), "hello".to_owned()));
}
