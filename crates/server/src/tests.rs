//! Tests of the server's internals that the integration tests cannot reach.

use std::{
    future::Future,
    sync::{Arc, Mutex, mpsc},
};

use tandem_protocol::{Change, Logged};
use tandem_store::{Batch, Error, MemoryStore, Page, Record, Store, Stored};

use crate::{
    cluster::roster::{Assembly, PART_BYTES, Roster, split},
    limits::{Busy, Gate, forwarded_from, is_proxy, limited},
    outbox::{Item, Outbox},
};

/// A store whose commits wait for a go from the test.
struct Gated {
    inner: MemoryStore,
    go: Mutex<mpsc::Receiver<()>>,
}

impl Store for Gated {
    fn load(&self, doc: &str, behind: u64) -> Result<Stored, Error> {
        self.inner.load(doc, behind)
    }

    fn log(&self, doc: &str, after: u64, up_to: u64, page: Page) -> Result<Vec<Record>, Error> {
        self.inner.log(doc, after, up_to, page)
    }

    fn last(&self, doc: &str) -> Result<Option<Record>, Error> {
        self.inner.last(doc)
    }

    fn checkpoint(&self, doc: &str, revision: u64) -> Result<Option<Record>, Error> {
        self.inner.checkpoint(doc, revision)
    }

    fn versions(&self, doc: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.inner.versions(doc)
    }

    fn version(&self, doc: &str, label: &str) -> Result<Option<Vec<u8>>, Error> {
        self.inner.version(doc, label)
    }

    fn commit(&self, batch: &Batch) -> Result<(), Error> {
        let _ = self.go.lock().expect("not poisoned").recv();
        self.inner.commit(batch)
    }
}

fn item(permit: crate::outbox::Permit) -> Item {
    let change = Change::Insert { index: 0, text: "x".into() };
    let logged = vec![Logged {
        revision: 1,
        author: "ada".into(),
        request: None,
        continued: false,
        next_seq: 2,
        change,
    }];
    Item {
        doc: "notes".into(),
        logged,
        at: 0,
        snapshot: None,
        versions: Vec::new(),
        sends: Vec::new(),
        permit: Some(permit),
    }
}

#[tokio::test]
async fn a_full_outbox_holds_the_next_frame_back_until_it_is_stored() {
    let (go, gate) = mpsc::channel();
    let store = Arc::new(Gated { inner: MemoryStore::new(), go: Mutex::new(gate) });
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (outbox, writer, _) = Outbox::start(store, 100, metrics).expect("starts");
    // A frame of 60 bytes fits, and its item waits in the store's commit.
    let first = outbox.reserve(60).await;
    outbox.push(item(first));
    assert_eq!(outbox.queued_bytes(), 60);
    // The next 60 bytes do not fit: the connection waits.
    let mut second = Box::pin(outbox.reserve(60));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(second.as_mut().poll(&mut context).is_pending());
    // Once the first item is stored and sent, there is room again.
    go.send(()).expect("the writer waits");
    let second = second.await;
    assert_eq!(outbox.queued_bytes(), 60);
    // A frame larger than the whole queue still gets in, alone.
    outbox.push(item(second));
    go.send(()).expect("the writer waits");
    let huge = outbox.reserve(1_000).await;
    assert_eq!(outbox.queued_bytes(), 100);
    drop(huge);
    drop(outbox);
    drop(go);
    writer.join().expect("the writer ends");
}

/// A store whose every commit fails.
struct Broken;

impl Store for Broken {
    fn load(&self, _: &str, _: u64) -> Result<Stored, Error> {
        Ok(Stored::default())
    }

    fn log(&self, _: &str, _: u64, _: u64, _: Page) -> Result<Vec<Record>, Error> {
        Ok(Vec::new())
    }

    fn last(&self, _: &str) -> Result<Option<Record>, Error> {
        Ok(None)
    }

    fn checkpoint(&self, _: &str, _: u64) -> Result<Option<Record>, Error> {
        Ok(None)
    }

    fn versions(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        Ok(Vec::new())
    }

    fn version(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn commit(&self, _: &Batch) -> Result<(), Error> {
        Err(Error::Version { doc: "notes".into(), revision: 1, version: 99 })
    }
}

#[tokio::test]
async fn a_failed_commit_stops_the_writer_sends_nothing_and_reports_the_error() {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (outbox, writer, mut failure) =
        Outbox::start(Arc::new(Broken), 100, metrics).expect("starts");
    let permit = outbox.reserve(10).await;
    let number = outbox.push(item(permit));
    let error = failure.wait_for(Option::is_some).await.expect("reported").clone();
    assert!(matches!(error.as_deref(), Some(Error::Version { version: 99, .. })), "{error:?}");
    assert!(outbox.done() < number, "the failed item counts as sent");
    // The writer has ended (rather than the process).
    tokio::task::spawn_blocking(move || writer.join()).await.expect("joins").expect("no panic");
}

// A node's roster in parts, and their assembly.

fn roster(docs: usize, clients: usize) -> Roster {
    (0..docs)
        .map(|doc| {
            let ids = (0..clients).map(|client| format!("c{doc:03}-{client:060}")).collect();
            (format!("doc-{doc:0120}"), ids)
        })
        .collect()
}

fn check(whole: Roster, budget: usize, parts: usize) {
    let split = split(whole.clone(), 7, budget);
    assert_eq!(split.len(), parts);
    for part in &split {
        let bytes = serde_json::to_vec(part).expect("serializes").len();
        assert!(bytes <= budget + 200, "a part of {bytes} bytes for a budget of {budget}");
    }
    let mut assembly = Assembly::default();
    let mut assembled = None;
    for part in split {
        assert!(assembled.is_none(), "assembled before the last part");
        assembled = assembly.take("b", part);
    }
    assert_eq!(assembled, Some(whole));
}

#[test]
fn a_small_roster_is_one_part() {
    check(roster(3, 2), PART_BYTES, 1);
    check(Roster::new(), PART_BYTES, 1);
    check([("empty".to_owned(), Vec::new())].into(), PART_BYTES, 1);
}

#[test]
fn a_roster_of_many_documents_is_split_between_them() {
    // 100 documents of 10 clients: about 85 KB of ids.
    check(roster(100, 10), 16 << 10, 6);
}

#[test]
fn one_document_with_many_clients_is_split_within_it() {
    // 10,000 clients with the longest ids in one document: about 680 KB.
    check(roster(1, 10_000), PART_BYTES, 11);
}

#[test]
fn a_heartbeat_missing_a_part_gives_no_roster() {
    let mut assembly = Assembly::default();
    let first = split(roster(100, 10), 1, 16 << 10);
    let second = split(roster(100, 10), 2, 16 << 10);
    // Part 1 of the first heartbeat lost: nothing, even at its last part.
    for part in first.iter().filter(|part| part.index != 1) {
        assert_eq!(assembly.take("b", part.clone()), None);
    }
    // A heartbeat's parts mixed with another's: nothing.
    assert_eq!(assembly.take("b", second[0].clone()), None);
    assert_eq!(assembly.take("b", first[1].clone()), None);
    for part in &second[1..] {
        assert_eq!(assembly.take("b", part.clone()), None);
    }
    // The next whole heartbeat is taken; and parts of two nodes do not mix.
    let third = split(roster(100, 10), 3, 16 << 10);
    let mut other = split(roster(2, 1), 3, 16 << 10);
    let mut assembled = None;
    for part in third {
        if let Some(part) = other.pop() {
            assert_eq!(assembly.take("c", part), Some(roster(2, 1)));
        }
        assembled = assembly.take("b", part);
    }
    assert_eq!(assembled, Some(roster(100, 10)));
    // A node forgotten mid-heartbeat starts over.
    let fourth = split(roster(100, 10), 4, 16 << 10);
    assert_eq!(assembly.take("b", fourth[0].clone()), None);
    assembly.forget("b");
    assert_eq!(assembly.take("b", fourth[1].clone()), None);
}

// The per-address limits' idea of an address.

#[test]
fn an_ipv6_host_counts_as_its_64_network_and_a_mapped_ipv4_as_itself() {
    use std::net::IpAddr;
    let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
    assert_eq!(limited(ip("203.0.113.7")), ip("203.0.113.7"));
    assert_eq!(limited(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
    assert_eq!(limited(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
    assert_ne!(limited(ip("2001:db8:1:2::1")), limited(ip("2001:db8:1:3::1")));
    // Two connections from one /64 share its allowance; another /64 has its own.
    let one = std::num::NonZeroU32::new(100).expect("not zero");
    let gate = Arc::new(Gate::new(10, 2, one, one));
    let first = gate.admit(ip("2001:db8::1")).expect("admitted");
    let second = gate.admit(ip("2001:db8::ffff:2")).expect("admitted");
    assert_eq!(gate.admit(ip("2001:db8::3")).err(), Some(Busy::ConnectionsFromAddress));
    assert!(gate.admit(ip("2001:db8:0:1::3")).is_ok());
    drop((first, second));
    assert!(gate.admit(ip("2001:db8::3")).is_ok());
}

#[test]
fn the_address_behind_trusted_proxies_is_the_last_one_they_did_not_add() {
    use std::net::IpAddr;
    let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
    let proxies: Vec<ipnet::IpNet> =
        vec!["10.0.0.0/8".parse().expect("a net"), "192.0.2.1/32".parse().expect("a net")];
    let from = |values: &[&str]| {
        forwarded_from(&proxies, ip("10.1.1.1"), values.iter().map(|value| value.as_bytes()))
    };
    assert_eq!(from(&["203.0.113.5"]), ip("203.0.113.5"));
    // What the client wrote itself comes first, and is not believed.
    assert_eq!(from(&["1.2.3.4, 203.0.113.5"]), ip("203.0.113.5"));
    // Through two of ours (in one header or in two), and in the forms a proxy may write.
    assert_eq!(from(&["203.0.113.5, 192.0.2.1", "10.9.9.9"]), ip("203.0.113.5"));
    assert_eq!(from(&["[2001:db8::5]"]), ip("2001:db8::5"));
    assert_eq!(from(&["203.0.113.5:4711"]), ip("203.0.113.5"));
    assert_eq!(from(&["[2001:db8::5]:4711"]), ip("2001:db8::5"));
    // Nothing, or nothing readable past ours: the last of ours.
    assert_eq!(from(&[]), ip("10.1.1.1"));
    assert_eq!(from(&["203.0.113.5, unknown"]), ip("10.1.1.1"));
    assert_eq!(from(&["203.0.113.5, garbage, 192.0.2.1"]), ip("192.0.2.1"));
    // Bytes that are not text, written by the client in front of what the proxy appended.
    let raw: &[u8] = b"\xff, 203.0.113.5";
    assert_eq!(forwarded_from(&proxies, ip("10.1.1.1"), [raw].into_iter()), ip("203.0.113.5"));
    assert!(is_proxy(&proxies, ip("::ffff:10.2.3.4")));
    assert!(!is_proxy(&proxies, ip("192.0.2.2")));
    // A proxy configured as IPv4-mapped IPv6 is the IPv4 address it maps.
    let mapped: Vec<ipnet::IpNet> = vec![
        "::ffff:10.0.0.1/128".parse().expect("a net"),
        "::ffff:192.0.2.0/120".parse().expect("a net"),
    ];
    assert!(is_proxy(&mapped, ip("10.0.0.1")));
    assert!(is_proxy(&mapped, ip("::ffff:10.0.0.1")));
    assert!(is_proxy(&mapped, ip("192.0.2.77")));
    assert!(!is_proxy(&mapped, ip("10.0.0.2")));
}

#[test]
fn a_heartbeat_of_one_part_reads_the_same_to_this_release_and_the_one_before() {
    use crate::cluster::Signal;
    // The heartbeat of the release before: the whole roster, no parts.
    let old = r#"{"kind":"alive","node":"a","roster":{"notes":["c1","c2"]}}"#;
    let Ok(Signal::Alive { part, .. }) = serde_json::from_str::<Signal>(old) else {
        panic!("the old heartbeat does not read");
    };
    let mut assembly = Assembly::default();
    assert_eq!(
        assembly.take("a", part),
        Some([("notes".to_owned(), vec!["c1".to_owned(), "c2".to_owned()])].into())
    );
    // And this release's, of one part, to the release before: its `roster` is all of it.
    let part = split(roster(2, 3), 9, PART_BYTES).remove(0);
    let new = serde_json::to_value(Signal::Alive { node: "a".into(), part }).expect("serializes");
    let listed: Roster = serde_json::from_value(new["roster"].clone()).expect("a roster");
    assert_eq!(listed, roster(2, 3));
    assert_eq!(new["kind"], "alive");
}
