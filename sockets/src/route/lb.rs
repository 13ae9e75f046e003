//! Load-balancing: each message goes to the next pipe that has room (round-robin, skipping full ones).

use super::{PipeId, Pipes, RoundRobin};
use crate::pipe::Parts;

/// Round-robin over the pipes that can take a message.
#[derive(Default)]
pub(crate) struct LoadBalance {
    pub(crate) pipes: RoundRobin,
}

impl LoadBalance {
    /// Sends `msg` to the next pipe with room; gives it back when every pipe is full (or none exists).
    pub(crate) fn send(&mut self, pipes: &Pipes, mut msg: Parts) -> Result<PipeId, Parts> {
        for i in 0..self.pipes.len() {
            let Some((pos, id)) = self.pipes.at(i) else {
                break;
            };
            let Some(pipe) = pipes.get(id).filter(|p| !p.peer_closed()) else {
                continue;
            };
            match pipe.try_send(msg) {
                Ok(()) => {
                    self.pipes.advance_past(pos);
                    return Ok(id);
                }
                Err(back) => msg = back,
            }
        }
        Err(msg)
    }

    /// Whether some pipe has room.
    pub(crate) fn writable(&self, pipes: &Pipes) -> bool {
        self.pipes
            .rotation()
            .any(|(_, id)| pipes.get(id).is_some_and(|p| p.writable()))
    }
}
