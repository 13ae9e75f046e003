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

/// Writes `n` values into `tx`, retrying a refused push.
fn write_values(tx: zring_shm::Writer<Box<u32>>, n: u32) -> loom::thread::JoinHandle<()> {
    loom::thread::spawn(move || {
        for i in 0..n {
            let mut v = Box::new(i);
            while let Err(back) = tx.push(v) {
                v = back;
                loom::thread::yield_now();
            }
        }
    })
}

/// Takes `n` values from `rx`, checking their order.
fn read_values(rx: &zring_shm::Reader<Box<u32>>, n: u32) {
    let mut next = 0;
    while next < n {
        match rx.pop() {
            Some(v) => {
                assert_eq!(*v, next);
                next += 1;
            }
            None => loom::thread::yield_now(),
        }
    }
}

/// The in-process queue ([`zring_shm::fifo`], chunks of two values under loom): three values through
/// a queue bounded at two, with a refused push retried, cross a chunk boundary and the spare chunk's
/// hand-back; every value arrives once and in order, and whatever is left is dropped with the queue.
#[test]
fn the_fifo_moves_values_in_order_across_chunks() {
    loom::model(|| {
        let (tx, rx) = zring_shm::fifo(2);
        let writer = write_values(tx, 3);
        read_values(&rx, 2);
        writer.join().unwrap();
        assert_eq!(rx.len(), 1);
    });
}

/// A reader that goes away while the writer still writes: what it left, and what comes after it,
/// is dropped with the queue by whichever end goes last, with no race on the slots.
#[test]
fn the_fifo_outlives_its_reader() {
    loom::model(|| {
        let (tx, rx) = zring_shm::fifo(u64::MAX);
        let writer = write_values(tx, 3);
        read_values(&rx, 1);
        drop(rx);
        writer.join().unwrap();
    });
}
