//! Nothing a peer claims is allocated before it has arrived: a counting allocator measures the most
//! memory held while hostile streams are decoded. One test in this binary, so that no other test's
//! allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use zring_zmtp::{Config, Connection, Greeting, Mechanism, SocketType};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same layout, same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak while `f` runs, above what was allocated before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

fn ready_peer(claim: u64, sent: usize) -> Vec<Vec<u8>> {
    let mut handshake = Greeting::ours(Mechanism::NULL, false).encode().to_vec();
    handshake.extend_from_slice(b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x04PUSH");
    let mut header = vec![0x02];
    header.extend_from_slice(&claim.to_be_bytes());
    vec![handshake, header, vec![b'x'; sent]]
}

#[test]
fn memory_follows_what_peers_sent_not_what_they_claimed() {
    // 1. A thousand peers each announce a 1 GiB frame (no maximum configured) and send 100 octets
    //    of it: the memory held is about what they sent, not 1000 GiB.
    let now = Instant::now();
    let mut conns = Vec::new();
    let peak = peak_during(|| {
        for _ in 0..1000 {
            let mut c = Connection::new(Config::new(SocketType::Pull), now).unwrap();
            for piece in ready_peer(1 << 30, 100) {
                c.handle_input(Bytes::from(piece), now).unwrap();
            }
            conns.push(c);
        }
    });
    assert!(
        peak < 1000 * 12 * 1024,
        "peak {peak} bytes for 1000 stalled peers"
    );

    // 2. One peer announces 16 MiB and sends 1 MiB of it in 4 KiB pieces: the body buffer grows with
    //    what arrived (at most four times it), never to the 16 MiB claimed.
    let mut c = Connection::new(Config::new(SocketType::Pull), now).unwrap();
    for piece in ready_peer(16 << 20, 0) {
        c.handle_input(Bytes::from(piece), now).unwrap();
    }
    let chunk = vec![b'y'; 4096];
    let peak = peak_during(|| {
        for _ in 0..256 {
            c.handle_input(Bytes::copy_from_slice(&chunk), now).unwrap();
        }
    });
    assert!(
        peak <= 4 * (1 << 20) + 64 * 1024,
        "peak {peak} bytes after 1 MiB received"
    );

    // 3. The same, read in place (`fill_body`, as the engine reads long bodies): a stalled 1 GiB
    //    claim gets room for 8 KiB; 1 MiB sent into a 16 MiB claim holds at most four times it.
    for (claim, sent, bound) in [
        (1u64 << 30, 0usize, 12 * 1024),
        (16 << 20, 1 << 20, 4 << 20),
    ] {
        let mut c = Connection::new(Config::new(SocketType::Pull), now).unwrap();
        for piece in ready_peer(claim, 0) {
            c.handle_input(Bytes::from(piece), now).unwrap();
        }
        let mut left = sent;
        let peak = peak_during(|| loop {
            let mut offered = 0;
            let fill = |buf: &mut Vec<u8>, room: usize| {
                offered = room;
                let n = room.min(left).min(4096);
                buf.resize(buf.len() + n, b'z');
                left -= n;
            };
            let result = c.fill_body(32 * 1024, now, fill, |_| {});
            assert!(matches!(result, Some(Ok(()))), "the body is lent");
            assert!(offered >= 4096.min(left.max(1)), "room offered: {offered}");
            if left == 0 {
                break;
            }
        });
        assert!(
            peak <= bound + 64 * 1024,
            "peak {peak} bytes after {sent} received"
        );
        assert_eq!(
            c.stats().bytes_received as usize,
            ready_peer(claim, 0).concat().len() + sent
        );
    }

    // 4. Arbitrary streams: memory held stays within a small multiple of the input.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..4096), |data| {
            let peak = peak_during(|| zring_zmtp::fuzzing::connection_input(&data, now));
            prop_assert!(
                peak <= 16 * data.len() + 256 * 1024,
                "peak {} for {} bytes",
                peak,
                data.len()
            );
            Ok(())
        })
        .unwrap();
}
