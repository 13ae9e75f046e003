//! REQ, REP and ROUTER (spec 28): envelopes, lock-step, routing ids.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Drops, Pattern, SendError};
use crate::error::Error;
use crate::msg::Msg;
use crate::options::Options;
use crate::pipe::Parts;
use crate::route::fq::FairQueue;
use crate::route::{Duplex, PipeId, Pipes};

/// REQ: a request goes to the next peer with an empty delimiter in front; then only that peer's reply,
/// delimiter stripped, is accepted. Sending twice, or receiving before sending, is `InvalidState`.
#[derive(Default)]
pub(crate) struct Req {
    /// Requests out; replies (and strays, which are dropped) in.
    io: Duplex,
    /// The pipe the outstanding request went to; `Some` while a reply is expected.
    awaiting: Option<PipeId>,
}

impl Pattern for Req {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.io.attach(id);
        true
    }

    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.io.detach(id);
    }

    fn check_send(&self) -> Result<(), Error> {
        match self.awaiting {
            Some(_) => Err(Error::InvalidState),
            None => Ok(()),
        }
    }

    fn send(&mut self, pipes: &Pipes, mut msg: Parts, _: &Options) -> Result<(), SendError> {
        self.check_send().map_err(SendError::Fail)?;
        msg.push_front(Msg::new());
        match self.io.lb.send(pipes, msg) {
            Ok(id) => {
                self.awaiting = Some(id);
                Ok(())
            }
            Err(mut back) => {
                back.pop_front();
                Err(SendError::Full(back))
            }
        }
    }

    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        let Some(expected) = self.awaiting else {
            return Err(Error::InvalidState);
        };
        // Anything from another peer, or without the delimiter, is not our reply: dropped, as libzmq.
        while let Some((id, mut msg)) = self.io.fq.recv(pipes) {
            if id != expected || !msg.first().is_empty() {
                continue;
            }
            if msg.pop_front().is_none() {
                continue;
            }
            self.awaiting = None;
            return Ok(Some(msg));
        }
        Ok(None)
    }

    fn check_recv_from(&self, id: PipeId) -> Result<bool, Error> {
        match self.awaiting {
            Some(expected) => Ok(expected == id),
            None => Err(Error::InvalidState),
        }
    }

    fn received_direct(&mut self, _: PipeId) {
        self.awaiting = None;
    }

    fn direct_envelope(&self, _: PipeId) -> Result<bool, Error> {
        self.check_send().map(|()| true)
    }

    fn sent_direct(&mut self, id: PipeId) {
        self.awaiting = Some(id);
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.awaiting
            .and_then(|id| pipes.get(id))
            .is_some_and(|p| p.readable())
    }

    fn writable(&self, pipes: &Pipes) -> bool {
        self.awaiting.is_none() && self.io.lb.writable(pipes)
    }
}

/// REP: takes a request from the next peer, keeps its envelope (every frame up to and including the
/// empty delimiter), hands over the body; the reply goes back to that peer behind the same envelope.
#[derive(Default)]
pub(crate) struct Rep {
    fq: FairQueue,
    /// The requester and the frames of its envelope before the empty delimiter (none from a REQ),
    /// while a reply is owed.
    replying: Option<(PipeId, Vec<Msg>)>,
}

impl Pattern for Rep {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.fq.pipes.attach(id);
        true
    }

    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.fq.pipes.detach(id);
    }

    fn check_send(&self) -> Result<(), Error> {
        match self.replying {
            Some(_) => Ok(()),
            None => Err(Error::InvalidState),
        }
    }

    fn send(&mut self, pipes: &Pipes, mut msg: Parts, _: &Options) -> Result<(), SendError> {
        let Some((id, envelope)) = self.replying.take() else {
            return Err(SendError::Fail(Error::InvalidState));
        };
        msg.push_front(Msg::new());
        for frame in envelope.into_iter().rev() {
            msg.push_front(frame);
        }
        // A requester that is gone, or full, loses its reply (spec 28: "SHALL silently discard").
        if let Some(pipe) = pipes.get(id) {
            let _ = pipe.try_send(msg);
        }
        Ok(())
    }

    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        if self.replying.is_some() {
            return Err(Error::InvalidState);
        }
        while let Some((id, mut msg)) = self.fq.recv(pipes) {
            let mut envelope = Vec::new();
            let mut found = false;
            while let Some(frame) = msg.pop_front() {
                if frame.is_empty() {
                    found = true;
                    break;
                }
                envelope.push(frame);
            }
            // No delimiter, or nothing after it: not a request, dropped (as libzmq).
            if found {
                self.replying = Some((id, envelope));
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    fn check_recv_from(&self, _: PipeId) -> Result<bool, Error> {
        match self.replying {
            Some(_) => Err(Error::InvalidState),
            None => Ok(true),
        }
    }

    fn received_direct(&mut self, id: PipeId) {
        self.replying = Some((id, Vec::new()));
    }

    fn direct_envelope(&self, id: PipeId) -> Result<bool, Error> {
        match &self.replying {
            Some((to, envelope)) => Ok(*to == id && envelope.is_empty()),
            None => Err(Error::InvalidState),
        }
    }

    fn sent_direct(&mut self, _: PipeId) {
        self.replying = None;
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.replying.is_none() && self.fq.readable(pipes)
    }

    fn writable(&self, _: &Pipes) -> bool {
        self.replying.is_some()
    }
}

/// ROUTER: every message received is prefixed with its peer's routing id; a message sent goes to the
/// peer its first frame names. Unroutable messages are dropped and counted, or refused with
/// `ROUTER_MANDATORY`. Never blocks.
pub(crate) struct Router {
    fq: FairQueue,
    by_id: HashMap<Bytes, PipeId>,
    ids: HashMap<PipeId, Bytes>,
    /// The next generated routing id: 5 octets, `0x00` then this counter (as libzmq).
    next_generated: u32,
    drops: Drops,
}

impl Default for Router {
    fn default() -> Self {
        // Start the counter somewhere arbitrary, as libzmq does, so that ids are not all 0x0000000001
        // across restarts.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        Router {
            fq: FairQueue::default(),
            by_id: HashMap::new(),
            ids: HashMap::new(),
            next_generated: seed,
            drops: Drops::default(),
        }
    }
}

impl Router {
    fn generate_id(&mut self) -> Bytes {
        loop {
            self.next_generated = self.next_generated.wrapping_add(1);
            let mut id = vec![0u8];
            id.extend_from_slice(&self.next_generated.to_be_bytes());
            let id = Bytes::from(id);
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Pattern for Router {
    fn attach(&mut self, id: PipeId, pipes: &Pipes) -> bool {
        let announced = pipes
            .get(id)
            .map(|p| p.peer.routing_id.clone())
            .unwrap_or_default();
        let routing_id = if announced.is_empty() {
            self.generate_id()
        } else if self.by_id.contains_key(&announced) {
            // A second peer with an id in use is refused (libzmq without ROUTER_HANDOVER).
            return false;
        } else {
            announced
        };
        self.by_id.insert(routing_id.clone(), id);
        self.ids.insert(id, routing_id);
        self.fq.pipes.attach(id);
        true
    }

    fn detach(&mut self, id: PipeId, _: &Pipes) {
        if let Some(rid) = self.ids.remove(&id) {
            self.by_id.remove(&rid);
        }
        self.fq.pipes.detach(id);
    }

    fn send(&mut self, pipes: &Pipes, mut msg: Parts, options: &Options) -> Result<(), SendError> {
        let Some(body_first) = msg.pop_front() else {
            // Only a routing id, no body: nothing to send.
            return Ok(());
        };
        // `body_first` is the routing id; `msg` now holds the body.
        let target = self
            .by_id
            .get(&body_first[..])
            .and_then(|&id| pipes.get(id));
        let Some(pipe) = target else {
            if options.router_mandatory {
                return Err(SendError::Fail(Error::HostUnreachable {
                    id: body_first.to_vec(),
                }));
            }
            self.drops.unroutable += 1;
            return Ok(());
        };
        match pipe.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mut back) if options.router_mandatory => {
                back.push_front(body_first);
                Err(SendError::Full(back))
            }
            Err(_) => {
                self.drops.unroutable += 1;
                Ok(())
            }
        }
    }

    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        Ok(self.fq.recv(pipes).map(|(id, mut msg)| {
            let rid = self.ids.get(&id).cloned().unwrap_or_default();
            msg.push_front(Msg::from(rid));
            msg
        }))
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.fq.readable(pipes)
    }

    fn writable(&self, _: &Pipes) -> bool {
        true
    }

    fn drops(&self) -> Drops {
        self.drops
    }
}
