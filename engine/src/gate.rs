//! What one connection shares between its I/O thread and its socket's thread: the session, the codec,
//! and who may touch the stream. Both threads work under the gate's lock, so the socket's thread can
//! take the two hand-offs of a message out of its path:
//!
//! - **Direct sends**: the socket's thread writes a message straight to the stream when the I/O thread
//!   has nothing queued or in flight for it. Ordering is kept by one rule: bytes reach the stream
//!   through the lock. The I/O thread closes the write side before it takes a message from the
//!   socket's queue or writes anything, and opens it only when it is idle; the socket writes only while
//!   it is open and the queue is empty, both checked under the lock. What the kernel does not take of a
//!   direct write stays in the gate as `leftover`, which the I/O thread writes before anything else.
//! - **Batches**: a small message that does not go alone is copied by the socket's thread into the
//!   codec's output (the batch), under the same lock, when nothing is queued before it; the first of
//!   a batch wakes the I/O thread, and a batch of [`BATCH_WRITE`] octets is written by the socket's
//!   thread itself when the I/O thread has no write under way.
//! - **Stream mode**: once the socket's thread fills batches faster than the I/O thread takes them,
//!   a new batch wakes nobody; the socket's thread writes each batch when it is full or before it
//!   waits ([`Gate::before_wait`]), and the I/O thread looks every [`STREAM_TAIL`] for a batch left
//!   behind, so that on a core the two threads share, the sender is not preempted once a batch.
//! - **Write leases** ([`Lease`]): in stream mode, once the socket's thread has written a batch of its
//!   own and nothing else waits, it is granted a lease: a byte ring of its own ([`rtrb`]) into which
//!   it encodes each small message without the gate's lock; the lock is taken once a batch, to write
//!   the ring's bytes ([`Gate::lease_send`]). Whoever writes the stream under the lock (the socket's
//!   thread, or the I/O thread at its looks) writes the ring's bytes before anything the codec holds,
//!   and nothing is written directly while the ring holds any. The I/O thread revokes the lease when
//!   stream mode ends, or the stream does; the socket's thread hands it back, under the lock, at its
//!   next send (or when it drops it), and until then the I/O thread keeps looking at the ring, so
//!   that a message appended as the lease ended is not left behind.
//! - **Direct reads** ([`DirectReader`]): a socket whose thread waits in `recv` on this one stream takes
//!   the *read lease*: it polls the stream itself and runs the codec and the session on what arrives,
//!   so a message goes from the kernel to the caller on one thread, as with a bare socket. While the
//!   lease is out the I/O thread neither reads nor polls the stream. It takes the lease back when it
//!   has found the socket not waiting for [`LEASE_IDLE`], so input keeps flowing (and heartbeats are
//!   answered) while the application is busy elsewhere.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rtrb::{Consumer, CopyToUninit, Producer, RingBuffer};
use zring_zmtp::{
    encode_header, flags, Clock, Connection, EventRef, Frame, FrameView, SystemClock, Transmit,
    MAX_HEADER_LEN,
};

use crate::session::Session;
use crate::{EventFd, Waker};

/// How long a read lease may sit unused (its socket not waiting) before the I/O thread takes it back,
/// counted from when the I/O thread first found it unused (at one of its looks, `LEASE_CHECK`
/// apart at most: so 2-12 ms after the socket's receive returned).
pub const LEASE_IDLE: Duration = Duration::from_millis(2);
/// How often the I/O thread looks at a lease whose socket is waiting.
const LEASE_CHECK: Duration = Duration::from_millis(10);
/// How long a waiting reader sleeps in the stream's own receive before it polls (see
/// [`DirectReader::wait`]); below the kernel's tick, so the tick is kept while it sleeps.
const BLOCK_FIRST: Duration = Duration::from_millis(1);
/// A read lease looks at which CPU its peer's input comes from once in this many waits.
const PEER_CPU_EVERY: u32 = 256;
/// Size of a fresh read buffer; reads go into what is left of it until little is.
const READ_BUFFER: usize = 64 * 1024;
/// Below this much room, a read gets a fresh buffer.
const READ_MIN: usize = 8 * 1024;
/// A frame body with at least this much still to come is read straight into its own buffer.
const DIRECT_BODY: usize = 32 * 1024;

/// Where a read on the socket's thread may put the messages it decodes itself, rather than through
/// the session and the socket's queue (see [`DirectReader::read`]); `None`: everything goes to the
/// session.
pub type Take<'a> = Option<Taker<'a>>;

/// The messages a read on the socket's thread keeps itself, and their shape.
pub struct Taker<'a> {
    /// Gets the body of each message taken, borrowed from the read buffer.
    pub keep: &'a mut dyn FnMut(FrameView<'_>),
    /// The messages taken are an empty delimiter and a body, and the delimiter is left out (what a
    /// REQ receives); otherwise they are of one frame. Any other message goes to the session, and
    /// so does everything after it in the same read.
    pub delimited: bool,
}

/// The outcome of [`Gate::try_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// The whole message was handed to the kernel.
    Written,
    /// Part of it was: the rest is with the I/O thread, which must be woken.
    Partial,
    /// It was added to the connection's batch, which the I/O thread (woken if the batch was empty)
    /// writes with what precedes and follows it.
    Batched,
    /// The gate is closed: queue the message as usual.
    Closed,
}

/// Who reads the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The I/O thread (readiness polls through its ring).
    Engine,
    /// The socket's thread, which holds the lease; `waiting` while it is in a receive. While it
    /// is not, `seen` is when the I/O thread first found it so (`None`: not yet), from which
    /// [`LEASE_IDLE`] counts: the socket's thread reads no clock to say when it left.
    App {
        waiting: bool,
        seen: Option<Instant>,
    },
}

/// Why a stream failed, found by whichever thread was reading it.
#[derive(Debug)]
pub(crate) enum Failure {
    Eof,
    Io(io::Error),
    Protocol(zring_zmtp::Error),
    Refused,
}

/// What [`Inner::pump`] found.
pub(crate) enum Pumped {
    /// Bytes went to the session; `full` if they filled the room offered (more may be waiting).
    Data { full: bool },
    /// Nothing to read now.
    Empty,
}

/// The state under the gate's lock.
pub(crate) struct Inner {
    pub(crate) session: Box<dyn Session>,
    /// The current stream's codec.
    pub(crate) codec: Option<Connection>,
    /// The stream, or -1 when there is none.
    fd: RawFd,
    /// Counts streams (a connecting side reconnects): a reader's copy of the descriptor is for one.
    generation: u64,
    /// Whether the socket's thread may write directly.
    open: bool,
    /// What a direct write left unwritten; the I/O thread writes it first.
    leftover: Transmit,
    /// The I/O thread has no write under way and nothing of its own to write: the socket's thread
    /// may write what the codec holds (set and cleared by the I/O thread, under the lock).
    writer_idle: bool,
    /// Buffers for the socket's thread to take a batch out of the codec with (kept for reuse).
    spare: Transmit,
    /// Stream mode: the socket's thread writes its batches itself (it filled one before the I/O
    /// thread took any of it), so a new batch wakes nobody; the I/O thread looks at `stream_look`
    /// and writes a batch that has waited [`STREAM_TAIL`].
    stream: bool,
    /// When the bytes the codec holds began to wait (stream mode).
    batch_since: Option<Instant>,
    /// When a batch was last written (by either thread): a stream-mode message that finds nothing
    /// batched this long after it follows no other closely.
    last_write: Option<Instant>,
    /// Whether the socket's thread wrote a batch itself since the I/O thread last looked.
    wrote_batch: bool,
    /// When the I/O thread is to look at the stream-mode batch next.
    stream_look: Option<Instant>,
    /// Looks in a row that found the stream idle (it ends after [`STREAM_IDLE_LOOKS`]).
    idle_looks: u8,
    /// When the I/O thread last opened the write side after it had been closed (it wrote what was
    /// batched or left over): a small message soon after follows the stream it ended.
    opened_at: Option<Instant>,
    reader: Reader,
    /// The consuming end of the write lease's ring, once one was granted.
    ring: Option<Consumer<u8>>,
    /// The stream whose bytes the ring holds (its `generation`; 0: none, and what it holds is
    /// dropped at the next grant).
    ring_gen: u64,
    /// Octets taken from the ring so far, and where its end was at the I/O thread's last look: bytes
    /// still there from before that look have waited a look's interval.
    ring_taken: u64,
    ring_mark: u64,
    /// A lease is out and not handed back (its holder may still append).
    lease_out: bool,
    /// The granted lease's stream (0: none granted), shared with the holder, which reads it before
    /// each message; set to 0 to revoke.
    grant: Arc<AtomicU64>,
    /// The interval of the I/O thread's looks at a revoked lease that is not handed back (doubling
    /// up to [`REVOKED_LOOK_MAX`]).
    revoked_look: Duration,
    /// How the stream failed while the socket's thread read it; the I/O thread closes it.
    pub(crate) failure: Option<Failure>,
    /// The unused part of the last read buffer.
    buf: BytesMut,
}

/// One connection's shared state (see the module's documentation). The socket layer holds it through
/// its pipe to offer direct writes and reads; the I/O thread owns the connection.
pub struct Gate {
    inner: Mutex<Inner>,
    /// Schedules the connection on its I/O thread.
    waker: Waker,
    /// The same as `Inner::grant`, read without the lock.
    grant: Arc<AtomicU64>,
}

/// A write lease on one stream, held by the socket's thread (see the module's documentation): the
/// producing end of the stream's byte ring, and the stream it was granted for.
#[derive(Debug)]
pub struct Lease {
    tx: Producer<u8>,
    /// The stream it was granted for; 0 while it is not granted.
    generation: u64,
    /// Octets appended since the last attempt to write the ring.
    unflushed: usize,
}

impl Lease {
    /// Whether the lease is granted (as far as its holder knows: a revoked one ends at its next use).
    pub fn is_live(&self) -> bool {
        self.generation != 0
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// The most frames a message may have to go the direct way (more go through the queue).
pub const DIRECT_FRAMES: usize = 16;
/// A direct write of at most this many bytes is copied into one buffer and sent with `send(2)`.
const SMALL_WRITE: usize = 512;
/// A message whose frames are all at most this long may be batched by the socket's thread: copied
/// into the connection's output, as the I/O thread would copy it ([`zring_zmtp::DEFAULT_INLINE_MAX`]).
const BATCH_BODY: usize = zring_zmtp::DEFAULT_INLINE_MAX;
/// The socket's thread batches only while less than this much waits for the I/O thread; beyond it,
/// messages queue in the socket's pipe (and its high-water mark holds the sender back).
const BATCH_LIMIT: usize = 256 * 1024;
/// A batch this long is written by the socket's thread itself when the I/O thread has no write of
/// its own under way: a stream of small messages then costs one system call per this many octets
/// and no thread hand-off. 64 KiB rather than 32: PUB -> 8 subscribers over tcp with a core per
/// process ran at 2.2-3.9 x libzmq against 1.3-3.9 x (seven interleaved pairs of `zring bench
/// --kind fanout --placement split --rounds 1`, 64 KiB ahead in six), tcp and ipc PUSH/PULL the same.
const BATCH_WRITE: usize = 64 * 1024;
/// In stream mode, the longest a batch waits for the socket's thread to fill and write it before
/// the I/O thread writes it: what the last messages of a fast stream may wait, in exchange for the
/// I/O thread not being woken for every batch (on a shared core each wake-up preempts the sender).
pub(crate) const STREAM_TAIL: Duration = Duration::from_micros(100);
/// Stream mode ends after this many looks in a row found the stream idle (a sender held up for a
/// moment keeps it).
const STREAM_IDLE_LOOKS: u8 = 3;
/// A batch this long, found by the I/O thread, comes from a stream fast enough for stream mode.
const STREAM_MIN: usize = 8 * 1024;
/// A small message within this long of the I/O thread reopening the write side follows the batch it
/// wrote (a stream whose sender was held up, by that thread among others): it is batched too, not
/// written alone.
const REOPENED: Duration = Duration::from_micros(10);
/// The room of a write lease's ring: two batches, so that one fills while the other is written; a
/// small ring stays in the cache (rings of 256 KiB, 2 MiB for eight subscribers, stalled the
/// publisher on its header stores; two batches of 64 KiB make 1 MiB). A ring found
/// full hands the lease back: the stream's batch and the socket's queue take what follows, up to
/// their own bounds.
const LEASE_RING: usize = 2 * BATCH_WRITE;
/// The longest interval of the I/O thread's looks at a revoked lease not handed back yet: what its
/// holder appended as it ended is written within it.
const REVOKED_LOOK_MAX: Duration = Duration::from_millis(10);

impl Gate {
    pub(crate) fn new(session: Box<dyn Session>, waker: Waker) -> Gate {
        let grant = Arc::new(AtomicU64::new(0));
        Gate {
            grant: Arc::clone(&grant),
            inner: Mutex::new(Inner {
                session,
                codec: None,
                fd: -1,
                generation: 0,
                open: false,
                leftover: Transmit::new(),
                writer_idle: false,
                spare: Transmit::new(),
                opened_at: None,
                stream: false,
                batch_since: None,
                last_write: None,
                wrote_batch: false,
                stream_look: None,
                idle_looks: 0,
                reader: Reader::Engine,
                ring: None,
                ring_gen: 0,
                ring_taken: 0,
                ring_mark: 0,
                lease_out: false,
                grant,
                revoked_look: STREAM_TAIL,
                failure: None,
                buf: BytesMut::new(),
            }),
            waker,
        }
    }

    /// Schedules the connection on its I/O thread (at most once until that thread takes it).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one message (its frames, with MORE on all but the last) from the socket's thread, if
    /// `queue_empty` says nothing is queued before it:
    /// - written at once if the gate is open (the I/O thread is idle) and the message is large, or
    ///   small and `isolated` says, given the time, that it does not follow another closely (a
    ///   latency path), nor did the I/O thread just write a batch before it;
    /// - else, if every frame is small and the connection is up, copied into the connection's batch
    ///   for the I/O thread to write with the others ([`Direct::Batched`]): a stream of small messages
    ///   then costs the sender a copy each, not a trip through the socket's queue, and the I/O thread
    ///   one write per batch. At most 256 KiB wait so. In stream mode a message that
    ///   finds nothing batched nor being written may go alone too, under the same rule (`isolated`),
    ///   and a new batch wakes nobody (the module's documentation).
    ///
    /// What the kernel does not take of a write is kept for the I/O thread: the rest of each frame,
    /// which `owned` gives, told how many octets of each frame the kernel took (by reference to a
    /// shared frame, or a copy of just that rest of a borrowed one).
    ///
    /// When the socket's thread wrote a batch itself in stream mode and nothing else waits, `lease`
    /// is granted (made, the first time): the next small messages go through
    /// [`Gate::lease_send`].
    pub fn try_write(
        &self,
        frames: &[&[u8]],
        owned: impl FnOnce(&[usize]) -> Vec<Bytes>,
        queue_empty: impl FnOnce() -> bool,
        isolated: impl FnOnce(Instant) -> bool,
        lease: &mut Option<Lease>,
    ) -> Direct {
        if frames.is_empty() || frames.len() > DIRECT_FRAMES {
            return Direct::Closed;
        }
        let Ok(mut s) = self.inner.try_lock() else {
            return Direct::Closed;
        };
        if s.fd < 0 || s.failure.is_some() || !queue_empty() {
            return Direct::Closed;
        }
        let small = frames.iter().all(|f| f.len() <= BATCH_BODY);
        // Nothing goes alone past bytes in a lease's ring.
        let ring_empty = s.ring_len() == 0;
        // In stream mode, with nothing batched nor being written, a message may go alone too.
        let stream_gap = !s.open
            && ring_empty
            && s.stream
            && s.writer_idle
            && s.leftover.is_empty()
            && s.codec
                .as_ref()
                .is_some_and(|c| c.is_ready() && !c.wants_write());
        let mut now = None;
        if (s.open && ring_empty) || stream_gap {
            if !small {
                return s.write_now(frames, owned);
            }
            let t = Instant::now();
            now = Some(t);
            if s.isolated(t, isolated) {
                s.last_write = Some(t);
                return s.write_now(frames, owned);
            }
        }
        if !small {
            return Direct::Closed;
        }
        let Some(codec) = s.codec.as_ref().filter(|c| c.is_ready()) else {
            return Direct::Closed;
        };
        let was_empty = !codec.wants_write();
        if codec.pending() >= BATCH_LIMIT {
            return Direct::Closed;
        }
        if was_empty && s.stream {
            s.batch_since = Some(now.unwrap_or_else(Instant::now));
        }
        let Some(codec) = s.codec.as_mut() else {
            return Direct::Closed;
        };
        let last = frames.len() - 1;
        for (i, frame) in frames.iter().enumerate() {
            if codec.send_frame_copy(frame, i < last).is_err() {
                // Only a closed connection refuses, and the first frame shows it: nothing was
                // added, and the message goes to the queue, which outlives the stream.
                return Direct::Closed;
            }
        }
        let full = codec.pending() >= BATCH_WRITE;
        // Bytes wait in the batch: nothing may be written past them.
        s.open = false;
        let wake = if full && s.writer_idle && s.leftover.is_empty() {
            let (left, now) = s.write_own_batch();
            // A batch filled before the I/O thread took any of it: a fast stream. The I/O thread
            // is woken once, to look at it from now on.
            let enter = !left && !s.stream;
            if enter {
                s.enter_stream(now);
            }
            if !left {
                s.grant(lease);
            }
            left || enter
        } else {
            was_empty && !s.stream
        };
        drop(s);
        if wake {
            self.waker.wake();
        }
        Direct::Batched
    }

    /// Writes what the socket's thread batched in stream mode, if the I/O thread has no write under
    /// way: the socket's thread calls it before it waits, so that the end of its stream goes now,
    /// not at the I/O thread's next look ([`STREAM_TAIL`]).
    fn flush_stream(&self) {
        let Ok(mut s) = self.inner.try_lock() else {
            return;
        };
        let ring = s.ring_len() > 0;
        let pending = ring || s.codec.as_ref().is_some_and(Connection::wants_write);
        if !(s.stream || ring) || !pending || !s.writer_idle || !s.leftover.is_empty() || s.fd < 0 {
            return;
        }
        let (left, _) = s.write_own_batch();
        drop(s);
        if left {
            self.waker.wake();
        }
    }

    /// Sends one small message through the write lease `lease` (see the module's documentation): its
    /// frames, encoded, into the lease's ring, without the gate's lock; once a batch
    /// (64 KiB) has gathered, the ring is written if the I/O thread has no write under
    /// way. `false` if the message cannot go this way (the lease was revoked, the message is not
    /// small, the ring is full): the lease is then handed back, and the message takes the usual
    /// way, behind what the ring holds.
    pub fn lease_send(&self, lease: &mut Lease, frames: &[&[u8]]) -> bool {
        if self.grant.load(Ordering::Acquire) != lease.generation
            || frames.is_empty()
            || frames.len() > DIRECT_FRAMES
            || frames.iter().any(|f| f.len() > BATCH_BODY)
        {
            self.end_lease(lease);
            return false;
        }
        let total = match frames {
            // The common case: a short frame's two-octet header, written in place.
            [body] if body.len() <= usize::from(u8::MAX) => {
                let header = [0, body.len() as u8];
                self.lease_append(lease, 2 + body.len(), |first, second| {
                    if let (true, [flags, len, rest @ ..]) = (second.is_empty(), &mut *first) {
                        // The whole chunk is one run: no part of it wraps. The header's octets are
                        // stored where they go, not copied from the stack (a two-octet load over
                        // the two one-octet stores that made it stalled on them).
                        flags.write(header[0]);
                        len.write(header[1]);
                        body.copy_to_uninit(rest);
                        return;
                    }
                    fill((first, second), [&header[..], body].into_iter());
                })
            }
            _ => {
                let (headers, total) = Headers::new(frames);
                let parts = headers.iter().zip(frames).flat_map(|(h, f)| [h, *f]);
                self.lease_append(lease, total, |first, second| fill((first, second), parts))
            }
        };
        let Some(total) = total else {
            self.end_lease(lease);
            return false;
        };
        lease.unflushed += total;
        if lease.unflushed >= BATCH_WRITE {
            self.flush_lease(lease);
        }
        true
    }

    /// Appends `parts`, `total` octets together, to the lease's ring as one piece (the ring's reader
    /// never sees part of it); when the ring has no room, it is written first if it can be.
    /// `None`: no room.
    #[inline]
    fn lease_append(
        &self,
        lease: &mut Lease,
        total: usize,
        write: impl FnOnce(&mut [MaybeUninit<u8>], &mut [MaybeUninit<u8>]),
    ) -> Option<usize> {
        let chunk = match lease.tx.write_chunk_uninit(total) {
            Ok(chunk) => chunk,
            Err(_) => {
                self.flush_lease(lease);
                lease.tx.write_chunk_uninit(total).ok()?
            }
        };
        let mut chunk = chunk;
        let (first, second) = chunk.as_mut_slices();
        write(first, second);
        // SAFETY: `write` wrote every one of the chunk's `total` octets (both callers copy in
        // exactly that many: `total` was summed over the same parts).
        unsafe { chunk.commit_all() };
        Some(total)
    }

    /// Writes what the lease's ring holds, if the I/O thread has no write under way (the socket's
    /// thread, once a batch and before it waits); else the I/O thread takes it with its next write.
    pub fn flush_lease(&self, lease: &mut Lease) {
        lease.unflushed = 0;
        let Ok(mut s) = self.inner.try_lock() else {
            return;
        };
        if s.ring_gen != lease.generation || s.fd < 0 || !s.writer_idle || !s.leftover.is_empty() {
            return;
        }
        let left = s.write_ring();
        drop(s);
        if left {
            self.waker.wake();
        }
    }

    /// Before the holder of `lease` waits: hands it back if it was revoked (so that the I/O thread
    /// stops looking at it), then writes what the stream has batched and what the ring holds, if
    /// the I/O thread has no write under way.
    pub fn before_wait(&self, lease: Option<&mut Lease>) {
        if let Some(lease) = lease.filter(|l| l.is_live()) {
            if self.grant.load(Ordering::Acquire) != lease.generation {
                self.end_lease(lease);
            }
        }
        self.flush_stream();
    }

    /// Hands `lease` back (its holder sends no more through it): under the lock, so that whoever
    /// writes next sees everything it appended, which goes first; written now if the I/O thread has
    /// no write under way, else left to it.
    pub fn end_lease(&self, lease: &mut Lease) {
        let generation = std::mem::replace(&mut lease.generation, 0);
        lease.unflushed = 0;
        if generation == 0 {
            return;
        }
        let mut s = self.lock();
        if s.ring_gen == generation {
            s.lease_out = false;
        }
        if s.ring_len() == 0 {
            return;
        }
        let left = if s.fd >= 0 && s.writer_idle && s.leftover.is_empty() {
            s.write_ring()
        } else {
            true
        };
        drop(s);
        if left {
            self.waker.wake();
        }
    }
}

/// The frame headers of a message of at most [`DIRECT_FRAMES`] frames (MORE on all but the last).
struct Headers {
    bytes: [[u8; MAX_HEADER_LEN]; DIRECT_FRAMES],
    lens: [usize; DIRECT_FRAMES],
    count: usize,
}

impl Headers {
    /// The headers of `frames`, and the length of the message on the wire.
    fn new(frames: &[&[u8]]) -> (Headers, usize) {
        let mut h = Headers {
            bytes: [[0u8; MAX_HEADER_LEN]; DIRECT_FRAMES],
            lens: [0; DIRECT_FRAMES],
            count: frames.len().min(DIRECT_FRAMES),
        };
        let mut total = 0usize;
        let last = frames.len().saturating_sub(1);
        for (i, ((frame, header), len)) in
            frames.iter().zip(&mut h.bytes).zip(&mut h.lens).enumerate()
        {
            let mut room = &mut header[..];
            encode_header(
                &mut room,
                frame.len(),
                if i < last { flags::MORE } else { 0 },
            );
            *len = MAX_HEADER_LEN - room.len();
            total += *len + frame.len();
        }
        (h, total)
    }

    /// Each frame's header, in order.
    fn iter(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.bytes
            .iter()
            .zip(self.lens)
            .take(self.count)
            .map(|(h, len)| h.get(..len).unwrap_or_default())
    }
}

/// Copies `parts`, in order, into the two halves of a ring's chunk, which are together exactly as
/// long as they are.
fn fill<'a>(
    (mut first, mut second): (&mut [MaybeUninit<u8>], &mut [MaybeUninit<u8>]),
    parts: impl Iterator<Item = &'a [u8]>,
) {
    for part in parts {
        let n = part.len().min(first.len());
        let (now, rest) = part.split_at(n);
        let (dst, left) = std::mem::take(&mut first).split_at_mut(n);
        now.copy_to_uninit(dst);
        first = left;
        if !rest.is_empty() {
            let (dst, left) = std::mem::take(&mut second).split_at_mut(rest.len());
            rest.copy_to_uninit(dst);
            second = left;
        }
    }
}

impl Inner {
    /// Whether a small message is to be written alone at `now`: `isolated` says so (it sees every
    /// such message, to note when it came), the write side was not reopened just before, and in
    /// stream mode the last batch went a while ago (the stream paused).
    fn isolated(&self, now: Instant, isolated: impl FnOnce(Instant) -> bool) -> bool {
        let since = |t: Option<Instant>| t.is_none_or(|t| now.duration_since(t) >= REOPENED);
        isolated(now) && since(self.opened_at) && (!self.stream || since(self.last_write))
    }

    /// [`Inner::write_batch`] by the socket's thread, noted for stream mode: returns whether the I/O
    /// thread must be woken, and when the write ended.
    fn write_own_batch(&mut self) -> (bool, Instant) {
        let left = self.write_batch();
        let now = Instant::now();
        self.last_write = Some(now);
        self.wrote_batch |= !left;
        self.batch_since = None;
        (left, now)
    }

    /// Writes what the lease's ring and then the codec hold (the I/O thread being idle, under the
    /// lock); what the kernel does not take stays in `leftover`. Returns whether the I/O thread must
    /// be woken (something is left for it).
    fn write_batch(&mut self) -> bool {
        if !self.codec.as_ref().is_some_and(Connection::wants_write) {
            return self.write_ring();
        }
        let mut batch = std::mem::take(&mut self.spare);
        self.take_ring(&mut batch);
        let Some(codec) = self.codec.as_mut() else {
            return false;
        };
        codec.poll_transmit(&mut batch);
        let mut iov = [EMPTY_IOV; 64];
        // The I/O thread sets `fd` to -1 under the gate's lock, which we hold, before it closes the
        // stream.
        match taken(send_batch(self.fd, &batch, &mut iov)) {
            Some(n) => batch.advance(n),
            // The stream is failing: the I/O thread will find it so and close it.
            None => batch.clear(),
        }
        let left = !batch.is_empty();
        if left {
            self.leftover.append(&mut batch);
            self.writer_idle = false;
        }
        batch.clear();
        self.spare = batch;
        left
    }

    /// Writes one message to the stream now (the gate is open, under its lock); what the kernel does
    /// not take stays in `leftover` and closes the gate.
    fn write_now(
        &mut self,
        frames: &[&[u8]],
        owned: impl FnOnce(&[usize]) -> Vec<Bytes>,
    ) -> Direct {
        let (headers, total) = Headers::new(frames);
        let headers = headers.iter();
        if total <= SMALL_WRITE {
            // One buffer and send(2): no vector of buffers for the kernel to copy in and check.
            let mut buf = [0u8; SMALL_WRITE];
            let mut room = &mut buf[..];
            for (header, frame) in headers.zip(frames) {
                room.put_slice(header);
                room.put_slice(frame);
            }
            // SAFETY: `self.fd` is the stream's open descriptor (the I/O thread sets it to -1 under
            // the gate's lock, which we hold, before it closes the stream); `buf` holds `total`
            // initialised bytes and outlives the call; MSG_DONTWAIT makes it never block,
            // MSG_NOSIGNAL never raise SIGPIPE.
            let sent = unsafe {
                sys_send(
                    self.fd,
                    buf.as_ptr().cast(),
                    total,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            let written = match taken(sent) {
                Some(n) if n < total => n,
                _ => return Direct::Written,
            };
            self.leftover
                .push_bytes(buf.get(written..total).unwrap_or_default());
            self.open = false;
            return Direct::Partial;
        }
        let mut iov = [EMPTY_IOV; 2 * DIRECT_FRAMES];
        for ((header, frame), pair) in headers.clone().zip(frames).zip(iov.chunks_exact_mut(2)) {
            pair[0] = libc::iovec {
                iov_base: header.as_ptr().cast_mut().cast(),
                iov_len: header.len(),
            };
            pair[1] = libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            };
        }
        // SAFETY: `msghdr` is plain data; every field is set below before use.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 2 * frames.len();
        // SAFETY: `self.fd` is the stream's open descriptor (the I/O thread sets it to -1 under the
        // gate's lock, which we hold, before it closes the stream); the iovecs point into `headers`
        // and `frames`, which outlive the call; MSG_DONTWAIT makes it never block, MSG_NOSIGNAL
        // never raise SIGPIPE.
        let sent = unsafe { sys_sendmsg(self.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        let written = match taken(sent) {
            Some(n) if n < total => n,
            _ => return Direct::Written,
        };
        // Keep what the kernel did not take, in order, for the I/O thread: how much of each header
        // and each frame it took, then the rests.
        let mut skip = written;
        let mut header_taken = [0usize; DIRECT_FRAMES];
        let mut frame_taken = [0usize; DIRECT_FRAMES];
        for (((h, frame), ht), ft) in headers
            .clone()
            .zip(frames)
            .zip(&mut header_taken)
            .zip(&mut frame_taken)
        {
            *ht = skip.min(h.len());
            skip -= *ht;
            *ft = skip.min(frame.len());
            skip -= *ft;
        }
        let rests = owned(frame_taken.get(..frames.len()).unwrap_or_default());
        for ((h, n), rest) in headers.zip(header_taken).zip(rests) {
            self.leftover.push_bytes(h.get(n..).unwrap_or_default());
            self.leftover.push_shared(rest);
        }
        self.open = false;
        Direct::Partial
    }
}

/// What a direct write's system call came to: `Some(bytes taken)` (0 when the kernel took nothing
/// this time, and the I/O thread writes it all), or `None` when the stream is failing: the I/O thread
/// will see it and close it, and the message is lost with the stream, as bytes written into a dying
/// connection are.
/// An unused iovec, to fill arrays of them with.
pub(crate) const EMPTY_IOV: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

/// One non-blocking `sendmsg(2)` of what `batch` holds, at most `iov.len()` of its chunks (`iov` is
/// the room for their iovecs); returns what `sendmsg` returned. `fd` must be an open stream.
pub(crate) fn send_batch(fd: RawFd, batch: &Transmit, iov: &mut [libc::iovec]) -> isize {
    let mut n = 0;
    for (slot, chunk) in iov.iter_mut().zip(batch.chunks()) {
        *slot = libc::iovec {
            iov_base: chunk.as_ptr().cast_mut().cast(),
            iov_len: chunk.len(),
        };
        n += 1;
    }
    // SAFETY: `msghdr` is plain data; the fields used are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n;
    // SAFETY: the caller gives an open stream; the first `n` iovecs point into `batch`, which
    // outlives the call; MSG_DONTWAIT makes it never block, MSG_NOSIGNAL never raise SIGPIPE.
    unsafe { sys_sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) }
}

// The system calls of the socket's thread on its stream, made bare: glibc's `send`, `sendmsg` and
// `recv` are thread-cancellation points, which costs two atomic operations around every call in a
// process with threads (0.5 % of a REQ/REP round trip on one core here), and no Rust thread is
// ever cancelled. Each returns what the call returned (`-1` with `errno` set on failure).

/// `send(2)`.
///
/// # Safety
///
/// `buf` must be valid for reads of `len` octets for the duration of the call.
unsafe fn sys_send(fd: RawFd, buf: *const libc::c_void, len: usize, flags: libc::c_int) -> isize {
    let none = std::ptr::null::<libc::sockaddr>();
    // SAFETY: sendto(2) with no address is send(2); the caller vouches for `buf`.
    let r = unsafe { libc::syscall(libc::SYS_sendto, fd, buf, len, flags, none, 0) };
    r as isize
}

/// `sendmsg(2)`.
///
/// # Safety
///
/// `msg` must be a valid `msghdr` whose buffers are valid for reads during the call.
unsafe fn sys_sendmsg(fd: RawFd, msg: *const libc::msghdr, flags: libc::c_int) -> isize {
    // SAFETY: the caller vouches for `msg` and what it points to.
    let r = unsafe { libc::syscall(libc::SYS_sendmsg, fd, msg, flags) };
    r as isize
}

/// `recv(2)`.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` octets for the duration of the call.
unsafe fn sys_recv(fd: RawFd, buf: *mut libc::c_void, len: usize, flags: libc::c_int) -> isize {
    let none = std::ptr::null_mut::<libc::sockaddr>();
    let no_len = std::ptr::null_mut::<libc::socklen_t>();
    // SAFETY: recvfrom(2) with no address is recv(2); the caller vouches for `buf`.
    let r = unsafe { libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, none, no_len) };
    r as isize
}

fn taken(sent: isize) -> Option<usize> {
    match usize::try_from(sent) {
        Ok(n) => Some(n),
        Err(_) => match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR | libc::ENOBUFS | libc::ENOMEM) => Some(0),
            _ => None,
        },
    }
}

impl Inner {
    /// Octets the lease's ring holds for the current stream (0 when it holds only a closed stream's,
    /// which nobody writes).
    pub(crate) fn ring_len(&self) -> usize {
        match &self.ring {
            Some(rx) if self.ring_gen != 0 && self.ring_gen == self.generation => rx.slots(),
            _ => 0,
        }
    }

    /// Whether a lease is out that its holder may still append to (not handed back, not dropped).
    fn lease_live(&self) -> bool {
        self.lease_out && self.ring.as_ref().is_some_and(|rx| !rx.is_abandoned())
    }

    /// Grants `lease` (the socket's thread, having written a batch itself in stream mode) if nothing
    /// waits for the stream that its bytes could pass: made with its ring the first time; what the
    /// ring still holds of a closed stream is dropped.
    fn grant(&mut self, lease: &mut Option<Lease>) {
        let waiting = self.codec.as_ref().is_none_or(Connection::wants_write);
        if !self.stream || self.fd < 0 || self.lease_live() || waiting || !self.leftover.is_empty()
        {
            return;
        }
        let paired = match (lease.as_ref(), self.ring.as_ref()) {
            (Some(l), Some(rx)) => std::ptr::eq(l.tx.buffer(), rx.buffer()),
            _ => false,
        };
        if !paired {
            if self.ring_len() > 0 {
                // Bytes of this stream from a lease whose holder is gone: they go first.
                return;
            }
            let (tx, rx) = RingBuffer::new(LEASE_RING);
            self.ring = Some(rx);
            *lease = Some(Lease {
                tx,
                generation: 0,
                unflushed: 0,
            });
        }
        let Some(l) = lease.as_mut() else {
            return;
        };
        if self.ring_gen != self.generation {
            // A closed stream's bytes (appended before its holder saw the end): never written.
            if let Some(rx) = self.ring.as_mut() {
                let n = rx.slots();
                if let Ok(chunk) = rx.read_chunk(n) {
                    chunk.commit_all();
                    self.ring_taken += n as u64;
                }
            }
            self.ring_gen = self.generation;
        }
        self.lease_out = true;
        self.revoked_look = STREAM_TAIL;
        l.generation = self.generation;
        l.unflushed = 0;
        self.grant.store(self.generation, Ordering::Release);
    }

    /// Moves what the lease's ring holds for the stream into `out` (a copy): whoever writes the
    /// stream writes it before what the codec holds. Returns how many octets.
    pub(crate) fn take_ring(&mut self, out: &mut Transmit) -> usize {
        let n = self.ring_len();
        let Some(rx) = self.ring.as_mut().filter(|_| n > 0) else {
            return 0;
        };
        let Ok(chunk) = rx.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        out.push_bytes(a);
        out.push_bytes(b);
        chunk.commit_all();
        self.ring_taken += n as u64;
        n
    }

    /// Writes what the lease's ring holds straight from it (the I/O thread having no write under
    /// way, under the lock); what the kernel does not take stays in the ring, for the I/O thread.
    /// Returns whether the I/O thread must be woken for it.
    fn write_ring(&mut self) -> bool {
        let n = self.ring_len();
        let fd = self.fd;
        let Some(rx) = self.ring.as_mut().filter(|_| n > 0 && fd >= 0) else {
            return false;
        };
        let Ok(chunk) = rx.read_chunk(n) else {
            return false;
        };
        let (a, b) = chunk.as_slices();
        let iov = [a, b].map(|part| libc::iovec {
            iov_base: part.as_ptr().cast_mut().cast(),
            iov_len: part.len(),
        });
        // SAFETY: `msghdr` is plain data; the fields used are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = if b.is_empty() { 1 } else { 2 };
        // SAFETY: `fd` is the stream's open descriptor (the I/O thread sets it to -1 under the
        // gate's lock, which we hold, before it closes the stream); the iovecs point into the
        // ring's chunk, which is borrowed until the commit below; MSG_DONTWAIT makes it never
        // block, MSG_NOSIGNAL never raise SIGPIPE.
        let sent = unsafe { sys_sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        // A failing stream: the I/O thread will find it so and close it; its bytes go with it.
        let written = taken(sent).unwrap_or(n).min(n);
        chunk.commit(written);
        self.ring_taken += written as u64;
        let left = written < n;
        if left {
            self.writer_idle = false;
        }
        self.last_write = Some(Instant::now());
        self.wrote_batch |= !left;
        left
    }

    /// Whether the stream has nothing to write: no lease out, nothing in its ring, nothing batched.
    pub(crate) fn nothing_to_write(&self) -> bool {
        !self.lease_live()
            && self.ring_len() == 0
            && !self.codec.as_ref().is_some_and(Connection::wants_write)
    }

    /// Revokes the lease: its holder hands it back at its next send.
    fn revoke(&mut self) {
        self.grant.store(0, Ordering::Release);
    }

    /// A new stream on `fd`: the I/O thread reads it; nothing may be written directly yet.
    pub(crate) fn start(&mut self, fd: RawFd) {
        self.fd = fd;
        self.generation = self.generation.wrapping_add(1).max(1);
        self.ring_gen = 0;
        self.lease_out = false;
        self.open = false;
        self.writer_idle = false;
        self.leave_stream();
        self.leftover.clear();
        self.reader = Reader::Engine;
        self.failure = None;
    }

    /// The stream is closing: nobody touches it any more (what a lease's ring holds of it is
    /// dropped at the next grant).
    pub(crate) fn shut(&mut self) {
        self.ring_gen = 0;
        self.lease_out = false;
        self.revoke();
        self.fd = -1;
        self.open = false;
        self.writer_idle = false;
        self.leave_stream();
        self.leftover.clear();
        self.reader = Reader::Engine;
        self.session.on_close();
    }

    /// Closes the write side and takes what a direct write left over (the I/O thread, before it
    /// writes).
    pub(crate) fn close_writes(&mut self) -> Transmit {
        self.open = false;
        if !self.leftover.is_empty() {
            // The I/O thread holds bytes to write now: nothing may pass them.
            self.writer_idle = false;
        }
        std::mem::take(&mut self.leftover)
    }

    /// When the I/O thread is to look at a stream-mode batch ([`Inner::look_at_stream`]).
    pub(crate) fn stream_look(&self) -> Option<Instant> {
        self.stream_look
    }

    /// The I/O thread's look at a stream-mode connection, due at `now`: returns whether to write what
    /// the codec holds now (it waited [`STREAM_TAIL`]). Stream mode ends when, [`STREAM_IDLE_LOOKS`]
    /// looks in a row, the socket's thread neither wrote a batch itself since the last look nor
    /// filled [`STREAM_MIN`] octets.
    ///
    /// A lease's ring is written when bytes in it were there at the last look already (they waited
    /// at least a look's interval). After stream mode ended, the looks go on, further and further
    /// apart, until the lease is handed back and its ring is empty.
    pub(crate) fn look_at_stream(&mut self, now: Instant) -> bool {
        let pending = self.codec.as_ref().is_some_and(Connection::wants_write);
        let ring = self.ring_len();
        let ring_due = ring > 0 && self.ring_taken < self.ring_mark;
        self.ring_mark = self.ring_taken + ring as u64;
        if !self.stream {
            self.stream_look = if self.lease_live() || ring > 0 {
                self.revoked_look = (self.revoked_look * 2).min(REVOKED_LOOK_MAX);
                Some(now + self.revoked_look)
            } else {
                None
            };
            return pending || ring > 0;
        }
        if let Some(since) = self.batch_since.filter(|_| pending) {
            if since + STREAM_TAIL > now {
                self.stream_look = Some(since + STREAM_TAIL);
                return ring_due;
            }
        }
        // No batch waits, or one waited long enough: the stream goes on while the socket's thread
        // writes batches itself or fills large ones.
        let wrote = std::mem::take(&mut self.wrote_batch);
        let filled = self.codec.as_ref().map_or(0, Connection::pending) + ring >= STREAM_MIN;
        self.idle_looks = if wrote || filled {
            0
        } else {
            self.idle_looks.saturating_add(1)
        };
        if self.idle_looks >= STREAM_IDLE_LOOKS {
            self.leave_stream();
        }
        // After stream mode, a lease not handed back or its ring's bytes are still looked at.
        let look = self.stream || self.lease_live() || ring > 0;
        self.stream_look = look.then(|| now + STREAM_TAIL);
        pending || ring_due
    }

    /// Begins stream mode at `now`: new batches wake nobody, and the I/O thread looks in
    /// [`STREAM_TAIL`].
    fn enter_stream(&mut self, now: Instant) {
        self.stream = true;
        self.stream_look = Some(now + STREAM_TAIL);
    }

    /// Ends stream mode: new batches wake the I/O thread again, and the lease is revoked.
    fn leave_stream(&mut self) {
        self.revoke();
        self.revoked_look = STREAM_TAIL;
        self.stream = false;
        self.idle_looks = 0;
        self.stream_look = None;
        self.batch_since = None;
    }

    /// Notes that the I/O thread took `len` octets, what the codec held (no batch waits any more): as
    /// many as [`STREAM_MIN`] gathered before it could take them come from a fast stream, which
    /// stream mode then leaves to the socket's thread.
    pub(crate) fn batch_taken(&mut self, len: usize) {
        self.batch_since = None;
        if len == 0 {
            return;
        }
        let now = Instant::now();
        self.last_write = Some(now);
        if len >= STREAM_MIN && !self.stream {
            self.enter_stream(now);
        }
    }

    /// Says whether the I/O thread has a write under way or bytes of its own to write (it sets this
    /// in the same locked section in which it takes bytes to write, and when its writes are done).
    pub(crate) fn set_writer_idle(&mut self, idle: bool) {
        self.writer_idle = idle;
    }

    /// Opens the write side (the I/O thread, when it is idle).
    pub(crate) fn open_writes(&mut self) {
        let ring_idle = !self.lease_live() && self.ring_len() == 0;
        if self.fd >= 0 && self.leftover.is_empty() && ring_idle && !self.open {
            self.open = true;
            // After a batch was written (not when the stream first opens).
            if self.last_write.is_some() {
                self.opened_at = Some(Instant::now());
            }
        }
    }

    /// Whether the I/O thread reads the stream (no lease is out).
    pub(crate) fn engine_reads(&self) -> bool {
        self.reader == Reader::Engine
    }

    /// Takes back a lease found unused [`LEASE_IDLE`] ago and since; says whether it did. A lease
    /// found unused for the first time is noted as such at `now`.
    pub(crate) fn reclaim(&mut self, now: Instant) -> bool {
        let Reader::App {
            waiting: false,
            seen,
        } = &mut self.reader
        else {
            return false;
        };
        let since = *seen.get_or_insert(now);
        let idle = now.saturating_duration_since(since) >= LEASE_IDLE;
        if idle {
            self.reader = Reader::Engine;
        }
        idle
    }

    /// When the I/O thread must next look at the lease, if one is out.
    pub(crate) fn lease_deadline(&self, now: Instant) -> Option<Instant> {
        match self.reader {
            Reader::Engine => None,
            Reader::App {
                waiting: false,
                seen: Some(seen),
            } => Some(seen + LEASE_IDLE),
            // Waiting, or not yet found unused: looked at again later.
            Reader::App { .. } => Some(now + LEASE_CHECK),
        }
    }

    /// Reads what the kernel has (without blocking) and runs it through the codec to the session.
    /// One-frame messages go to `take`, if given, while the order allows (see [`Inner::input`]).
    pub(crate) fn pump(
        &mut self,
        fd: RawFd,
        now: impl Clock,
        take: Take<'_>,
    ) -> Result<Pumped, Failure> {
        if let Some(pumped) = self.pump_body(fd, now)? {
            return Ok(pumped);
        }
        match self.read(fd)? {
            Some((data, full)) => self.input(&data, now, take).map(|()| Pumped::Data { full }),
            None => Ok(Pumped::Empty),
        }
    }

    /// Reads what the kernel has, without blocking: bytes, and whether they filled the room offered.
    fn read(&mut self, fd: RawFd) -> Result<Option<(Bytes, bool)>, Failure> {
        receive(&mut self.buf, fd, libc::MSG_DONTWAIT)
    }

    /// Reads the rest of a long frame body straight into the codec's buffer for it, so that a large
    /// message is copied once from the kernel, not into a read buffer first and then again. `None`
    /// when no such body is being assembled.
    fn pump_body(&mut self, fd: RawFd, now: impl Clock) -> Result<Option<Pumped>, Failure> {
        let Some(codec) = self.codec.as_mut() else {
            return Ok(None);
        };
        let mut got = Ok((0, 0));
        let mut refused = false;
        let fill = |buf: &mut Vec<u8>, room: usize| {
            let spare = buf.spare_capacity_mut();
            let offered = room.min(spare.len());
            let spare = &mut spare[..offered];
            got = recv_spare(fd, spare, libc::MSG_DONTWAIT).map(|n| {
                // SAFETY: the kernel initialised `n` (at most `offered`) bytes after the length.
                unsafe { buf.set_len(buf.len() + n) };
                (n, offered)
            });
        };
        let Some(result) = codec.fill_body(
            DIRECT_BODY,
            now,
            fill,
            to_session(&mut self.session, &mut refused, None, &mut false),
        ) else {
            return Ok(None);
        };
        result.map_err(Failure::Protocol)?;
        if refused {
            return Err(Failure::Refused);
        }
        match got {
            Ok((0, _)) => Err(Failure::Eof),
            Ok((n, offered)) => Ok(Some(Pumped::Data { full: n == offered })),
            Err(e) => would_block(e).map(|()| Some(Pumped::Empty)),
        }
    }

    /// Runs the codec over `data`, handing what arrives to the session; or, if `take` is given and
    /// the session is [drained](Session::drained), one-frame messages to `take` until something
    /// else comes (a frame with more to follow, a command's event), from which on everything goes
    /// to the session, in order.
    pub(crate) fn input(
        &mut self,
        data: &Bytes,
        now: impl Clock,
        take: Take<'_>,
    ) -> Result<(), Failure> {
        let Some(codec) = self.codec.as_mut() else {
            return Ok(());
        };
        let mut refused = false;
        let mut held = false;
        let take = take.filter(|_| self.session.drained());
        let handled = codec.handle_input_with(
            data,
            now,
            to_session(&mut self.session, &mut refused, take, &mut held),
        );
        // A delimiter whose body is still to come goes to the session, which the body follows.
        release(&mut self.session, &mut held);
        handled.map_err(Failure::Protocol)?;
        if refused {
            return Err(Failure::Refused);
        }
        Ok(())
    }
}

/// Hands the codec's events to the session; a refused peer (`on_ready` said no) sets `refused`, and
/// nothing after it is delivered. The messages of `take`'s shape go to it instead, until anything
/// else comes. The empty delimiter of a delimited message is held (`held`) until its body shows
/// that it is one; the caller hands a delimiter still held at the end of the input to the session
/// ([`release`]).
fn to_session<'a, 'f: 'a>(
    session: &'a mut Box<dyn Session>,
    refused: &'a mut bool,
    mut take: Option<Taker<'f>>,
    held: &'a mut bool,
) -> impl FnMut(EventRef<'_>) + use<'a, 'f> {
    move |event| {
        if *refused {
            return;
        }
        if let (EventRef::Frame(view), Some(taker)) = (&event, take.as_mut()) {
            match (taker.delimited, *held, view.more()) {
                (false, _, false) | (true, true, false) => {
                    *held = false;
                    if let EventRef::Frame(view) = event {
                        (taker.keep)(view);
                    }
                    return;
                }
                (true, false, true) if view.body().is_empty() => {
                    *held = true;
                    return;
                }
                _ => {}
            }
        }
        take = None;
        release(session, held);
        match event {
            EventRef::Ready(peer) => *refused = !session.on_ready(&peer),
            other => session.on_event(other),
        }
    }
}

/// Hands the session the empty delimiter [`to_session`] held, if it holds one.
fn release(session: &mut Box<dyn Session>, held: &mut bool) {
    if std::mem::take(held) {
        session.on_event(EventRef::Frame(FrameView::owned(Frame {
            body: Bytes::new(),
            flags: flags::MORE,
        })));
    }
}

/// One `recv` (with `flags`) into what is left of `buf`, or a fresh buffer when little is left: the
/// bytes and whether they filled the room offered; `None` if there were none to read (or the wait
/// for them timed out).
fn receive(
    buf: &mut BytesMut,
    fd: RawFd,
    flags: libc::c_int,
) -> Result<Option<(Bytes, bool)>, Failure> {
    // Once nothing refers to what was read before, the next read goes to the buffer's start again:
    // memory the last reads warmed, not the next cold part of it.
    if buf.is_empty() {
        // Reclaimed or not, the check below gives the read its room.
        let _ = buf.try_reclaim(READ_BUFFER);
    }
    if buf.capacity() - buf.len() < READ_MIN {
        *buf = BytesMut::with_capacity(READ_BUFFER);
    }
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    match recv_spare(fd, spare, flags) {
        Ok(0) => Err(Failure::Eof),
        Ok(n) => {
            // SAFETY: the kernel initialised `n` (at most `room`) bytes after the current length.
            unsafe { buf.set_len(buf.len() + n) };
            Ok(Some((buf.split().freeze(), n == room)))
        }
        Err(e) => would_block(e).map(|()| None),
    }
}

/// One `recv` into `spare` with `flags`; the count of bytes the kernel wrote at its front.
fn recv_spare(
    fd: RawFd,
    spare: &mut [std::mem::MaybeUninit<u8>],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `spare.len()` bytes into memory we borrow mutably; nothing
    // else touches it during the call.
    let n = unsafe { sys_recv(fd, spare.as_mut_ptr().cast(), spare.len(), flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `Ok` for a read that found nothing now (would block, interrupted), else the stream's failure.
fn would_block(e: io::Error) -> Result<(), Failure> {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
        _ => Err(Failure::Io(e)),
    }
}

/// What a read on the socket's thread comes to, under the gate's lock: [`Step::Delivered`] (with
/// whether the read filled its buffer), [`Step::Empty`], or [`Step::Lost`] when the stream ended or
/// broke (the I/O thread, woken, closes it and says why).
fn settle(g: &mut Inner, waker: &Waker, pumped: Result<Pumped, Failure>) -> (Step, bool) {
    match pumped {
        Ok(Pumped::Data { full }) => {
            if g.codec.as_ref().is_some_and(Connection::wants_write) {
                // A PONG to send (or the like): the I/O thread writes it.
                waker.wake();
            }
            (Step::Delivered, full)
        }
        Ok(Pumped::Empty) => (Step::Empty, false),
        Err(failure) => {
            g.failure = Some(failure);
            g.reader = Reader::Engine;
            waker.wake();
            (Step::Lost, false)
        }
    }
}

/// After a read or a wait of the read lease that handed input to the session (under the gate's
/// lock, `g`): the socket's receive is about to return with it, so the lease is unused from now
/// on, as [`DirectReader::leave`] would say; returns whether it is. Leave then has nothing to say
/// (no lock more per receive); a receive that goes on to wait says that it waits again first.
fn delivered(g: &mut Inner, step: Step) -> bool {
    let delivered = step == Step::Delivered;
    if delivered {
        g.reader = Reader::App {
            waiting: false,
            seen: None,
        };
    }
    delivered
}

/// What [`DirectReader::read`] or [`DirectReader::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Input was handed to the session (messages may now be in the socket's queue).
    Delivered,
    /// Nothing to read now (or the wait ended without input: woken, or timed out).
    Empty,
    /// The stream is readable: call [`DirectReader::read`].
    Readable,
    /// The lease is gone (taken back, or the stream ended): drop the reader.
    Lost,
}

/// The read lease on one stream, held by its socket's thread (see the module's documentation).
/// Dropping it gives the stream back to the I/O thread.
pub struct DirectReader {
    gate: Arc<Gate>,
    /// Our own descriptor for the stream, so that the I/O thread closing its own never leaves us
    /// polling a number that names something else.
    fd: OwnedFd,
    generation: u64,
    /// The last read filled its buffer: read again before polling.
    more: bool,
    /// Whether we said we are waiting since we last said we left.
    entered: bool,
    /// How the stream's blocking receives end: `Some(true)` after [`BLOCK_FIRST`], `Some(false)`
    /// only with input, `None` not set (or the system refused).
    timed: Option<bool>,
    /// Whether the peer's input was last seen processed on our CPU (a peer on our core).
    same_cpu: bool,
    /// Waits since the peer's CPU was last looked at (once in [`PEER_CPU_EVERY`]).
    cpu_looks: u32,
    /// No wait since the socket's receive began: the next one starts in the stream's receive.
    fresh: bool,
}

impl std::fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReader")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl DirectReader {
    /// Takes the read lease on `gate`'s stream, if it is up and past its handshake.
    pub fn acquire(gate: &Arc<Gate>) -> Option<DirectReader> {
        let mut g = gate.lock();
        let ready = g.codec.as_ref().is_some_and(Connection::is_ready);
        if g.fd < 0 || !ready || g.failure.is_some() {
            return None;
        }
        // SAFETY: `g.fd` is the open stream (the I/O thread marks it -1 under this lock before it
        // closes it); F_DUPFD_CLOEXEC takes no pointers and the result is checked.
        let dup = unsafe { libc::fcntl(g.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return None;
        }
        // SAFETY: `dup` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(dup) };
        g.reader = Reader::App {
            waiting: true,
            seen: None,
        };
        let generation = g.generation;
        drop(g);
        // The I/O thread learns that a lease is out (it looks at it from time to time).
        gate.waker.wake();
        Some(DirectReader {
            gate: gate.clone(),
            fd,
            generation,
            more: false,
            entered: true,
            timed: None,
            same_cpu: false,
            cpu_looks: 0,
            fresh: true,
        })
    }

    /// Whether this lease is on `gate`.
    pub fn is_for(&self, gate: &Arc<Gate>) -> bool {
        Arc::ptr_eq(&self.gate, gate)
    }

    /// Whether the last read filled its buffer (read again before waiting).
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// The gate, locked, if the lease still holds; marks us waiting. The caller sets `entered`
    /// first (so that [`DirectReader::leave`] says when we stop); the guard borrows only the gate,
    /// so the gate's waker serves under it without a clone.
    fn enter(&self) -> Option<MutexGuard<'_, Inner>> {
        let mut g = self.gate.lock();
        if g.generation != self.generation || g.fd < 0 {
            return None;
        }
        if !matches!(g.reader, Reader::App { .. }) {
            return None;
        }
        g.reader = Reader::App {
            waiting: true,
            seen: None,
        };
        Some(g)
    }

    /// Reads what the stream has, without blocking, and hands it to the session; or, with `take`,
    /// the one-frame messages to `take` while nothing from the peer is queued for the socket or held
    /// by the session (the socket then has them first, and order is kept).
    pub fn read(&mut self, take: Take<'_>) -> Step {
        let fd = self.fd.as_raw_fd();
        self.entered = true;
        let Some(mut g) = self.enter() else {
            return Step::Lost;
        };
        if !g.session.accepting() {
            // What the socket's queue had no room for went in first; it is full again.
            drop(g);
            self.more = true;
            return Step::Delivered;
        }
        let pumped = g.pump(fd, SystemClock, take);
        let (step, more) = settle(&mut g, &self.gate.waker, pumped);
        let left = delivered(&mut g, step);
        drop(g);
        self.entered &= !left;
        self.more = more;
        step
    }

    /// Waits until the stream is readable, `wake` is woken (it is drained then), or `deadline`
    /// passes. Returns [`Step::Readable`], [`Step::Empty`] or [`Step::Lost`], or
    /// [`Step::Delivered`] when the wait read input itself.
    ///
    /// The first wait of a receive starts in the stream's own blocking receive, for at most
    /// `BLOCK_FIRST` (1 ms), and only then polls the stream and `wake`. A thread asleep in `recv(2)` is woken sooner than one asleep
    /// in `poll(2)`, and a sleep bounded by a near timer lets the kernel keep its tick, which it must
    /// otherwise start again on the wake-up (docs/PERFORMANCE.md: 4-9 us a hop on this machine's
    /// Unix sockets). What `wake` announces meanwhile (control mail, such as a second peer) waits
    /// at most that long.
    ///
    /// What that receive reads goes to `take` as with [`DirectReader::read`].
    ///
    /// `running` is called when that receive returns with input (or the stream's end), before the
    /// input goes to the session: the socket stops saying that it waits, so that the messages it
    /// hands itself do not write `wake`.
    ///
    /// `alone`: nothing but this stream can bring the socket anything (no peer can come: it bound
    /// nothing, and every connection it made has its pipe). Then, with no deadline and the peer on
    /// our CPU, the receive is not bounded: no timer is armed and disarmed per wait (4 % of a
    /// round trip on one core here), and with both on one core the tick it would keep is kept
    /// anyway (the CPU never idles while we wait: the peer runs). What would end the wait early
    /// (a new peer's pipe) cannot come, and a stream that breaks or is shut ends it.
    pub fn wait(
        &mut self,
        wake: &EventFd,
        deadline: Option<Instant>,
        running: impl FnOnce(),
        take: Take<'_>,
        alone: bool,
    ) -> Step {
        let fd = self.fd.as_raw_fd();
        let unbounded = alone && deadline.is_none() && self.peer_on_our_cpu(fd);
        let can_block = std::mem::take(&mut self.fresh)
            && deadline.is_none_or(|d| d > Instant::now() + BLOCK_FIRST)
            && self.bound_receive(fd, !unbounded);
        self.entered = true;
        let Some(mut g) = self.enter() else {
            return Step::Lost;
        };
        // What the socket's queue had no room for goes in now that it may have; a message moved
        // wakes the socket (through `wake`), so the poll below returns at once.
        let block = can_block && !g.session.backlogged();
        g.session.accepting();
        let mut buf = if block {
            std::mem::take(&mut g.buf)
        } else {
            BytesMut::new()
        };
        drop(g);
        if block {
            let got = receive(&mut buf, fd, 0);
            if !matches!(got, Ok(None)) {
                running();
            }
            let Some(mut g) = self.enter() else {
                return Step::Lost;
            };
            g.buf = buf;
            let pumped = match got {
                Ok(Some((data, full))) => g
                    .input(&data, SystemClock, take)
                    .map(|()| Pumped::Data { full }),
                Ok(None) => Ok(Pumped::Empty),
                Err(failure) => Err(failure),
            };
            let (step, more) = settle(&mut g, &self.gate.waker, pumped);
            let left = delivered(&mut g, step);
            drop(g);
            self.entered &= !left;
            self.more = more;
            if step != Step::Empty {
                return step;
            }
        }
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let n = crate::waker::poll_until(&mut fds, deadline);
        if n > 0 && fds[1].revents != 0 {
            wake.drain();
        }
        if n > 0 && fds[0].revents != 0 {
            Step::Readable
        } else {
            Step::Empty
        }
    }

    /// Makes a blocking receive on the stream return after [`BLOCK_FIRST`] (`bounded`), or only
    /// with input: a system call only when that changes. False if the system refused.
    fn bound_receive(&mut self, fd: RawFd, bounded: bool) -> bool {
        if self.timed != Some(bounded) {
            let micros = if bounded { BLOCK_FIRST.as_micros() } else { 0 };
            let limit = libc::timeval {
                tv_sec: 0,
                tv_usec: libc::suseconds_t::try_from(micros).unwrap_or(1000),
            };
            // SAFETY: `limit` is a valid `timeval` that outlives the call, whose size is passed.
            let set = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    std::ptr::from_ref(&limit).cast(),
                    libc::socklen_t::try_from(std::mem::size_of::<libc::timeval>()).unwrap_or(0),
                )
            };
            self.timed = (set == 0).then_some(bounded);
        }
        self.timed.is_some()
    }

    /// Whether the peer runs on our CPU, as far as the stream tells: the CPU that last processed
    /// its input (`SO_INCOMING_CPU`; over loopback, the sender's own) is ours. Looked at once in
    /// [`PEER_CPU_EVERY`] waits; never for a stream that does not say (a Unix socket).
    fn peer_on_our_cpu(&mut self, fd: RawFd) -> bool {
        if self.cpu_looks % PEER_CPU_EVERY == 0 {
            let mut cpu: libc::c_int = -1;
            let mut len =
                libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(0);
            // SAFETY: `cpu` and `len` are valid for writes and outlive the call; `len` says how
            // large `cpu` is.
            let got = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_INCOMING_CPU,
                    std::ptr::from_mut(&mut cpu).cast(),
                    &mut len,
                )
            };
            // SAFETY: takes no arguments.
            let ours = unsafe { libc::sched_getcpu() };
            self.same_cpu = got == 0 && cpu >= 0 && cpu == ours;
        }
        self.cpu_looks = self.cpu_looks.wrapping_add(1);
        self.same_cpu
    }

    /// The socket's receive returned: from now the I/O thread may take the lease back once it has
    /// found it unused for [`LEASE_IDLE`].
    pub fn leave(&mut self) {
        self.fresh = true;
        if !std::mem::take(&mut self.entered) {
            return;
        }
        let mut g = self.gate.lock();
        if g.generation == self.generation && g.reader != Reader::Engine {
            g.reader = Reader::App {
                waiting: false,
                seen: None,
            };
        }
    }
}

impl Drop for DirectReader {
    fn drop(&mut self) {
        let mut g = self.gate.lock();
        if g.generation == self.generation && g.reader != Reader::Engine {
            g.reader = Reader::Engine;
            drop(g);
            self.gate.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicBool;

    use zring_zmtp::{Config, PeerInfo};

    use super::*;

    /// A gate open for direct writes on one end of a socket pair with small buffers, and the other
    /// end.
    fn open_gate() -> (Gate, UnixStream, UnixStream) {
        let (gate, ours, theirs, _) = gate_with_buffers(4096);
        (gate, ours, theirs)
    }

    /// A gate open for direct writes on one end of a socket pair whose buffers are `buffers` octets,
    /// the other end, and the flag its waker sets (the I/O thread was woken).
    fn gate_with_buffers(buffers: libc::c_int) -> (Gate, UnixStream, UnixStream, Arc<AtomicBool>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let small: libc::c_int = buffers;
        for s in [&ours, &theirs] {
            for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
                // SAFETY: a valid option value of the size given, on our own socket.
                let set = unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_SOCKET,
                        option,
                        std::ptr::from_ref(&small).cast(),
                        libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap(),
                    )
                };
                assert_eq!(set, 0);
            }
        }
        let shared = Arc::new(crate::waker::Shared::new().unwrap());
        let woken = Arc::new(AtomicBool::new(false));
        let waker = Waker::new(shared, 0, woken.clone());
        let gate = Gate::new(Box::new(Record::default()), waker);
        {
            let mut g = gate.lock();
            g.start(ours.as_raw_fd());
            g.open_writes();
        }
        (gate, ours, theirs, woken)
    }

    /// A connection past its handshake (with a PULL peer run here), for the gate's batch.
    fn ready_codec() -> Connection {
        ready_pair().0
    }

    /// A PUSH and a PULL connection past their handshake with each other.
    fn ready_pair() -> (Connection, Connection) {
        use zring_zmtp::SocketType;
        let now = Instant::now();
        let mut push = Connection::new(Config::new(SocketType::Push), now).unwrap();
        let mut pull = Connection::new(Config::new(SocketType::Pull), now).unwrap();
        let pass = |from: &mut Connection, to: &mut Connection| {
            let mut out = Transmit::new();
            from.poll_transmit(&mut out);
            if !out.is_empty() {
                to.handle_input(Bytes::from(out.to_vec()), now).unwrap();
            }
        };
        for _ in 0..4 {
            pass(&mut push, &mut pull);
            pass(&mut pull, &mut push);
        }
        assert!(push.is_ready() && pull.is_ready());
        (push, pull)
    }

    /// Whether the I/O thread was woken since the last call.
    fn was_woken(woken: &AtomicBool) -> bool {
        woken.swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Sends a small message that is not to go alone (so it is batched).
    fn send_small(gate: &Gate) -> Direct {
        gate.try_write(
            &[&[7u8; 62]],
            |_: &[usize]| Vec::new(),
            || true,
            |_| false,
            &mut None,
        )
    }

    /// A gate whose sender filled a batch and wrote it itself, so that it is in stream mode; the two
    /// ends of its stream (its own, which must outlive it, and the other); the flag its waker sets.
    fn streaming_gate() -> (Gate, [UnixStream; 2], Arc<AtomicBool>) {
        let (gate, ours, theirs, woken) = gate_with_buffers(1 << 20);
        {
            let mut g = gate.lock();
            g.codec = Some(ready_codec());
            g.set_writer_idle(true);
        }
        // Not alone (`isolated` says no): batched, and the first of a batch wakes the I/O thread.
        assert_eq!(send_small(&gate), Direct::Batched);
        assert!(was_woken(&woken));
        assert!(!gate.lock().stream);
        // The sender fills a batch before the I/O thread takes any of it, and writes it itself:
        // stream mode, and the I/O thread is told once.
        while gate
            .lock()
            .codec
            .as_ref()
            .is_some_and(Connection::wants_write)
        {
            assert_eq!(send_small(&gate), Direct::Batched);
        }
        assert!(gate.lock().stream);
        assert!(was_woken(&woken));
        (gate, [ours, theirs], woken)
    }

    /// Frames the session got (body, more), shared with the test.
    type Got = Arc<Mutex<Vec<(Vec<u8>, bool)>>>;

    /// A session that records the frames it gets (most tests drive the gate's write side alone,
    /// and it takes nothing then), and holds a partial message until its last frame.
    #[derive(Default)]
    struct Record(Got);

    impl Session for Record {
        fn config(&self) -> Config {
            Config::new(zring_zmtp::SocketType::Pull)
        }
        fn on_ready(&mut self, _: &PeerInfo) -> bool {
            true
        }
        fn on_event(&mut self, event: EventRef<'_>) {
            if let EventRef::Frame(view) = event {
                let mut got = self.0.lock().unwrap();
                got.push((view.body().to_vec(), view.more()));
            }
        }
        fn accepting(&mut self) -> bool {
            true
        }
        fn drained(&self) -> bool {
            self.0.lock().unwrap().last().is_none_or(|(_, more)| !more)
        }
        fn fill(&mut self, _: &mut Connection) -> bool {
            false
        }
        fn on_disconnect(&mut self, _: crate::session::Disconnect<'_>) -> bool {
            false
        }
        fn finished(&mut self) -> bool {
            false
        }
    }

    #[test]
    fn a_delimited_take_keeps_delimiter_and_body_and_hands_anything_else_to_the_session() {
        let (mut push, pull) = ready_pair();
        let got = Got::default();
        let (waker_shared, woken) = (
            Arc::new(crate::waker::Shared::new().unwrap()),
            Arc::new(AtomicBool::new(false)),
        );
        let gate = Gate::new(
            Box::new(Record(got.clone())),
            Waker::new(waker_shared, 0, woken),
        );
        gate.lock().codec = Some(pull);
        let mut wire = |frames: &[(&[u8], bool)]| {
            for (body, more) in frames {
                push.send_frame_copy(body, *more).unwrap();
            }
            let mut out = Transmit::new();
            push.poll_transmit(&mut out);
            Bytes::from(out.to_vec())
        };
        let mut kept = Vec::new();
        let input = |data: &Bytes, kept: &mut Vec<Vec<u8>>| {
            let mut keep = |view: FrameView<'_>| kept.push(view.body().to_vec());
            let take = Some(Taker {
                keep: &mut keep,
                delimited: true,
            });
            gate.lock().input(data, Instant::now(), take).unwrap();
        };
        let frames = |got: &Got| std::mem::take(&mut *got.lock().unwrap());
        // A delimiter and a body, twice: both bodies kept, nothing for the session.
        input(
            &wire(&[(b"", true), (b"a", false), (b"", true), (b"b", false)]),
            &mut kept,
        );
        assert_eq!(kept, [b"a".to_vec(), b"b".to_vec()]);
        assert!(frames(&got).is_empty());
        // A delimiter at the end of one read: the session gets it, and then its body, in order.
        let split = wire(&[(b"", true), (b"c", false)]);
        input(&split.slice(..2), &mut kept);
        input(&split.slice(2..), &mut kept);
        assert_eq!(frames(&got), [(b"".to_vec(), true), (b"c".to_vec(), false)]);
        // Reads whose first message is not of the shape (a delimiter with two frames behind it; no
        // delimiter): all for the session, in order, the messages of the shape after them too.
        let not_first: [&[(&[u8], bool)]; 2] = [
            &[
                (b"", true),
                (b"d", true),
                (b"e", false),
                (b"f", false),
                (b"", true),
                (b"g", false),
            ],
            &[(b"h", false), (b"", true), (b"i", false)],
        ];
        for read in not_first {
            input(&wire(read), &mut kept);
            assert_eq!(kept.len(), 2);
            let owned: Vec<(Vec<u8>, bool)> = read.iter().map(|&(b, m)| (b.to_vec(), m)).collect();
            assert_eq!(frames(&got), owned);
        }
    }

    #[test]
    fn a_read_that_delivers_leaves_the_lease_unused_without_a_leave_or_a_clock_read() {
        let (gate, _ours, mut theirs, _) = gate_with_buffers(1 << 16);
        let (mut push, pull) = ready_pair();
        gate.lock().codec = Some(pull);
        let gate = Arc::new(gate);
        let mut reader = DirectReader::acquire(&gate).unwrap();
        let later = |t: Instant| t + LEASE_IDLE;
        // A reader that has not come back from its receive is never taken back.
        let now = Instant::now();
        assert!(!gate.lock().reclaim(now));
        assert!(!gate.lock().reclaim(later(now)));
        push.send_frame_copy(b"hello", false).unwrap();
        let mut out = Transmit::new();
        push.poll_transmit(&mut out);
        theirs.write_all(&out.to_vec()).unwrap();
        // The frame is in the stream before the read: one non-blocking read takes it.
        assert_eq!(reader.read(None), Step::Delivered);
        // The receive returns with it: the lease is unused from then on, with no `leave` (and no
        // lock for it). The I/O thread notes when it first finds it so, and takes it back
        // LEASE_IDLE after that.
        assert!(!reader.entered);
        let seen = Instant::now();
        assert!(!gate.lock().reclaim(seen));
        assert_eq!(gate.lock().lease_deadline(seen), Some(later(seen)));
        assert!(gate.lock().reclaim(later(seen)));
        reader.leave();
        assert!(gate.lock().engine_reads());
    }

    /// Pins the calling thread to the first CPU.
    fn pin_first_cpu() {
        // SAFETY: a zeroed `cpu_set_t` is an empty set; CPU_SET writes within it; the set outlives
        // the call, whose size is passed.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    }

    #[test]
    fn a_lone_streams_wait_is_unbounded_only_while_its_peer_runs_on_our_cpu() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut theirs = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        theirs.set_nodelay(true).unwrap();
        let (mut push, pull) = ready_pair();
        let shared = Arc::new(crate::waker::Shared::new().unwrap());
        let gate = Arc::new(Gate::new(
            Box::new(Record::default()),
            Waker::new(shared, 0, Arc::new(AtomicBool::new(false))),
        ));
        {
            let mut g = gate.lock();
            g.start(ours.as_raw_fd());
            g.codec = Some(pull);
        }
        let wake = EventFd::new().unwrap();
        let mut reader = DirectReader::acquire(&gate).unwrap();
        // Each wait gets one message, written by a thread on our CPU once we asked for it.
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let frames: Vec<Vec<u8>> = (0..2 * PEER_CPU_EVERY)
            .map(|_| {
                push.send_frame_copy(b"ping", false).unwrap();
                let mut out = Transmit::new();
                push.poll_transmit(&mut out);
                out.to_vec()
            })
            .collect();
        pin_first_cpu();
        let sender = std::thread::spawn(move || {
            pin_first_cpu();
            for frame in frames {
                if asked.recv().is_err() {
                    return;
                }
                theirs.write_all(&frame).unwrap();
            }
        });
        let wait = |reader: &mut DirectReader, alone: bool| {
            ask.send(()).unwrap();
            let mut keep = |_: FrameView<'_>| {};
            let take = Some(Taker {
                keep: &mut keep,
                delimited: false,
            });
            assert_eq!(
                reader.wait(&wake, None, || {}, take, alone),
                Step::Delivered
            );
            reader.leave();
        };
        // Not alone: always bounded.
        for _ in 0..PEER_CPU_EVERY {
            wait(&mut reader, false);
            assert_eq!(reader.timed, Some(true));
        }
        // Alone, with the peer's input processed on our CPU: unbounded from the first look on.
        for _ in 0..PEER_CPU_EVERY {
            wait(&mut reader, true);
        }
        assert!(reader.same_cpu);
        assert_eq!(reader.timed, Some(false));
        drop(ask);
        sender.join().unwrap();
    }

    #[test]
    fn a_sender_about_to_wait_writes_its_stream_mode_batch_itself() {
        let (gate, [_ours, mut theirs], woken) = streaming_gate();
        let mut wire = vec![0u8; 1 << 20];
        let before = theirs.read(&mut wire).unwrap();
        assert!(before >= BATCH_WRITE);
        for _ in 0..10 {
            assert_eq!(send_small(&gate), Direct::Batched);
        }
        gate.flush_stream();
        assert!(!gate.lock().codec.as_ref().unwrap().wants_write());
        assert!(!was_woken(&woken));
        theirs.set_nonblocking(true).unwrap();
        let after = theirs.read(&mut wire).unwrap();
        assert_eq!(after, 10 * 64, "the ten messages, and nothing else");
        assert_eq!(&wire[..2], &[0, 62]);
    }

    #[test]
    fn stream_mode_spares_the_io_thread_and_its_looks_write_what_is_left() {
        let (gate, _ends, woken) = streaming_gate();
        let send = || send_small(&gate);
        // In stream mode a new batch wakes nobody.
        for _ in 0..10 {
            assert_eq!(send(), Direct::Batched);
        }
        assert!(!was_woken(&woken));
        let since = gate.lock().batch_since.unwrap();
        let pending = || gate.lock().codec.as_ref().map_or(0, Connection::pending);
        assert_eq!(pending(), 10 * 64);
        // A look before the batch has waited STREAM_TAIL leaves it, and comes back when it has.
        let mut g = gate.lock();
        assert!(!g.look_at_stream(since + STREAM_TAIL / 2));
        assert_eq!(g.stream_look(), Some(since + STREAM_TAIL));
        // Then the batch is the I/O thread's to write; the sender had written a batch since the
        // last look, so the stream goes on.
        assert!(g.look_at_stream(since + STREAM_TAIL));
        assert!(g.stream);
        let mut out = Transmit::new();
        g.codec.as_mut().unwrap().poll_transmit(&mut out);
        g.batch_taken(out.len());
        // Looks that find nothing new end stream mode, after STREAM_IDLE_LOOKS of them.
        let mut at = since + STREAM_TAIL;
        for look in 1..=STREAM_IDLE_LOOKS {
            at += STREAM_TAIL;
            assert!(!g.look_at_stream(at), "look {look}: nothing to write");
            assert_eq!(g.stream, look < STREAM_IDLE_LOOKS, "look {look}");
        }
        assert_eq!(g.stream_look(), None);
        drop(g);
        // Out of stream mode, a new batch wakes the I/O thread again.
        assert_eq!(send(), Direct::Batched);
        assert!(was_woken(&woken));
    }

    /// The frame of `body` (short form), as the wire carries it.
    fn frame(body: &[u8], more: bool) -> Vec<u8> {
        let mut out = vec![u8::from(more), u8::try_from(body.len()).unwrap()];
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn what_the_kernel_does_not_take_of_a_direct_write_is_kept_in_order() {
        // One-frame messages (one buffer and send(2)) and two-frame ones over 512 octets (sendmsg).
        for (sizes, what) in [
            (&[200usize][..], "one buffer"),
            (&[100, 250, 250][..], "vectored"),
        ] {
            let (gate, _ours, mut theirs) = open_gate();
            let mut wire = Vec::new();
            let mut written = Vec::new();
            let mut last = Direct::Written;
            for i in 0..10_000u32 {
                let bodies: Vec<Vec<u8>> = sizes
                    .iter()
                    .map(|&n| vec![u8::try_from(i % 251).unwrap(); n])
                    .collect();
                let frames: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
                for (k, b) in bodies.iter().enumerate() {
                    written.extend(frame(b, k + 1 < bodies.len()));
                }
                let owned = |taken: &[usize]| {
                    bodies
                        .iter()
                        .zip(taken)
                        .map(|(b, &t)| Bytes::copy_from_slice(&b[t..]))
                        .collect()
                };
                last = gate.try_write(&frames, owned, || true, |_| true, &mut None);
                if last != Direct::Written {
                    break;
                }
            }
            assert_eq!(last, Direct::Partial, "{what}: the buffers fill");
            assert_eq!(
                gate.try_write(
                    &[b"x"],
                    |_: &[usize]| Vec::new(),
                    || true,
                    |_| true,
                    &mut None
                ),
                Direct::Closed,
                "{what}: shut until the I/O thread has written the rest"
            );
            // What reached the stream, then what was kept, is every frame in order.
            let mut buf = vec![0u8; 1 << 16];
            theirs
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            while wire.len() + gate.lock().leftover.len() < written.len() {
                match theirs.read(&mut buf) {
                    Ok(n) if n > 0 => wire.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            wire.extend(gate.lock().leftover.to_vec());
            assert!(wire == written, "{what}: the stream is whole");
        }
    }

    /// A gate in stream mode whose sender holds a live write lease, with what reached the stream
    /// so far read off it: the gate, the lease, the two ends of the stream, the waker's flag.
    fn leased_gate() -> (Gate, Lease, [UnixStream; 2], Arc<AtomicBool>) {
        let (gate, [ours, mut theirs], woken) = streaming_gate();
        let mut lease = None;
        for _ in 0..10_000 {
            if lease.as_ref().is_some_and(Lease::is_live) {
                break;
            }
            let d = gate.try_write(
                &[&[7u8; 62]],
                |_: &[usize]| Vec::new(),
                || true,
                |_| false,
                &mut lease,
            );
            assert_eq!(d, Direct::Batched);
        }
        let lease = lease.expect("a sender writing its own batches in stream mode gets a lease");
        assert!(lease.is_live());
        // Read off what the stream has so far: whole frames of [7; 62].
        theirs.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while let Ok(n) = theirs.read(&mut buf) {
            got += n;
        }
        assert_eq!(got % 64, 0);
        assert!(!gate.lock().codec.as_ref().unwrap().wants_write());
        was_woken(&woken);
        (gate, lease, [ours, theirs], woken)
    }

    /// Reads `n` octets off `from` (non-blocking), waiting at most 5 s for them.
    fn read_wire(from: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut wire = vec![0u8; n];
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got < n && Instant::now() < deadline {
            match from.read(&mut wire[got..]) {
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        wire.truncate(got);
        wire
    }

    /// One-frame messages of these bodies, as the wire carries them.
    fn one_frame_messages(bodies: &[&[u8]]) -> Vec<u8> {
        bodies.iter().flat_map(|b| frame(b, false)).collect()
    }

    /// Whether the stream has nothing to read now (a Unix socket's written bytes are there at once).
    fn nothing_more(from: &mut UnixStream) -> bool {
        from.set_nonblocking(true).unwrap();
        matches!(from.read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    #[test]
    fn what_a_lease_sends_reaches_the_stream_whole_and_in_order_with_what_goes_another_way() {
        let (gate, mut lease, [_ours, mut theirs], woken) = leased_gate();
        let mut expected = Vec::new();
        // Enough for several batches the lease's holder writes itself, and a tail it does not.
        for i in 0..2_000u32 {
            let body = vec![u8::try_from(i % 251).unwrap(); 1 + (i as usize % 200)];
            if i % 7 == 0 {
                let second = [0xEEu8; 3];
                assert!(gate.lease_send(&mut lease, &[&body, &second]));
                expected.extend(frame(&body, true));
                expected.extend(frame(&second, false));
            } else {
                assert!(gate.lease_send(&mut lease, &[&body]));
                expected.extend(frame(&body, false));
            }
        }
        assert!(!was_woken(&woken), "the holder wrote its batches itself");
        assert!(gate.lock().ring_len() > 0, "a tail is left in the ring");
        // A message too large for the lease hands it back, which writes the tail (nothing else
        // is being written); the large message then goes alone, after it.
        let large = vec![9u8; BATCH_BODY + 1];
        assert!(!gate.lease_send(&mut lease, &[&large]));
        assert!(!lease.is_live());
        assert_eq!(gate.lock().ring_len(), 0);
        let d = gate.try_write(
            &[&large],
            |_: &[usize]| Vec::new(),
            || true,
            |_| false,
            &mut None,
        );
        assert_eq!(d, Direct::Written);
        expected.push(flags::LONG);
        expected.extend(u64::try_from(large.len()).unwrap().to_be_bytes());
        expected.extend(&large);
        assert_eq!(read_wire(&mut theirs, expected.len()), expected);
        assert!(!was_woken(&woken));
    }

    #[test]
    fn what_a_lease_left_in_its_ring_goes_before_what_the_codec_holds() {
        let (gate, mut lease, [_ours, mut theirs], woken) = leased_gate();
        assert!(gate.lease_send(&mut lease, &[b"leased"]));
        // The I/O thread has a write under way: the holder hands the lease back but cannot write.
        gate.lock().set_writer_idle(false);
        gate.end_lease(&mut lease);
        assert!(
            was_woken(&woken),
            "the I/O thread is told the ring holds bytes"
        );
        // A message after it is batched into the codec; the I/O thread's next write takes the
        // ring first.
        let d = gate.try_write(
            &[b"batched"],
            |_: &[usize]| Vec::new(),
            || true,
            |_| false,
            &mut None,
        );
        assert_eq!(d, Direct::Batched);
        let mut g = gate.lock();
        let mut out = Transmit::new();
        g.take_ring(&mut out);
        g.codec.as_mut().unwrap().poll_transmit(&mut out);
        drop(g);
        assert_eq!(out.to_vec(), one_frame_messages(&[b"leased", b"batched"]));
        assert!(nothing_more(&mut theirs), "nothing was written past them");
    }

    #[test]
    fn a_revoked_lease_is_looked_at_until_it_is_handed_back_and_its_ring_is_empty() {
        let (gate, mut lease, [_ours, mut theirs], _woken) = leased_gate();
        assert!(gate.lease_send(&mut lease, &[b"one"]));
        assert!(gate.lease_send(&mut lease, &[b"two"]));
        let now = Instant::now();
        let mut g = gate.lock();
        // Stream mode ends (the looks found it idle): the lease is revoked, and the I/O thread
        // writes the ring's bytes and goes on looking while the holder has not handed it back.
        g.leave_stream();
        assert!(g.look_at_stream(now), "the ring's bytes are to be written");
        let mut out = Transmit::new();
        assert_eq!(g.take_ring(&mut out), 2 * 5);
        assert!(g.stream_look().is_some(), "the holder may still append");
        let first = g.stream_look().unwrap();
        assert!(!g.look_at_stream(first));
        let second = g.stream_look().unwrap();
        assert!(second - first > first - now, "the looks grow further apart");
        assert!(!g.nothing_to_write(), "a lease is out");
        drop(g);
        // The holder finds it revoked at its next send, hands it back, and sends the usual way.
        assert!(!gate.lease_send(&mut lease, &[b"three"]));
        assert!(!lease.is_live());
        let mut g = gate.lock();
        assert!(g.nothing_to_write());
        assert!(!g.look_at_stream(second));
        assert_eq!(g.stream_look(), None, "nothing left to look at");
        drop(g);
        assert_eq!(out.to_vec(), one_frame_messages(&[b"one", b"two"]));
        assert!(nothing_more(&mut theirs), "nothing written twice");
    }

    #[test]
    fn a_holder_about_to_wait_hands_a_revoked_lease_back_and_writes_its_ring() {
        let (gate, mut lease, [_ours, mut theirs], _woken) = leased_gate();
        assert!(gate.lease_send(&mut lease, &[b"tail"]));
        // Still granted: the wait writes the tail and keeps the lease.
        gate.before_wait(Some(&mut lease));
        assert!(lease.is_live());
        assert_eq!(read_wire(&mut theirs, 6), one_frame_messages(&[b"tail"]));
        assert!(gate.lease_send(&mut lease, &[b"last"]));
        gate.lock().leave_stream();
        // Revoked: the wait hands it back (the I/O thread's looks may stop) and writes the rest.
        gate.before_wait(Some(&mut lease));
        assert!(!lease.is_live());
        let mut g = gate.lock();
        assert!(g.nothing_to_write());
        assert!(!g.look_at_stream(Instant::now()));
        assert_eq!(g.stream_look(), None);
        drop(g);
        assert_eq!(read_wire(&mut theirs, 6), one_frame_messages(&[b"last"]));
    }

    #[test]
    fn a_closed_streams_ring_is_never_written_to_the_next_stream() {
        let (gate, mut lease, [ours, _theirs], _woken) = leased_gate();
        assert!(gate.lease_send(&mut lease, &[b"old"]));
        {
            let mut g = gate.lock();
            g.shut();
            assert_eq!(g.ring_len(), 0);
            assert!(g.nothing_to_write());
        }
        // The holder has not seen the end yet: what it appends is never written either.
        assert!(!gate.lease_send(&mut lease, &[b"late"]));
        let mut g = gate.lock();
        g.start(ours.as_raw_fd());
        let mut out = Transmit::new();
        assert_eq!(g.take_ring(&mut out), 0);
        assert!(out.is_empty());
        assert!(g.nothing_to_write());
    }
}
