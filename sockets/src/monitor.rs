//! Monitor events: what happens to a socket's network connections, as libzmq's `zmq_socket_monitor`
//! reports, but typed.

use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed the stream.
    PeerClosed,
    /// The operating system reported an error.
    Io(std::io::ErrorKind),
    /// The peer broke the protocol, is incompatible, sent ERROR, or missed a deadline.
    Protocol(zring_zmtp::Error),
    /// The socket refused the peer after the handshake (a second PAIR peer, a ROUTER id in use).
    Refused,
    /// `shm://`: the peer broke the rules of the rendezvous or of the shared rings (a bad greeting,
    /// a memfd that is not sealed, an index or a length out of bounds).
    SharedMemory(String),
}

/// Something that happened to one of the socket's network connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A stream is up (accepted or connected); the handshake follows.
    Connected {
        /// The peer's address.
        peer: Option<SocketAddr>,
    },
    /// The handshake completed: messages flow.
    HandshakeSucceeded {
        /// The peer's address.
        peer: Option<SocketAddr>,
    },
    /// The handshake failed; the connection is closed.
    HandshakeFailed {
        /// The peer's address.
        peer: Option<SocketAddr>,
        /// Why.
        reason: DisconnectReason,
    },
    /// An established connection ended.
    Disconnected {
        /// The peer's address.
        peer: Option<SocketAddr>,
        /// Why.
        reason: DisconnectReason,
    },
}

/// Where a socket's events go: every monitor it handed out.
#[derive(Default)]
pub(crate) struct Hub {
    listeners: Mutex<Vec<Sender<MonitorEvent>>>,
}

impl Hub {
    pub(crate) fn subscribe(&self) -> Monitor {
        let (tx, rx) = channel();
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Monitor { rx }
    }

    /// Sends `event` to every monitor still alive.
    pub(crate) fn emit(&self, event: MonitorEvent) {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// Receives a socket's [`MonitorEvent`]s, from any thread.
#[derive(Debug)]
pub struct Monitor {
    rx: Receiver<MonitorEvent>,
}

impl Monitor {
    /// The next event, waiting at most `timeout`; `None` if none came (or the socket is gone).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<MonitorEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<MonitorEvent> {
        self.rx.try_recv().ok()
    }
}

/// A shared hub, cheap to hand to sessions.
pub(crate) type SharedHub = Arc<Hub>;
