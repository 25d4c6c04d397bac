//! What one address, or one connection, may take: connections open in total and per address,
//! new connections and history API requests per address per second, and messages per
//! connection (token buckets from governor). An IPv6 address counts by its /64 network.
//! Every limit refuses rather than queues, so what a client sends never grows memory.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why a new connection is turned away (each is answered with HTTP 503).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    /// `--max-connections` are open.
    Connections,
    /// `--max-connections-per-ip` are open from this address.
    ConnectionsFromAddress,
    /// More than `--max-new-connections-per-ip` came from this address in the last second.
    NewConnectionsFromAddress,
}

impl Busy {
    /// The reason as `/metrics` labels it.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Busy::Connections => "connections",
            Busy::ConnectionsFromAddress => "connections_per_ip",
            Busy::NewConnectionsFromAddress => "new_connections_per_ip",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Busy::Connections => {
                "the server has as many connections as it takes; try again later\n"
            }
            Busy::ConnectionsFromAddress => {
                "too many connections from your address; close some and try again\n"
            }
            Busy::NewConnectionsFromAddress => {
                "too many new connections from your address; slow down and try again\n"
            }
        }
    }
}

/// Counts connections, in total and per address, and rate-limits new ones per address.
pub(crate) struct Gate {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    per_address: DashMap<IpAddr, usize>,
    new_per_address: DefaultKeyedRateLimiter<IpAddr>,
    api_per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Gate {
    pub(crate) fn new(
        max_total: usize,
        max_per_address: usize,
        new_per_second: NonZeroU32,
        api_per_second: NonZeroU32,
    ) -> Gate {
        Gate {
            max_total,
            max_per_address,
            total: AtomicUsize::new(0),
            per_address: DashMap::new(),
            new_per_address: RateLimiter::keyed(Quota::per_second(new_per_second)),
            api_per_address: RateLimiter::keyed(Quota::per_second(api_per_second)),
        }
    }

    /// Lets a new connection from `address` in, or says why not. The connection counts until
    /// its [`Ticket`] is dropped.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, Busy> {
        let address = limited(address);
        // The rate first: an address that keeps knocking uses up its own allowance.
        if self.new_per_address.check_key(&address).is_err() {
            return Err(Busy::NewConnectionsFromAddress);
        }
        if self.total.fetch_add(1, Ordering::SeqCst) >= self.max_total {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy::Connections);
        }
        let mut open = self.per_address.entry(address).or_insert(0);
        if *open >= self.max_per_address {
            drop(open);
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy::ConnectionsFromAddress);
        }
        *open += 1;
        Ok(Ticket { gate: Arc::clone(self), address })
    }

    /// Whether `address` may make one more history API request now.
    pub(crate) fn admit_api(&self, address: IpAddr) -> bool {
        self.api_per_address.check_key(&limited(address)).is_ok()
    }

    /// Forgets the rate state of addresses quiet for a while, so the map does not grow with
    /// every address ever seen.
    pub(crate) fn forget_quiet(&self) {
        self.new_per_address.retain_recent();
        self.new_per_address.shrink_to_fit();
        self.api_per_address.retain_recent();
        self.api_per_address.shrink_to_fit();
    }
}

/// The address the per-address limits count `address` under: an IPv4 address as it is (also
/// written as IPv6, `::ffff:a.b.c.d`), an IPv6 address by its /64 network, the least one
/// host is usually given (else one host would have 2^64 allowances).
pub(crate) fn limited(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// One admitted connection; dropping it gives its place back.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    /// The address it is counted under (see [`limited`]).
    address: IpAddr,
}

impl Ticket {
    /// The address the connection is counted under (its /64 network, for IPv6).
    pub(crate) fn address(&self) -> IpAddr {
        self.address
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::SeqCst);
        self.gate.per_address.remove_if_mut(&self.address, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

/// Edits from older than the history in memory one document places per second, and in a
/// burst: each costs a pass over the document's structure (about 2 ms for a 100,000-character
/// text with a long history), under the room's lock.
const OLD_EDITS_PER_SECOND: u32 = 20;
const OLD_EDITS_BURST: u32 = 40;

/// A document's allowance of edits placed from far back (see [`OLD_EDITS_PER_SECOND`]).
pub(crate) struct OldEdits(DefaultDirectRateLimiter);

impl OldEdits {
    pub(crate) fn new() -> OldEdits {
        let per_second = NonZeroU32::new(OLD_EDITS_PER_SECOND).expect("not zero");
        let burst = NonZeroU32::new(OLD_EDITS_BURST).expect("not zero");
        OldEdits(RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)))
    }

    /// Whether one more may be placed now.
    pub(crate) fn admit(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// What to do with one incoming message under the connection's message rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Handle,
    /// Over the rate: answered with `rate_limited`, changing nothing.
    Refuse,
    /// Over the rate once too often: the connection is closed with 1008.
    Close,
}

/// A connection's message rate: a token bucket, and a count of the messages it refused.
pub(crate) struct MessageLimit {
    bucket: DefaultDirectRateLimiter,
    refused: AtomicU64,
    max_refused: u64,
}

impl MessageLimit {
    pub(crate) fn new(per_second: NonZeroU32, burst: NonZeroU32, max_refused: u64) -> MessageLimit {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        MessageLimit { bucket: RateLimiter::direct(quota), refused: AtomicU64::new(0), max_refused }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        if self.bucket.check().is_ok() {
            return Verdict::Handle;
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused > self.max_refused { Verdict::Close } else { Verdict::Refuse }
    }
}
