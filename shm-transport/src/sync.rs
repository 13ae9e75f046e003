//! Atomics and futex waiting, replaced by loom's models under `--cfg loom` so that the ring's protocol
//! can be checked over every interleaving.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`: until woken). A futex wait
/// without the private flag, so a waker in another process that maps the same memory reaches it.
/// It may return early (spuriously, or on a signal): callers check their condition again.
#[cfg(not(loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call; FUTEX_WAIT only
    // reads it (atomically) and sleeps; `ts_ptr` is null or points to a timespec on this stack.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every thread (of any process) sleeping in [`wait`] on `word`.
#[cfg(not(loom))]
pub(crate) fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The model of a futex wait: blocks (yielding to the other threads) for as long as `word` holds
/// `expected`. A wake-up that never comes shows as a thread that never finishes.
#[cfg(loom)]
pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    while word.load(Ordering::SeqCst) == expected {
        loom::thread::yield_now();
    }
}

/// The model of a futex wake: the waker has already changed the word.
#[cfg(loom)]
pub(crate) fn wake(_word: &AtomicU32) {}

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex};
