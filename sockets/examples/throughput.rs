//! PUSH/PULL streaming throughput over tcp and inproc, zring and libzmq in the same run, interleaved,
//! medians. Run: `cargo run --release -p zring --example throughput`.

use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

fn count(size: usize) -> usize {
    if size <= 1024 {
        1_000_000
    } else {
        20_000
    }
}

fn zring_run(endpoint: &str, size: usize) -> Duration {
    let n = count(size);
    let ctx = zring::Context::new();
    let mut pull = ctx.socket(zring::SocketType::Pull).unwrap();
    pull.bind(endpoint).unwrap();
    let ep = pull.last_endpoint().unwrap();
    let mut push = ctx.socket(zring::SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    let body = vec![1u8; size];
    let sender = std::thread::spawn(move || {
        // A copy per message, as libzmq's `send(&[u8])` makes.
        for _ in 0..n {
            push.send(&body[..]).unwrap();
        }
        push
    });
    let first = pull.recv().unwrap();
    let start = Instant::now();
    drop(first);
    for _ in 1..n {
        let _ = pull.recv().unwrap();
    }
    let elapsed = start.elapsed();
    drop(sender.join().unwrap());
    elapsed
}

fn libzmq_run(endpoint: &str, size: usize) -> Duration {
    let n = count(size);
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(endpoint).unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&ep).unwrap();
    let body = vec![1u8; size];
    let sender = std::thread::spawn(move || {
        for _ in 0..n {
            push.send(&body[..], 0).unwrap();
        }
        push
    });
    let mut msg = zmq::Message::new();
    pull.recv(&mut msg, 0).unwrap();
    let start = Instant::now();
    for _ in 1..n {
        pull.recv(&mut msg, 0).unwrap();
    }
    let elapsed = start.elapsed();
    drop(sender.join().unwrap());
    elapsed
}

fn main() {
    println!(
        "{:<24} {:>12} {:>12} {:>8}",
        "", "zring msg/s", "libzmq msg/s", "ratio"
    );
    for (transport, zep, lep) in [
        ("tcp", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*"),
        ("inproc", "inproc://thr", "inproc://thr"),
    ] {
        for size in [64usize, 65536] {
            let (mut z, mut l) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                z.push(count(size) as f64 / zring_run(zep, size).as_secs_f64());
                l.push(count(size) as f64 / libzmq_run(lep, size).as_secs_f64());
            }
            z.sort_by(f64::total_cmp);
            l.sort_by(f64::total_cmp);
            let (zm, lm) = (z[ROUNDS / 2], l[ROUNDS / 2]);
            println!(
                "{:<24} {:>12.0} {:>12.0} {:>8.2}",
                format!("{transport} {size} B"),
                zm,
                lm,
                zm / lm
            );
        }
    }
}
