//! Plain HTTP on the same port: health, status, and refused upgrades.

use hyper::StatusCode;
use serde_json::json;

use crate::support::{Client, TestServer, within};

#[tokio::test]
async fn healthz_and_status_answer_over_http() {
    let server = TestServer::start().await;
    assert_eq!(server.get("/healthz").await, (StatusCode::OK, "ok\n".to_owned()));
    let mut ada = server.connect("notes").await;
    let _bob = server.connect("notes").await;
    let _cy = server.connect("plans").await;
    ada.act(|c| c.insert(0, "hello").expect("fits")).await;
    ada.sync().await;
    let (status, body) = server.get("/status").await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        body,
        json!({"connections": 3, "outbox_bytes": 0, "documents": [
            {"id": "notes", "clients": 2, "revision": 1, "length": 5},
            {"id": "plans", "clients": 1, "revision": 0, "length": 0},
        ]})
    );
    assert_eq!(server.get("/nowhere").await.0, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_document_or_client_ids_and_duplicates_are_refused() {
    let server = TestServer::start().await;
    let url = |path: &str| format!("ws://{}{path}", server.addr());
    for path in
        ["/ws/", "/ws/has%20space", &format!("/ws/{}", "a".repeat(129)), "/ws/notes?client=bad!id"]
    {
        let error = within(tokio_tungstenite::connect_async(url(path))).await.expect_err("refused");
        assert!(error.to_string().contains("400"), "{path}: {error}");
    }
    let ada = Client::connect(server.addr(), "/ws/notes?client=ada").await;
    assert_eq!(ada.id(), "ada");
    let error = within(tokio_tungstenite::connect_async(url("/ws/notes?client=ada")))
        .await
        .expect_err("taken");
    assert!(error.to_string().contains("409"), "{error}");
    drop(ada);
    server.shutdown().await;
}

#[tokio::test]
async fn one_client_id_may_be_in_two_documents() {
    let server = TestServer::start().await;
    let notes = Client::connect(server.addr(), "/ws/notes?client=ada").await;
    let plans = Client::connect(server.addr(), "/ws/plans?client=ada").await;
    assert_eq!((notes.thin.doc(), plans.thin.doc()), ("notes", "plans"));
    server.shutdown().await;
}

#[tokio::test]
async fn after_shutdown_a_kept_alive_http_connection_is_closed_not_upgraded() {
    use http_body_util::Empty;
    use hyper::{Request, body::Bytes};
    use hyper_util::rt::TokioIo;

    let server = TestServer::start().await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.expect("connects");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    let connection = tokio::spawn(connection);
    let request = || {
        Request::get("/healthz")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    let response = within(sender.send_request(request())).await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
    within(connection)
        .await
        .expect("the connection task ran")
        .expect("closed cleanly by the server");
    assert!(within(sender.send_request(request())).await.is_err(), "the connection was closed");
}
