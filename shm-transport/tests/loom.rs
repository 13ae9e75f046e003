//! The ring's protocol under loom: every interleaving (within loom's bounds) of one producer and one
//! consumer, both sleeping on the futex model when they cannot go on, must deliver every message once,
//! in order, and never leave a side asleep with work to do (a lost wake-up shows as a thread that
//! never finishes). Run with `RUSTFLAGS="--cfg loom" cargo test -p zring-shm --test loom --release`.
#![cfg(loom)]

use std::time::Duration;

use zring_shm::{channel, Config, Wait};

fn cfg() -> Config {
    Config {
        slots: 16,
        chunks: 1,
        chunk_size: 4096,
    }
}

const SLEEP_AT_ONCE: Wait = Wait {
    spin: Duration::ZERO,
    busy: false,
};

/// Two messages of `len` bytes from a writer thread to this one, both ends sleeping at once when they
/// cannot go on; the writer stays open until the reader is done (closing would wake it whatever
/// happened before). With `drop_elsewhere`, each message is dropped on a third thread.
fn exchange(len: usize, drop_elsewhere: bool) {
    loom::model(move || {
        let (mut p, mut c) = channel(cfg()).unwrap();
        let writer = loom::thread::spawn(move || {
            for i in 0..2u8 {
                p.send(&[&vec![i; len]], SLEEP_AT_ONCE, None).unwrap();
            }
            p
        });
        for i in 0..2u8 {
            let m = c.recv(SLEEP_AT_ONCE, None).unwrap().unwrap();
            assert_eq!(m[0].len(), len);
            assert_eq!(m[0][0], i);
            if drop_elsewhere {
                loom::thread::spawn(move || drop(m)).join().unwrap();
            }
        }
        drop(writer.join().unwrap());
    });
}

#[test]
fn messages_arrive_in_order_and_no_wake_up_is_lost() {
    exchange(1, false);
}

/// 16 slots of 56-byte frames: a 900-byte frame takes 15, so the second waits for the first to be
/// read and `head` published.
#[test]
fn a_writer_waiting_for_room_is_woken_by_the_reader() {
    exchange(900, false);
}

/// The one-chunk slab comes back when the message drops, on another thread.
#[test]
fn slab_space_given_back_from_another_thread_wakes_the_writer() {
    exchange(2000, true);
}

/// A ring within one process ([`zring_shm::local`]) that must grow: three 500-byte messages do not
/// fit in its first 16 slots, so the writer links a larger ring while the reader reads; a 2000-byte
/// frame is moved, not copied. Neither side sleeps on such a ring (its owner wakes it), so both
/// retry, yielding. Every message arrives once, in order, and the old ring is let go.
#[test]
fn a_local_ring_grows_while_it_is_read() {
    loom::model(|| {
        let (mut p, mut c) = zring_shm::local(u64::MAX, 1016);
        let writer = loom::thread::spawn(move || {
            for i in 0..3u8 {
                let frame = bytes::Bytes::from(vec![i; if i == 2 { 2000 } else { 500 }]);
                while p.try_send_payloads(&[frame.clone()]).is_err() {
                    loom::thread::yield_now();
                }
            }
            p
        });
        for i in 0..3u8 {
            let m = loop {
                if let Some(m) = c.try_recv().unwrap() {
                    break m;
                }
                loom::thread::yield_now();
            };
            assert_eq!(m[0].len(), if i == 2 { 2000 } else { 500 });
            assert!(m[0].iter().all(|&b| b == i));
        }
        drop(writer.join().unwrap());
    });
}
