//! What the figures were measured on: CPU, cores, compiler and the peer crates' versions.

use std::{fs, process::Command, thread};

/// The package's own lock file, embedded so the printed versions are the ones compiled in.
const LOCK_FILE: &str = include_str!("../Cargo.lock");

/// The CPU model from `/proc/cpuinfo`, or "unknown CPU" where there is none.
pub(crate) fn cpu_model() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, model)| model))
        .map_or_else(|| "unknown CPU".to_owned(), |model| model.trim().to_owned())
}

/// Cores this process may use.
pub(crate) fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// `rustc --version` of the compiler on the PATH (the one cargo used to build this, unless the
/// environment changed in between).
pub(crate) fn rustc_version() -> String {
    Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc version unknown".to_owned())
}

/// The version of `package` in the lock file, if it is there once.
pub(crate) fn locked_version(package: &str) -> Option<&'static str> {
    let name_line = format!("name = \"{package}\"");
    let mut versions = LOCK_FILE.split("[[package]]").filter_map(|entry| {
        let mut lines = entry.lines().map(str::trim);
        lines.find(|line| *line == name_line)?;
        lines.next()?.strip_prefix("version = \"")?.strip_suffix('"')
    });
    let version = versions.next()?;
    versions.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_versions_are_found_in_the_lock_file() {
        for peer in ["diamond-types", "jumprope", "loro", "automerge", "yrs"] {
            assert!(locked_version(peer).is_some(), "{peer} not locked once");
        }
        assert_eq!(locked_version("no-such-package"), None);
    }
}
