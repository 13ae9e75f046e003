//! The socket patterns of specs 28-31. Each file holds only its own state (REQ's lock-step, ROUTER's
//! routing ids, PUB's filters) and composes the strategies of `route`.

mod pair;
mod pubsub;
mod reqrep;
mod simple;

use bytes::Bytes;

use crate::error::Error;
use crate::options::Options;
use crate::pipe::Parts;
use crate::route::{PipeId, Pipes};
use crate::SocketType;

/// Why a send did not happen.
pub(crate) enum SendError {
    /// Every eligible pipe is at its high-water mark: the message is given back to retry.
    Full(Parts),
    /// The send is refused; the message is dropped.
    Fail(Error),
}

/// Counters a pattern keeps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    /// Messages a PUB/XPUB dropped for a subscriber at its high-water mark.
    pub hwm: u64,
    /// Messages a ROUTER dropped for an unknown routing id (or a full peer) without `ROUTER_MANDATORY`.
    pub unroutable: u64,
    /// Messages whose large frames together exceed what an `shm://` ring can carry (1 GiB), dropped.
    pub too_large: u64,
}

/// What every pattern does. Sends and receives move whole messages.
pub(crate) trait Pattern: Send {
    /// A new pipe. Returns false to refuse it (PAIR's second peer, ROUTER's duplicate id).
    fn attach(&mut self, id: PipeId, pipes: &Pipes) -> bool;
    /// A pipe is gone.
    fn detach(&mut self, id: PipeId, pipes: &Pipes);
    /// Sends a whole message.
    fn send(&mut self, pipes: &Pipes, msg: Parts, options: &Options) -> Result<(), SendError>;
    /// Receives a whole message, if one is ready.
    fn recv(&mut self, pipes: &Pipes, options: &Options) -> Result<Option<Parts>, Error>;
    /// Whether a send is allowed now by the pattern's state (REQ/REP lock-step).
    fn check_send(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Whether a one-frame message read from the socket's one stream (past the queue, see
    /// `Socket::inbox`) is delivered: SUB drops what it did not subscribe to.
    fn accepts(&self, _body: &[u8]) -> bool {
        true
    }
    /// For messages read past the queue from the stream of pipe `id`: whether a receive is
    /// allowed now by the pattern's state (`Err`: REQ before it sent), and whether they are for
    /// it (`Ok(false)`: dropped, as a REQ drops what comes from a peer it did not ask).
    fn check_recv_from(&self, _id: PipeId) -> Result<bool, Error> {
        Ok(true)
    }
    /// A message read past the queue from the stream of pipe `id`, an empty delimiter and a body,
    /// was received (REQ: the reply; REP: a request, to be answered behind the same delimiter).
    fn received_direct(&mut self, _id: PipeId) {}
    /// Whether the next message may go straight to the socket's one peer, `id`, behind one empty
    /// delimiter, as the pattern's `send` would send it (REQ: a request; REP: the reply to a
    /// request that came behind a delimiter alone); `Err` if a send is refused now. Once it went,
    /// [`Pattern::sent_direct`] is called.
    fn direct_envelope(&self, _id: PipeId) -> Result<bool, Error> {
        Ok(false)
    }
    /// A message went to pipe `id` past `send`, as [`Pattern::direct_envelope`] allowed.
    fn sent_direct(&mut self, _id: PipeId) {}
    /// Whether a message could be received without blocking.
    fn readable(&self, pipes: &Pipes) -> bool;
    /// Whether a message could be sent without blocking.
    fn writable(&self, pipes: &Pipes) -> bool;
    /// Subscribes or cancels (SUB only; XSUB subscribes by sending).
    fn subscribe(&mut self, _pipes: &Pipes, _topic: Bytes, _on: bool) -> Result<(), ()> {
        Err(())
    }
    /// The drop counters.
    fn drops(&self) -> Drops {
        Drops::default()
    }
}

/// The pattern of a new socket.
pub(crate) fn new(socket_type: SocketType) -> Box<dyn Pattern> {
    match socket_type {
        SocketType::Pair => Box::new(pair::Pair::default()),
        SocketType::Push => Box::new(simple::Push::default()),
        SocketType::Pull => Box::new(simple::Pull::default()),
        SocketType::Dealer => Box::new(simple::Dealer::default()),
        SocketType::Req => Box::new(reqrep::Req::default()),
        SocketType::Rep => Box::new(reqrep::Rep::default()),
        SocketType::Router => Box::new(reqrep::Router::default()),
        SocketType::Pub => Box::new(pubsub::Publisher::new(false)),
        SocketType::XPub => Box::new(pubsub::Publisher::new(true)),
        SocketType::Sub => Box::new(pubsub::Subscriber::new(false)),
        SocketType::XSub => Box::new(pubsub::Subscriber::new(true)),
    }
}

/// Which operations a socket type supports at all.
pub(crate) fn can_send(t: SocketType) -> bool {
    !matches!(t, SocketType::Pull | SocketType::Sub)
}

/// Which operations a socket type supports at all.
pub(crate) fn can_recv(t: SocketType) -> bool {
    !matches!(t, SocketType::Push | SocketType::Pub)
}
