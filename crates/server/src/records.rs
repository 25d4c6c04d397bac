//! The edge between the protocol and the store: a room's changes and snapshots as the store's
//! own records, and back.

use base64::{Engine, engine::general_purpose::STANDARD};
use tandem_protocol::{Change, LastRequest, Logged, RequestId, RoomSnapshot};
use tandem_store::records::{
    ChangeKind, ChangeRecord, LastRequestRecord, RequestIdRecord, SnapshotRecord, VERSION,
};

fn id_record(id: &RequestId) -> RequestIdRecord {
    match id {
        // Ids from the wire are safe integers, which fit; any other number is kept as text.
        RequestId::Number(n) => n
            .as_i64()
            .map_or_else(|| RequestIdRecord::String(n.to_string()), RequestIdRecord::Number),
        RequestId::String(s) => RequestIdRecord::String(s.clone()),
    }
}

fn id(record: RequestIdRecord) -> RequestId {
    match record {
        RequestIdRecord::Number(n) => RequestId::Number(n.into()),
        RequestIdRecord::String(s) => RequestId::String(s),
    }
}

/// The record of a change made at `at` (milliseconds since the Unix epoch).
pub(crate) fn change_record(entry: &Logged, at: u64) -> ChangeRecord {
    let change = match &entry.change {
        Change::Insert { index, text } => ChangeKind::Insert { index: *index, text: text.clone() },
        Change::Delete { index, length } => ChangeKind::Delete { index: *index, length: *length },
        Change::SetTitle { title } => ChangeKind::SetTitle { title: title.clone() },
        Change::IncrementCounter { name, amount, value } => {
            ChangeKind::IncrementCounter { name: name.clone(), amount: *amount, value: *value }
        }
    };
    ChangeRecord {
        v: VERSION,
        revision: entry.revision,
        author: entry.author.clone(),
        request: entry.request.as_ref().map(id_record),
        continued: entry.continued,
        next_seq: entry.next_seq,
        at: Some(at),
        change,
    }
}

pub(crate) fn logged(record: ChangeRecord) -> Logged {
    let change = match record.change {
        ChangeKind::Insert { index, text } => Change::Insert { index, text },
        ChangeKind::Delete { index, length } => Change::Delete { index, length },
        ChangeKind::SetTitle { title } => Change::SetTitle { title },
        ChangeKind::IncrementCounter { name, amount, value } => {
            Change::IncrementCounter { name, amount, value }
        }
    };
    Logged {
        revision: record.revision,
        author: record.author,
        request: record.request.map(id),
        continued: record.continued,
        next_seq: record.next_seq,
        change,
    }
}

pub(crate) fn snapshot_record(snapshot: &RoomSnapshot) -> SnapshotRecord {
    let requests = snapshot
        .requests
        .iter()
        .map(|(client, last)| {
            let record = LastRequestRecord {
                id: id_record(&last.id),
                revision: last.revision,
                value: last.value,
            };
            (client.clone(), record)
        })
        .collect();
    SnapshotRecord {
        v: VERSION,
        revision: snapshot.revision,
        text: snapshot.text.clone(),
        title: snapshot.title.clone(),
        counters: snapshot.counters.iter().map(|(name, value)| (name.to_owned(), value)).collect(),
        requests,
        structure: snapshot.structure.as_ref().map(|bytes| STANDARD.encode(bytes)),
        history_from: Some(snapshot.history_from),
        position: None,
    }
}

/// The checkpoint kept for a snapshot's text: the text, title and counters, no more.
pub(crate) fn checkpoint_record(snapshot: &RoomSnapshot) -> SnapshotRecord {
    SnapshotRecord { requests: Default::default(), structure: None, ..snapshot_record(snapshot) }
}

/// A snapshot as the room takes it; `None` if its structure is not base64.
pub(crate) fn snapshot(record: SnapshotRecord) -> Option<RoomSnapshot> {
    let requests = record
        .requests
        .into_iter()
        .map(|(client, last)| {
            (client, LastRequest { id: id(last.id), revision: last.revision, value: last.value })
        })
        .collect();
    let structure = match &record.structure {
        Some(structure) => Some(STANDARD.decode(structure).ok()?),
        None => None,
    };
    Some(RoomSnapshot {
        revision: record.revision,
        text: record.text,
        title: record.title,
        counters: record.counters.into(),
        requests,
        structure,
        history_from: record.history_from.unwrap_or(record.revision),
    })
}
