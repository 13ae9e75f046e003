//! Waking an I/O thread from other threads: a queue of commands, a queue of sessions that have work,
//! and an eventfd that is written only when the thread is asleep.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::SegQueue;

use crate::thread::Command;

/// What an I/O thread shares with the threads that talk to it.
pub(crate) struct Shared {
    /// Work for the thread (new listeners, connects, shutdown).
    pub(crate) commands: SegQueue<Command>,
    /// Connections whose session has work (a message queued, room made for input).
    pub(crate) ready: SegQueue<usize>,
    /// Set by the thread before it waits in the kernel. Paired with the fence in [`Shared::notify`]: a
    /// producer that pushed before reading `false` is seen by the thread's re-check after its fence.
    sleeping: AtomicBool,
    /// Readable while a wake-up is pending; the thread always has a read of it in flight.
    pub(crate) eventfd: EventFd,
}

/// An eventfd: readable while a wake-up is pending. One thread waits on it (beside other
/// descriptors); any thread wakes it.
#[derive(Debug)]
pub struct EventFd(File);

impl EventFd {
    /// A new, non-blocking eventfd.
    pub fn new() -> std::io::Result<EventFd> {
        // SAFETY: eventfd(2) takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(EventFd(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Makes it readable.
    pub fn wake(&self) {
        // A full counter (EAGAIN) already means "wake up": nothing is lost by ignoring it.
        let _ = (&self.0).write(&1u64.to_ne_bytes());
    }

    /// Makes it unreadable again (after a wait saw it readable).
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = (&self.0).read(&mut buf);
    }

    /// An eventfd received from another process. The descriptor is untrusted: it must be an eventfd
    /// (anything else could block or misbehave when written); it is made non-blocking.
    pub fn from_peer(fd: OwnedFd) -> std::io::Result<EventFd> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("expected an eventfd, got {}", link.display()),
            ));
        }
        // SAFETY: F_SETFL takes an integer argument; the result is checked.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EventFd(File::from(fd)))
    }

    /// Waits until one of `fds` is readable or `deadline` passes; drains those found readable and
    /// says whether any was.
    pub fn wait_any(fds: &[&EventFd], deadline: Option<Instant>) -> bool {
        let mut polled: Vec<libc::pollfd> = fds
            .iter()
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let n = poll_until(&mut polled, deadline);
        if n <= 0 {
            return false;
        }
        for (fd, p) in fds.iter().zip(&polled) {
            if p.revents != 0 {
                fd.drain();
            }
        }
        true
    }
}

/// poll(2) on `fds` until one is ready or `deadline` passes (`None`: no limit); poll's result.
pub(crate) fn poll_until(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> i32 {
    let timeout = deadline.map_or(-1, |d| {
        let left = d.saturating_duration_since(Instant::now());
        // Rounded up, so that a wait never ends before its deadline.
        i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    let n = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a valid, writable array of `n` pollfd for the duration of the call.
    unsafe { libc::poll(fds.as_mut_ptr(), n, timeout) }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Shared {
    pub(crate) fn new() -> std::io::Result<Shared> {
        Ok(Shared {
            commands: SegQueue::new(),
            ready: SegQueue::new(),
            sleeping: AtomicBool::new(false),
            eventfd: EventFd::new()?,
        })
    }

    /// Wakes the thread if it is asleep. Call after pushing work.
    pub(crate) fn notify(&self) {
        // SYNC POINT: orders the caller's push before the read of `sleeping`; pairs with the fence
        // in `prepare_sleep`.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.eventfd.wake();
        }
    }

    /// Announces that the thread is about to sleep; it must re-check both queues afterwards.
    pub(crate) fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `notify`.
        fence(Ordering::SeqCst);
    }

    /// The thread is awake.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.commands.is_empty() || !self.ready.is_empty()
    }
}

/// Tells an I/O thread that one connection's session has work. Cheap to clone; waking twice before
/// the thread looks costs one queue entry.
#[derive(Clone)]
pub struct Waker {
    shared: Arc<Shared>,
    conn: usize,
    /// Set while the connection is in the ready queue.
    scheduled: Arc<AtomicBool>,
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker").field("conn", &self.conn).finish()
    }
}

impl Waker {
    pub(crate) fn new(shared: Arc<Shared>, conn: usize, scheduled: Arc<AtomicBool>) -> Waker {
        Waker {
            shared,
            conn,
            scheduled,
        }
    }

    /// Schedules the connection's session on its I/O thread.
    pub fn wake(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared.ready.push(self.conn);
            self.shared.notify();
        }
    }
}
