//! What is specific to shm://: a peer in another process (a copy of this test binary), its death
//! with `kill -9`, large messages across processes, nothing left in /dev/shm, and hostile peers that
//! break the rendezvous or the rings. The patterns themselves run over shm in `patterns.rs`.

#[allow(dead_code, reason = "shared helpers")]
mod common;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_peers, WATCHDOG};
use zring::{Context, DisconnectReason, MonitorEvent, Socket, SocketType};

/// The environment variable that makes this binary the peer process of a test.
const CHILD: &str = "ZRING_SHM_TEST_CHILD";

fn socket(ctx: &Context, t: SocketType) -> Socket {
    let mut s = ctx.socket(t).unwrap();
    s.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    s.set_sndtimeo(Some(WATCHDOG)).unwrap();
    s
}

fn dev_shm() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs this test binary again as the peer: `role` says what it does, at `endpoint`.
fn spawn_child(test: &str, role: &str, endpoint: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{role} {endpoint}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The peer's side. Returns whether this process is the peer (it then exits).
fn child_role() -> bool {
    let Ok(spec) = std::env::var(CHILD) else {
        return false;
    };
    let (role, endpoint) = spec.split_once(' ').unwrap();
    let ctx = Context::new();
    match role {
        // Streams numbered messages until killed.
        "stream" => {
            let mut push = socket(&ctx, SocketType::Push);
            push.set_sndtimeo(None).unwrap();
            push.connect(endpoint).unwrap();
            for i in 0u64.. {
                push.send(&i.to_le_bytes()[..]).unwrap();
            }
        }
        // Asks twice: a small request, then one of 1 MiB, and checks the answers.
        "ask" => {
            let mut req = socket(&ctx, SocketType::Req);
            req.connect(endpoint).unwrap();
            req.send("ping").unwrap();
            assert_eq!(req.recv_string().unwrap(), "pong");
            let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
            req.send(big.clone()).unwrap();
            let back = req.recv().unwrap();
            assert_eq!(back.len(), big.len());
            assert!(back.iter().zip(&big).all(|(a, b)| *a == b.wrapping_add(1)));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

fn next_event(m: &zring::Monitor, want: impl Fn(&MonitorEvent) -> bool) -> MonitorEvent {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = m.recv_timeout(left).expect("no such monitor event");
        if want(&e) {
            return e;
        }
    }
}

#[test]
fn a_peer_process_is_served_and_its_kill_9_is_detected_without_leaks() {
    if child_role() {
        return;
    }
    let before = dev_shm();
    let ctx = Context::new();
    let endpoint = format!("shm://kill-{}", std::process::id());
    let test = "a_peer_process_is_served_and_its_kill_9_is_detected_without_leaks";

    // A peer process streams; we read some of it, then kill it mid-stream.
    let mut pull = socket(&ctx, SocketType::Pull);
    let monitor = pull.monitor();
    pull.bind(&endpoint).unwrap();
    let mut child = spawn_child(test, "stream", &endpoint);
    for i in 0..10_000u64 {
        assert_eq!(&pull.recv().unwrap()[..], &i.to_le_bytes()[..]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = next_event(&monitor, |e| matches!(e, MonitorEvent::Disconnected { .. }));
    assert!(
        matches!(
            gone,
            MonitorEvent::Disconnected {
                reason: DisconnectReason::PeerClosed,
                ..
            }
        ),
        "{gone:?}"
    );
    // What the dead peer had published is still read, in order; then the peer is dropped.
    let mut next = 10_000u64;
    pull.set_rcvtimeo(Some(Duration::ZERO)).unwrap();
    while let Ok(m) = pull.recv() {
        assert_eq!(&m[..], &next.to_le_bytes()[..]);
        next += 1;
    }
    assert_eq!(
        pull.peer_count(),
        0,
        "the dead peer's connection is dropped"
    );

    // The endpoint keeps serving: a new process asks, with a large message among them.
    drop(pull);
    let mut rep = socket(&ctx, SocketType::Rep);
    rep.bind(&endpoint).unwrap();
    let mut child = spawn_child(test, "ask", &endpoint);
    assert_eq!(rep.recv_string().unwrap(), "ping");
    rep.send("pong").unwrap();
    let big = rep.recv().unwrap();
    assert_eq!(big.len(), 1 << 20);
    let answer: Vec<u8> = big.iter().map(|b| b.wrapping_add(1)).collect();
    drop(big);
    rep.send(answer).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "the peer checked its answers"
    );
    drop(rep);
    drop(ctx);
    assert_eq!(dev_shm(), before, "nothing left in /dev/shm");
}

/// A hand-made peer: the HELLO of the rendezvous, with a memfd of our choosing.
fn hello(socket_type: &str, slots: u32) -> Vec<u8> {
    let mut out = b"ZRSHM\x01\x00".to_vec();
    out.push(socket_type.len() as u8);
    out.extend_from_slice(socket_type.as_bytes());
    out.push(0);
    for v in [slots, slots, 256, 64 * 1024] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The size of one ring of `slots` slots and the default slab (as `zring_shm::Config::size`).
fn ring_size(slots: u32) -> usize {
    zring_shm::Config {
        slots,
        chunks: 256,
        chunk_size: 64 * 1024,
    }
    .size()
    .unwrap()
}

/// Connects to `name` by hand and offers rings of `slots` slots in `memfd`, woken by `wake`.
fn offer(
    name: &str,
    slots: u32,
    memfd: &std::os::fd::OwnedFd,
    wake: &zring_engine::EventFd,
) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(format!("zring-shm/{name}")).unwrap();
    let stream = UnixStream::connect_addr(&addr).unwrap();
    zring_shm::link::send(
        &stream,
        &hello("PUSH", slots),
        &[memfd.as_fd(), wake.as_fd()],
    )
    .unwrap();
    stream
}

#[test]
fn a_corrupt_ring_header_or_ring_is_refused_and_others_keep_working() {
    let ctx = Context::new();
    let name = format!("hostile-{}", std::process::id());
    let endpoint = format!("shm://{name}");
    let mut pull = socket(&ctx, SocketType::Pull);
    let monitor = pull.monitor();
    pull.bind(&endpoint).unwrap();
    let slots = 1024;
    let at = ring_size(slots).next_multiple_of(4096);
    let total = at + ring_size(slots);
    let wake = zring_engine::EventFd::new().unwrap();

    // 1. Rings whose headers were never written (garbage header): refused at the rendezvous.
    let (_region, memfd) = zring_shm::Region::shared(total).unwrap();
    let _stream = offer(&name, slots, &memfd, &wake);
    let failed = next_event(&monitor, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    });
    assert!(
        matches!(&failed, MonitorEvent::HandshakeFailed { reason: DisconnectReason::SharedMemory(why), .. } if why.contains("header")),
        "{failed:?}"
    );

    // 2. A peer that connects properly, sends, then breaks the last record of a three-frame message:
    // nothing of that message may come out (its first two frames were good).
    let (region, memfd) = zring_shm::Region::shared(total).unwrap();
    let region = std::sync::Arc::new(region);
    let cfg = zring_shm::Config {
        slots,
        chunks: 256,
        chunk_size: 64 * 1024,
    };
    zring_shm::init(&region, 0, cfg).unwrap();
    zring_shm::init(&region, at, cfg).unwrap();
    let mut tx = zring_shm::Producer::attach(&region, 0, cfg).unwrap();
    let stream = offer(&name, slots, &memfd, &wake);
    let (ready, fds) = zring_shm::link::recv(&stream).unwrap();
    assert_eq!(&ready[..7], b"ZRSHM\x01\x00", "accepted");
    assert_eq!(fds.len(), 1, "with the binder's eventfd");
    tx.try_send(&[b"before the garbage"]).unwrap();
    assert_eq!(pull.recv_string().unwrap(), "before the garbage");
    tx.try_send(&[b"first", b"second", b"third"]).unwrap();
    // The slots follow the control block (512 bytes) and the return ring (8 bytes per chunk); the
    // first message took slot 0, the next one's frames slots 1, 2 and 3: the third becomes a record
    // of 65535 slots, past the ring's end.
    // SAFETY: the map covers the memfd, which is sealed against shrinking; the other side treats
    // its contents as untrusted, which is what this test checks.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&std::fs::File::from(memfd)).unwrap() };
    let next = 512 + 256 * 8 + 3 * 64;
    map[next..next + 8].copy_from_slice(&(0xFFFFu64 << 48 | 1).to_le_bytes());
    map.flush().unwrap();
    let mut binder_wake = std::fs::File::from(fds.into_iter().next().unwrap());
    binder_wake.write_all(&1u64.to_ne_bytes()).unwrap();
    pull.set_rcvtimeo(Some(Duration::from_millis(50))).unwrap();
    assert!(pull.recv().is_err(), "nothing comes out of a broken ring");
    assert!(pull.recv().is_err(), "nor any frame of the broken message");
    let broken = next_event(&monitor, |e| matches!(e, MonitorEvent::Disconnected { .. }));
    assert!(
        matches!(&broken, MonitorEvent::Disconnected { reason: DisconnectReason::SharedMemory(why), .. } if why.contains("record of 65535 slots")),
        "{broken:?}"
    );
    // The broken connection's socket is hung up on.
    let mut byte = [0u8; 1];
    stream.set_read_timeout(Some(WATCHDOG)).unwrap();
    assert_eq!(std::io::Read::read(&mut &stream, &mut byte).unwrap(), 0);

    // 3. A well-behaved peer still gets through.
    pull.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    let mut push = socket(&ctx, SocketType::Push);
    push.connect(&endpoint).unwrap();
    push.send("still serving").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "still serving");
    wait_peers(&mut pull, 1);
}

#[test]
fn incompatible_types_and_a_second_pair_peer_are_refused() {
    let ctx = Context::new();
    let endpoint = format!("shm://refuse-{}", std::process::id());
    let mut publisher = socket(&ctx, SocketType::Pub);
    let monitor = publisher.monitor();
    publisher.bind(&endpoint).unwrap();
    let mut push = socket(&ctx, SocketType::Push);
    push.connect(&endpoint).unwrap();
    let e = next_event(&monitor, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    });
    assert!(
        matches!(
            e,
            MonitorEvent::HandshakeFailed {
                reason: DisconnectReason::Refused,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(publisher.peer_count(), 0);

    let endpoint = format!("shm://pair-{}", std::process::id());
    let mut a = socket(&ctx, SocketType::Pair);
    a.bind(&endpoint).unwrap();
    let mut b = socket(&ctx, SocketType::Pair);
    b.connect(&endpoint).unwrap();
    wait_peers(&mut a, 1);
    let mut c = socket(&ctx, SocketType::Pair);
    c.connect(&endpoint).unwrap();
    b.send("first").unwrap();
    assert_eq!(a.recv_string().unwrap(), "first");
    assert_eq!(a.peer_count(), 1, "the second peer is refused");
    a.send("back").unwrap();
    assert_eq!(b.recv_string().unwrap(), "back");
}

#[test]
fn the_high_water_mark_is_the_ring_capacity_and_a_full_ring_pushes_back() {
    let ctx = Context::new();
    let endpoint = format!("shm://hwm-{}", std::process::id());
    let mut pull = socket(&ctx, SocketType::Pull);
    pull.bind(&endpoint).unwrap();
    let mut push = socket(&ctx, SocketType::Push);
    push.set_sndhwm(16).unwrap();
    push.connect(&endpoint).unwrap();
    wait_peers(&mut pull, 1);
    let mut sent = 0u32;
    while push.try_send(&sent.to_le_bytes()[..]).is_ok() {
        sent += 1;
        assert!(sent <= 1000, "a ring of 16 slots never fills");
    }
    assert_eq!(sent, 16, "16 small messages fill 16 slots");
    for i in 0..sent {
        assert_eq!(&pull.recv().unwrap()[..], &i.to_le_bytes()[..]);
    }
    // Room again: a blocked sender goes on once the reader catches up.
    push.send("after").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "after");
}

#[test]
fn frames_of_tens_of_mib_cross_in_place() {
    let ctx = Context::new();
    let endpoint = format!("shm://large-{}", std::process::id());
    let mut a = socket(&ctx, SocketType::Pair);
    a.bind(&endpoint).unwrap();
    let mut b = socket(&ctx, SocketType::Pair);
    b.connect(&endpoint).unwrap();
    let frame = |n: usize, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    // One frame larger than the 16 MiB slab of before, then a message of two such frames.
    let big = frame(40 << 20, 1);
    b.send(big.as_slice()).unwrap();
    assert!(a.recv().unwrap()[..] == big[..], "40 MiB frame");
    let parts = vec![frame(24 << 20, 2), frame(24 << 20, 3)];
    a.send_multipart(parts.clone()).unwrap();
    let got = b.recv_multipart().unwrap();
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&parts) {
        assert!(g[..] == p[..], "24 MiB frame");
    }
}
