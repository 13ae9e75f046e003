//! `Socket`: the API users program against.

use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zring_engine::{DirectReader, Step, Take, Taker};
use zring_zmtp::FrameView;

use crate::context::{Context, Party};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::inbox::Inbox;
use crate::msg::{IntoMsg, Msg};
use crate::options::{bound, Options};
use crate::pattern::{self, Drops, Pattern, SendError};
use crate::pipe::{Capacity, Command, Parts, PeerMeta, PipeEnd, Waiter};
use crate::route::{PipeId, Pipes};
use crate::transport::session::SocketLink;
use crate::transport::{ipc, shm, tcp};
use crate::SocketType;

/// How long a blocking call spins for peer sockets (inproc, or shm) on other CPUs before it waits
/// (as `zring-shm`'s default): waking across cores costs both sides far more.
const PEER_SPIN: Duration = Duration::from_micros(5);
/// How long a blocking call spins instead, when this socket's last send woke a peer socket parked
/// on another CPU: that peer answers only once the kernel has woken it, which takes 15-150 us on
/// this machine, more than [`PEER_SPIN`]. A side that parked then would need the same wake-up for
/// the answer, and both sides would go on parking at every message (one-way 40-60 us instead of
/// 0.5 us, seen in some inproc REQ/REP runs): spinning past one wake-up brings them back to
/// spinning.
const WOKEN_PEER_SPIN: Duration = Duration::from_micros(200);
/// Pause instructions between two looks while spinning: a look every 0.1-0.2 us (a pause is 25 ns
/// on this machine's AMD EPYC, about 40 on recent Intel cores); 64 made a look every 1.6 us, most of
/// the one-way latency of inproc and shm.
const SPIN_PAUSES: usize = 4;
/// Looks a blocking call takes before it reads a clock (about 0.5-1.5 us), for a peer that keeps up.
const QUICK_LOOKS: usize = 8;
/// Looks between two clock reads while spinning.
const CLOCK_LOOKS: usize = 4;
/// A socket notes the CPU it runs on once in this many calls (and whenever it waits).
const CPU_EVERY: u32 = 256;
/// A socket with at most this many peers writes what it batched for them in stream mode before it
/// waits ([`Socket::flush_streams`]); one with more leaves it to the I/O thread's looks.
const FLUSH_PEERS: usize = 16;

/// A ZeroMQ socket. `Send` (move it to the thread that uses it), not `Sync`, as in libzmq.
///
/// Blocking calls wait for as long as the socket's timeout says (`set_rcvtimeo`, `set_sndtimeo`;
/// blocking forever by default) and then fail with [`Error::WouldBlock`]; [`Socket::try_send`] and
/// [`Socket::try_recv`] never wait. A call that the pattern forbids at that moment (a REQ sending
/// twice) fails with [`Error::InvalidState`].
///
/// A socket is aligned to 128 octets (a pair of cache lines): its thread writes it at every call,
/// and a socket next to another in memory (two boxed sockets, one per thread) would otherwise
/// share a line with it.
#[repr(align(128))]
pub struct Socket {
    ctx: Context,
    socket_type: SocketType,
    id: u64,
    waiter: Waiter,
    pipes: Pipes,
    pattern: Box<dyn Pattern>,
    options: Options,
    /// Frames of the message being sent, until the one without `more`.
    sending: Vec<Msg>,
    /// Whether the pattern sends each message to its one peer unchanged (PUSH, DEALER, PAIR): then a
    /// message may go straight to that peer's stream ([`Socket::send_body`]).
    plain_out: bool,
    /// Frames of the message being received, not yet returned.
    receiving: VecDeque<Msg>,
    /// Which messages a read of the one stream on this thread may keep in `inbox`: `Some(false)`
    /// one-frame messages, where the pattern receives each message unchanged or only filters it
    /// (PULL, DEALER, PAIR, SUB, XSUB; a SUB's filter applies as they are taken,
    /// [`Pattern::accepts`]); `Some(true)` an empty delimiter and a body, the body kept (REQ and
    /// REP, whose lock-step applies as they are taken, [`Pattern::check_recv_from`]); `None`: none.
    inbox_shape: Option<bool>,
    /// One-frame messages this thread read from its stream while nothing from that peer was queued
    /// or held elsewhere (so they come before anything in the pipe): at most one read's worth, taken
    /// before the pipe.
    inbox: Inbox,
    /// The pipe whose stream the messages of `inbox` came from.
    inbox_from: PipeId,
    /// Whether the pattern only fair-queues what it receives (PULL, DEALER, PAIR): then a receive
    /// may take its one peer's queue directly ([`Socket::recv_plain`]).
    plain_queue: bool,
    /// inproc names this socket bound.
    bound: Vec<String>,
    /// Network listeners this socket runs.
    listeners: Vec<zring_engine::ListenerId>,
    /// ipc socket files this socket created, removed when it is dropped.
    ipc_files: Vec<std::path::PathBuf>,
    /// shm endpoints this socket bound (each stops listening when dropped).
    shm_listeners: Vec<shm::Listener>,
    /// Frames too large for an shm ring, dropped.
    shm_too_large: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Where its connections' events go.
    monitor: crate::monitor::SharedHub,
    last_endpoint: Option<String>,
    /// The read lease on the socket's one network stream: while it waits to receive from that stream
    /// alone, the socket's thread reads it itself (see `zring_engine::Gate`).
    direct: Option<DirectReader>,
    /// Calls made (the CPU is noted once in [`CPU_EVERY`]).
    calls: u32,
    /// `calls` when the socket last parked: a socket that parks less than once in [`CPU_EVERY`]
    /// calls, all its peers sockets on other CPUs, lets their sends take the light barrier (see
    /// [`Waiter::prepare`]).
    parked_at: u32,
    /// Whether another thread may bring this socket a new pipe (a command in its mailbox): it
    /// bound an endpoint (peers come), or made a connection whose pipe comes at the handshake
    /// (ROUTER, `IMMEDIATE`, shm). If not, a receive from its one stream may wait for that stream
    /// alone ([`DirectReader::wait`]).
    mail_expected: bool,
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("type", &self.socket_type)
            .field("peers", &self.pipes.len())
            .field("last_endpoint", &self.last_endpoint)
            .finish_non_exhaustive()
    }
}

/// Defines option setters that store their value as is (those that check it are written out).
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($field:ident: $ty:ty);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, value: $ty) -> Result<()> {
                self.options.$field = value;
                Ok(())
            }
        )*
    };
}

impl Socket {
    pub(crate) fn new(ctx: Context, socket_type: SocketType, id: u64) -> Socket {
        Socket {
            ctx,
            socket_type,
            id,
            waiter: Waiter::new(),
            pipes: Pipes::default(),
            pattern: pattern::new(socket_type),
            options: Options::default(),
            sending: Vec::new(),
            plain_out: matches!(
                socket_type,
                SocketType::Push | SocketType::Dealer | SocketType::Pair
            ),
            receiving: VecDeque::new(),
            inbox_shape: match socket_type {
                SocketType::Pull
                | SocketType::Dealer
                | SocketType::Pair
                | SocketType::Sub
                | SocketType::XSub => Some(false),
                SocketType::Req | SocketType::Rep => Some(true),
                _ => None,
            },
            inbox: Inbox::default(),
            inbox_from: PipeId::default(),
            plain_queue: matches!(
                socket_type,
                SocketType::Pull | SocketType::Dealer | SocketType::Pair
            ),
            bound: Vec::new(),
            listeners: Vec::new(),
            ipc_files: Vec::new(),
            shm_listeners: Vec::new(),
            shm_too_large: std::sync::Arc::default(),
            monitor: crate::monitor::SharedHub::default(),
            last_endpoint: None,
            direct: None,
            calls: 0,
            parked_at: 0,
            mail_expected: socket_type == SocketType::Router,
            _not_sync: PhantomData,
        }
    }

    /// Events of this socket's network connections (connected, handshake succeeded or failed and
    /// why, disconnected), for connections made after this call.
    pub fn monitor(&self) -> crate::Monitor {
        self.monitor.subscribe()
    }

    /// The socket's type.
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// The last endpoint bound or connected, resolved (e.g. the port chosen for `tcp://host:0`).
    pub fn last_endpoint(&self) -> Option<String> {
        self.last_endpoint.clone()
    }

    /// How many peers are attached now.
    pub fn peer_count(&mut self) -> usize {
        self.process_mail();
        self.reap();
        self.pipes.len()
    }

    /// Messages dropped by the pattern's mute action (PUB at a subscriber's high-water mark, ROUTER to
    /// an unknown peer): counted, never silent.
    pub fn drops(&self) -> Drops {
        Drops {
            too_large: self
                .shm_too_large
                .load(std::sync::atomic::Ordering::Relaxed),
            ..self.pattern.drops()
        }
    }

    fn shm_link(&self) -> shm::ShmLink {
        shm::ShmLink {
            link: self.link(),
            too_large: self.shm_too_large.clone(),
            reconnect: self.reconnect(),
        }
    }

    fn party(&self) -> Party {
        Party {
            socket_id: self.id,
            signal: self.waiter.signal.clone(),
            meta: PeerMeta {
                socket_type: self.socket_type,
                routing_id: self.options.routing_id.clone(),
            },
            sndhwm: self.options.sndhwm,
            rcvhwm: self.options.rcvhwm,
            conflate: self.options.conflate,
        }
    }

    fn link(&self) -> SocketLink {
        let o = &self.options;
        let mut config = zring_zmtp::Config::new(self.socket_type);
        config.identity = o.routing_id.clone();
        config.max_msg_size = o.maxmsgsize;
        config.handshake_ivl = o.handshake_ivl;
        config.heartbeat_ivl = o.heartbeat_ivl;
        config.heartbeat_ttl = o.heartbeat_ttl;
        config.heartbeat_timeout = o.heartbeat_timeout;
        SocketLink {
            socket_type: self.socket_type,
            signal: self.waiter.signal.clone(),
            routing_id: o.routing_id.clone(),
            sndhwm: o.sndhwm,
            rcvhwm: o.rcvhwm,
            conflate: o.conflate,
            tcp_keepalive: o.tcp_keepalive,
            config,
            monitor: self.monitor.clone(),
        }
    }

    fn tcp_target<'a>(&self, endpoint: &'a str, host: &'a str, port: u16) -> tcp::Target<'a> {
        tcp::Target {
            endpoint,
            host,
            port,
            ipv6: self.options.ipv6,
        }
    }

    /// Binds to an endpoint: `inproc://name`, `tcp://host:port` (`*` for every interface, port 0 or
    /// `*` for an ephemeral one: see [`Socket::last_endpoint`]), `ipc://path` or `ipc://@abstract`.
    pub fn bind(&mut self, endpoint: &str) -> Result<()> {
        let parsed = Endpoint::parse(endpoint)?;
        self.mail_expected = true;
        match parsed {
            Endpoint::Tcp { host, port } => {
                let engine = self.ctx.engine()?;
                let target = self.tcp_target(endpoint, &host, port);
                let thread = self.io_thread(engine.threads());
                let (id, resolved) = tcp::bind(&engine, thread, &target, self.link())?;
                self.listeners.push(id);
                self.last_endpoint = Some(resolved);
                Ok(())
            }
            Endpoint::Ipc(name) => {
                let engine = self.ctx.engine()?;
                let thread = self.io_thread(engine.threads());
                let bound = ipc::bind(&engine, thread, endpoint, &name, self.link())?;
                self.listeners.push(bound.listener);
                self.ipc_files.extend(bound.file);
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
            Endpoint::Inproc(name) => {
                let waiting = self.ctx.inproc_bind(&name, self.party())?;
                for pending in waiting {
                    pending.end.attach_signal(self.waiter.signal.clone());
                    let theirs = pending.end.peer.socket_type;
                    if self.socket_type.is_compatible(theirs) {
                        self.attach(pending.end);
                    }
                }
                self.bound.push(name);
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
            Endpoint::Shm(name) => {
                let listener = shm::bind(endpoint, &name, self.shm_link())?;
                self.shm_listeners.push(listener);
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
        }
    }

    /// Connects to an endpoint. Connecting before the peer binds works: messages queue meanwhile, and
    /// a network connection is made (and remade) in the background.
    pub fn connect(&mut self, endpoint: &str) -> Result<()> {
        match Endpoint::parse(endpoint)? {
            Endpoint::Tcp { host, port } => {
                let engine = self.ctx.engine()?;
                let target = self.tcp_target(endpoint, &host, port);
                let thread = self.io_thread(engine.threads());
                let pipe = self.connecting_pipe();
                self.mail_expected |= pipe.is_none();
                tcp::connect(
                    &engine,
                    thread,
                    &target,
                    self.link(),
                    pipe,
                    self.reconnect(),
                )?;
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
            Endpoint::Ipc(name) => {
                let engine = self.ctx.engine()?;
                let thread = self.io_thread(engine.threads());
                let pipe = self.connecting_pipe();
                self.mail_expected |= pipe.is_none();
                ipc::connect(&engine, thread, &name, self.link(), pipe, self.reconnect())?;
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
            Endpoint::Inproc(name) => {
                let end = self.ctx.inproc_connect(&name, self.party())?;
                self.attach(end);
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
            Endpoint::Shm(name) => {
                // Its pipe comes (again) with each rendezvous.
                self.mail_expected = true;
                let early = self.socket_type != SocketType::Router && !self.options.immediate;
                if let Some(pipe) = shm::connect(&name, self.shm_link(), early)? {
                    self.attach(pipe);
                }
                self.last_endpoint = Some(endpoint.to_string());
                Ok(())
            }
        }
    }

    /// The I/O thread for a new network connection: the lowest one `AFFINITY` allows (any if 0).
    fn io_thread(&self, threads: usize) -> usize {
        let mask = self.options.affinity;
        if mask == 0 {
            return 0;
        }
        (mask.trailing_zeros() as usize) % threads.max(1)
    }

    /// The pipe of a new outgoing network connection, made now so that messages queue while the
    /// stream is down and survive reconnections; `None` for a ROUTER (which must learn the routing id
    /// at the handshake) and with IMMEDIATE (queues only to completed connections).
    fn connecting_pipe(&mut self) -> Option<PipeEnd> {
        if self.socket_type == SocketType::Router || self.options.immediate {
            return None;
        }
        let (ours, theirs) = PipeEnd::pair(
            (
                Some(self.waiter.signal.clone()),
                PeerMeta {
                    socket_type: self.socket_type,
                    routing_id: self.options.routing_id.clone(),
                },
            ),
            // The remote peer, as far as it is known before the handshake.
            (
                None,
                PeerMeta {
                    socket_type: self.socket_type,
                    routing_id: Bytes::new(),
                },
            ),
            Capacity {
                forward: bound(self.options.sndhwm, self.options.conflate),
                backward: bound(self.options.rcvhwm, self.options.conflate),
            },
        );
        self.attach(ours);
        Some(theirs)
    }

    fn reconnect(&self) -> zring_engine::Reconnect {
        zring_engine::Reconnect {
            ivl: self.options.reconnect_ivl,
            ivl_max: self.options.reconnect_ivl_max,
        }
    }

    fn attach(&mut self, pipe: PipeEnd) {
        let id = self.pipes.insert(pipe);
        if !self.pattern.attach(id, &self.pipes) {
            self.pipes.remove(id);
        }
    }

    /// Applies what other threads posted: new pipes.
    fn process_mail(&mut self) {
        for command in self.waiter.signal.take_mail() {
            match command {
                Command::Attach(pipe) => self.attach(pipe),
            }
        }
    }

    /// Drops the pipes whose peer is gone and whose messages have all been read.
    fn reap(&mut self) {
        let finished: Vec<PipeId> = self
            .pipes
            .ids()
            .filter(|&id| self.pipes.get(id).is_some_and(PipeEnd::finished))
            .collect();
        for id in finished {
            self.pattern.detach(id, &self.pipes);
            self.pipes.remove(id);
        }
    }

    /// Counts a call, noting the CPU we run on at the first and then once in [`CPU_EVERY`]: a peer
    /// waiting for us spins only while we run on another CPU (on ours it would take our time).
    fn tick(&mut self) {
        if self.calls % CPU_EVERY == 0 {
            let me = self.waiter.signal.note_cpu();
            if self.parks_seldom() && self.spin_worthwhile(me) {
                self.waiter.lighten();
            }
        }
        self.calls = self.calls.wrapping_add(1);
    }

    /// Runs `attempt` until it yields, waiting in between for a wake-up, at most `timeout`. A receive
    /// (`recv`) from one network stream reads that stream on this thread (see [`Socket::read_direct`]).
    fn wait_for<T>(
        &mut self,
        timeout: Option<Duration>,
        recv: bool,
        mut attempt: impl FnMut(&mut Socket) -> Result<Option<T>>,
    ) -> Result<T> {
        let mut deadline = None;
        // Whether the stream is known (or likely) to have input: read it before waiting. A new lease
        // reads at once; a held one whose last read drained the stream polls first.
        let mut readable = self.direct.as_ref().is_none_or(DirectReader::has_more);
        self.tick();
        loop {
            self.process_mail();
            if let Some(t) = attempt(self)? {
                return Ok(t);
            }
            self.reap();
            if recv && (readable || timeout == Some(Duration::ZERO)) {
                readable = false;
                match self.read_direct() {
                    Step::Delivered => {
                        readable = self.direct.as_ref().is_some_and(DirectReader::has_more);
                        continue;
                    }
                    Step::Lost => self.direct = None,
                    Step::Empty | Step::Readable => {}
                }
            }
            if timeout == Some(Duration::ZERO) {
                return Err(Error::WouldBlock);
            }
            // Peers that wait for us spin only while we run on another CPU.
            let me = self.waiter.signal.note_cpu();
            // A peer that keeps up with us is usually a fraction of a microsecond away: a few
            // looks before any clock is read (on this VM a clock read costs as much as a look).
            let apart = self.spin_worthwhile(me);
            let bound = self.spin_bound(apart);
            if bound.is_some_and(|b| !b.is_zero()) {
                if let Some(t) = self.looks(recv, QUICK_LOOKS, &mut attempt)? {
                    return Ok(t);
                }
            }
            // A deadline just set has not passed yet as far as this pass needs to know: the wait
            // below ends at it anyway (one clock read a wait fewer).
            let fresh = timeout.is_some() && deadline.is_none();
            let deadline = match (timeout, deadline) {
                (Some(t), None) => Some(*deadline.insert(Instant::now() + t)),
                (_, d) => d,
            };
            if let Some(t) = self.spin(bound, recv, deadline, &mut attempt)? {
                return Ok(t);
            }
            // A peer in another process (shm) can only reach us through the eventfd.
            let shm = self.has_shm();
            let poll =
                (shm || (recv && self.direct.is_some())) && self.waiter.prepare_poll().is_some();
            if !poll {
                let light = apart && self.parks_seldom();
                self.parked_at = self.calls;
                self.waiter.prepare(light);
            }
            self.process_mail();
            if !poll && self.has_shm() {
                // A peer in another process just came: wait again, the way it can wake us.
                self.waiter.cancel();
                continue;
            }
            let armed = shm && self.arm_shm(recv, !recv);
            match attempt(self) {
                Ok(None) if !armed => {}
                Ok(None) => {
                    self.stop_waiting();
                    continue;
                }
                other => {
                    self.stop_waiting();
                    return other.and_then(|t| t.ok_or(Error::WouldBlock));
                }
            }
            if !fresh && deadline.is_some_and(|d| Instant::now() >= d) {
                self.stop_waiting();
                return Err(Error::WouldBlock);
            }
            self.flush_streams();
            match (
                poll.then(|| self.waiter.eventfd()).flatten(),
                self.direct.as_mut(),
            ) {
                (Some(wake), Some(direct)) => {
                    let inbox = &mut self.inbox;
                    let mut keep = |view: FrameView<'_>| inbox.keep(view);
                    let take: Take<'_> = self.inbox_shape.map(|delimited| Taker {
                        keep: &mut keep,
                        delimited,
                    });
                    let alone = !self.mail_expected;
                    let step = direct.wait(wake, deadline, || self.waiter.cancel(), take, alone);
                    self.waiter.cancel();
                    match step {
                        Step::Lost => self.direct = None,
                        Step::Delivered => {
                            readable = self.direct.as_ref().is_some_and(DirectReader::has_more);
                        }
                        step => readable = step == Step::Readable,
                    }
                }
                (Some(wake), None) => {
                    zring_engine::EventFd::wait_any(&[wake], deadline);
                }
                _ => self.waiter.park(deadline),
            }
            self.stop_waiting();
        }
    }

    /// Whether the socket made [`CPU_EVERY`] calls or more since it last parked.
    fn parks_seldom(&self) -> bool {
        self.calls.wrapping_sub(self.parked_at) >= CPU_EVERY
    }

    /// Before this thread waits: what it batched in stream mode for its streams is written now (a
    /// socket with many peers leaves that to the I/O thread's looks).
    fn flush_streams(&self) {
        if self.pipes.len() <= FLUSH_PEERS {
            for id in self.pipes.ids() {
                if let Some(pipe) = self.pipes.get(id) {
                    pipe.flush_stream();
                }
            }
        }
    }

    /// Whether a peer is in another process, over shared memory.
    pub(crate) fn has_shm(&self) -> bool {
        self.pipes.has_shm()
    }

    /// Whether every peer is a socket (inproc or shm) that last ran on another CPU than ours.
    fn spin_worthwhile(&self, me: u32) -> bool {
        self.pipes.len() > 0
            && self
                .pipes
                .ids()
                .all(|id| self.pipes.get(id).is_some_and(|p| p.spin_worthwhile(me)))
    }

    /// Before waiting on the socket's eventfd: asks the shm peers to write it when a message comes
    /// (`recv`) or room is made (`send`). Returns whether that already happened (do not wait then).
    pub(crate) fn arm_shm(&mut self, recv: bool, send: bool) -> bool {
        // Pipes that came meanwhile are armed too.
        self.process_mail();
        let mut ready = false;
        for p in self.pipes.shm() {
            ready |= (recv && p.arm(true)) | (send && p.arm(false));
        }
        ready
    }

    /// Ends the wait announced by [`Socket::arm_shm`].
    pub(crate) fn disarm_shm(&self) {
        self.pipes.shm().for_each(PipeEnd::disarm);
    }

    /// Ends a wait that did not happen (or has ended): the shm peers and the signal stop waking us.
    fn stop_waiting(&self) {
        self.disarm_shm();
        self.waiter.cancel();
    }

    /// Reads the socket's stream on this thread, if the socket has exactly one peer and it is a network
    /// stream past its handshake: takes (or keeps) the stream's read lease and hands what the kernel
    /// has to the session, which queues whole messages in the pipe as the I/O thread would. A socket
    /// with several peers leaves the reading to the I/O thread (it waits on their queues).
    fn read_direct(&mut self) -> Step {
        let Some((id, gate)) = self
            .pipes
            .only_entry()
            .and_then(|(id, p)| Some((id, p.gate()?)))
        else {
            return Step::Lost;
        };
        if !self.direct.as_ref().is_some_and(|d| d.is_for(&gate)) {
            if !self.inbox.is_empty() {
                // What the inbox holds came from the stream read before: taken first (a REP
                // replies to the peer it came from).
                return Step::Empty;
            }
            self.direct = None;
            self.direct = DirectReader::acquire(&gate);
            self.inbox_from = id;
        }
        let inbox = &mut self.inbox;
        let mut keep = |view: FrameView<'_>| inbox.keep(view);
        let take: Take<'_> = self.inbox_shape.map(|delimited| Taker {
            keep: &mut keep,
            delimited,
        });
        self.direct.as_mut().map_or(Step::Lost, |d| d.read(take))
    }

    /// Gives the read lease back to the I/O thread (before this thread waits on something else).
    pub(crate) fn release_direct(&mut self) {
        self.direct = None;
    }

    /// How long a blocking call may spin before it parks, if at all: the context's setting, else
    /// [`PEER_SPIN`] when every peer is a socket that last ran on another CPU than ours (`apart`:
    /// a wake-up through the kernel costs more than the spin), [`WOKEN_PEER_SPIN`] if our last send
    /// woke one of them, else not at all.
    fn spin_bound(&self, apart: bool) -> Option<Duration> {
        let woke_peer = self.waiter.signal.take_woke_peer();
        match self.ctx.spin() {
            Some(b) => Some(b),
            None if apart => Some(if woke_peer {
                WOKEN_PEER_SPIN
            } else {
                PEER_SPIN
            }),
            None => None,
        }
    }

    /// Tries `attempt` up to `n` times, [`SPIN_PAUSES`] apart, reading no clock. New pipes are taken
    /// in meanwhile, and a receive (`recv`) holding its stream's read lease reads the stream, which
    /// nobody else does while we spin.
    fn looks<T>(
        &mut self,
        recv: bool,
        n: usize,
        attempt: &mut impl FnMut(&mut Socket) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        for _ in 0..n {
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
            self.process_mail();
            if let Some(t) = attempt(self)? {
                return Ok(Some(t));
            }
            if recv && self.direct.is_some() && self.read_direct() == Step::Lost {
                self.direct = None;
            }
        }
        Ok(None)
    }

    /// Tries `attempt` for up to the spin bound (`None`: not at all), and never past the call's own
    /// `deadline`, before the caller parks: a writer that finds us awake needs no wake-up system
    /// call, and we need no scheduler wake-up. The clock is read once in [`CLOCK_LOOKS`] looks.
    fn spin<T>(
        &mut self,
        bound: Option<Duration>,
        recv: bool,
        deadline: Option<Instant>,
        attempt: &mut impl FnMut(&mut Socket) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let Some(bound) = bound else {
            return Ok(None);
        };
        // A bound too large to add is "spin until done" (busy polling on a dedicated core), or
        // until the call's own deadline.
        let until = match (Instant::now().checked_add(bound), deadline) {
            (Some(end), Some(d)) => Some(end.min(d)),
            (end, d) => end.or(d),
        };
        while until.is_none_or(|u| Instant::now() < u) {
            if let Some(t) = self.looks(recv, CLOCK_LOOKS, attempt)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    fn send_parts(&mut self, msg: Parts, timeout: Option<Duration>) -> Result<()> {
        let mut pending = Some(msg);
        self.wait_for(timeout, false, |s| {
            let Some(msg) = pending.take() else {
                return Ok(Some(()));
            };
            match s.pattern.send(&s.pipes, msg, &s.options) {
                Ok(()) => Ok(Some(())),
                Err(SendError::Full(back)) => {
                    pending = Some(back);
                    Ok(None)
                }
                Err(SendError::Fail(e)) => Err(e),
            }
        })
    }

    fn send_frame(&mut self, msg: Msg, timeout: Option<Duration>) -> Result<()> {
        if !pattern::can_send(self.socket_type) {
            return Err(Error::NotSupported {
                socket_type: self.socket_type,
                op: "send",
            });
        }
        if self.sending.is_empty() {
            self.pattern.check_send()?;
        }
        if msg.more() {
            self.sending.push(msg);
            return Ok(());
        }
        // A one-frame message (the common case) needs no vector.
        let parts = if self.sending.is_empty() {
            Parts::one(msg)
        } else {
            self.sending.push(msg);
            Parts::from_vec(std::mem::take(&mut self.sending))
        };
        self.send_parts(parts, timeout)
    }

    /// Sends one frame. A frame with [`Msg::more`] set waits for the rest of its message, which goes
    /// out with the first frame sent without it.
    pub fn send(&mut self, msg: impl IntoMsg) -> Result<()> {
        self.send_one(msg, self.options.sndtimeo)
    }

    /// Sends one frame without waiting: [`Error::WouldBlock`] if it cannot go now (the message is then
    /// not sent).
    pub fn try_send(&mut self, msg: impl IntoMsg) -> Result<()> {
        self.send_one(msg, Some(Duration::ZERO))
    }

    /// Sends one frame, waiting at most `timeout`. The short way, for a one-frame message on a
    /// socket that sends to its one peer unchanged (PUSH, DEALER, PAIR) with nothing of it pending:
    /// straight to that peer, past the pattern, its bytes into the stream's batch or the shm ring
    /// without becoming a `Msg` where they can, else as a `Msg` into the peer's queue.
    fn send_one(&mut self, msg: impl IntoMsg, timeout: Option<Duration>) -> Result<()> {
        // A sender that never waits still tells its peers where it runs.
        self.tick();
        let alone = !msg.more() && self.sending.is_empty() && !self.waiter.signal.has_mail();
        if let Some((id, pipe)) = self.pipes.only_entry().filter(|_| alone) {
            if self.plain_out {
                if pipe.try_send_frames(&[msg.as_ref()], true) {
                    return Ok(());
                }
                return match pipe.try_send(Parts::one(msg.into())) {
                    Ok(()) => Ok(()),
                    // Full: the usual way waits for room (or says it would block).
                    Err(parts) => self.send_parts(parts, timeout),
                };
            }
            if self.pattern.direct_envelope(id)? {
                // A REQ's request or a REP's reply to a REQ, behind its delimiter, the same short
                // way.
                if pipe.try_send_frames(&[&[], msg.as_ref()], true) {
                    self.pattern.sent_direct(id);
                    return Ok(());
                }
                return self.send_frame(msg.into(), timeout);
            }
        }
        self.send_frame(msg.into(), timeout)
    }

    /// Sends a multipart message.
    pub fn send_multipart<I>(&mut self, parts: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Into<Msg>,
    {
        let mut parts = parts.into_iter().peekable();
        if parts.peek().is_none() {
            return Err(Error::InvalidState);
        }
        while let Some(part) = parts.next() {
            let more = parts.peek().is_some();
            self.send_frame(part.into().with_more(more), self.options.sndtimeo)?;
        }
        Ok(())
    }

    /// Sends `value` as JSON text in one frame.
    pub fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = serde_json::to_vec(value)?;
        self.send(text)
    }

    /// Waits for the next message and returns it whole.
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Parts> {
        if !pattern::can_recv(self.socket_type) {
            return Err(Error::NotSupported {
                socket_type: self.socket_type,
                op: "recv",
            });
        }
        let parts = self.wait_for(timeout, true, |s| {
            // Each look of a wait comes here: no frame is made while the inbox is empty.
            if !s.inbox.is_empty() {
                let mut msg = Msg::new();
                if s.pop_inbox(&mut msg)? {
                    return Ok(Some(Parts::one(msg)));
                }
            }
            s.pattern.recv(&s.pipes, &s.options)
        });
        if let Some(direct) = self.direct.as_mut() {
            direct.leave();
        }
        parts
    }

    fn recv_frame(&mut self, timeout: Option<Duration>) -> Result<Msg> {
        if let Some(m) = self.receiving.pop_front() {
            return Ok(m);
        }
        let mut m = Msg::new();
        if self.pop_inbox(&mut m)? || self.recv_plain(&mut m) {
            return Ok(m);
        }
        // The first frame goes to the caller at once; only the frames after it wait here.
        let parts = self.next_message(timeout)?;
        Ok(parts.into_first(&mut self.receiving))
    }

    /// The short way in: the next frame of the one peer of a socket that only fair-queues what it
    /// receives (PULL, DEALER, PAIR), taken from its queue past the pattern into `first`, if one is
    /// there (the message's other frames wait in `receiving`).
    #[inline]
    fn recv_plain(&mut self, first: &mut Msg) -> bool {
        if !self.plain_queue || self.waiter.signal.has_mail() {
            return false;
        }
        self.pipes
            .only()
            .is_some_and(|pipe| pipe.try_recv_frame(first, &mut self.receiving))
    }

    /// The oldest message of the inbox that the pattern accepts (the others are dropped, as a SUB
    /// drops what it did not subscribe to), into `out`; `false` if there is none.
    /// A REQ receiving before it sent, or a REP before it replied, is refused
    /// ([`Error::InvalidState`]), as by its pattern.
    #[inline]
    fn pop_inbox(&mut self, out: &mut Msg) -> Result<bool> {
        if self.inbox.is_empty() {
            return Ok(false);
        }
        if !self.pattern.check_recv_from(self.inbox_from)? {
            self.inbox.clear();
            return Ok(false);
        }
        let pattern = &self.pattern;
        let got = self.inbox.pop(out, |body| pattern.accepts(body));
        if got {
            self.pattern.received_direct(self.inbox_from);
        }
        Ok(got)
    }

    /// Receives one frame; [`Msg::more`] says whether more frames of its message follow.
    pub fn recv(&mut self) -> Result<Msg> {
        self.recv_frame(self.options.rcvtimeo)
    }

    /// Receives one frame without waiting.
    pub fn try_recv(&mut self) -> Result<Msg> {
        self.recv_frame(Some(Duration::ZERO))
    }

    /// Receives a whole multipart message (or what remains of one partly received).
    pub fn recv_multipart(&mut self) -> Result<Vec<Msg>> {
        if self.receiving.is_empty() {
            return Ok(self
                .next_message(self.options.rcvtimeo)?
                .into_frames()
                .collect());
        }
        Ok(self.receiving.drain(..).collect())
    }

    /// Receives one frame as UTF-8 text.
    pub fn recv_string(&mut self) -> Result<String> {
        let msg = self.recv()?;
        Ok(String::from_utf8(msg.into_bytes().into())?)
    }

    /// Receives one frame and decodes it from JSON.
    pub fn recv_json<T: DeserializeOwned>(&mut self) -> Result<T> {
        let msg = self.recv()?;
        Ok(serde_json::from_slice(&msg)?)
    }

    /// SUB: receive messages whose first frame starts with `topic` (`""`: everything).
    pub fn subscribe(&mut self, topic: impl AsRef<[u8]>) -> Result<()> {
        self.subscription(topic.as_ref(), true)
    }

    /// SUB: cancels one earlier `subscribe` of `topic`.
    pub fn unsubscribe(&mut self, topic: impl AsRef<[u8]>) -> Result<()> {
        self.subscription(topic.as_ref(), false)
    }

    fn subscription(&mut self, topic: &[u8], on: bool) -> Result<()> {
        self.process_mail();
        self.pattern
            .subscribe(&self.pipes, Bytes::copy_from_slice(topic), on)
            .map_err(|()| Error::NotSupported {
                socket_type: self.socket_type,
                op: "subscribe",
            })
    }

    /// The signal that wakes this socket's waiters (for the poller).
    pub(crate) fn signal(&self) -> &std::sync::Arc<crate::pipe::Signal> {
        &self.waiter.signal
    }

    /// Whether a message can be received now without waiting.
    pub fn readable(&mut self) -> bool {
        self.process_mail();
        let ready = |s: &Socket| {
            !s.receiving.is_empty()
                || (!s.inbox.is_empty()
                    && matches!(s.pattern.check_recv_from(s.inbox_from), Ok(true)))
                || s.pattern.readable(&s.pipes)
        };
        if !ready(self) && self.direct.is_some() {
            // This thread holds the stream's read lease: what the kernel has is ours to read.
            if self.read_direct() == Step::Lost {
                self.direct = None;
            }
        }
        ready(self)
    }

    /// Whether a message can be sent now without waiting.
    pub fn writable(&mut self) -> bool {
        self.process_mail();
        self.pattern.writable(&self.pipes)
    }

    setters! {
        /// High-water mark for outgoing messages, per peer (0: no limit). Applies to peers attached after.
        set_sndhwm(sndhwm: usize);
        /// High-water mark for incoming messages, per peer (0: no limit). Applies to peers attached after.
        set_rcvhwm(rcvhwm: usize);
        /// How long `send` waits (`None`: forever, `Some(ZERO)`: not at all).
        set_sndtimeo(sndtimeo: Option<Duration>);
        /// How long `recv` waits (`None`: forever, `Some(ZERO)`: not at all).
        set_rcvtimeo(rcvtimeo: Option<Duration>);
        /// How long messages still queued are delivered after the socket is dropped (`None`, the default
        /// as in libzmq: until they are; dropping the context waits for them). `Some(ZERO)` discards them.
        set_linger(linger: Option<Duration>);
        /// ROUTER: fail with [`Error::HostUnreachable`] (unknown peer) or [`Error::WouldBlock`] (full peer)
        /// instead of dropping.
        set_router_mandatory(router_mandatory: bool);
        /// The largest frame accepted from a network peer (`None`: no limit); a larger one closes that
        /// connection.
        set_maxmsgsize(maxmsgsize: Option<u64>);
        /// Deadline for a network handshake (`None`: none).
        set_handshake_ivl(handshake_ivl: Option<Duration>);
        /// Send a PING every `ivl` on network connections (`None`: never).
        set_heartbeat_ivl(heartbeat_ivl: Option<Duration>);
        /// The TTL announced in our PINGs.
        set_heartbeat_ttl(heartbeat_ttl: Option<Duration>);
        /// How long a peer may stay silent after our PING before it is dropped (default: the interval).
        set_heartbeat_timeout(heartbeat_timeout: Option<Duration>);
        /// Delay before reconnecting a dropped connection (default 100 ms).
        set_reconnect_ivl(reconnect_ivl: Duration);
        /// Largest reconnect delay: the delay doubles up to it (zero, the default: no doubling).
        set_reconnect_ivl_max(reconnect_ivl_max: Duration);
        /// Keep only the newest message in each queue (`CONFLATE`), for state updates where only the last
        /// one matters. Applies to peers attached after.
        set_conflate(conflate: bool);
        /// Queue messages only to connections whose handshake completed (`IMMEDIATE`): a connecting
        /// socket then neither queues for a peer that is down nor keeps those messages across a
        /// reconnection. Applies to connections made after.
        set_immediate(immediate: bool);
        /// `SO_KEEPALIVE` on network streams (`None`: the system's default).
        set_tcp_keepalive(tcp_keepalive: Option<bool>);
        /// Allow IPv6: `tcp://*:port` then binds IPv6 and IPv4, and names may resolve to IPv6 addresses.
        /// IPv6 literals (`tcp://[::1]:5555`) work either way.
        set_ipv6(ipv6: bool);
        /// Which I/O threads serve this socket's network connections made after, as a bit mask (0: any).
        set_affinity(affinity: u64);
        /// XPUB: report every subscription received, not only the first for each topic.
        set_xpub_verbose(xpub_verbose: bool);
    }

    /// Our routing id (1 to 255 octets, not starting with 0x00), announced to peers that connect after.
    pub fn set_routing_id(&mut self, id: impl AsRef<[u8]>) -> Result<()> {
        let id = id.as_ref();
        if id.is_empty() || id.len() > 255 || id.first() == Some(&0) {
            return Err(Error::InvalidOption {
                option: "ROUTING_ID",
                reason: "1 to 255 octets, not starting with 0x00",
            });
        }
        self.options.routing_id = Bytes::copy_from_slice(id);
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.bound) {
            self.ctx.inproc_unbind(&name, self.id);
        }
        if !self.listeners.is_empty() {
            if let Ok(engine) = self.ctx.engine() {
                for id in self.listeners.drain(..) {
                    engine.stop_listener(id);
                }
            }
        }
        for file in self.ipc_files.drain(..) {
            let _ = std::fs::remove_file(file);
        }
        self.shm_listeners.clear();
        self.direct = None;
        let linger_until = self.options.linger.map(|d| Instant::now() + d);
        self.waiter.signal.close(linger_until);
        // Dropping the pipes closes our ends: peers read what we queued, then let go.
    }
}

#[cfg(test)]
mod tests {
    use crate::{Context, SocketType};

    #[test]
    fn a_sender_that_never_waits_tells_its_peers_where_it_runs() {
        let ctx = Context::new();
        let mut pull = ctx.socket(SocketType::Pull).unwrap();
        pull.bind("inproc://tick").unwrap();
        let mut push = ctx.socket(SocketType::Push).unwrap();
        push.connect("inproc://tick").unwrap();
        assert_eq!(push.waiter.signal.noted_cpu(), 0);
        // The queue has room: the send goes the short way and does not wait.
        push.send("x").unwrap();
        let noted = push.waiter.signal.noted_cpu();
        assert_ne!(noted, 0, "the first call notes the CPU");
        assert_eq!(&pull.recv().unwrap()[..], b"x");
    }
}
