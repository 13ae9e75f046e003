//! Fair queuing: one whole message from each pipe that has one, in turn, so that no peer starves.

use super::{PipeId, Pipes, RoundRobin};
use crate::pipe::Parts;

/// Round-robin over the pipes that have a message.
#[derive(Default)]
pub(crate) struct FairQueue {
    pub(crate) pipes: RoundRobin,
}

impl FairQueue {
    /// The next message, from the next pipe in turn that has one.
    pub(crate) fn recv(&mut self, pipes: &Pipes) -> Option<(PipeId, Parts)> {
        let found = self.pipes.rotation().find_map(|(pos, id)| {
            let msg = pipes.get(id)?.try_recv()?;
            Some((pos, id, msg))
        });
        let (pos, id, msg) = found?;
        self.pipes.advance_past(pos);
        Some((id, msg))
    }

    /// Whether some pipe has a message.
    pub(crate) fn readable(&self, pipes: &Pipes) -> bool {
        self.pipes
            .rotation()
            .any(|(_, id)| pipes.get(id).is_some_and(|p| p.readable()))
    }
}
