//! Project automation: `cargo xtask ci` and `cargo xtask tidy`.
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
  ci     format check, clippy (warnings denied), tests, docs and tidy: what CI runs
  tidy   layering of crates, file headers and manifest conventions
  bench  the server's durable throughput and acknowledgement latency (release build)";

fn main() -> Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("ci") => ci(),
        Some("tidy") => tidy::check(&project_root()),
        Some("bench") => {
            cargo(&project_root(), &["run", "--release", "--locked", "-p", "tandem-bench"], &[])
        }
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
