//! Socket options, with libzmq's defaults.

use std::time::Duration;

use bytes::Bytes;

use crate::pipe::Bound;

/// The default high-water mark, in messages (libzmq's `SNDHWM`/`RCVHWM`).
pub const DEFAULT_HWM: usize = 1000;

/// Every option of a socket. Set through the `Socket::set_*` methods.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Messages queued per peer for sending before the pattern's mute action; 0: no limit.
    pub(crate) sndhwm: usize,
    /// Messages queued per peer on receipt; 0: no limit.
    pub(crate) rcvhwm: usize,
    /// `None`: block; `Some(0)`: never block.
    pub(crate) sndtimeo: Option<Duration>,
    /// `None`: block; `Some(0)`: never block.
    pub(crate) rcvtimeo: Option<Duration>,
    /// How long queued messages are kept after close; `None`: until delivered.
    pub(crate) linger: Option<Duration>,
    /// Our routing id, announced as `Identity`.
    pub(crate) routing_id: Bytes,
    /// ROUTER: refuse unroutable messages instead of dropping them.
    pub(crate) router_mandatory: bool,
    /// XPUB: report every subscription, not only a topic's first.
    pub(crate) xpub_verbose: bool,
    /// The largest frame accepted from a network peer (`MAXMSGSIZE`); `None`: no limit.
    pub(crate) maxmsgsize: Option<u64>,
    /// Deadline of a network handshake (`HANDSHAKE_IVL`).
    pub(crate) handshake_ivl: Option<Duration>,
    /// PING interval (`HEARTBEAT_IVL`); `None`: none.
    pub(crate) heartbeat_ivl: Option<Duration>,
    /// The TTL our PINGs announce (`HEARTBEAT_TTL`).
    pub(crate) heartbeat_ttl: Option<Duration>,
    /// How long after a PING the peer may stay silent (`HEARTBEAT_TIMEOUT`; default: the interval).
    pub(crate) heartbeat_timeout: Option<Duration>,
    /// Delay before reconnecting (`RECONNECT_IVL`).
    pub(crate) reconnect_ivl: Duration,
    /// Largest reconnect delay when doubling (`RECONNECT_IVL_MAX`; zero: no doubling).
    pub(crate) reconnect_ivl_max: Duration,
    /// Keep only the last message in each queue (`CONFLATE`).
    pub(crate) conflate: bool,
    /// Queue messages only to completed connections (`IMMEDIATE`).
    pub(crate) immediate: bool,
    /// `SO_KEEPALIVE` on network streams (`TCP_KEEPALIVE`; `None`: the system's default).
    pub(crate) tcp_keepalive: Option<bool>,
    /// Allow IPv6: `*` binds every IPv6 and IPv4 address, names may resolve to IPv6 (`IPV6`).
    pub(crate) ipv6: bool,
    /// Which I/O threads serve this socket's network connections, as a bit mask (`AFFINITY`; 0: any).
    pub(crate) affinity: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sndhwm: DEFAULT_HWM,
            rcvhwm: DEFAULT_HWM,
            sndtimeo: None,
            rcvtimeo: None,
            linger: None,
            routing_id: Bytes::new(),
            router_mandatory: false,
            xpub_verbose: false,
            maxmsgsize: None,
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat_ivl: None,
            heartbeat_ttl: None,
            heartbeat_timeout: None,
            reconnect_ivl: Duration::from_millis(100),
            reconnect_ivl_max: Duration::ZERO,
            conflate: false,
            immediate: false,
            tcp_keepalive: None,
            ipv6: false,
            affinity: 0,
        }
    }
}

/// The bound of one inproc direction: `CONFLATE` on either side, else the sum of the sender's and the
/// receiver's high-water marks, or unbounded if either is 0 (as libzmq's inproc).
pub(crate) fn inproc_bound(sender: (usize, bool), receiver: (usize, bool)) -> Bound {
    if sender.1 || receiver.1 {
        return Bound::Conflate;
    }
    if sender.0 == 0 || receiver.0 == 0 {
        return Bound::Unbounded;
    }
    Bound::Messages(sender.0.saturating_add(receiver.0))
}

/// The bound of a socket's own queue to or from a network session.
pub(crate) fn bound(hwm: usize, conflate: bool) -> Bound {
    match (conflate, hwm) {
        (true, _) => Bound::Conflate,
        (false, 0) => Bound::Unbounded,
        (false, n) => Bound::Messages(n),
    }
}
