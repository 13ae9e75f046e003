//! What the socket layer plugs into each stream: the engine moves bytes and runs the codec; a
//! [`Session`] decides what the frames mean (pipes, routing, subscriptions).

use std::io;

use zring_zmtp::{Config, Connection, EventRef, PeerInfo};

use crate::Waker;

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Disconnect<'a> {
    /// The peer closed the stream.
    Eof,
    /// The operating system reported an error (including a refused or failed connect).
    Io(&'a io::Error),
    /// The codec refused the peer or a deadline passed.
    Protocol(&'a zring_zmtp::Error),
    /// The session refused the peer after the handshake (e.g. a second PAIR peer).
    Refused,
}

/// The socket side of one stream. Called on the stream's I/O thread, or on its socket's thread while
/// that one holds the read lease (always under the stream's [`crate::Gate`] lock).
pub trait Session: Send {
    /// The codec configuration for a new connection (each reconnect makes a new one).
    fn config(&self) -> Config;
    /// A stream is up (accepted, or connected), before the handshake. `gate` lets the socket's thread
    /// write to it directly when the I/O thread is idle (see [`crate::Gate`]); a session that may not
    /// take that path (one that transforms what its socket sends) ignores it.
    fn on_stream(
        &mut self,
        _peer: Option<std::net::SocketAddr>,
        _gate: &std::sync::Arc<crate::Gate>,
    ) {
    }
    /// Whether nothing from the socket is waiting to be sent (the gate may open). `false` keeps the
    /// gate shut.
    fn outbound_idle(&mut self) -> bool {
        false
    }
    /// The handshake completed. Returning false refuses the peer: the connection is closed.
    fn on_ready(&mut self, peer: &PeerInfo) -> bool;
    /// Something arrived after the handshake. Message frames are borrowed from the read buffer.
    fn on_event(&mut self, event: EventRef<'_>);
    /// Whether more input may be read now. False pauses reading until the session's waker is woken
    /// (its queue to the socket is at its high-water mark).
    fn accepting(&mut self) -> bool;
    /// Whether messages already read wait for room in the socket's queue.
    fn backlogged(&self) -> bool {
        false
    }
    /// Whether the session holds nothing from the peer (no partial message, nothing waiting for
    /// room) and its queue to the socket is empty: then a direct read may hand one-frame messages to
    /// the socket's thread itself, ahead of the queue, and order is kept.
    fn drained(&self) -> bool {
        false
    }
    /// Moves messages queued by the socket into `conn`. Returns true if more remain: the engine calls
    /// again when the batch's write completes, or, if the kernel took the batch at once, on its next
    /// turn through the ready queue.
    fn fill(&mut self, conn: &mut Connection) -> bool;
    /// The connection ended. Returns true to reconnect (connecting side).
    fn on_disconnect(&mut self, why: Disconnect<'_>) -> bool;
    /// Whether the session is done (its socket is gone and nothing is left to send, or its linger
    /// passed).
    fn finished(&mut self) -> bool;
    /// `SO_KEEPALIVE` for the stream (`None`: the system's default).
    fn keepalive(&self) -> Option<bool> {
        None
    }
    /// Whether output not yet written may be dropped (the socket's linger passed).
    fn abandoned(&mut self) -> bool {
        false
    }
    /// The stream is closing (for whatever reason): let go of its gate.
    fn on_close(&mut self) {}
}

/// Makes the session of each accepted stream.
pub trait SessionFactory: Send + Sync {
    /// A session for a new stream; `waker` schedules it on its I/O thread.
    fn session(&self, waker: Waker) -> Box<dyn Session>;
}

/// Makes the session of an outgoing connection, once its waker exists.
pub type MakeSession = Box<dyn FnOnce(Waker) -> Box<dyn Session> + Send>;
