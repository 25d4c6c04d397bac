//! `tandem-trace-bench`: replays real editing traces through Tandem's RGA and through peer CRDT
//! and rope crates in one process, and prints the times, memory and encoded sizes as tables.
//!
//! Run it with `cargo xtask bench traces`. Every replay is checked against the text its trace
//! must end in, and the bench fails if one differs; it asserts nothing about timing.

mod alloc;
mod cli;
mod concurrent;
mod edits;
mod machine;
mod measure;
mod peers;
mod report;
mod sequential;
mod tandem;

use std::{env, path::Path, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use tandem_crdt::RgaOp;
use tandem_traces::{BENCH_CONCURRENT, BENCH_SEQUENTIAL, ConcurrentTrace};

use crate::{
    cli::Options,
    edits::Edit,
    measure::{Samples, repeat, time},
    report::{Table, bytes, millis, ratio},
    sequential::{Footprint, System},
};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The name of Tandem's local-edit system, whose median is every ratio's numerator.
const TANDEM: &str = "tandem";
/// Tandem applying, as a remote replica, the operations of its own local replay.
const TANDEM_REMOTE: &str = "tandem-remote";
const DIAMOND_TYPES: &str = "diamond-types";
/// The trace after which memory and encoded sizes are measured.
const FOOTPRINT_TRACE: &str = "automerge-paper";
/// Concurrent traces whose `endContent` was produced with a different tie-break between
/// concurrent inserts at one position, so a correct CRDT may legitimately end elsewhere.
const MAY_DIFFER: &[&str] = &["egwalker-paper/A1"];
/// Run count of the concurrent measurements unless `--runs` says otherwise.
const CONCURRENT_RUNS: usize = 5;

fn main() -> Result<()> {
    let systems = sequential::systems();
    let mut system_names: Vec<&str> = systems.iter().map(|system| system.name).collect();
    system_names.insert(1, TANDEM_REMOTE);
    let trace_names: Vec<&str> = BENCH_SEQUENTIAL.iter().chain(BENCH_CONCURRENT).copied().collect();
    let options = Options::parse(
        env::args().skip(1),
        env::var(cli::RUNS_VAR).ok(),
        &trace_names,
        &system_names,
    )?;
    if options.help {
        println!("{}", cli::USAGE);
        return Ok(());
    }
    let mut results = Results::new();
    for &name in BENCH_SEQUENTIAL.iter().filter(|name| options.wants_trace(name)) {
        bench_sequential(name, &options, &systems, &mut results)
            .with_context(|| format!("sequential trace {name}"))?;
    }
    for &name in BENCH_CONCURRENT.iter().filter(|name| options.wants_trace(name)) {
        bench_concurrent(name, &options, &mut results)
            .with_context(|| format!("concurrent trace {name}"))?;
    }
    print_header(&options, &systems);
    results.print();
    Ok(())
}

/// Everything measured, printed once at the end so progress lines do not interleave with it.
struct Results {
    times: Table,
    memory: Table,
    sizes: Table,
    notes: Vec<String>,
}

impl Results {
    fn new() -> Results {
        Results {
            times: Table::new(&[
                ("trace", false),
                ("system", false),
                ("runs", true),
                ("median ms", true),
                ("min ms", true),
                ("tandem / system", true),
                ("check", false),
            ]),
            memory: Table::new(&[("system", false), ("live bytes", true), ("bytes / char", true)]),
            sizes: Table::new(&[("system", false), ("encoding", false), ("bytes", true)]),
            notes: Vec::new(),
        }
    }

    /// A timing row; `ratio_to` is the median of the Tandem figure this row compares with.
    fn time(&mut self, trace: &str, system: &str, samples: &Samples, ratio_to: Option<Duration>) {
        self.time_checked(trace, system, samples, ratio_to, "= endContent".to_owned());
    }

    fn time_checked(
        &mut self,
        trace: &str,
        system: &str,
        samples: &Samples,
        ratio_to: Option<Duration>,
        check: String,
    ) {
        let ratio =
            ratio_to.map_or_else(|| "-".to_owned(), |tandem| ratio(tandem, samples.median()));
        self.times.push(vec![
            trace.to_owned(),
            system.to_owned(),
            samples.len().to_string(),
            millis(samples.median()),
            millis(samples.min()),
            ratio,
            check,
        ]);
    }

    fn skipped(&mut self, trace: &str, systems: &str, why: &str) {
        let dash = || "-".to_owned();
        self.times.push(vec![
            trace.to_owned(),
            systems.to_owned(),
            dash(),
            dash(),
            dash(),
            dash(),
            format!("skipped: {why}"),
        ]);
    }

    fn footprint(&mut self, system: &str, footprint: &Footprint, final_chars: usize) {
        let per_char = footprint.live_bytes as f64 / final_chars.max(1) as f64;
        self.memory.push(vec![
            system.to_owned(),
            bytes(footprint.live_bytes),
            format!("{per_char:.1}"),
        ]);
        let (what, size) = match &footprint.encoded {
            Some(encoded) => (encoded.what, bytes(encoded.bytes as isize)),
            None => ("(a rope: nothing to encode)", "-".to_owned()),
        };
        self.sizes.push(vec![system.to_owned(), what.to_owned(), size]);
    }

    fn print(&self) {
        println!("## Replay time\n");
        println!("{}", self.times.render());
        println!(
            "- tandem / system: tandem's median over the system's; above 1, the system is faster. \
             On the diamond-types merge row: tandem merge over diamond-types merge."
        );
        for note in &self.notes {
            println!("- {note}");
        }
        if !self.memory.is_empty() {
            println!("\n## Memory after {FOOTPRINT_TRACE}\n");
            println!(
                "Bytes allocated and still live with the replayed document alive, minus those live \
                 before the replay (the trace itself excluded); per character of the final text.\n"
            );
            println!("{}", self.memory.render());
            println!("## Encoded size after {FOOTPRINT_TRACE}\n");
            println!("{}", self.sizes.render());
            println!("{SIZE_NOTES}");
        }
    }
}

/// What each encoding holds, since they do not all keep the same things.
const SIZE_NOTES: &str = "\
- tandem: every run's ids, reference and tombstone flag, and the visible text; deleted text is not kept.
- diamond-types: the operation history with every inserted character (deleted ones too), without deleted content (the default, ENCODE_FULL).
- loro: a snapshot, the current state plus the history.
- automerge: the whole change history, in its columnar format.
- yrs: the document's items; deleted text is garbage-collected (the default), its ids kept.";

fn print_header(options: &Options, systems: &[System]) {
    println!("# Tandem trace benchmark\n");
    println!(
        "machine: {} ({} cores), {}",
        machine::cpu_model(),
        machine::cores(),
        machine::rustc_version()
    );
    println!("command: {}", command_line());
    let peers: Vec<String> = systems
        .iter()
        .filter(|system| system.name != TANDEM)
        .map(|system| {
            // A system may be a second way of driving one crate, named `crate-how`.
            let package = system.name.strip_suffix("-plain").unwrap_or(system.name);
            let version = machine::locked_version(package).unwrap_or("?");
            format!("{} {version}", system.name)
        })
        .collect();
    println!("peers: {}", peers.join(", "));
    match options.runs {
        Some(runs) => println!("runs: {runs} per measurement"),
        None => {
            let fewer: Vec<String> = systems
                .iter()
                .filter(|system| system.default_runs != 5)
                .map(|system| format!("{} {}", system.name, system.default_runs))
                .collect();
            println!("runs: 5 per measurement ({}); override with --runs N", fewer.join(", "));
        }
    }
    println!("\nHow each system replays a sequential trace:");
    for system in systems {
        println!("- {}: {}", system.name, system.how);
    }
    println!(
        "- {TANDEM_REMOTE}: Rga::apply of the operations tandem's local replay made (collected \
         untimed), on a fresh Rga\n"
    );
}

/// The command line without the program's folder, so the output does not depend on where the
/// build put it.
fn command_line() -> String {
    let mut args: Vec<String> = env::args().collect();
    if let Some(program) = args.first_mut()
        && let Some(file) = Path::new(program.as_str()).file_name()
    {
        *program = file.to_string_lossy().into_owned();
    }
    args.join(" ")
}

fn progress(trace: &str, what: &str) {
    eprintln!("{trace}: {what}");
}

/// Times every wanted system on one sequential trace, Tandem first, and Tandem's remote replay.
fn bench_sequential(
    name: &str,
    options: &Options,
    systems: &[System],
    results: &mut Results,
) -> Result<()> {
    let trace = tandem_traces::sequential(name)?;
    let edits = Edit::all(&trace);
    let expected = trace.end_content.as_str();
    let mut tandem = None;
    for system in systems.iter().filter(|system| options.wants_system(system.name)) {
        progress(name, system.name);
        let runs = options.runs(system.default_runs);
        let samples = (system.measure)(&edits, expected, runs)
            .with_context(|| format!("replaying with {}", system.name))?;
        if system.name == TANDEM {
            results.time(name, TANDEM, &samples, None);
            tandem = Some(samples.median());
        } else {
            results.time(name, system.name, &samples, tandem);
        }
        if system.name == TANDEM && options.wants_system(TANDEM_REMOTE) {
            bench_remote(name, &edits, expected, options, results)?;
        }
        if name == FOOTPRINT_TRACE {
            let footprint = (system.footprint)(&edits, expected)
                .with_context(|| format!("measuring {}'s memory", system.name))?;
            results.footprint(system.name, &footprint, expected.chars().count());
        }
    }
    if options.wants_system(TANDEM_REMOTE) && !options.wants_system(TANDEM) {
        bench_remote(name, &edits, expected, options, results)?;
    }
    Ok(())
}

fn bench_remote(
    name: &str,
    edits: &[Edit<'_>],
    expected: &str,
    options: &Options,
    results: &mut Results,
) -> Result<()> {
    progress(name, TANDEM_REMOTE);
    let ops = tandem::operations(edits)?;
    let samples = tandem::measure_remote(&ops, expected, options.runs(5))
        .with_context(|| format!("replaying with {TANDEM_REMOTE}"))?;
    results.time(name, TANDEM_REMOTE, &samples, None);
    Ok(())
}

/// Tandem's edit-and-merge replay of one concurrent trace, and its merge against diamond-types'.
fn bench_concurrent(name: &str, options: &Options, results: &mut Results) -> Result<()> {
    let trace = tandem_traces::concurrent(name)?;
    let runs = options.runs(CONCURRENT_RUNS);
    let tandem = if options.wants_system(TANDEM) {
        Some(bench_tandem_concurrent(name, &trace, runs, results)?)
    } else {
        None
    };
    if options.wants_system(DIAMOND_TYPES) {
        progress(name, "diamond-types merge");
        let oplog = concurrent::diamond_oplog(&trace);
        let mut text = String::new();
        let samples = repeat(runs, || {
            let (branch, elapsed) = time(|| Ok(oplog.checkout_tip()))?;
            text = branch.content().to_string();
            Ok(elapsed)
        })?;
        let mut check = text_check(&text, &trace.end_content);
        if let Some((_, tandem_text)) = &tandem {
            let same =
                if *tandem_text == text { "same text as tandem" } else { "differs from tandem" };
            check = format!("{check}; {same}");
        }
        let ratio_to = tandem.as_ref().map(|(merge, _)| *merge);
        results.time_checked(name, "diamond-types merge (checkout_tip)", &samples, ratio_to, check);
    }
    let others = "jumprope, loro, automerge, yrs";
    let wanted = others.split(", ").any(|system| options.wants_system(system));
    if wanted {
        results.skipped(name, others, "no comparable cheap API for replaying a concurrent trace");
    }
    Ok(())
}

/// Times Tandem's replay (edit+merge), its replay of every operation on one replica (merge) and
/// the merge of every agent's final state; checks that all of them agree. Returns the merge's
/// median, the ratio's numerator against diamond-types, and the final text.
fn bench_tandem_concurrent(
    name: &str,
    trace: &ConcurrentTrace,
    runs: usize,
    results: &mut Results,
) -> Result<(Duration, String)> {
    let plan = concurrent::Plan::new(trace);
    progress(name, "tandem edit+merge");
    let edit_merge = repeat(runs, || {
        let (replay, elapsed) = time(|| concurrent::replay(trace, &plan, false))?;
        ensure!(replay.last.pending_len() == 0, "operations left pending");
        Ok(elapsed)
    })?;
    // One more replay, untimed, keeps each agent's final state for the state merge.
    let replay = concurrent::replay(trace, &plan, true)?;
    let all_ops: Vec<RgaOp> = replay.ops.iter().flatten().cloned().collect();

    progress(name, "tandem merge");
    let mut merged_ops = None;
    let merge = repeat(runs, || {
        let input = all_ops.clone();
        let (rga, elapsed) = time(|| tandem::apply_all(input))?;
        merged_ops = Some(rga);
        Ok(elapsed)
    })?;
    let merged_ops = merged_ops.context("no merge run")?;

    progress(name, "tandem state merge");
    let mut merged_states = None;
    let state_merge = repeat(runs, || {
        let (rga, elapsed) = time(|| Ok(concurrent::merge_states(&replay.agent_finals)))?;
        merged_states = Some(rga);
        Ok(elapsed)
    })?;
    concurrent::check_replicas(&replay, &merged_ops, merged_states.as_ref())?;

    let text = replay.last.to_string();
    let matches = text == trace.end_content;
    if !matches && !MAY_DIFFER.contains(&name) {
        bail!(
            "tandem's replay does not end in endContent: {}",
            edits::first_difference(&text, &trace.end_content)
        );
    }
    let check = format!("replicas equal; {}", text_check(&text, &trace.end_content));
    results.time_checked(name, "tandem edit+merge", &edit_merge, None, check);
    results.time_checked(name, "tandem merge (apply all ops)", &merge, None, "equal".to_owned());
    let states = format!("tandem state merge ({} agents)", plan.agents_with_txns());
    results.time_checked(name, &states, &state_merge, None, "equal".to_owned());
    if !matches {
        results.notes.push(format!(
            "{name}: tandem's text differs from endContent ({}). Expected: its endContent orders \
             concurrent inserts at one position by another rule.",
            edits::first_difference(&text, &trace.end_content)
        ));
    }
    Ok((merge.median(), text))
}

fn text_check(text: &str, expected: &str) -> String {
    if text == expected { "= endContent".to_owned() } else { "differs from endContent".to_owned() }
}
