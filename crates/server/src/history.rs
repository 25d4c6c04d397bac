//! A document's history as the store keeps it: its changes, the text at any revision, the
//! next character id of a revision, and its named versions. Every function here reads the
//! store, so it blocks: call it on a blocking thread.

use tandem_protocol::{Logged, replay};
use tandem_store::{
    Page, Store,
    records::{ChangeRecord, Encoded, SnapshotRecord, VersionRecord},
};

use crate::records;

/// How much one read of changes takes at most: 1,000 of them, 4 MiB of them.
pub(crate) const PAGE: Page = Page { count: 1_000, bytes: 4 << 20 };

/// Why history could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    #[error(transparent)]
    Store(#[from] tandem_store::Error),
    /// The stored changes do not rebuild the text: the store is damaged.
    #[error("document {doc}: the stored history does not rebuild revision {revision}")]
    Broken {
        doc: String,
        revision: u64,
        #[source]
        source: tandem_protocol::Error,
    },
}

/// The document's changes with revisions after `after`, up to `up_to`, as many as fit `page`.
pub(crate) fn changes(
    store: &dyn Store,
    doc: &str,
    after: u64,
    up_to: u64,
    page: Page,
) -> Result<Vec<Logged>, HistoryError> {
    let records = store.log(doc, after, up_to, page)?;
    let changes = records
        .iter()
        .map(|record| ChangeRecord::decode(doc, record.revision, &record.bytes))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(changes.into_iter().map(records::logged).collect())
}

/// The record of the change of `revision`, if the store has it.
pub(crate) fn change(
    store: &dyn Store,
    doc: &str,
    revision: u64,
) -> Result<Option<ChangeRecord>, HistoryError> {
    let Some(record) = store.log(doc, revision.saturating_sub(1), revision, Page::count(1))?.pop()
    else {
        return Ok(None);
    };
    Ok(Some(ChangeRecord::decode(doc, record.revision, &record.bytes)?))
}

/// The first and the last change of the document, if it has any.
pub(crate) fn ends(
    store: &dyn Store,
    doc: &str,
) -> Result<Option<(ChangeRecord, ChangeRecord)>, HistoryError> {
    let Some(last) = store.last(doc)? else { return Ok(None) };
    let last = ChangeRecord::decode(doc, last.revision, &last.bytes)?;
    let first = change(store, doc, 1)?;
    let first = match first {
        Some(first) => first,
        // A document stored before the log was kept whole: its oldest change kept.
        None => match store.log(doc, 0, last.revision, Page::count(1))?.pop() {
            Some(record) => ChangeRecord::decode(doc, record.revision, &record.bytes)?,
            None => last.clone(),
        },
    };
    Ok(Some((first, last)))
}

/// The next character id at `revision`, which placing an edit made at it needs: 1 at
/// revision 0; `None` if the store does not know it (a document stored before it was kept).
pub(crate) fn next_seq(
    store: &dyn Store,
    doc: &str,
    revision: u64,
) -> Result<Option<u64>, HistoryError> {
    if revision == 0 {
        return Ok(Some(1));
    }
    Ok(change(store, doc, revision)?.map(|record| record.next_seq).filter(|seq| *seq > 0))
}

/// The text and title of the document at `revision`: from the nearest checkpoint before it,
/// with the changes after that checkpoint applied, a page at a time. `None` if the store no
/// longer reaches back that far (a document stored before its whole history was kept).
pub(crate) fn text_at(
    store: &dyn Store,
    doc: &str,
    revision: u64,
) -> Result<Option<(String, String)>, HistoryError> {
    let checkpoint = store.checkpoint(doc, revision)?;
    let (from, mut text, mut title) = match checkpoint {
        Some(record) => {
            let checkpoint = SnapshotRecord::decode(doc, record.revision, &record.bytes)?;
            (checkpoint.revision, checkpoint.text, checkpoint.title)
        }
        None => (0, String::new(), String::new()),
    };
    let mut after = from;
    while after < revision {
        let page = self::changes(store, doc, after, revision, PAGE)?;
        // The log must follow on revision by revision, or that part of it was not kept.
        let follows =
            page.iter().enumerate().all(|(at, entry)| entry.revision == after + 1 + at as u64);
        let Some(last) = page.last().filter(|_| follows) else { return Ok(None) };
        after = last.revision;
        (text, title) = replay(&text, &title, &page).map_err(|source| HistoryError::Broken {
            doc: doc.to_owned(),
            revision,
            source,
        })?;
    }
    Ok(Some((text, title)))
}

/// The document's named versions, oldest first.
pub(crate) fn versions(store: &dyn Store, doc: &str) -> Result<Vec<VersionRecord>, HistoryError> {
    let mut versions = store
        .versions(doc)?
        .into_iter()
        .map(|(_, bytes)| VersionRecord::decode(doc, 0, &bytes))
        .collect::<Result<Vec<_>, _>>()?;
    versions.sort_by(|a, b| (a.created_at, &a.label).cmp(&(b.created_at, &b.label)));
    Ok(versions)
}

/// The version of the document named `label`.
pub(crate) fn version(
    store: &dyn Store,
    doc: &str,
    label: &str,
) -> Result<Option<VersionRecord>, HistoryError> {
    match store.version(doc, label)? {
        Some(bytes) => Ok(Some(VersionRecord::decode(doc, 0, &bytes)?)),
        None => Ok(None),
    }
}
