//! One-way latency of a 64-byte REQ/REP ping-pong over tcp, ipc and inproc: zring, libzmq and the bare
//! sockets in the same run, interleaved, medians. Run: `cargo run --release -p zring --example pingpong`.
//! (The full harness is `zring bench`; this is the quick look used while designing the hot path.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const SIZE: usize = 64;
const TRIPS: usize = 5_000;
const ROUNDS: usize = 3;

/// Median and 99th percentile of one-way latencies (half round trips), in microseconds.
fn summary(mut rtts: Vec<Duration>) -> (f64, f64) {
    rtts.sort();
    let at = |q: f64| rtts[((rtts.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6 / 2.0;
    (at(0.5), at(0.99))
}

fn zring_rtts(endpoint: &str) -> Vec<Duration> {
    let spin = std::env::var("ZRING_SPIN_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_micros);
    let ctx = zring::Context::builder().spin(spin).build();
    let mut rep = ctx.socket(zring::SocketType::Rep).unwrap();
    rep.bind(endpoint).unwrap();
    let ep = rep.last_endpoint().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..TRIPS + 100 {
            let m = rep.recv().unwrap();
            rep.send(m).unwrap();
        }
    });
    let mut req = ctx.socket(zring::SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    let payload = vec![7u8; SIZE];
    let mut rtts = Vec::with_capacity(TRIPS);
    for i in 0..TRIPS + 100 {
        let t = Instant::now();
        req.send(payload.clone()).unwrap();
        let _ = req.recv().unwrap();
        if i >= 100 {
            rtts.push(t.elapsed());
        }
    }
    server.join().unwrap();
    rtts
}

fn libzmq_rtts(endpoint: &str) -> Vec<Duration> {
    let ctx = zmq::Context::new();
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.bind(endpoint).unwrap();
    let ep = rep.get_last_endpoint().unwrap().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..TRIPS + 100 {
            let m = rep.recv_bytes(0).unwrap();
            rep.send(m, 0).unwrap();
        }
    });
    let req = ctx.socket(zmq::REQ).unwrap();
    req.connect(&ep).unwrap();
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        // libzmq leaves its socket file behind: the directory entry can go now, the socket stays.
        let _ = std::fs::remove_file(path);
    }
    let payload = [7u8; SIZE];
    let mut rtts = Vec::with_capacity(TRIPS);
    for i in 0..TRIPS + 100 {
        let t = Instant::now();
        req.send(&payload[..], 0).unwrap();
        let _ = req.recv_bytes(0).unwrap();
        if i >= 100 {
            rtts.push(t.elapsed());
        }
    }
    server.join().unwrap();
    rtts
}

fn bare_tcp_rtts() -> Vec<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; SIZE];
        for _ in 0..TRIPS + 100 {
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut buf = [7u8; SIZE];
    let mut rtts = Vec::with_capacity(TRIPS);
    for i in 0..TRIPS + 100 {
        let t = Instant::now();
        c.write_all(&buf).unwrap();
        c.read_exact(&mut buf).unwrap();
        if i >= 100 {
            rtts.push(t.elapsed());
        }
    }
    server.join().unwrap();
    rtts
}

fn bare_unix_rtts() -> Vec<Duration> {
    use std::os::unix::net::UnixStream;
    let (mut c, mut s) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; SIZE];
        for _ in 0..TRIPS + 100 {
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    let mut buf = [7u8; SIZE];
    let mut rtts = Vec::with_capacity(TRIPS);
    for i in 0..TRIPS + 100 {
        let t = Instant::now();
        c.write_all(&buf).unwrap();
        c.read_exact(&mut buf).unwrap();
        if i >= 100 {
            rtts.push(t.elapsed());
        }
    }
    server.join().unwrap();
    rtts
}

fn ipc_endpoint(who: &str) -> String {
    let path =
        std::env::temp_dir().join(format!("zring-pingpong-{who}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    format!("ipc://{}", path.display())
}

fn main() {
    type Case = (&'static str, fn() -> Vec<Duration>);
    let cases: [Case; 8] = [
        ("bare tcp", bare_tcp_rtts),
        ("zring tcp", || zring_rtts("tcp://127.0.0.1:0")),
        ("libzmq tcp", || libzmq_rtts("tcp://127.0.0.1:*")),
        ("bare unix", bare_unix_rtts),
        ("zring ipc", || zring_rtts(&ipc_endpoint("zring"))),
        ("libzmq ipc", || libzmq_rtts(&ipc_endpoint("libzmq"))),
        ("zring inproc", || zring_rtts("inproc://pingpong")),
        ("libzmq inproc", || libzmq_rtts("inproc://pingpong")),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in cases.iter().enumerate() {
            results[i].push(summary(run()));
        }
    }
    println!(
        "{:<14} {:>10} {:>10}   (one-way, 64 B, median of {ROUNDS} interleaved runs of {TRIPS})",
        "", "p50 us", "p99 us"
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let mut p50: Vec<f64> = results[i].iter().map(|r| r.0).collect();
        let mut p99: Vec<f64> = results[i].iter().map(|r| r.1).collect();
        p50.sort_by(f64::total_cmp);
        p99.sort_by(f64::total_cmp);
        println!(
            "{name:<14} {:>10.1} {:>10.1}",
            p50[ROUNDS / 2],
            p99[ROUNDS / 2]
        );
    }
}
