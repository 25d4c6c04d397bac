//! `cargo xtask tidy`: checks that the workspace keeps its shape.
//!
//! - Layering: each package may depend only on the workspace crates listed for it in [`LAYERS`],
//!   read against `cargo metadata`; the IO-free crates may not use runtime or IO crates.
//! - Every `.rs` file opens with a `//!` comment saying what it is for.
//! - Every member manifest inherits its package fields, dependencies and lints from the
//!   workspace.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Each workspace package and the workspace packages it may depend on.
const LAYERS: &[(&str, &[&str])] = &[
    ("tandem-crdt", &[]),
    ("tandem-document", &["tandem-crdt"]),
    ("tandem-presence", &["tandem-document", "tandem-crdt"]),
    ("tandem-protocol", &["tandem-presence", "tandem-document", "tandem-crdt"]),
    ("tandem-store", &[]),
    ("tandem-server-bench", &["tandem-server", "tandem-protocol", "tandem-crdt", "tandem-traces"]),
    ("tandem-traces", &[]),
    ("tandem-transport", &[]),
    (
        "tandem-server",
        &[
            "tandem-protocol",
            "tandem-presence",
            "tandem-document",
            "tandem-crdt",
            "tandem-transport",
            "tandem-store",
        ],
    ),
    ("xtask", &[]),
];

/// Packages that must do no IO, and so may not depend on these crates.
const IO_FREE: &[&str] = &["tandem-crdt", "tandem-document", "tandem-presence", "tandem-protocol"];
const IO_CRATES: &[&str] = &[
    "tokio",
    "tokio-tungstenite",
    "tungstenite",
    "futures-util",
    "dashmap",
    "hyper",
    "clap",
    "anyhow",
];

/// Package fields that every member takes from `[workspace.package]`.
const INHERITED_FIELDS: &[&str] = &["version", "edition", "rust-version", "license", "publish"];

/// Test data and helpers that packages may use only as dev-dependencies (benchmarks that list
/// them in [`LAYERS`] may use them as they are).
const DEV_ONLY: &[&str] = &["tandem-traces"];

/// Runs every check and reports all problems at once.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = layering(root)?;
    for file in rust_files(root)? {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        if !text.starts_with("//!") {
            problems.push(format!("{}: does not open with a `//!` comment", relative(root, &file)));
        }
    }
    for manifest in member_manifests(root)? {
        problems.extend(manifest_problems(root, &manifest)?);
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "))
}

fn layering(root: &Path) -> Result<Vec<String>> {
    let output = Command::new(super::cargo_bin())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let packages = metadata["packages"].as_array().context("metadata has no packages")?;
    let workspace: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let Some(&(_, allowed)) = LAYERS.iter().find(|(layer, _)| *layer == name) else {
            problems.push(format!("{name}: not in the layering table in xtask/src/tidy.rs"));
            continue;
        };
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dep = dependency["name"].as_str().unwrap_or("?");
            let is_dev = dependency["kind"].as_str() == Some("dev");
            if workspace.contains(&dep) {
                let dev_only = DEV_ONLY.contains(&dep);
                if dev_only && !is_dev && !allowed.contains(&dep) {
                    problems.push(format!("{name}: may use {dep} only as a dev-dependency"));
                } else if !dev_only && !allowed.contains(&dep) {
                    problems
                        .push(format!("{name}: may not depend on {dep} (allowed: {allowed:?})"));
                }
            } else if IO_FREE.contains(&name) && IO_CRATES.contains(&dep) && !is_dev {
                problems.push(format!("{name}: does no IO, so may not depend on {dep}"));
            }
        }
    }
    Ok(problems)
}

/// The problems of one member manifest: package fields, dependencies or lints not inherited
/// from the workspace.
fn manifest_problems(root: &Path, manifest: &Path) -> Result<Vec<String>> {
    let text =
        fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let name = relative(root, manifest);
    let mut problems = Vec::new();
    let mut section = String::new();
    let mut inherits_lints = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        let inherits = key.ends_with(".workspace") || line.contains("workspace = true");
        match section.as_str() {
            "[package]" if INHERITED_FIELDS.contains(&key) => {
                problems.push(format!("{name}: `{key}` should be `{key}.workspace = true`"));
            }
            "[dependencies]" | "[dev-dependencies]" | "[build-dependencies]" if !inherits => {
                problems.push(format!("{name}: dependency `{key}` should come from the workspace"));
            }
            "[lints]" => inherits_lints |= line == "workspace = true",
            _ => {}
        }
    }
    if !inherits_lints {
        problems.push(format!("{name}: needs `[lints] workspace = true`"));
    }
    Ok(problems)
}

fn member_manifests(root: &Path) -> Result<Vec<PathBuf>> {
    let mut manifests = vec![root.join("xtask/Cargo.toml")];
    for entry in fs::read_dir(root.join("crates")).context("listing crates/")? {
        let manifest = entry?.path().join("Cargo.toml");
        if manifest.exists() {
            manifests.push(manifest);
        }
    }
    manifests.sort();
    Ok(manifests)
}

fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![root.join("crates"), root.join("xtask"), root.join("trace-bench/src")];
    while let Some(folder) = folders.pop() {
        for entry in
            fs::read_dir(&folder).with_context(|| format!("listing {}", folder.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain `cargo test` catches layering and convention slips too.
    #[test]
    fn the_workspace_is_tidy() {
        if let Err(problems) = check(&crate::project_root()) {
            panic!("{problems:#}");
        }
    }

    #[test]
    fn manifests_that_do_not_inherit_are_caught() {
        let folder = std::env::temp_dir().join(format!("tandem-tidy-{}", std::process::id()));
        fs::create_dir_all(&folder).expect("temp folder");
        let manifest = folder.join("Cargo.toml");
        let text = "[package]\nname = \"x\"\nedition = \"2024\"\n\n[dependencies]\nserde = \"1\"\nanyhow.workspace = true\n";
        fs::write(&manifest, text).expect("write");
        let problems = manifest_problems(&folder, &manifest).expect("reads");
        fs::remove_dir_all(&folder).ok();
        assert_eq!(
            problems,
            [
                "Cargo.toml: `edition` should be `edition.workspace = true`",
                "Cargo.toml: dependency `serde` should come from the workspace",
                "Cargo.toml: needs `[lints] workspace = true`",
            ]
        );
    }
}
