//! Tokens and origins: with a secret, every WebSocket needs a token for its document (401
//! without a valid one, 403 for another document), a read token reads but changes nothing,
//! and `/status` needs an admin token; `--allowed-origin` refuses other sites' pages.

use std::sync::Arc;

use hyper::StatusCode;
use tandem_protocol::{ErrorCode, ServerMessage};
use tandem_server::auth::{Access, Claims, Secret};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Client, TestServer, upgrade_status};

const SECRET: &[u8] = b"a secret of more than sixteen bytes";
/// Far in the future, in seconds since the Unix epoch (the year 2100).
const LATER: u64 = 4_102_444_800;

fn token(doc: &str, access: Access, exp: u64) -> String {
    let secret = Secret::new(SECRET).expect("long enough");
    secret.mint(&Claims { doc: doc.to_owned(), access, exp })
}

async fn secured() -> TestServer {
    TestServer::start_with(|config| config.auth = Secret::new(SECRET).map(Arc::new)).await
}

/// The HTTP status an upgrade to `path` gets (101 if it is accepted), with extra headers.
#[tokio::test]
async fn a_websocket_needs_a_valid_token_for_its_document() {
    let server = secured().await;
    let other = Secret::new(b"another secret, also long enough".to_vec()).expect("long enough");
    let forged = other.mint(&Claims { doc: "notes".into(), access: Access::Write, exp: LATER });
    let expired = token("notes", Access::Write, 1_000);
    let cases = [
        ("/ws/notes".to_owned(), 401, "no token"),
        ("/ws/notes?token=garbage".to_owned(), 401, "a malformed token"),
        (format!("/ws/notes?token={forged}"), 401, "a token signed by another secret"),
        (format!("/ws/notes?token={expired}"), 401, "an expired token"),
        (
            format!("/ws/plans?token={}", token("notes", Access::Write, LATER)),
            403,
            "another document",
        ),
        (format!("/ws/notes?token={}", token("", Access::Admin, LATER)), 403, "an admin token"),
        (format!("/ws/notes?token={}", token("notes", Access::Write, LATER)), 101, "its document"),
        (
            format!("/ws/team-a.plan?token={}", token("team-a.*", Access::Write, LATER)),
            101,
            "a prefix",
        ),
        (
            format!("/ws/team-b.plan?token={}", token("team-a.*", Access::Write, LATER)),
            403,
            "outside it",
        ),
    ];
    for (path, expected, what) in cases {
        assert_eq!(upgrade_status(&server, &path, &[]).await, expected, "{what}");
    }
    // The token may come in an Authorization header instead, for clients that can set one.
    let bearer = format!("Bearer {}", token("notes", Access::Write, LATER));
    assert_eq!(upgrade_status(&server, "/ws/notes", &[("authorization", &bearer)]).await, 101);
    // A tampered claim breaks the signature.
    let good = token("notes", Access::Read, LATER);
    let tampered = good.replacen('.', ".e", 1);
    assert_eq!(upgrade_status(&server, &format!("/ws/notes?token={tampered}"), &[]).await, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn a_read_token_reads_and_shows_a_caret_but_every_change_is_forbidden() {
    let server = secured().await;
    let write = token("notes", Access::Write, LATER);
    let mut ada = Client::connect(server.addr(), &format!("/ws/notes?token={write}")).await;
    ada.act(|c| c.insert(0, "hello").expect("fits")).await;
    ada.sync().await;
    let read = token("notes", Access::Read, LATER);
    let mut rex = Client::connect(server.addr(), &format!("/ws/notes?token={read}")).await;
    assert_eq!(rex.thin.text(), "hello");
    ada.recv().await; // Rex's arrival.
    rex.send_text(r#"{"type":"insert","id":1,"revision":1,"index":0,"text":"x"}"#).await;
    match rex.recv().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("expected forbidden, got {other:?}"),
    }
    rex.send_text(r#"{"type":"cursor_move","line":0,"column":3}"#).await;
    let caret = ada.recv().await;
    assert!(matches!(caret, ServerMessage::Presence(_)), "{caret:?}");
    // The reader sees the writer's changes.
    ada.act(|c| c.insert(5, "!").expect("fits")).await;
    ada.sync().await;
    rex.catch_up(2).await;
    assert_eq!(rex.thin.text(), "hello!");
    assert_eq!(server.document_with("notes", &write).await, ("hello!".to_owned(), 2));
    // A reader cannot take the writer's id to squat its place: it is given a fresh one.
    let ada_id = ada.id();
    let squat =
        Client::connect(server.addr(), &format!("/ws/notes?token={read}&client={ada_id}")).await;
    assert_ne!(squat.id(), ada_id);
    drop(ada);
    server.shutdown().await;
}

#[tokio::test]
async fn status_needs_an_admin_token_when_there_is_a_secret() {
    let server = secured().await;
    assert_eq!(server.get("/status").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(server.get("/metrics").await.0, StatusCode::UNAUTHORIZED);
    let write = format!("Bearer {}", token("notes", Access::Write, LATER));
    assert_eq!(
        server.get_with("/status", &[("authorization", &write)]).await.0,
        StatusCode::FORBIDDEN
    );
    let admin = format!("Bearer {}", token("", Access::Admin, LATER));
    let (status, _, body) = server.get_with("/status", &[("authorization", &admin)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"connections\""), "{body}");
    let (status, _, page) = server.get_with("/metrics", &[("authorization", &admin)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("tandem_refusals_total{reason=\"auth\"}"), "{page}");
    // Health and the pages stay open.
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(server.get("/d/notes").await.0, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn only_the_allowed_origins_may_open_websockets() {
    let server = TestServer::start_with(|config| {
        config.allowed_origins = vec!["https://docs.example.com".into()];
    })
    .await;
    let origin = |value| [("origin", value)];
    assert_eq!(upgrade_status(&server, "/ws/notes", &origin("https://evil.example")).await, 403);
    assert_eq!(
        upgrade_status(&server, "/ws/notes", &origin("https://docs.example.com")).await,
        101
    );
    // No Origin: not a browser, so not a cross-site page.
    assert_eq!(upgrade_status(&server, "/ws/notes", &[]).await, 101);
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_is_closed_when_its_token_expires_and_comes_back_with_a_fresh_one() {
    let server = secured().await;
    let write = token("notes", Access::Write, LATER);
    let mut ada = Client::connect(server.addr(), &format!("/ws/notes?token={write}")).await;
    // A token that expires in two or three seconds (time enough for the upgrade and an edit
    // on a loaded machine).
    let soon = token("notes", Access::Write, tandem_server::auth::unix_now() + 3);
    let mut bob = Client::connect(server.addr(), &format!("/ws/notes?token={soon}")).await;
    ada.recv().await; // Bob's arrival.
    bob.act(|c| c.insert(0, "before").expect("fits")).await;
    bob.sync().await;
    // Waits for the expiry (an event, within the test's patience).
    assert_eq!(bob.close_code().await, CloseCode::Policy);
    let bob_id = bob.id();
    let left = ada.until(|m| matches!(m, ServerMessage::Leave { .. })).await;
    assert!(
        matches!(&left, ServerMessage::Leave { client_id } if *client_id == bob_id),
        "{left:?}"
    );
    // With the expired token, no way back in; with a fresh one, it resumes where it was.
    let resume = format!("{}&token={soon}", bob.thin.resume_path());
    assert_eq!(upgrade_status(&server, &resume, &[]).await, 401);
    let fresh = token("notes", Access::Write, LATER);
    let mut back = bob.reconnect_with(server.addr(), &format!("&token={fresh}")).await;
    assert_eq!(back.id(), bob_id);
    back.act(|c| c.insert(6, " and after").expect("fits")).await;
    back.sync().await;
    assert_eq!(server.document_with("notes", &write).await, ("before and after".to_owned(), 2));
    server.shutdown().await;
}
