//! Distribution: a message goes to every chosen pipe; a pipe at its high-water mark misses it (and the
//! miss is counted), so that one slow peer never holds up the others.

use super::{PipeId, Pipes};
use crate::pipe::Parts;

/// Sends `msg` to each pipe in `targets`; returns how many pipes dropped it because they were full.
/// The body is shared between the copies, never duplicated.
pub(crate) fn send(pipes: &Pipes, targets: impl Iterator<Item = PipeId>, msg: &Parts) -> u64 {
    let mut dropped = 0;
    for id in targets {
        if let Some(pipe) = pipes.get(id) {
            if pipe.try_send(msg.clone()).is_err() {
                dropped += 1;
            }
        }
    }
    dropped
}
