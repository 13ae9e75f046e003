//! `poll`: wait on several sockets at once, as `zmq_poll` does; and `proxy`, built on it.

use std::ops::BitOr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::socket::Socket;

/// Which readiness to wait for, or which was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u8);

impl Events {
    /// Nothing.
    pub const NONE: Events = Events(0);
    /// A message can be received without waiting.
    pub const READABLE: Events = Events(1);
    /// A message can be sent without waiting.
    pub const WRITABLE: Events = Events(2);

    /// Whether every event of `other` is in `self`.
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether there is none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

/// One socket to poll, the events wanted, and after [`poll`], the events found.
#[derive(Debug)]
pub struct PollItem<'a> {
    socket: &'a mut Socket,
    wanted: Events,
    found: Events,
}

impl<'a> PollItem<'a> {
    /// Waits for `wanted` on `socket`.
    pub fn new(socket: &'a mut Socket, wanted: Events) -> PollItem<'a> {
        PollItem {
            socket,
            wanted,
            found: Events::NONE,
        }
    }

    /// What [`poll`] found.
    pub fn events(&self) -> Events {
        self.found
    }

    /// Whether [`poll`] found the socket readable.
    pub fn is_readable(&self) -> bool {
        self.found.contains(Events::READABLE)
    }

    /// Whether [`poll`] found the socket writable.
    pub fn is_writable(&self) -> bool {
        self.found.contains(Events::WRITABLE)
    }

    /// The socket.
    pub fn socket(&mut self) -> &mut Socket {
        self.socket
    }

    fn check(&mut self) -> bool {
        let mut found = Events::NONE;
        if self.wanted.contains(Events::READABLE) && self.socket.readable() {
            found = found | Events::READABLE;
        }
        if self.wanted.contains(Events::WRITABLE) && self.socket.writable() {
            found = found | Events::WRITABLE;
        }
        self.found = found;
        !found.is_empty()
    }
}

/// Waits until at least one item has an event it wants, or `timeout` passes (`None`: no limit).
/// Returns how many items have events; [`PollItem::events`] says which.
pub fn poll(items: &mut [PollItem<'_>], timeout: Option<Duration>) -> Result<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let ready =
        |items: &mut [PollItem<'_>]| items.iter_mut().map(PollItem::check).filter(|&r| r).count();
    let n = ready(items);
    if n > 0 || timeout == Some(Duration::ZERO) {
        return Ok(n);
    }
    let wake = poller_eventfd()?;
    loop {
        for item in items.iter_mut() {
            // The I/O threads read while we wait here.
            item.socket.release_direct();
            item.socket.signal().watch(Some(wake.clone()));
        }
        // Peers in other processes (shm) write the sockets' own eventfds: wait on those too.
        let mut armed = false;
        for item in items.iter_mut() {
            armed |= item.socket.arm_shm(
                item.wanted.contains(Events::READABLE),
                item.wanted.contains(Events::WRITABLE),
            );
        }
        let n = ready(items);
        if n == 0 && !armed && deadline.is_none_or(|d| Instant::now() < d) {
            let mut fds = vec![&*wake];
            fds.extend(
                items
                    .iter()
                    .filter(|i| i.socket.has_shm())
                    .filter_map(|i| i.socket.signal().eventfd()),
            );
            zring_engine::EventFd::wait_any(&fds, deadline);
        }
        for item in items.iter() {
            item.socket.signal().watch(None);
            item.socket.disarm_shm();
        }
        if n > 0 {
            return Ok(n);
        }
        let n = ready(items);
        if n > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(n);
        }
    }
}

/// The eventfd this thread's polls wait on, made once per thread.
fn poller_eventfd() -> Result<Arc<zring_engine::EventFd>> {
    thread_local! {
        static WAKE: std::cell::OnceCell<Arc<zring_engine::EventFd>> = const { std::cell::OnceCell::new() };
    }
    WAKE.with(|cell| {
        if let Some(w) = cell.get() {
            return Ok(w.clone());
        }
        let w = Arc::new(zring_engine::EventFd::new()?);
        Ok(cell.get_or_init(|| w).clone())
    })
}

/// Moves one whole message from `from` to `to`.
fn forward(from: &mut Socket, to: &mut Socket) -> Result<()> {
    let parts = from.recv_multipart()?;
    to.send_multipart(parts)
}

/// Forwards messages both ways between `frontend` and `backend` for as long as both work: ROUTER and
/// DEALER for a broker, XSUB and XPUB for a forwarder (subscriptions flow back upstream). Returns the
/// first error (as `zmq_proxy`, it runs until then).
pub fn proxy(frontend: &mut Socket, backend: &mut Socket) -> Result<()> {
    run_proxy(frontend, backend, None)
}

/// As [`proxy`], and also reads `control`: a message `TERMINATE` makes it return `Ok(())` (as
/// `zmq_proxy_steerable`).
pub fn proxy_steerable(
    frontend: &mut Socket,
    backend: &mut Socket,
    control: &mut Socket,
) -> Result<()> {
    run_proxy(frontend, backend, Some(control))
}

fn run_proxy(
    frontend: &mut Socket,
    backend: &mut Socket,
    mut control: Option<&mut Socket>,
) -> Result<()> {
    loop {
        let (front, back, ctl) = {
            let mut items = vec![
                PollItem::new(frontend, Events::READABLE),
                PollItem::new(backend, Events::READABLE),
            ];
            if let Some(c) = control.as_deref_mut() {
                items.push(PollItem::new(c, Events::READABLE));
            }
            poll(&mut items, None)?;
            let ctl = items.get(2).is_some_and(PollItem::is_readable);
            (items[0].is_readable(), items[1].is_readable(), ctl)
        };
        if ctl {
            if let Some(c) = control.as_deref_mut() {
                let command = c.recv_multipart()?;
                if command.first().is_some_and(|m| &m[..] == b"TERMINATE") {
                    return Ok(());
                }
            }
        }
        if front {
            forward(frontend, backend)?;
        }
        if back {
            forward(backend, frontend)?;
        }
        if !(front || back || ctl) {
            return Err(Error::WouldBlock);
        }
    }
}
