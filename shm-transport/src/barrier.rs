//! Asymmetric memory barriers, for a wake-up protocol whose one side runs at every message and
//! whose other side runs only before a thread sleeps.
//!
//! The protocol is Dekker's: the writer publishes, then reads whether the reader sleeps; the reader
//! says it sleeps, then looks again for what was published. Each side needs a store-load barrier
//! between its two steps, and on x86 a full fence at every message costs the writer the wait for
//! its publication to leave its store buffer (a cache line the reader holds): measured, 45 % of an
//! inproc 64 B sender's time. With membarrier(2), the frequent side ([`light`]) is only a compiler
//! barrier, and the rare side ([`heavy`]) makes every thread of the process that runs at that
//! moment execute a full barrier (threads that do not run pass one when they are switched in). Then
//! either the writer's read came after that barrier, and sees the reader's announcement, or its
//! publication came before it, and the reader's second look sees it.
//!
//! `heavy` is a system call, and costs a few hundred nanoseconds, or an interrupt of each CPU that
//! runs another thread of the process (12-14 us on this 2-core VM): it belongs before a sleep, never
//! on a path taken per message. Where the kernel refuses (before Linux 4.14, or in a sandbox), and
//! under loom and Miri, [`asymmetric`] says so: `heavy` is then a full fence, and the frequent side
//! takes a full fence instead of [`light`].

use std::sync::atomic::{compiler_fence, fence, Ordering};
use std::sync::OnceLock;

/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (linux/membarrier.h).
#[cfg(not(any(loom, miri)))]
const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
/// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
#[cfg(not(any(loom, miri)))]
const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether [`light`] is a compiler barrier alone (the process is registered for membarrier(2)'s
/// private expedited command). Decided at the first call, by any thread, and never changed: a
/// protocol that chose its barriers by this answer keeps choosing the same.
pub fn asymmetric() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(register)
}

#[cfg(not(any(loom, miri)))]
fn register() -> bool {
    // SAFETY: membarrier(2) with a command and zero flags reads and writes no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) };
    r == 0
}

/// The models know no membarrier: both sides fence.
#[cfg(any(loom, miri))]
fn register() -> bool {
    false
}

/// The frequent side's store-load barrier, a compiler barrier: pairs with [`heavy`] only where
/// [`asymmetric`] said so. A protocol records that answer once (it never changes) and takes a full
/// fence instead where it was no, so that this, on its hot path, checks nothing.
#[inline]
pub fn light() {
    compiler_fence(Ordering::SeqCst);
}

/// The rare side's store-load barrier: pairs with [`light`]. A full fence first, so that it pairs
/// with a full fence too.
pub fn heavy() {
    fence(Ordering::SeqCst);
    #[cfg(not(any(loom, miri)))]
    if asymmetric() {
        // SAFETY: as in `register`. After a registration that succeeded, the kernel has no reason
        // to refuse the command (it checks the registration and the flags, both right).
        let r = unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) };
        debug_assert_eq!(r, 0, "membarrier after registration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32};
    use std::sync::Arc;

    #[test]
    fn the_kernel_here_offers_the_asymmetric_barrier() {
        // Linux 4.14 and later; this machine's kernel is 6.x. Miri and loom model none.
        assert_eq!(asymmetric(), !cfg!(any(miri, loom)));
    }

    /// Dekker's pattern, many times over: a writer that publishes and then reads the flag with the
    /// light barrier, a reader that raises the flag and then looks with the heavy one. In every
    /// round at least one of them sees the other's store.
    #[test]
    fn a_light_and_a_heavy_barrier_never_both_miss() {
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        let data = Arc::new(AtomicU32::new(0));
        let flag = Arc::new(AtomicU32::new(0));
        let saw_flag = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicU32::new(0));
        let writer = {
            let (data, flag, saw_flag, go, done) = (
                data.clone(),
                flag.clone(),
                saw_flag.clone(),
                go.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                for round in 1..=rounds {
                    while go.load(Ordering::Acquire) != round {
                        std::hint::spin_loop();
                    }
                    data.store(round, Ordering::Relaxed);
                    if asymmetric() {
                        light();
                    } else {
                        fence(Ordering::SeqCst);
                    }
                    saw_flag.store(flag.load(Ordering::Relaxed) == round, Ordering::Relaxed);
                    done.store(round, Ordering::Release);
                }
            })
        };
        let mut missed = 0;
        for round in 1..=rounds {
            go.store(round, Ordering::Release);
            flag.store(round, Ordering::Relaxed);
            heavy();
            let saw_data = data.load(Ordering::Relaxed) == round;
            while done.load(Ordering::Acquire) != round {
                assert!(!writer.is_finished(), "the writer stopped in round {round}");
                std::hint::spin_loop();
            }
            if !saw_data && !saw_flag.load(Ordering::Relaxed) {
                missed += 1;
            }
        }
        writer.join().expect("the writer finishes");
        assert_eq!(missed, 0, "rounds where neither side saw the other");
    }
}
