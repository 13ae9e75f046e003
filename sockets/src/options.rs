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
        }
    }
}

/// A capacity from two high-water marks: their sum, or unbounded if either is 0 (as libzmq's inproc).
pub(crate) fn capacity(sender: usize, receiver: usize) -> Option<usize> {
    (sender != 0 && receiver != 0).then(|| sender.saturating_add(receiver))
}
