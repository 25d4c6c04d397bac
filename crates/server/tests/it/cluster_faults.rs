//! Cluster mode under faults between a node and NATS (a proxy that holds back NATS's answers or
//! cuts the link), and under clients that do unusual things: a request id used twice, a client
//! that moves to another node while its old connection lives on, two nodes saving one label.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tandem_protocol::{ClientMessage, ServerMessage};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    cluster::{Nats, counter, node_config, patient_node_config},
    support::{Client, TestServer, within},
};

/// What the proxy does with the link between a node and NATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    Up,
    /// NATS's answers wait in the proxy (the node's messages still reach NATS).
    Held,
    /// Every connection is cut, and new ones are refused.
    Cut,
    /// Up until the node publishes to a subject starting so, then held.
    HeldFrom(&'static str),
    /// Up until the node publishes to a subject starting so, then cut (after the publish).
    CutFrom(&'static str),
}

/// A TCP proxy between a node and a NATS server.
pub(crate) struct Proxy {
    port: u16,
    link: Arc<watch::Sender<Link>>,
}

impl Proxy {
    pub(crate) async fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("an address").port();
        let link = Arc::new(watch::Sender::new(Link::Up));
        let setter = Arc::clone(&link);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *setter.borrow() == Link::Cut {
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", to)).await else { continue };
                let (from_node, to_node) = inbound.into_split();
                let (from_nats, to_nats) = outbound.into_split();
                tokio::spawn(forward(from_node, to_nats, Arc::clone(&setter), false));
                tokio::spawn(forward(from_nats, to_node, Arc::clone(&setter), true));
            }
        });
        Proxy { port, link }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub(crate) fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// Copies `from` to `to` until either ends or the link is cut; with `holdable` (NATS's side),
/// what comes while the link is held waits until it is up again; else (the node's side) a
/// publish holds or cuts the link if it is armed for that.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    setter: Arc<watch::Sender<Link>>,
    holdable: bool,
) {
    let mut link = setter.subscribe();
    let mut pending = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    // What went before (its end), for a publish line cut in two reads.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let state = *link.borrow_and_update();
        if state == Link::Cut {
            return;
        }
        if state != Link::Held && !pending.is_empty() {
            if to.write_all(&pending).await.is_err() {
                return;
            }
            pending.clear();
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if holdable && *link.borrow() == Link::Held => {
                    pending.extend_from_slice(&buffer[..n]);
                }
                Ok(n) => {
                    let state = *link.borrow();
                    let trips = match state {
                        Link::HeldFrom(subject) | Link::CutFrom(subject) if !holdable => {
                            let line = format!("PUB {subject}");
                            tail.extend_from_slice(&buffer[..n]);
                            let found = tail.windows(line.len()).any(|w| w == line.as_bytes());
                            tail.drain(..tail.len().saturating_sub(line.len()));
                            found
                        }
                        _ => false,
                    };
                    // Held before the publish goes on, so that no answer to it gets through.
                    if trips {
                        setter.send_replace(Link::Held);
                    }
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                    if trips && matches!(state, Link::CutFrom(_)) {
                        setter.send_replace(Link::Cut);
                        return;
                    }
                }
            },
            changed = link.changed() => if changed.is_err() { return },
        }
    }
}

/// Waits until `check` holds, asking again every 50 ms.
pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    mut check: impl FnMut() -> F,
) {
    within(async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

pub(crate) async fn metric(node: &TestServer, name: &str) -> u64 {
    let (_, page) = node.get("/metrics").await;
    counter(&page, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_used_twice_is_two_changes_on_every_node() {
    let nats = Nats::start().await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("reuse").await;
    let mut bob = b.connect("reuse").await;
    // Ids are the client's to choose: nothing says they differ.
    for (revision, text, id) in [(0, "A", 1), (1, "B", 1), (2, "C", 2)] {
        let frame = format!(
            r#"{{"type":"insert","id":{id},"revision":{revision},"index":{revision},"text":"{text}"}}"#
        );
        ada.send_text(&frame).await;
        let ack = ada.answer().await;
        assert!(matches!(ack, ServerMessage::Ack { .. }), "{ack:?}");
    }
    bob.catch_up(3).await;
    assert_eq!(bob.thin.text(), "ABC");
    assert_eq!(a.document("reuse").await, ("ABC".to_owned(), 3));
    assert_eq!(b.document("reuse").await, ("ABC".to_owned(), 3));
    // A node that loads it now builds the same document from the log.
    let c = TestServer::start_with(node_config(&nats.url(), "c", 1)).await;
    assert_eq!(c.document("reuse").await, ("ABC".to_owned(), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stored_whose_answer_was_lost_is_applied_once() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("lost").await;
    ada.act(|c| c.insert(0, "A").expect("fits")).await;
    ada.sync().await;
    // NATS stores the next change, but its answer does not reach node A before the publish
    // times out: A cannot know whether it was stored.
    proxy.set(Link::Held);
    ada.act(|c| c.insert(1, "B").expect("fits")).await;
    eventually(|| async { metric(&a, "tandem_cluster_append_failures_total").await > 0 }).await;
    proxy.set(Link::Up);
    // Acknowledged once, as the author's own change (not heard back as someone else's).
    ada.sync().await;
    assert_eq!(ada.thin.text(), "AB");
    let mut bob = b.connect("lost").await;
    bob.catch_up(2).await;
    assert_eq!(bob.thin.text(), "AB");
    assert_eq!(a.document("lost").await, ("AB".to_owned(), 2));
    assert_eq!(b.document("lost").await, ("AB".to_owned(), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_stored_whose_answer_was_lost_is_applied_once_and_reported_restored() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let mut ada = a.connect("undo").await;
    ada.act(|c| c.insert(0, "first").expect("fits")).await;
    ada.sync().await;
    let save = ClientMessage::SaveVersion { id: Some(1.into()), label: "v1".into() };
    ada.send(&save).await;
    ada.until(|m| matches!(m, ServerMessage::Version { .. })).await;
    ada.act(|c| c.insert(5, " and more").expect("fits")).await;
    ada.sync().await;
    // NATS stores the restore, but node A does not hear so before its publish times out (its
    // reads of the version and its text go through first).
    proxy.set(Link::HeldFrom("tandem.doc."));
    ada.send(&ClientMessage::RestoreVersion { id: Some(2.into()), label: "v1".into() }).await;
    eventually(|| async { metric(&a, "tandem_cluster_append_failures_total").await > 0 }).await;
    proxy.set(Link::Up);
    // Found in the log: the asker hears the change, once, and then that it was restored.
    let done = ada.until(|m| matches!(m, ServerMessage::Restored { .. })).await;
    let ServerMessage::Restored { id, label, revision } = done else { unreachable!() };
    assert_eq!((id, label.as_str(), revision), (Some(2.into()), "v1", 3));
    assert_eq!((ada.thin.text(), ada.thin.revision()), ("first".into(), 3));
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    assert_eq!(b.document("undo").await, ("first".to_owned(), 3));
    assert_eq!(a.document("undo").await, ("first".to_owned(), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_moves_to_another_node_is_not_reported_gone() {
    let nats = Nats::start().await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut watcher_a = a.connect("moved").await;
    let mut watcher_b = b.connect("moved").await;
    let mut mover = a.connect("moved").await;
    let id = mover.id();
    for watcher in [&mut watcher_a, &mut watcher_b] {
        watcher.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == id)).await;
    }
    // The mover's link to A looks alive to A, but the mover has gone over to B.
    let mut moved = Client::resume(b.addr(), mover.thin.clone(), "").await;
    // A closes the connection left behind, for good.
    let closed = within(async {
        loop {
            match mover.socket.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(closed.map(|frame| u16::from(frame.code)), Some(1008));
    eventually(|| async {
        let (_, status) = a.get("/status").await;
        let status: serde_json::Value = serde_json::from_str(&status).expect("json");
        status["documents"][0]["clients"] == 1
    })
    .await;
    // Then the mover moves its caret on B: both watchers hear it, and never that it left.
    moved.send(&ClientMessage::CursorMove { id: None, line: 0, column: 7 }).await;
    for watcher in [&mut watcher_a, &mut watcher_b] {
        let heard = watcher
            .until(|m| match m {
                ServerMessage::Leave { client_id } => *client_id == id,
                ServerMessage::Presence(user) => user.client_id == id && user.cursor.column == 7,
                _ => false,
            })
            .await;
        assert!(matches!(heard, ServerMessage::Presence(_)), "told it left: {heard:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_label_saved_at_once_on_two_nodes_is_saved_once() {
    let nats = Nats::start().await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("labels").await;
    ada.act(|c| c.insert(0, "one").expect("fits")).await;
    ada.sync().await;
    let body = r#"{"label":"v"}"#;
    let saves = (0..8).map(|n| {
        let node = if n % 2 == 0 { &a } else { &b };
        node.request_with_body(hyper::Method::POST, "/api/docs/labels/versions", &[], body)
    });
    let mut statuses: Vec<u16> = futures_util::future::join_all(saves)
        .await
        .into_iter()
        .map(|(status, _, _)| status.as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_saved_whose_answer_was_lost_is_saved_not_refused() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let mut ada = a.connect("kept").await;
    ada.act(|c| c.insert(0, "one").expect("fits")).await;
    ada.sync().await;
    // The write of the label reaches NATS; then the link is cut before its answer comes, and
    // the node, reading the bucket again once it is back, finds the label there.
    proxy.set(Link::CutFrom("$KV."));
    let body = r#"{"label":"v"}"#;
    let (saving, mut tripped) = (
        a.request_with_body(hyper::Method::POST, "/api/docs/kept/versions", &[], body),
        proxy.link.subscribe(),
    );
    let reconnect = async {
        within(tripped.wait_for(|link| *link == Link::Cut)).await.expect("the proxy lives");
        proxy.set(Link::Up);
    };
    let ((status, _, saved), ()) = tokio::join!(saving, reconnect);
    assert_eq!(status.as_u16(), 201, "{saved}");
    let (_, listed) = a.get("/api/docs/kept/versions").await;
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed["versions"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["versions"][0]["revision"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lost_while_a_node_was_cut_off_is_set_right_after() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("ghost").await;
    let bob = b.connect("ghost").await;
    let mut cy = b.connect("ghost").await;
    let (bob_id, cy_id) = (bob.id(), cy.id());
    // Cy stays, reading (and so answering pings) all along.
    let staying = tokio::spawn(async move {
        loop {
            cy.recv().await;
        }
    });
    ada.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == cy_id)).await;
    // A is cut off from NATS; meanwhile Bob leaves (A never hears it), and A, hearing no
    // heartbeat, takes Cy (still there) for gone.
    proxy.set(Link::Cut);
    drop(bob);
    ada.until(|m| matches!(m, ServerMessage::Leave { client_id } if *client_id == cy_id)).await;
    proxy.set(Link::Up);
    // Once A hears B again, its view is B's: Cy back, Bob gone.
    ada.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == cy_id)).await;
    eventually(|| async {
        let fresh = a.connect("ghost").await;
        let ids: Vec<&str> = fresh.thin.users().map(|user| user.client_id.as_str()).collect();
        ids.contains(&cy_id.as_str()) && !ids.contains(&bob_id.as_str())
    })
    .await;
    staying.abort();
}

/// The revision a node's `/status` shows for its first document.
async fn status_revision(node: &TestServer) -> u64 {
    let (_, status) = node.get("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    status["documents"][0]["revision"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_resent_on_another_node_while_the_first_still_appends_it_is_applied_once() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("dup").await;
    // A is cut off while it appends Ada's change; Ada gives up on A and resends it on B.
    proxy.set(Link::Cut);
    ada.act(|c| c.insert(0, "hello").expect("fits")).await;
    eventually(|| async { metric(&a, "tandem_cluster_append_failures_total").await > 0 }).await;
    let mut moved = Client::resume(b.addr(), ada.thin.clone(), "").await;
    moved.sync().await;
    // A's link comes back: it finds the change in the log, made through B, and does not make
    // it again. (A ping from its old connection is answered once that change is dealt with.)
    proxy.set(Link::Up);
    moved.act(|c| c.insert(5, "!").expect("fits")).await;
    moved.sync().await;
    ada.send_text(r#"{"type":"ping","id":"after"}"#).await;
    ada.until_raw(|m| matches!(m, ServerMessage::Pong { .. })).await;
    eventually(|| async { status_revision(&a).await >= 2 }).await;
    assert_eq!(b.document("dup").await, ("hello!".to_owned(), 2));
    assert_eq!(a.document("dup").await, ("hello!".to_owned(), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_resent_to_a_node_that_then_reads_it_from_the_log_is_acked_once() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&proxy.url(), "b", 1)).await;
    let _watcher = b.connect("twice").await;
    let mut ada = a.connect("twice").await;
    // B hears nothing from NATS for now. A stores Ada's change; Ada's link to A drops before
    // she reads the ack, and she resumes on B, which has not seen the change, and resends it.
    proxy.set(Link::Held);
    ada.act(|c| c.insert(0, "hello").expect("fits")).await;
    let unacked = ada.thin.clone();
    ada.sync().await;
    drop(ada);
    let mut moved = Client::resume(b.addr(), unacked, "").await;
    proxy.set(Link::Up);
    // One ack for it, then the next change's: none twice.
    let mut first_acks = 0;
    loop {
        match moved.recv().await {
            ServerMessage::Ack { id: Some(id), .. } if id == 1.into() => {
                first_acks += 1;
                if first_acks == 1 {
                    let next = r#"{"type":"insert","id":2,"revision":1,"index":5,"text":"!"}"#;
                    moved.send_text(next).await;
                }
            }
            ServerMessage::Ack { .. } => break,
            ServerMessage::Error { .. } => panic!("refused"),
            _ => {}
        }
    }
    assert_eq!(first_acks, 1, "acknowledged twice");
    assert_eq!(b.document("twice").await, ("hello!".to_owned(), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_of_a_join_delayed_by_a_cut_does_not_close_the_clients_newer_connection() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&proxy.url(), "b", 1)).await;
    let mut watcher = a.connect("late").await;
    let _on_b = b.connect("late").await;
    // B is cut off: the news that a client joined there waits in B's NATS client.
    proxy.set(Link::Cut);
    let gave_up = b.connect("late").await;
    let id = gave_up.id();
    drop(gave_up);
    // The client goes to A with the same id, and B's link comes back.
    let mut live = Client::connect(a.addr(), &format!("/ws/late?client={id}")).await;
    proxy.set(Link::Up);
    // A joiner on B after the link is back is announced after that old news.
    let after = b.connect("late").await;
    let after_id = after.id();
    watcher.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == after_id)).await;
    // The client's connection to A is still there, and answers.
    live.send_text(r#"{"type":"ping","id":5}"#).await;
    live.until_raw(|m| matches!(m, ServerMessage::Pong { .. })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_lost_in_a_short_cut_is_set_right_by_the_next_roster() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    // A grace long enough that only the roster can take the user away.
    let a = TestServer::start_with(patient_node_config(&proxy.url(), "a")).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("short").await;
    let bob = b.connect("short").await;
    let bob_id = bob.id();
    ada.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == bob_id)).await;
    proxy.set(Link::Cut);
    drop(bob);
    eventually(|| async {
        let (_, status) = b.get("/status").await;
        let status: serde_json::Value = serde_json::from_str(&status).expect("json");
        status["connections"] == 0
    })
    .await;
    proxy.set(Link::Up);
    ada.until(|m| matches!(m, ServerMessage::Leave { client_id } if *client_id == bob_id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_dropped_while_nats_was_away_is_sent_again_once_it_is_back() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    // Not taken for gone while cut off (nor is B by A): only what A sends again sets B's view
    // of Ada right.
    let node = patient_node_config(&proxy.url(), "a");
    let a = TestServer::start_with(|config| {
        node(config);
        config.message_rate = std::num::NonZeroU32::new(1_000_000).expect("not zero");
        config.message_burst = std::num::NonZeroU32::new(1_000_000).expect("not zero");
    })
    .await;
    let node = patient_node_config(&nats.url(), "b");
    let b = TestServer::start_with(|config| {
        node(config);
        // Room for all of Ada's moves at once, once A is heard again.
        config.transport.queue_capacity = 100_000;
    })
    .await;
    let mut ada = a.connect("cursors").await;
    let mut bob = b.connect("cursors").await;
    let ada_id = ada.id();
    bob.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == ada_id)).await;
    // Cut off, A queues Ada's moves for NATS until its queue is full, then drops the rest:
    // the newest, her last position among them.
    proxy.set(Link::Cut);
    const MOVES: usize = 10_000;
    for line in 1..=MOVES {
        ada.send(&ClientMessage::CursorMove { line, column: 0, id: None }).await;
    }
    eventually(|| async { metric(&a, "tandem_cluster_presence_dropped_total").await > 0 }).await;
    proxy.set(Link::Up);
    let last = bob
        .until(|m| {
            matches!(m, ServerMessage::Presence(u)
                if u.client_id == ada_id && u.cursor.line == MOVES)
        })
        .await;
    assert!(matches!(last, ServerMessage::Presence(_)), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_restore_stored_while_its_room_was_unloaded_is_answered_as_stored() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let node = node_config(&proxy.url(), "a", 1);
    let a = TestServer::start_with(|config| {
        node(config);
        config.max_documents = 1;
    })
    .await;
    let mut ada = a.connect("undo").await;
    ada.act(|c| c.insert(0, "first").expect("fits")).await;
    ada.sync().await;
    ada.send(&ClientMessage::SaveVersion { id: Some(1.into()), label: "v1".into() }).await;
    ada.until(|m| matches!(m, ServerMessage::Version { .. })).await;
    ada.act(|c| c.insert(5, " and more").expect("fits")).await;
    ada.sync().await;
    drop(ada);
    eventually(|| async {
        let (_, status) = a.get("/status").await;
        let status: serde_json::Value = serde_json::from_str(&status).expect("json");
        status["documents"][0]["clients"] == 0
    })
    .await;
    // The restore reaches NATS, its answer does not reach A; meanwhile its (empty) room makes
    // way for another document.
    proxy.set(Link::HeldFrom("tandem.doc."));
    let restore =
        a.request_with_body(hyper::Method::POST, "/api/docs/undo/versions/v1/restore", &[], "");
    let meanwhile = async {
        eventually(|| async { metric(&a, "tandem_cluster_append_failures_total").await > 0 }).await;
        // (Its own load waits on NATS too, and may fail: only the unload matters here.)
        let addr = a.addr();
        tokio::spawn(async move { crate::support::upgrade_status_at(addr, "/ws/other").await });
        eventually(|| async {
            let (_, status) = a.get("/status").await;
            !status.contains(r#""id":"undo""#)
        })
        .await;
        proxy.set(Link::Up);
    };
    let ((status, _, body), ()) = tokio::join!(restore, meanwhile);
    assert_eq!(status.as_u16(), 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["revision"], 3);
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    assert_eq!(b.document("undo").await, ("first".to_owned(), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rosters_that_come_in_a_burst_after_a_cut_ask_for_the_users_once() {
    let nats = Nats::start().await;
    let proxy = Proxy::start(nats.port).await;
    let a = TestServer::start_with(node_config(&proxy.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("storm").await;
    let mut bob = b.connect("storm").await;
    let ada_id = ada.id();
    bob.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == ada_id)).await;
    // Ada stays, reading (and so answering pings) all along.
    let staying = tokio::spawn(async move {
        loop {
            ada.recv().await;
        }
    });
    // What B asks on the document's subject, counted until a mark of B's own that comes
    // after it (one publisher, in order).
    let watcher = async_nats::connect(nats.url()).await.expect("connects");
    let mut seen = watcher.subscribe("tandem.presence.storm").await.expect("subscribes");
    watcher.flush().await.expect("flushes");
    let counting = tokio::spawn(async move {
        let mut hellos = 0;
        while let Some(message) = seen.next().await {
            let signal: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
            match (signal["kind"].as_str(), signal["node"].as_str()) {
                (Some("hello"), Some("b")) => hellos += 1,
                (Some("joined"), Some("b")) if signal["client"] == "mark" => return hellos,
                _ => {}
            }
        }
        hellos
    });
    // Cut off long enough for B to take A for gone (3 s here, 15 heartbeats of A's).
    proxy.set(Link::Cut);
    bob.until(|m| matches!(m, ServerMessage::Leave { client_id } if *client_id == ada_id)).await;
    proxy.set(Link::Up);
    bob.until(|m| matches!(m, ServerMessage::Presence(u) if u.client_id == ada_id)).await;
    let mark = crate::support::Client::connect(b.addr(), "/ws/storm?client=mark").await;
    let hellos = within(counting).await.expect("counted");
    assert!((1..=2).contains(&hellos), "B asked for the users {hellos} times");
    drop(mark);
    staying.abort();
}
