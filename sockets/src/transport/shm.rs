//! `shm://name`: sockets in two processes of one machine joined by rings in shared memory
//! (`zring-shm`), with no I/O thread and no system call per message.
//!
//! Rendezvous: the binding side listens on the abstract Unix socket `zring-shm/NAME` (nothing in any
//! file system, so nothing to leak). The connecting side makes one sealed memfd holding two rings
//! (its way out first), and sends on the Unix socket a HELLO carrying its socket type, its routing
//! id, the rings' dimensions, the memfd and the eventfd that wakes its socket. The binding side checks
//! everything (types compatible, memfd sealed and large enough, ring headers right) and answers with
//! READY (its type, its routing id, its own eventfd) or a refusal. Both sides then keep the Unix
//! socket open and silent: its end is how each learns that the other closed or died (`kill -9`
//! included). The socket types, identities and rings are the whole connection; there is no ZMTP on
//! the rings, whose records keep frames and MORE flags themselves.
//!
//! Wake-ups: a socket that waits in `recv` (or in `send` for room) arms the word of each of its
//! rings and waits in poll(2) on its eventfd; the peer's ring end, finding the word armed when it
//! publishes (or makes room), writes that eventfd. A peer that keeps up is never woken: no system
//! call. A thread per connection waits on the Unix socket alone.
//!
//! The high-water marks of the connecting side size the rings: its SNDHWM is the capacity, in
//! messages of up to 56 bytes, of its way out, its RCVHWM that of its way in (0: 65536). Frames over
//! an eighth of the ring (1016 B to 8 KiB: `zring_shm::Config::inline_max`) go through a 1 GiB slab
//! beside each ring (of which only the pages used take memory) and are read in place (zero-copy); a
//! message whose large frames together exceed the slab cannot be carried and is dropped and counted
//! ([`crate::Drops::too_large`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zring_engine::EventFd;
use zring_shm::link::{self, Ended};
use zring_shm::{Closer, Config, Consumer, Payload, Producer, Region};

use super::session::SocketLink;
use crate::error::{Error, Result};
use crate::monitor::{DisconnectReason, MonitorEvent, SharedHub};
use crate::msg::Msg;
use crate::pipe::{take_message, Command, Parts, PeerMeta, PipeEnd};
use crate::SocketType;

const MAGIC: &[u8; 5] = b"ZRSHM";
const VERSION: u8 = 1;
/// READY.
const ACCEPTED: u8 = 0;
/// The socket types cannot talk.
const INCOMPATIBLE: u8 = 1;
/// The HELLO, the memfd or the rings were not acceptable.
const INVALID: u8 = 2;
/// Slab of each ring: 16384 chunks of 64 KiB, 1 GiB. A memfd's pages exist only once written and
/// the slab is used from its start (first fit), so a connection holds in memory what its largest
/// burst of large frames needed, not the slab's size.
const CHUNKS: u32 = 16384;
const CHUNK_SIZE: u32 = 64 * 1024;
/// How long a thread waiting on a connection goes without looking whether its socket is gone.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a shared-memory connection needs to know of its socket.
#[derive(Clone)]
pub(crate) struct ShmLink {
    pub(crate) link: SocketLink,
    /// Frames too large for a ring, dropped.
    pub(crate) too_large: Arc<AtomicU64>,
    pub(crate) reconnect: zring_engine::Reconnect,
}

impl ShmLink {
    /// The socket's eventfd, which peers write to wake it (made on first use).
    fn wake(&self) -> io::Result<&EventFd> {
        self.link
            .signal
            .eventfd()
            .ok_or_else(|| io::Error::other("no eventfd for the socket"))
    }
}

fn address(name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("zring-shm/{name}"))
}

/// A ring's dimensions for a high-water mark.
fn ring_config(hwm: usize) -> Config {
    let slots = if hwm == 0 {
        1 << 16
    } else {
        u32::try_from(hwm.next_power_of_two())
            .unwrap_or(1 << 24)
            .clamp(16, 1 << 24)
    };
    Config {
        slots,
        chunks: CHUNKS,
        chunk_size: CHUNK_SIZE,
    }
}

/// Where the second ring starts in a region holding the first one of `first` bytes.
fn second_offset(first: usize) -> usize {
    first.next_multiple_of(4096)
}

/// The connection's Unix socket, shared by the pipe end and the thread that watches it.
struct Conn {
    /// Set once the rendezvous is done (a connecting side's rings exist before).
    stream: OnceLock<UnixStream>,
    /// Set when our side ends the connection (its pipe end is dropped): the watcher then ends
    /// without reporting a disconnection.
    local_close: AtomicBool,
    /// Close both rings when the peer is gone.
    closers: [Closer; 2],
}

impl Conn {
    fn close_rings(&self) {
        for c in &self.closers {
            c.close();
        }
    }

    fn shutdown(&self) {
        if let Some(s) = self.stream.get() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The peer's eventfd, known once the rendezvous is done; the ring ends' wakers write it.
type PeerWake = Arc<OnceLock<EventFd>>;

/// A socket's end of a shared-memory connection: its way out and its way in. Used by the socket's
/// thread only.
pub(crate) struct ShmEnd {
    tx: RefCell<Producer>,
    rx: RefCell<Consumer>,
    conn: Arc<Conn>,
    /// Set when the peer broke a ring's rules: the connection is then over.
    broken: AtomicBool,
    too_large: Arc<AtomicU64>,
    monitor: SharedHub,
}

impl ShmEnd {
    /// Our end over the two ring ends, and what the connection's thread needs of it.
    fn new(tx: Producer, rx: Consumer, link: &ShmLink) -> (ShmEnd, Arc<Conn>, PeerWake) {
        let wake: PeerWake = Arc::default();
        let waker = |w: PeerWake| {
            move || {
                if let Some(fd) = w.get() {
                    fd.wake();
                }
            }
        };
        tx.set_waker(waker(wake.clone()));
        rx.set_waker(waker(wake.clone()));
        let conn = Arc::new(Conn {
            stream: OnceLock::new(),
            local_close: AtomicBool::new(false),
            closers: [tx.closer(), rx.closer()],
        });
        let end = ShmEnd {
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
            conn: conn.clone(),
            broken: AtomicBool::new(false),
            too_large: link.too_large.clone(),
            monitor: link.link.monitor.clone(),
        };
        (end, conn, wake)
    }

    /// The peer broke the rings' rules: the connection ends here, with a monitor event.
    fn break_off(&self, why: String) {
        if self.broken.swap(true, Ordering::Relaxed) {
            return;
        }
        self.conn.local_close.store(true, Ordering::Relaxed);
        self.conn.close_rings();
        self.conn.shutdown();
        self.monitor.emit(MonitorEvent::Disconnected {
            peer: None,
            reason: DisconnectReason::SharedMemory(why),
        });
    }

    pub(crate) fn try_send(&self, msg: Parts) -> std::result::Result<(), Parts> {
        if msg.with_frames(|frames| self.send_frames(frames)) {
            Ok(())
        } else {
            Err(msg)
        }
    }

    /// Writes the message of `frames` into the ring; `false` if it must wait for room. A message
    /// that can never fit is dropped and counted; one for a peer that is gone (or broke the ring)
    /// goes with the connection, as over tcp.
    pub(crate) fn send_frames<P: Payload>(&self, frames: &[P]) -> bool {
        match self.tx.borrow_mut().try_send_payloads(frames) {
            Ok(()) => true,
            Err(zring_shm::Error::Full) => self.broken.load(Ordering::Relaxed),
            Err(zring_shm::Error::TooLarge(_)) => {
                self.too_large.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(zring_shm::Error::Corrupt(why)) => {
                self.break_off(why);
                true
            }
            Err(_) => true,
        }
    }

    pub(crate) fn try_recv(&self) -> Option<Parts> {
        let mut first = Msg::new();
        let mut rest = Vec::new();
        self.recv_frames(&mut first, |m| rest.push(m))
            .then(|| Parts::with_rest(first, rest))
    }

    /// [`ShmEnd::try_recv`] frame by frame (see `PipeEnd::try_recv_frame`). The frames of a message
    /// that a broken ring cut short are taken back from `rest`: nothing of it is delivered.
    #[inline]
    pub(crate) fn try_recv_frame(&self, first: &mut Msg, rest: &mut VecDeque<Msg>) -> bool {
        let before = rest.len();
        let got = self.recv_frames(first, |m| rest.push_back(m));
        if !got {
            rest.truncate(before);
        }
        got
    }

    /// Takes the next message from the ring: its first frame into `first`, the others, in order
    /// and with their `more` flags, to `rest`; `false` if none was there.
    #[inline]
    fn recv_frames(&self, first: &mut Msg, mut rest: impl FnMut(Msg)) -> bool {
        if self.broken.load(Ordering::Relaxed) {
            return false;
        }
        let got = take_message(&mut self.rx.borrow_mut(), first, |m, more| {
            rest(m.with_more(more))
        });
        match got {
            Ok(got) => got,
            Err(zring_shm::Error::Closed) => false,
            Err(e) => {
                self.break_off(e.to_string());
                false
            }
        }
    }

    pub(crate) fn writable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && self.tx.borrow_mut().writable().unwrap_or(false)
    }

    pub(crate) fn readable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && self.rx.borrow().has_message()
    }

    pub(crate) fn peer_closed(&self) -> bool {
        self.broken.load(Ordering::Relaxed) || self.rx.borrow().peer_closed()
    }

    pub(crate) fn spin_worthwhile(&self) -> bool {
        self.rx.borrow().spin_worthwhile()
    }

    pub(crate) fn arm(&self, recv: bool) -> bool {
        if recv {
            self.rx.borrow_mut().arm()
        } else {
            self.tx.borrow().arm()
        }
    }

    pub(crate) fn disarm(&self) {
        self.rx.borrow().disarm();
        self.tx.borrow().disarm();
    }

    pub(crate) fn close(&self) {
        self.conn.local_close.store(true, Ordering::Relaxed);
        self.tx.borrow().close();
        self.conn.shutdown();
    }
}

/// A HELLO or a READY: who is at the other end.
struct Greeting {
    status: u8,
    socket_type: SocketType,
    routing_id: Bytes,
    /// HELLO only: the dimensions of the connector's way out and way in.
    rings: Option<(Config, Config)>,
}

fn encode(g: &Greeting) -> Vec<u8> {
    let name = g.socket_type.as_str().as_bytes();
    let mut out = Vec::with_capacity(64 + g.routing_id.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(g.status);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(g.routing_id.len() as u8);
    out.extend_from_slice(&g.routing_id);
    if let Some((a, b)) = g.rings {
        for v in [a.slots, b.slots, a.chunks, a.chunk_size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Parses a greeting; `rings` says whether dimensions must follow (a HELLO).
fn decode(bytes: &[u8], rings: bool) -> io::Result<Greeting> {
    let mut r = bytes;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        if r.len() < n {
            return Err(invalid("greeting too short"));
        }
        let (head, tail) = r.split_at(n);
        r = tail;
        Ok(head)
    };
    if take(5)? != MAGIC || take(1)? != [VERSION] {
        return Err(invalid("not a zring shm greeting"));
    }
    let status = take(1)?[0];
    let name_len = usize::from(take(1)?[0]);
    let socket_type =
        SocketType::from_name(take(name_len)?).ok_or_else(|| invalid("unknown socket type"))?;
    let id_len = usize::from(take(1)?[0]);
    let routing_id = Bytes::copy_from_slice(take(id_len)?);
    let rings = if rings {
        let mut word = || -> io::Result<u32> {
            let b = take(4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (out_slots, in_slots, chunks, chunk_size) = (word()?, word()?, word()?, word()?);
        let cfg = |slots| Config {
            slots,
            chunks,
            chunk_size,
        };
        Some((cfg(out_slots), cfg(in_slots)))
    } else {
        None
    };
    if !r.is_empty() {
        return Err(invalid("bytes after the greeting"));
    }
    Ok(Greeting {
        status,
        socket_type,
        routing_id,
        rings,
    })
}

fn ring_error(e: zring_shm::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn our_greeting(link: &SocketLink, status: u8, rings: Option<(Config, Config)>) -> Greeting {
    Greeting {
        status,
        socket_type: link.socket_type,
        routing_id: link.routing_id.clone(),
        rings,
    }
}

/// Watches an established connection until it ends; reports the end unless our side ended it.
fn watch(link: &ShmLink, conn: &Conn) {
    let signal = &link.link.signal;
    let Some(stream) = conn.stream.get() else {
        return;
    };
    let ended = loop {
        match link::watch(stream, Some(Instant::now() + LOOK_EVERY)) {
            Ended::Timeout if !signal.is_closed() => {}
            other => break other,
        }
    };
    if conn.local_close.load(Ordering::Relaxed) {
        return;
    }
    conn.close_rings();
    conn.shutdown();
    signal.notify();
    let reason = match ended {
        Ended::Unexpected => {
            DisconnectReason::SharedMemory("bytes on the rendezvous socket".into())
        }
        Ended::Error(kind) => DisconnectReason::Io(kind),
        Ended::Closed | Ended::Timeout => DisconnectReason::PeerClosed,
    };
    link.link
        .monitor
        .emit(MonitorEvent::Disconnected { peer: None, reason });
}

fn handshake_deadline(link: &SocketLink) -> Duration {
    link.config
        .handshake_ivl
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_millis(1))
}

fn failed(link: &ShmLink, e: &io::Error) {
    let reason = if e.kind() == io::ErrorKind::ConnectionRefused {
        DisconnectReason::Refused
    } else {
        DisconnectReason::SharedMemory(e.to_string())
    };
    link.link
        .monitor
        .emit(MonitorEvent::HandshakeFailed { peer: None, reason });
}

fn refused(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, what)
}

/// The binding side of one accepted connection: checks the HELLO, answers, serves.
fn accept(link: &ShmLink, stream: UnixStream) {
    match accept_hello(link, &stream) {
        Ok((tx, rx, wake, peer)) => {
            let (end, conn, peer_wake) = ShmEnd::new(tx, rx, link);
            let _ = peer_wake.set(wake);
            let _ = conn.stream.set(stream);
            if link.link.signal.is_closed() {
                return;
            }
            link.link
                .monitor
                .emit(MonitorEvent::HandshakeSucceeded { peer: None });
            link.link
                .signal
                .post(Command::Attach(PipeEnd::shm(end, peer)));
            watch(link, &conn);
        }
        Err(e) => {
            let status = if e.kind() == io::ErrorKind::ConnectionRefused {
                INCOMPATIBLE
            } else {
                INVALID
            };
            let _ = link::send(
                &stream,
                &encode(&our_greeting(&link.link, status, None)),
                &[],
            );
            failed(link, &e);
        }
    }
}

fn accept_hello(
    link: &ShmLink,
    stream: &UnixStream,
) -> io::Result<(Producer, Consumer, EventFd, PeerMeta)> {
    stream.set_read_timeout(Some(handshake_deadline(&link.link)))?;
    let (body, fds) = link::recv(stream)?;
    let hello = decode(&body, true)?;
    if !link.link.socket_type.is_compatible(hello.socket_type) {
        return Err(refused("incompatible socket types"));
    }
    let mut fds = fds.into_iter();
    let (Some(memfd), Some(wake), None) = (fds.next(), fds.next(), fds.next()) else {
        return Err(invalid("expected a memfd and an eventfd"));
    };
    let Some((theirs, ours)) = hello.rings else {
        return Err(invalid("no ring dimensions"));
    };
    let first = theirs.size().map_err(ring_error)?;
    let second = ours.size().map_err(ring_error)?;
    let at = second_offset(first);
    let region = Arc::new(Region::open(memfd, at + second)?);
    let rx = Consumer::attach(&region, 0, theirs).map_err(ring_error)?;
    let tx = Producer::attach(&region, at, ours).map_err(ring_error)?;
    let wake = EventFd::from_peer(wake)?;
    let mine = link.wake()?;
    link::send(
        stream,
        &encode(&our_greeting(&link.link, ACCEPTED, None)),
        &[mine.as_fd()],
    )?;
    stream.set_read_timeout(None)?;
    let peer = PeerMeta {
        socket_type: hello.socket_type,
        routing_id: hello.routing_id,
    };
    Ok((tx, rx, wake, peer))
}

/// A connecting side's rings, made before the rendezvous so that messages queue meanwhile.
struct Rings {
    memfd: OwnedFd,
    dims: (Config, Config),
    conn: Arc<Conn>,
    wake: PeerWake,
    /// Our end, until it is handed to the socket (after the READY, for a ROUTER that must learn
    /// the peer's routing id first; at once otherwise).
    end: Option<ShmEnd>,
}

/// Makes the connecting side's memfd and rings (its way out first).
fn make_rings(link: &ShmLink) -> io::Result<Rings> {
    let out = ring_config(link.link.sndhwm);
    let inn = ring_config(link.link.rcvhwm);
    let at = second_offset(out.size().map_err(ring_error)?);
    let (region, memfd) = Region::shared(at + inn.size().map_err(ring_error)?)?;
    let region = Arc::new(region);
    zring_shm::init(&region, 0, out).map_err(ring_error)?;
    zring_shm::init(&region, at, inn).map_err(ring_error)?;
    let tx = Producer::attach(&region, 0, out).map_err(ring_error)?;
    let rx = Consumer::attach(&region, at, inn).map_err(ring_error)?;
    let (end, conn, wake) = ShmEnd::new(tx, rx, link);
    Ok(Rings {
        memfd,
        dims: (out, inn),
        conn,
        wake,
        end: Some(end),
    })
}

/// The rendezvous of the connecting side: sends the HELLO with the rings, reads the READY.
fn rendezvous(link: &ShmLink, stream: &UnixStream, rings: &Rings) -> io::Result<PeerMeta> {
    let mine = link.wake()?;
    stream.set_read_timeout(Some(handshake_deadline(&link.link)))?;
    link::send(
        stream,
        &encode(&our_greeting(&link.link, ACCEPTED, Some(rings.dims))),
        &[rings.memfd.as_fd(), mine.as_fd()],
    )?;
    let (body, fds) = link::recv(stream)?;
    let ready = decode(&body, false)?;
    match ready.status {
        ACCEPTED => {}
        INCOMPATIBLE => return Err(refused("incompatible socket types")),
        _ => return Err(refused("the peer refused the rings")),
    }
    if !link.link.socket_type.is_compatible(ready.socket_type) {
        return Err(refused("incompatible socket types"));
    }
    let mut fds = fds.into_iter();
    let (Some(wake), None) = (fds.next(), fds.next()) else {
        return Err(invalid("expected one eventfd"));
    };
    let wake_fd = EventFd::from_peer(wake)?;
    let wake = rings.wake.get_or_init(|| wake_fd);
    // The peer may have waited for our ring already, and a wake-up our side tried before the
    // eventfd was known went nowhere: one wake-up now makes up for it.
    wake.wake();
    stream.set_read_timeout(None)?;
    Ok(PeerMeta {
        socket_type: ready.socket_type,
        routing_id: ready.routing_id,
    })
}

/// Stops a bound endpoint's listener when dropped; the abstract name is free again once it is.
pub(crate) struct Listener {
    stop: Arc<EventFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.wake();
        // The name is free once the thread has let its listener go: a bind right after works.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `name`: accepts connections on a thread of their own, one thread per connection.
pub(crate) fn bind(endpoint: &str, name: &str, link: ShmLink) -> Result<Listener> {
    let listener = UnixListener::bind_addr(&address(name)?).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            Error::AddressInUse {
                endpoint: endpoint.to_string(),
            }
        } else {
            Error::Io(e)
        }
    })?;
    link.wake()?;
    let stop = Arc::new(EventFd::new()?);
    let stopped = stop.clone();
    let thread = spawn("zring-shm-listen", move || {
        while link::wait_readable(&listener, &*stopped) {
            let Ok((stream, _)) = listener.accept() else {
                continue;
            };
            let link = link.clone();
            // Without a thread the connection is dropped, which the peer sees.
            let _ = spawn("zring-shm-conn", move || accept(&link, stream));
        }
    })?;
    Ok(Listener {
        stop,
        thread: Some(thread),
    })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(128 * 1024)
        .spawn(f)
        .map_err(Error::Io)
}

/// Connects to `name`, now or once it is bound, and again whenever the connection is lost, until the
/// socket is dropped. Returns the pipe to attach at once (`None` for a ROUTER or with IMMEDIATE:
/// their pipes are posted after the rendezvous); messages sent meanwhile wait in its ring.
pub(crate) fn connect(name: &str, link: ShmLink, early: bool) -> Result<Option<PipeEnd>> {
    let addr = address(name)?;
    link.wake()?;
    let mut first = make_rings(&link)?;
    let pipe = if early {
        first.end.take().map(|end| {
            let peer = PeerMeta {
                socket_type: link.link.socket_type,
                routing_id: Bytes::new(),
            };
            PipeEnd::shm(end, peer)
        })
    } else {
        None
    };
    let mut next = Some(first);
    spawn("zring-shm-connect", move || {
        let mut ivl = link.reconnect.ivl;
        while !link.link.signal.is_closed() {
            let rings = match next.take() {
                Some(r) => r,
                None => match make_rings(&link) {
                    Ok(r) => r,
                    Err(e) => {
                        failed(&link, &e);
                        return;
                    }
                },
            };
            if rings.conn.local_close.load(Ordering::Relaxed) {
                // The socket let the pipe go (it was dropped): nothing left to connect.
                return;
            }
            match UnixStream::connect_addr(&addr) {
                Err(_) => next = Some(rings),
                Ok(stream) => {
                    link.link
                        .monitor
                        .emit(MonitorEvent::Connected { peer: None });
                    match rendezvous(&link, &stream, &rings) {
                        Ok(peer) => {
                            let _ = rings.conn.stream.set(stream);
                            link.link
                                .monitor
                                .emit(MonitorEvent::HandshakeSucceeded { peer: None });
                            if let Some(end) = rings.end {
                                link.link
                                    .signal
                                    .post(Command::Attach(PipeEnd::shm(end, peer)));
                            }
                            watch(&link, &rings.conn);
                            ivl = link.reconnect.ivl;
                        }
                        Err(e) => {
                            // Rings offered to a peer that refused them are not offered again.
                            rings.conn.close_rings();
                            link.link.signal.notify();
                            failed(&link, &e);
                        }
                    }
                }
            }
            // The reconnection interval, cut short if the socket goes away.
            let until = Instant::now() + ivl;
            while Instant::now() < until && !link.link.signal.is_closed() {
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
            }
            if !link.reconnect.ivl_max.is_zero() {
                ivl = (ivl * 2).min(link.reconnect.ivl_max.max(link.reconnect.ivl));
            }
        }
    })?;
    Ok(pipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_round_trips_and_garbage_is_refused() {
        let g = Greeting {
            status: ACCEPTED,
            socket_type: SocketType::Dealer,
            routing_id: Bytes::from_static(b"id"),
            rings: Some((ring_config(1000), ring_config(0))),
        };
        let back = decode(&encode(&g), true).unwrap();
        assert_eq!(back.socket_type, SocketType::Dealer);
        assert_eq!(&back.routing_id[..], b"id");
        assert_eq!(back.rings, Some((ring_config(1000), ring_config(0))));
        assert_eq!(ring_config(1000).slots, 1024);
        assert_eq!(ring_config(0).slots, 1 << 16);
        let bytes = encode(&g);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], true).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra, true).is_err());
        let mut wrong = bytes;
        wrong[7] = 200;
        assert!(decode(&wrong, true).is_err());
    }
}
