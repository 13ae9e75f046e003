//! Distribution: a message goes to every chosen pipe; a pipe at its high-water mark misses it (and the
//! miss is counted), so that one slow peer never holds up the others.

use super::{PipeId, Pipes};
use crate::pipe::{Parts, PipeEnd};

/// Sends `msg` to each pipe in `targets`; returns how many pipes dropped it because they were full.
/// The body is shared between the copies, never duplicated, and the last pipe gets `msg` itself.
/// With more than one pipe, small messages go through the queues (see `PipeEnd::try_send_copy`).
pub(crate) fn send(pipes: &Pipes, targets: impl Iterator<Item = PipeId>, msg: Parts) -> u64 {
    let send = if pipes.len() > 1 {
        PipeEnd::try_send_copy
    } else {
        PipeEnd::try_send
    };
    let mut dropped = 0;
    let mut targets = targets.filter_map(|id| pipes.get(id)).peekable();
    while let Some(pipe) = targets.next() {
        if targets.peek().is_none() {
            return dropped + u64::from(send(pipe, msg).is_err());
        }
        if send(pipe, msg.clone()).is_err() {
            dropped += 1;
        }
    }
    dropped
}
