//! Editing over real sockets: welcome, acks, broadcasts, presence and the ABCD case.

use serde_json::json;
use tandem_protocol::{ClientMessage, ErrorCode, RequestId, ServerMessage};

use crate::support::TestServer;

fn to_json(message: &ServerMessage) -> serde_json::Value {
    serde_json::to_value(message).expect("serializes")
}

#[tokio::test]
async fn the_welcome_holds_the_document_and_who_is_in_it() {
    let server = TestServer::start().await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "ABCD").expect("fits")).await;
    ada.act(|c| c.set_title("Plans")).await;
    ada.act(|c| c.increment_counter("likes", 2)).await;
    ada.sync().await;
    ada.send(&ClientMessage::PresenceUpdate {
        id: None,
        name: Some("Ada".into()),
        color: Some("#e11d48".into()),
    })
    .await;
    ada.send(&ClientMessage::CursorMove { id: None, line: 0, column: 3 }).await;
    ada.send(&ClientMessage::Ping { id: None }).await;
    ada.until(|m| matches!(m, ServerMessage::Pong { .. })).await;
    let bob = server.connect("notes").await;
    let users: Vec<serde_json::Value> =
        bob.thin.users().map(|u| serde_json::to_value(u).expect("serializes")).collect();
    assert_eq!(
        (bob.thin.text(), bob.thin.title(), bob.thin.counter("likes"), bob.thin.revision()),
        ("ABCD".to_owned(), "Plans", 2, 3)
    );
    assert_eq!(bob.thin.doc(), "notes");
    assert_ne!(bob.id(), ada.id());
    assert_eq!(
        users,
        [
            json!({"client_id": ada.id(), "name": "Ada", "color": "#e11d48", "cursor": {"line": 0, "column": 3}, "idle": false})
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn changes_are_acked_to_the_sender_and_broadcast_to_the_others_only() {
    let server = TestServer::start().await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    ada.act(|c| c.insert(0, "héllo").expect("fits")).await;
    assert_eq!(to_json(&ada.pump().await), json!({"type": "ack", "id": 1, "revision": 1}));
    assert_eq!(
        to_json(&bob.pump().await),
        json!({"type": "insert", "client_id": ada.id(), "revision": 1, "index": 0, "text": "héllo"})
    );
    ada.act(|c| c.delete(1, 1).expect("fits")).await;
    ada.act(|c| c.set_title("T")).await;
    ada.act(|c| c.increment_counter("n", -2)).await;
    ada.sync().await;
    assert_eq!(
        to_json(&bob.pump().await),
        json!({"type": "delete", "client_id": ada.id(), "revision": 2, "index": 1, "length": 1})
    );
    assert_eq!(
        to_json(&bob.pump().await),
        json!({"type": "set_title", "client_id": ada.id(), "revision": 3, "title": "T"})
    );
    assert_eq!(
        to_json(&bob.pump().await),
        json!({"type": "increment_counter", "client_id": ada.id(), "revision": 4, "name": "n", "amount": -2, "value": -2})
    );
    // Ada never got her own changes back: the next thing she hears is the answer to a ping.
    ada.send(&ClientMessage::Ping { id: Some(9.into()) }).await;
    assert_eq!(to_json(&ada.recv().await), json!({"type": "pong", "id": 9}));
    assert_eq!(
        (bob.thin.text(), bob.thin.title(), bob.thin.counter("n")),
        ("hllo".to_owned(), "T", -2)
    );
    assert_eq!(server.document("notes").await, ("hllo".to_owned(), 4));
    server.shutdown().await;
}

#[tokio::test]
async fn presence_join_cursor_update_and_leave_reach_the_others() {
    let server = TestServer::start().await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    let joined = to_json(&ada.pump().await);
    assert_eq!(
        joined,
        json!({"type": "presence", "client_id": bob.id(), "name": null, "color": null, "cursor": {"line": 0, "column": 0}, "idle": false})
    );
    bob.send(&ClientMessage::CursorMove { id: None, line: 1, column: 2 }).await;
    assert_eq!(to_json(&ada.pump().await)["cursor"], json!({"line": 1, "column": 2}));
    bob.send(&ClientMessage::PresenceUpdate { id: None, name: Some("Bob".into()), color: None })
        .await;
    let updated = to_json(&ada.pump().await);
    assert_eq!(
        (updated["name"].clone(), updated["cursor"]["line"].clone()),
        (json!("Bob"), json!(1))
    );
    let bob_id = bob.id();
    drop(bob);
    assert_eq!(to_json(&ada.pump().await), json!({"type": "leave", "client_id": bob_id}));
    assert_eq!(ada.thin.users().count(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn abcd_converges_to_acxd_whichever_op_arrives_first() {
    for insert_first in [true, false] {
        let server = TestServer::start().await;
        let mut setup = server.connect("notes").await;
        setup.act(|c| c.insert(0, "ABCD").expect("fits")).await;
        setup.sync().await;
        let mut one = server.connect("notes").await;
        let mut two = server.connect("notes").await;
        assert_eq!((one.thin.text(), two.thin.text()), ("ABCD".to_owned(), "ABCD".to_owned()));
        // Both edit revision 1 before either hears of the other's edit.
        let insert = one.thin.insert(3, "X").expect("fits").expect("sent at once");
        let delete = two.thin.delete(1, 1).expect("fits").expect("sent at once");
        let (first, second) = if insert_first {
            ((&mut one, insert), (&mut two, delete))
        } else {
            ((&mut two, delete), (&mut one, insert))
        };
        first.0.send(&first.1).await;
        first.0.until(|m| matches!(m, ServerMessage::Ack { .. })).await;
        second.0.send(&second.1).await;
        second.0.until(|m| matches!(m, ServerMessage::Ack { .. })).await;
        for client in [&mut one, &mut two] {
            client.catch_up(3).await;
        }
        assert_eq!(
            (one.thin.text(), two.thin.text()),
            ("ACXD".to_owned(), "ACXD".to_owned()),
            "insert first: {insert_first}"
        );
        assert_eq!(server.document("notes").await, ("ACXD".to_owned(), 3));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_edit_made_at_a_revision_long_gone_from_memory_is_placed_and_acked() {
    let server = TestServer::start_with(|config| config.limits.max_history = 10).await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "hello 🌍").expect("fits")).await;
    ada.sync().await;
    for _ in 0..50 {
        ada.act(|c| c.insert(c.len(), ".").expect("fits")).await;
        ada.sync().await;
    }
    ada.act(|c| c.delete(0, 1).expect("fits")).await;
    ada.sync().await;
    // Typed at revision 1, after "hello": it lands there, before what was typed there since.
    let mut bob = server.connect("notes").await;
    bob.send_text(r#"{"type":"insert","id":"late","revision":1,"index":5,"text":"!"}"#).await;
    let ack = bob.answer().await;
    assert!(
        matches!(&ack, ServerMessage::Ack { id: Some(RequestId::String(id)), revision: 53, .. } if id == "late"),
        "{ack:?}"
    );
    let (text, _) = server.document("notes").await;
    assert_eq!(text, format!("ello! 🌍{}", ".".repeat(50)));
    // Deleting "hello" as it was at revision 1 takes only what is left of it.
    bob.send_text(r#"{"type":"delete","revision":1,"index":0,"length":5}"#).await;
    let ack = bob.answer().await;
    assert!(matches!(ack, ServerMessage::Ack { revision: 54, .. }), "{ack:?}");
    assert_eq!(server.document("notes").await.0, format!("! 🌍{}", ".".repeat(50)));
    // A revision the document never had is still stale.
    bob.send_text(r#"{"type":"insert","revision":999,"index":0,"text":"x"}"#).await;
    let refused = bob.answer().await;
    assert!(
        matches!(refused, ServerMessage::Error { code: ErrorCode::StaleRevision, .. }),
        "{refused:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn edits_from_far_back_beyond_the_documents_allowance_are_rate_limited() {
    let server = TestServer::start_with(|config| config.limits.max_history = 10).await;
    let mut ada = server.connect("notes").await;
    for _ in 0..30 {
        ada.act(|c| c.insert(c.len(), "a").expect("fits")).await;
        ada.sync().await;
    }
    // A hundred edits from revision 1 at once: each costs a pass over the structure, so the
    // document places a burst of them and refuses the rest, changing nothing for those.
    let mut bob = server.connect("notes").await;
    for n in 0..100 {
        let frame = format!(r#"{{"type":"insert","id":{n},"revision":1,"index":1,"text":"b"}}"#);
        bob.send_text(&frame).await;
    }
    let (mut acked, mut limited) = (0, 0);
    for _ in 0..100 {
        match bob.answer().await {
            ServerMessage::Ack { .. } => acked += 1,
            ServerMessage::Error { code: ErrorCode::RateLimited, .. } => limited += 1,
            other => panic!("expected an ack or rate_limited, got {other:?}"),
        }
    }
    assert!(acked >= 40, "the burst is placed: {acked}");
    assert!(limited > 0, "a hundred at once are not all placed");
    let (text, _) = server.document("notes").await;
    assert_eq!(text.matches('b').count(), acked, "each acked edit once, the refused ones not");
    // Edits at recent revisions are not limited by it.
    let (_, head) = server.document("notes").await;
    ada.catch_up(head).await;
    ada.act(|c| c.insert(0, "c").expect("fits")).await;
    ada.sync().await;
    assert_eq!(server.document("notes").await.0, format!("c{text}"));
    server.shutdown().await;
}
