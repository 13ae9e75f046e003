//! The session of one network stream: it sits on the stream's I/O thread between the codec and the
//! socket's pipe. Frames from the peer become whole messages in the pipe; messages from the socket
//! become frames; subscriptions change form on the way (`\x01topic` messages inside, SUBSCRIBE and
//! CANCEL commands on a 3.1 wire).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use zring_engine::{Disconnect, Session, Waker};
use zring_zmtp::{Config, Connection, EventRef, PeerInfo};

use crate::monitor::{DisconnectReason, MonitorEvent, SharedHub};
use crate::msg::Msg;
use crate::options::bound;
use crate::pipe::{Capacity, Command, Parts, PeerMeta, PipeEnd, Signal};
use crate::subscriptions::Subscriptions;
use crate::SocketType;

/// How many messages one `fill` moves from the pipe to the codec.
const FILL_BATCH: usize = 256;

/// What a session needs to know of its socket.
#[derive(Clone)]
pub(crate) struct SocketLink {
    pub(crate) socket_type: SocketType,
    /// Wakes the socket and carries new pipes to it.
    pub(crate) signal: Arc<Signal>,
    pub(crate) routing_id: Bytes,
    pub(crate) sndhwm: usize,
    pub(crate) rcvhwm: usize,
    pub(crate) conflate: bool,
    pub(crate) tcp_keepalive: Option<bool>,
    pub(crate) config: Config,
    /// Where monitor events go.
    pub(crate) monitor: SharedHub,
}

pub(crate) struct TcpSession {
    link: SocketLink,
    /// Our own signal: wakes this session on its I/O thread.
    signal: Arc<Signal>,
    /// The pipe to the socket: made at connect time on a connecting side (so that messages queue while
    /// disconnected), at the handshake otherwise.
    pipe: Option<PipeEnd>,
    /// A connecting side reconnects.
    connecting: bool,
    /// The pipe outlives each stream (a connecting side made it at `connect`).
    keep_pipe: bool,
    /// Frames of the message being received.
    inbound: Vec<Msg>,
    /// Whole messages the pipe had no room for: delivered before reading more from the stream.
    overflow: VecDeque<Parts>,
    /// What a SUB/XSUB session has sent upstream, to send again after a reconnection.
    subscriptions: Subscriptions,
    /// Send the subscriptions on the next fill (a new stream).
    resubscribe: bool,
    /// The current stream's peer address.
    peer: Option<std::net::SocketAddr>,
    /// The current stream's direct path, offered to the socket once the pipe exists.
    gate: Option<Arc<zring_engine::Gate>>,
    /// Whether the current stream completed its handshake.
    handshaken: bool,
}

impl TcpSession {
    /// A session for an accepted stream: its pipe is made at the handshake.
    pub(crate) fn accepted(link: SocketLink, waker: Waker) -> TcpSession {
        TcpSession::new(link, waker, None, false)
    }

    /// A session for an outgoing connection, with the session's end of a pipe already attached to the
    /// socket (or `None` for a ROUTER, which must learn the peer's routing id first).
    pub(crate) fn connecting(link: SocketLink, waker: Waker, pipe: Option<PipeEnd>) -> TcpSession {
        TcpSession::new(link, waker, pipe, true)
    }

    fn new(link: SocketLink, waker: Waker, pipe: Option<PipeEnd>, connecting: bool) -> TcpSession {
        let keep_pipe = pipe.is_some();
        let signal = Signal::for_session(waker);
        if let Some(p) = &pipe {
            p.attach_signal(signal.clone());
        }
        TcpSession {
            link,
            signal,
            pipe,
            connecting,
            keep_pipe,
            inbound: Vec::new(),
            overflow: VecDeque::new(),
            subscriptions: Subscriptions::default(),
            resubscribe: false,
            peer: None,
            gate: None,
            handshaken: false,
        }
    }

    fn deliver(&mut self, msg: Parts) {
        let Some(pipe) = &self.pipe else {
            return;
        };
        if !self.overflow.is_empty() {
            self.overflow.push_back(msg);
            return;
        }
        if let Err(back) = pipe.try_send(msg) {
            self.overflow.push_back(back);
        }
    }
}

fn subscription_msg(on: bool, topic: &[u8]) -> Parts {
    let mut body = Vec::with_capacity(topic.len() + 1);
    body.push(u8::from(on));
    body.extend_from_slice(topic);
    Parts::one(Msg::from(body))
}

impl Session for TcpSession {
    fn config(&self) -> Config {
        self.link.config.clone()
    }

    fn on_stream(&mut self, peer: Option<std::net::SocketAddr>, gate: &Arc<zring_engine::Gate>) {
        self.peer = peer;
        self.gate = Some(gate.clone());
        self.handshaken = false;
        self.link.monitor.emit(MonitorEvent::Connected { peer });
    }

    fn on_ready(&mut self, peer: &PeerInfo) -> bool {
        self.inbound.clear();
        self.handshaken = true;
        self.link
            .monitor
            .emit(MonitorEvent::HandshakeSucceeded { peer: self.peer });
        if self.pipe.is_none() {
            if self.link.signal.is_closed() {
                // The socket is gone: nobody to attach a new peer to.
                return false;
            }
            // Each side's meta describes that side's owner as its peer sees it: the socket sees the
            // remote peer through this session.
            let socket_side = (
                Some(self.link.signal.clone()),
                PeerMeta {
                    socket_type: self.link.socket_type,
                    routing_id: self.link.routing_id.clone(),
                },
            );
            let session_side = (
                Some(self.signal.clone()),
                PeerMeta {
                    socket_type: peer.socket_type,
                    routing_id: peer.identity.clone(),
                },
            );
            let (theirs, ours) = PipeEnd::pair(
                socket_side,
                session_side,
                Capacity {
                    forward: bound(self.link.sndhwm, self.link.conflate),
                    backward: bound(self.link.rcvhwm, self.link.conflate),
                },
            );
            self.link.signal.post(Command::Attach(theirs));
            self.pipe = Some(ours);
        }
        self.resubscribe = true;
        if let (Some(pipe), Some(gate)) = (&self.pipe, &self.gate) {
            // A subscriber's sends are transformed here (subscriptions become commands): it reads
            // directly but does not write so.
            pipe.offer_gate(Some(gate.clone()), !self.link.socket_type.is_subscriber());
        }
        true
    }

    fn on_event(&mut self, event: EventRef<'_>) {
        match event {
            EventRef::Frame(view) => {
                let more = view.more();
                let msg = Msg::from_frame(view);
                if more {
                    self.inbound.push(msg);
                } else if self.inbound.is_empty() {
                    // A one-frame message (the common case) needs no vector.
                    self.deliver(Parts::one(msg));
                } else {
                    self.inbound.push(msg);
                    let parts = Parts::from_vec(std::mem::take(&mut self.inbound));
                    self.deliver(parts);
                }
            }
            EventRef::Subscribe(topic) => self.deliver(subscription_msg(true, &topic)),
            EventRef::Cancel(topic) => self.deliver(subscription_msg(false, &topic)),
            EventRef::Ready(_) => {}
        }
    }

    fn accepting(&mut self) -> bool {
        let Some(pipe) = &self.pipe else {
            return true;
        };
        while let Some(msg) = self.overflow.pop_front() {
            if let Err(back) = pipe.try_send(msg) {
                self.overflow.push_front(back);
                return false;
            }
        }
        true
    }

    fn backlogged(&self) -> bool {
        !self.overflow.is_empty()
    }

    fn drained(&self) -> bool {
        // A conflating queue keeps only the newest message: every message must pass through it.
        !self.link.conflate
            && self.overflow.is_empty()
            && self.inbound.is_empty()
            && self.pipe.as_ref().is_some_and(PipeEnd::all_taken)
    }

    fn fill(&mut self, conn: &mut Connection) -> bool {
        let subscriber = self.link.socket_type.is_subscriber();
        if std::mem::take(&mut self.resubscribe) && subscriber {
            for (topic, count) in self.subscriptions.counts() {
                for _ in 0..count {
                    let _ = conn.subscribe(topic);
                }
            }
        }
        let Some(pipe) = &self.pipe else {
            return false;
        };
        for _ in 0..FILL_BATCH {
            let Some(msg) = pipe.try_recv() else {
                return false;
            };
            if subscriber && msg.len() == 1 {
                let first = msg.first();
                let topic = first.get(1..).unwrap_or_default();
                match first.first() {
                    Some(1) => {
                        self.subscriptions.add(Bytes::copy_from_slice(topic));
                        let _ = conn.subscribe(topic);
                        continue;
                    }
                    Some(0) => {
                        self.subscriptions.remove(topic);
                        let _ = conn.cancel(topic);
                        continue;
                    }
                    _ => {}
                }
            }
            match msg.into_single() {
                Ok(frame) => queue_frame(conn, frame),
                Err(parts) => parts.into_frames().for_each(|f| queue_frame(conn, f)),
            }
        }
        pipe.readable()
    }

    fn on_disconnect(&mut self, why: Disconnect<'_>) -> bool {
        let reason = match why {
            Disconnect::Eof => DisconnectReason::PeerClosed,
            Disconnect::Io(e) => DisconnectReason::Io(e.kind()),
            Disconnect::Protocol(e) => DisconnectReason::Protocol(e.clone()),
            _ => DisconnectReason::Refused,
        };
        let peer = self.peer.take();
        self.on_close();
        // A failed connect never had a stream: nothing to report but the retry that follows.
        if peer.is_some() || self.handshaken {
            self.link.monitor.emit(if self.handshaken {
                MonitorEvent::Disconnected { peer, reason }
            } else {
                MonitorEvent::HandshakeFailed { peer, reason }
            });
        }
        self.handshaken = false;
        // A message is all its frames or none: a partial one dies with the stream.
        self.inbound.clear();
        if !self.keep_pipe {
            // A queue made for this stream goes with it (spec 28-30: "SHALL destroy"; IMMEDIATE).
            self.pipe = None;
            self.overflow.clear();
        }
        // Reconnect, even for a closed socket whose queued messages are still within its linger.
        self.connecting && !self.finished()
    }

    fn outbound_idle(&mut self) -> bool {
        !self.link.socket_type.is_subscriber()
            && self.gate.is_some()
            && self.pipe.as_ref().is_some_and(|p| !p.readable())
    }

    fn on_close(&mut self) {
        if let Some(pipe) = &self.pipe {
            pipe.offer_gate(None, false);
        }
        self.gate = None;
    }

    fn keepalive(&self) -> Option<bool> {
        self.link.tcp_keepalive
    }

    fn finished(&mut self) -> bool {
        match &self.pipe {
            Some(pipe) => pipe.finished() || self.link.signal.linger_expired(),
            None => self.link.signal.is_closed(),
        }
    }

    fn abandoned(&mut self) -> bool {
        self.link.signal.linger_expired()
    }
}

/// Hands one frame to the codec: a small body is copied into its batch, a large one kept by reference.
fn queue_frame(conn: &mut Connection, frame: Msg) {
    let more = frame.more();
    if frame.is_inline() {
        let _ = conn.send_frame_copy(&frame, more);
    } else {
        let _ = conn.send_frame(frame.into_bytes(), more);
    }
}
