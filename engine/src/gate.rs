//! The direct path for sends: the application's thread writes a message straight to the stream when
//! the I/O thread has nothing queued or in flight for it, saving the hand-off to the I/O thread.
//!
//! Ordering is kept by one rule: bytes reach the stream through the gate's lock. The I/O thread closes
//! the gate (under the lock) before it takes a message from the socket's queue or writes anything, and
//! opens it only when it is idle; the application writes only while the gate is open and the queue is
//! empty, both checked under the lock. What the kernel does not take of a direct write stays in the
//! gate as `leftover`, which the I/O thread writes before anything else.

use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};

use zring_zmtp::{encode_header, flags, Transmit, MAX_HEADER_LEN};

/// The outcome of [`Gate::try_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// The whole message was handed to the kernel.
    Written,
    /// Part of it was: the rest is with the I/O thread, which must be woken.
    Partial,
    /// The gate is closed: queue the message as usual.
    Closed,
}

#[derive(Debug)]
struct State {
    /// The stream, or -1 when there is none.
    fd: RawFd,
    open: bool,
    /// What a direct write left unwritten; the I/O thread writes it first.
    leftover: Transmit,
}

/// One stream's gate, shared by its I/O thread and the application's thread.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<State>,
}

/// The most frames a message may have to go the direct way (more go through the queue).
const MAX_FRAMES: usize = 16;

impl Gate {
    pub(crate) fn new(fd: RawFd) -> Gate {
        Gate {
            state: Mutex::new(State {
                fd,
                open: false,
                leftover: Transmit::with_inline_max(usize::MAX),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the gate and takes what a direct write left over (the I/O thread, before it writes).
    pub(crate) fn close(&self) -> Transmit {
        let mut s = self.lock();
        s.open = false;
        std::mem::take(&mut s.leftover)
    }

    /// Opens the gate (the I/O thread, when it is idle).
    pub(crate) fn open(&self) {
        let mut s = self.lock();
        if s.fd >= 0 && s.leftover.is_empty() {
            s.open = true;
        }
    }

    /// Shuts the gate for good (the stream is closing).
    pub(crate) fn shut(&self) {
        let mut s = self.lock();
        s.open = false;
        s.fd = -1;
        s.leftover.clear();
    }

    /// Writes one message (its frames, with MORE on all but the last) if the gate is open and
    /// `queue_empty` says nothing is queued before it.
    pub fn try_write(&self, frames: &[&[u8]], queue_empty: impl FnOnce() -> bool) -> Direct {
        if frames.is_empty() || frames.len() > MAX_FRAMES {
            return Direct::Closed;
        }
        let Ok(mut s) = self.state.try_lock() else {
            return Direct::Closed;
        };
        if !s.open || s.fd < 0 || !queue_empty() {
            return Direct::Closed;
        }
        let mut headers = [[0u8; MAX_HEADER_LEN]; MAX_FRAMES];
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 2 * MAX_FRAMES];
        let mut total = 0usize;
        let last = frames.len() - 1;
        for (i, frame) in frames.iter().enumerate() {
            let mut h = Vec::with_capacity(MAX_HEADER_LEN);
            encode_header(&mut h, frame.len(), if i < last { flags::MORE } else { 0 });
            let (Some(slot), Some(pair)) = (headers.get_mut(i), iov.get_mut(2 * i..2 * i + 2))
            else {
                return Direct::Closed;
            };
            slot.get_mut(..h.len())
                .unwrap_or_default()
                .copy_from_slice(&h);
            pair[0] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: h.len(),
            };
            pair[1] = libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            };
            total += h.len() + frame.len();
        }
        // SAFETY: `msghdr` is plain data; every field is set below before use.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 2 * frames.len();
        // SAFETY: `s.fd` is the stream's open descriptor (the I/O thread sets it to -1 under this lock
        // before it closes the stream); the iovecs point into `headers` and `frames`, which outlive
        // the call; MSG_DONTWAIT makes it never block, MSG_NOSIGNAL never raise SIGPIPE.
        let sent = unsafe { libc::sendmsg(s.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        let written = match usize::try_from(sent) {
            Ok(n) => n,
            Err(_) => match std::io::Error::last_os_error().raw_os_error() {
                // Nothing was taken this time: the I/O thread writes it all.
                Some(libc::EAGAIN | libc::EINTR | libc::ENOBUFS | libc::ENOMEM) => 0,
                // The stream is failing: the I/O thread will see it and close it; the message is
                // lost with the stream, as bytes written into a dying connection are.
                _ => return Direct::Written,
            },
        };
        if written >= total {
            return Direct::Written;
        }
        // Keep what the kernel did not take, in order, for the I/O thread.
        let mut skip = written;
        for (i, frame) in frames.iter().enumerate() {
            let mut h = Vec::with_capacity(MAX_HEADER_LEN);
            encode_header(&mut h, frame.len(), if i < last { flags::MORE } else { 0 });
            for part in [&h[..], frame] {
                let n = skip.min(part.len());
                skip -= n;
                s.leftover.push_bytes(part.get(n..).unwrap_or_default());
            }
        }
        s.open = false;
        Direct::Partial
    }
}
