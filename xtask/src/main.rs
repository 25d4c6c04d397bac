//! Project automation: `cargo xtask ci`, `cargo xtask tidy` and `cargo xtask bench`.
//!
//! Nothing imports this crate. It depends on std, anyhow and serde_json only, and runs cargo
//! through the `CARGO` variable that cargo sets.

mod tidy;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                    format check, clippy (warnings denied), tests, docs and tidy: what CI runs
  tidy                  layering of crates, file headers and manifest conventions
  bench                 both benchmarks below, trace replay first (release builds)
  bench traces [ARGS]   replay real editing traces through Tandem's RGA and peer CRDT and rope
                        crates (the bench/ package); ARGS go to it, e.g. --runs 3,
                        --trace automerge-paper, --system tandem,diamond-types, --help
  bench server          the server's durable throughput and acknowledgement latency";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str);
    match task {
        Some("ci") => ci(),
        Some("tidy") => tidy::check(&project_root()),
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
    cargo(&root, &["test", "--workspace", "--locked"], &[])?;
    cargo(
        &root,
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    tidy::check(&root)
}

/// `cargo xtask bench [traces [ARGS...] | server]`.
fn bench(args: &[String]) -> Result<()> {
    let root = project_root();
    match args.split_first() {
        None => {
            trace_bench(&root, &[])?;
            server_bench(&root)
        }
        Some((which, rest)) if which == "traces" => trace_bench(&root, rest),
        Some((which, [])) if which == "server" => server_bench(&root),
        Some(_) => bail!("unknown bench arguments {args:?}\n\n{USAGE}"),
    }
}

/// The trace benchmark: a package outside the workspace (its peer crates are heavy), with its own
/// lock file, built into its own folder under target/.
fn trace_bench(root: &Path, args: &[String]) -> Result<()> {
    let mut cargo_args = vec![
        "run",
        "--release",
        "--locked",
        "--manifest-path",
        "bench/Cargo.toml",
        "--target-dir",
        "target/trace-bench",
        "--",
    ];
    cargo_args.extend(args.iter().map(String::as_str));
    cargo(root, &cargo_args, &[])
}

fn server_bench(root: &Path) -> Result<()> {
    cargo(root, &["run", "--release", "--locked", "-p", "tandem-bench"], &[])
}

/// Runs cargo with `args` in `root`, failing if it fails.
fn cargo(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let mut command = Command::new(cargo_bin());
    command.args(args).current_dir(root).envs(env.iter().copied());
    let status = command.status().with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The workspace root: the parent of this crate's folder.
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}
