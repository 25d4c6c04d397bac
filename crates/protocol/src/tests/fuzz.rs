//! The room's frame handler against hostile input: arbitrary bytes, and near-valid messages
//! (known types with fields missing, doubled, of the wrong JSON type, out of range, or huge).
//! Nothing panics; a refused frame changes nothing and reaches no one; an accepted one keeps a
//! watching client equal to the room.
//!
//! `cargo test` runs 2,000 cases; `cargo xtask fuzz` runs a million (PROPTEST_CASES).

use proptest::prelude::*;

use super::{join, secs};
use crate::{Limits, Room, ServerMessage};

const TYPES: &[&str] = &[
    "insert",
    "delete",
    "set_title",
    "increment_counter",
    "cursor_move",
    "presence_update",
    "ping",
    "welcome",
    "ack",
    "",
];
const FIELDS: &[&str] = &[
    "id", "revision", "index", "text", "length", "title", "name", "amount", "line", "column",
    "color", "type", "extra",
];

/// A JSON value of any type, small or extreme.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..12).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("9007199254740993".to_owned()),
        Just("-0".to_owned()),
        Just("1.5e300".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        "[a-z😀\u{301}\n\"\\\\]{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
        Just("\"\\ud800\"".to_owned()),
        Just(format!("\"{}\"", "x".repeat(300))),
        Just("\"#e11d48\"".to_owned()),
    ]
}

/// A near-valid message: a known type (mostly), fields picked at random, some twice.
fn message() -> impl Strategy<Value = String> {
    (
        prop::sample::select(TYPES),
        prop::collection::vec((prop::sample::select(FIELDS), value()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut frame = format!(r#"{{"type":"{kind}""#);
            for (field, value) in fields {
                frame.push_str(&format!(r#","{field}":{value}"#));
            }
            frame.push('}');
            frame
        })
}

/// A valid message of each kind, small enough to apply often, with at times one field's value
/// swapped for any value, or one field given twice.
fn mutated() -> impl Strategy<Value = String> {
    let text = "[a-z😀é\n]{1,4}".prop_map(|s| serde_json::Value::String(s).to_string());
    let valid = (0u64..4, 0u64..8, 1u64..4, text.clone(), -3i64..4).prop_map(|(r, i, n, t, a)| {
        vec![
            format!(r#""type":"insert","id":1,"revision":{r},"index":{i},"text":{t}"#),
            format!(r#""type":"delete","id":2,"revision":{r},"index":{i},"length":{n}"#),
            format!(r#""type":"set_title","id":3,"title":{t}"#),
            format!(r#""type":"increment_counter","id":4,"name":"likes","amount":{a}"#),
            format!(r#""type":"cursor_move","line":{n},"column":{i}"#),
            format!(r##""type":"presence_update","name":{t},"color":"#abc""##),
            r#""type":"ping","id":"p""#.to_owned(),
        ]
    });
    (valid, 0usize..7, 0u8..4, value()).prop_map(|(templates, which, how, other)| {
        let body = &templates[which];
        let fields: Vec<&str> = body.split(',').collect();
        let mutated = match how {
            // As it is.
            0 | 1 => body.clone(),
            // One field's value replaced.
            2 => {
                let at = fields.len() - 1;
                let (name, _) = fields[at].split_once(':').unwrap_or((fields[at], ""));
                let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
                fields[at] = format!("{name}:{other}");
                fields.join(",")
            }
            // The last field given twice.
            _ => format!("{body},{}", fields[fields.len() - 1]),
        };
        format!("{{{mutated}}}")
    })
}

/// Any frame: near-valid messages, and bytes that are barely JSON or not at all.
fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => mutated(),
        3 => message(),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        1 => "[\\[\\]{}\":,0-9a-z ]{0,30}",
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hostile_frames_never_panic_and_refused_ones_change_nothing(frames in prop::collection::vec(frame(), 1..8)) {
        let limits = Limits { max_field_chars: 64, max_document_chars: 200, ..Limits::default() };
        let mut room = Room::new("fuzz", limits, std::time::Duration::from_secs(300));
        let mut ada = join(&mut room, "ada");
        room.join("bob", crate::Seat::default(), secs(0)).expect("joins");
        for frame in &frames {
            let before = (room.text(), room.title().to_owned(), room.counter("likes"), room.revision());
            let reply = room.handle("bob", frame, secs(1));
            let refused = matches!(reply.to_sender.as_slice(), [ServerMessage::Error { .. }]);
            if refused {
                let after = (room.text(), room.title().to_owned(), room.counter("likes"), room.revision());
                prop_assert_eq!(&after, &before, "refused {:?} changed the room", frame);
                prop_assert!(reply.to_others.is_empty() && reply.logged.is_empty(), "refused {:?} reached others", frame);
            }
            for message in reply.to_others {
                let answered = ada.receive(message.clone());
                prop_assert!(answered.is_ok(), "ada refused {:?} after {:?}: {:?}", message, frame, answered);
            }
            prop_assert_eq!(ada.text(), room.text(), "ada diverged after {:?}", frame);
            prop_assert_eq!(ada.revision(), room.revision());
        }
    }
}
