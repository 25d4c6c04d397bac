//! WebSocket connections: the upgrade, a registry of the live ones, and their lifecycle.
//!
//! Like lsp-server, this crate is a scaffold that knows nothing of what travels over it: it
//! checks an HTTP upgrade request ([`upgrade::accept_key`]), registers each connection in a
//! [`Pool`] under an id of its own, runs it (frames in to a handler, queued messages out), pings
//! every connection and reaps the silent ones, and closes them with the right RFC 6455 code.
//! Who is in which document, and what a frame means, is the caller's business: documents,
//! messages and JSON are unknown here.
//!
//! Every connection has a bounded outgoing queue: a client that stops reading is disconnected
//! when its queue is full, so it neither grows memory nor stalls the others.

mod connection;
mod error;
mod pool;
pub mod upgrade;

pub use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub use crate::{
    connection::{Closed, Connection, Frame},
    error::Error,
    pool::{ConnectionId, Handle, Pool},
};

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Connection settings. Their defaults are the server's: written here once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How often every connection is pinged.
    pub heartbeat_interval: Duration,
    /// How long a connection may stay silent before the reaper closes it (time spent handling
    /// one of its frames does not count: the server is the one not reading then), and how long
    /// a message may take to be written to it before it is closed as a slow consumer.
    pub heartbeat_timeout: Duration,
    /// How many outgoing messages may wait for a slow client before it is disconnected.
    pub queue_capacity: usize,
    /// How many bytes of outgoing messages may wait for a slow client before it is
    /// disconnected (one message of any size is let in to an empty queue, within
    /// `total_queue_bytes`).
    pub queue_bytes: usize,
    /// How many bytes of outgoing messages may wait in all the queues together: past it, a
    /// message that does not fit closes its connection as a slow consumer, so that clients
    /// that do not read cannot together hold more memory than this.
    pub total_queue_bytes: usize,
    /// The largest incoming message; a larger one closes the connection with code 1009.
    pub max_message_bytes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            queue_capacity: 1024,
            queue_bytes: 16 << 20,
            total_queue_bytes: 1 << 30,
            max_message_bytes: 1 << 20,
        }
    }
}

impl Config {
    /// The WebSocket settings for these limits. Buffers start small (tungstenite's default read
    /// buffer of 128 KiB per connection is far too much for many idle connections) and grow
    /// only for large messages.
    fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

#[cfg(test)]
mod tests;
