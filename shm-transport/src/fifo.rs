//! The ring's protocol for values within one process: a single-producer/single-consumer queue of any
//! `T`, the queue of zring's inproc pipes and of the pipes between a socket and its I/O thread.
//!
//! [`fifo`] makes a queue as its two ends: a [`Writer`] and a [`Reader`]. Each end is `Send` but not
//! `Sync` and keeps its own position in plain cells, so one thread at a time uses it and a value
//! moves with no read-modify-write at all: the writer puts the value in its slot and releases the
//! slot's mark (the value's position plus one), the reader acquires the mark and takes the value.
//! The reader looks at the slot itself rather than at a shared count: a reader that keeps up with the
//! writer would otherwise read the count's cache line after every value, taking it from the writer
//! just before the writer writes it again, while the slot's line comes to the reader anyway, with
//! the value. The two running counts (`tail`: values written, `head`: values taken) are still
//! published, for the bound and for snapshots ([`Writer::len`]), but neither is read on the way of a
//! value: the writer reads `head` only when its copy says the queue is full, and the reader publishes
//! `head` once per step of values taken ([`Reader::pop_stepped`]: half the bound, a power of two, at
//! most [`STEP_MAX`]) and when it finds the queue empty, so that a writer held at the bound takes the
//! line of `head` once per step, not once per value (which moved a line between the cores per value,
//! both ways: 16 M msgs/s of 64 B over inproc before, see `docs/PERFORMANCE.md`). The reader's own
//! look for a next value is at the slot.
//!
//! Unlike the ring, values are moved, not copied into bytes (a large message body stays a reference),
//! and the slots are chunks of [`CHUNK`] values linked in order, made as values arrive: an idle queue
//! holds no chunk, a queue that stays short holds two, and the reader hands each chunk it has emptied
//! back to the writer (one spare), so a steady stream allocates nothing. The bound on the count of
//! values (the high-water mark) is separate from the storage.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr::null_mut;

use crate::sync::{Arc, AtomicPtr, AtomicU64, Ordering, UnsafeCell};

/// The most values the reader takes between two publications of `head`.
pub const STEP_MAX: u64 = 32;

/// Values per chunk.
#[cfg(not(loom))]
pub const CHUNK: usize = 32;
/// Values per chunk (small, so that loom's models cross chunks).
#[cfg(loom)]
pub const CHUNK: usize = 2;

/// One value's place. `full` is the position of the value it holds plus one, released after the
/// value is written: a slot of a reused chunk never looks full with an old value.
#[repr(C)]
struct Slot<T> {
    full: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A run of slots; `next` is set by the writer before it writes a value in the next chunk. Aligned
/// to a cache line, so that slots of a multiple of 64 octets each fill whole lines.
struct Chunk<T> {
    slots: [Slot<T>; CHUNK],
    next: AtomicPtr<Chunk<T>>,
}

impl<T> Chunk<T> {
    fn alloc() -> *mut Chunk<T> {
        Box::into_raw(Box::new(Chunk {
            slots: std::array::from_fn(|_| Slot {
                full: AtomicU64::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }),
            next: AtomicPtr::new(null_mut()),
        }))
    }
}

/// One value on its own cache line.
#[repr(C, align(64))]
struct Line<T>(T);

/// What the two ends share.
struct Core<T> {
    /// Values written.
    tail: Line<AtomicU64>,
    /// Values taken.
    head: Line<AtomicU64>,
    /// The first chunk, set once with the first value.
    first: AtomicPtr<Chunk<T>>,
    /// An emptied chunk the writer may reuse.
    spare: AtomicPtr<Chunk<T>>,
    /// Where the reader stopped, set when it is dropped: the chunk (null: it took nothing) and the
    /// position, from which the queue's own drop takes what is left.
    stopped: AtomicPtr<Chunk<T>>,
    stopped_at: AtomicU64,
    cap: u64,
    /// The reader publishes `head` when it is a multiple of this (a power of two).
    step: u64,
}

// SAFETY: values move from the writer's thread to the reader's, hence `T: Send`; the chunks are
// reached only by the two ends (each used by one thread at a time) and by the drop, following the
// protocol in the module's documentation.
unsafe impl<T: Send> Send for Core<T> {}
// SAFETY: as above: `&Core` itself only gives access to atomics.
unsafe impl<T: Send> Sync for Core<T> {}

impl<T> Core<T> {
    /// What an end's `Debug` shows.
    fn describe(&self, end: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(end)
            .field("tail", &self.tail.0.load(Ordering::Relaxed))
            .field("head", &self.head.0.load(Ordering::Relaxed))
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }

    /// Hands an emptied chunk to the writer, or frees it if the writer has one spare already.
    fn recycle(&self, chunk: *mut Chunk<T>) {
        // SAFETY: every value of `chunk` has been taken and the writer has moved on to a later
        // chunk, so nobody else reaches it.
        unsafe { &*chunk }.next.store(null_mut(), Ordering::Relaxed);
        if self
            .spare
            .compare_exchange(null_mut(), chunk, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: as above; it came from `Box::into_raw` in `Chunk::alloc`.
            drop(unsafe { Box::from_raw(chunk) });
        }
    }

    /// The value at `pos`, in the slot after `chunk` (the chunk of the value before it; null
    /// before the first), if it has been written: the chunk it is in, and its slot.
    fn peek(&self, chunk: *mut Chunk<T>, pos: u64) -> Option<(*mut Chunk<T>, &Slot<T>)> {
        let i = index(pos);
        let chunk = match (i, chunk.is_null()) {
            (0, true) => self.first.load(Ordering::Acquire),
            // SAFETY: `chunk` is live (the reader's, not handed back yet); the writer sets its
            // `next` before it writes the first value of the next chunk.
            (0, false) => unsafe { &*chunk }.next.load(Ordering::Acquire),
            _ => chunk,
        };
        if chunk.is_null() {
            return None;
        }
        // SAFETY: `chunk` is live: the reader's, or the one after it, which the writer linked and
        // which nobody frees before the reader has moved past it.
        let slot = unsafe { &(*chunk).slots[i] };
        (slot.full.load(Ordering::Acquire) == pos + 1).then_some((chunk, slot))
    }
}

impl<T> Drop for Core<T> {
    fn drop(&mut self) {
        // Both ends are gone: take what the reader left (written before or after it stopped).
        let mut chunk = self.stopped.load(Ordering::Acquire);
        let mut pos = self.stopped_at.load(Ordering::Acquire);
        while let Some((at, slot)) = self.peek(chunk, pos) {
            // SAFETY: the slot holds the value at `pos`, which nobody took.
            drop(slot.value.with_mut(|s| unsafe { (*s).assume_init_read() }));
            if at != chunk && !chunk.is_null() {
                // SAFETY: emptied and passed; it came from `Box::into_raw`.
                drop(unsafe { Box::from_raw(chunk) });
            }
            chunk = at;
            pos += 1;
        }
        if chunk.is_null() {
            chunk = self.first.load(Ordering::Acquire);
        }
        while !chunk.is_null() {
            // SAFETY: every value has been taken (above) and both ends are gone; the chunks from
            // the reader's on are linked by `next` and came from `Box::into_raw`.
            let next = unsafe { &*chunk }.next.load(Ordering::Acquire);
            // SAFETY: as above.
            drop(unsafe { Box::from_raw(chunk) });
            chunk = next;
        }
        let spare = self.spare.swap(null_mut(), Ordering::AcqRel);
        if !spare.is_null() {
            // SAFETY: the spare chunk is empty and no longer linked; it came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

fn index(pos: u64) -> usize {
    (pos % CHUNK as u64) as usize
}

/// A queue of at most `cap` values (at least one; `u64::MAX` for no bound), as its writing and its
/// reading end.
pub fn fifo<T>(cap: u64) -> (Writer<T>, Reader<T>) {
    let core = Arc::new(Core {
        tail: Line(AtomicU64::new(0)),
        head: Line(AtomicU64::new(0)),
        first: AtomicPtr::new(null_mut()),
        spare: AtomicPtr::new(null_mut()),
        stopped: AtomicPtr::new(null_mut()),
        stopped_at: AtomicU64::new(0),
        cap: cap.max(1),
        step: step(cap),
    });
    (
        Writer {
            core: core.clone(),
            chunk: Cell::new(null_mut()),
            pos: Cell::new(0),
            seen: Cell::new(0),
        },
        Reader {
            core,
            chunk: Cell::new(null_mut()),
            pos: Cell::new(0),
            published: Cell::new(0),
        },
    )
}

/// The reader's step for a bound of `cap`: half of it, at least 1 and at most [`STEP_MAX`], rounded
/// down to a power of two (so that a multiple of it needs no division to find).
fn step(cap: u64) -> u64 {
    let step = (cap / 2).clamp(1, STEP_MAX);
    1 << step.ilog2()
}

/// The writing end of a queue made by [`fifo`].
pub struct Writer<T> {
    core: Arc<Core<T>>,
    /// The chunk of the last value written; null before the first.
    chunk: Cell<*mut Chunk<T>>,
    /// Values written.
    pos: Cell<u64>,
    /// The reader's `head` as last read.
    seen: Cell<u64>,
}

// SAFETY: the end's cells and chunk pointer are used by the thread that holds it (it is not
// `Sync`); moving it moves the right to write, and the values it writes go to the reader's thread,
// hence `T: Send`.
unsafe impl<T: Send> Send for Writer<T> {}

impl<T> std::fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.describe("Writer", f)
    }
}

impl<T> Writer<T> {
    /// Appends `value`, or gives it back if the queue holds `cap` values.
    pub fn push(&self, value: T) -> Result<(), T> {
        if !self.has_room() {
            return Err(value);
        }
        self.put(value);
        Ok(())
    }

    /// Appends the value `make` makes, made straight in its slot, if the queue holds fewer than
    /// `cap` values (`false`: it is full, and `make` was not called). A `make` that returns `None`
    /// appends nothing.
    #[inline]
    pub fn push_with(&self, make: impl FnOnce() -> Option<T>) -> bool {
        if !self.has_room() {
            return false;
        }
        if let Some(value) = make() {
            self.put(value);
        }
        true
    }

    /// Whether the queue holds fewer than `cap` values (the reader's count read again only when
    /// our copy says full).
    #[inline]
    fn has_room(&self) -> bool {
        let core = &*self.core;
        let pos = self.pos.get();
        if pos - self.seen.get() < core.cap {
            return true;
        }
        self.seen.set(core.head.0.load(Ordering::Acquire));
        pos - self.seen.get() < core.cap
    }

    /// Writes `value` in the next slot and publishes it; the caller checked `has_room`.
    #[inline]
    fn put(&self, value: T) {
        let core = &*self.core;
        let pos = self.pos.get();
        let i = index(pos);
        if i == 0 {
            self.link();
        }
        // SAFETY: our chunk is live (`link`); slot `i` is empty: it is fresh, or the reader took its
        // value before handing the chunk back through `spare`; the reader reads it only after we
        // release its mark, below.
        let slot = unsafe { &(*self.chunk.get()).slots[i] };
        slot.value.with_mut(|s| {
            // SAFETY: we are the one writer and the slot is empty (above).
            unsafe { (*s).write(value) };
        });
        self.pos.set(pos + 1);
        slot.full.store(pos + 1, Ordering::Release);
        core.tail.0.store(pos + 1, Ordering::Release);
    }

    /// Our chunk is full (or there is none yet): links a fresh one after it.
    #[cold]
    fn link(&self) {
        let core = &*self.core;
        let fresh = match core.spare.swap(null_mut(), Ordering::AcqRel) {
            c if c.is_null() => Chunk::alloc(),
            c => c,
        };
        let chunk = self.chunk.get();
        if chunk.is_null() {
            core.first.store(fresh, Ordering::Release);
        } else {
            // SAFETY: our chunk is live: the reader lets a chunk go only when it moves on to the
            // chunk's `next`, which is set here, before anything in the fresh chunk is published.
            unsafe { &*chunk }.next.store(fresh, Ordering::Release);
        }
        self.chunk.set(fresh);
    }

    /// Values written and not yet reported taken: a snapshot, in which the reader reports what it
    /// took once per step and when it finds the queue empty.
    pub fn len(&self) -> usize {
        usize::try_from(self.pos.get() - self.core.head.0.load(Ordering::Acquire))
            .unwrap_or(usize::MAX)
    }

    /// Whether the reader has reported every value taken (see [`Writer::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`Writer::len`] is at the bound: a push would be refused now.
    pub fn is_full(&self) -> bool {
        !self.has_room()
    }
}

/// The reading end of a queue made by [`fifo`].
pub struct Reader<T> {
    core: Arc<Core<T>>,
    /// The chunk of the last value taken; null before the first.
    chunk: Cell<*mut Chunk<T>>,
    /// Values taken.
    pos: Cell<u64>,
    /// `head` as last published.
    published: Cell<u64>,
}

// SAFETY: as for `Writer`: the end's state is used by the thread that holds it.
unsafe impl<T: Send> Send for Reader<T> {}

impl<T> std::fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.describe("Reader", f)
    }
}

impl<T> Reader<T> {
    /// Takes the oldest value, if any.
    pub fn pop(&self) -> Option<T> {
        self.pop_stepped().map(|(v, _)| v)
    }

    /// Takes the oldest value, if any, and says whether this take ended a step (`head` was
    /// published with it): the moment to look for a writer waiting for room.
    #[inline]
    pub fn pop_stepped(&self) -> Option<(T, bool)> {
        let core = &*self.core;
        let pos = self.pos.get();
        let Some((chunk, slot)) = core.peek(self.chunk.get(), pos) else {
            self.publish(pos);
            return None;
        };
        if chunk != self.chunk.get() {
            let done = self.chunk.replace(chunk);
            if !done.is_null() {
                core.recycle(done);
            }
        }
        // SAFETY: the slot holds the value written before the mark we acquired (`peek`); it is
        // taken once (our position moves past it, and we are the one reader).
        let value = slot.value.with_mut(|s| unsafe { (*s).assume_init_read() });
        self.pos.set(pos + 1);
        let stepped = (pos + 1) & (core.step - 1) == 0;
        if stepped {
            self.publish(pos + 1);
        }
        Some((value, stepped))
    }

    /// Publishes `head` (the values taken, `pos`) unless it is published already.
    #[inline]
    fn publish(&self, pos: u64) {
        if self.published.get() != pos {
            self.published.set(pos);
            self.core.head.0.store(pos, Ordering::Release);
        }
    }

    /// Values in the queue (a snapshot).
    pub fn len(&self) -> usize {
        let tail = self.core.tail.0.load(Ordering::Acquire);
        usize::try_from(tail.saturating_sub(self.pos.get())).unwrap_or(usize::MAX)
    }

    /// Whether the queue is empty: no value is there at the reader's position (then what was taken
    /// is reported to the writer, as by a [`Reader::pop`] that finds nothing).
    pub fn is_empty(&self) -> bool {
        let pos = self.pos.get();
        let empty = self.core.peek(self.chunk.get(), pos).is_none();
        if empty {
            self.publish(pos);
        }
        empty
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        // What is left (now or written later) is dropped with the queue, from here.
        self.core.stopped.store(self.chunk.get(), Ordering::Release);
        self.core
            .stopped_at
            .store(self.pos.get(), Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_come_out_in_order_across_chunks_up_to_the_bound() {
        let (tx, rx) = fifo(100);
        for round in 0..5u32 {
            for i in 0..100 {
                tx.push(round * 1000 + i).unwrap();
            }
            assert!(tx.is_full());
            assert_eq!(tx.push(7), Err(7));
            for i in 0..100 {
                assert_eq!(rx.pop(), Some(round * 1000 + i));
            }
            assert!(rx.is_empty());
            assert_eq!(rx.pop(), None);
        }
    }

    #[test]
    fn values_left_in_the_queue_are_dropped_with_it() {
        let token = std::sync::Arc::new(());
        for reader_first in [false, true] {
            let (tx, rx) = fifo(u64::MAX);
            for _ in 0..(3 * CHUNK + 5) {
                tx.push(token.clone()).unwrap();
            }
            for _ in 0..CHUNK + 1 {
                drop(rx.pop());
            }
            assert_eq!(std::sync::Arc::strong_count(&token), 2 * CHUNK + 5);
            if reader_first {
                drop(rx);
                // Values written after the reader is gone are dropped with the queue too.
                tx.push(token.clone()).unwrap();
                drop(tx);
            } else {
                drop(tx);
                drop(rx);
            }
            assert_eq!(std::sync::Arc::strong_count(&token), 1);
        }
    }

    #[test]
    fn the_reader_reports_what_it_took_once_per_step_and_when_it_finds_nothing() {
        let (tx, rx) = fifo(8);
        assert_eq!(step(8), 4);
        for i in 0..8 {
            tx.push(i).unwrap();
        }
        assert!(tx.is_full());
        for i in 0..3 {
            assert_eq!(rx.pop_stepped(), Some((i, false)));
        }
        assert!(tx.is_full(), "three taken, not yet reported");
        assert_eq!(tx.push(8), Err(8));
        assert_eq!(rx.pop_stepped(), Some((3, true)));
        assert_eq!(tx.len(), 4, "a step taken and reported");
        for i in 8..11 {
            tx.push(i).unwrap();
        }
        assert_eq!(tx.len(), 7);
        for i in 4..11 {
            assert_eq!(rx.pop(), Some(i));
        }
        assert!(!tx.is_empty(), "the last take did not end a step");
        assert!(rx.is_empty());
        assert!(
            tx.is_empty(),
            "a reader that finds nothing reports everything taken"
        );
        assert_eq!(
            (step(1), step(2), step(100), step(u64::MAX)),
            (1, 1, 32, STEP_MAX)
        );
    }

    #[test]
    fn a_value_made_in_place_is_made_only_when_there_is_room() {
        let (tx, rx) = fifo(1);
        let mut made = 0;
        assert!(tx.push_with(|| {
            made += 1;
            Some(1)
        }));
        assert!(!tx.push_with(|| {
            made += 1;
            Some(2)
        }));
        assert_eq!(made, 1);
        assert!(!tx.push_with(|| None));
        assert_eq!(rx.pop_stepped(), Some((1, true)));
        assert!(tx.push_with(|| None));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn a_stream_between_two_threads_keeps_order_and_loses_nothing() {
        let (tx, rx) = fifo(64);
        let n = if cfg!(miri) { 300 } else { 200_000u64 };
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                let mut v = Box::new(i);
                loop {
                    match tx.push(v) {
                        Ok(()) => break,
                        Err(back) => {
                            v = back;
                            std::thread::yield_now();
                        }
                    }
                }
            }
        });
        let mut next = 0;
        while next < n {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(*v, next);
                    next += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        writer.join().unwrap();
        assert!(rx.is_empty());
    }
}
