//! Bad input over real sockets: each gets the right error (or close code), and the server and
//! the other clients carry on.

use futures_util::SinkExt;
use tandem_protocol::{ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::support::{TestServer, within};

fn code(message: &ServerMessage) -> ErrorCode {
    match message {
        ServerMessage::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_of_bad_input_gets_its_error_and_nothing_breaks() {
    let server = TestServer::start_with(|config| config.transport.max_message_bytes = 4096).await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    ada.act(|c| c.insert(0, "abc").expect("fits")).await;
    ada.sync().await;
    bob.catch_up(1).await;
    let cases = [
        (r#"{"type": "insert", "#, ErrorCode::InvalidJson),
        (r#"{"type": "teleport", "id": 1}"#, ErrorCode::InvalidMessage),
        (r#"{"type": "delete", "id": 2, "revision": 1, "index": 0}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type": "insert", "id": 3, "revision": "one", "index": 0, "text": "x"}"#,
            ErrorCode::InvalidMessage,
        ),
        (
            r#"{"type": "insert", "id": 4, "revision": 1, "index": 9, "text": "x"}"#,
            ErrorCode::OutOfRange,
        ),
        (
            r#"{"type": "insert", "id": 5, "revision": 7, "index": 0, "text": "x"}"#,
            ErrorCode::StaleRevision,
        ),
    ];
    for (frame, expected) in cases {
        bob.send_text(frame).await;
        assert_eq!(code(&bob.recv().await), expected, "{frame}");
    }
    within(bob.socket.send(Message::binary(vec![1, 2, 3]))).await.expect("sends");
    assert_eq!(code(&bob.recv().await), ErrorCode::InvalidMessage);
    // Bob's connection still works, and nobody else heard about his mistakes.
    bob.act(|c| c.insert(3, "!").expect("fits")).await;
    bob.sync().await;
    let change = ada.pump().await;
    assert!(matches!(change, ServerMessage::Insert { revision: 2, .. }), "{change:?}");
    // An oversized message closes the sender's connection with 1009; the others carry on.
    bob.send_text(&"x".repeat(5000)).await;
    assert_eq!(bob.close_code().await, CloseCode::Size);
    let left = ada.pump().await;
    assert!(matches!(left, ServerMessage::Leave { .. }), "{left:?}");
    ada.act(|c| c.insert(0, ">").expect("fits")).await;
    ada.sync().await;
    assert_eq!(server.document("notes").await, (">abc!".to_owned(), 3));
    server.shutdown().await;
}
