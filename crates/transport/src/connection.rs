//! One connection's run: the reader, the writer task, and why it ended.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self,
        error::{CapacityError, ProtocolError},
        protocol::{CloseFrame, Role, frame::coding::CloseCode},
    },
};

use crate::{ConnectionId, Handle, Message, Pool, Utf8Bytes, pool::Shared};

/// How long a closing connection may take to send its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// An incoming data frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it or the socket ended.
    ByPeer,
    /// The client sent a message over the size limit (closed with 1009).
    TooLarge,
    /// The client sent a text message that is not UTF-8 (closed with 1007).
    InvalidUtf8,
    /// The client broke the WebSocket protocol: an unmasked frame, reserved bits, a control
    /// frame fragmented or over 125 bytes, an unknown opcode (closed with 1002).
    ProtocolViolation(String),
    /// The server closed it for breaking its policy (closed with 1008), for the reason given.
    Policy(&'static str),
    /// The client was silent past the heartbeat timeout.
    Reaped,
    /// The client's outgoing queue was full (closed with 1008).
    SlowConsumer,
    /// The server is shutting down (closed with 1001).
    Shutdown,
    /// The connection failed.
    Failed(String),
}

impl Closed {
    fn frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Closed::TooLarge => (CloseCode::Size, "message too big"),
            Closed::InvalidUtf8 => (CloseCode::Invalid, "text is not UTF-8"),
            Closed::ProtocolViolation(_) => (CloseCode::Protocol, "protocol error"),
            Closed::Policy(reason) => (CloseCode::Policy, *reason),
            Closed::Reaped => (CloseCode::Away, "heartbeat timeout"),
            Closed::SlowConsumer => (CloseCode::Policy, "outgoing queue full"),
            Closed::Shutdown => (CloseCode::Away, "server shutting down"),
            Closed::ByPeer | Closed::Failed(_) => return None,
        };
        Some(CloseFrame { code, reason: reason.into() })
    }
}

/// A registered connection, before and while it runs. Dropping it unregisters it.
#[derive(Debug)]
pub struct Connection {
    pool: Pool,
    shared: Arc<Shared>,
    receiver: Option<mpsc::Receiver<Message>>,
}

impl Connection {
    pub(crate) fn new(
        pool: Pool,
        shared: Arc<Shared>,
        receiver: mpsc::Receiver<Message>,
    ) -> Connection {
        Connection { pool, shared, receiver: Some(receiver) }
    }

    pub fn id(&self) -> ConnectionId {
        self.shared.id
    }

    /// A handle to queue messages for this connection (before it runs too) or to close it.
    pub fn handle(&self) -> Handle {
        Handle(Arc::clone(&self.shared))
    }

    /// Speaks WebSocket (the server's side) over `io`, a stream whose upgrade has been
    /// answered, until the connection ends: queued messages go out, and every incoming data
    /// frame goes to `on_frame`, whose future is awaited before the next frame is read (so a
    /// handler that waits, for room in a queue say, holds the client back: backpressure).
    /// Returns why it ended. The connection stays registered until it is dropped, so the
    /// caller can take it out of whatever it belongs to and unregister it in one step.
    pub async fn run<S, F>(&mut self, io: S, mut on_frame: impl FnMut(Frame) -> F) -> Closed
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: std::future::Future<Output = ()>,
    {
        let Some(mut receiver) = self.receiver.take() else {
            return Closed::Failed("already run".into());
        };
        let config = self.pool.inner.config.websocket();
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let (mut sink, mut stream) = socket.split();
        let (close_sender, mut close_receiver) = oneshot::channel::<Option<CloseFrame>>();
        let queue = Arc::clone(&self.shared);
        // A message that cannot be written for this long (the client reads nothing) ends the
        // connection, so that it cannot hold its queue's memory for ever.
        let stall = self.pool.inner.config.heartbeat_timeout;
        let writer = tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Some(message) => {
                            let len = message.len() as isize;
                            let sent = tokio::time::timeout(stall, sink.send(message)).await;
                            queue.count(-len);
                            queue.drained.notify_waiters();
                            match sent {
                                Ok(Ok(())) => {}
                                Ok(Err(_)) => return,
                                Err(_) => {
                                    queue.stalled();
                                    return;
                                }
                            }
                        }
                        None => return,
                    },
                    frame = &mut close_receiver => {
                        match frame {
                            Ok(Some(frame)) => {
                                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
                            }
                            // The peer closed: flush the reply tungstenite queued to its close.
                            _ => {
                                let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                            }
                        }
                        return;
                    }
                }
            }
        });
        let shared = Arc::clone(&self.shared);
        let closed = loop {
            let frame = tokio::select! {
                incoming = stream.next() => {
                    shared.last_seen.store(self.pool.now_ms(), Ordering::Relaxed);
                    match incoming {
                        Some(Ok(Message::Text(text))) => Frame::Text(text),
                        Some(Ok(Message::Binary(_))) => Frame::Binary,
                        Some(Ok(Message::Close(_))) | None => break Closed::ByPeer,
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        Some(Err(error)) => break closed_by(error),
                    }
                }
                _ = shared.close.notified() => break shared.close_reason(),
            };
            shared.handling.store(true, Ordering::Relaxed);
            on_frame(frame).await;
            shared.last_seen.store(self.pool.now_ms(), Ordering::Relaxed);
            shared.handling.store(false, Ordering::Relaxed);
        };
        let _ = close_sender.send(closed.frame());
        let mut writer = writer;
        if tokio::time::timeout(CLOSE_GRACE * 2, &mut writer).await.is_err() {
            writer.abort();
        }
        closed
    }
}

/// Why a read error ends the connection.
fn closed_by(error: tungstenite::Error) -> Closed {
    match error {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => Closed::TooLarge,
        tungstenite::Error::Utf8(_) => Closed::InvalidUtf8,
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Closed::ByPeer,
        tungstenite::Error::Protocol(error) => Closed::ProtocolViolation(error.to_string()),
        error => Closed::Failed(error.to_string()),
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.pool.unregister(self.shared.id);
        // Nothing more gets in (the queue's receiver is gone); what waited is freed.
        self.receiver.take();
        self.shared.forget_queued();
    }
}
