//! Replaying sequential traces as local edits: the interface each system implements, and the
//! timing, memory and encoded-size measurements built on it.

use anyhow::{Context, Result, ensure};

use crate::{
    alloc,
    edits::{Edit, first_difference},
    measure::{Samples, repeat, time},
    peers, tandem,
};

/// A text CRDT or rope that can replay a trace as one local author.
pub(crate) trait Editor {
    /// The name in the output and in `--system`.
    const NAME: &'static str;
    /// How the system is driven, printed under the results.
    const HOW: &'static str;
    /// Runs per trace unless `--runs` says otherwise; slow systems use fewer.
    const DEFAULT_RUNS: usize = 5;

    /// The replayed document, kept whole so that its memory can be measured.
    type Doc;

    /// Applies every edit, in order, to a fresh document. This is the timed part.
    fn replay(edits: &[Edit<'_>]) -> Result<Self::Doc>;

    /// The document's visible text.
    fn text(doc: &Self::Doc) -> Result<String>;

    /// The document's encoded size, and what encoding it is; `None` for a plain rope.
    fn encode(doc: &mut Self::Doc) -> Result<Option<Encoded>>;
}

/// The size of one system's serialised document.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    /// The call that produced the bytes.
    pub(crate) what: &'static str,
    pub(crate) bytes: usize,
}

/// What a replayed document costs beyond its time.
#[derive(Debug, Clone)]
pub(crate) struct Footprint {
    /// Bytes still allocated with the document alive, minus those allocated before the replay.
    pub(crate) live_bytes: isize,
    pub(crate) encoded: Option<Encoded>,
}

/// One system, with its generic measurements turned into plain functions so that the systems
/// can be listed and filtered at run time.
pub(crate) struct System {
    pub(crate) name: &'static str,
    pub(crate) how: &'static str,
    pub(crate) default_runs: usize,
    pub(crate) measure: fn(&[Edit<'_>], &str, usize) -> Result<Samples>,
    pub(crate) footprint: fn(&[Edit<'_>], &str) -> Result<Footprint>,
}

fn system<S: Editor>() -> System {
    System {
        name: S::NAME,
        how: S::HOW,
        default_runs: S::DEFAULT_RUNS,
        measure: measure::<S>,
        footprint: footprint::<S>,
    }
}

/// Every system, Tandem first: its median is the numerator of every ratio.
pub(crate) fn systems() -> Vec<System> {
    vec![
        system::<tandem::Tandem>(),
        system::<peers::DiamondTypes>(),
        system::<peers::Jumprope>(),
        system::<peers::JumpropePlain>(),
        system::<peers::Loro>(),
        system::<peers::Automerge>(),
        system::<peers::Yrs>(),
    ]
}

/// Replays `edits` `runs` times on fresh documents, checking each result against `expected`.
fn measure<S: Editor>(edits: &[Edit<'_>], expected: &str, runs: usize) -> Result<Samples> {
    repeat(runs, || {
        let (doc, elapsed) = time(|| S::replay(edits))?;
        check::<S>(&doc, expected)?;
        Ok(elapsed)
    })
}

/// Replays `edits` once more, untimed, to measure the live document's memory and encoding.
fn footprint<S: Editor>(edits: &[Edit<'_>], expected: &str) -> Result<Footprint> {
    let before = alloc::live_bytes();
    let mut doc = S::replay(edits)?;
    let live_bytes = alloc::live_bytes() - before;
    check::<S>(&doc, expected)?;
    let encoded = S::encode(&mut doc).with_context(|| format!("encoding {}", S::NAME))?;
    Ok(Footprint { live_bytes, encoded })
}

fn check<S: Editor>(doc: &S::Doc, expected: &str) -> Result<()> {
    let text = S::text(doc)?;
    ensure!(
        text == expected,
        "{} replay does not end in the trace's endContent: {}",
        S::NAME,
        first_difference(&text, expected)
    );
    Ok(())
}
