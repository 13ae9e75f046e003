//! One ZMTP connection as a state machine: greeting, NULL handshake, then frames, with heartbeat timers.
//!
//! The driver (an I/O thread, a test, a fuzzer) calls:
//! - [`Connection::handle_input`] with every buffer read from the stream;
//! - [`Connection::poll_event`] until it returns `None`;
//! - [`Connection::poll_transmit`] and writes what it gets;
//! - [`Connection::poll_timeout`] / [`Connection::handle_timeout`] for the handshake deadline and
//!   heartbeats.
//!
//! Any [`Error`] ends the connection: write what [`Connection::poll_transmit`] still holds (an ERROR
//! command, for a socket-type mismatch), then close the stream.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::command::Command;
use crate::error::{Error, Incompatible, PeerMisbehaved, TimeoutKind, UsageError};
use crate::frame::{flags, Frame, FrameDecoder, FrameView};
use crate::greeting::{Greeting, Mechanism, Version, GREETING_LEN};
use crate::metadata::Metadata;
use crate::socket_type::SocketType;
use crate::transmit::{Transmit, DEFAULT_INLINE_MAX};

/// The time of an input, for the codec's timers. Only commands read it (READY starts the
/// heartbeat, a PING's TTL sets a deadline), so a driver may pass [`SystemClock`] and spare the
/// clock read of every input that holds only messages; an [`Instant`] is its own time.
pub trait Clock: Copy {
    /// The time now.
    fn now(self) -> Instant;
}

impl Clock for Instant {
    fn now(self) -> Instant {
        self
    }
}

/// The system's monotonic clock, read when a command needs the time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(self) -> Instant {
        Instant::now()
    }
}

/// What a connection needs to know of its socket.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our socket type, announced in READY and checked against the peer's.
    pub socket_type: SocketType,
    /// Our routing id, sent as `Identity` by REQ, DEALER and ROUTER (at most 255 octets, the first not
    /// zero; empty: none).
    pub identity: Bytes,
    /// The greeting's as-server flag (informative under NULL).
    pub as_server: bool,
    /// The largest frame body accepted (libzmq's `ZMQ_MAXMSGSIZE`); `None`: limited only by what the
    /// machine can address. Bodies grow with what arrives, so an idle peer costs no more than it sent.
    pub max_msg_size: Option<u64>,
    /// The most frames accepted in one multipart message; `None`: no limit.
    pub max_frames: Option<usize>,
    /// Deadline for the greeting and handshake (libzmq's `ZMQ_HANDSHAKE_IVL`, 30 s); `None`: none.
    pub handshake_ivl: Option<Duration>,
    /// Interval between our PINGs (`ZMQ_HEARTBEAT_IVL`); `None`: no heartbeats. Never sent to 3.0 peers.
    pub heartbeat_ivl: Option<Duration>,
    /// The TTL our PINGs announce (`ZMQ_HEARTBEAT_TTL`), in steps of 100 ms; `None`: 0.
    pub heartbeat_ttl: Option<Duration>,
    /// How long after a PING we wait for any traffic (`ZMQ_HEARTBEAT_TIMEOUT`); `None`: the interval.
    pub heartbeat_timeout: Option<Duration>,
    /// Bodies up to this size are copied into the output batch; larger ones are referenced.
    pub inline_max: usize,
}

impl Config {
    /// Defaults for a socket of type `socket_type`, as libzmq's.
    pub fn new(socket_type: SocketType) -> Config {
        Config {
            socket_type,
            identity: Bytes::new(),
            as_server: false,
            max_msg_size: None,
            max_frames: None,
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat_ivl: None,
            heartbeat_ttl: None,
            heartbeat_timeout: None,
            inline_max: DEFAULT_INLINE_MAX,
        }
    }
}

/// What the handshake learnt of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The protocol spoken with it.
    pub version: Version,
    /// Its socket type.
    pub socket_type: SocketType,
    /// Its `Identity` property (empty if none).
    pub identity: Bytes,
    /// All its READY properties.
    pub metadata: Metadata,
}

/// Something the socket above must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed: messages may flow.
    Ready(Box<PeerInfo>),
    /// A message frame. Frames come one at a time: a consumer holds them until the one without MORE,
    /// and drops what it holds if the connection fails (a message is all its frames or none).
    Frame(Frame),
    /// A subscription reached a PUB or XPUB, as a SUBSCRIBE command or as a `\x01topic` message.
    Subscribe(Bytes),
    /// A cancellation reached a PUB or XPUB, as a CANCEL command or as a `\x00topic` message.
    Cancel(Bytes),
}

/// An event as [`Connection::handle_input_with`] hands it over: like [`Event`], but a message frame is
/// borrowed from the input buffer, so that the consumer chooses to copy a small body or take a
/// zero-copy slice of a large one.
#[derive(Debug)]
pub enum EventRef<'a> {
    /// The handshake completed: messages may flow.
    Ready(Box<PeerInfo>),
    /// A message frame (see [`Event::Frame`] for the rule on multipart messages).
    Frame(FrameView<'a>),
    /// A subscription reached a PUB or XPUB.
    Subscribe(Bytes),
    /// A cancellation reached a PUB or XPUB.
    Cancel(Bytes),
}

impl EventRef<'_> {
    /// The owned event (a frame becomes a zero-copy slice of its buffer).
    pub fn into_owned(self) -> Event {
        match self {
            EventRef::Ready(peer) => Event::Ready(peer),
            EventRef::Frame(view) => Event::Frame(view.into_frame()),
            EventRef::Subscribe(t) => Event::Subscribe(t),
            EventRef::Cancel(t) => Event::Cancel(t),
        }
    }
}

/// Counters, for tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Octets handed to [`Connection::handle_input`].
    pub bytes_received: u64,
    /// Frames (messages and commands) decoded.
    pub frames_received: u64,
    /// Message frames queued for sending.
    pub frames_sent: u64,
    /// PINGs received (each answered with a PONG).
    pub pings_received: u64,
    /// PONGs received.
    pub pongs_received: u64,
    /// PINGs sent.
    pub pings_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the peer's greeting: `greeting_have < 64`.
    Greeting,
    /// Greetings exchanged, waiting for the peer's READY.
    Handshake,
    /// Messages flow.
    Active,
    /// Failed; `closed` holds why.
    Closed,
}

/// One ZMTP connection, without I/O.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    phase: Phase,
    greeting: [u8; GREETING_LEN],
    /// Octets of the peer's greeting received: `0 <= greeting_have <= 64`.
    greeting_have: usize,
    version: Option<Version>,
    peer_type: Option<SocketType>,
    decoder: FrameDecoder,
    out: Transmit,
    events: VecDeque<Event>,
    /// The previous message frame had MORE set.
    in_message: bool,
    /// Frames of the current message so far.
    frames_in_message: usize,
    /// The context of the last PING not yet answered: one PONG at most is pending.
    pong_pending: Option<Bytes>,
    handshake_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    ping_deadline: Option<Instant>,
    ttl_deadline: Option<Instant>,
    closed: Option<Error>,
    stats: Stats,
}

fn name_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Connection {
    /// Starts a connection at time `now`: our greeting and READY are queued at once (the whole greeting
    /// up front, so that libzmq, which sends its greeting in stages, never waits on us).
    pub fn new(config: Config, now: Instant) -> Result<Connection, UsageError> {
        let id = &config.identity;
        if id.len() > 255 || id.first() == Some(&0) {
            return Err(UsageError::InvalidIdentity);
        }
        let mut out = Transmit::with_inline_max(config.inline_max);
        out.push_bytes(&Greeting::ours(Mechanism::NULL, config.as_server).encode());
        let mut md = Metadata::new();
        // Both names are valid and the identity was bounded above: `push` cannot fail.
        let _ = md.push("Socket-Type", config.socket_type.as_str());
        if config.socket_type.sends_identity() {
            let _ = md.push("Identity", config.identity.clone());
        }
        Command::Ready(md).encode(&mut out);
        Ok(Connection {
            decoder: FrameDecoder::new(config.max_msg_size),
            handshake_deadline: config.handshake_ivl.map(|d| now + d),
            config,
            phase: Phase::Greeting,
            greeting: [0; GREETING_LEN],
            greeting_have: 0,
            version: None,
            peer_type: None,
            out,
            events: VecDeque::new(),
            in_message: false,
            frames_in_message: 0,
            pong_pending: None,
            next_ping: None,
            ping_deadline: None,
            ttl_deadline: None,
            closed: None,
            stats: Stats::default(),
        })
    }

    /// The negotiated protocol, once the peer's greeting is in.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Whether the handshake completed and the connection has not failed.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Active
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<&Error> {
        self.closed.as_ref()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Our configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds bytes read from the stream; what it produces is queued for [`Connection::poll_event`].
    /// Bodies that lie wholly in `data` are handed out as slices of it. An error is final: the
    /// connection is closed and every later call returns it again.
    pub fn handle_input(&mut self, data: Bytes, now: Instant) -> Result<(), Error> {
        let mut events = std::mem::take(&mut self.events);
        let result = self.handle_input_with(&data, now, |e| events.push_back(e.into_owned()));
        self.events = events;
        result
    }

    /// Feeds bytes read from the stream and hands every event to `on_event` at once, in wire order,
    /// message frames borrowed from `data`: the fast path, with no reference counting or queueing per
    /// frame. Errors as [`Connection::handle_input`].
    pub fn handle_input_with(
        &mut self,
        data: &Bytes,
        now: impl Clock,
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        if let Some(e) = &self.closed {
            return Err(e.clone());
        }
        let result = self.process(data, now, &mut on_event);
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// Reads the rest of a long body straight into place: when a frame body with at least `min`
    /// octets still to come is being assembled, `fill` gets its buffer with room reserved and appends
    /// at most the second argument's octets, read from the stream (one copy from the kernel instead of
    /// two). The room grows with what has arrived, as [`Connection::handle_input`]'s buffers do, so a
    /// peer still costs no more than about what it sent. When the body completes, its frame is handled
    /// and events go to `on_event` as with [`Connection::handle_input_with`]. Returns `None` when there
    /// is no such body (read into a buffer of your own and call `handle_input_with`).
    pub fn fill_body(
        &mut self,
        min: usize,
        now: impl Clock,
        fill: impl FnOnce(&mut Vec<u8>, usize),
        mut on_event: impl FnMut(EventRef<'_>),
    ) -> Option<Result<(), Error>> {
        if self.closed.is_some() || self.phase == Phase::Greeting {
            return None;
        }
        let mut arrived = 0;
        let frame = self.decoder.fill_body(min, |buf, room| {
            let before = buf.len();
            fill(buf, room);
            arrived = buf.len().saturating_sub(before).min(room);
        })?;
        if arrived > 0 {
            self.stats.bytes_received += arrived as u64;
            self.ping_deadline = None;
            self.ttl_deadline = None;
        }
        let result = match frame {
            Some(frame) => self.on_frame(FrameView::owned(frame), now, &mut on_event),
            None => Ok(()),
        };
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        Some(result)
    }

    fn process(
        &mut self,
        data: &Bytes,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        self.stats.bytes_received += data.len() as u64;
        // Any traffic proves the peer alive (libzmq cancels both timers on every read).
        self.ping_deadline = None;
        self.ttl_deadline = None;
        let mut rest = data.clone();
        if self.phase == Phase::Greeting {
            self.read_greeting(&mut rest)?;
        }
        // The decoder is moved out for the loop, so that the frame handler may borrow the rest of self.
        let mut decoder = std::mem::replace(&mut self.decoder, FrameDecoder::new(Some(0)));
        let result = decoder.decode_all(&rest, |view| self.on_frame(view, now, on_event));
        self.decoder = decoder;
        result
    }

    fn read_greeting(&mut self, data: &mut Bytes) -> Result<(), Error> {
        let have = self.greeting_have;
        let take = (GREETING_LEN - have).min(data.len());
        let dst = self.greeting.get_mut(have..have + take).unwrap_or_default();
        dst.copy_from_slice(data.get(..take).unwrap_or_default());
        data.advance(take);
        self.greeting_have += take;
        Greeting::check_prefix(self.greeting.get(..self.greeting_have).unwrap_or_default())?;
        if self.greeting_have < GREETING_LEN {
            return Ok(());
        }
        let peer = Greeting::decode(&self.greeting)?;
        if peer.mechanism != Mechanism::NULL {
            return Err(Incompatible::Mechanism {
                ours: Mechanism::NULL,
                theirs: peer.mechanism,
            }
            .into());
        }
        self.version = Some(peer.version());
        self.phase = Phase::Handshake;
        Ok(())
    }

    /// The per-frame path: kept small so that it inlines into the decoder's loop; commands go to
    /// [`Connection::on_command_frame`].
    #[inline]
    fn on_frame(
        &mut self,
        frame: FrameView<'_>,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        self.stats.frames_received += 1;
        if frame.is_command() {
            return self.on_command_frame(frame.into_bytes(), now, on_event);
        }
        if self.phase != Phase::Active {
            return Err(PeerMisbehaved::MessageBeforeReady.into());
        }
        self.frames_in_message += 1;
        if let Some(max) = self.config.max_frames {
            if self.frames_in_message > max {
                return Err(PeerMisbehaved::TooManyFrames { max }.into());
            }
        }
        let starts_message = !self.in_message;
        self.in_message = frame.more();
        if !frame.more() {
            self.frames_in_message = 0;
        }
        // libzmq's PUB/XPUB take a one-frame message starting 0x01/0x00 as a subscription on any 3.x
        // connection: that is how 3.0 peers (and XSUB applications) subscribe.
        if self.config.socket_type.is_publisher() && starts_message && !frame.more() {
            match frame.body().first() {
                Some(1) => {
                    on_event(EventRef::Subscribe(frame.into_bytes().slice(1..)));
                    return Ok(());
                }
                Some(0) => {
                    on_event(EventRef::Cancel(frame.into_bytes().slice(1..)));
                    return Ok(());
                }
                _ => {}
            }
        }
        on_event(EventRef::Frame(frame));
        Ok(())
    }

    #[inline(never)]
    fn on_command_frame(
        &mut self,
        body: Bytes,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        let cmd = Command::decode(body)?;
        match self.phase {
            Phase::Active => self.on_command(cmd, now, on_event),
            _ => self.on_handshake_command(cmd, now, on_event),
        }
    }

    fn on_handshake_command(
        &mut self,
        cmd: Command,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        match cmd {
            Command::Ready(md) => self.on_ready(md, now, on_event),
            Command::Error { reason } => Err(Error::PeerError {
                reason: name_of(&reason),
            }),
            other => Err(PeerMisbehaved::UnexpectedCommand {
                name: name_of(other.name()),
            }
            .into()),
        }
    }

    fn on_ready(
        &mut self,
        md: Metadata,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        let ours = self.config.socket_type;
        let name = md
            .get("Socket-Type")
            .ok_or(PeerMisbehaved::MissingSocketType)?;
        let Some(theirs) = SocketType::from_name(name) else {
            self.send_error("Invalid socket type");
            return Err(Incompatible::UnknownSocketType {
                name: name_of(name),
            }
            .into());
        };
        if !ours.is_compatible(theirs) {
            self.send_error("Invalid socket type");
            return Err(Incompatible::SocketType { ours, theirs }.into());
        }
        let identity = md.get("Identity").cloned().unwrap_or_default();
        if identity.len() > 255 || identity.first() == Some(&0) {
            return Err(PeerMisbehaved::InvalidIdentity {
                len: identity.len(),
            }
            .into());
        }
        let version = self.version.unwrap_or(Version::V3_1);
        self.phase = Phase::Active;
        self.peer_type = Some(theirs);
        self.handshake_deadline = None;
        if version == Version::V3_1 {
            self.next_ping = self.config.heartbeat_ivl.map(|ivl| now.now() + ivl);
        }
        on_event(EventRef::Ready(Box::new(PeerInfo {
            version,
            socket_type: theirs,
            identity,
            metadata: md,
        })));
        Ok(())
    }

    fn on_command(
        &mut self,
        cmd: Command,
        now: impl Clock,
        on_event: &mut impl FnMut(EventRef<'_>),
    ) -> Result<(), Error> {
        let publisher = self.config.socket_type.is_publisher();
        match cmd {
            Command::Subscribe(topic) if publisher => on_event(EventRef::Subscribe(topic)),
            Command::Cancel(topic) if publisher => on_event(EventRef::Cancel(topic)),
            Command::Ping { ttl, context } => {
                self.stats.pings_received += 1;
                self.pong_pending = Some(context);
                if ttl > 0 {
                    self.ttl_deadline =
                        Some(now.now() + Duration::from_millis(u64::from(ttl) * 100));
                }
            }
            Command::Pong { .. } => self.stats.pongs_received += 1,
            Command::Error { reason } => {
                return Err(Error::PeerError {
                    reason: name_of(&reason),
                })
            }
            Command::Ready(_) => {
                return Err(PeerMisbehaved::UnexpectedCommand {
                    name: "READY".into(),
                }
                .into())
            }
            // Subscriptions to a non-publisher, and unknown commands: ignored, as libzmq does.
            Command::Subscribe(_) | Command::Cancel(_) | Command::Unknown { .. } => {}
        }
        Ok(())
    }

    fn send_error(&mut self, reason: &'static str) {
        Command::Error {
            reason: Bytes::from_static(reason.as_bytes()),
        }
        .encode(&mut self.out);
    }

    fn fail(&mut self, e: Error) {
        self.closed = Some(e);
        self.phase = Phase::Closed;
        self.handshake_deadline = None;
        self.next_ping = None;
        self.ping_deadline = None;
        self.ttl_deadline = None;
        self.pong_pending = None;
    }

    fn check_sendable(&self) -> Result<(), UsageError> {
        match self.phase {
            Phase::Active => Ok(()),
            Phase::Closed => Err(UsageError::Closed),
            Phase::Greeting | Phase::Handshake => Err(UsageError::NotReady),
        }
    }

    /// Queues one message frame; `more` says that further frames of the same message follow.
    pub fn send_frame(&mut self, body: Bytes, more: bool) -> Result<(), UsageError> {
        self.check_sendable()?;
        self.out
            .push_frame(body, if more { flags::MORE } else { 0 });
        self.stats.frames_sent += 1;
        Ok(())
    }

    /// Queues one message frame by copying `body` into the output batch: for small bodies, which are
    /// copied there anyway, this saves making a `Bytes` of them.
    pub fn send_frame_copy(&mut self, body: &[u8], more: bool) -> Result<(), UsageError> {
        self.check_sendable()?;
        self.out.push_copy(body, if more { flags::MORE } else { 0 });
        self.stats.frames_sent += 1;
        Ok(())
    }

    /// Queues a whole multipart message (MORE on every frame but the last).
    pub fn send_message<I>(&mut self, parts: I) -> Result<(), UsageError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        self.check_sendable()?;
        let mut parts = parts.into_iter().peekable();
        while let Some(part) = parts.next() {
            self.send_frame(part.into(), parts.peek().is_some())?;
        }
        Ok(())
    }

    /// Sends a subscription (SUB and XSUB only): a SUBSCRIBE command to a 3.1 peer, a `\x01topic`
    /// message to a 3.0 peer.
    pub fn subscribe(&mut self, topic: &[u8]) -> Result<(), UsageError> {
        self.subscription(topic, true)
    }

    /// Cancels a subscription: CANCEL to a 3.1 peer, `\x00topic` to a 3.0 peer.
    pub fn cancel(&mut self, topic: &[u8]) -> Result<(), UsageError> {
        self.subscription(topic, false)
    }

    fn subscription(&mut self, topic: &[u8], on: bool) -> Result<(), UsageError> {
        if !self.config.socket_type.is_subscriber() {
            return Err(UsageError::NotSubscriber);
        }
        self.check_sendable()?;
        let topic = Bytes::copy_from_slice(topic);
        match (self.version, on) {
            (Some(Version::V3_0), _) => {
                let mut body = Vec::with_capacity(topic.len() + 1);
                body.push(u8::from(on));
                body.extend_from_slice(&topic);
                self.out.push_frame(Bytes::from(body), 0);
            }
            (_, true) => Command::Subscribe(topic).encode(&mut self.out),
            (_, false) => Command::Cancel(topic).encode(&mut self.out),
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves everything queued for the peer into `batch` (swapping buffers when `batch` is empty).
    pub fn poll_transmit(&mut self, batch: &mut Transmit) {
        if let Some(context) = self.pong_pending.take() {
            Command::Pong { context }.encode(&mut self.out);
        }
        batch.append(&mut self.out);
    }

    /// How many octets are queued for the peer (not counting a PONG still to be encoded).
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Whether anything is queued for the peer.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty() || self.pong_pending.is_some()
    }

    /// The earliest moment at which [`Connection::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.handshake_deadline,
            self.next_ping,
            self.ping_deadline,
            self.ttl_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`: fails the connection when a deadline passed, queues a PING when
    /// one is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.closed {
            return Err(e.clone());
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let expired = if due(self.handshake_deadline) {
            Some(TimeoutKind::Handshake)
        } else if due(self.ping_deadline) {
            Some(TimeoutKind::Heartbeat)
        } else if due(self.ttl_deadline) {
            Some(TimeoutKind::PeerTtl)
        } else {
            None
        };
        if let Some(kind) = expired {
            let e = Error::Timeout(kind);
            self.fail(e.clone());
            return Err(e);
        }
        if due(self.next_ping) {
            if let Some(ivl) = self.config.heartbeat_ivl {
                let ttl = self.config.heartbeat_ttl.map_or(0, |t| {
                    u16::try_from(t.as_millis() / 100).unwrap_or(u16::MAX)
                });
                Command::Ping {
                    ttl,
                    context: Bytes::new(),
                }
                .encode(&mut self.out);
                self.stats.pings_sent += 1;
                self.next_ping = Some(now + ivl);
                if self.ping_deadline.is_none() {
                    self.ping_deadline = Some(now + self.config.heartbeat_timeout.unwrap_or(ivl));
                }
            }
        }
        Ok(())
    }

    /// The peer's socket type, once its READY arrived.
    pub fn peer_socket_type(&self) -> Option<SocketType> {
        self.peer_type
    }
}
