//! Tests of the pool and of connections, over in-memory streams speaking real WebSocket
//! frames. Nothing here knows of documents: connections are ids.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::{io::DuplexStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        http::{HeaderMap, HeaderValue},
        protocol::{Role, frame::coding::CloseCode},
    },
};

use crate::{Closed, Config, Error, Frame, Handle, Message, Pool, upgrade};

/// A test must finish well within this; it guards against hangs, it never synchronises.
const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<DuplexStream>;

fn config() -> Config {
    Config { max_message_bytes: 64, ..Config::default() }
}

/// Registers a connection and runs it; returns its handle, the client's end, the frames the
/// server saw, and the task that ends with why the connection closed.
async fn connect(
    pool: &Pool,
    buffer: usize,
) -> (Handle, Socket, mpsc::UnboundedReceiver<Frame>, JoinHandle<Closed>) {
    let (server_io, client_io) = tokio::io::duplex(buffer);
    let client_end = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let mut connection = pool.register();
    let handle = connection.handle();
    let (frames, seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        connection
            .run(server_io, move |frame| {
                let _ = frames.send(frame);
                std::future::ready(())
            })
            .await
    });
    (handle, client_end, seen, task)
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.expect("in time") {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn close_code(socket: &mut Socket) -> CloseCode {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await.expect("in time") {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn ended(task: JoinHandle<Closed>) -> Closed {
    tokio::time::timeout(PATIENCE, task).await.expect("in time").expect("task ran")
}

#[tokio::test]
async fn connections_get_fresh_ids_and_are_unregistered_when_dropped() {
    let pool = Pool::new(config());
    let (first, second) = (pool.register(), pool.register());
    assert_ne!(first.id(), second.id());
    assert_eq!(pool.connections(), 2);
    let (id, handle) = (first.id(), first.handle());
    assert!(handle.send(Message::text("queued before it runs")));
    drop(first);
    assert_eq!(pool.connections(), 1);
    assert!(pool.handle(id).is_none(), "a dropped connection is gone from the registry");
    assert!(!handle.send(Message::text("too late")), "an old handle reaches nothing");
    let third = pool.register();
    assert!(third.id() != id && third.id() != second.id(), "ids are never reused");
    assert_eq!(pool.handle(third.id()).map(|handle| handle.id()), Some(third.id()));
}

#[tokio::test]
async fn messages_reach_their_connection_only_and_frames_reach_the_handler() {
    let pool = Pool::new(config());
    let (ada, mut ada_end, mut ada_frames, _) = connect(&pool, 4096).await;
    let (bob, mut bob_end, _, _) = connect(&pool, 4096).await;
    assert!(pool.handle(bob.id()).expect("live").send(Message::text("for bob")));
    assert!(ada.send(Message::text("for ada")));
    assert_eq!(next_text(&mut ada_end).await, "for ada");
    assert_eq!(next_text(&mut bob_end).await, "for bob");
    ada_end.send(Message::text("from ada")).await.expect("sends");
    ada_end.send(Message::binary(vec![1, 2])).await.expect("sends");
    assert_eq!(ada_frames.recv().await, Some(Frame::Text("from ada".into())));
    assert_eq!(ada_frames.recv().await, Some(Frame::Binary));
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let pool = Pool::new(config());
    let (_, mut ada, _, task) = connect(&pool, 4096).await;
    ada.send(Message::text("x".repeat(65))).await.expect("sends");
    assert_eq!(close_code(&mut ada).await, CloseCode::Size);
    assert_eq!(ended(task).await, Closed::TooLarge);
    assert_eq!(pool.connections(), 0);
}

#[tokio::test]
async fn a_closed_for_policy_connection_gets_1008_and_its_reason() {
    let pool = Pool::new(config());
    let (handle, mut ada, _, task) = connect(&pool, 4096).await;
    handle.close_for_policy("enough");
    assert_eq!(close_code(&mut ada).await, CloseCode::Policy);
    assert_eq!(ended(task).await, Closed::Policy("enough"));
}

// Paused time: the clock moves only when every task waits, so the heartbeat and the timeout
// keep their order however loaded the machine is.
#[tokio::test(start_paused = true)]
async fn a_silent_client_is_reaped() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(5),
        ..config()
    });
    let keepalive = pool.spawn_keepalive();
    let started = tokio::time::Instant::now();
    // The client end is never read, so the pings are never answered.
    let (_, _silent, _, task) = connect(&pool, 4096).await;
    assert_eq!(ended(task).await, Closed::Reaped);
    assert!(started.elapsed() > Duration::from_secs(5), "reaped before the timeout");
    assert_eq!(pool.connections(), 0);
    pool.shutdown();
    tokio::time::timeout(PATIENCE, keepalive).await.expect("in time").expect("stops");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_answers_pings_is_kept() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(5),
        ..config()
    });
    pool.spawn_keepalive();
    let (_, mut ada, _, task) = connect(&pool, 4096).await;
    // Reading answers the pings; twenty of them span four times the timeout.
    let mut pings = 0;
    while pings < 20 {
        match tokio::time::timeout(PATIENCE, ada.next()).await.expect("in time") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    assert_eq!(pool.connections(), 1);
    assert!(!task.is_finished());
    pool.shutdown();
}

// A handler that takes longer than the heartbeat timeout (the store lost its leader, say)
// keeps the client's pongs unread: that is the server's doing, not the client's silence.
#[tokio::test(start_paused = true)]
async fn a_frame_handled_for_longer_than_the_timeout_does_not_get_its_client_reaped() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(5),
        ..config()
    });
    pool.spawn_keepalive();
    let (server_io, client_io) = tokio::io::duplex(4096);
    let mut ada = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let mut connection = pool.register();
    let handle = connection.handle();
    let (handled, mut done) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        connection
            .run(server_io, move |frame| {
                let handled = handled.clone();
                async move {
                    // Four times the timeout, on the paused clock.
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    let _ = handled.send(frame);
                }
            })
            .await
    });
    ada.send(Message::text("slow")).await.expect("sent");
    // The client reads all along, answering every ping it is sent.
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = ada.next().await {
            if let Message::Text(text) = message {
                return Some(text.to_string());
            }
        }
        None
    });
    let frame = tokio::time::timeout(PATIENCE * 4, done.recv()).await.expect("in time");
    assert_eq!(frame, Some(Frame::Text("slow".into())));
    assert!(!task.is_finished(), "the connection was closed while its frame was handled");
    assert_eq!(pool.connections(), 1);
    assert!(handle.send(Message::text("done")));
    let reply = tokio::time::timeout(PATIENCE, reader).await.expect("in time").expect("reads");
    assert_eq!(reply.as_deref(), Some("done"));
    pool.shutdown();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_when_its_queue_fills() {
    let pool = Pool::new(Config { queue_capacity: 4, ..config() });
    let (stalled, _stalled_end, _, task) = connect(&pool, 64).await;
    let (bob, mut bob_end, _, _) = connect(&pool, 1 << 16).await;
    let mut sent = 0;
    while stalled.send(Message::text("x".repeat(40))) {
        sent += 1;
        assert!(sent < 10_000, "the queue never filled");
        tokio::task::yield_now().await;
    }
    assert_eq!(ended(task).await, Closed::SlowConsumer);
    assert!(bob.send(Message::text("still here")));
    assert_eq!(next_text(&mut bob_end).await, "still here", "the others carry on");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_when_its_queued_bytes_pass_the_limit() {
    // Room for thousands of messages, but only 64 KiB: big messages fill it long before.
    let pool = Pool::new(Config { queue_capacity: 100_000, queue_bytes: 64 << 10, ..config() });
    let (stalled, _stalled_end, _, task) = connect(&pool, 64).await;
    let mut sent = 0;
    while stalled.send(Message::text("x".repeat(16 << 10))) {
        sent += 1;
        assert!(sent < 10_000, "the queue never filled");
        tokio::task::yield_now().await;
    }
    // The socket's own buffers take some; the queue itself never held more than its bytes.
    assert!(sent < 1_000, "{sent} messages of 16 KiB went into a 64 KiB queue");
    assert_eq!(ended(task).await, Closed::SlowConsumer);
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let pool = Pool::new(config());
    let (_, mut ada, _, task) = connect(&pool, 4096).await;
    pool.shutdown();
    assert_eq!(close_code(&mut ada).await, CloseCode::Away);
    assert_eq!(ended(task).await, Closed::Shutdown);
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, HeaderValue::from_static(value));
    }
    headers
}

#[test]
fn an_upgrade_is_checked_and_answered_with_the_rfc_accept_key() {
    // The example of RFC 6455, section 1.3.
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let accept = upgrade::accept_key(&headers(&upgrade)).expect("an upgrade");
    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(upgrade::accept_key(&headers(&upgrade[..3])), Err(Error::NotAnUpgrade));
    assert_eq!(upgrade::accept_key(&headers(&upgrade[1..])), Err(Error::NotAnUpgrade));
    let old = [upgrade[0], upgrade[1], ("sec-websocket-version", "8"), upgrade[3]];
    assert_eq!(upgrade::accept_key(&headers(&old)), Err(Error::UnsupportedVersion));
}

#[tokio::test]
async fn the_queues_together_are_bounded_too() {
    // Each queue may hold 64 KiB, but all of them together only 48 KiB.
    let pool = Pool::new(Config { queue_bytes: 64 << 10, total_queue_bytes: 48 << 10, ..config() });
    let (ada, _ada_end, _, ada_task) = connect(&pool, 64).await;
    let (bob, _bob_end, _, bob_task) = connect(&pool, 64).await;
    let big = || Message::text("x".repeat(20 << 10));
    // Neither reads; their writers hold at most one message each in flight.
    let mut sent = 0;
    let refused = loop {
        if !ada.send(big()) {
            break ada_task;
        }
        if !bob.send(big()) {
            break bob_task;
        }
        sent += 1;
        assert!(sent < 100, "the total never filled");
        assert!(pool.queued_bytes() <= 48 << 10, "{} bytes queued", pool.queued_bytes());
        tokio::task::yield_now().await;
    };
    assert_eq!(ended(refused).await, Closed::SlowConsumer);
}

#[tokio::test(start_paused = true)]
async fn a_message_the_client_does_not_take_in_time_closes_the_connection() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_secs(60),
        heartbeat_timeout: Duration::from_secs(5),
        ..config()
    });
    let (handle, mut ada, _, task) = connect(&pool, 64).await;
    let started = tokio::time::Instant::now();
    // Ada keeps talking, so she is not silent, but reads nothing: the big message stalls.
    assert!(handle.send(Message::text("x".repeat(4096))));
    let talk = tokio::spawn(async move {
        loop {
            if ada.send(Message::text("still here")).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    assert_eq!(ended(task).await, Closed::SlowConsumer);
    assert!(started.elapsed() >= Duration::from_secs(5), "closed before the timeout");
    assert_eq!(pool.queued_bytes(), 0, "what waited is freed");
    talk.abort();
}

#[tokio::test]
async fn held_messages_wait_behind_those_sent_through_and_keep_their_order() {
    let pool = Pool::new(Config { queue_bytes: 4 << 10, ..config() });
    let (handle, mut ada, _, _) = connect(&pool, 1 << 16).await;
    handle.hold();
    assert!(handle.send(Message::text("live 1")));
    assert!(handle.send(Message::text("live 2")));
    // A long catch-up goes through at the client's pace, ahead of the held messages.
    let sender = handle.clone();
    let catch_up = tokio::spawn(async move {
        for n in 0..200 {
            assert!(
                sender.send_through(Message::text(format!("old {n} {}", "x".repeat(100)))).await
            );
        }
    });
    for n in 0..200 {
        let text = next_text(&mut ada).await;
        assert!(text.starts_with(&format!("old {n} ")), "{text:.20}");
    }
    catch_up.await.expect("ran");
    assert!(pool.queued_bytes() > 0, "the held messages count towards the bound");
    assert!(handle.release().await);
    assert!(handle.send(Message::text("live 3")));
    for expected in ["live 1", "live 2", "live 3"] {
        assert_eq!(next_text(&mut ada).await, expected);
    }
}

#[tokio::test]
async fn held_messages_past_the_queue_bound_close_the_connection() {
    let pool = Pool::new(Config { queue_bytes: 1 << 10, ..config() });
    let (handle, _ada, _, task) = connect(&pool, 1 << 16).await;
    handle.hold();
    let mut held = 0;
    while handle.send(Message::text("x".repeat(100))) {
        held += 1;
        assert!(held < 100, "holding never stopped");
    }
    assert_eq!(ended(task).await, Closed::SlowConsumer);
    assert_eq!(pool.queued_bytes(), 0, "what was held is freed");
}

#[tokio::test]
async fn more_held_messages_than_the_queue_takes_at_once_are_released_at_the_clients_pace() {
    // Room for 8 messages at a time, and 300 held while a catch-up went on.
    let pool = Pool::new(Config { queue_capacity: 8, queue_bytes: 1 << 20, ..config() });
    let (handle, mut ada, _, task) = connect(&pool, 1 << 10).await;
    handle.hold();
    for n in 0..300 {
        assert!(handle.send(Message::text(format!("live {n}"))));
    }
    let releaser = handle.clone();
    let released = tokio::spawn(async move { releaser.release().await });
    // Sent while the release goes on: behind every held one.
    assert!(handle.send(Message::text("after")));
    for n in 0..300 {
        assert_eq!(next_text(&mut ada).await, format!("live {n}"));
    }
    assert_eq!(next_text(&mut ada).await, "after");
    assert!(tokio::time::timeout(PATIENCE, released).await.expect("in time").expect("ran"));
    assert!(!task.is_finished(), "the connection is still open");
    assert!(handle.send(Message::text("live again")));
    assert_eq!(next_text(&mut ada).await, "live again");
}
