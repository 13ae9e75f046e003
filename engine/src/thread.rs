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

use io_uring::{opcode, squeue, types, IoUring};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use zring_zmtp::{Connection, Transmit};

use crate::gate::{self, Failure, Gate, Pumped};
use crate::session::{Disconnect, MakeSession, SessionFactory};
use crate::slab::Slab;
use crate::waker::{Shared, Waker};
use crate::Address;

/// How many reads one readiness may take before others get a turn.
const READS_PER_TURN: usize = 4;
/// The most iovecs in one write (Linux's `IOV_MAX` is 1024).
const MAX_IOV: usize = 512;
/// How often a shutting-down thread looks at lingering sessions.
const SHUTDOWN_POLL: Duration = Duration::from_millis(5);
/// How many times a session is asked to fill in one turn before the batch is written.
const FILL_ROUNDS: usize = 4;
/// The send buffer of a Unix-domain stream (ipc), in octets: the kernel does not size these to the
/// traffic as it does TCP's, and its default (208 KiB) cuts a 1 MiB message into five writes, each a
/// wake-up of both sides. The kernel caps it at `net.core.wmem_max`.
const UNIX_SEND_BUFFER: usize = 2 * 1024 * 1024;

/// Sets a new stream's options: no Nagle delay on TCP (`inet`), a larger send buffer on a
/// Unix-domain stream. Failures are ignored: the stream works without them, only slower.
fn tune(s: &Socket, inet: bool) {
    if inet {
        let _ = s.set_tcp_nodelay(true);
    } else {
        let _ = s.set_send_buffer_size(UNIX_SEND_BUFFER);
    }
}

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
    /// The stream is readable (or failed); the read itself is a plain non-blocking `recv`, under the
    /// gate's lock, so that the socket's thread can take the reading over (see [`Gate`]).
    Poll {
        conn: usize,
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
    /// The session and the codec, shared with the socket's thread.
    gate: Arc<Gate>,
    scheduled: Arc<AtomicBool>,
    socket: Option<Socket>,
    phase: Phase,
    /// Operations in flight that name this connection.
    inflight: usize,
    poll_inflight: bool,
    write_inflight: bool,
    /// Output produced while a write is in flight.
    out: Transmit,
    /// Reading paused because the session's queue is full.
    paused: bool,
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
        let now = Instant::now();
        for i in self.conns.indices() {
            if let Some(c) = self.conns.get_mut(i) {
                if let Phase::Waiting(at) = c.phase {
                    take(Some(at));
                }
                let g = c.gate.lock();
                take(g.codec.as_ref().and_then(Connection::poll_timeout));
                take(g.lease_deadline(now));
                take(g.stream_look());
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
                let session = make(waker.clone());
                let inserted = self.conns.insert(Conn::new(
                    Gate::new(session, waker),
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
            Op::Poll { conn } => {
                self.op_done(conn);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.poll_inflight = false;
                }
                if result < 0 {
                    let e = io::Error::from_raw_os_error(-result);
                    self.disconnected(conn, Disconnect::Io(&e));
                } else {
                    self.read_stream(conn);
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
                c.gate.lock().codec = None;
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
        let waker = Waker::new(self.shared.clone(), idx, scheduled.clone());
        let session = factory.session(waker.clone());
        let mut conn = Conn::new(Gate::new(session, waker), scheduled, None, Duration::ZERO);
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
        let Some(s) = &c.socket else {
            return;
        };
        let peer = s.peer_addr().ok().and_then(|a| a.as_socket());
        tune(s, !s.local_addr().is_ok_and(|a| a.is_unix()));
        let mut g = c.gate.lock();
        if let Some(on) = g.session.keepalive() {
            let _ = s.set_keepalive(on);
        }
        g.start(s.as_raw_fd());
        g.session.on_stream(peer, &c.gate);
        let codec = Connection::new(g.session.config(), Instant::now());
        let started = codec.is_ok();
        g.codec = codec.ok();
        drop(g);
        c.phase = Phase::Live;
        c.paused = false;
        if !started {
            self.close(conn, false);
            return;
        }
        if let Some((_, r)) = &c.target {
            c.delay = r.ivl;
        }
        self.arm_poll(conn);
        self.service(conn);
    }

    /// Asks the ring to say when the stream is readable, unless it already will, reading is paused,
    /// or the socket's thread holds the read lease.
    fn arm_poll(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.poll_inflight || c.paused || c.phase != Phase::Live {
            return;
        }
        let Some(fd) = c.socket.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        if !c.gate.lock().engine_reads() {
            return;
        }
        c.poll_inflight = true;
        c.inflight += 1;
        let idx = self.ops.insert(Op::Poll { conn });
        let entry = opcode::PollAdd::new(types::Fd(fd), u32::from(libc::POLLIN.unsigned_abs()))
            .build()
            .user_data(idx as u64);
        self.push(entry);
    }

    /// The stream is readable: read, run the codec, hand events to the session, poll again.
    fn read_stream(&mut self, conn: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            let Some(fd) = c.socket.as_ref().map(AsRawFd::as_raw_fd) else {
                return;
            };
            if c.phase != Phase::Live {
                return;
            }
            let mut g = c.gate.lock();
            if !g.engine_reads() {
                // The socket's thread holds the lease: it reads.
                return;
            }
            let outcome = match g.pump(fd, Instant::now(), None) {
                Ok(Pumped::Data { full }) => Ok((g.session.accepting(), full)),
                Ok(Pumped::Empty) => Ok((true, false)),
                Err(failure) => Err(failure),
            };
            drop(g);
            match outcome {
                Err(failure) => {
                    self.fail(conn, failure);
                    return;
                }
                Ok((false, _)) => {
                    c.paused = true;
                    break;
                }
                Ok((true, true)) => {}
                Ok((true, false)) => break,
            }
        }
        self.arm_poll(conn);
        self.service(conn);
    }

    /// The stream failed (found by either thread): close it, saying why.
    fn fail(&mut self, conn: usize, failure: Failure) {
        match failure {
            Failure::Eof => self.disconnected(conn, Disconnect::Eof),
            Failure::Io(e) => self.disconnected(conn, Disconnect::Io(&e)),
            Failure::Protocol(e) => {
                // Say why (an ERROR command, for a socket-type mismatch) before closing.
                self.flush(conn);
                self.disconnected(conn, Disconnect::Protocol(&e));
            }
            Failure::Refused => self.disconnected(conn, Disconnect::Refused),
        }
    }

    /// The session may have work: resume reading if it has room, move its messages out, write.
    fn service(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase != Phase::Live {
            if !matches!(c.phase, Phase::Closing { .. }) && c.gate.lock().session.finished() {
                // A socket gone while disconnected: nothing left to deliver.
                if c.inflight == 0 {
                    self.conns.remove(conn);
                }
            }
            return;
        }
        let mut g = c.gate.lock();
        if let Some(failure) = g.failure.take() {
            // Found by the socket's thread while it held the read lease.
            drop(g);
            self.fail(conn, failure);
            return;
        }
        // Moves what the socket's queue had no room for (whichever thread read it) into the queue.
        if g.session.accepting() {
            c.paused = false;
        }
        drop(g);
        self.arm_poll(conn);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let mut g = c.gate.lock();
        prepend(&mut c.out, g.close_writes());
        let inner = &mut *g;
        let mut more = false;
        if let Some(codec) = inner.codec.as_mut() {
            if codec.is_ready() {
                for _ in 0..FILL_ROUNDS {
                    more = inner.session.fill(codec);
                    if !more {
                        break;
                    }
                }
            }
        }
        drop(g);
        self.flush(conn);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if more && !c.write_inflight {
            // Messages are still queued and no write's completion will bring the session back
            // (the kernel took the batch at once): it comes back through the ready queue, after
            // the connections already there.
            c.gate.wake();
        }
        let mut g = c.gate.lock();
        // What the socket's thread batched into the codec since the flush is not written yet (it
        // woke this thread for it).
        let flushed = !c.write_inflight && c.out.is_empty() && g.nothing_to_write();
        if g.session.finished() && (flushed || g.session.abandoned()) {
            drop(g);
            self.close(conn, false);
            return;
        }
        let ready = g
            .codec
            .as_ref()
            .is_some_and(|k| k.is_ready() && !k.wants_write());
        if flushed && ready && g.session.outbound_idle() {
            g.open_writes();
        }
    }

    /// Writes what the codec has queued, unless a write is already in flight.
    fn flush(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let mut g = c.gate.lock();
        prepend(&mut c.out, g.close_writes());
        // A lease's ring holds what was sent before anything the codec holds now.
        let before = c.out.len();
        g.take_ring(&mut c.out);
        if let Some(codec) = g.codec.as_mut() {
            codec.poll_transmit(&mut c.out);
        }
        g.batch_taken(c.out.len() - before);
        // Whatever this thread holds, or has in flight, goes before what the codec gets next: the
        // socket's thread must not write past it.
        g.set_writer_idle(!c.write_inflight && c.out.is_empty());
        drop(g);
        if c.write_inflight || c.out.is_empty() || c.phase != Phase::Live {
            return;
        }
        let Some(fd) = c.socket.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        // First a plain non-blocking write, which on an idle stream takes it all: the socket's
        // thread may then write its next batch itself without waiting for a completion to be
        // reaped here.
        let mut iov = [gate::EMPTY_IOV; MAX_IOV];
        let sent = gate::send_batch(fd, &c.out, &mut iov);
        if let Ok(n) = usize::try_from(sent) {
            c.out.advance(n);
            if c.out.is_empty() {
                c.gate.lock().set_writer_idle(true);
                return;
            }
        }
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
                    let finished = c.gate.lock().session.finished();
                    if finished {
                        self.conns.remove(i);
                    } else {
                        self.start_connect(i);
                    }
                }
                Phase::Live => {
                    let mut g = c.gate.lock();
                    let reclaimed = g.reclaim(now);
                    let stale = g.stream_look().is_some_and(|t| t <= now) && g.look_at_stream(now);
                    let timed_out = match g.codec.as_mut() {
                        Some(codec) if codec.poll_timeout().is_some_and(|t| t <= now) => {
                            Some(codec.handle_timeout(now))
                        }
                        _ => None,
                    };
                    drop(g);
                    if reclaimed {
                        // The socket's thread left the stream unread: the I/O thread reads it again.
                        self.arm_poll(i);
                    }
                    if stale {
                        // The socket's thread left its stream's last batch: written here.
                        self.flush(i);
                    }
                    match timed_out {
                        Some(Ok(())) => self.flush(i),
                        Some(Err(e)) => self.disconnected(i, Disconnect::Protocol(&e)),
                        None => {}
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
        let reconnect = c.gate.lock().session.on_disconnect(why) && c.target.is_some();
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
        c.gate.lock().shut();
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

/// Puts what a direct write left unwritten in front of the output.
fn prepend(out: &mut Transmit, mut leftover: Transmit) {
    if !leftover.is_empty() {
        leftover.append(out);
        *out = leftover;
    }
}

impl Conn {
    fn new(
        gate: Gate,
        scheduled: Arc<AtomicBool>,
        target: Option<(Vec<Address>, Reconnect)>,
        delay: Duration,
    ) -> Conn {
        Conn {
            gate: Arc::new(gate),
            scheduled,
            socket: None,
            phase: Phase::Connecting,
            inflight: 0,
            poll_inflight: false,
            write_inflight: false,
            out: Transmit::new(),
            paused: false,
            target,
            next_addr: 0,
            delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_stream_gets_a_larger_send_buffer_and_tcp_no_delay() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let unix = Socket::from(std::os::fd::OwnedFd::from(a));
        let before = unix.send_buffer_size().unwrap();
        tune(&unix, false);
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(UNIX_SEND_BUFFER);
        // The kernel doubles what it is given (for its bookkeeping), up to its cap.
        let want = UNIX_SEND_BUFFER.min(max);
        assert!(
            unix.send_buffer_size().unwrap() >= want.max(before),
            "{before}"
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let tcp = Socket::from(std::os::fd::OwnedFd::from(c));
        let tcp_before = tcp.send_buffer_size().unwrap();
        tune(&tcp, true);
        assert!(tcp.tcp_nodelay().unwrap());
        assert_eq!(
            tcp.send_buffer_size().unwrap(),
            tcp_before,
            "TCP sizes its own buffers"
        );
    }
}
