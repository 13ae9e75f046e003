//! PAIR (spec 31): exactly one peer; a second is refused.

use super::{Pattern, SendError};
use crate::error::Error;
use crate::options::Options;
use crate::pipe::Parts;
use crate::route::{PipeId, Pipes};

#[derive(Default)]
pub(crate) struct Pair {
    peer: Option<PipeId>,
}

impl Pattern for Pair {
    fn attach(&mut self, id: PipeId, _pipes: &Pipes) -> bool {
        if self.peer.is_some() {
            return false;
        }
        self.peer = Some(id);
        true
    }

    fn detach(&mut self, id: PipeId, _pipes: &Pipes) {
        if self.peer == Some(id) {
            self.peer = None;
        }
    }

    fn send(&mut self, pipes: &Pipes, msg: Parts, _: &Options) -> Result<(), SendError> {
        match self.peer.and_then(|id| pipes.get(id)) {
            Some(pipe) => pipe.try_send(msg).map_err(SendError::Full),
            None => Err(SendError::Full(msg)),
        }
    }

    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        Ok(self.peer.and_then(|id| pipes.get(id)?.try_recv()))
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.peer
            .and_then(|id| pipes.get(id))
            .is_some_and(|p| p.readable())
    }

    fn writable(&self, pipes: &Pipes) -> bool {
        self.peer
            .and_then(|id| pipes.get(id))
            .is_some_and(|p| p.writable())
    }
}
