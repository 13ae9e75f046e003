//! Distribution: a message goes to every chosen pipe; a pipe at its high-water mark misses it (and the
//! miss is counted), so that one slow peer never holds up the others.

use super::{PipeId, Pipes};
use crate::pipe::{Parts, PipeEnd};

/// Sends `msg` to each pipe in `targets`; returns how many pipes dropped it because they were full.
/// A large body is shared between the copies, never duplicated, and the last pipe gets `msg` itself.
/// With more than one pipe, small messages go through the queues or the streams' batches (see
/// `PipeEnd::try_send_copy`), a one-frame one from its bytes, with no copy of the message made
/// for a pipe that does not need one (`PipeEnd::try_send_frames`).
pub(crate) fn send(pipes: &Pipes, targets: impl Iterator<Item = PipeId>, msg: Parts) -> u64 {
    let several = pipes.len() > 1;
    let send = if several {
        PipeEnd::try_send_copy
    } else {
        PipeEnd::try_send
    };
    let small = several && msg.len() == 1 && msg.first().is_inline();
    let mut dropped = 0;
    let mut targets = targets.filter_map(|id| pipes.get(id)).peekable();
    while let Some(pipe) = targets.next() {
        if small && pipe.try_send_frames(&[msg.first()], false) {
            continue;
        }
        if targets.peek().is_none() {
            return dropped + u64::from(send(pipe, msg).is_err());
        }
        if send(pipe, msg.clone()).is_err() {
            dropped += 1;
        }
    }
    dropped
}
