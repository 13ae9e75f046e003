//! A process-wide store of large buffers, so that large bodies reuse memory instead of asking the
//! allocator for fresh memory each time.
//!
//! A large allocation freed to the C allocator goes back to the system once the free space at the top
//! of its heap passes a threshold (128 KiB by default): a stream of 64 KiB or 1 MiB messages whose
//! buffers come and go then takes a page fault for every 4 KiB of every body it copies (measured: two
//! faults per 64 KiB message and up to nine per 1 MiB one, a third of the cost of moving such a
//! message between threads). Buffers of more than [`MIN`] and at most [`MAX`] octets are instead
//! handed back here when their last reference drops, and the next body of about the same size takes
//! one, its pages already mapped (and often still in cache). Where zring uses it, and where it
//! measured slower and is not used, is in `docs/ARCHITECTURE.md`.
//!
//! Sizes are rounded up to a class: four classes per power of two, so a buffer is at most a quarter
//! larger than asked for. A class keeps at most a few buffers ([`CLASS_BYTES`] of them, at least two,
//! at most 256), and the store as a whole at most [`BUDGET`] octets; a buffer beyond either is freed.
//! Nothing is ever allocated here that the caller did not ask for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// Buffers of more than this many octets are pooled; zring's inproc queues copy smaller frames
/// into their own slots. A buffer allocated on one thread and freed on another is contended work in
/// the C allocator from a few KiB up (measured, inproc PUSH/PULL of 4 KiB on one core: 0.25-0.35 M
/// msgs/s, pooled 0.65 M; 2 KiB with a core each: 1.4-1.6 M, pooled 1.3-3.7 M).
pub const MIN: usize = 1024;
/// Buffers of more than this many octets are not pooled.
pub const MAX: usize = 16 * 1024 * 1024;
/// What one class may keep, in octets (within its count bounds).
pub const CLASS_BYTES: usize = 8 * 1024 * 1024;
/// What the whole store may keep, in octets.
pub const BUDGET: usize = 32 * 1024 * 1024;

/// log2 of the smallest power of two a class lies above.
const MIN_LOG: u32 = MIN.trailing_zeros();
/// Octets a stored buffer has beyond its class's size: room to start a copy a little way in (see
/// [`start`]).
const SLACK: usize = 64;
/// The number of classes: four per power of two from `MIN` to `MAX`.
const CLASSES: usize = (MAX.trailing_zeros() - MIN_LOG) as usize * 4;

/// Buffers by class, within a budget.
struct Store {
    /// Each class's buffers, the last given back on top: the next body reuses the buffer most
    /// recently written, the likeliest to be still in cache (as the C allocator does).
    classes: [Mutex<Vec<Vec<u8>>>; CLASSES],
    /// The octets kept, all classes together.
    held: AtomicUsize,
    /// The most `held` may be.
    budget: usize,
}

/// The process's store.
static STORE: Store = Store::new(BUDGET);

/// The class of a buffer able to hold `len` octets: its index and its capacity, the smallest of
/// `2^k + q * 2^(k-2)` (q = 1..=4) that is at least `len`; `None` outside (`MIN`, `MAX`].
fn class(len: usize) -> Option<(usize, usize)> {
    if !(MIN + 1..=MAX).contains(&len) {
        return None;
    }
    // 2^k < len <= 2^(k+1).
    let k = usize::BITS - 1 - (len - 1).leading_zeros();
    let base = 1usize << k;
    let step = base / 4;
    let q = (len - base).div_ceil(step);
    let index = (k - MIN_LOG) as usize * 4 + (q - 1);
    Some((index, base + q * step))
}

/// The class of a buffer of exactly `capacity`, if that is a class's capacity and its slack.
fn exact_class(capacity: usize) -> Option<usize> {
    let size = capacity.checked_sub(SLACK)?;
    class(size).and_then(|(i, c)| (c == size).then_some(i))
}

/// Where a copy of the octets at `src` starts in a buffer at `dst`: 0, unless the buffer lies 1 to
/// 63 octets past the source modulo a page. A large copy 1 to 31 octets past runs 20-30 times
/// slower on this machine's AMD EPYC (0.8-2.1 GB/s against 36-50 GB/s for 64 KiB, measured for
/// every distance modulo a page by `scripts/copy_distance.c`; 63 leaves a margin): the C library
/// copies with `rep movsb`, which such a distance slows. Two buffers of the C allocator of one
/// size, one after the other, lie 16 octets apart modulo a page (its header), so the
/// application's slice and a buffer allocated after it often do. The copy then starts 64 octets
/// in.
fn start(dst: *const u8, src: *const u8) -> usize {
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    if (1..SLACK).contains(&distance) {
        SLACK
    } else {
        0
    }
}

impl Store {
    const fn new(budget: usize) -> Store {
        Store {
            classes: [const { Mutex::new(Vec::new()) }; CLASSES],
            held: AtomicUsize::new(0),
            budget,
        }
    }

    /// The buffers of class `index`, locked.
    fn buffers(&self, index: usize) -> Option<std::sync::MutexGuard<'_, Vec<Vec<u8>>>> {
        let buffers = self.classes.get(index)?;
        Some(buffers.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// An empty buffer with room for at least `len` octets: one the store kept when `len` is in
    /// its range and it has one, else a new one (of the class's capacity and the slack when `len`
    /// is in the range, so that it can return to the store).
    fn take(&self, len: usize) -> Vec<u8> {
        let Some((index, capacity)) = class(len) else {
            return Vec::with_capacity(len);
        };
        if let Some(v) = self.buffers(index).and_then(|mut b| b.pop()) {
            self.held.fetch_sub(v.capacity(), Ordering::Relaxed);
            return v;
        }
        Vec::with_capacity(capacity + SLACK)
    }

    fn keep(&self, mut v: Vec<u8>) {
        let capacity = v.capacity();
        let Some(index) = exact_class(capacity) else {
            return;
        };
        if self.held.fetch_add(capacity, Ordering::Relaxed) + capacity > self.budget {
            self.held.fetch_sub(capacity, Ordering::Relaxed);
            return;
        }
        v.clear();
        let room = (CLASS_BYTES / capacity).clamp(2, 256);
        match self.buffers(index) {
            Some(mut buffers) if buffers.len() < room => buffers.push(v),
            // The class is full: `v` is freed here.
            _ => {
                self.held.fetch_sub(capacity, Ordering::Relaxed);
            }
        }
    }

    /// `v` from octet `from` on, as `Bytes` that give the buffer back to the store.
    fn freeze(&'static self, v: Vec<u8>, from: usize) -> Bytes {
        if exact_class(v.capacity()).is_some() {
            Bytes::from_owner(Pooled(v, self)).slice(from..)
        } else {
            Bytes::from(v).slice(from..)
        }
    }

    fn copy(&'static self, data: &[u8]) -> Bytes {
        if class(data.len()).is_none() {
            return Bytes::copy_from_slice(data);
        }
        let mut v = self.take(data.len());
        let from = start(v.as_ptr(), data.as_ptr());
        v.resize(from, 0);
        v.extend_from_slice(data);
        self.freeze(v, from)
    }
}

/// A buffer that goes back to its store when the last `Bytes` over it drops.
struct Pooled(Vec<u8>, &'static Store);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.1.keep(std::mem::take(&mut self.0));
    }
}

/// A copy of `data`, in a buffer from the store when `data` is large (more than [`MIN`] octets and
/// at most [`MAX`]): one given back by the last `Bytes` over it that dropped, else a new one that
/// goes back to the store when its own last `Bytes` drops.
pub fn copy_from_slice(data: &[u8]) -> Bytes {
    STORE.copy(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_is_the_smallest_quarter_step_that_holds_the_length() {
        assert_eq!(class(MIN), None);
        assert_eq!(class(MAX + 1), None);
        assert_eq!(class(MIN + 1), Some((0, MIN + MIN / 4)));
        assert_eq!(class(MIN + MIN / 4), Some((0, MIN + MIN / 4)));
        assert_eq!(class(MIN + MIN / 4 + 1), Some((1, MIN + MIN / 2)));
        assert_eq!(class(2 * MIN), Some((3, 2 * MIN)));
        assert_eq!(class(8 * MIN), Some((11, 8 * MIN)));
        assert_eq!(class(MAX), Some((CLASSES - 1, MAX)));
        // Every length in range gets a class that holds it, at most a quarter larger.
        for len in (MIN + 1..=4 * MIN).step_by(97).chain([MAX - 1, MAX]) {
            let (i, c) = class(len).unwrap();
            assert!(
                i < CLASSES && c >= len && c <= len + len / 4 + 1,
                "{len}: {c}"
            );
        }
    }

    /// A store of the tests' own: the process's is shared by tests running at the same time.
    fn store(budget: usize) -> &'static Store {
        Box::leak(Box::new(Store::new(budget)))
    }

    #[test]
    fn a_dropped_large_body_gives_its_memory_to_the_next() {
        let store = store(BUDGET);
        let len = 3 * MIN + 5;
        let first = store.copy(&vec![7u8; len]);
        let at = first.as_ptr();
        assert_eq!(&first[..], &vec![7u8; len][..]);
        let slice = first.slice(10..20);
        drop(first);
        // A slice still refers to the buffer: it is not reused yet.
        let second = store.copy(&vec![8u8; len]);
        assert_ne!(second.as_ptr(), at);
        assert_eq!(store.held.load(Ordering::Relaxed), 0);
        drop(second);
        drop(slice);
        let (_, size) = class(len).unwrap();
        let capacity = size + SLACK;
        assert_eq!(store.held.load(Ordering::Relaxed), 2 * capacity);
        // The buffer given back last comes first, to any length of the class.
        let again = store.take(len - 1);
        assert!(again.capacity() == capacity && again.is_empty());
        assert!(at as usize - again.as_ptr() as usize <= SLACK);
        let second_again = store.take(len + 1);
        assert_ne!(second_again.as_ptr(), at);
        assert_eq!(store.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_store_keeps_within_its_budget_and_its_classes() {
        let capacity = class(MAX).unwrap().1 + SLACK;
        let store = store(3 * capacity);
        // A class of MAX keeps two buffers (CLASS_BYTES is less than two of them).
        for _ in 0..3 {
            store.keep(Vec::with_capacity(capacity));
        }
        assert_eq!(store.held.load(Ordering::Relaxed), 2 * capacity);
        // The budget: one more of another class fits, then no more.
        let other = class(MAX / 2 + 1).unwrap().1 + SLACK;
        store.keep(Vec::with_capacity(other));
        store.keep(Vec::with_capacity(other));
        assert_eq!(store.held.load(Ordering::Relaxed), 2 * capacity + other);
    }

    #[test]
    fn a_copy_never_starts_just_past_its_source_modulo_a_page() {
        for distance in 0..4096 {
            let (dst, src) = (0x10_0000 + distance, 0x10_0000);
            let from = start(dst as *const u8, src as *const u8);
            let moved = (dst + from - src) % 4096;
            assert!(moved == 0 || moved >= SLACK, "{distance}: {moved}");
            assert_eq!(from == 0, !(1..SLACK).contains(&distance));
        }
        let store = store(BUDGET);
        let data: Vec<u8> = (0..3 * MIN).map(|i| i as u8).collect();
        for _ in 0..3 {
            let copy = store.copy(&data);
            let distance = (copy.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize) % 4096;
            assert!(!(1..SLACK).contains(&distance));
            assert_eq!(&copy[..], &data[..]);
        }
    }

    #[test]
    fn small_and_odd_buffers_are_not_kept() {
        let store = store(BUDGET);
        store.keep(Vec::with_capacity(MIN + SLACK));
        store.keep(Vec::with_capacity(MIN + 3 + SLACK));
        store.keep(Vec::with_capacity(2 * MAX + SLACK));
        store.keep(Vec::with_capacity(2 * MIN));
        assert_eq!(store.held.load(Ordering::Relaxed), 0);
        let small = store.copy(b"tiny");
        assert_eq!(&small[..], b"tiny");
        let odd = store.freeze(vec![1u8; MIN + 3], 0);
        assert_eq!(odd.len(), MIN + 3);
        drop(odd);
        assert_eq!(store.held.load(Ordering::Relaxed), 0);
    }
}
