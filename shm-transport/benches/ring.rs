//! The ring against the bare limits, in the same run: one-way latency of a 64 B ping-pong between two
//! processes (the second is this binary again, echoing; one core each) with the default wait (spin
//! 5 us, then the futex) and busy-polling, beside a bare Unix-socket ping-pong; and streaming rates of
//! 64 B and 1 MiB messages between two threads. `cargo bench -p zring-shm --bench ring`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use zring_shm::{channel, init, Config, Consumer, Producer, Region, Wait};

const FD_VAR: &str = "ZRING_SHM_BENCH_FD";
const MODE_VAR: &str = "ZRING_SHM_BENCH_MODE";
const CORE_VAR: &str = "ZRING_SHM_BENCH_CORE";

/// Pins the calling thread to the core with this id (by id: once pinned, a process lists only the
/// cores it may run on).
fn pin(id: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id });
}

fn wait_for(mode: &str) -> Wait {
    Wait {
        busy: mode == "busy",
        ..Wait::default()
    }
}

/// The second process: echoes over the rings (or the Unix socket) until its input closes.
fn child(raw: &str, mode: &str) {
    pin(std::env::var(CORE_VAR)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1));
    // SAFETY: the parent passed this descriptor, open and inherited, for us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(raw.parse().unwrap_or(-1)) };
    if mode == "unix" {
        let mut s = UnixStream::from(fd);
        let mut buf = [0u8; 64];
        while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
        return;
    }
    let size = Config::default().size().unwrap_or(0);
    let Ok(region) = Region::open(fd, 2 * size) else {
        return;
    };
    let region = Arc::new(region);
    let (Ok(mut rx), Ok(mut tx)) = (
        Consumer::attach(&region, 0, Config::default()),
        Producer::attach(&region, size, Config::default()),
    ) else {
        return;
    };
    while let Ok(Some(m)) = rx.recv(wait_for(mode), None) {
        let parts: Vec<&[u8]> = m.iter().map(|f| &f[..]).collect();
        if tx.send(&parts, wait_for(mode), None).is_err() {
            return;
        }
    }
}

/// Starts the echoing child on an inheritable copy of `fd`.
fn spawn(fd: &impl AsRawFd, mode: &str, core: usize) -> std::process::Child {
    // SAFETY: F_DUPFD without CLOEXEC takes an integer; the result is owned just below.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 0) };
    // SAFETY: a new descriptor nothing else owns; dropping it after the spawn closes our copy.
    let copy = unsafe { OwnedFd::from_raw_fd(raw) };
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(FD_VAR, raw.to_string())
        .env(MODE_VAR, mode)
        .env(CORE_VAR, core.to_string())
        .spawn()
        .unwrap();
    drop(copy);
    child
}

/// One-way time of `iters` round trips, halved.
fn one_way(iters: u64, mut round_trip: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        round_trip();
    }
    start.elapsed() / 2
}

/// The ping-pongs with the second process on core `child_core` (this one is on core 0). Busy-polling
/// is measured only across cores: two spinning processes on one core only take turns.
fn latency(c: &mut Criterion, child_core: usize) {
    pin(0);
    let (name, modes): (_, &[&str]) = if child_core == 0 {
        ("one-way 64 B, two processes on one core", &["park"])
    } else {
        (
            "one-way 64 B, two processes, one core each",
            &["park", "busy"],
        )
    };
    let mut g = c.benchmark_group(name);
    for &mode in modes {
        let size = Config::default().size().unwrap();
        let (region, fd) = Region::shared(2 * size).unwrap();
        let region = Arc::new(region);
        init(&region, 0, Config::default()).unwrap();
        init(&region, size, Config::default()).unwrap();
        let mut kid = spawn(&fd, mode, child_core);
        let mut tx = Producer::attach(&region, 0, Config::default()).unwrap();
        let mut rx = Consumer::attach(&region, size, Config::default()).unwrap();
        let payload = [0x5Au8; 64];
        g.bench_function(BenchmarkId::new("shm ring", mode), |b| {
            b.iter_custom(|iters| {
                one_way(iters, || {
                    tx.send(&[&payload], wait_for(mode), None).unwrap();
                    rx.recv(wait_for(mode), None).unwrap().unwrap();
                })
            });
        });
        drop(tx);
        kid.wait().unwrap();
    }
    let (mut here, there) = UnixStream::pair().unwrap();
    let mut kid = spawn(&there, "unix", child_core);
    drop(there);
    let mut buf = [0x5Au8; 64];
    g.bench_function("bare unix socket", |b| {
        b.iter_custom(|iters| {
            one_way(iters, || {
                here.write_all(&buf).unwrap();
                here.read_exact(&mut buf).unwrap();
            })
        });
    });
    drop(here);
    kid.wait().unwrap();
    g.finish();
}

fn streaming(c: &mut Criterion) {
    pin(0);
    let mut g = c.benchmark_group("streaming, two threads");
    for size in [64usize, 1 << 20] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("shm ring", size), |b| {
            b.iter_custom(|iters| {
                let (mut tx, mut rx) = channel(Config::default()).unwrap();
                let reader = std::thread::spawn(move || {
                    pin(1);
                    let mut seen = 0u64;
                    while seen < iters {
                        // Small frames borrowed from the slots, large ones read in place from the
                        // slab (dropped at once: the run goes back).
                        match rx.try_recv_with(|frame, _| drop(frame)) {
                            Ok(true) => seen += 1,
                            Ok(false) => {
                                rx.wait(Wait::default(), None);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
                let body = vec![0x5Au8; size];
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(&[&body], Wait::default(), None).unwrap();
                }
                reader.join().unwrap();
                start.elapsed()
            });
        });
    }
    g.finish();
}

fn main() {
    if let (Ok(fd), Ok(mode)) = (std::env::var(FD_VAR), std::env::var(MODE_VAR)) {
        child(&fd, &mode);
        std::process::exit(0);
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    latency(&mut c, 1);
    latency(&mut c, 0);
    streaming(&mut c);
    c.final_summary();
}
