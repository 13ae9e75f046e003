//! One I/O thread: a loop over its own io_uring, owning the listeners and connections given to it.
//!
//! `user_data` of every submission is an index into `ops`; each in-flight operation owns its buffers
//! (the receive buffer, the write batch and its iovecs, the connect address) until its completion
//! arrives, so the kernel never sees freed memory. A connection is closed by shutting its socket down:
//! in-flight operations then complete, and the descriptor is closed when the last one has.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use io_uring::{opcode, squeue, types, IoUring};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use zring_zmtp::{Connection, EventRef, Transmit};

use crate::gate::Gate;
use crate::session::{Disconnect, MakeSession, Session, SessionFactory};
use crate::slab::Slab;
use crate::waker::{Shared, Waker};
use crate::Address;

/// Size of each receive buffer.
const READ_BUFFER: usize = 64 * 1024;
/// The most iovecs in one write (Linux's `IOV_MAX` is 1024).
const MAX_IOV: usize = 512;
/// How often a shutting-down thread looks at lingering sessions.
const SHUTDOWN_POLL: Duration = Duration::from_millis(5);
/// How many times a session is asked to fill in one turn before the batch is written.
const FILL_ROUNDS: usize = 4;

/// How a connecting side retries.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// The first delay (libzmq's `RECONNECT_IVL`, 100 ms).
    pub ivl: Duration,
    /// The largest delay when doubling (`RECONNECT_IVL_MAX`; zero: no doubling).
    pub ivl_max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            ivl: Duration::from_millis(100),
            ivl_max: Duration::ZERO,
        }
    }
}

/// Work posted to an I/O thread.
pub(crate) enum Command {
    Listen {
        id: u64,
        listener: OwnedFd,
        factory: Arc<dyn SessionFactory>,
    },
    StopListener {
        id: u64,
    },
    Connect {
        addrs: Vec<Address>,
        reconnect: Reconnect,
        make: MakeSession,
    },
    Shutdown,
}

enum Op {
    /// A read of the eventfd, always in flight; the kernel writes into `_buf`.
    Wake {
        _buf: Box<[u8; 8]>,
    },
    Accept {
        listener: usize,
    },
    Connect {
        conn: usize,
        _addr: Box<SockAddr>,
    },
    Recv {
        conn: usize,
        buf: BytesMut,
    },
    Write {
        conn: usize,
        batch: Transmit,
        _iov: Vec<libc::iovec>,
    },
}

struct Listener {
    id: u64,
    socket: OwnedFd,
    factory: Arc<dyn SessionFactory>,
    accepting: bool,
    /// After an accept error, wait until then before accepting again (no busy loop on EMFILE).
    retry_at: Option<Instant>,
    stopped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A connect is in flight.
    Connecting,
    /// The stream is up (handshake or messages).
    Live,
    /// Waiting to reconnect.
    Waiting(Instant),
    /// Shut down; waiting for in-flight operations before closing (then reconnect or remove).
    Closing { reconnect: bool },
}

struct Conn {
    session: Box<dyn Session>,
    scheduled: Arc<AtomicBool>,
    socket: Option<Socket>,
    codec: Option<Connection>,
    phase: Phase,
    /// Operations in flight that name this connection.
    inflight: usize,
    recv_inflight: bool,
    write_inflight: bool,
    /// Output produced while a write is in flight.
    out: Transmit,
    /// Reading paused because the session's queue is full.
    paused: bool,
    /// The direct path for the socket's sends (while the stream is up).
    gate: Option<Arc<Gate>>,
    /// Where and how to connect (connecting side only).
    target: Option<(Vec<Address>, Reconnect)>,
    next_addr: usize,
    delay: Duration,
}

pub(crate) struct IoThread {
    ring: IoUring,
    shared: Arc<Shared>,
    ops: Slab<Op>,
    conns: Slab<Conn>,
    listeners: Slab<Listener>,
    shutdown: Option<Instant>,
}

impl IoThread {
    pub(crate) fn new(shared: Arc<Shared>) -> io::Result<IoThread> {
        Ok(IoThread {
            ring: IoUring::new(1024)?,
            shared,
            ops: Slab::default(),
            conns: Slab::default(),
            listeners: Slab::default(),
            shutdown: None,
        })
    }

    /// Queues one submission.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry built by this thread points only into buffers owned by its `Op` in
            // `self.ops` (or into `Listener`/`Conn` sockets that outlive the op), and the op is removed
            // only when its completion arrives.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // The submission queue is full: hand it to the kernel and retry.
            if self.ring.submit().is_err() {
                std::thread::yield_now();
            }
        }
    }

    fn arm_wake(&mut self) {
        let mut buf = Box::new([0u8; 8]);
        let ptr = buf.as_mut_ptr();
        let idx = self.ops.insert(Op::Wake { _buf: buf });
        let entry = opcode::Read::new(types::Fd(self.shared.eventfd.as_raw_fd()), ptr, 8)
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    pub(crate) fn run(mut self) {
        self.arm_wake();
        loop {
            while let Some(cmd) = self.shared.commands.pop() {
                self.command(cmd);
            }
            while let Some(conn) = self.shared.ready.pop() {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.scheduled.store(false, Ordering::Release);
                }
                self.service(conn);
            }
            let now = Instant::now();
            self.timers(now);
            if self.shutdown.is_some() && self.idle() {
                self.exit();
                return;
            }
            let mut wait = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if self.shutdown.is_some() {
                // Lingering sessions are looked at often while shutting down.
                wait = Some(wait.map_or(SHUTDOWN_POLL, |w| w.min(SHUTDOWN_POLL)));
            }
            self.shared.prepare_sleep();
            if self.shared.has_work() {
                self.shared.awake();
                let _ = self.ring.submit();
            } else {
                self.wait(wait);
                self.shared.awake();
            }
            self.completions();
        }
    }

    /// Stops: the ring is closed first; the operations still in flight (the eventfd read, accepts being
    /// cancelled) keep their buffers for ever, so that the kernel's asynchronous teardown can never
    /// write into freed memory. That is a few small buffers once per context.
    fn exit(self) {
        let IoThread { ring, ops, .. } = self;
        drop(ring);
        std::mem::forget(ops);
    }

    fn wait(&mut self, timeout: Option<Duration>) {
        let result = match timeout {
            Some(t) => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        // ETIME (the timeout) and EINTR are ordinary; anything else is retried on the next turn.
        let _ = result;
    }

    /// Whether every connection is gone (for shutdown: each goes once its session is finished,
    /// which is when its socket's messages are delivered or its linger passed).
    fn idle(&mut self) -> bool {
        for i in self.conns.indices() {
            self.service(i);
        }
        self.conns.indices().is_empty()
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for i in self.conns.indices() {
            if let Some(c) = self.conns.get_mut(i) {
                if let Phase::Waiting(at) = c.phase {
                    take(Some(at));
                }
                take(c.codec.as_ref().and_then(Connection::poll_timeout));
            }
        }
        for i in self.listeners.indices() {
            if let Some(l) = self.listeners.get_mut(i) {
                take(l.retry_at);
            }
        }
        next
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen {
                id,
                listener,
                factory,
            } => {
                let idx = self.listeners.insert(Listener {
                    id,
                    socket: listener,
                    factory,
                    accepting: false,
                    retry_at: None,
                    stopped: false,
                });
                self.arm_accept(idx);
            }
            Command::StopListener { id } => {
                for i in self.listeners.indices() {
                    if let Some(l) = self.listeners.get_mut(i) {
                        if l.id == id {
                            l.stopped = true;
                            // Shutting the socket down ends the accept in flight.
                            // SAFETY: shutdown(2) on a descriptor we own; no pointers.
                            unsafe { libc::shutdown(l.socket.as_raw_fd(), libc::SHUT_RDWR) };
                            if !l.accepting {
                                self.listeners.remove(i);
                            }
                        }
                    }
                }
            }
            Command::Connect {
                addrs,
                reconnect,
                make,
            } => {
                let scheduled = Arc::new(AtomicBool::new(false));
                let idx = self.conns.vacant();
                let waker = Waker::new(self.shared.clone(), idx, scheduled.clone());
                let session = make(waker);
                let inserted = self.conns.insert(Conn::new(
                    session,
                    scheduled,
                    Some((addrs, reconnect)),
                    reconnect.ivl,
                ));
                self.start_connect(inserted);
            }
            Command::Shutdown => {
                self.shutdown = Some(Instant::now());
                for i in self.listeners.indices() {
                    if let Some(l) = self.listeners.get_mut(i) {
                        l.stopped = true;
                        // SAFETY: shutdown(2) on a descriptor we own; no pointers.
                        unsafe { libc::shutdown(l.socket.as_raw_fd(), libc::SHUT_RDWR) };
                    }
                }
                for i in self.conns.indices() {
                    self.service(i);
                }
            }
        }
    }

    fn arm_accept(&mut self, listener: usize) {
        let Some(l) = self.listeners.get_mut(listener) else {
            return;
        };
        if l.stopped || l.accepting || self.shutdown.is_some() {
            return;
        }
        l.accepting = true;
        let fd = l.socket.as_raw_fd();
        let idx = self.ops.insert(Op::Accept { listener });
        let entry = opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    fn start_connect(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some((addrs, _)) = &c.target else {
            return;
        };
        let Some(addr) = addrs.get(c.next_addr % addrs.len().max(1)).cloned() else {
            return;
        };
        c.next_addr = c.next_addr.wrapping_add(1);
        let made = match &addr {
            Address::Tcp(a) => Socket::new(
                Domain::for_address(*a),
                Type::STREAM.cloexec(),
                Some(Protocol::TCP),
            )
            .map(|s| (s, SockAddr::from(*a))),
            Address::Unix(path) => SockAddr::unix(std::ffi::OsStr::from_bytes(path))
                .and_then(|a| Ok((Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?, a))),
        };
        let (socket, sockaddr) = match made {
            Ok(made) => made,
            Err(e) => {
                self.disconnected(conn, Disconnect::Io(&e));
                return;
            }
        };
        let fd = socket.as_raw_fd();
        c.socket = Some(socket);
        c.phase = Phase::Connecting;
        c.inflight += 1;
        let sockaddr = Box::new(sockaddr);
        let (ptr, len) = (sockaddr.as_ptr(), sockaddr.len());
        let idx = self.ops.insert(Op::Connect {
            conn,
            _addr: sockaddr,
        });
        let entry = opcode::Connect::new(types::Fd(fd), ptr.cast(), len)
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    fn completions(&mut self) {
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        for (user_data, result) in done {
            let Some(op) = usize::try_from(user_data)
                .ok()
                .and_then(|i| self.ops.remove(i))
            else {
                continue;
            };
            self.complete(op, result);
        }
    }

    fn complete(&mut self, op: Op, result: i32) {
        match op {
            Op::Wake { .. } => self.arm_wake(),
            Op::Accept { listener } => self.accepted(listener, result),
            Op::Connect { conn, .. } => {
                self.op_done(conn);
                if result < 0 {
                    let e = io::Error::from_raw_os_error(-result);
                    self.disconnected(conn, Disconnect::Io(&e));
                } else {
                    self.start_stream(conn);
                }
            }
            Op::Recv { conn, mut buf } => {
                self.op_done(conn);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.recv_inflight = false;
                }
                match usize::try_from(result) {
                    Ok(0) => self.disconnected(conn, Disconnect::Eof),
                    Ok(n) => {
                        // SAFETY: the kernel wrote `n` bytes into the spare capacity we lent it, and
                        // `n` is at most that capacity (the length we passed).
                        unsafe { buf.set_len(n) };
                        self.input(conn, buf);
                    }
                    Err(_) => {
                        let e = io::Error::from_raw_os_error(-result);
                        self.disconnected(conn, Disconnect::Io(&e));
                    }
                }
            }
            Op::Write {
                conn, mut batch, ..
            } => {
                self.op_done(conn);
                match usize::try_from(result) {
                    Ok(n) => {
                        batch.advance(n);
                        if let Some(c) = self.conns.get_mut(conn) {
                            c.write_inflight = false;
                            // What was not written goes first, then what was produced meanwhile.
                            batch.append(&mut c.out);
                            c.out = batch;
                        }
                        self.service(conn);
                    }
                    Err(_) => {
                        if let Some(c) = self.conns.get_mut(conn) {
                            c.write_inflight = false;
                        }
                        let e = io::Error::from_raw_os_error(-result);
                        self.disconnected(conn, Disconnect::Io(&e));
                    }
                }
            }
        }
    }

    /// An operation on `conn` completed; a closing connection whose last one this was is finished.
    fn op_done(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.inflight = c.inflight.saturating_sub(1);
        if let Phase::Closing { reconnect } = c.phase {
            if c.inflight == 0 {
                c.socket = None;
                c.codec = None;
                c.out.clear();
                if reconnect && self.shutdown.is_none() {
                    let at = Instant::now() + c.delay;
                    c.phase = Phase::Waiting(at);
                } else {
                    self.conns.remove(conn);
                }
            }
        }
    }

    fn accepted(&mut self, listener: usize, result: i32) {
        let Some(l) = self.listeners.get_mut(listener) else {
            return;
        };
        l.accepting = false;
        if l.stopped {
            self.listeners.remove(listener);
            return;
        }
        if result < 0 {
            // EMFILE and friends: try again shortly rather than spin.
            l.retry_at = Some(Instant::now() + Duration::from_millis(10));
            return;
        }
        let factory = l.factory.clone();
        // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
        let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(result as RawFd) });
        let scheduled = Arc::new(AtomicBool::new(false));
        let idx = self.conns.vacant();
        let session = factory.session(Waker::new(self.shared.clone(), idx, scheduled.clone()));
        let mut conn = Conn::new(session, scheduled, None, Duration::ZERO);
        conn.socket = Some(socket);
        let inserted = self.conns.insert(conn);
        self.start_stream(inserted);
        self.arm_accept(listener);
    }

    /// The stream is connected: start the codec, read, and send the greeting.
    fn start_stream(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if let Some(s) = &c.socket {
            let _ = s.set_tcp_nodelay(true);
            if let Some(on) = c.session.keepalive() {
                let _ = s.set_keepalive(on);
            }
            let peer = s.peer_addr().ok().and_then(|a| a.as_socket());
            let gate = Arc::new(Gate::new(s.as_raw_fd()));
            c.session.on_stream(peer, &gate);
            c.gate = Some(gate);
        }
        c.phase = Phase::Live;
        c.paused = false;
        match Connection::new(c.session.config(), Instant::now()) {
            Ok(codec) => c.codec = Some(codec),
            Err(_) => {
                self.close(conn, false);
                return;
            }
        }
        if let Some((_, r)) = &c.target {
            c.delay = r.ivl;
        }
        self.arm_recv(conn);
        self.service(conn);
    }

    fn arm_recv(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.recv_inflight || c.phase != Phase::Live {
            return;
        }
        let Some(fd) = c.socket.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        c.recv_inflight = true;
        c.inflight += 1;
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        let spare = buf.spare_capacity_mut();
        let (ptr, len) = (spare.as_mut_ptr().cast::<u8>(), spare.len());
        let idx = self.ops.insert(Op::Recv { conn, buf });
        let entry = opcode::Recv::new(types::Fd(fd), ptr, u32::try_from(len).unwrap_or(u32::MAX))
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    /// Bytes arrived: run the codec, hand events to the session, answer, read on.
    fn input(&mut self, conn: usize, buf: BytesMut) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(codec) = c.codec.as_mut() else {
            return;
        };
        let data = buf.freeze();
        let session = &mut c.session;
        let mut refused = false;
        let result = codec.handle_input_with(&data, Instant::now(), |event| match event {
            _ if refused => {}
            EventRef::Ready(peer) => refused = !session.on_ready(&peer),
            other => session.on_event(other),
        });
        match result {
            Err(e) => {
                // Say why (an ERROR command, for a socket-type mismatch) before closing.
                self.flush(conn);
                self.disconnected(conn, Disconnect::Protocol(&e));
            }
            Ok(()) if refused => self.disconnected(conn, Disconnect::Refused),
            Ok(()) => {
                if c.session.accepting() {
                    self.arm_recv(conn);
                } else {
                    c.paused = true;
                }
                self.service(conn);
            }
        }
    }

    /// The session may have work: resume reading if it has room, move its messages out, write.
    fn service(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase != Phase::Live {
            if !matches!(c.phase, Phase::Closing { .. }) && c.session.finished() {
                // A socket gone while disconnected: nothing left to deliver.
                if c.inflight == 0 {
                    self.conns.remove(conn);
                }
            }
            return;
        }
        if c.paused && c.session.accepting() {
            c.paused = false;
            self.arm_recv(conn);
        }
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.close_gate();
        if let Some(codec) = c.codec.as_mut() {
            if codec.is_ready() {
                for _ in 0..FILL_ROUNDS {
                    if !c.session.fill(codec) {
                        break;
                    }
                }
            }
        }
        self.flush(conn);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let flushed = !c.write_inflight && c.out.is_empty();
        if c.session.finished() && (flushed || c.session.abandoned()) {
            self.close(conn, false);
            return;
        }
        let ready = c
            .codec
            .as_ref()
            .is_some_and(|k| k.is_ready() && !k.wants_write());
        if flushed && ready && c.session.outbound_idle() {
            if let Some(g) = &c.gate {
                g.open();
            }
        }
    }

    /// Writes what the codec has queued, unless a write is already in flight.
    fn flush(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.close_gate();
        if let Some(codec) = c.codec.as_mut() {
            codec.poll_transmit(&mut c.out);
        }
        if c.write_inflight || c.out.is_empty() || c.phase != Phase::Live {
            return;
        }
        let Some(fd) = c.socket.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let batch = std::mem::take(&mut c.out);
        let mut slices = Vec::new();
        batch.io_slices(&mut slices, MAX_IOV);
        let iov: Vec<libc::iovec> = slices
            .iter()
            .map(|s| libc::iovec {
                iov_base: s.as_ptr().cast_mut().cast(),
                iov_len: s.len(),
            })
            .collect();
        drop(slices);
        let (ptr, len) = (iov.as_ptr(), u32::try_from(iov.len()).unwrap_or(0));
        c.write_inflight = true;
        c.inflight += 1;
        // The iovecs point into `batch`'s buffers, which move into the op with it: moving a
        // `Transmit` moves its vectors' handles, not their heap storage.
        let idx = self.ops.insert(Op::Write {
            conn,
            batch,
            _iov: iov,
        });
        let entry = opcode::Writev::new(types::Fd(fd), ptr, len)
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    fn timers(&mut self, now: Instant) {
        for i in self.listeners.indices() {
            if let Some(l) = self.listeners.get_mut(i) {
                if l.retry_at.is_some_and(|t| t <= now) {
                    l.retry_at = None;
                    self.arm_accept(i);
                }
            }
        }
        for i in self.conns.indices() {
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            match c.phase {
                Phase::Waiting(at) if at <= now => {
                    if c.session.finished() {
                        self.conns.remove(i);
                    } else {
                        self.start_connect(i);
                    }
                }
                Phase::Live => {
                    let Some(codec) = c.codec.as_mut() else {
                        continue;
                    };
                    if codec.poll_timeout().is_some_and(|t| t <= now) {
                        match codec.handle_timeout(now) {
                            Ok(()) => self.flush(i),
                            Err(e) => self.disconnected(i, Disconnect::Protocol(&e)),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The stream ended: ask the session whether to reconnect, and close.
    fn disconnected(&mut self, conn: usize, why: Disconnect<'_>) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if matches!(c.phase, Phase::Closing { .. }) {
            return;
        }
        let reconnect = c.session.on_disconnect(why) && c.target.is_some();
        if reconnect {
            if let Some((_, r)) = &c.target {
                let current = c.delay;
                if !r.ivl_max.is_zero() {
                    c.delay = (current * 2).min(r.ivl_max).max(r.ivl);
                }
            }
        }
        self.close(conn, reconnect);
    }

    fn close(&mut self, conn: usize, reconnect: bool) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.phase = Phase::Closing { reconnect };
        c.paused = false;
        if let Some(g) = c.gate.take() {
            g.shut();
        }
        if let Some(s) = &c.socket {
            // Ends the operations in flight; the descriptor is closed when the last completes.
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if c.inflight == 0 {
            // Nothing in flight: finish now (op_done's bookkeeping with no op).
            c.inflight = 1;
            self.op_done(conn);
        }
    }
}

impl Conn {
    /// Closes the direct path before the I/O thread writes or takes messages, and puts what a direct
    /// write left unwritten in front of the output.
    fn close_gate(&mut self) {
        if let Some(g) = &self.gate {
            let mut leftover = g.close();
            if !leftover.is_empty() {
                leftover.append(&mut self.out);
                self.out = leftover;
            }
        }
    }

    fn new(
        session: Box<dyn Session>,
        scheduled: Arc<AtomicBool>,
        target: Option<(Vec<Address>, Reconnect)>,
        delay: Duration,
    ) -> Conn {
        Conn {
            session,
            scheduled,
            socket: None,
            codec: None,
            phase: Phase::Connecting,
            inflight: 0,
            recv_inflight: false,
            write_inflight: false,
            out: Transmit::new(),
            paused: false,
            gate: None,
            target,
            next_addr: 0,
            delay,
        }
    }
}
