//! The ring's protocol for values within one process: a single-producer/single-consumer queue of any
//! `T`, the queue of zring's inproc pipes and of the pipes between a socket and its I/O thread.
//!
//! As in [`crate::ring`], each side publishes a running count (`tail`: values written, `head`: values
//! taken) with a release store, and keeps its own copy of the other side's count, which it reads again
//! only when its copy says the queue is empty (consumer) or full (producer). So a value moves with two
//! stores and no read-modify-write on a line the other side uses; the two sides meet on a cache line
//! only when one of them catches up with the other.
//!
//! Unlike the ring, values are moved, not copied into bytes (a large message body stays a reference),
//! and the slots are chunks of [`CHUNK`] values linked in order, made as values arrive: an idle queue
//! holds no chunk, a queue that stays short holds two, and the consumer hands each chunk it has emptied
//! back to the producer (one spare), so a steady stream allocates nothing. The bound on the count of
//! values (the high-water mark) is separate from the storage.
//!
//! Each side's private state sits behind an uncontended lock: the pipes that use the queue guarantee
//! one writer and one reader at a time, and the lock makes that guarantee checked rather than assumed.

use std::mem::MaybeUninit;
use std::ptr::null_mut;

use crate::sync::{AtomicPtr, AtomicU64, Mutex, Ordering, UnsafeCell};

/// Values per chunk.
#[cfg(not(loom))]
pub const CHUNK: usize = 32;
/// Values per chunk (small, so that loom's models cross chunks).
#[cfg(loom)]
pub const CHUNK: usize = 2;

/// A run of slots; `next` is set by the producer before it publishes a value in the next chunk.
struct Chunk<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; CHUNK],
    next: AtomicPtr<Chunk<T>>,
}

impl<T> Chunk<T> {
    fn alloc() -> *mut Chunk<T> {
        Box::into_raw(Box::new(Chunk {
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
            next: AtomicPtr::new(null_mut()),
        }))
    }
}

/// One value on its own cache line.
#[repr(C, align(64))]
struct Line<T>(T);

/// One side's private state.
struct End<T> {
    /// The chunk of the last value written (producer) or taken (consumer); null before the first.
    chunk: *mut Chunk<T>,
    /// Values written (producer) or taken (consumer) so far.
    pos: u64,
    /// The other side's count as last read.
    seen: u64,
}

impl<T> End<T> {
    fn new() -> Mutex<End<T>> {
        Mutex::new(End {
            chunk: null_mut(),
            pos: 0,
            seen: 0,
        })
    }
}

/// A single-producer/single-consumer queue holding at most `cap` values (see the module's
/// documentation). Any thread may push and any may pop; pushes are serialized among themselves, and
/// so are pops.
pub struct Fifo<T> {
    /// Values published by the producer.
    tail: Line<AtomicU64>,
    /// Values taken by the consumer.
    head: Line<AtomicU64>,
    /// The first chunk, set once with the first value.
    first: AtomicPtr<Chunk<T>>,
    /// An emptied chunk the producer may reuse.
    spare: AtomicPtr<Chunk<T>>,
    /// Each side's state on its own cache line, so that neither side's lock disturbs the other.
    producer: Line<Mutex<End<T>>>,
    consumer: Line<Mutex<End<T>>>,
    cap: u64,
}

// SAFETY: values move from the pushing thread to the popping one, hence `T: Send`; the chunks are
// reached through the two `End`s, each behind its lock, and through atomics, following the protocol
// in the module's documentation (a slot is written before `tail` is released past it and read after
// it is acquired; a chunk is reused only after the consumer has released it through `spare`).
unsafe impl<T: Send> Send for Fifo<T> {}
// SAFETY: as above: `&Fifo` only gives access through the locks and the atomics.
unsafe impl<T: Send> Sync for Fifo<T> {}

impl<T> std::fmt::Debug for Fifo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fifo")
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn index(pos: u64) -> usize {
    (pos % CHUNK as u64) as usize
}

impl<T> Fifo<T> {
    /// An empty queue of at most `cap` values (at least one); `u64::MAX` for no bound.
    pub fn new(cap: u64) -> Fifo<T> {
        Fifo {
            tail: Line(AtomicU64::new(0)),
            head: Line(AtomicU64::new(0)),
            first: AtomicPtr::new(null_mut()),
            spare: AtomicPtr::new(null_mut()),
            producer: Line(End::new()),
            consumer: Line(End::new()),
            cap: cap.max(1),
        }
    }

    /// Appends `value`, or gives it back if the queue holds `cap` values.
    pub fn push(&self, value: T) -> Result<(), T> {
        let mut p = lock(&self.producer.0);
        if p.pos - p.seen >= self.cap {
            p.seen = self.head.0.load(Ordering::Acquire);
            if p.pos - p.seen >= self.cap {
                return Err(value);
            }
        }
        let i = index(p.pos);
        if i == 0 {
            // The current chunk is full (or there is none yet): link a fresh one.
            let fresh = match self.spare.swap(null_mut(), Ordering::AcqRel) {
                c if c.is_null() => Chunk::alloc(),
                c => c,
            };
            if p.chunk.is_null() {
                self.first.store(fresh, Ordering::Release);
            } else {
                // SAFETY: `p.chunk` is live: the consumer lets a chunk go only when it moves on to the
                // chunk's `next`, which is set here, before anything in the fresh chunk is published.
                unsafe { &*p.chunk }.next.store(fresh, Ordering::Release);
            }
            p.chunk = fresh;
        }
        // SAFETY: `p.chunk` is live (above); slot `i` is empty: it is fresh, or the consumer took its
        // value before handing the chunk back through `spare`; the consumer reads it only after we
        // release `tail` past it, below.
        unsafe { &(*p.chunk).slots[i] }.with_mut(|s| {
            // SAFETY: we hold the producer's lock and the slot is empty (above).
            unsafe { (*s).write(value) };
        });
        p.pos += 1;
        self.tail.0.store(p.pos, Ordering::Release);
        Ok(())
    }

    /// Takes the oldest value, if any.
    pub fn pop(&self) -> Option<T> {
        self.pop_last().map(|(v, _)| v)
    }

    /// Takes the oldest value, if any, and says whether it was the last the consumer knew of: then the
    /// queue may be empty now (a caller that must react to the queue running dry, or to room being
    /// made for a producer that waits, need look only then).
    pub fn pop_last(&self) -> Option<(T, bool)> {
        let mut c = lock(&self.consumer.0);
        if c.pos == c.seen {
            c.seen = self.tail.0.load(Ordering::Acquire);
            if c.pos == c.seen {
                return None;
            }
        }
        let i = index(c.pos);
        if i == 0 {
            let next = if c.chunk.is_null() {
                self.first.load(Ordering::Acquire)
            } else {
                // SAFETY: `c.chunk` is the consumer's live chunk; the producer set its `next` before
                // releasing the `tail` we acquired.
                unsafe { &*c.chunk }.next.load(Ordering::Acquire)
            };
            if next.is_null() {
                // Impossible by the protocol: the producer links a chunk before publishing into it.
                return None;
            }
            let done = std::mem::replace(&mut c.chunk, next);
            if !done.is_null() {
                self.recycle(done);
            }
        }
        // SAFETY: `c.chunk` is live and slot `i` holds a value written before the `tail` we acquired;
        // it is taken once (our position moves past it under our lock).
        let value = unsafe { &(*c.chunk).slots[i] }.with_mut(|s| {
            // SAFETY: as above: the slot is initialized and read exactly once.
            unsafe { (*s).assume_init_read() }
        });
        c.pos += 1;
        self.head.0.store(c.pos, Ordering::Release);
        Some((value, c.pos == c.seen))
    }

    /// Hands an emptied chunk to the producer, or frees it if the producer has one spare already.
    fn recycle(&self, chunk: *mut Chunk<T>) {
        // SAFETY: every value of `chunk` has been taken and the producer has moved on to a later
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

    /// Values in the queue (a snapshot).
    pub fn len(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
        usize::try_from(tail.saturating_sub(head)).unwrap_or(usize::MAX)
    }

    /// Whether the queue is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `cap` values (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() as u64 >= self.cap
    }
}

impl<T> Drop for Fifo<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
        let c = lock(&self.consumer.0);
        let mut chunk = if c.chunk.is_null() {
            self.first.load(Ordering::Acquire)
        } else {
            c.chunk
        };
        while !chunk.is_null() {
            // SAFETY: every value has been taken (above) and both sides are gone (`&mut self`);
            // the chunks from the consumer's on are linked by `next` and came from `Box::into_raw`.
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_come_out_in_order_across_chunks_up_to_the_bound() {
        let q = Fifo::new(100);
        for round in 0..5u32 {
            for i in 0..100 {
                q.push(round * 1000 + i).unwrap();
            }
            assert!(q.is_full());
            assert_eq!(q.push(7), Err(7));
            for i in 0..100 {
                assert_eq!(q.pop(), Some(round * 1000 + i));
            }
            assert!(q.is_empty());
            assert_eq!(q.pop(), None);
        }
    }

    #[test]
    fn values_left_in_the_queue_are_dropped_with_it() {
        let token = std::sync::Arc::new(());
        let q = Fifo::new(u64::MAX);
        for _ in 0..(3 * CHUNK + 5) {
            q.push(token.clone()).unwrap();
        }
        for _ in 0..CHUNK + 1 {
            drop(q.pop());
        }
        assert_eq!(std::sync::Arc::strong_count(&token), 2 * CHUNK + 5);
        drop(q);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
    }

    #[test]
    fn a_stream_between_two_threads_keeps_order_and_loses_nothing() {
        let q = std::sync::Arc::new(Fifo::new(64));
        let n = if cfg!(miri) { 300 } else { 200_000u64 };
        let writer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    let mut v = Box::new(i);
                    loop {
                        match q.push(v) {
                            Ok(()) => break,
                            Err(back) => {
                                v = back;
                                std::thread::yield_now();
                            }
                        }
                    }
                }
            })
        };
        let mut next = 0;
        while next < n {
            match q.pop() {
                Some(v) => {
                    assert_eq!(*v, next);
                    next += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        writer.join().unwrap();
        assert!(q.is_empty());
    }
}
