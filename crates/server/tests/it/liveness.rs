//! Heartbeats and idleness: a silent client is reaped and its leave broadcast; presence goes
//! idle after the idle timeout and active again on activity.

use std::time::Duration;

use tandem_protocol::{ClientMessage, ServerMessage};

use crate::support::{Client, TestServer};

#[tokio::test]
async fn a_client_that_stops_answering_is_reaped_and_its_leave_broadcast() {
    let server = TestServer::start_with(|config| {
        // Margins no loaded machine misses: the watcher, which reads all along, answers a ping
        // every 100 ms, and only two seconds of silence get a connection reaped.
        config.transport.heartbeat_interval = Duration::from_millis(100);
        config.transport.heartbeat_timeout = Duration::from_secs(2);
    })
    .await;
    let mut watcher = server.connect("notes").await;
    // The silent client completes the handshake and reads its welcome, then never reads again,
    // so it answers no ping.
    let silent: Client = server.connect("notes").await;
    let silent_id = silent.id();
    let left = watcher.until(|m| matches!(m, ServerMessage::Leave { .. })).await;
    assert_eq!(left, ServerMessage::Leave { client_id: silent_id });
    // The watcher, which kept reading (and so answering pings), is still connected.
    watcher.send(&ClientMessage::Ping { id: None }).await;
    watcher.until(|m| matches!(m, ServerMessage::Pong { .. })).await;
    let (_, status) = server.get("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(status["connections"], 1);
    drop(silent);
    server.shutdown().await;
}

#[tokio::test]
async fn presence_goes_idle_after_the_timeout_and_active_on_activity() {
    let timeout = Duration::from_millis(200);
    let server = TestServer::start_with(|config| config.idle_timeout = timeout).await;
    let mut ada = server.connect("notes").await;
    // A lower bound on when Ada last acted: she cannot go idle before the timeout from here.
    #[allow(clippy::disallowed_methods, reason = "a lower bound on real time cannot be missed")]
    let active = std::time::Instant::now();
    let mut bob = server.connect("notes").await;
    let ada_id = ada.id();
    let shown = bob.thin.users().find(|user| user.client_id == ada_id).map(|user| user.idle);
    assert_eq!(shown, Some(false), "Bob first sees Ada active");
    bob.until(
        |m| matches!(m, ServerMessage::Presence(user) if user.client_id == ada_id && user.idle),
    )
    .await;
    assert!(active.elapsed() >= timeout, "Ada went idle before the idle timeout");
    ada.send(&ClientMessage::CursorMove { id: None, line: 0, column: 0 }).await;
    let back =
        bob.until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == ada_id)).await;
    assert!(matches!(&back, ServerMessage::Presence(user) if !user.idle), "{back:?}");
    drop(ada);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_a_going_away_frame() {
    let server = TestServer::start().await;
    let mut ada = server.connect("notes").await;
    let code = tokio::spawn(async move { ada.close_code().await });
    server.shutdown().await;
    let code = crate::support::within(code).await.expect("the client task ran");
    assert_eq!(code, tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away);
}

#[tokio::test]
async fn a_client_that_reconnects_at_once_keeps_its_presence() {
    let server = TestServer::start().await;
    let mut watcher = server.connect("notes").await;
    let mut ada = Client::connect(server.addr(), "/ws/notes?client=ada").await;
    watcher.until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == "ada")).await;
    for _ in 0..20 {
        drop(ada);
        // Until the old connection is gone the id is taken (409); retry at once.
        ada = loop {
            let url = format!("ws://{}/ws/notes?client=ada", server.addr());
            if let Ok((mut socket, _)) =
                crate::support::within(tokio_tungstenite::connect_async(url)).await
            {
                use futures_util::StreamExt;
                let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(welcome))) =
                    socket.next().await
                else {
                    panic!("no welcome");
                };
                let welcome = serde_json::from_str(&welcome).expect("a message");
                break Client {
                    socket,
                    thin: tandem_protocol::ThinClient::new(welcome).expect("a welcome"),
                };
            }
        };
        // The old session's leave came before the new session's join, never after it.
        watcher
            .until(|m| matches!(m, ServerMessage::Leave { client_id } if client_id == "ada"))
            .await;
        watcher
            .until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == "ada"))
            .await;
        ada.send(&ClientMessage::CursorMove { id: Some(1.into()), line: 0, column: 0 }).await;
        ada.send(&ClientMessage::Ping { id: None }).await;
        assert!(
            matches!(ada.recv().await, ServerMessage::Pong { .. }),
            "the cursor move was refused"
        );
        watcher
            .until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == "ada"))
            .await;
    }
    server.shutdown().await;
}
