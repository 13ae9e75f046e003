//! Socket options, with libzmq's defaults.

use std::time::Duration;

use bytes::Bytes;

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
        }
    }
}

/// A capacity from two high-water marks: their sum, or unbounded if either is 0 (as libzmq's inproc).
pub(crate) fn capacity(sender: usize, receiver: usize) -> Option<usize> {
    (sender != 0 && receiver != 0).then(|| sender.saturating_add(receiver))
}

/// A queue bound from a high-water mark: 0 means no bound.
pub(crate) fn bound(hwm: usize) -> Option<usize> {
    (hwm != 0).then_some(hwm)
}
