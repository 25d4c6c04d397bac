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
    let (expected_client, expected_server) = (kinds::<ClientMessage>(), kinds::<ServerMessage>());
    assert_eq!(client, expected_client, "client messages without an example");
    assert_eq!(server, expected_server, "server messages without an example");
}

/// Every `type` a message enum has, as serde knows them: decoding an unknown type fails with
/// a list of the known ones, so a new variant is in the list without anyone writing it down.
fn kinds<T: DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let error = serde_json::from_str::<T>(r#"{"type":"?"}"#).expect_err("no such type");
    let message = error.to_string();
    let (_, expected) = message.split_once("expected one of ").expect("serde lists the types");
    let kinds: BTreeSet<String> =
        expected.split(", ").filter_map(|kind| kind.split('`').nth(1)).map(String::from).collect();
    assert!(kinds.len() > 5, "read the types from {message:?}");
    kinds
}

#[test]
fn the_types_are_read_from_the_enums() {
    let client = kinds::<ClientMessage>();
    assert!(client.contains("insert") && client.contains("presence_update"), "{client:?}");
    assert!(kinds::<ServerMessage>().contains("welcome"));
    assert!(!client.contains("welcome"));
}
