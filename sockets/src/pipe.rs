//! Pipes: the bounded queues between a socket and each of its peers.
//!
//! A pipe is two lock-free queues of whole messages, one each way, each a ring of `zring_shm` within
//! this process ([`zring_shm::local`]; over `shm://`, the ring in memory shared with the peer's
//! process). For `inproc://` the other end is the peer socket itself; for network transports it is a
//! session on an I/O thread. A queue holds whole messages, so a multipart message is delivered all or
//! nothing, and its capacity is the high-water mark in messages (libzmq counts messages, not frames).
//!
//! Wake-ups: each end has a [`Signal`]. A writer wakes the reader only when the reader has said it is
//! parked; a reader that frees space in a queue that was full wakes the writer the same way.
//!
//! Cache lines: what either thread touches at every message (each [`PipeEnd`], each [`Signal`],
//! the pipe's `Shared`, the ring's parts, the [`crate::Socket`]) is aligned to 128 octets, a pair
//! of cache lines, so that no allocation beside it shares a line (x86 cores also fetch lines in
//! pairs, as crossbeam's `CachePadded` assumes). Left to the allocator, the two ends of a pipe, or
//! one's end and the other's signal, could share lines, and every message then moved them from
//! core to core: inproc 64 B PUSH/PULL with a core each ran at 4-40 M msgs/s depending on where
//! earlier allocations had placed them, and at 24-46 M aligned.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::sync::{Parker, Unparker};
use zring_shm::{Consumer, Producer};

use crate::msg::Msg;
use crate::transport::shm::ShmEnd;
use crate::SocketType;

/// A message of at least this many octets goes the direct way whenever the way is open.
const DIRECT_LARGE: usize = 8 * 1024;
/// A smaller message goes the direct way only if the previous send was at least this long ago.
const DIRECT_GAP_NS: u64 = 10_000;
/// A socket's thread that queues a message of at least this many octets for another socket's thread,
/// which it woke on its own CPU, yields the CPU to it (see `Local::notify_peer_sent`).
const YIELD_BYTES: usize = 16 * 1024;

/// A whole message: its frames in order. A one-frame message needs no allocation beyond its `Msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    first: Msg,
    rest: Vec<Msg>,
}

impl Parts {
    pub(crate) fn one(msg: Msg) -> Parts {
        Parts {
            first: msg,
            rest: Vec::new(),
        }
    }

    /// The frames of `frames` (at least one: an empty list becomes one empty frame). A one-frame
    /// list keeps no vector.
    pub(crate) fn from_vec(mut frames: Vec<Msg>) -> Parts {
        if frames.len() <= 1 {
            return Parts::one(frames.pop().unwrap_or_default());
        }
        let first = frames.remove(0);
        Parts {
            first,
            rest: frames,
        }
    }

    /// The frames `first` (whatever its `more` flag said, as a frame taken from a ring) and then
    /// `rest`.
    pub(crate) fn with_rest(first: Msg, rest: Vec<Msg>) -> Parts {
        Parts {
            first: first.with_more(false),
            rest,
        }
    }

    pub(crate) fn first(&self) -> &Msg {
        &self.first
    }

    /// The frames, in order.
    pub(crate) fn frames(&self) -> impl Iterator<Item = &Msg> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Calls `f` with the frames as a slice, with no vector made for a message of a few frames
    /// (an envelope and a body).
    pub(crate) fn with_frames<R>(&self, f: impl FnOnce(&[&Msg]) -> R) -> R {
        if self.rest.len() < FEW_FRAMES {
            let mut few = [&self.first; FEW_FRAMES];
            for (slot, m) in few[1..].iter_mut().zip(&self.rest) {
                *slot = m;
            }
            f(&few[..self.len()])
        } else {
            f(&self.frames().collect::<Vec<_>>())
        }
    }

    /// Puts `msg` in front.
    pub(crate) fn push_front(&mut self, msg: Msg) {
        let old = std::mem::replace(&mut self.first, msg);
        self.rest.insert(0, old);
    }

    /// Removes and returns the first frame; `None` if it is the only one.
    pub(crate) fn pop_front(&mut self) -> Option<Msg> {
        if self.rest.is_empty() {
            return None;
        }
        let next = self.rest.remove(0);
        Some(std::mem::replace(&mut self.first, next))
    }

    /// The only frame of a one-frame message (its MORE flag clear); the message back otherwise.
    #[inline]
    pub(crate) fn into_single(self) -> Result<Msg, Parts> {
        if self.rest.is_empty() {
            Ok(self.first.with_more(false))
        } else {
            Err(self)
        }
    }

    /// The first frame (MORE set if others follow), the others appended to `rest`: what a receive
    /// of one frame returns, and what it keeps for the next ones.
    #[inline]
    pub(crate) fn into_first(self, rest: &mut VecDeque<Msg>) -> Msg {
        match self.into_single() {
            Ok(msg) => msg,
            Err(parts) => {
                let mut frames = parts.into_frames();
                let first = frames.next().unwrap_or_default();
                rest.extend(frames);
                first
            }
        }
    }

    /// The frames, with MORE set on every frame but the last.
    pub(crate) fn into_frames(self) -> impl Iterator<Item = Msg> {
        let n = self.len();
        std::iter::once(self.first)
            .chain(self.rest)
            .enumerate()
            .map(move |(i, m)| m.with_more(i + 1 < n))
    }
}

/// A command to a socket from outside its thread.
pub(crate) enum Command {
    /// A new pipe to a peer.
    Attach(PipeEnd),
}

/// Whom a signal wakes.
enum Wake {
    /// A socket's thread, parked in a blocking call.
    Thread(Unparker),
    /// A session on an I/O thread.
    Engine(zring_engine::Waker),
}

/// The owner runs: a notification needs no wake-up.
const RUNNING: u8 = 0;
/// The owner is parked (its parker), or is a session (woken on every notification).
const PARKED: u8 = 1;
/// The owner waits in poll(2) on its stream and its eventfd.
const POLLING: u8 = 2;

/// Wakes the owner of one end of some pipes: a socket's thread, or a session on an I/O thread.
///
/// Each peer reads it at every message it sends (`parked`): on cache lines of its own (see the
/// module's notes).
#[repr(align(128))]
pub(crate) struct Signal {
    /// How the owner waits: set by the owner before it waits and reset when it wakes. Paired with the
    /// fence in [`Signal::notify`]: a writer that published before reading `RUNNING` here is seen by
    /// the owner's re-check after its own fence.
    parked: AtomicU8,
    wake: Wake,
    /// The eventfd a socket's thread polls beside its stream (made on first use; `None` if the
    /// system refused one).
    eventfd: OnceLock<Option<zring_engine::EventFd>>,
    /// Set when the owning socket is dropped.
    closed: AtomicBool,
    /// When the owner was dropped: until when its queued messages may still be delivered (`None`:
    /// until they are).
    linger: OnceLock<Option<Instant>>,
    mail: Mutex<Vec<Command>>,
    /// Set (Release) after mail is added, read (Acquire) before taking it.
    has_mail: AtomicBool,
    /// A poller waiting on this socket among others: woken like the owner while `watched` is set.
    watcher: Mutex<Option<Arc<zring_engine::EventFd>>>,
    /// Whether `watcher` is set; read after the same fence as `parked`.
    watched: AtomicBool,
    /// Whether a notifier orders its publication before its read of `parked` with a full fence
    /// (true) or with the light half of an asymmetric barrier ([`zring_shm::barrier`]), the owner
    /// paying the heavy half before it waits. Always full for a session (woken at every
    /// notification, it never waits) and where the system has no asymmetric barrier. Otherwise the
    /// owner chooses ([`Waiter::lighten`], [`Waiter::prepare`]): light while it waits seldom and
    /// every peer is a socket's thread on another CPU, whose stream of messages then costs no
    /// fence each (inproc 64 B streaming with a core each: 36 against 24 M msgs/s, medians of 24
    /// runs); full when waits come often, where the heavy half (a system call, 0.3 us here, 12-14
    /// us when it must interrupt another CPU running one of our threads) would cost more than the
    /// fences it saves: peers on our CPU (they run only while we wait), I/O threads, waits in
    /// poll(2) on a stream or under a poller. Full from the start. Written by the owner alone.
    fenced: AtomicBool,
    /// Where the owner last ran ([`zring_shm::current_cpu`]: the CPU plus one, 0 if unknown), noted
    /// now and then: a peer socket waiting for it spins only if it runs elsewhere.
    cpu: AtomicU32,
    /// Set by the owner when a message it sent woke a peer socket parked on another CPU; taken by
    /// its next wait, which spins longer for the answer (written and read by the owner alone).
    woke_peer: AtomicBool,
}

impl Signal {
    fn with(wake: Wake, parked: bool) -> Arc<Signal> {
        Arc::new(Signal {
            parked: AtomicU8::new(if parked { PARKED } else { RUNNING }),
            wake,
            eventfd: OnceLock::new(),
            closed: AtomicBool::new(false),
            linger: OnceLock::new(),
            mail: Mutex::new(Vec::new()),
            has_mail: AtomicBool::new(false),
            watcher: Mutex::new(None),
            watched: AtomicBool::new(false),
            cpu: AtomicU32::new(0),
            woke_peer: AtomicBool::new(false),
            fenced: AtomicBool::new(true),
        })
    }

    /// A signal and the parker its owner waits on.
    pub(crate) fn new() -> (Arc<Signal>, Parker) {
        let parker = Parker::new();
        let signal = Signal::with(Wake::Thread(parker.unparker().clone()), false);
        (signal, parker)
    }

    /// The signal of a session: every notification schedules it on its I/O thread.
    pub(crate) fn for_session(waker: zring_engine::Waker) -> Arc<Signal> {
        Signal::with(Wake::Engine(waker), true)
    }

    /// Marks the owner gone (its socket was dropped); what it queued may be delivered until
    /// `linger_until` (`None`: until it is).
    pub(crate) fn close(&self, linger_until: Option<Instant>) {
        let _ = self.linger.set(linger_until);
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the owner is gone and its linger has passed.
    pub(crate) fn linger_expired(&self) -> bool {
        self.is_closed()
            && self
                .linger
                .get()
                .copied()
                .flatten()
                .is_some_and(|t| Instant::now() >= t)
    }

    /// Whether the owner is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Notes the CPU the owner runs on (called by the owner) and returns it.
    pub(crate) fn note_cpu(&self) -> u32 {
        let me = zring_shm::current_cpu();
        if self.cpu.load(Ordering::Relaxed) != me {
            self.cpu.store(me, Ordering::Relaxed);
        }
        me
    }

    /// Whether a message the owner sent woke a peer socket parked on another CPU since it last
    /// asked (called by the owner).
    pub(crate) fn take_woke_peer(&self) -> bool {
        self.woke_peer.load(Ordering::Relaxed) && self.woke_peer.swap(false, Ordering::Relaxed)
    }

    /// The CPU the owner last noted, plus one (0: not yet).
    #[cfg(test)]
    pub(crate) fn noted_cpu(&self) -> u32 {
        self.cpu.load(Ordering::Relaxed)
    }

    /// Whether the owner is a socket's thread that last ran on another CPU than `me` (or either is
    /// unknown): one that can answer while we spin. A session's I/O thread is not spun for.
    fn runs_apart_from(&self, me: u32) -> bool {
        let cpu = self.cpu.load(Ordering::Relaxed);
        matches!(self.wake, Wake::Thread(_)) && (me == 0 || cpu == 0 || cpu != me)
    }

    /// Wakes the owner if it is parked. Call after publishing what it waits for. Returns whether
    /// it woke a socket's thread parked in a blocking call.
    pub(crate) fn notify(&self) -> bool {
        // SYNC POINT: orders the caller's publication before the read of `parked` (and of
        // `watched`); pairs with `Signal::before_wait`. `fenced` is unset only where the system
        // has the asymmetric pair (`lighten_notifies`).
        if self.fenced.load(Ordering::Relaxed) {
            fence(Ordering::SeqCst);
        } else {
            zring_shm::barrier::light();
        }
        let mut woke = false;
        match self.parked.load(Ordering::Relaxed) {
            PARKED => match &self.wake {
                Wake::Thread(unparker) => {
                    unparker.unpark();
                    woke = true;
                }
                Wake::Engine(waker) => waker.wake(),
            },
            POLLING => {
                if let Some(Some(fd)) = self.eventfd.get() {
                    fd.wake();
                }
            }
            _ => {}
        }
        if self.watched.load(Ordering::Relaxed) {
            if let Some(w) = &*self.watcher.lock().unwrap_or_else(PoisonError::into_inner) {
                w.wake();
            }
        }
        woke
    }

    /// The eventfd that wakes the owner while it waits in poll(2), made on first use (`None` if the
    /// system refused one). Peers in other processes write it too (`shm://`).
    pub(crate) fn eventfd(&self) -> Option<&zring_engine::EventFd> {
        self.eventfd
            .get_or_init(|| zring_engine::EventFd::new().ok())
            .as_ref()
    }

    /// Lets a poller's thread be woken by this signal (`None`: stop). The poller re-checks its
    /// sockets after setting it, as an owner does after `Waiter::prepare`. Called by the owner's
    /// thread (the poller is the thread that owns the socket).
    pub(crate) fn watch(&self, watcher: Option<Arc<zring_engine::EventFd>>) {
        let on = watcher.is_some();
        if on {
            self.fence_notifies();
        }
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = watcher;
        self.watched.store(on, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `notify` (a watched socket's notifiers fence fully),
        // as `Waiter::prepare` does.
        fence(Ordering::SeqCst);
    }

    /// From now on, notifiers fence fully (see `fenced`). Called by the owner. When that changes,
    /// the heavy barrier: a notifier that read `fenced` unset before it, and so did not fence, had
    /// published before it, and the owner's next look sees what it published.
    fn fence_notifies(&self) {
        if !self.fenced.load(Ordering::Relaxed) {
            self.fenced.store(true, Ordering::Relaxed);
            zring_shm::barrier::heavy();
        }
    }

    /// From now on, notifiers take the light barrier, where the system has the asymmetric pair
    /// (see `fenced`). Called by the owner, whose waits pay the heavy barrier from then on; a
    /// notifier that still fences fully pairs with that too. (A session's signal has no `Waiter`,
    /// so it is never lightened.)
    fn lighten_notifies(&self) {
        if zring_shm::barrier::asymmetric() && self.fenced.load(Ordering::Relaxed) {
            self.fenced.store(false, Ordering::Relaxed);
        }
    }

    /// The owner's barrier between announcing a wait (`parked`, `watched`) and looking again for
    /// what would end it; pairs with the one in [`Signal::notify`].
    fn before_wait(&self) {
        if self.fenced.load(Ordering::Relaxed) {
            fence(Ordering::SeqCst);
        } else {
            zring_shm::barrier::heavy();
        }
    }

    /// Posts a command and wakes the owner.
    pub(crate) fn post(&self, command: Command) {
        self.mail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(command);
        self.has_mail.store(true, Ordering::Release);
        self.notify();
    }

    /// Whether commands were posted that the owner has not taken.
    pub(crate) fn has_mail(&self) -> bool {
        self.has_mail.load(Ordering::Acquire)
    }

    /// Takes the commands posted so far.
    pub(crate) fn take_mail(&self) -> Vec<Command> {
        if !self.has_mail.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.has_mail.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.mail.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The owner's side of a [`Signal`]: prepares to park, parks, and unprepares.
pub(crate) struct Waiter {
    pub(crate) signal: Arc<Signal>,
    parker: Parker,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        let (signal, parker) = Signal::new();
        Waiter { signal, parker }
    }

    /// Announces that the owner is about to park. The caller must re-check its condition afterwards,
    /// then call [`Waiter::park`] or [`Waiter::cancel`]. `light`: the notifiers may take the light
    /// barrier (see `Signal::fenced`), this wait paying the heavy one: every peer is a socket's
    /// thread on another CPU, and the owner waits seldom. Otherwise they fence fully from now on.
    pub(crate) fn prepare(&self, light: bool) {
        if light {
            self.signal.lighten_notifies();
        } else {
            self.signal.fence_notifies();
        }
        self.signal.parked.store(PARKED, Ordering::Relaxed);
        // SYNC POINT: pairs with the barrier in `Signal::notify`.
        self.signal.before_wait();
    }

    /// Lets the notifiers take the light barrier (see `Signal::fenced`): the owner waits seldom,
    /// and its peers are sockets' threads on other CPUs. Its next wait pays the heavy barrier.
    pub(crate) fn lighten(&self) {
        self.signal.lighten_notifies();
    }

    /// The eventfd that interrupts a poll(2) wait (see [`Waiter::prepare_poll`]), made on first use.
    pub(crate) fn eventfd(&self) -> Option<&zring_engine::EventFd> {
        self.signal.eventfd()
    }

    /// As [`Waiter::prepare`], for a wait in poll(2) that [`Waiter::eventfd`] interrupts. `None` if
    /// there is no eventfd (wait with `prepare` and `park` instead).
    pub(crate) fn prepare_poll(&self) -> Option<&zring_engine::EventFd> {
        let fd = self.eventfd()?;
        self.signal.fence_notifies();
        self.signal.parked.store(POLLING, Ordering::Relaxed);
        // SYNC POINT: pairs with the barrier in `Signal::notify`.
        self.signal.before_wait();
        Some(fd)
    }

    /// Parks until notified or until `deadline`.
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        match deadline {
            Some(d) => self.parker.park_deadline(d),
            None => self.parker.park(),
        }
        self.cancel();
    }

    /// Clears the parked flag.
    pub(crate) fn cancel(&self) {
        self.signal.parked.store(RUNNING, Ordering::Relaxed);
    }
}

/// How much one direction of a pipe holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// At most this many messages (the high-water mark).
    Messages(usize),
    /// No limit (a high-water mark of 0).
    Unbounded,
    /// One message; a newer one replaces it (`CONFLATE`).
    Conflate,
}

/// The writing end of one direction of a pipe: the ring of `zring_shm` as a queue within this
/// process ([`zring_shm::local`]), which starts small and grows as messages need room, so an idle
/// pipe costs little whatever its high-water mark. Small frames are copied into it (a 64-octet frame
/// takes 128 octets, header and padding included); a frame the receiver would not keep inline is
/// moved through it (its buffer, not its bytes).
enum Out {
    /// At most the high-water mark (`u64::MAX`: no limit).
    Ring(RefCell<Producer>),
    /// Capacity one; a push replaces what is there.
    Conflated(Arc<ArrayQueue<Parts>>),
}

/// The reading end of one direction of a pipe.
enum In {
    Ring(RefCell<Consumer>),
    Conflated(Arc<ArrayQueue<Parts>>),
}

/// Frames of a message sent through a queue with no vector made for them.
const FEW_FRAMES: usize = 8;

/// The largest borrowed frame (a `send` of a slice) a pipe's queue copies into its slots rather
/// than into a buffer of its own; a frame that owns a buffer already is moved, whatever its size.
/// Up to 1 KiB the receiver's copy out is an allocation its own thread's cache serves, where a
/// buffer allocated by the sender and freed by the receiver is contended work in the allocator on
/// every message (measured, 1 KiB inproc PUSH/PULL: 1.7 M msgs/s moved, 4.5-5.8 M copied, libzmq
/// 1.0-1.7 M). Larger frames copied measured slower (4 KiB with a core each: 0.5-1.0 M against
/// 1.4-1.6 M moved): the queue grows to 65 slots a message, allocated and faulted in as it grows.
const COPY_MAX: usize = 1024;

/// One direction of a pipe bounded by `bound`, as its two ends.
fn queue(bound: Bound) -> (Out, In) {
    let ring = |cap: u64| {
        let (tx, rx) = zring_shm::local(cap, COPY_MAX);
        (Out::Ring(RefCell::new(tx)), In::Ring(RefCell::new(rx)))
    };
    match bound {
        Bound::Messages(c) => ring(c as u64),
        Bound::Unbounded => ring(u64::MAX),
        Bound::Conflate => {
            let q = Arc::new(ArrayQueue::new(1));
            (Out::Conflated(q.clone()), In::Conflated(q))
        }
    }
}

/// What a ring's refusal means for a pipe: `true` if the message went (or is gone with a reader
/// that left: as with libzmq, what a pipe holds for a peer that is gone is dropped), `false` if the
/// ring is at its bound.
fn went(sent: Result<(), zring_shm::Error>) -> bool {
    !matches!(sent, Err(zring_shm::Error::Full))
}

impl Out {
    /// Queues the message of `frames`, copied into the queue; `false` if it is at its bound. A
    /// large frame for a socket's thread (`pooled`, inproc) is copied into a buffer of the pool of
    /// large buffers ([`zring_zmtp::pool`]), which the receiver's drop gives back for the next.
    /// Not for a session: over tcp and ipc the pool measured slower (64 KiB PUSH/PULL with a
    /// core each: 23.5 k/s against 33 k/s, medians of four interleaved runs; not explained).
    fn push_frames(&self, frames: &[&[u8]], pooled: bool) -> bool {
        match self {
            Out::Ring(tx) => {
                let mut tx = tx.borrow_mut();
                tx.copy_large_with(if pooled {
                    zring_zmtp::pool::copy_from_slice
                } else {
                    Bytes::copy_from_slice
                });
                went(tx.try_send(frames))
            }
            Out::Conflated(q) => {
                // The message replaced is superseded, as CONFLATE asks.
                let msg = Parts::from_vec(frames.iter().map(|&f| Msg::from(f)).collect());
                drop(q.force_push(msg));
                true
            }
        }
    }

    /// Pushes, unless the queue is at its bound.
    fn push(&self, m: Parts) -> Result<(), Parts> {
        match self {
            Out::Ring(tx) => {
                let sent = m.with_frames(|frames| tx.borrow_mut().try_send_payloads(frames));
                if went(sent) {
                    Ok(())
                } else {
                    Err(m)
                }
            }
            Out::Conflated(q) => {
                drop(q.force_push(m));
                Ok(())
            }
        }
    }

    fn is_full(&self) -> bool {
        match self {
            Out::Ring(tx) => !tx.borrow_mut().writable().unwrap_or(true),
            Out::Conflated(_) => false,
        }
    }

    /// Whether the reader has taken everything (as far as it has told).
    fn is_empty(&self) -> bool {
        match self {
            Out::Ring(tx) => tx.borrow_mut().is_empty().unwrap_or(true),
            Out::Conflated(q) => q.is_empty(),
        }
    }
}

/// Takes the next message of a ring (within this process or shared with another) as `Msg`s: its
/// first frame into `first` (with its `more` flag), the others, in order and with theirs, to `rest`;
/// `Ok(false)` if no message was there. Filling the caller's frame in place spares the receiver
/// the moves of a frame through each layer that hands it on.
#[inline]
pub(crate) fn take_message(
    rx: &mut Consumer,
    first: &mut Msg,
    mut rest: impl FnMut(Msg, bool),
) -> Result<bool, zring_shm::Error> {
    let mut filled = false;
    let got = rx.try_recv_with(|frame, more| {
        if filled {
            rest(frame_msg(frame), more);
            return;
        }
        match frame {
            zring_shm::Frame::Inline(b) => first.assign(b),
            large => *first = frame_msg(large),
        }
        first.set_more(more);
        filled = true;
    })?;
    Ok(got && filled)
}

/// A frame of a ring as a `Msg`: a small one copied (inline), a large one the buffer the writer
/// moved or the slab in place.
fn frame_msg(frame: zring_shm::Frame<'_>) -> Msg {
    match frame {
        zring_shm::Frame::Inline(b) => Msg::copy_from_slice(b),
        zring_shm::Frame::Large(b) => Msg::from(b),
    }
}

/// Whether a queue within this process has no message; if so, the writer is told what was taken.
#[inline]
fn found_empty(rx: &mut Consumer) -> bool {
    let empty = !rx.has_message();
    if empty {
        rx.idle();
    }
    empty
}

/// [`take_message`] from a queue within this process, which cannot break its rules: whether a
/// message was taken, and whether the reader should now look for a writer waiting for room (see
/// [`In::pop`]).
#[inline]
fn take_from(rx: &RefCell<Consumer>, first: &mut Msg, rest: impl FnMut(Msg, bool)) -> (bool, bool) {
    let mut rx = rx.borrow_mut();
    if found_empty(&mut rx) {
        return (false, false);
    }
    let got = take_message(&mut rx, first, rest).unwrap_or(false);
    (got, rx.stepped())
}

impl In {
    /// The oldest message, if any, and whether the reader should now look for a writer waiting for
    /// room: whenever the queue has told the writer that a step of messages was taken (about half
    /// the bound, at most [`zring_shm::ring::STEP_MAX`] messages, as libzmq's low-water mark).
    #[inline]
    fn pop(&self) -> (Option<Parts>, bool) {
        match self {
            In::Ring(rx) => {
                let mut first = Msg::new();
                let mut others = Vec::new();
                let (got, look) = take_from(rx, &mut first, |m, _| others.push(m));
                (got.then(|| Parts::with_rest(first, others)), look)
            }
            In::Conflated(q) => match q.pop() {
                Some(m) => (Some(m), true),
                None => (None, false),
            },
        }
    }

    /// [`In::pop`] frame by frame: the first frame into `first`, the others (with their `more`
    /// flags) appended to `rest`; whether a message was there, and whether to look for the writer.
    #[inline]
    fn pop_frame(&self, first: &mut Msg, rest: &mut VecDeque<Msg>) -> (bool, bool) {
        match self {
            In::Ring(rx) => take_from(rx, first, |m, more| rest.push_back(m.with_more(more))),
            In::Conflated(_) => match self.pop() {
                (Some(parts), look) => {
                    *first = parts.into_first(rest);
                    (true, look)
                }
                (None, look) => (false, look),
            },
        }
    }

    /// Whether no message is there; if none is, the writer is told what was taken (as by a
    /// [`In::pop`] that finds nothing).
    fn is_empty(&self) -> bool {
        match self {
            In::Ring(rx) => found_empty(&mut rx.borrow_mut()),
            In::Conflated(q) => q.is_empty(),
        }
    }
}

/// What the two ends share. Side `i` writes direction `i` and reads direction `1 - i`. Both read it
/// at every message: on cache lines of its own (see the module's notes).
#[repr(align(128))]
struct Shared {
    /// Each side's signal; unset while that side is not attached yet (an inproc connect before the
    /// bind), when there is nobody to wake.
    signals: [OnceLock<Arc<Signal>>; 2],
    /// Side `i` has closed its end: it writes no more.
    closed: [AtomicBool; 2],
    /// The gate of side `i`'s stream (a network session offers it to its socket), and whether side
    /// `i` may write through it (checked first, so that pipes without one pay no lock).
    gates: [Mutex<Option<Arc<zring_engine::Gate>>>; 2],
    has_gate: [AtomicBool; 2],
    /// Counts the changes of `gates[i]` (Release after each), for the ends' copies of it.
    gate_epoch: [AtomicU64; 2],
    /// When side `i` last sent a message (nanoseconds since `epoch`): a message that follows another
    /// closely is part of a stream and is better batched by the I/O thread than written alone.
    last_send: [AtomicU64; 2],
    epoch: Instant,
    /// Side `i`'s writer found direction `i` full and waits for room. Set before the writer's last
    /// retry and read by the reader once per low-water step of messages taken (`In::pop`), each
    /// after a SeqCst fence (Dekker): either the retry sees the room or the reader sees the flag.
    want_room: [AtomicBool; 2],
}

/// Who is at the other end of a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerMeta {
    pub(crate) socket_type: SocketType,
    pub(crate) routing_id: Bytes,
}

/// One end of a pipe: written by its owner's thread at every message (its ring end's counts), so
/// on cache lines of its own, never beside the other end (see the module's notes).
#[repr(align(128))]
pub(crate) struct PipeEnd {
    way: Way,
    /// The other end's socket type and routing id.
    pub(crate) peer: PeerMeta,
}

/// What carries a pipe's messages.
#[allow(
    clippy::large_enum_variant,
    reason = "the local way is the hot one: kept inline, with no pointer to follow per message"
)]
enum Way {
    /// Queues in this process (inproc, or a session on an I/O thread).
    Local(Local),
    /// Two rings in memory shared with another process (`shm://`).
    Shm(Box<ShmEnd>),
}

/// One end of a pipe within this process.
struct Local {
    shared: Arc<Shared>,
    side: usize,
    /// Direction `side`, which this end writes.
    out: Out,
    /// Direction `1 - side`, which this end reads.
    inq: In,
    /// The gate this end writes through, as of `Shared::gate_epoch[side]`, and the write lease on
    /// its stream, if one was granted.
    gate: RefCell<WriteGate>,
    /// A look for a writer waiting for room was put off until the queue is found empty (see
    /// [`Local::after_take`]).
    skipped: Cell<bool>,
}

/// A pipe end's copy of the gate it writes through (kept so that a send takes no lock and no
/// reference count to find it), and its write lease on that gate's stream.
#[derive(Default)]
struct WriteGate {
    /// `Shared::gate_epoch[side]` when `gate` was copied.
    epoch: u64,
    gate: Option<Arc<zring_engine::Gate>>,
    /// Made by the gate at its first grant; belongs to `gate` (dropped with it).
    lease: Option<zring_engine::Lease>,
    /// A message went into the stream's batch or the lease's ring since the socket's thread last
    /// waited: before it waits again, the stream may have something to write.
    batched: bool,
}

/// The bounds of a new pipe, per direction.
pub(crate) struct Capacity {
    /// From the first end to the second.
    pub(crate) forward: Bound,
    /// From the second end to the first.
    pub(crate) backward: Bound,
}

impl PipeEnd {
    /// A pipe: the end for `a` (which writes `forward`) and the end for `b`. A side whose signal is
    /// `None` gets it with [`PipeEnd::attach_signal`] when it attaches.
    pub(crate) fn pair(
        a: (Option<Arc<Signal>>, PeerMeta),
        b: (Option<Arc<Signal>>, PeerMeta),
        capacity: Capacity,
    ) -> (PipeEnd, PipeEnd) {
        let signal = |s: Option<Arc<Signal>>| {
            let cell = OnceLock::new();
            if let Some(s) = s {
                let _ = cell.set(s);
            }
            cell
        };
        let shared = Arc::new(Shared {
            signals: [signal(a.0), signal(b.0)],
            closed: [AtomicBool::new(false), AtomicBool::new(false)],
            want_room: [AtomicBool::new(false), AtomicBool::new(false)],
            gates: [Mutex::new(None), Mutex::new(None)],
            has_gate: [AtomicBool::new(false), AtomicBool::new(false)],
            gate_epoch: [AtomicU64::new(0), AtomicU64::new(0)],
            last_send: [AtomicU64::new(0), AtomicU64::new(0)],
            epoch: Instant::now(),
        });
        let (forward, from_a) = queue(capacity.forward);
        let (backward, from_b) = queue(capacity.backward);
        (
            PipeEnd {
                way: Way::Local(Local {
                    shared: shared.clone(),
                    side: 0,
                    out: forward,
                    inq: from_b,
                    gate: RefCell::default(),
                    skipped: Cell::new(false),
                }),
                peer: b.1,
            },
            PipeEnd {
                way: Way::Local(Local {
                    shared,
                    side: 1,
                    out: backward,
                    inq: from_a,
                    gate: RefCell::default(),
                    skipped: Cell::new(false),
                }),
                peer: a.1,
            },
        )
    }

    /// The end of a pipe to a peer in another process, over shared memory.
    pub(crate) fn shm(end: ShmEnd, peer: PeerMeta) -> PipeEnd {
        PipeEnd {
            way: Way::Shm(Box::new(end)),
            peer,
        }
    }

    /// Sets the signal of this end's owner, if it was not known when the pipe was made.
    pub(crate) fn attach_signal(&self, signal: Arc<Signal>) {
        if let Way::Local(l) = &self.way {
            l.attach_signal(signal);
        }
    }

    /// Offers the peer its stream's gate (`None`: withdraws it): for direct reads, and for direct
    /// sends if `writes`.
    pub(crate) fn offer_gate(&self, gate: Option<Arc<zring_engine::Gate>>, writes: bool) {
        if let Way::Local(l) = &self.way {
            l.offer_gate(gate, writes);
        }
    }

    /// The gate of the stream behind this pipe, if it is a network stream that is up.
    pub(crate) fn gate(&self) -> Option<Arc<zring_engine::Gate>> {
        match &self.way {
            Way::Local(l) => l.gate(),
            Way::Shm(_) => None,
        }
    }

    /// Queues a message for the peer, or gives it back if the queue is at its high-water mark (the
    /// peer then wakes us when it makes room). Over a network stream whose I/O thread is idle, the
    /// message is written to the stream at once instead.
    pub(crate) fn try_send(&self, msg: Parts) -> Result<(), Parts> {
        match &self.way {
            Way::Local(l) => l.send_via(msg, true),
            Way::Shm(s) => s.try_send(msg),
        }
    }

    /// Sends the message of `frames` (a one-frame message, or a REQ's request or a REP's reply
    /// behind its delimiter) without making a `Msg` of any: through the stream's gate (written at once if
    /// `small_direct` allows, or batched for the I/O thread), else made in its place in the queue,
    /// or copied into the shm ring; `false` if it must take the usual way (see
    /// [`PipeEnd::try_send`], and [`PipeEnd::try_send_copy`] for `small_direct`).
    pub(crate) fn try_send_frames(&self, frames: &[&[u8]], small_direct: bool) -> bool {
        match &self.way {
            Way::Local(l) if l.shared.has_gate[l.side].load(Ordering::Acquire) => {
                l.lease_send(frames)
                    || l.try_gate(
                        frames,
                        |taken: &[usize]| {
                            frames
                                .iter()
                                .zip(taken)
                                .map(|(&f, &t)| {
                                    Bytes::copy_from_slice(f.get(t..).unwrap_or_default())
                                })
                                .collect()
                        },
                        small_direct,
                    )
            }
            Way::Local(l) => l.push_frames(frames),
            Way::Shm(s) => s.send_frames(frames),
        }
    }

    /// [`PipeEnd::try_send`] for one of several copies of a message (PUB fan-out): a small one is
    /// never written alone (it goes through the write lease, the stream's batch or the queue).
    /// Written alone, each copy would cost the sender a system call, and the time those take makes
    /// the next message look isolated again (measured: 8 subscribers served at 0.04 x libzmq's
    /// rate).
    pub(crate) fn try_send_copy(&self, msg: Parts) -> Result<(), Parts> {
        match &self.way {
            Way::Local(l) => l.send_via(msg, false),
            Way::Shm(s) => s.try_send(msg),
        }
    }

    /// Whether a message can be queued now.
    pub(crate) fn writable(&self) -> bool {
        match &self.way {
            Way::Local(l) => l.writable(),
            Way::Shm(s) => s.writable(),
        }
    }

    /// Writes what this end batched for its stream in stream mode, and hands a revoked write lease
    /// back (see [`zring_engine::Gate::before_wait`]): before the socket's thread waits.
    pub(crate) fn flush_stream(&self) {
        match &self.way {
            Way::Local(l) if l.shared.has_gate[l.side].load(Ordering::Acquire) => {
                let mut cached = l.write_gate();
                if let WriteGate {
                    gate: Some(gate),
                    lease,
                    batched,
                    ..
                } = &mut *cached
                {
                    // Nothing batched and no lease: nothing to write, and no lock to take.
                    if std::mem::take(batched) || lease.as_ref().is_some_and(|l| l.is_live()) {
                        gate.before_wait(lease.as_mut());
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether the peer has taken every message we queued (a local pipe; `false` otherwise).
    pub(crate) fn all_taken(&self) -> bool {
        match &self.way {
            Way::Local(l) => l.out.is_empty(),
            Way::Shm(_) => false,
        }
    }

    /// Takes the next message from the peer, waking the peer if it waits for room.
    #[inline]
    pub(crate) fn try_recv(&self) -> Option<Parts> {
        match &self.way {
            Way::Local(l) => l.try_recv(),
            Way::Shm(s) => s.try_recv(),
        }
    }

    /// [`PipeEnd::try_recv`] frame by frame: the first frame of the next message into `first`, its
    /// others (with their `more` flags) appended to `rest`; `false` if none was there. The frames
    /// become `Msg`s straight from the ring, with no message around them.
    #[inline]
    pub(crate) fn try_recv_frame(&self, first: &mut Msg, rest: &mut VecDeque<Msg>) -> bool {
        match &self.way {
            Way::Local(l) => l.try_recv_frame(first, rest),
            Way::Shm(s) => s.try_recv_frame(first, rest),
        }
    }

    /// Whether a message from the peer is waiting.
    pub(crate) fn readable(&self) -> bool {
        match &self.way {
            Way::Local(l) => l.readable(),
            Way::Shm(s) => s.readable(),
        }
    }

    /// Whether the peer closed its end (it sends nothing more).
    pub(crate) fn peer_closed(&self) -> bool {
        match &self.way {
            Way::Local(l) => l.peer_closed(),
            Way::Shm(s) => s.peer_closed(),
        }
    }

    /// Whether the peer closed and everything it sent has been read: the pipe can be dropped.
    pub(crate) fn finished(&self) -> bool {
        self.peer_closed() && !self.readable()
    }

    /// Whether the peer is in another process, reached over shared memory.
    pub(crate) fn is_shm(&self) -> bool {
        matches!(self.way, Way::Shm(_))
    }

    /// Before the owner waits elsewhere (in poll(2) on its eventfd): asks a peer in another process
    /// to wake it when a message comes (`recv`) or when room is made (otherwise). Returns whether
    /// that already happened: then do not wait. Pipes within this process wake through the signal
    /// and need nothing.
    pub(crate) fn arm(&self, recv: bool) -> bool {
        match &self.way {
            Way::Local(_) => false,
            Way::Shm(s) => s.arm(recv),
        }
    }

    /// Whether a short spin may catch the peer's next message: a peer socket (in this process, or in
    /// another over shared memory) that last ran on another CPU, where waking us would cost it a
    /// system call and us a scheduler wake-up across cores. Never for a network stream's session.
    pub(crate) fn spin_worthwhile(&self, me: u32) -> bool {
        match &self.way {
            Way::Local(l) => l.shared.signals[l.other()]
                .get()
                .is_some_and(|s| s.runs_apart_from(me)),
            Way::Shm(s) => s.spin_worthwhile(),
        }
    }

    /// Ends a wait announced by [`PipeEnd::arm`].
    pub(crate) fn disarm(&self) {
        if let Way::Shm(s) = &self.way {
            s.disarm();
        }
    }

    /// Closes our end: the peer reads what we queued, then sees the pipe finished.
    pub(crate) fn close(&self) {
        match &self.way {
            Way::Local(l) => l.close(),
            Way::Shm(s) => s.close(),
        }
    }
}

impl Local {
    fn other(&self) -> usize {
        1 - self.side
    }

    /// Sets the signal of this end's owner, if it was not known when the pipe was made.
    fn attach_signal(&self, signal: Arc<Signal>) {
        let _ = self.shared.signals[self.side].set(signal);
        // What the peer queued before we were attached is waiting: make sure we look.
        if let Some(s) = self.shared.signals[self.side].get() {
            s.notify();
        }
    }

    /// The signal of end `side` if its owner is a socket's thread (not a session), as far as known
    /// yet.
    fn thread_signal(&self, side: usize) -> Option<&Arc<Signal>> {
        self.shared.signals[side]
            .get()
            .filter(|s| matches!(s.wake, Wake::Thread(_)))
    }

    /// Whether the owner of end `side` is a socket's thread (not a session), as far as known yet.
    fn owned_by_thread(&self, side: usize) -> bool {
        self.thread_signal(side).is_some()
    }

    fn notify_peer(&self) {
        if let Some(s) = self.shared.signals[self.other()].get() {
            s.notify();
        }
    }

    /// Wakes the peer, if it is parked, for a message of `bytes` just queued. Between two sockets'
    /// threads on one CPU, after a large message (at least [`YIELD_BYTES`]) the peer just woken gets
    /// the CPU at once, as libzmq's receiver does there: the sender would otherwise run ahead, and
    /// the bodies queued between them leave the cache. Measured, 64 KiB inproc PUSH/PULL on one
    /// core: 141-145 k messages/s, 127-135 k/s without (libzmq 80 k/s). Not from a session's I/O
    /// thread: there the CPU goes to whichever thread runs next, often not the one woken. A peer
    /// woken on another CPU is noted on our signal, for our next wait's spin.
    fn notify_peer_sent(&self, bytes: usize) {
        let Some(s) = self.shared.signals[self.other()].get() else {
            return;
        };
        if !s.notify() {
            return;
        }
        let Some(me) = self.thread_signal(self.side) else {
            return;
        };
        if s.runs_apart_from(zring_shm::current_cpu()) {
            me.woke_peer.store(true, Ordering::Relaxed);
        } else if bytes >= YIELD_BYTES {
            std::thread::yield_now();
        }
    }

    /// Offers the peer its stream's gate (`None`: withdraws it): for direct reads, and for direct
    /// sends if `writes`.
    fn offer_gate(&self, gate: Option<Arc<zring_engine::Gate>>, writes: bool) {
        let other = self.other();
        let on = gate.is_some() && writes;
        *self.shared.gates[other]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = gate;
        self.shared.gate_epoch[other].fetch_add(1, Ordering::Release);
        self.shared.has_gate[other].store(on, Ordering::Release);
    }

    /// The gate of the stream behind this pipe, if it is a network stream that is up.
    fn gate(&self) -> Option<Arc<zring_engine::Gate>> {
        self.shared.gates[self.side]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends `msg` through the write lease if one is granted, else through the stream's gate if
    /// nothing is queued before it (see [`Local::try_gate`]). `false`: queue it.
    fn try_direct(&self, msg: &Parts, small_direct: bool) -> bool {
        // The frames as slices, without a vector (the gate takes at most `DIRECT_FRAMES`).
        let mut slices: [&[u8]; zring_engine::DIRECT_FRAMES] = [&[]; zring_engine::DIRECT_FRAMES];
        let mut n = 0;
        for (slot, m) in slices.iter_mut().zip(msg.frames()) {
            *slot = &m[..];
            n += 1;
        }
        if n < msg.len() {
            return false;
        }
        if self.lease_send(&slices[..n]) {
            return true;
        }
        let owned = |taken: &[usize]| {
            msg.frames()
                .zip(taken)
                .map(|(m, &t)| {
                    let b = m.clone().into_bytes();
                    b.slice(t.min(b.len())..)
                })
                .collect()
        };
        self.try_gate(&slices[..n], owned, small_direct)
    }

    /// Sends the message of `frames` through the stream's gate if nothing is queued before it:
    /// written at once when the I/O thread is idle and it is worth it (a large message, or a small
    /// one that does not follow another closely and `small_direct` allows), else, if small, added to
    /// the connection's batch (see [`zring_engine::Gate::try_write`]). `owned` gives what the kernel
    /// did not take of each frame (told how much it took), to keep. `false`: queue it.
    fn try_gate(
        &self,
        frames: &[&[u8]],
        owned: impl FnOnce(&[usize]) -> Vec<Bytes>,
        small_direct: bool,
    ) -> bool {
        // What goes another way goes behind what the lease sent (it is handed back first).
        self.end_lease();
        // Behind queued messages, a message must queue too.
        if !self.shared.has_gate[self.side].load(Ordering::Acquire) || !self.out.is_empty() {
            return false;
        }
        let mut cached = self.write_gate();
        let WriteGate {
            gate: Some(gate),
            lease,
            batched,
            ..
        } = &mut *cached
        else {
            return false;
        };
        let isolated = |now: Instant| {
            let since = now.saturating_duration_since(self.shared.epoch);
            let now = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            let last = self.shared.last_send[self.side].swap(now, Ordering::Relaxed);
            let large = frames.iter().map(|f| f.len()).sum::<usize>() >= DIRECT_LARGE;
            large || (small_direct && now.saturating_sub(last) >= DIRECT_GAP_NS)
        };
        match gate.try_write(frames, owned, || self.out.is_empty(), isolated, lease) {
            zring_engine::Direct::Written => true,
            zring_engine::Direct::Batched => {
                *batched = true;
                true
            }
            zring_engine::Direct::Partial => {
                // The I/O thread writes the rest.
                self.notify_peer();
                true
            }
            zring_engine::Direct::Closed => false,
        }
    }

    /// The gate this end writes through (when `has_gate` says there is one), from the end's copy,
    /// brought up to date if it changed (a lease on the old one is dropped with it, which hands it
    /// back).
    fn write_gate(&self) -> std::cell::RefMut<'_, WriteGate> {
        let mut cached = self.gate.borrow_mut();
        let epoch = self.shared.gate_epoch[self.side].load(Ordering::Acquire);
        if cached.epoch != epoch {
            let gate = self.shared.gates[self.side]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            *cached = WriteGate {
                epoch,
                gate,
                lease: None,
                batched: false,
            };
        }
        cached
    }

    /// Sends the message of `frames` through the write lease, if one is granted (see
    /// [`zring_engine::Gate::lease_send`]). `false`: the usual way.
    #[inline]
    fn lease_send(&self, frames: &[&[u8]]) -> bool {
        let mut cached = self.write_gate();
        match &mut *cached {
            WriteGate {
                gate: Some(gate),
                lease: Some(lease),
                ..
            } if lease.is_live() => gate.lease_send(lease, frames),
            _ => false,
        }
    }

    /// Hands the write lease back, if one is granted: what is sent next goes another way, behind
    /// what the lease sent.
    fn end_lease(&self) {
        let mut cached = self.gate.borrow_mut();
        if let WriteGate {
            gate: Some(gate),
            lease: Some(lease),
            ..
        } = &mut *cached
        {
            if lease.is_live() {
                gate.end_lease(lease);
            }
        }
    }

    /// Queues the message of `frames`, copied into the queue; `false` if the queue is full.
    fn push_frames(&self, frames: &[&[u8]]) -> bool {
        self.end_lease();
        if !self
            .out
            .push_frames(frames, self.owned_by_thread(self.other()))
        {
            return false;
        }
        self.notify_peer_sent(frames.iter().map(|f| f.len()).sum());
        true
    }

    fn send_via(&self, msg: Parts, small_direct: bool) -> Result<(), Parts> {
        let gate = self.shared.has_gate[self.side].load(Ordering::Relaxed);
        if gate && self.try_direct(&msg, small_direct) {
            return Ok(());
        }
        // What is queued goes behind what the lease sent.
        self.end_lease();
        let bytes = msg.frames().map(|f| f.len()).sum();
        let msg = match self.out.push(msg) {
            Ok(()) => {
                self.notify_peer_sent(bytes);
                return Ok(());
            }
            Err(msg) => msg,
        };
        self.shared.want_room[self.side].store(true, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `try_recv` (see `Shared::want_room`).
        fence(Ordering::SeqCst);
        self.out.push(msg)?;
        self.notify_peer_sent(bytes);
        Ok(())
    }

    /// Whether a message can be queued now.
    fn writable(&self) -> bool {
        !self.out.is_full() && !self.peer_closed()
    }

    /// Takes the next message from the peer, waking the peer if it waits for room.
    #[inline]
    fn try_recv(&self) -> Option<Parts> {
        let (msg, look) = self.inq.pop();
        self.after_take(look, msg.is_none());
        msg
    }

    /// [`Local::try_recv`] frame by frame (see [`PipeEnd::try_recv_frame`]).
    #[inline]
    fn try_recv_frame(&self, first: &mut Msg, rest: &mut VecDeque<Msg>) -> bool {
        let (got, look) = self.inq.pop_frame(first, rest);
        self.after_take(look, !got);
        got
    }

    /// After a take that told the writer what was taken (`look`), or a look that found nothing
    /// (`empty`): wakes the writer if it waits for room. A writer that may run beside us is woken
    /// at every step told, so that it is busy again before we run out. Two sockets' threads on one
    /// core take turns: the writer runs only when we stop, so it is woken when we find the queue
    /// empty, not every few messages (which made them take turns every step: 6 against 12 M msgs/s
    /// of 64 B on one core). An I/O thread on either side is always woken at every step (put off
    /// until the queue was empty, a socket feeding its I/O thread on the same core streamed ipc
    /// at 4 against 10-11 M msgs/s).
    #[inline]
    fn after_take(&self, look: bool, empty: bool) {
        let due = if empty {
            self.skipped.replace(false)
        } else if look && !self.writer_may_run() {
            self.skipped.set(true);
            false
        } else {
            look
        };
        if due {
            // SYNC POINT: pairs with the fence in `send_via` (see `Shared::want_room`).
            fence(Ordering::SeqCst);
            let flag = &self.shared.want_room[self.other()];
            if flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::Relaxed) {
                self.notify_peer();
            }
        }
    }

    /// Whether the writer of the queue we read is to be woken at every step: unless both ends are
    /// sockets' threads and the writer was last seen on our CPU.
    fn writer_may_run(&self) -> bool {
        let session = |i: usize| {
            self.shared.signals[i]
                .get()
                .is_none_or(|s| matches!(s.wake, Wake::Engine(_)))
        };
        session(self.side)
            || session(self.other())
            || self.shared.signals[self.other()]
                .get()
                .is_some_and(|s| s.runs_apart_from(zring_shm::current_cpu()))
    }

    /// Whether a message from the peer is waiting.
    fn readable(&self) -> bool {
        let empty = self.inq.is_empty();
        if empty {
            // About to wait, maybe: a writer put off until now is woken first.
            self.after_take(false, true);
        }
        !empty
    }

    /// Whether the peer closed its end (it sends nothing more).
    fn peer_closed(&self) -> bool {
        self.shared.closed[self.other()].load(Ordering::Acquire)
    }

    /// Closes our end: the peer reads what we queued, then sees the pipe finished.
    fn close(&self) {
        self.end_lease();
        self.shared.closed[self.side].store(true, Ordering::Release);
        self.notify_peer();
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: SocketType) -> PeerMeta {
        PeerMeta {
            socket_type: t,
            routing_id: Bytes::new(),
        }
    }

    /// An unbounded pipe between two owners with these signals and socket types (`t[0]` for `a`'s).
    fn unbounded(a: &Arc<Signal>, b: &Arc<Signal>, t: [SocketType; 2]) -> (PipeEnd, PipeEnd) {
        PipeEnd::pair(
            (Some(a.clone()), meta(t[0])),
            (Some(b.clone()), meta(t[1])),
            Capacity {
                forward: Bound::Unbounded,
                backward: Bound::Unbounded,
            },
        )
    }

    #[test]
    fn a_pipe_carries_whole_messages_both_ways_up_to_its_capacity() {
        let (a, _pa) = Signal::new();
        let (b, _pb) = Signal::new();
        let (x, y) = PipeEnd::pair(
            (Some(a), meta(SocketType::Push)),
            (Some(b), meta(SocketType::Pull)),
            Capacity {
                forward: Bound::Messages(2),
                backward: Bound::Unbounded,
            },
        );
        assert_eq!(y.peer.socket_type, SocketType::Push);
        let m = Parts::from_vec(vec![Msg::from("a"), Msg::from("b")]);
        x.try_send(m.clone()).unwrap();
        x.try_send(m.clone()).unwrap();
        assert!(!x.writable());
        assert_eq!(x.try_send(m.clone()), Err(m.clone()));
        assert_eq!(y.try_recv(), Some(m.clone()));
        assert!(x.writable());
        y.try_send(Parts::one(Msg::from("back"))).unwrap();
        assert_eq!(x.try_recv(), Some(Parts::one(Msg::from("back"))));
        drop(x);
        assert!(y.peer_closed());
        assert!(!y.finished(), "one message still queued");
        assert_eq!(y.try_recv(), Some(m));
        assert!(y.finished());
    }

    #[test]
    fn the_two_ends_and_their_signals_share_no_pair_of_cache_lines() {
        let (a, _pa) = Signal::new();
        let (b, _pb) = Signal::new();
        let (x, y) = unbounded(&a, &b, [SocketType::Push, SocketType::Pull]);
        // Where a socket keeps them: each end in its own socket's vector, boxed here.
        let (x, y) = (Box::new(x), Box::new(y));
        let pair = |p: usize| p / 128;
        let span = |p: *const u8, len: usize| (pair(p as usize), pair(p as usize + len - 1));
        let ends = [
            span(
                (&*x as *const PipeEnd).cast(),
                std::mem::size_of::<PipeEnd>(),
            ),
            span(
                (&*y as *const PipeEnd).cast(),
                std::mem::size_of::<PipeEnd>(),
            ),
            span(Arc::as_ptr(&a).cast(), std::mem::size_of::<Signal>()),
            span(Arc::as_ptr(&b).cast(), std::mem::size_of::<Signal>()),
        ];
        for (i, p) in ends.iter().enumerate() {
            for q in &ends[i + 1..] {
                assert!(
                    p.1 < q.0 || q.1 < p.0,
                    "{p:?} and {q:?} share a pair of lines"
                );
            }
        }
        for p in [(&*x as *const PipeEnd).cast::<u8>(), Arc::as_ptr(&a).cast()] {
            assert_eq!(p as usize % 128, 0);
        }
        // They still work where they are.
        x.try_send(Parts::one(Msg::from("a"))).unwrap();
        assert_eq!(y.try_recv(), Some(Parts::one(Msg::from("a"))));
    }

    #[test]
    fn a_peer_socket_is_spun_for_only_while_it_runs_on_another_cpu() {
        let (a, _pa) = Signal::new();
        let (b, _pb) = Signal::new();
        let (x, _y) = unbounded(&a, &b, [SocketType::Pair; 2]);
        assert!(
            x.spin_worthwhile(3),
            "a peer not yet seen running may answer"
        );
        b.cpu.store(3, Ordering::Relaxed);
        assert!(
            !x.spin_worthwhile(3),
            "the peer runs here: it cannot answer while we spin"
        );
        assert!(x.spin_worthwhile(4));
        assert!(x.spin_worthwhile(0), "where we run is unknown");
        b.note_cpu();
        assert_eq!(b.cpu.load(Ordering::Relaxed), zring_shm::current_cpu());
    }

    #[test]
    fn notifiers_fence_fully_unless_the_owner_waits_seldom_for_peers_elsewhere() {
        let w = Waiter::new();
        let fenced = || w.signal.fenced.load(Ordering::Relaxed);
        // Where the system has no asymmetric barrier, notifiers always fence.
        let light = zring_shm::barrier::asymmetric();
        assert!(fenced(), "a new socket's notifiers fence fully");
        w.lighten();
        assert_eq!(
            fenced(),
            !light,
            "seldom waits, peers elsewhere: the light barrier"
        );
        w.prepare(false);
        w.cancel();
        assert!(
            fenced(),
            "peers on our CPU, I/O threads, frequent waits: full fences"
        );
        w.prepare(true);
        w.cancel();
        assert_eq!(fenced(), !light, "light again");
        assert!(w.prepare_poll().is_some(), "the system gives an eventfd");
        w.cancel();
        assert!(
            fenced(),
            "a wait in poll(2) comes at every message of a stream"
        );
    }

    /// Two owners hand a message back and forth, each parking for the other's every time, with
    /// the notifiers' barrier changing from round to round: no wake-up is lost (a park that ends
    /// at its deadline, long past any wake-up, would be one).
    #[test]
    fn no_wake_up_is_lost_whichever_barrier_the_notifiers_take() {
        const ROUNDS: u32 = 500;
        const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
        let (a, b) = (Waiter::new(), Waiter::new());
        let (x, y) = unbounded(&a.signal, &b.signal, [SocketType::Pair; 2]);
        /// Takes the next message, parking (bounded) while there is none; returns it with whether
        /// a park ran out.
        fn take(w: &Waiter, end: &PipeEnd, apart: bool) -> (Option<Parts>, bool) {
            loop {
                if let Some(m) = end.try_recv() {
                    return (Some(m), false);
                }
                w.prepare(apart);
                if let Some(m) = end.try_recv() {
                    w.cancel();
                    return (Some(m), false);
                }
                let deadline = Instant::now() + PATIENCE;
                w.park(Some(deadline));
                if Instant::now() >= deadline {
                    return (end.try_recv(), true);
                }
            }
        }
        let echo = std::thread::spawn(move || {
            let mut ran_out = 0;
            for round in 0..ROUNDS {
                let (m, out) = take(&b, &y, round % 3 != 0);
                ran_out += u32::from(out);
                let Some(m) = m else { break };
                assert!(y.try_send(m).is_ok(), "an unbounded pipe takes it");
            }
            ran_out
        });
        let mut ran_out = 0;
        for round in 0..ROUNDS {
            let body = Msg::from(round.to_string());
            assert!(x.try_send(Parts::one(body)).is_ok());
            let (m, out) = take(&a, &x, round % 2 == 0);
            ran_out += u32::from(out);
            let m = m.expect("the echo came back");
            assert_eq!(m.first().as_ref(), round.to_string().as_bytes());
        }
        assert_eq!(ran_out + echo.join().expect("the echo's thread"), 0);
    }

    #[test]
    fn a_notification_says_whether_it_woke_a_parked_thread() {
        let w = Waiter::new();
        assert!(!w.signal.notify(), "the owner runs");
        w.prepare(true);
        assert!(w.signal.notify());
        w.cancel();
        assert!(!w.signal.notify());
    }

    #[test]
    fn a_send_that_wakes_a_peer_parked_elsewhere_is_noted_for_the_next_wait() {
        let (a, b) = (Waiter::new(), Waiter::new());
        let (x, _y) = unbounded(&a.signal, &b.signal, [SocketType::Pair; 2]);
        x.try_send(Parts::one(Msg::from("running"))).unwrap();
        assert!(!a.signal.take_woke_peer(), "the peer was not parked");
        // Where the peer runs is not known yet: it counts as another CPU.
        b.prepare(true);
        x.try_send(Parts::one(Msg::from("parked"))).unwrap();
        assert!(a.signal.take_woke_peer());
        assert!(!a.signal.take_woke_peer(), "taken once");
        assert!(
            !b.signal.take_woke_peer(),
            "noted on the sender's signal only"
        );
    }

    #[test]
    fn parts_keep_order_and_set_more_on_all_but_the_last() {
        let mut p = Parts::one(Msg::from("body"));
        p.push_front(Msg::new());
        p.push_front(Msg::from("id"));
        let frames: Vec<Msg> = p.clone().into_frames().collect();
        assert_eq!(
            frames,
            vec![
                Msg::from("id").with_more(true),
                Msg::new().with_more(true),
                Msg::from("body")
            ]
        );
        assert_eq!(p.pop_front(), Some(Msg::from("id")));
        assert_eq!(p.pop_front(), Some(Msg::new()));
        assert_eq!(p.pop_front(), None);
        assert_eq!(p.first(), &Msg::from("body"));
    }
}
