//! One direction of a connection: a single-producer/single-consumer ring of messages.
//!
//! Layout of a ring at its offset in a [`Region`] (every part 64-byte aligned):
//!
//! | part | size | written by |
//! |---|---|---|
//! | control: header, `head` and `taken`, two futex words, `closed`, `ret_tail`, CPUs (a cache line each) | 512 | both |
//! | return ring: one `u64` per slab chunk (start and count of a slab run given back) | `chunks * 8` | consumer |
//! | slots | `slots * 64` | producer |
//! | slab | `chunks * chunk_size` | producer |
//!
//! A message is a run of records, one per frame, in consecutive slots; each record starts with an
//! 8-byte header word (length in the low 32 bits, then flags `u16`: MORE, SLAB, PAD, then the slot
//! count `u16`), never 0. A frame of up to
//! [`Config::inline_max`] bytes (an eighth of the ring, 1016 B to 8 KiB) is copied into the slots
//! after its header; a larger one is copied once into a
//! run of slab chunks and its record names the run, so the consumer's [`Bytes`] reads the slab in
//! place and gives the run back (through the return ring) when the last clone is dropped. A record
//! never wraps: a PAD record fills the end of the slots first.
//!
//! Publication: the producer writes a whole message, the header of its first record last (release),
//! so a consumer never sees part of a message, and a producer that dies mid-write leaves nothing
//! visible. The consumer looks for the next message at the slot it reads next, whose header word is 0
//! until one is written there: it takes each message's lines from the producer with the message, and
//! never reads a shared count that the producer writes again at once (a count the consumer read
//! after every message cost one more line moved between the cores per message: 14 M msgs/s of 64 B
//! before, see `docs/PERFORMANCE.md`). Having read a message, the consumer sets the header word of
//! each slot it took back to 0, so that a slot read in the next lap holds 0 or a new header, never
//! the bytes of an older message. It stores what it consumed, `taken` messages and then `head`
//! slots (release), in batches: after a quarter of the ring (or, in a ring made by [`local`], a step
//! of messages), and before it waits; the producer reads them only when its copies say full.
//!
//! Within one process ([`local`], the queue of every zring pipe): the ring is bounded by a count of
//! messages, moves large frames (REF records hold a `Bytes`), grows by LINK records (the last record
//! of a ring, naming a ring twice as large), and never sleeps on its futex; a ring shared with
//! another process refuses both kinds of record as corrupt.
//!
//! Waiting: a side with nothing to do spins for a bounded time, then sets its futex word, issues a
//! SeqCst fence, looks again, and sleeps on the word. A side that publishes issues a SeqCst fence and
//! wakes the other only if its word is set (Dekker: either the sleeper's second look sees the
//! publication or the publisher sees the word), so an uncontended send makes no system call.
//!
//! Trust: the other side may be another process that is broken or hostile. Our own positions and the
//! ring's dimensions are private copies; every index, length and slab run read from shared memory is
//! checked before use, and anything out of bounds is [`Error::Corrupt`] for this ring only.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::region::Region;
use crate::sync::{fence, wait, wake, Arc, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::Error;

/// Frames up to this size are always copied into the slots; a ring of more than 128 slots copies
/// larger ones too, up to [`Config::inline_max`]; larger frames go through the slab.
pub const INLINE_MAX: usize = 1016;
/// The most any ring copies into its slots (128 slots' worth).
const INLINE_LIMIT: usize = 128 * SLOT - RECORD_HEADER;
/// Bytes per slot.
const SLOT: usize = 64;
/// Bytes of a record's header.
const RECORD_HEADER: usize = 8;
/// Bytes of the control block.
const CONTROL: usize = 512;
#[cfg_attr(loom, allow(dead_code, reason = "shared regions are not modelled"))]
const MAGIC: u32 = 0x5A52_4E47;
#[cfg_attr(loom, allow(dead_code, reason = "shared regions are not modelled"))]
const VERSION: u32 = 2;

const MORE: u16 = 1;
const SLAB: u16 = 2;
const PAD: u16 = 4;
/// The record holds a `Bytes`, moved (a ring made by [`local`] only).
const REF: u16 = 8;
/// The record names the next ring, the last record of this one (a ring made by [`local`] only).
const LINK: u16 = 16;

/// Slots of a ring made by [`local`] at first (1 KiB), and at most (1 GiB).
const LOCAL_FIRST_SLOTS: u32 = 16;
const LOCAL_MAX_SLOTS: u32 = 1 << 24;
/// The most messages a consumer takes between two publications of what it took (and at most half
/// its ring's bound), as libzmq's low-water mark. Publishing every 1024 instead was measured to
/// leave the producer's view so far behind that a socket's thread, woken late, starved its I/O
/// thread (ipc 64 B streaming 4-7 against 10-15 M msgs/s); how often a waiting producer is woken
/// is the owner's choice (see `zring`'s pipes).
pub const STEP_MAX: u64 = 32;

const PRODUCER_CLOSED: u32 = 1;
const CONSUMER_CLOSED: u32 = 2;

/// The dimensions of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Slots of 64 bytes (a power of two, 16 to 2^24). A message of small frames takes one slot per
    /// 56 bytes of each frame, rounded up.
    pub slots: u32,
    /// Chunks of the slab (0 to 2^20; 0: frames above [`INLINE_MAX`] are refused).
    pub chunks: u32,
    /// Bytes per chunk (a power of two, 4 KiB to 64 MiB).
    pub chunk_size: u32,
}

impl Default for Config {
    /// 8192 slots (512 KiB) and a 16 MiB slab of 64 KiB chunks.
    fn default() -> Config {
        Config {
            slots: 8192,
            chunks: 256,
            chunk_size: 64 * 1024,
        }
    }
}

impl Config {
    /// Checks the dimensions and returns the ring's size in bytes.
    pub fn size(&self) -> Result<usize, Error> {
        let ok = self.slots.is_power_of_two()
            && (16..=1 << 24).contains(&self.slots)
            && self.chunks <= 1 << 20
            && self.chunk_size.is_power_of_two()
            && (4096..=1 << 26).contains(&self.chunk_size);
        if !ok {
            return Err(Error::Config(*self));
        }
        let layout = self.layout();
        Ok(layout.slab + self.chunks as usize * self.chunk_size as usize)
    }

    /// The largest frame copied into the slots: an eighth of the ring, between [`INLINE_MAX`] and
    /// 8 KiB. A slab run is whole chunks (64 KiB by default), so a frame of a few KiB in the slab
    /// would hold a chunk each, and the slab would fill after a few hundred of them.
    pub fn inline_max(&self) -> usize {
        (self.slots as usize * SLOT / 8)
            .saturating_sub(RECORD_HEADER)
            .clamp(INLINE_MAX, INLINE_LIMIT)
    }

    /// Offsets of the parts from the ring's start.
    fn layout(&self) -> Layout {
        let ret = CONTROL;
        let slots = ret + (self.chunks as usize * 8).next_multiple_of(SLOT);
        let slab = slots + self.slots as usize * SLOT;
        Layout { ret, slots, slab }
    }
}

struct Layout {
    #[cfg_attr(loom, allow(dead_code, reason = "loom keeps the return ring apart"))]
    ret: usize,
    slots: usize,
    slab: usize,
}

/// One value on its own cache line.
#[repr(C, align(64))]
struct Line<T>(T);

/// The control block, at the ring's start. All-zero is a valid state of every field.
#[repr(C)]
struct Control {
    /// Magic, version, slots, chunks, chunk size.
    header: Line<[AtomicU32; 5]>,
    /// What the consumer has consumed, published together.
    released: Line<Released>,
    /// Set by a consumer about to sleep.
    reader_wait: Line<AtomicU32>,
    /// Set by a producer about to sleep (ring or slab full).
    writer_wait: Line<AtomicU32>,
    /// PRODUCER_CLOSED | CONSUMER_CLOSED.
    closed: Line<AtomicU32>,
    /// Slab runs given back by the consumer (a running count).
    ret_tail: Line<AtomicU64>,
    /// The CPU each side (producer, consumer) last waited on, plus one (0: not known yet).
    cpus: Line<[AtomicU32; 2]>,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Control>() <= CONTROL);

/// What the consumer has consumed (running counts): `taken` is stored first, then `head` (release).
#[repr(C)]
struct Released {
    /// Slots released.
    head: AtomicU64,
    /// Messages taken.
    taken: AtomicU64,
}

/// What both ends of one ring hold: the memory and where the parts are. Read by both sides at every
/// message, and kept on a pair of cache lines of its own (`align(128)`): a neighbour in the heap
/// written by either thread would otherwise take the line from the other at every write (and the
/// line prefetcher of x86 cores fetches lines in pairs, as crossbeam's `CachePadded` assumes).
#[repr(align(128))]
struct Shared {
    /// Keeps the memory the pointers point into alive.
    _region: std::sync::Arc<Region>,
    #[cfg(not(loom))]
    ctl: std::ptr::NonNull<Control>,
    #[cfg(not(loom))]
    ret: std::ptr::NonNull<AtomicU64>,
    #[cfg(loom)]
    ctl: Box<Control>,
    #[cfg(loom)]
    ret: Box<[AtomicU64]>,
    /// The slots' header words, kept apart from the slots' bytes under loom.
    #[cfg(loom)]
    heads: Box<[AtomicU64]>,
    slots: *mut u8,
    slab: *mut u8,
    cfg: Config,
    /// `cfg.inline_max()`, worked out once.
    inline_max: usize,
    /// Wakes the other side instead of the futex (see [`Producer::set_waker`]).
    waker: std::sync::OnceLock<Waker>,
    /// Made by [`local`]: frames are moved, the ring grows, nobody sleeps on it, and what is left in
    /// it when both ends are gone is dropped with it.
    local: bool,
}

/// Wakes the other side of a ring by other means than the futex.
type Waker = Box<dyn Fn() + Send + Sync>;

impl Drop for Shared {
    /// Both ends are gone. A ring made by [`local`] may still hold messages: from where the consumer
    /// stopped (its `head`, published when it was dropped or, on an older ring, anywhere before
    /// its LINK, since the slots it took read 0), the frames moved through it are dropped, and the
    /// next ring a LINK names is let go.
    fn drop(&mut self) {
        if !self.local {
            return;
        }
        let cap = self.cap();
        let mut pos = self.ctl().released.0.head.load(Ordering::Acquire);
        let end = pos + cap;
        while pos < end {
            let word = self.header(pos).load(Ordering::Acquire);
            let (flags, n) = ((word >> 32) as u16, word >> 48);
            if word == 0 || n == 0 {
                break;
            }
            let body = self.slot(pos).wrapping_add(RECORD_HEADER);
            if flags & REF != 0 {
                // SAFETY: a REF record of this process's producer holds a `Bytes` that nobody took
                // (the consumer zeroes what it takes, and it is gone).
                drop(unsafe { std::ptr::read(body.cast::<Bytes>()) });
            } else if flags & LINK != 0 {
                // SAFETY: as above, for the `Arc` a LINK record holds (made by `Arc::into_raw`).
                drop(unsafe { Arc::from_raw(std::ptr::read(body.cast::<*const Shared>())) });
            }
            pos += n;
        }
    }
}

// SAFETY: the pointers point into `region`, which the struct keeps alive and which is Send + Sync;
// every access through them follows the ring protocol (atomics, or bytes with one writer at a time).
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Places a ring of `cfg` at `offset` in `region`, checking that it fits.
    fn new(region: std::sync::Arc<Region>, offset: usize, cfg: Config) -> Result<Shared, Error> {
        let size = cfg.size()?;
        if offset % SLOT != 0 || region.at(offset, size).is_none() {
            return Err(Error::Bounds { offset, size });
        }
        let layout = cfg.layout();
        let at = |o: usize| {
            region
                .at(offset + o, 0)
                .ok_or(Error::Bounds { offset, size })
        };
        let slots = at(layout.slots)?;
        let slab = at(layout.slab)?;
        #[cfg(not(loom))]
        let (ctl, ret) = {
            let ctl = std::ptr::NonNull::new(at(0)?.cast::<Control>())
                .ok_or(Error::Bounds { offset, size })?;
            let ret = std::ptr::NonNull::new(at(layout.ret)?.cast::<AtomicU64>())
                .ok_or(Error::Bounds { offset, size })?;
            (ctl, ret)
        };
        #[cfg(loom)]
        let (ctl, ret) = {
            let zero32 = || AtomicU32::new(0);
            let ctl = Box::new(Control {
                header: Line([zero32(), zero32(), zero32(), zero32(), zero32()]),
                released: Line(Released {
                    head: AtomicU64::new(0),
                    taken: AtomicU64::new(0),
                }),
                reader_wait: Line(zero32()),
                writer_wait: Line(zero32()),
                closed: Line(zero32()),
                ret_tail: Line(AtomicU64::new(0)),
                cpus: Line([zero32(), zero32()]),
            });
            let ret: Box<[AtomicU64]> = (0..cfg.chunks).map(|_| AtomicU64::new(0)).collect();
            (ctl, ret)
        };
        #[cfg(loom)]
        let heads: Box<[AtomicU64]> = (0..cfg.slots).map(|_| AtomicU64::new(0)).collect();
        Ok(Shared {
            _region: region,
            ctl,
            ret,
            #[cfg(loom)]
            heads,
            slots,
            slab,
            cfg,
            inline_max: cfg.inline_max(),
            waker: std::sync::OnceLock::new(),
            local: false,
        })
    }

    /// A ring of `cfg` in this process's heap, for [`local`], that copies frames of up to
    /// `copy_max` bytes.
    fn local(cfg: Config, copy_max: usize) -> Result<Shared, Error> {
        let region = std::sync::Arc::new(Region::heap(cfg.size()?));
        let mut shared = Shared::new(region, 0, cfg)?;
        shared.local = true;
        shared.inline_max = copy_max.min(INLINE_LIMIT);
        Ok(shared)
    }

    /// Wakes whoever sleeps on `word`: the waker if one is set, else the futex.
    fn wake(&self, word: &AtomicU32) {
        match self.waker.get() {
            Some(w) => w(),
            None => wake(word),
        }
    }

    fn ctl(&self) -> &Control {
        #[cfg(not(loom))]
        // SAFETY: `ctl` points to CONTROL bytes inside the region (checked in `new`), 64-byte aligned
        // (the region is at least 64-byte aligned, and so is the offset); all-zero bytes are a valid
        // `Control` (atomics only), and the region outlives `self`.
        return unsafe { self.ctl.as_ref() };
        #[cfg(loom)]
        return &self.ctl;
    }

    /// Entry `i` of the return ring (`i < chunks`).
    fn ret(&self, i: usize) -> &AtomicU64 {
        #[cfg(not(loom))]
        // SAFETY: the return ring has `chunks` entries of 8 bytes inside the region (checked in
        // `new`), 8-byte aligned; callers pass `i < chunks`.
        return unsafe { &*self.ret.as_ptr().add(i) };
        #[cfg(loom)]
        return &self.ret[i];
    }

    fn cap(&self) -> u64 {
        u64::from(self.cfg.slots)
    }

    fn slot(&self, pos: u64) -> *mut u8 {
        let idx = slot_index(pos, self.cap()) as usize;
        // SAFETY: `idx < slots`, so the slot lies inside the slots part of the region.
        unsafe { self.slots.add(idx * SLOT) }
    }

    /// The header word of the slot at `pos`: the first 8 bytes of a record starting there, 0 while
    /// none is written there in this lap. Accessed atomically only; the bytes of a record of several
    /// slots overlay the header words of its later slots, written and read in turns the ring's
    /// release and acquire order (header, `head`).
    fn header(&self, pos: u64) -> &AtomicU64 {
        #[cfg(not(loom))]
        // SAFETY: the slot lies inside the slots part (see `slot`), 64-byte aligned, so its first 8
        // bytes are an aligned `u64` inside the region, which outlives `self`; every other access to
        // those bytes is ordered with this one by the protocol (see above).
        return unsafe { AtomicU64::from_ptr(self.slot(pos).cast()) };
        #[cfg(loom)]
        return &self.heads[slot_index(pos, self.cap()) as usize];
    }

    fn chunk(&self, start: u32) -> *mut u8 {
        // SAFETY: callers pass `start < chunks` (checked), so the chunk lies inside the slab.
        unsafe { self.slab.add(start as usize * self.cfg.chunk_size as usize) }
    }

    fn set_closed(&self, bit: u32) {
        let c = self.ctl();
        c.closed.0.fetch_or(bit, Ordering::SeqCst);
        c.reader_wait.0.store(0, Ordering::SeqCst);
        c.writer_wait.0.store(0, Ordering::SeqCst);
        self.wake(&c.reader_wait.0);
        self.wake(&c.writer_wait.0);
    }

    fn closed(&self) -> u32 {
        self.ctl().closed.0.load(Ordering::SeqCst)
    }

    /// After a publication: wakes the other side if it sleeps (or is about to) on `word`.
    fn wake_if_waiting(&self, word: &AtomicU32) {
        // SYNC POINT: pairs with the fence in `sleep` (and in `arm`): either the sleeper's second
        // look sees what we published, or we see its word.
        fence(Ordering::SeqCst);
        if word.load(Ordering::Relaxed) != 0 && word.swap(0, Ordering::SeqCst) != 0 {
            self.wake(word);
        }
    }

    /// Announces a wait on `word` by a thread that sleeps elsewhere (woken through a waker); the
    /// caller then looks at its condition once more before it sleeps.
    fn arm(&self, word: &AtomicU32) {
        word.store(1, Ordering::Relaxed);
        // SYNC POINT: pairs with the fence in `wake_if_waiting`, as in `sleep`.
        fence(Ordering::SeqCst);
    }
}

/// Sleeps on `word` unless `ready` says there is something to do once the word is set; at most
/// until `deadline`.
fn sleep(word: &AtomicU32, deadline: Option<Instant>, ready: impl FnOnce() -> bool) {
    word.store(1, Ordering::Relaxed);
    // SYNC POINT: pairs with the fence in `Shared::wake_if_waiting`.
    fence(Ordering::SeqCst);
    if ready() {
        word.store(0, Ordering::Relaxed);
        return;
    }
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if timeout != Some(Duration::ZERO) {
        wait(word, 1, timeout);
    }
    word.store(0, Ordering::Relaxed);
}

/// How a blocking call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Spin this long before sleeping on the futex.
    pub spin: Duration,
    /// Never sleep: spin until there is something (for dedicated cores).
    pub busy: bool,
}

impl Default for Wait {
    /// A few microseconds of spinning, then the futex.
    fn default() -> Wait {
        Wait {
            spin: Duration::from_micros(5),
            busy: false,
        }
    }
}

/// The CPU the calling thread runs on, plus one (0 if unknown): where a peer last ran tells whether
/// spinning for it can pay.
pub fn current_cpu() -> u32 {
    #[cfg(not(any(loom, miri)))]
    // SAFETY: sched_getcpu takes no arguments and only returns a number.
    let cpu = unsafe { libc::sched_getcpu() };
    // Neither model knows CPUs: unknown, so waits spin as configured.
    #[cfg(any(loom, miri))]
    let cpu = -1;
    u32::try_from(cpu).map_or(0, |c| c.saturating_add(1))
}

impl Wait {
    /// Waits until `ready()` or `deadline`, spinning then sleeping on `word`. Returns `ready()`.
    /// `cpus` are where this side and the other last waited: spinning while the other side last ran
    /// on this very CPU would only take the time it needs to run, so then the wait sleeps at once.
    fn until(
        &self,
        word: &AtomicU32,
        cpus: (&AtomicU32, &AtomicU32),
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        let me = current_cpu();
        cpus.0.store(me, Ordering::Relaxed);
        let spin = if me != 0 && cpus.1.load(Ordering::Relaxed) == me {
            Duration::ZERO
        } else {
            self.spin
        };
        loop {
            if ready() {
                return true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if self.busy || now.duration_since(start) < spin {
                std::hint::spin_loop();
                #[cfg(loom)]
                loom::thread::yield_now();
                continue;
            }
            sleep(word, deadline, &mut ready);
        }
    }
}

/// Writes a ring's header (magic, version, dimensions) at `offset` in `region`: the creator's side
/// does this once, before either end attaches.
#[cfg(not(loom))]
pub fn init(region: &std::sync::Arc<Region>, offset: usize, cfg: Config) -> Result<(), Error> {
    let shared = Shared::new(region.clone(), offset, cfg)?;
    let h = &shared.ctl().header.0;
    for (word, v) in h
        .iter()
        .zip([MAGIC, VERSION, cfg.slots, cfg.chunks, cfg.chunk_size])
    {
        word.store(v, Ordering::Relaxed);
    }
    fence(Ordering::SeqCst);
    Ok(())
}

/// Both ends of a ring for a queue within one process (zring's pipes), bounded at `bound` messages
/// (`u64::MAX`: no bound). It starts small (16 slots, 1 KiB) and grows by doubling, up to 2^24
/// slots, as the messages queued need room. Borrowed frames of up to `copy_max` bytes (at most
/// 8 KiB) are copied into the slots; larger ones, and every frame that is a shared buffer already
/// ([`Payload::is_shared`]), are moved through them (see [`Producer::try_send_payloads`]). Its
/// ends never sleep on the ring: the owner wakes them by other means. The consumer tells the
/// producer what it took once per step of half the bound (at most [`STEP_MAX`] messages), and says
/// so ([`Consumer::stepped`]), and also when it finds the ring empty (for [`Producer::is_empty`]).
pub fn local(bound: u64, copy_max: usize) -> (Producer, Consumer) {
    let shared = Shared::local(
        Config {
            slots: LOCAL_FIRST_SLOTS,
            chunks: 0,
            chunk_size: 4096,
        },
        copy_max,
    );
    // The dimensions are in range and a heap region always holds them.
    let shared = Arc::new(shared.unwrap_or_else(|e| unreachable!("{e}")));
    let mut producer = Producer::new(shared.clone());
    producer.bound = bound.max(1);
    let mut consumer = Consumer::new(shared);
    consumer.step = (bound / 2).clamp(1, STEP_MAX);
    (producer, consumer)
}

/// A frame for [`Producer::try_send_payloads`]: its bytes, and the same bytes as a shared buffer
/// for a ring that moves large frames rather than copying them.
pub trait Payload {
    /// The frame's bytes.
    fn bytes(&self) -> &[u8];
    /// The frame as a shared buffer: made by `copy`, unless the frame is one already.
    fn to_shared(&self, copy: fn(&[u8]) -> Bytes) -> Bytes {
        copy(self.bytes())
    }
    /// Whether the frame is a shared buffer already, which a ring made by [`local`] moves whatever
    /// its size rather than copying it (default: no, the frame is borrowed).
    fn is_shared(&self) -> bool {
        false
    }
}

impl Payload for [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl<P: Payload + ?Sized> Payload for &P {
    fn bytes(&self) -> &[u8] {
        (**self).bytes()
    }

    fn to_shared(&self, copy: fn(&[u8]) -> Bytes) -> Bytes {
        (**self).to_shared(copy)
    }

    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }
}

impl Payload for Bytes {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn to_shared(&self, _: fn(&[u8]) -> Bytes) -> Bytes {
        self.clone()
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Both ends of a new ring in this process's heap.
pub fn channel(cfg: Config) -> Result<(Producer, Consumer), Error> {
    let region = std::sync::Arc::new(Region::heap(cfg.size()?));
    let shared = Arc::new(Shared::new(region, 0, cfg)?);
    Ok((Producer::new(shared.clone()), Consumer::new(shared)))
}

/// Checks that the ring at `offset` was set up by [`init`] with `cfg` (agreed out of band) and that
/// it fits in `region`.
#[cfg(not(loom))]
fn attach(region: &std::sync::Arc<Region>, offset: usize, cfg: Config) -> Result<Shared, Error> {
    let shared = Shared::new(region.clone(), offset, cfg)?;
    let h = &shared.ctl().header.0;
    let seen: Vec<u32> = h.iter().map(|w| w.load(Ordering::Acquire)).collect();
    if seen != [MAGIC, VERSION, cfg.slots, cfg.chunks, cfg.chunk_size] {
        return Err(Error::Corrupt("ring header does not match".into()));
    }
    Ok(shared)
}

/// The writing end of a ring. Single producer: one thread at a time.
pub struct Producer {
    shared: Arc<Shared>,
    /// Where the next record goes (a running slot count).
    tail: u64,
    /// The consumer's `head` as last read and checked.
    head: u64,
    /// Messages published (a running count over the rings a [`local`] one grew into); also tells
    /// when to look at our CPU (every [`CPU_EVERY`]).
    sent: u64,
    /// The consumer's `taken` as last read and checked.
    taken: u64,
    /// The most messages sent and not taken ([`local`]; no bound otherwise but the ring's room).
    bound: u64,
    /// Return-ring entries already taken back.
    ret_head: u64,
    slab: SlabAlloc,
    /// Makes the shared buffer of a borrowed frame moved through a [`local`] ring.
    copy: fn(&[u8]) -> Bytes,
}

/// How often (in sends) a producer records the CPU it runs on.
const CPU_EVERY: u64 = 64;

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("tail", &self.tail)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// The index in the ring of the running slot count `pos`; `cap`, the ring's slots, is a power of
/// two ([`Config::size`] checks it), so no division.
fn slot_index(pos: u64, cap: u64) -> u64 {
    pos & (cap - 1)
}

/// Where a record of `n` slots goes if the next free slot is `pos`: there, or at the ring's start
/// when it would not fit before the end (the slots between are padding).
fn place(pos: u64, n: u64, cap: u64) -> u64 {
    let idx = slot_index(pos, cap);
    if idx + n > cap {
        pos + (cap - idx)
    } else {
        pos
    }
}

/// A record's header word: never 0, since a record takes at least one slot.
fn header_word(len: u32, flags: u16, n: u16) -> u64 {
    u64::from(len) | u64::from(flags) << 32 | u64::from(n) << 48
}

/// How one frame is carried.
enum Carry {
    /// Copied into the slots.
    Inline,
    /// Copied into a run of slab chunks.
    Slab { count: u32 },
    /// Moved through the slots as a `Bytes` (a ring made by [`local`]).
    Moved,
}

/// What [`Producer::write_message`] did.
enum Written {
    Yes,
    /// No room now for a message of this many slots.
    NoRoom(u64),
}

impl Producer {
    fn new(shared: Arc<Shared>) -> Producer {
        let chunks = shared.cfg.chunks as usize;
        Producer {
            shared,
            tail: 0,
            head: 0,
            sent: 0,
            taken: 0,
            bound: u64::MAX,
            ret_head: 0,
            slab: SlabAlloc::new(chunks),
            copy: Bytes::copy_from_slice,
        }
    }

    /// Makes the shared buffer of a borrowed frame that a [`local`] ring moves (one too large to
    /// copy into the ring) with `copy` instead of `Bytes::copy_from_slice`: a caller may keep
    /// buffers for reuse.
    pub fn copy_large_with(&mut self, copy: fn(&[u8]) -> Bytes) {
        self.copy = copy;
    }

    /// The writing end of the ring at `offset` in a shared `region` (see [`init`]).
    #[cfg(not(loom))]
    pub fn attach(
        region: &std::sync::Arc<Region>,
        offset: usize,
        cfg: Config,
    ) -> Result<Producer, Error> {
        Ok(Producer::new(Arc::new(attach(region, offset, cfg)?)))
    }

    /// Sends one message (its frames, MORE on all but the last) if there is room now.
    /// [`Error::Full`] when there is not: nothing was written.
    pub fn try_send(&mut self, frames: &[&[u8]]) -> Result<(), Error> {
        self.try_send_payloads(frames)
    }

    /// [`Producer::try_send`] for frames that may own their bytes: within one process (a ring made
    /// by [`local`]), a frame that is a shared buffer already, or one too large to copy into the
    /// ring, is moved through it ([`Payload::to_shared`], no copy of a shared buffer's bytes)
    /// instead of going through a slab.
    pub fn try_send_payloads<P: Payload>(&mut self, frames: &[P]) -> Result<(), Error> {
        if let [one] = frames {
            if !self.moves_whole(one) && self.try_send_small(one.bytes()) {
                return Ok(());
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        if self.shared.closed() & CONSUMER_CLOSED != 0 {
            return Err(Error::Closed);
        }
        if self.sent - self.taken >= self.bound {
            self.read_head()?;
            if self.sent - self.taken >= self.bound {
                return Err(Error::Full);
            }
        }
        loop {
            match self.write_message(frames)? {
                Written::Yes => return Ok(()),
                Written::NoRoom(need) if self.shared.local => self.grow(need)?,
                Written::NoRoom(_) => return Err(Error::Full),
            }
        }
    }

    /// The usual message, one frame copied into the slots, when our copies of what the consumer took
    /// leave room for it before the ring's end: written in a few steps. `false`: nothing written,
    /// take the general way (which looks again and says why not).
    #[inline]
    fn try_send_small(&mut self, bytes: &[u8]) -> bool {
        let cap = self.shared.cap();
        let n = (RECORD_HEADER + bytes.len()).div_ceil(SLOT) as u64;
        let end = self.tail + n;
        let keep = u64::from(self.shared.local);
        let fits = bytes.len() <= self.shared.inline_max
            && slot_index(self.tail, cap) + n <= cap
            && end + keep - self.head <= cap
            && self.sent - self.taken < self.bound;
        if !fits || self.shared.closed() & CONSUMER_CLOSED != 0 {
            return false;
        }
        let word = self.write_record(self.tail, bytes.len() as u32, 0, n as u16, bytes);
        self.publish(word, end);
        true
    }

    /// Writes and publishes one message if its words (and slab runs) fit now; else says how many
    /// words it needs.
    fn write_message<P: Payload>(&mut self, frames: &[P]) -> Result<Written, Error> {
        let cap = self.shared.cap();
        // Where the message ends (pads included), and whether it needs the slab.
        let mut end = self.tail;
        let mut chunks = 0u64;
        for f in frames {
            let (c, n) = self.carry(f)?;
            if let Carry::Slab { count } = c {
                chunks += u64::from(count);
            }
            end = place(end, n, cap) + n;
        }
        let slab = chunks > 0;
        // Slots kept free for a LINK record (a ring that grows).
        let keep = u64::from(self.shared.local);
        // A message the ring or the slab cannot hold even empty would wait for room forever (a ring
        // that grows makes room instead).
        let need = end - self.tail + keep;
        if need > cap && !self.shared.local || chunks > u64::from(self.shared.cfg.chunks) {
            return Err(Error::TooLarge(
                frames.iter().map(|f| f.bytes().len()).sum(),
            ));
        }
        // Always look at `head` and the returns before refusing, so that a waiting `send` knows what
        // it has seen.
        if end + keep - self.head > cap {
            self.read_head()?;
            if end + keep - self.head > cap {
                self.take_returns()?;
                return Ok(Written::NoRoom(need));
            }
        }
        // Slab runs, all or none (no vector is allocated for a message without large frames).
        let mut runs = Vec::new();
        if slab {
            self.take_returns()?;
            for f in frames {
                if let (Carry::Slab { count }, _) = self.carry(f)? {
                    match self.slab.alloc(count) {
                        Some(start) => runs.push((start, count)),
                        None => {
                            for (start, count) in runs {
                                self.slab.free(start, count);
                            }
                            return Err(Error::Full);
                        }
                    }
                }
            }
        }
        let mut runs = runs.into_iter();
        let mut pos = self.tail;
        // The first record's header, written last (see `publish`).
        let mut first = None;
        let last = frames.len() - 1;
        for (i, f) in frames.iter().enumerate() {
            let more = if i < last { MORE } else { 0 };
            let bytes = f.bytes();
            let (c, n) = self.carry(f)?;
            let at = place(pos, n, cap);
            if at != pos {
                let word = self.write_record(pos, 0, PAD, (at - pos) as u16, &[]);
                self.put_header(pos, word, &mut first);
                pos = at;
            }
            let len = bytes.len() as u32;
            let word = match c {
                Carry::Inline => self.write_record(pos, len, more, n as u16, bytes),
                Carry::Slab { .. } => {
                    let (start, count) = runs.next().unwrap_or_default();
                    // SAFETY: the run `start..start + count` was just allocated (it is inside the slab
                    // and the consumer holds none of it); the frame fits in it (count chunks).
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            bytes.as_ptr(),
                            self.shared.chunk(start),
                            bytes.len(),
                        );
                    }
                    let mut body = [0u8; 8];
                    body[..4].copy_from_slice(&start.to_le_bytes());
                    body[4..].copy_from_slice(&count.to_le_bytes());
                    self.write_record(pos, len, more | SLAB, 1, &body)
                }
                Carry::Moved => {
                    // SAFETY: the record's slot is free and inside the slots part; a `Bytes` (32
                    // bytes, 8-aligned) fits after the 8-byte header in the 64-byte, 64-aligned slot.
                    // The consumer (or the ring's drop) takes it out exactly once.
                    unsafe {
                        std::ptr::write(
                            self.shared.slot(pos).add(RECORD_HEADER).cast::<Bytes>(),
                            f.to_shared(self.copy),
                        );
                    }
                    // The length is the buffer's own (a frame of any size can be moved).
                    header_word(0, more | REF, 1)
                }
            };
            self.put_header(pos, word, &mut first);
            pos += n;
        }
        self.publish(first.unwrap_or_default(), pos);
        Ok(Written::Yes)
    }

    /// Moves a ring made by [`local`] to a new one twice as large (or as large as `need` slots
    /// ask): the new ring is named by a LINK record, the last of this one, which the consumer
    /// follows. [`Error::Full`] at the largest size.
    #[cold]
    fn grow(&mut self, need: u64) -> Result<(), Error> {
        let slots = (self.shared.cap() * 2).max(need.next_power_of_two());
        let slots = u32::try_from(slots)
            .ok()
            .filter(|&s| s <= LOCAL_MAX_SLOTS)
            .ok_or(Error::Full)?;
        let next = Arc::new(Shared::local(
            Config {
                slots,
                chunks: 0,
                chunk_size: 4096,
            },
            self.shared.inline_max,
        )?);
        // What the consumer took, as far as we know: it publishes there once it follows the link.
        let released = &next.ctl().released.0;
        released.taken.store(self.taken, Ordering::Relaxed);
        // A slot is always kept free for the LINK record, and one slot never needs padding.
        let pos = self.tail;
        // SAFETY: the slot at `tail` is free and inside the slots part; a pointer fits after the
        // header. The consumer (or the ring's drop) takes the `Arc` back exactly once.
        unsafe {
            std::ptr::write(
                self.shared
                    .slot(pos)
                    .add(RECORD_HEADER)
                    .cast::<*const Shared>(),
                Arc::into_raw(next.clone()),
            );
        }
        self.release(header_word(0, LINK, 1), pos + 1);
        self.shared = next;
        self.tail = 0;
        self.head = 0;
        self.ret_head = 0;
        Ok(())
    }

    /// Hands the words from `tail` to `end` to the consumer by storing `first`, the header word of
    /// the record at `tail` (release), and wakes a consumer that sleeps on the ring (the owner of a
    /// ring made by [`local`] wakes its ends itself).
    fn release(&mut self, first: u64, end: u64) {
        self.shared
            .header(self.tail)
            .store(first, Ordering::Release);
        self.tail = end;
        if !self.shared.local {
            self.shared
                .wake_if_waiting(&self.shared.ctl().reader_wait.0);
        }
    }

    /// Stores the header `word` of the record at `pos`, or keeps it in `first` if the record is the
    /// message's first (published last).
    fn put_header(&self, pos: u64, word: u64, first: &mut Option<u64>) {
        if pos == self.tail {
            *first = Some(word);
        } else {
            self.shared.header(pos).store(word, Ordering::Relaxed);
        }
    }

    /// Whether `frame` is moved through the ring whatever its size: a shared buffer, within one
    /// process.
    fn moves_whole<P: Payload + ?Sized>(&self, frame: &P) -> bool {
        self.shared.local && frame.is_shared()
    }

    /// How a frame goes, and how many slots its record takes: within one process, a shared buffer
    /// is moved whatever its size (its bytes are not copied at all) and a borrowed frame is copied
    /// into the slots up to the ring's copy limit; between processes, every frame is copied, into
    /// the slots or into the slab.
    fn carry<P: Payload + ?Sized>(&self, frame: &P) -> Result<(Carry, u64), Error> {
        let cfg = self.shared.cfg;
        let len = frame.bytes().len();
        if self.moves_whole(frame) {
            return Ok((Carry::Moved, 1));
        }
        if len <= self.shared.inline_max {
            return Ok((Carry::Inline, (RECORD_HEADER + len).div_ceil(SLOT) as u64));
        }
        if self.shared.local {
            return Ok((Carry::Moved, 1));
        }
        match u32::try_from(len.div_ceil(cfg.chunk_size as usize)) {
            Ok(count) if count <= cfg.chunks && u32::try_from(len).is_ok() => {
                Ok((Carry::Slab { count }, 1))
            }
            _ => Err(Error::TooLarge(len)),
        }
    }

    /// Publishes the message from `tail` to `end` by storing the header word `first` of its first
    /// record, and wakes a consumer that sleeps.
    fn publish(&mut self, first: u64, end: u64) {
        self.release(first, end);
        self.sent += 1;
        // Where we run, for a reader deciding whether to spin: looked at every few sends (threads
        // seldom move), written only when it changed.
        if self.sent % CPU_EVERY == 1 {
            let c = self.shared.ctl();
            let me = current_cpu();
            if c.cpus.0[0].load(Ordering::Relaxed) != me {
                c.cpus.0[0].store(me, Ordering::Relaxed);
            }
        }
    }

    /// Sends one message, waiting as `how` says while the ring (or the slab) is full, at most until
    /// `deadline`. [`Error::Full`] if the deadline passed.
    pub fn send(
        &mut self,
        frames: &[&[u8]],
        how: Wait,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        loop {
            match self.try_send(frames) {
                Err(Error::Full) => {}
                other => return other,
            }
            let shared = self.shared.clone();
            // The refused attempt saw this much space given back; try again once more is.
            let (head, returned) = (self.head, self.ret_head);
            let cpus = &shared.ctl().cpus.0;
            let room = how.until(
                &shared.ctl().writer_wait.0,
                (&cpus[0], &cpus[1]),
                deadline,
                || {
                    let c = shared.ctl();
                    c.released.0.head.load(Ordering::Acquire) != head
                        || c.ret_tail.0.load(Ordering::Acquire) != returned
                        || shared.closed() & CONSUMER_CLOSED != 0
                },
            );
            if !room {
                return Err(Error::Full);
            }
        }
    }

    /// Writes the body of a record of `n` slots at `pos` and returns its header word (for the
    /// caller to store, see [`Producer::put_header`]).
    fn write_record(&self, pos: u64, len: u32, flags: u16, n: u16, body: &[u8]) -> u64 {
        let at = self.shared.slot(pos);
        // SAFETY: the record's `n` slots from `pos` are inside the slots part (the caller placed it
        // so that it does not wrap) and free (before `head + cap`); `body` fits in them
        // (RECORD_HEADER + len <= n * SLOT by construction).
        unsafe {
            std::ptr::copy_nonoverlapping(body.as_ptr(), at.add(RECORD_HEADER), body.len());
        }
        header_word(len, flags, n)
    }

    /// Reads and checks what the consumer has consumed (`head`, then `taken`).
    fn read_head(&mut self) -> Result<(), Error> {
        let released = &self.shared.ctl().released.0;
        let head = released.head.load(Ordering::Acquire);
        let taken = released.taken.load(Ordering::Acquire);
        if head < self.head || head > self.tail || taken < self.taken || taken > self.sent {
            return Err(Error::Corrupt(format!(
                "head {head} outside {}..={} or taken {taken} outside {}..={}",
                self.head, self.tail, self.taken, self.sent
            )));
        }
        self.head = head;
        self.taken = taken;
        Ok(())
    }

    /// Takes back the slab runs the consumer has given back, checking each.
    fn take_returns(&mut self) -> Result<(), Error> {
        let chunks = u64::from(self.shared.cfg.chunks);
        if chunks == 0 {
            return Ok(());
        }
        let tail = self.shared.ctl().ret_tail.0.load(Ordering::Acquire);
        if tail < self.ret_head || tail - self.ret_head > chunks {
            return Err(Error::Corrupt("return ring index out of bounds".into()));
        }
        while self.ret_head < tail {
            let v = self
                .shared
                .ret((self.ret_head % chunks) as usize)
                .load(Ordering::Relaxed);
            let (start, count) = ((v >> 32) as u32, v as u32);
            if !self.slab.free(start, count) {
                return Err(Error::Corrupt(format!(
                    "slab run {start}+{count} given back but not lent"
                )));
            }
            self.ret_head += 1;
        }
        Ok(())
    }

    /// Whether a small message would fit now (looks at the consumer's `head` again).
    pub fn writable(&mut self) -> Result<bool, Error> {
        if self.shared.closed() & CONSUMER_CLOSED != 0 {
            return Ok(true);
        }
        // A ring made by `local` grows: only its bound on messages holds a message back.
        let room = |p: &Producer| {
            p.sent - p.taken < p.bound && (p.shared.local || p.tail - p.head < p.shared.cap())
        };
        if room(self) {
            return Ok(true);
        }
        self.read_head()?;
        Ok(room(self))
    }

    /// Whether the consumer has taken every message sent (as far as it has said: it says so at
    /// least when it finds the ring empty).
    pub fn is_empty(&mut self) -> Result<bool, Error> {
        if self.sent != self.taken {
            self.read_head()?;
        }
        Ok(self.sent == self.taken)
    }

    /// Makes the consumer call `waker` instead of a futex wake when this producer waits for room
    /// (and the close wake the same way): for a producer that waits in poll(2) beside other things
    /// rather than in [`Producer::send`]. Set once, before use; see [`Producer::arm`].
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        let _ = self.shared.waker.set(Box::new(waker));
    }

    /// Before waiting elsewhere for room after a refused [`Producer::try_send`]: asks the consumer
    /// to wake us (through its waker) when it gives space back. Returns whether space came back
    /// already (or the ring closed): then do not wait. Call [`Producer::disarm`] after the wait.
    pub fn arm(&self) -> bool {
        let c = self.shared.ctl();
        self.shared.arm(&c.writer_wait.0);
        c.released.0.head.load(Ordering::Acquire) != self.head
            || c.ret_tail.0.load(Ordering::Acquire) != self.ret_head
            || self.shared.closed() & CONSUMER_CLOSED != 0
    }

    /// Ends a wait announced by [`Producer::arm`].
    pub fn disarm(&self) {
        self.shared.ctl().writer_wait.0.store(0, Ordering::Relaxed);
    }

    /// Says the producer is done: the consumer gets [`Error::Closed`] once it has read everything.
    pub fn close(&self) {
        self.shared.set_closed(PRODUCER_CLOSED);
    }

    /// Whether the consumer has closed its end.
    pub fn peer_closed(&self) -> bool {
        self.shared.closed() & CONSUMER_CLOSED != 0
    }

    /// A handle that closes the ring from anywhere (for example when the other process is seen to
    /// die), waking both ends.
    pub fn closer(&self) -> Closer {
        Closer {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Closes a ring from outside its ends (see [`Producer::closer`], [`Consumer::closer`]).
#[derive(Clone)]
pub struct Closer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closer").finish_non_exhaustive()
    }
}

impl Closer {
    /// Marks both ends closed and wakes whoever waits.
    pub fn close(&self) {
        self.shared.set_closed(PRODUCER_CLOSED | CONSUMER_CLOSED);
    }
}

/// The reading end of a ring. Single consumer: one thread at a time; the messages it returns may go
/// anywhere.
pub struct Consumer {
    shared: Arc<Shared>,
    /// The next record to read (a running slot count).
    head: u64,
    /// Messages taken (a running count over the rings a [`local`] one grew into).
    taken: u64,
    /// The last `head` and `taken` published.
    published: (u64, u64),
    /// Publish after this many messages taken (besides a quarter of the ring's slots).
    step: u64,
    /// Whether we published since [`Consumer::stepped`] last looked.
    stepped: bool,
    returns: Arc<Returns>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    fn new(shared: Arc<Shared>) -> Consumer {
        let returns = Arc::new(Returns {
            shared: shared.clone(),
            tail: Mutex::new(0),
        });
        Consumer {
            shared,
            head: 0,
            taken: 0,
            published: (0, 0),
            step: u64::MAX,
            stepped: false,
            returns,
        }
    }

    /// Follows the LINK record at `pos` (a ring made by [`local`]) to the next ring, and reads on
    /// from its start.
    #[cold]
    fn follow(&mut self, pos: u64) {
        // SAFETY: a LINK record of this process's producer (the ring is `local`, checked by the
        // caller) holds the `Arc` of the next ring, made by `Arc::into_raw`, which we take once (the
        // record is zeroed now and we move past it).
        let next = unsafe {
            let raw = std::ptr::read(
                self.shared
                    .slot(pos)
                    .add(RECORD_HEADER)
                    .cast::<*const Shared>(),
            );
            Arc::from_raw(raw)
        };
        self.shared.header(pos).store(0, Ordering::Relaxed);
        self.head = pos + 1;
        self.publish();
        self.returns = Arc::new(Returns {
            shared: next.clone(),
            tail: Mutex::new(0),
        });
        self.shared = next;
        self.head = 0;
        self.published.0 = 0;
        // The producer reads `taken` in the new ring from now on.
        self.publish_taken();
    }

    /// The reading end of the ring at `offset` in a shared `region` (see [`init`]).
    #[cfg(not(loom))]
    pub fn attach(
        region: &std::sync::Arc<Region>,
        offset: usize,
        cfg: Config,
    ) -> Result<Consumer, Error> {
        Ok(Consumer::new(Arc::new(attach(region, offset, cfg)?)))
    }

    /// The next message (its frames), if one is there. [`Error::Closed`] once the producer has
    /// closed and everything has been read; [`Error::Corrupt`] if the ring breaks its rules.
    pub fn try_recv(&mut self) -> Result<Option<Vec<Bytes>>, Error> {
        let mut frames = Vec::with_capacity(1);
        let got = self.try_recv_with(|frame, _| {
            frames.push(match frame {
                Frame::Inline(bytes) => Bytes::copy_from_slice(bytes),
                Frame::Large(bytes) => bytes,
            });
        })?;
        Ok(got.then_some(frames))
    }

    /// Hands the next message's frames, in order, to `each` (with whether more follow), without
    /// allocating: small frames are borrowed from the slots. `Ok(false)` if no message is there. On
    /// [`Error::Corrupt`], frames already handed over belong to a broken message: discard them.
    #[inline]
    pub fn try_recv_with(&mut self, mut each: impl FnMut(Frame<'_>, bool)) -> Result<bool, Error> {
        // The usual message, one frame copied into the slots, read in a few steps; anything else
        // (nothing there included) takes the general way, which checks the same and more.
        let head = self.head;
        let word = self.shared.header(head).load(Ordering::Acquire);
        let (len, flags, n) = (word as u32 as usize, (word >> 32) as u16, word >> 48);
        let cap = self.shared.cap();
        let plain = flags == 0
            && n != 0
            && slot_index(head, cap) + n <= cap
            && len <= self.shared.inline_max
            && RECORD_HEADER + len <= n as usize * SLOT;
        if plain {
            let at = self.shared.slot(head);
            // SAFETY: the `len` bytes after the header lie within the record's `n` slots (checked
            // just above), which do not wrap, and stay ours until `head` passes them (after `each`).
            each(
                Frame::Inline(unsafe { std::slice::from_raw_parts(at.add(RECORD_HEADER), len) }),
                false,
            );
            self.taken_to(head + n);
            return Ok(true);
        }
        self.recv_general(&mut each)
    }

    /// [`Consumer::try_recv_with`] for every message (and for no message).
    fn recv_general(&mut self, mut each: impl FnMut(Frame<'_>, bool)) -> Result<bool, Error> {
        loop {
            if !self.has_message() {
                self.publish();
                if self.shared.closed() & PRODUCER_CLOSED != 0 && !self.has_message() {
                    return Err(Error::Closed);
                }
                return Ok(false);
            }
            // A LINK is a record of its own: follow it, and look again in the next ring.
            let first = self.shared.header(self.head).load(Ordering::Acquire);
            if (first >> 32) as u16 & LINK == 0 {
                break;
            }
            if !self.shared.local || first >> 48 != 1 {
                return Err(Error::Corrupt("a LINK record in a shared ring".into()));
            }
            self.follow(self.head);
        }
        let cfg = self.shared.cfg;
        let cap = self.shared.cap();
        let mut pos = self.head;
        loop {
            // Read once, then checked: a hostile peer may change it at any time. The first record's
            // header was published last (acquire); the others were written before it.
            let word = self.shared.header(pos).load(Ordering::Acquire);
            if word == 0 {
                return Err(Error::Corrupt(format!("message cut short at {pos}")));
            }
            let len = word as u32 as usize;
            let flags = (word >> 32) as u16;
            let n = word >> 48;
            let at = self.shared.slot(pos);
            let idx = slot_index(pos, cap);
            if n == 0 || idx + n > cap || pos + n - self.head > cap {
                return Err(Error::Corrupt(format!("record of {n} slots at {pos}")));
            }
            let record = pos;
            pos += n;
            if flags & PAD != 0 {
                if idx + n != cap {
                    return Err(Error::Corrupt("padding short of the ring's end".into()));
                }
                continue;
            }
            let frame = if flags & SLAB != 0 {
                // SAFETY: the 8 body bytes follow the header inside the same slot.
                let body: [u8; 8] =
                    unsafe { std::ptr::read_volatile(at.add(RECORD_HEADER).cast()) };
                let start = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                let count = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let room = count as usize * cfg.chunk_size as usize;
                let fits = count >= 1
                    && start.checked_add(count).is_some_and(|e| e <= cfg.chunks)
                    && len > self.shared.inline_max
                    && len <= room;
                if n != 1 || !fits {
                    return Err(Error::Corrupt(format!(
                        "slab run {start}+{count} for {len} bytes"
                    )));
                }
                Frame::Large(Bytes::from_owner(SlabBytes {
                    returns: self.returns.clone(),
                    ptr: self.shared.chunk(start),
                    len,
                    start,
                    count,
                }))
            } else if flags & (REF | LINK) != 0 {
                if !self.shared.local || flags & LINK != 0 || n != 1 {
                    return Err(Error::Corrupt(format!(
                        "a moved frame or a LINK at {record}, inside a message or a shared ring"
                    )));
                }
                // Taken now, so that the ring's drop never takes it again.
                self.shared.header(record).store(0, Ordering::Relaxed);
                // SAFETY: the ring is `local`: its producer, in this process, moved a `Bytes` into
                // this record (`Producer::write_message`), which we take once (its header reads 0
                // now, and we move past it).
                Frame::Large(unsafe { std::ptr::read(at.add(RECORD_HEADER).cast::<Bytes>()) })
            } else {
                if len > self.shared.inline_max || RECORD_HEADER + len > n as usize * SLOT {
                    return Err(Error::Corrupt(format!("inline frame of {len} bytes")));
                }
                // SAFETY: the `len` bytes after the header lie within the record's `n` slots (checked
                // above), which do not wrap, and stay ours until `head` passes them (after `each`).
                Frame::Inline(unsafe { std::slice::from_raw_parts(at.add(RECORD_HEADER), len) })
            };
            let more = flags & MORE != 0;
            each(frame, more);
            if !more {
                break;
            }
        }
        self.taken_to(pos);
        Ok(true)
    }

    /// After a message that ends before slot `end`: its slots read 0 in the next lap until a record
    /// is written there, and what we took is published once per step.
    #[inline]
    fn taken_to(&mut self, end: u64) {
        for p in self.head..end {
            self.shared.header(p).store(0, Ordering::Relaxed);
        }
        self.head = end;
        self.taken += 1;
        let (head, taken) = self.published;
        if self.head - head >= self.shared.cap() / 4 || self.taken - taken >= self.step {
            self.publish();
            self.stepped = true;
        }
    }

    /// For a consumer that found no message ([`Consumer::has_message`]) and will not call
    /// [`Consumer::try_recv_with`]: tells the producer what it took, as that call would.
    #[inline]
    pub fn idle(&mut self) {
        self.publish();
    }

    /// Whether this end told the producer that it took a step of messages (or moved to a ring the
    /// producer grew) since the last call: the moment for the owner of a ring made by [`local`] to
    /// look for a producer waiting for room. A producer held at the bound left at least a step to
    /// take, so telling it of less (as when the ring is found empty) never needs a look.
    pub fn stepped(&mut self) -> bool {
        std::mem::take(&mut self.stepped)
    }

    /// Waits for the next message as `how` says, at most until `deadline` (`Ok(None)` then).
    pub fn recv(
        &mut self,
        how: Wait,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<Bytes>>, Error> {
        loop {
            if let Some(m) = self.try_recv()? {
                return Ok(Some(m));
            }
            if !self.wait(how, deadline) {
                return Ok(None);
            }
        }
    }

    /// Waits as `how` says until a message may be there or the ring is closed (`true`), or until
    /// `deadline` (`false`). For callers of [`Consumer::try_recv_with`].
    pub fn wait(&self, how: Wait, deadline: Option<Instant>) -> bool {
        let shared = &self.shared;
        let head = self.head;
        let cpus = &shared.ctl().cpus.0;
        how.until(
            &shared.ctl().reader_wait.0,
            (&cpus[1], &cpus[0]),
            deadline,
            || shared.header(head).load(Ordering::Acquire) != 0 || shared.closed() != 0,
        )
    }

    /// Whether a message is there (not counting the close): a cheap look, for pollers.
    pub fn has_message(&self) -> bool {
        self.shared.header(self.head).load(Ordering::Acquire) != 0
    }

    /// Whether spinning for the next message can pay: the producer last ran on another CPU than
    /// ours (or we cannot tell). On our own CPU it cannot run while we spin.
    pub fn spin_worthwhile(&self) -> bool {
        let me = current_cpu();
        let peer = self.shared.ctl().cpus.0[0].load(Ordering::Relaxed);
        me == 0 || peer == 0 || peer != me
    }

    /// Whether the producer has closed its end (messages may still be there to read).
    pub fn peer_closed(&self) -> bool {
        self.shared.closed() & PRODUCER_CLOSED != 0
    }

    /// Makes the producer call `waker` instead of a futex wake when this consumer waits (and the
    /// close wake the same way): for a consumer that waits in poll(2) beside other things rather
    /// than in [`Consumer::wait`]. Set once, before use; see [`Consumer::arm`].
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        let _ = self.shared.waker.set(Box::new(waker));
    }

    /// Before waiting elsewhere for a message: asks the producer to wake us (through its waker) when
    /// it publishes one. Returns whether one is there already (or the ring closed): then do not
    /// wait. Call [`Consumer::disarm`] after the wait.
    pub fn arm(&mut self) -> bool {
        // Room made so far goes back first: the producer may be waiting for it.
        self.publish();
        self.shared.arm(&self.shared.ctl().reader_wait.0);
        self.readable()
    }

    /// Ends a wait announced by [`Consumer::arm`].
    pub fn disarm(&self) {
        self.shared.ctl().reader_wait.0.store(0, Ordering::Relaxed);
    }

    /// Whether a message may be there (a cheap look, for pollers).
    pub fn readable(&self) -> bool {
        self.has_message() || self.shared.closed() & PRODUCER_CLOSED != 0
    }

    /// Publishes what we have consumed (`taken`, then `head`), waking a producer that waits for
    /// room on the ring.
    fn publish(&mut self) {
        if self.published.0 == self.head {
            return;
        }
        self.published = (self.head, self.taken);
        let c = self.shared.ctl();
        c.released.0.taken.store(self.taken, Ordering::Relaxed);
        c.released.0.head.store(self.head, Ordering::Release);
        if !self.shared.local {
            self.shared.wake_if_waiting(&c.writer_wait.0);
        }
    }

    /// Publishes `taken` alone (in a ring we just moved to, where `head` is still 0).
    fn publish_taken(&mut self) {
        self.published.1 = self.taken;
        self.stepped = true;
        let c = self.shared.ctl();
        c.released.0.taken.store(self.taken, Ordering::Release);
    }

    /// A handle that closes the ring from anywhere, waking both ends.
    pub fn closer(&self) -> Closer {
        Closer {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Where we stopped, for the ring's drop (a `local` ring drops what is left from there).
        self.publish();
        self.shared.set_closed(CONSUMER_CLOSED);
    }
}

/// One frame handed to [`Consumer::try_recv_with`].
#[derive(Debug)]
pub enum Frame<'a> {
    /// A frame of up to [`Config::inline_max`] bytes, borrowed from the ring's slots for the call.
    Inline(&'a [u8]),
    /// A larger frame: read in place from the slab (its space goes back when the last clone
    /// drops), or moved through a ring made by [`local`].
    Large(Bytes),
}

/// The consumer's side of the return ring; slab messages, wherever they are dropped, give their run
/// back through it.
struct Returns {
    shared: Arc<Shared>,
    /// Entries written (a running count), under the lock: messages drop on any thread.
    tail: Mutex<u64>,
}

impl Returns {
    fn give_back(&self, start: u32, count: u32) {
        let chunks = u64::from(self.shared.cfg.chunks);
        {
            let mut tail = self
                .tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Never more entries outstanding than runs lent, so never more than `chunks`.
            let v = (u64::from(start) << 32) | u64::from(count);
            self.shared
                .ret((*tail % chunks) as usize)
                .store(v, Ordering::Relaxed);
            *tail += 1;
            self.shared.ctl().ret_tail.0.store(*tail, Ordering::Release);
        }
        self.shared
            .wake_if_waiting(&self.shared.ctl().writer_wait.0);
    }
}

/// A frame read in place from the slab; gives its run back when dropped.
struct SlabBytes {
    returns: Arc<Returns>,
    ptr: *mut u8,
    len: usize,
    start: u32,
    count: u32,
}

// SAFETY: the pointer is into the region, which `returns` keeps alive; the bytes are only read.
unsafe impl Send for SlabBytes {}
// SAFETY: as above.
unsafe impl Sync for SlabBytes {}

impl AsRef<[u8]> for SlabBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lies inside the slab run (checked when read), which the producer
        // does not reuse until we give it back (in Drop). A hostile producer could still write into
        // it: what we see then are bytes it chose, never memory outside the region.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for SlabBytes {
    fn drop(&mut self) {
        self.returns.give_back(self.start, self.count);
    }
}

/// The producer's private record of which slab chunks are lent. Runs are placed first-fit (the
/// lowest free chunks that hold them), so the pages a stream keeps touching are the few at the
/// slab's start: a slab's memory is only what its largest burst needed, however large the slab (a
/// memfd's pages exist once written), and a chunk used again is already in memory (next-fit went
/// round the whole slab, so the first lap of 1 MiB messages paid a page fault per 4 KiB).
struct SlabAlloc {
    used: Vec<bool>,
    /// The chunk count of the run starting at each chunk (0: no run starts there).
    runs: Vec<u32>,
    /// Every chunk below this one is lent.
    lowest: usize,
}

impl SlabAlloc {
    fn new(chunks: usize) -> SlabAlloc {
        SlabAlloc {
            used: vec![false; chunks],
            runs: vec![0; chunks],
            lowest: 0,
        }
    }

    /// A run of `count` free chunks, marked lent.
    fn alloc(&mut self, count: u32) -> Option<u32> {
        let count = count as usize;
        let n = self.used.len();
        if count == 0 || count > n {
            return None;
        }
        let mut start = self.lowest;
        while start + count <= n {
            match self.used[start..start + count].iter().rposition(|&u| u) {
                None => {
                    self.used[start..start + count].fill(true);
                    self.runs[start] = count as u32;
                    if start == self.lowest {
                        let after = start + count;
                        self.lowest = self.used[after..]
                            .iter()
                            .position(|&u| !u)
                            .map_or(n, |free| after + free);
                    }
                    return u32::try_from(start).ok();
                }
                Some(busy) => start += busy + 1,
            }
        }
        None
    }

    /// Takes back a run; false if no such run was lent.
    fn free(&mut self, start: u32, count: u32) -> bool {
        let start = start as usize;
        if count == 0 || self.runs.get(start) != Some(&count) {
            return false;
        }
        self.runs[start] = 0;
        self.used[start..start + count as usize].fill(false);
        self.lowest = self.lowest.min(start);
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn small() -> Config {
        Config {
            slots: 16,
            chunks: 4,
            chunk_size: 4096,
        }
    }

    #[test]
    fn slab_runs_are_lent_once_and_taken_back_once() {
        let mut a = SlabAlloc::new(8);
        let x = a.alloc(3).unwrap();
        let y = a.alloc(5).unwrap();
        assert_ne!(x, y);
        assert_eq!(a.alloc(1), None);
        assert!(a.free(x, 3));
        assert!(!a.free(x, 3), "a run is taken back once");
        assert!(!a.free(y, 2), "with the count it was lent with");
        assert_eq!(a.alloc(3), Some(x));
        assert_eq!(a.alloc(9), None);
    }

    #[test]
    fn slab_runs_go_to_the_lowest_chunks_that_hold_them() {
        let mut a = SlabAlloc::new(16);
        let runs: Vec<u32> = [2, 3, 2, 4].iter().map(|&n| a.alloc(n).unwrap()).collect();
        assert_eq!(runs, [0, 2, 5, 7]);
        // Given back in any order, the chunks at the start are used again first.
        assert!(a.free(5, 2));
        assert!(a.free(0, 2));
        assert_eq!(a.alloc(1), Some(0));
        assert_eq!(a.alloc(2), Some(5), "1 free chunk at 1 is too small for 2");
        assert_eq!(a.alloc(1), Some(1));
        assert_eq!(a.alloc(6), None, "11..16 holds 5");
        assert_eq!(a.alloc(5), Some(11));
        // A stream of one message at a time keeps to the same chunks.
        let mut b = SlabAlloc::new(64);
        for _ in 0..100 {
            let r = b.alloc(16).unwrap();
            assert_eq!(r, 0);
            assert!(b.free(r, 16));
        }
    }

    #[test]
    fn frames_small_and_large_keep_their_boundaries() {
        let (mut p, mut c) = channel(small()).unwrap();
        let big = vec![7u8; 9000];
        p.try_send(&[b"a", b"", &big, b"z"]).unwrap();
        let m = c.try_recv().unwrap().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(&m[0][..], b"a");
        assert!(m[1].is_empty());
        assert_eq!(&m[2][..], &big[..]);
        assert_eq!(&m[3][..], b"z");
        assert!(c.try_recv().unwrap().is_none());
    }

    /// Which way each frame took: `true` for the slab.
    fn ways(cfg: Config, frames: &[&[u8]]) -> Vec<bool> {
        let (mut p, mut c) = channel(cfg).unwrap();
        p.try_send(frames).unwrap();
        let mut slab = Vec::new();
        assert!(c
            .try_recv_with(|frame, _| slab.push(matches!(frame, Frame::Large(_))))
            .unwrap());
        slab
    }

    #[test]
    fn a_larger_ring_copies_frames_of_a_few_kib_into_its_slots() {
        assert_eq!(small().inline_max(), INLINE_MAX);
        assert_eq!(Config::default().inline_max(), INLINE_LIMIT);
        let (k1, k4, k9) = (vec![1u8; 1024], vec![4u8; 4096], vec![9u8; 9000]);
        assert_eq!(
            ways(Config::default(), &[&k1, &k4, &k9]),
            [false, false, true]
        );
        let small_ring = Config {
            chunks: 8,
            ..small()
        };
        assert_eq!(ways(small_ring, &[&k1[..INLINE_MAX]]), [false]);
        assert_eq!(ways(small_ring, &[&k1]), [true]);
    }

    #[test]
    fn frames_can_be_borrowed_without_a_copy() {
        let (mut p, mut c) = channel(small()).unwrap();
        let big = vec![9u8; 5000];
        p.try_send(&[b"head", &big]).unwrap();
        let mut seen = Vec::new();
        assert!(c
            .try_recv_with(|frame, more| match frame {
                Frame::Inline(b) => seen.push((b.to_vec(), more, false)),
                Frame::Large(b) => seen.push((b.to_vec(), more, true)),
            })
            .unwrap());
        assert_eq!(
            seen,
            vec![(b"head".to_vec(), true, false), (big, false, true)]
        );
        assert!(!c.try_recv_with(|_, _| {}).unwrap());
    }

    #[test]
    fn a_full_ring_refuses_then_takes_again_once_read() {
        let (mut p, mut c) = channel(small()).unwrap();
        let mut sent = 0u32;
        while p.try_send(&[&sent.to_le_bytes()]).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 16, "one slot per small message");
        assert!(matches!(p.try_send(&[b"x"]), Err(Error::Full)));
        for i in 0..sent {
            assert_eq!(&c.try_recv().unwrap().unwrap()[0][..], &i.to_le_bytes());
        }
        // Reading everything published `head` (the ring looked empty).
        assert!(c.try_recv().unwrap().is_none());
        p.try_send(&[b"again"]).unwrap();
        assert_eq!(&c.try_recv().unwrap().unwrap()[0][..], b"again");
    }

    #[test]
    fn slab_space_comes_back_when_the_message_is_dropped() {
        let (mut p, mut c) = channel(small()).unwrap();
        let big = vec![1u8; 4 * 4096];
        p.try_send(&[&big]).unwrap();
        assert!(matches!(p.try_send(&[&big]), Err(Error::Full)), "slab full");
        let m = c.try_recv().unwrap().unwrap();
        assert!(
            matches!(p.try_send(&[&big]), Err(Error::Full)),
            "still held"
        );
        let alias = m[0].clone();
        drop(m);
        assert!(
            matches!(p.try_send(&[&big]), Err(Error::Full)),
            "a clone holds it"
        );
        assert_eq!(alias.len(), big.len());
        drop(alias);
        p.try_send(&[&big]).unwrap();
    }

    /// A frame that counts its drops, for rings that move frames.
    fn counted(len: usize, drops: &std::sync::Arc<()>) -> Bytes {
        struct Owner(
            Vec<u8>,
            #[allow(dead_code, reason = "held for its count")] std::sync::Arc<()>,
        );
        impl AsRef<[u8]> for Owner {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        Bytes::from_owner(Owner(vec![7; len], drops.clone()))
    }

    #[test]
    fn a_local_ring_grows_keeps_order_and_moves_large_frames() {
        let (mut p, mut c) = local(u64::MAX, 94);
        let token = std::sync::Arc::new(());
        let n = if cfg!(miri) { 60 } else { 3000 };
        let mut moved = Vec::new();
        for i in 0..n {
            let big = counted(2000 + i, &token);
            moved.push(big.as_ptr());
            let small = Bytes::from((i as u32).to_le_bytes().to_vec());
            p.try_send_payloads(&[small, big]).unwrap();
        }
        assert!(p.shared.cap() > u64::from(LOCAL_FIRST_SLOTS), "it grew");
        for (i, at) in moved.iter().enumerate() {
            let m = c.try_recv().unwrap().unwrap();
            assert_eq!(&m[0][..], &(i as u32).to_le_bytes());
            assert_eq!(m[1].len(), 2000 + i);
            assert_eq!(m[1].as_ptr(), *at, "moved, not copied");
        }
        assert!(c.try_recv().unwrap().is_none());
        assert!(p.is_empty().unwrap());
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            1,
            "every frame dropped once"
        );
    }

    #[test]
    fn a_local_ring_copies_borrowed_frames_up_to_its_limit_and_moves_shared_ones() {
        let (mut p, mut c) = local(u64::MAX, 1024);
        let borrowed = vec![3u8; 1025];
        let shared = Bytes::from(vec![5u8; 1024]);
        p.try_send(&[&borrowed[..1024]]).unwrap();
        p.try_send(&[&borrowed[..]]).unwrap();
        p.try_send_payloads(std::slice::from_ref(&shared)).unwrap();
        // Per message: copied into the slots, and the address of a moved buffer.
        let mut ways = Vec::new();
        while c
            .try_recv_with(|frame, _| {
                ways.push(match frame {
                    Frame::Inline(b) => (b.len(), None),
                    Frame::Large(b) => (b.len(), Some(b.as_ptr())),
                })
            })
            .unwrap()
        {}
        assert_eq!(ways.len(), 3);
        assert_eq!(
            ways[0],
            (1024, None),
            "a borrowed frame at the limit is copied"
        );
        assert_eq!(ways[1].0, 1025);
        assert!(
            ways[1].1.is_some_and(|at| at != borrowed.as_ptr()),
            "one past it is copied into a buffer of its own"
        );
        assert_eq!(
            ways[2],
            (1024, Some(shared.as_ptr())),
            "a shared buffer is moved"
        );
    }

    #[test]
    fn a_local_ring_holds_its_bound_and_gives_room_back_in_steps() {
        let (mut p, mut c) = local(5, 94);
        for i in 0..5u8 {
            p.try_send(&[&[i]]).unwrap();
        }
        assert!(!p.writable().unwrap());
        assert!(matches!(p.try_send(&[b"x"]), Err(Error::Full)));
        assert!(c.try_recv().unwrap().is_some());
        assert!(!c.stepped(), "one taken, not yet told (steps of 2)");
        assert!(matches!(p.try_send(&[b"x"]), Err(Error::Full)));
        assert!(c.try_recv().unwrap().is_some());
        assert!(c.stepped());
        p.try_send(&[b"5"]).unwrap();
        p.try_send(&[b"6"]).unwrap();
        assert!(matches!(p.try_send(&[b"x"]), Err(Error::Full)));
        let rest: Vec<u8> = std::iter::from_fn(|| c.try_recv().unwrap())
            .map(|m| m[0][0])
            .collect();
        assert_eq!(rest, [2, 3, 4, b'5', b'6']);
        assert!(c.stepped());
        assert!(
            p.is_empty().unwrap(),
            "a consumer that finds the ring empty tells all it took"
        );
    }

    #[test]
    fn what_a_local_ring_still_holds_is_dropped_with_it() {
        for consumer_first in [false, true] {
            let token = std::sync::Arc::new(());
            let (mut p, mut c) = local(u64::MAX, 94);
            for i in 0..40 {
                p.try_send_payloads(&[counted(1500 + i, &token)]).unwrap();
            }
            drop(c.try_recv().unwrap());
            if consumer_first {
                drop(c);
                let _ = p.try_send_payloads(&[counted(1500, &token)]);
                drop(p);
            } else {
                drop(p);
                drop(c);
            }
            assert_eq!(std::sync::Arc::strong_count(&token), 1, "{consumer_first}");
        }
    }

    #[test]
    fn a_shared_ring_refuses_moved_frames_and_links() {
        for flag in [REF, LINK] {
            let (mut p, mut c) = channel(small()).unwrap();
            p.try_send(&[b"first"]).unwrap();
            // Stands for a hostile peer: a record that claims to hold a pointer.
            p.shared
                .header(1)
                .store(header_word(5000, flag, 1), Ordering::Release);
            assert!(c.try_recv().unwrap().is_some());
            assert!(matches!(c.try_recv(), Err(Error::Corrupt(_))), "{flag}");
        }
    }

    #[test]
    fn too_large_and_closed_are_errors() {
        let (mut p, c) = channel(small()).unwrap();
        assert!(matches!(
            p.try_send(&[&vec![0u8; 5 * 4096]]),
            Err(Error::TooLarge(_))
        ));
        // Frames that fit the slab one by one but not together: refused, never waited for.
        let three = vec![0u8; 3 * 4096];
        assert!(matches!(
            p.try_send(&[&three, &three]),
            Err(Error::TooLarge(_))
        ));
        p.try_send(&[&three]).unwrap();
        drop(c);
        assert!(matches!(p.try_send(&[b"x"]), Err(Error::Closed)));
    }

    #[test]
    fn the_consumer_sees_closed_after_the_last_message() {
        let (mut p, mut c) = channel(small()).unwrap();
        p.try_send(&[b"last"]).unwrap();
        drop(p);
        assert_eq!(&c.try_recv().unwrap().unwrap()[0][..], b"last");
        assert!(matches!(c.try_recv(), Err(Error::Closed)));
    }

    #[test]
    fn blocking_ends_wake_each_other() {
        let (mut p, mut c) = channel(small()).unwrap();
        let how = Wait {
            spin: Duration::ZERO,
            busy: false,
        };
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        // Miri runs this a thousand times slower.
        let n = if cfg!(miri) { 300 } else { 10_000u32 };
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                p.send(&[&i.to_le_bytes()], how, deadline).unwrap();
            }
        });
        for i in 0..n {
            let m = c.recv(how, deadline).unwrap().unwrap();
            assert_eq!(&m[0][..], &i.to_le_bytes());
        }
        writer.join().unwrap();
    }
}

#[cfg(all(test, not(loom)))]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn cfg() -> Config {
        Config {
            slots: 64,
            chunks: 8,
            chunk_size: 4096,
        }
    }

    /// A message: frames of sizes that cross the inline limit and chunk boundaries.
    fn message() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let frame = prop_oneof![
            4 => 0usize..200,
            2 => 900usize..1100,
            1 => 4000usize..9000,
        ]
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n));
        proptest::collection::vec(frame, 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the interleaving of sends and receives, every message accepted arrives once, in
        /// order, frames intact; a refusal (Full) never loses or reorders anything.
        #[test]
        fn accepted_messages_arrive_once_in_order(
            ops in proptest::collection::vec((message(), any::<bool>(), 0usize..3), 1..60)
        ) {
            let (mut p, mut c) = channel(cfg()).unwrap();
            let mut expected: VecDeque<Vec<Vec<u8>>> = VecDeque::new();
            let mut held = Vec::new();
            for (msg, keep, reads) in ops {
                let frames: Vec<&[u8]> = msg.iter().map(Vec::as_slice).collect();
                match p.try_send(&frames) {
                    Ok(()) => expected.push_back(msg),
                    Err(Error::Full) | Err(Error::TooLarge(_)) => {}
                    Err(e) => prop_assert!(false, "{e}"),
                }
                for _ in 0..reads {
                    match c.try_recv().unwrap() {
                        Some(got) => {
                            let want = expected.pop_front().unwrap();
                            let got_v: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
                            prop_assert_eq!(&got_v, &want);
                            if keep && held.len() < 3 {
                                held.push(got);
                            }
                        }
                        None => prop_assert!(expected.is_empty()),
                    }
                }
            }
            drop(held);
            while let Some(got) = c.try_recv().unwrap() {
                let want = expected.pop_front().unwrap();
                let got_v: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
                prop_assert_eq!(got_v, want);
            }
            prop_assert!(expected.is_empty());
        }

        /// A peer that scribbles over the slots and the indices gets a `Corrupt` error or messages
        /// read within bounds: never a panic, never a read outside the region.
        #[test]
        fn garbage_in_shared_memory_is_an_error_not_a_crash(
            garbage in proptest::collection::vec(any::<u8>(), 0..(64 * 64)),
            head in any::<u64>(),
            taken in any::<u64>(),
            returns in any::<u64>(),
            ret_entry in any::<u64>(),
        ) {
            let (mut p, mut c) = channel(cfg()).unwrap();
            p.try_send(&[b"before", &[3u8; 5000]]).unwrap();
            let shared = c.shared.clone();
            // SAFETY: writes into the slots part (64 slots of 64 bytes) of the test's own region,
            // standing for a hostile process; no reference to those bytes is alive.
            unsafe {
                std::ptr::copy_nonoverlapping(garbage.as_ptr(), shared.slots, garbage.len());
            }
            let ctl = shared.ctl();
            for _ in 0..4 {
                match c.try_recv() {
                    Ok(Some(frames)) => {
                        for f in &frames {
                            prop_assert!(f.len() <= 8 * 4096);
                        }
                    }
                    Ok(None) | Err(Error::Corrupt(_)) | Err(Error::Closed) => {}
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
            ctl.released.0.head.store(head, Ordering::Release);
            ctl.released.0.taken.store(taken, Ordering::Release);
            ctl.ret_tail.0.store(returns % 16, Ordering::Release);
            shared.ret(0).store(ret_entry, Ordering::Release);
            for _ in 0..4 {
                match p.try_send(&[b"after", &[4u8; 5000]]) {
                    Ok(()) | Err(Error::Full) | Err(Error::Corrupt(_)) => {}
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
