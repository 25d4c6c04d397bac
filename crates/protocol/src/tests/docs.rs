//! docs/protocol.md stays true: every JSON example on it decodes as a message and encodes back
//! to the same JSON, and every message type has an example.

use std::collections::BTreeSet;

use serde::{Serialize, de::DeserializeOwned};

use crate::{ClientMessage, ServerMessage};

/// Whether `line` decodes as a `T` that encodes back to the same JSON.
fn round_trips<T: DeserializeOwned + Serialize>(line: &str) -> bool {
    let value: serde_json::Value = serde_json::from_str(line).expect("examples are JSON");
    serde_json::from_value::<T>(value.clone())
        .is_ok_and(|message| serde_json::to_value(message).expect("serializes") == value)
}

#[test]
fn every_example_in_protocol_md_is_a_message_and_every_message_has_one() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md"))
            .expect("docs/protocol.md is readable");
    let mut in_json = false;
    let (mut client, mut server) = (BTreeSet::new(), BTreeSet::new());
    for line in doc.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            example if in_json && !example.is_empty() => {
                let value: serde_json::Value =
                    serde_json::from_str(example).expect("examples are JSON");
                let kind = value["type"].as_str().expect("examples have a type").to_owned();
                if round_trips::<ClientMessage>(example) {
                    client.insert(kind);
                } else if round_trips::<ServerMessage>(example) {
                    server.insert(kind);
                } else {
                    panic!("not a message, or does not round-trip: {example}");
                }
            }
            _ => {}
        }
    }
    let expected_client = [
        "cursor_move",
        "delete",
        "increment_counter",
        "insert",
        "ping",
        "presence_update",
        "set_title",
    ];
    let expected_server = [
        "ack",
        "delete",
        "error",
        "increment_counter",
        "insert",
        "leave",
        "pong",
        "presence",
        "resumed",
        "set_title",
        "welcome",
    ];
    assert_eq!(
        client,
        expected_client.map(String::from).into(),
        "client messages without an example"
    );
    assert_eq!(
        server,
        expected_server.map(String::from).into(),
        "server messages without an example"
    );
}
