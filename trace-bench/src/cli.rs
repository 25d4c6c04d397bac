//! Command-line options: how many runs, and which traces and systems to measure.

use anyhow::{Context, Result, bail};

/// The environment variable that sets the run count when `--runs` is not given.
pub(crate) const RUNS_VAR: &str = "TANDEM_BENCH_RUNS";

pub(crate) const USAGE: &str = "\
usage: tandem-trace-bench [--runs N] [--trace NAME[,NAME...]] [--system NAME[,NAME...]]

Replays real editing traces through Tandem's RGA and peer crates and prints the results.

  --runs N       runs per (system, trace), instead of 5 (3 for automerge and yrs);
                 the TANDEM_BENCH_RUNS environment variable does the same
  --trace NAME   only these traces (full name, or the part after the last '/'); repeatable
  --system NAME  only these systems; repeatable
  -h, --help     this text";

/// The parsed command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) help: bool,
    /// Overrides every system's default run count.
    pub(crate) runs: Option<usize>,
    /// Empty: every trace.
    traces: Vec<String>,
    /// Empty: every system.
    systems: Vec<String>,
}

impl Options {
    /// Parses `args` (without the program name), checking names against the known `traces`
    /// and `systems` so that a typo fails instead of silently measuring nothing.
    pub(crate) fn parse(
        args: impl IntoIterator<Item = String>,
        env_runs: Option<String>,
        traces: &[&str],
        systems: &[&str],
    ) -> Result<Options> {
        let mut options = Options::default();
        if let Some(runs) = env_runs {
            options.runs = Some(parse_runs(&runs).with_context(|| format!("{RUNS_VAR}={runs}"))?);
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value =
                |flag: &str| args.next().with_context(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => options.help = true,
                "--runs" => options.runs = Some(parse_runs(&value("--runs")?)?),
                "--trace" => options.traces.extend(names(&value("--trace")?)),
                "--system" => options.systems.extend(names(&value("--system")?)),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        check_names("trace", &options.traces, traces, Options::trace_matches)?;
        check_names("system", &options.systems, systems, |wanted, name| wanted == name)?;
        Ok(options)
    }

    /// The run count for a system whose default is `default`.
    pub(crate) fn runs(&self, default: usize) -> usize {
        self.runs.unwrap_or(default)
    }

    pub(crate) fn wants_trace(&self, name: &str) -> bool {
        self.traces.is_empty()
            || self.traces.iter().any(|wanted| Options::trace_matches(wanted, name))
    }

    pub(crate) fn wants_system(&self, name: &str) -> bool {
        self.systems.is_empty() || self.systems.iter().any(|wanted| wanted == name)
    }

    fn trace_matches(wanted: &str, name: &str) -> bool {
        wanted == name || name.rsplit('/').next() == Some(wanted)
    }
}

fn parse_runs(text: &str) -> Result<usize> {
    match text.parse() {
        Ok(0) | Err(_) => bail!("the run count must be a positive integer, not {text:?}"),
        Ok(runs) => Ok(runs),
    }
}

fn names(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned)
}

fn check_names(
    what: &str,
    wanted: &[String],
    known: &[&str],
    matches: fn(&str, &str) -> bool,
) -> Result<()> {
    for name in wanted {
        if !known.iter().any(|known| matches(name, known)) {
            bail!("unknown {what} {name:?}; known: {}", known.join(", "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACES: &[&str] = &["automerge-paper", "concurrent/clownschool"];
    const SYSTEMS: &[&str] = &["tandem", "yrs"];

    fn parse(args: &[&str], env: Option<&str>) -> Result<Options> {
        let args = args.iter().map(|arg| (*arg).to_owned());
        Options::parse(args, env.map(str::to_owned), TRACES, SYSTEMS)
    }

    #[test]
    fn filters_and_runs() {
        let options = parse(&["--runs", "2", "--trace", "clownschool", "--system", "yrs"], None)
            .expect("parses");
        assert_eq!(options.runs(5), 2);
        assert!(options.wants_trace("concurrent/clownschool"));
        assert!(!options.wants_trace("automerge-paper"));
        assert!(options.wants_system("yrs") && !options.wants_system("tandem"));
    }

    #[test]
    fn the_flag_overrides_the_environment() {
        assert_eq!(parse(&[], Some("4")).expect("parses").runs(5), 4);
        assert_eq!(parse(&["--runs", "1"], Some("4")).expect("parses").runs(5), 1);
        assert_eq!(parse(&[], None).expect("parses").runs(5), 5);
    }

    #[test]
    fn typos_and_zero_runs_are_errors() {
        assert!(parse(&["--trace", "automerge"], None).is_err());
        assert!(parse(&["--system", "tandem,yjs"], None).is_err());
        assert!(parse(&["--runs", "0"], None).is_err());
        assert!(parse(&["--runs"], None).is_err());
    }
}
