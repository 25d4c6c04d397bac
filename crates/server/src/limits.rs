//! What one address, or one connection, may take: connections open in total and per address,
//! new connections and history API requests per address per second, and messages per
//! connection (token buckets from governor). An IPv6 address counts by its /64 network; a
//! request through a trusted proxy counts by the address the proxy says it came from.
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
use ipnet::IpNet;

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
        let mut ticket = self.admit_proxy()?;
        // Refused here, the ticket gives its place in the total back as it is dropped.
        self.count_address(address)?;
        ticket.address = Some(address);
        Ok(ticket)
    }

    /// Lets a new connection from a trusted proxy in (counted in the total only), or says why
    /// not.
    pub(crate) fn admit_proxy(self: &Arc<Self>) -> Result<Ticket, Busy> {
        if self.total.fetch_add(1, Ordering::SeqCst) >= self.max_total {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy::Connections);
        }
        Ok(Ticket { gate: Arc::clone(self), total: true, address: None })
    }

    /// Lets a new connection from `address` that came through a trusted proxy in (counted
    /// under that address only: the proxy's connection is in the total), or says why not.
    pub(crate) fn admit_behind_proxy(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, Busy> {
        let address = limited(address);
        if self.new_per_address.check_key(&address).is_err() {
            return Err(Busy::NewConnectionsFromAddress);
        }
        self.count_address(address)?;
        Ok(Ticket { gate: Arc::clone(self), total: false, address: Some(address) })
    }

    /// Counts one more connection under `address` (already [`limited`]), if it has room.
    fn count_address(&self, address: IpAddr) -> Result<(), Busy> {
        let mut open = self.per_address.entry(address).or_insert(0);
        if *open >= self.max_per_address {
            return Err(Busy::ConnectionsFromAddress);
        }
        *open += 1;
        Ok(())
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
/// written as IPv6, `::ffff:a.b.c.d`), an IPv6 address by its /64 network, the smallest
/// block a site is given (else one host would have 2^64 allowances; a subscriber given a /56
/// still has 256).
pub(crate) fn limited(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Whether `address` is one of the trusted `proxies` (an IPv4 address and a network compared
/// as IPv4 also when either is written as IPv4-mapped IPv6).
pub(crate) fn is_proxy(proxies: &[IpNet], address: IpAddr) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    };
    proxies.iter().any(|proxy| unmapped(*proxy).contains(&address))
}

/// `net` as an IPv4 network if it is one written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`).
fn unmapped(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    match (v6.network().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(prefix)) => ipnet::Ipv4Net::new(v4, prefix).map_or(net, IpNet::V4),
        _ => net,
    }
}

/// The address a request from the trusted proxy `peer` came from: in its `X-Forwarded-For`
/// values (`forwarded`, raw, in the order the headers came), the last address that is not a
/// trusted proxy itself (each proxy appends the address it had the request from; only the
/// ones ours appended can be believed). If the hops read from the end are all trusted
/// proxies up to one that cannot be read (or the header is missing), the last trusted proxy
/// among them (the peer itself if none): what a client wrote in front is never believed,
/// and never spares it its own count either.
pub(crate) fn forwarded_from<'a>(
    proxies: &[IpNet],
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a [u8]>,
) -> IpAddr {
    let hops: Vec<&[u8]> = forwarded.flat_map(|value| value.split(|byte| *byte == b',')).collect();
    let mut from = peer;
    for hop in hops.iter().rev() {
        // An address may come as `[v6]` or with a port; anything else cannot be believed.
        let hop = std::str::from_utf8(hop).map(str::trim).ok();
        let Some(address) = hop.and_then(parse_hop) else { return from };
        if !is_proxy(proxies, address) {
            return address;
        }
        from = address;
    }
    from
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// One admitted connection's places under the limits; dropping it gives them back.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    /// Whether it counts in the total (a connection from a client behind a proxy does not:
    /// the proxy's does).
    total: bool,
    /// The address it is counted under (see [`limited`]); none for a proxy's connection.
    address: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.total {
            self.gate.total.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(address) = self.address {
            self.gate.per_address.remove_if_mut(&address, |_, open| {
                *open -= 1;
                *open == 0
            });
        }
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
