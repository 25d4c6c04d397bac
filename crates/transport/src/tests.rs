//! Tests of the pool and of connections, over in-memory streams speaking real WebSocket frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::{io::DuplexStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::protocol::{Role, frame::coding::CloseCode},
};

use crate::{Closed, Config, Error, Frame, Message, Pool};

/// A test must finish well within this; it guards against hangs, it never synchronises.
const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<DuplexStream>;

fn config() -> Config {
    Config { max_message_bytes: 64, ..Config::default() }
}

/// Registers `client` in `room` and runs its connection; returns the client's end, the frames
/// the server saw, and the task that ends with why the connection closed.
async fn connect(
    pool: &Pool,
    room: &str,
    client: &str,
    buffer: usize,
) -> (Socket, mpsc::UnboundedReceiver<Frame>, JoinHandle<Closed>) {
    let (server_io, client_io) = tokio::io::duplex(buffer);
    let server =
        WebSocketStream::from_raw_socket(server_io, Role::Server, Some(pool.config().websocket()))
            .await;
    let client_end = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let mut connection = pool.register(room, client).expect("registers");
    let (frames, seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        connection
            .run(server, move |frame| {
                let _ = frames.send(frame);
                std::future::ready(())
            })
            .await
    });
    (client_end, seen, task)
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
async fn a_client_id_registers_once_per_room_and_leaves_when_dropped() {
    let pool = Pool::new(config());
    let first = pool.register("notes", "ada").expect("registers");
    let taken = Error::AlreadyConnected { room: "notes".into(), client: "ada".into() };
    assert_eq!(pool.register("notes", "ada").err(), Some(taken));
    let _elsewhere = pool.register("plans", "ada").expect("the same id in another room");
    let _bob = pool.register("notes", "bob").expect("registers");
    assert_eq!(
        (pool.connections(), pool.clients("notes")),
        (3, vec!["ada".to_owned(), "bob".to_owned()])
    );
    drop(first);
    assert_eq!((pool.connections(), pool.clients("notes")), (2, vec!["bob".to_owned()]));
    assert!(pool.register("notes", "ada").is_ok());
}

#[test]
fn dropping_an_old_connection_never_unregisters_a_newer_one_with_the_same_id() {
    // The old connection's cleanup races the new registration, many times over.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let _guard = runtime.enter();
    let pool = Pool::new(config());
    for _ in 0..2_000 {
        let old = pool.register("notes", "ada").expect("registers");
        let dropper = std::thread::spawn(move || drop(old));
        let new = loop {
            if let Ok(new) = pool.register("notes", "ada") {
                break new;
            }
        };
        dropper.join().expect("the thread ran");
        assert_eq!(pool.clients("notes"), ["ada"], "the new connection lost its room");
        drop(new);
    }
}

#[tokio::test]
async fn broadcast_reaches_the_room_except_the_sender_and_frames_reach_the_handler() {
    let pool = Pool::new(config());
    let (mut ada, mut ada_frames, _) = connect(&pool, "notes", "ada", 4096).await;
    let (mut bob, _, _) = connect(&pool, "notes", "bob", 4096).await;
    let (mut cy, _, _) = connect(&pool, "plans", "cy", 4096).await;
    pool.broadcast("notes", Some("ada"), &Message::text("hello"));
    assert_eq!(next_text(&mut bob).await, "hello");
    assert!(pool.send("notes", "ada", Message::text("direct")));
    assert!(pool.send("plans", "cy", Message::text("elsewhere")));
    assert_eq!(next_text(&mut ada).await, "direct", "the sender did not get its own broadcast");
    assert_eq!(next_text(&mut cy).await, "elsewhere", "another room did not get it");
    ada.send(Message::text("from ada")).await.expect("sends");
    ada.send(Message::binary(vec![1, 2])).await.expect("sends");
    assert_eq!(ada_frames.recv().await, Some(Frame::Text("from ada".into())));
    assert_eq!(ada_frames.recv().await, Some(Frame::Binary));
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let pool = Pool::new(config());
    let (mut ada, _, task) = connect(&pool, "notes", "ada", 4096).await;
    ada.send(Message::text("x".repeat(65))).await.expect("sends");
    assert_eq!(close_code(&mut ada).await, CloseCode::Size);
    assert_eq!(ended(task).await, Closed::TooLarge);
    assert_eq!(pool.connections(), 0);
}

#[tokio::test]
async fn a_silent_client_is_reaped() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_millis(20),
        heartbeat_timeout: Duration::from_millis(100),
        ..config()
    });
    let keepalive = pool.spawn_keepalive();
    // The client end is never read, so the pings are never answered.
    let (_silent, _, task) = connect(&pool, "notes", "ada", 4096).await;
    assert_eq!(ended(task).await, Closed::Reaped);
    assert_eq!(pool.connections(), 0);
    pool.shutdown();
    tokio::time::timeout(PATIENCE, keepalive).await.expect("in time").expect("stops");
}

#[tokio::test]
async fn a_client_that_answers_pings_is_kept() {
    let pool = Pool::new(Config {
        heartbeat_interval: Duration::from_millis(10),
        heartbeat_timeout: Duration::from_millis(60),
        ..config()
    });
    pool.spawn_keepalive();
    let (mut ada, _, _) = connect(&pool, "notes", "ada", 4096).await;
    // Reading answers the pings; ten of them span well past the timeout.
    let mut pings = 0;
    while pings < 10 {
        match tokio::time::timeout(PATIENCE, ada.next()).await.expect("in time") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    assert_eq!(pool.connections(), 1);
    pool.shutdown();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_when_its_queue_fills() {
    let pool = Pool::new(Config { queue_capacity: 4, ..config() });
    let (_stalled, _, task) = connect(&pool, "notes", "ada", 64).await;
    let (mut bob, _, _) = connect(&pool, "notes", "bob", 1 << 16).await;
    let mut sent = 0;
    while pool.send("notes", "ada", Message::text("x".repeat(40))) {
        sent += 1;
        assert!(sent < 10_000, "the queue never filled");
        tokio::task::yield_now().await;
    }
    assert_eq!(ended(task).await, Closed::SlowConsumer);
    pool.broadcast("notes", None, &Message::text("still here"));
    assert_eq!(next_text(&mut bob).await, "still here", "the others carry on");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_when_its_queued_bytes_pass_the_limit() {
    // Room for thousands of messages, but only 64 KiB: big messages fill it long before.
    let pool = Pool::new(Config { queue_capacity: 100_000, queue_bytes: 64 << 10, ..config() });
    let (_stalled, _, task) = connect(&pool, "notes", "ada", 64).await;
    let mut sent = 0;
    while pool.send("notes", "ada", Message::text("x".repeat(16 << 10))) {
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
    let (mut ada, _, task) = connect(&pool, "notes", "ada", 4096).await;
    pool.shutdown();
    assert_eq!(close_code(&mut ada).await, CloseCode::Away);
    assert_eq!(ended(task).await, Closed::Shutdown);
}
