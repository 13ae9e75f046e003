//! PUSH, PULL (spec 30) and DEALER (spec 28): a strategy each way, no state of their own.

use super::{Pattern, SendError};
use crate::error::Error;
use crate::options::Options;
use crate::pipe::Parts;
use crate::route::fq::FairQueue;
use crate::route::lb::LoadBalance;
use crate::route::{Duplex, PipeId, Pipes};

/// PUSH: round-robin out; whatever a peer sends is ignored.
#[derive(Default)]
pub(crate) struct Push {
    lb: LoadBalance,
}

/// PULL: fair-queued in.
#[derive(Default)]
pub(crate) struct Pull {
    fq: FairQueue,
}

/// DEALER: round-robin out, fair-queued in, no envelope.
#[derive(Default)]
pub(crate) struct Dealer {
    io: Duplex,
}

impl Pattern for Push {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.lb.pipes.attach(id);
        true
    }
    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.lb.pipes.detach(id);
    }
    fn send(&mut self, pipes: &Pipes, msg: Parts, _: &Options) -> Result<(), SendError> {
        self.lb.send(pipes, msg).map(drop).map_err(SendError::Full)
    }
    fn recv(&mut self, _: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        Ok(None)
    }
    fn readable(&self, _: &Pipes) -> bool {
        false
    }
    fn writable(&self, pipes: &Pipes) -> bool {
        self.lb.writable(pipes)
    }
}

impl Pattern for Pull {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.fq.pipes.attach(id);
        true
    }
    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.fq.pipes.detach(id);
    }
    fn send(&mut self, _: &Pipes, msg: Parts, _: &Options) -> Result<(), SendError> {
        Err(SendError::Full(msg))
    }
    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        Ok(self.fq.recv(pipes).map(|(_, m)| m))
    }
    fn readable(&self, pipes: &Pipes) -> bool {
        self.fq.readable(pipes)
    }
    fn writable(&self, _: &Pipes) -> bool {
        false
    }
}

impl Pattern for Dealer {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.io.attach(id);
        true
    }
    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.io.detach(id);
    }
    fn send(&mut self, pipes: &Pipes, msg: Parts, _: &Options) -> Result<(), SendError> {
        self.io
            .lb
            .send(pipes, msg)
            .map(drop)
            .map_err(SendError::Full)
    }
    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        Ok(self.io.fq.recv(pipes).map(|(_, m)| m))
    }
    fn readable(&self, pipes: &Pipes) -> bool {
        self.io.fq.readable(pipes)
    }
    fn writable(&self, pipes: &Pipes) -> bool {
        self.io.lb.writable(pipes)
    }
}
