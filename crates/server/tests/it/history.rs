//! The document's history over HTTP and the WebSocket: the document, the text at any revision
//! (rebuilt from the nearest checkpoint), the changes between two revisions, and named
//! versions saved, listed and restored, with tokens where a secret is set.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tandem_protocol::{ClientMessage, ErrorCode, RequestId, ServerMessage};
use tandem_server::auth::{Access, Claims, Secret};

use crate::support::{Client, TestServer};

async fn get_json(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let (status, body) = server.get(path).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}")))
}

async fn post_json(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let (status, _, body) = server.request_with_body(Method::POST, path, headers, body).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}")))
}

/// Whether `value` is a time in RFC 3339, as the API writes them.
fn is_rfc3339(value: &Value) -> bool {
    value.as_str().is_some_and(|time| humantime::parse_rfc3339(time).is_ok())
}

#[tokio::test]
async fn the_document_its_text_at_any_revision_and_its_changes() {
    let server = TestServer::start().await;
    let (status, missing) = get_json(&server, "/api/docs/notes").await;
    assert_eq!((status, &missing["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
    let mut ada = server.connect("notes").await;
    // 2,100 changes, past two checkpoints, remembering the text at every revision.
    let mut texts = vec![String::new()];
    for i in 0..2_100u32 {
        let (at, piece) =
            ((i * 7) as usize % (ada.thin.len() + 1), ["a", "é", "🙂"][i as usize % 3]);
        if i % 5 == 4 {
            ada.act(|c| c.delete(at.min(c.len() - 1), 1).expect("fits")).await;
        } else {
            ada.act(|c| c.insert(at, piece).expect("fits")).await;
        }
        ada.sync().await;
        texts.push(ada.thin.text());
    }
    ada.act(|c| c.set_title("Notes")).await;
    ada.sync().await;
    let (status, document) = get_json(&server, "/api/docs/notes").await;
    assert_eq!(status, StatusCode::OK);
    let last = texts.last().expect("texts");
    assert_eq!(document["id"], "notes");
    assert_eq!(document["revision"], 2_101);
    assert_eq!(document["length"], last.chars().count());
    assert_eq!(document["title"], "Notes");
    assert!(
        is_rfc3339(&document["created_at"]) && is_rfc3339(&document["updated_at"]),
        "{document}"
    );
    for revision in [0, 1, 999, 1_000, 1_001, 1_999, 2_000, 2_077, 2_100] {
        let (status, text) =
            get_json(&server, &format!("/api/docs/notes/text?revision={revision}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            text,
            json!({"revision": revision, "text": texts[revision]}),
            "revision {revision}"
        );
    }
    let (_, head) = get_json(&server, "/api/docs/notes/text").await;
    assert_eq!(head, json!({"revision": 2_101, "text": last}));
    let (status, _) = get_json(&server, "/api/docs/notes/text?revision=2102").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, bad) = get_json(&server, "/api/docs/notes/text?revision=two").await;
    assert_eq!((status, &bad["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_request")));
    // The changes after 2,099 up to 2,101, as they were broadcast.
    let (_, changes) = get_json(&server, "/api/docs/notes/changes?from=2099&to=2101").await;
    let changes = changes["changes"].as_array().expect("a list").clone();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[1],
        json!({"type": "set_title", "client_id": ada.id(), "revision": 2_101, "title": "Notes"})
    );
    assert_eq!(changes[0]["revision"], 2_100);
    let (status, _) = get_json(&server, "/api/docs/notes/changes?from=0&to=20000").await;
    assert_eq!(status, StatusCode::OK, "the end is the last revision");
    let (status, _, _) = server.request(Method::DELETE, "/api/docs/notes", &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}

#[tokio::test]
async fn changes_too_large_for_one_answer_come_in_parts_that_say_where_they_stop() {
    let server = TestServer::start().await;
    let mut ada = server.connect("big").await;
    // Ten inserts of 900,000 characters, each deleted again: 9 MB of history.
    let big = "x".repeat(900_000);
    for _ in 0..10 {
        ada.act(|c| c.insert(0, &big).expect("fits")).await;
        ada.sync().await;
        ada.act(|c| c.delete(0, 900_000).expect("fits")).await;
        ada.sync().await;
    }
    // (Long inserts are stored in pieces of 64 KiB, a revision each.)
    let head = ada.thin.revision();
    let (status, first) = get_json(&server, "/api/docs/big/changes?from=0").await;
    assert_eq!(status, StatusCode::OK);
    let to = first["to"].as_u64().expect("to is a revision");
    let changes = first["changes"].as_array().expect("a list");
    assert!(to < head, "one answer of more than 8 MiB");
    assert!(first.to_string().len() < 9 << 20, "and it stopped near 8 MiB");
    assert_eq!(changes.len() as u64, to, "changes 1 to {to}");
    assert_eq!(changes.last().map(|change| &change["revision"]), Some(&json!(to)));
    // Asking again from there gives the rest.
    let (_, rest) = get_json(&server, &format!("/api/docs/big/changes?from={to}")).await;
    assert_eq!(rest["to"], head);
    assert_eq!(rest["changes"][0]["revision"], to + 1);
    assert_eq!(rest["changes"].as_array().expect("a list").len() as u64, head - to);
    server.shutdown().await;
}

#[tokio::test]
async fn versions_are_saved_listed_and_restored_as_an_ordinary_change() {
    let server = TestServer::start().await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    ada.act(|c| c.insert(0, "first draft 📝").expect("fits")).await;
    ada.sync().await;
    let (status, saved) =
        post_json(&server, "/api/docs/notes/versions", &[], r#"{"label":"v1"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((&saved["label"], &saved["revision"]), (&json!("v1"), &json!(1)));
    assert!(is_rfc3339(&saved["created_at"]));
    let (status, again) =
        post_json(&server, "/api/docs/notes/versions", &[], r#"{"label":"v1"}"#).await;
    assert_eq!((status, &again["code"]), (StatusCode::CONFLICT, &json!("conflict")));
    let (status, bad) =
        post_json(&server, "/api/docs/notes/versions", &[], r#"{"label":"no/slash"}"#).await;
    assert_eq!((status, &bad["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_request")));
    // Over the WebSocket too.
    ada.act(|c| c.delete(0, 5).expect("fits")).await;
    ada.act(|c| c.insert(0, "second").expect("fits")).await;
    ada.sync().await;
    ada.send(&ClientMessage::SaveVersion { id: Some(7.into()), label: "v2".into() }).await;
    let saved = ada.until(|m| matches!(m, ServerMessage::Version { .. })).await;
    assert!(
        matches!(&saved, ServerMessage::Version { id: Some(RequestId::Number(n)), label, revision: 3, .. } if n.as_u64() == Some(7) && label == "v2"),
        "{saved:?}"
    );
    let (_, listed) = get_json(&server, "/api/docs/notes/versions").await;
    let labels: Vec<_> =
        listed["versions"].as_array().expect("a list").iter().map(|v| v["label"].clone()).collect();
    assert_eq!(labels, [json!("v1"), json!("v2")]);
    // More edits, then v1 comes back over HTTP: an ordinary change for everyone.
    ada.act(|c| c.insert(c.len(), " and more").expect("fits")).await;
    ada.sync().await;
    let (status, restored) =
        post_json(&server, "/api/docs/notes/versions/v1/restore", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let revision = restored["revision"].as_u64().expect("a revision");
    for client in [&mut ada, &mut bob] {
        client.catch_up(revision).await;
        assert_eq!(client.thin.text(), "first draft 📝");
    }
    // Nothing of the later history is lost.
    let (_, before) =
        get_json(&server, &format!("/api/docs/notes/text?revision={}", revision - 2)).await;
    assert_eq!(before["text"], "second draft 📝 and more");
    // And v2 back over the WebSocket: the changes, then `restored`.
    ada.send(&ClientMessage::RestoreVersion {
        id: Some(RequestId::String("r".into())),
        label: "v2".into(),
    })
    .await;
    let done = ada.until(|m| matches!(m, ServerMessage::Restored { .. })).await;
    assert!(matches!(&done, ServerMessage::Restored { label, .. } if label == "v2"), "{done:?}");
    bob.catch_up(ada.thin.revision()).await;
    assert_eq!(
        (ada.thin.text(), bob.thin.text()),
        ("second draft 📝".into(), "second draft 📝".into())
    );
    ada.send(&ClientMessage::RestoreVersion { id: Some(9.into()), label: "v9".into() }).await;
    // Read raw: the thin client reports an error it did not cause as an error of its own.
    let missing = ada.until_raw(|m| matches!(m, ServerMessage::Error { .. })).await;
    assert!(
        matches!(missing, ServerMessage::Error { code: ErrorCode::NotFound, .. }),
        "{missing:?}"
    );
    let (status, _) = post_json(&server, "/api/docs/notes/versions/v9/restore", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn a_label_is_saved_once_however_many_ask_at_once_and_versions_are_capped() {
    let server = TestServer::start_with(|config| {
        let plenty = std::num::NonZeroU32::new(100_000).expect("not zero");
        config.max_api_requests_per_ip = plenty;
        config.max_new_connections_per_ip = plenty;
    })
    .await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "draft").expect("fits")).await;
    ada.sync().await;
    let body = r#"{"label":"same"}"#;
    let saves = (0..8).map(|_| post_json(&server, "/api/docs/notes/versions", &[], body));
    let mut statuses: Vec<_> = futures_util::future::join_all(saves)
        .await
        .into_iter()
        .map(|(status, _)| status.as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    // Up to 1,000 versions a document; the next is refused, over HTTP and the WebSocket.
    for n in 1..tandem_server::MAX_VERSIONS {
        let body = format!(r#"{{"label":"v{n}"}}"#);
        let (status, saved) = post_json(&server, "/api/docs/notes/versions", &[], &body).await;
        assert_eq!(status, StatusCode::CREATED, "{saved}");
    }
    let (status, refused) =
        post_json(&server, "/api/docs/notes/versions", &[], r#"{"label":"one-more"}"#).await;
    assert_eq!((status, &refused["code"]), (StatusCode::CONFLICT, &json!("too_large")));
    ada.send(&ClientMessage::SaveVersion { id: Some(1.into()), label: "ws".into() }).await;
    let refused = ada.until_raw(|m| matches!(m, ServerMessage::Error { .. })).await;
    assert!(
        matches!(refused, ServerMessage::Error { code: ErrorCode::TooLarge, .. }),
        "{refused:?}"
    );
    let (_, listed) = get_json(&server, "/api/docs/notes/versions").await;
    assert_eq!(listed["versions"].as_array().map(Vec::len), Some(tandem_server::MAX_VERSIONS));
    server.shutdown().await;
}

#[tokio::test]
async fn with_a_secret_reading_takes_a_read_token_and_changing_a_write_token() {
    let secret =
        Arc::new(Secret::new(b"a secret of more than sixteen bytes".to_vec()).expect("long"));
    let server = TestServer::start_with(|config| config.auth = Some(Arc::clone(&secret))).await;
    let later = tandem_server::auth::unix_now() + 3_600;
    let token = |access| secret.mint(&Claims { doc: "notes".into(), access, exp: later });
    let (read, write) = (token(Access::Read), token(Access::Write));
    let mut ada = Client::connect(server.addr(), &format!("/ws/notes?token={write}")).await;
    ada.act(|c| c.insert(0, "secret plans").expect("fits")).await;
    ada.sync().await;
    let (status, denied) = get_json(&server, "/api/docs/notes").await;
    assert_eq!((status, &denied["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")));
    let (status, _) = get_json(&server, &format!("/api/docs/notes/text?token={read}")).await;
    assert_eq!(status, StatusCode::OK);
    let bearer = format!("Bearer {read}");
    let (status, refused) = post_json(
        &server,
        "/api/docs/notes/versions",
        &[("authorization", &bearer)],
        r#"{"label":"x"}"#,
    )
    .await;
    assert_eq!((status, &refused["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")));
    let bearer = format!("Bearer {write}");
    let (status, _) = post_json(
        &server,
        "/api/docs/notes/versions",
        &[("authorization", &bearer)],
        r#"{"label":"x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = secret.mint(&Claims { doc: "plans".into(), access: Access::Write, exp: later });
    let (status, _) = get_json(&server, &format!("/api/docs/notes?token={other}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.shutdown().await;
}
