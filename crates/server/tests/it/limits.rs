//! The limits that keep one client from taking the server: the handshake deadline, the caps on
//! connections (in total, per address, new per address per second) and on loaded documents,
//! each refused with 503, and the message rate, refused with `rate_limited` and then 1008.

use std::{num::NonZeroU32, time::Duration};

use tandem_protocol::{ErrorCode, RequestId, ServerMessage};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Client, TestServer, tcp_from, upgrade_status, within};

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

/// The status of `GET /healthz` sent over `stream` (0 if the connection ends first).
async fn status_of(stream: TcpStream) -> u16 {
    status_with(stream, "/healthz", "").await
}

/// The status of `GET path` with the header lines `headers` sent over `stream` (0 if the
/// connection ends first).
async fn status_with(mut stream: TcpStream, path: &str, headers: &str) -> u16 {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = Vec::new();
    let _ = within(stream.read_to_end(&mut response)).await;
    let head = String::from_utf8_lossy(&response);
    head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// Reads until the server ends the connection; what it sent meanwhile.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    let _ = within(stream.read_to_end(&mut read)).await;
    read
}

#[tokio::test]
async fn a_client_that_is_slow_to_send_its_request_is_disconnected() {
    let server = TestServer::start_with(|config| {
        config.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let mut ada = server.connect("notes").await;
    // Nothing at all; half a request line; a complete head sent a byte at a time, too slowly.
    let mut silent = tcp_from([127, 0, 0, 1], server.addr()).await;
    let mut half = tcp_from([127, 0, 0, 1], server.addr()).await;
    half.write_all(b"GET /ws/notes HT").await.expect("writes");
    let mut trickle = tcp_from([127, 0, 0, 1], server.addr()).await;
    let trickled = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        for byte in head {
            ticks.tick().await;
            if trickle.write_all(&[*byte]).await.is_err() {
                return true;
            }
        }
        // Sent whole (the deadline was missed only if the server closed it).
        until_closed(&mut trickle).await.is_empty()
    });
    assert!(until_closed(&mut silent).await.is_empty(), "the silent socket is closed unanswered");
    let answered = until_closed(&mut half).await;
    assert!(!answered.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&answered));
    assert!(within(trickled).await.expect("joins"), "the trickling socket is cut off");
    // A WebSocket that finished its handshake is not subject to it, however long it lives.
    ada.send_text(r#"{"type":"ping","id":1}"#).await;
    assert!(matches!(ada.recv().await, ServerMessage::Pong { .. }));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_body_that_does_not_arrive_in_time_gets_408() {
    let server = TestServer::start_with(|config| {
        config.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let mut slow = tcp_from([127, 0, 0, 1], server.addr()).await;
    // A head that promises 40 bytes of body, and 10 of them.
    let head = "POST /api/docs/notes/versions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"label\":";
    slow.write_all(head.as_bytes()).await.expect("writes");
    let answered = String::from_utf8_lossy(&until_closed(&mut slow).await).into_owned();
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains(r#""code":"timeout""#), "{answered}");
    // Nothing was saved.
    let (_, _, versions) =
        server.request(hyper::Method::GET, "/api/docs/notes/versions", &[]).await;
    assert_eq!(versions, r#"{"versions":[]}"#);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_caps_are_refused_with_503() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 3;
        config.max_connections_per_ip = 2;
    })
    .await;
    let addr = server.addr();
    // Two WebSockets from 127.0.0.1 fill its share; a third connection from it is refused,
    // while another address still gets in.
    let ada = Client::connect_from([127, 0, 0, 1], addr, "/ws/notes").await;
    let bob = Client::connect_from([127, 0, 0, 1], addr, "/ws/notes").await;
    assert_eq!(status_of(tcp_from([127, 0, 0, 1], addr).await).await, 503);
    let cy = Client::connect_from([127, 0, 0, 2], addr, "/ws/notes").await;
    // Three in all: a fourth address is refused too.
    assert_eq!(status_of(tcp_from([127, 0, 0, 3], addr).await).await, 503);
    // A place freed is a place taken again.
    drop(bob);
    let mut dee = None;
    for _ in 0..100 {
        let status = status_of(tcp_from([127, 0, 0, 1], addr).await).await;
        if status == 200 {
            dee = Some(Client::connect_from([127, 0, 0, 3], addr, "/ws/notes").await);
            break;
        }
        assert_eq!(status, 503);
        tokio::task::yield_now().await;
    }
    assert!(dee.is_some(), "bob's place was never given back");
    drop((ada, cy, dee));
    server.shutdown().await;
}

#[tokio::test]
async fn an_address_opening_connections_too_fast_is_refused_with_503() {
    let server =
        TestServer::start_with(|config| config.max_new_connections_per_ip = nonzero(2)).await;
    let addr = server.addr();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(status_of(tcp_from([127, 0, 0, 1], addr).await).await);
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses.contains(&503), "six connections at once from one address: {statuses:?}");
    // Another address has its own allowance.
    assert_eq!(status_of(tcp_from([127, 0, 0, 9], addr).await).await, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_address_asking_the_history_api_too_fast_gets_429() {
    let server = TestServer::start_with(|config| config.max_api_requests_per_ip = nonzero(3)).await;
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        let (status, headers, body) =
            server.request(hyper::Method::GET, "/api/docs/notes", &[]).await;
        if status == hyper::StatusCode::TOO_MANY_REQUESTS && refused.is_none() {
            refused = Some((headers, body));
        }
        statuses.push(status.as_u16());
    }
    // Answered (404: no such document) up to the allowance, then refused.
    assert_eq!(&statuses[..3], [404, 404, 404], "{statuses:?}");
    let (headers, body) = refused.unwrap_or_else(|| panic!("never refused: {statuses:?}"));
    assert_eq!(headers.get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["code"], "rate_limited");
    // The rest of the server is not limited by it.
    assert_eq!(server.get("/healthz").await.0, hyper::StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn one_document_more_than_the_cap_is_refused_while_the_others_work() {
    let server = TestServer::start_with(|config| config.max_documents = 2).await;
    let mut ada = server.connect("one").await;
    let bob = server.connect("two").await;
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/three", server.addr())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // A loaded document takes new clients and edits as before.
    let _cy = server.connect("one").await;
    ada.act(|c| c.insert(0, "still here").expect("fits")).await;
    ada.sync().await;
    assert_eq!(server.document("one").await, ("still here".to_owned(), 1));
    // A document nobody is in gives its place up to a new one at once, rather than after
    // --unload-after: rooms left empty cannot lock new documents out.
    drop(bob);
    let mut dee = None;
    for _ in 0..100 {
        match tokio_tungstenite::connect_async(format!("ws://{}/ws/three", server.addr())).await {
            Ok((socket, _)) => {
                dee = Some(socket);
                break;
            }
            // Until the server has seen bob leave.
            Err(_) => tokio::task::yield_now().await,
        }
    }
    assert!(dee.is_some(), "the empty document never gave its place up");
    assert_eq!(server.document("one").await, ("still here".to_owned(), 1));
    server.shutdown().await;
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_and_a_flood_is_closed_with_1008() {
    let server = TestServer::start_with(|config| {
        config.message_rate = nonzero(1);
        config.message_burst = nonzero(3);
        config.max_rate_refusals = 20;
    })
    .await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    for id in 1..=10 {
        ada.send_text(&format!(
            r#"{{"type":"insert","id":{id},"revision":0,"index":0,"text":"x"}}"#
        ))
        .await;
    }
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for _ in 1..=10 {
        match ada.recv().await {
            ServerMessage::Ack { id: Some(RequestId::Number(id)), .. } => acked.push(id),
            ServerMessage::Error { id: Some(RequestId::Number(id)), code, .. } => {
                assert_eq!(code, ErrorCode::RateLimited);
                refused.push(id);
            }
            other => panic!("expected an ack or an error, got {other:?}"),
        }
    }
    // The burst goes through; of the rest, at most what one message a second refills.
    assert!(acked.len() >= 3 && acked.len() <= 6, "acked {acked:?}");
    assert_eq!(acked.len() + refused.len(), 10);
    // A refused change changed nothing: the document has exactly the acknowledged ones.
    let (text, revision) = server.document("notes").await;
    assert_eq!((text.chars().count(), revision), (acked.len(), acked.len() as u64));
    // Flooding on: past 20 refusals in all, the connection is closed with 1008.
    for _ in 0..40 {
        ada.send_text(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(ada.close_code().await, CloseCode::Policy);
    // Bob, who kept to the rate, carries on.
    bob.send_text(r#"{"type":"ping","id":7}"#).await;
    let pong = bob.until(|message| matches!(message, ServerMessage::Pong { .. })).await;
    assert!(matches!(pong, ServerMessage::Pong { id: Some(_) }));
    server.shutdown().await;
}

#[tokio::test]
async fn a_welcome_that_would_pass_the_bound_on_queued_bytes_is_refused_with_503() {
    // All the queues together may hold 64 KiB; the document's welcome takes more.
    let server =
        TestServer::start_with(|config| config.transport.total_queue_bytes = 64 << 10).await;
    let mut ada = server.connect("big").await;
    ada.act(|c| c.insert(0, &"🙂".repeat(30_000)).expect("fits")).await;
    ada.sync().await;
    assert_eq!(upgrade_status(&server, "/ws/big", &[]).await, 503);
    // Small documents still open, and the one who is in carries on.
    assert_eq!(upgrade_status(&server, "/ws/small", &[]).await, 101);
    ada.act(|c| c.insert(0, "still here").expect("fits")).await;
    ada.sync().await;
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("tandem_refusals_total{reason=\"busy\"} 1"), "{metrics}");
    server.shutdown().await;
}

/// A WebSocket upgrade of `/ws/notes` from `from` saying it was forwarded for `forwarded`:
/// its status, and the socket if it opened (kept open while held).
async fn upgrade_forwarded(
    from: [u8; 4],
    server: &TestServer,
    forwarded: &str,
) -> (u16, Option<impl Sized + use<>>) {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let stream = tcp_from(from, server.addr()).await;
    let mut request =
        format!("ws://{}/ws/notes", server.addr()).into_client_request().expect("a request");
    request.headers_mut().insert("x-forwarded-for", forwarded.parse().expect("a header value"));
    match within(tokio_tungstenite::client_async(request, stream)).await {
        Ok((socket, _)) => (101, Some(socket)),
        Err(tungstenite::Error::Http(response)) => (response.status().as_u16(), None),
        Err(other) => panic!("expected an HTTP answer, got {other}"),
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limits_count_the_address_it_forwards_for() {
    let server = TestServer::start_with(|config| {
        config.max_connections_per_ip = 2;
        config.max_api_requests_per_ip = nonzero(2);
        config.trusted_proxies = vec!["127.0.0.2/32".parse().expect("a network")];
    })
    .await;
    // The proxy (127.0.0.2) carries three clients' connections and more: each client has
    // its own two places, whatever the proxy's own count.
    let mut open = Vec::new();
    for client in ["198.51.100.1", "198.51.100.1", "2001:db8::1", "2001:db8::2"] {
        let (status, socket) = upgrade_forwarded([127, 0, 0, 2], &server, client).await;
        assert_eq!(status, 101, "{client}");
        open.push(socket);
    }
    // The first client's third, and the /64 of the others: refused.
    for client in ["198.51.100.1", "2001:db8::3"] {
        assert_eq!(upgrade_forwarded([127, 0, 0, 2], &server, client).await.0, 503, "{client}");
    }
    // The client is the last address the proxy did not add itself: one the client wrote
    // in front of it is not believed; a chain of trusted proxies is looked through.
    let spoofed = "203.0.113.9, 198.51.100.1";
    assert_eq!(upgrade_forwarded([127, 0, 0, 2], &server, spoofed).await.0, 503);
    let chained = "198.51.100.1, 127.0.0.2";
    assert_eq!(upgrade_forwarded([127, 0, 0, 2], &server, chained).await.0, 503);
    // Anyone else's header is not believed: 127.0.0.3 is counted as itself.
    for expected in [101, 101, 503] {
        let (status, socket) = upgrade_forwarded([127, 0, 0, 3], &server, "198.51.100.7").await;
        assert_eq!(status, expected);
        open.push(socket);
    }
    // The history API's rate too, per forwarded address (404: no such document).
    let mut statuses = Vec::new();
    for client in ["198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"] {
        let stream = tcp_from([127, 0, 0, 2], server.addr()).await;
        let head = format!("X-Forwarded-For: {client}\r\n");
        statuses.push(status_with(stream, "/api/docs/notes", &head).await);
    }
    assert_eq!(statuses, [404, 404, 429, 404]);
    drop(open);
    server.shutdown().await;
}

#[tokio::test]
async fn bytes_a_client_writes_in_front_of_its_address_do_not_spare_it_its_count() {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
    let server = TestServer::start_with(|config| {
        config.max_connections_per_ip = 1;
        config.trusted_proxies = vec!["127.0.0.2/32".parse().expect("a network")];
    })
    .await;
    let addr = server.addr();
    let upgrade = |forwarded: &'static [u8]| async move {
        let stream = tcp_from([127, 0, 0, 2], addr).await;
        let mut request = format!("ws://{addr}/ws/notes").into_client_request().expect("a request");
        let value = HeaderValue::from_bytes(forwarded).expect("obs-text is a header value");
        request.headers_mut().insert("x-forwarded-for", value);
        match within(tokio_tungstenite::client_async(request, stream)).await {
            Ok((socket, _)) => (101, Some(socket)),
            Err(tungstenite::Error::Http(response)) => (response.status().as_u16(), None),
            Err(other) => panic!("expected an HTTP answer, got {other}"),
        }
    };
    let (status, first) = upgrade(b"198.51.100.1").await;
    assert_eq!(status, 101);
    // The same client, as a proxy passes it on after the client wrote a byte of its own.
    let (status, second) = upgrade(b"\xff, 198.51.100.1").await;
    assert_eq!(status, 503);
    drop((first, second));
    server.shutdown().await;
}
