//! Tests of the protocol: the transform, the room's handling of every message, and thin clients
//! converging through a room under random interleavings.

mod cluster;
mod docs;
mod fuzz;
mod memory;
mod ot;
mod place;
mod room;
mod sim;
mod vectors;

use std::time::Duration;

use crate::{Limits, Room, ServerMessage, ThinClient};

const IDLE: Duration = Duration::from_secs(300);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn room() -> Room {
    Room::new("notes", Limits::default(), IDLE)
}

/// Joins `client` and builds its thin client from the welcome.
fn join(room: &mut Room, client: &str) -> ThinClient {
    let reply = room.join(client, crate::Seat::default(), secs(0)).expect("joins");
    let welcome = reply.to_sender.into_iter().next().expect("a welcome");
    ThinClient::new(welcome).expect("starts from a welcome")
}

/// The reply of a resume served from the history in memory.
fn in_memory(resumed: crate::Resumed) -> crate::Reply {
    match resumed {
        crate::Resumed::Reply(reply) => reply,
        other => panic!("expected a resume from memory, got {other:?}"),
    }
}

fn json(message: &ServerMessage) -> serde_json::Value {
    serde_json::to_value(message).expect("serializes")
}
