//! `zring bench`: zring, libzmq and the bare limits of the machine, measured by the same harness in
//! the same run, interleaved (zring, libzmq, bare, zring, ...), medians of the rounds.
//!
//! Latency is a REQ/REP ping-pong (one-way = half a round trip), throughput a PUSH/PULL stream timed
//! at the receiver. Over tcp and ipc the server side runs in a second process (this binary, started
//! with the hidden `__bench-serve` command); inproc runs in one process by nature.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Which implementation a measurement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Imp {
    Zring,
    Libzmq,
    Bare,
}

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Tcp,
    Ipc,
    Inproc,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Latency,
    Throughput,
}

/// zring against libzmq and the bare limits, side by side.
#[derive(Debug, Parser)]
#[command(name = "zring bench")]
pub(crate) struct BenchArgs {
    /// Only these transports (default: tcp, ipc, inproc).
    #[arg(long, value_enum)]
    transport: Vec<Transport>,
    /// Only these message sizes in octets (default: 64, 1024, 65536, 1048576).
    #[arg(long)]
    size: Vec<usize>,
    /// Only latency or only throughput.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// Fewer messages and one round: a quick look, not a measurement to quote.
    #[arg(long)]
    quick: bool,
    /// Interleaved rounds; each figure is the median (default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One figure of one row.
#[derive(Debug, Clone, Serialize)]
struct Row {
    kind: Kind,
    transport: Transport,
    size: usize,
    metric: &'static str,
    unit: &'static str,
    zring: Option<f64>,
    libzmq: Option<f64>,
    bare: Option<f64>,
    zring_vs_libzmq: Option<f64>,
    zring_vs_bare: Option<f64>,
}

/// What one measurement gives: one-way latencies, or a rate.
enum Sample {
    Latency(Vec<Duration>),
    Rate { messages: usize, elapsed: Duration },
}

fn trips(size: usize, quick: bool) -> usize {
    let n = match size {
        0..=1024 => 2000,
        1025..=65536 => 500,
        _ => 60,
    };
    if quick {
        n / 4
    } else {
        n
    }
}

fn messages(size: usize, quick: bool) -> usize {
    let n = match size {
        0..=128 => 300_000,
        129..=1024 => 100_000,
        1025..=65536 => 6000,
        _ => 300,
    };
    if quick {
        n / 5
    } else {
        n
    }
}

fn endpoint(transport: Transport, tag: &str) -> String {
    match transport {
        Transport::Tcp => "tcp://127.0.0.1:0".to_string(),
        Transport::Ipc => {
            let path =
                std::env::temp_dir().join(format!("zring-bench-{tag}-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            format!("ipc://{}", path.display())
        }
        Transport::Inproc => format!("inproc://bench-{tag}"),
    }
}

// ---- The server side (the second process, or a thread for inproc) ------------------------------

/// Serves one measurement: echoes `count` messages (latency) or receives `count` and reports how long
/// that took (throughput). Prints `READY <endpoint>` once bound, and for throughput `ELAPSED <ns>`.
fn serve(
    imp: Imp,
    kind: Kind,
    ep: &str,
    size: usize,
    count: usize,
    out: &mut dyn Write,
) -> Result<(), String> {
    let say = |out: &mut dyn Write, line: String| -> Result<(), String> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    match imp {
        Imp::Zring => {
            let ctx = zring::Context::new();
            let t = if kind == Kind::Latency {
                zring::SocketType::Rep
            } else {
                zring::SocketType::Pull
            };
            let mut s = ctx.socket(t).map_err(|e| e.to_string())?;
            s.bind(ep).map_err(|e| e.to_string())?;
            say(
                out,
                format!("READY {}", s.last_endpoint().unwrap_or_default()),
            )?;
            let start = Instant::now();
            let mut first = None;
            for _ in 0..count {
                let m = s.recv().map_err(|e| e.to_string())?;
                first.get_or_insert_with(Instant::now);
                if kind == Kind::Latency {
                    s.send(m).map_err(|e| e.to_string())?;
                }
            }
            if kind == Kind::Throughput {
                let from = first.unwrap_or(start);
                say(out, format!("ELAPSED {}", from.elapsed().as_nanos()))?;
            }
        }
        Imp::Libzmq => {
            let ctx = zmq::Context::new();
            let t = if kind == Kind::Latency {
                zmq::REP
            } else {
                zmq::PULL
            };
            let s = ctx.socket(t).map_err(|e| e.to_string())?;
            let bind_ep = ep.replace("tcp://127.0.0.1:0", "tcp://127.0.0.1:*");
            s.bind(&bind_ep).map_err(|e| e.to_string())?;
            let resolved = s
                .get_last_endpoint()
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            say(out, format!("READY {resolved}"))?;
            let mut msg = zmq::Message::new();
            let start = Instant::now();
            let mut first = None;
            for _ in 0..count {
                s.recv(&mut msg, 0).map_err(|e| e.to_string())?;
                first.get_or_insert_with(Instant::now);
                if kind == Kind::Latency {
                    s.send(&msg[..], 0).map_err(|e| e.to_string())?;
                }
            }
            if kind == Kind::Throughput {
                let from = first.unwrap_or(start);
                say(out, format!("ELAPSED {}", from.elapsed().as_nanos()))?;
            }
            if let Some(path) = ep.strip_prefix("ipc://") {
                let _ = std::fs::remove_file(path);
            }
        }
        Imp::Bare => serve_bare(kind, ep, size, count, out, &say)?,
    }
    Ok(())
}

type Say<'a> = &'a dyn Fn(&mut dyn Write, String) -> Result<(), String>;

/// The bare limit: the same exchange over a plain stream socket, each message `size` octets.
fn serve_bare(
    kind: Kind,
    ep: &str,
    size: usize,
    count: usize,
    out: &mut dyn Write,
    say: Say<'_>,
) -> Result<(), String> {
    let mut stream: Box<dyn ReadWrite> = if let Some(path) = ep.strip_prefix("ipc://") {
        let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| e.to_string())?;
        say(out, format!("READY {ep}"))?;
        let (s, _) = l.accept().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(path);
        Box::new(s)
    } else {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        say(
            out,
            format!("READY tcp://{}", l.local_addr().map_err(|e| e.to_string())?),
        )?;
        let (s, _) = l.accept().map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Box::new(s)
    };
    let mut buf = vec![0u8; size];
    let mut first = None;
    for _ in 0..count {
        stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
        first.get_or_insert_with(Instant::now);
        if kind == Kind::Latency {
            stream.write_all(&buf).map_err(|e| e.to_string())?;
        }
    }
    if kind == Kind::Throughput {
        let from = first.unwrap_or_else(Instant::now);
        say(out, format!("ELAPSED {}", from.elapsed().as_nanos()))?;
    }
    Ok(())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The hidden `__bench-serve IMP KIND ENDPOINT SIZE COUNT` command.
pub(crate) fn serve_command(args: &[String]) -> Result<(), String> {
    let [imp, kind, ep, size, count] = args else {
        return Err("usage: __bench-serve IMP KIND ENDPOINT SIZE COUNT".into());
    };
    let imp = Imp::from_str(imp, true)?;
    let kind = Kind::from_str(kind, true)?;
    let size = size.parse().map_err(|_| "bad size")?;
    let count = count.parse().map_err(|_| "bad count")?;
    serve(imp, kind, ep, size, count, &mut std::io::stdout().lock())
}

// ---- The client side ----------------------------------------------------------------------------

/// The server side, in a second process.
struct Server {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(
        imp: Imp,
        kind: Kind,
        transport: Transport,
        size: usize,
        count: usize,
        tag: &str,
    ) -> Result<(Server, String), String> {
        let ep = endpoint(transport, tag);
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "__bench-serve",
                &format!("{imp:?}"),
                &format!("{kind:?}"),
                &ep,
                &size.to_string(),
                &count.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut server = Server {
            child,
            out: BufReader::new(stdout),
        };
        let ready = server.line()?;
        let resolved = ready
            .strip_prefix("READY ")
            .ok_or_else(|| format!("server said {ready:?}"))?;
        Ok((server, resolved.to_string()))
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.out.read_line(&mut line).map_err(|e| e.to_string())?;
        Ok(line.trim().to_string())
    }

    fn finish(mut self) -> Result<(), String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("server exited with {status}"))
    }
}

/// Runs the zring or libzmq client against a server of the same implementation.
fn measure(
    imp: Imp,
    kind: Kind,
    transport: Transport,
    size: usize,
    quick: bool,
) -> Result<Sample, String> {
    let count = if kind == Kind::Latency {
        trips(size, quick)
    } else {
        messages(size, quick)
    };
    let (server, ep) = Server::start(imp, kind, transport, size, count, &format!("{imp:?}"))?;
    let payload = vec![0x5Au8; size];
    match imp {
        Imp::Zring => zring_client(kind, &ep, &payload, count, server),
        Imp::Libzmq => libzmq_client(kind, &ep, &payload, count, server),
        Imp::Bare => bare_client(kind, &ep, &payload, count, server),
    }
}

/// One-way latencies from round trips, leaving out the first tenth (connection set-up, cold caches).
fn percentile_sample(rtts: Vec<Duration>) -> Sample {
    let warm_up = rtts.len() / 10;
    Sample::Latency(rtts.into_iter().skip(warm_up).map(|d| d / 2).collect())
}

fn zring_client(
    kind: Kind,
    ep: &str,
    payload: &[u8],
    count: usize,
    server: Server,
) -> Result<Sample, String> {
    let ctx = zring::Context::new();
    let e = |e: zring::Error| e.to_string();
    if kind == Kind::Latency {
        let mut req = ctx.socket(zring::SocketType::Req).map_err(e)?;
        req.connect(ep).map_err(e)?;
        let mut rtts = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            req.send(payload).map_err(e)?;
            req.recv().map_err(e)?;
            rtts.push(t.elapsed());
        }
        server.finish()?;
        Ok(percentile_sample(rtts))
    } else {
        let mut push = ctx.socket(zring::SocketType::Push).map_err(e)?;
        push.connect(ep).map_err(e)?;
        for _ in 0..count {
            push.send(payload).map_err(e)?;
        }
        let mut server = server;
        let elapsed = elapsed_line(&mut server)?;
        server.finish()?;
        Ok(Sample::Rate {
            messages: count,
            elapsed,
        })
    }
}

fn libzmq_client(
    kind: Kind,
    ep: &str,
    payload: &[u8],
    count: usize,
    server: Server,
) -> Result<Sample, String> {
    let ctx = zmq::Context::new();
    let e = |e: zmq::Error| e.to_string();
    if kind == Kind::Latency {
        let req = ctx.socket(zmq::REQ).map_err(e)?;
        req.connect(ep).map_err(e)?;
        let mut msg = zmq::Message::new();
        let mut rtts = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            req.send(payload, 0).map_err(e)?;
            req.recv(&mut msg, 0).map_err(e)?;
            rtts.push(t.elapsed());
        }
        server.finish()?;
        Ok(percentile_sample(rtts))
    } else {
        let push = ctx.socket(zmq::PUSH).map_err(e)?;
        push.connect(ep).map_err(e)?;
        for _ in 0..count {
            push.send(payload, 0).map_err(e)?;
        }
        let mut server = server;
        let elapsed = elapsed_line(&mut server)?;
        server.finish()?;
        Ok(Sample::Rate {
            messages: count,
            elapsed,
        })
    }
}

fn bare_client(
    kind: Kind,
    ep: &str,
    payload: &[u8],
    count: usize,
    server: Server,
) -> Result<Sample, String> {
    let mut stream: Box<dyn ReadWrite> = match ep.strip_prefix("ipc://") {
        Some(path) => {
            Box::new(std::os::unix::net::UnixStream::connect(path).map_err(|e| e.to_string())?)
        }
        None => {
            let s = std::net::TcpStream::connect(ep.trim_start_matches("tcp://"))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            Box::new(s)
        }
    };
    let mut buf = payload.to_vec();
    if kind == Kind::Latency {
        let mut rtts = Vec::with_capacity(count);
        for _ in 0..count {
            let t = Instant::now();
            stream.write_all(payload).map_err(|e| e.to_string())?;
            stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
            rtts.push(t.elapsed());
        }
        server.finish()?;
        Ok(percentile_sample(rtts))
    } else {
        for _ in 0..count {
            stream.write_all(payload).map_err(|e| e.to_string())?;
        }
        let mut server = server;
        let elapsed = elapsed_line(&mut server)?;
        server.finish()?;
        Ok(Sample::Rate {
            messages: count,
            elapsed,
        })
    }
}

fn elapsed_line(server: &mut Server) -> Result<Duration, String> {
    let line = server.line()?;
    let ns: u64 = line
        .strip_prefix("ELAPSED ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("server said {line:?}"))?;
    Ok(Duration::from_nanos(ns))
}

/// inproc: both sides in one process and one context (inproc reaches only sockets of the same
/// context), the server on a thread. The bare limit is two threads ping-ponging a counter through one
/// atomic, spinning: the cost of the cache line crossing cores and back.
fn measure_inproc(imp: Imp, kind: Kind, size: usize, quick: bool) -> Result<Sample, String> {
    let count = if kind == Kind::Latency {
        trips(size, quick)
    } else {
        messages(size, quick)
    };
    let ep = endpoint(Transport::Inproc, &format!("{imp:?}-{kind:?}-{size}"));
    let payload = vec![0x5Au8; size];
    match imp {
        Imp::Zring => {
            let ctx = zring::Context::new();
            let server_ctx = ctx.clone();
            let e = |e: zring::Error| e.to_string();
            let t = if kind == Kind::Latency {
                zring::SocketType::Rep
            } else {
                zring::SocketType::Pull
            };
            let mut server = server_ctx.socket(t).map_err(e)?;
            server.bind(&ep).map_err(e)?;
            let serving = std::thread::spawn(move || -> Result<Duration, String> {
                let mut first = None;
                for _ in 0..count {
                    let m = server.recv().map_err(e)?;
                    first.get_or_insert_with(Instant::now);
                    if kind == Kind::Latency {
                        server.send(m).map_err(e)?;
                    }
                }
                Ok(first.map_or(Duration::ZERO, |f: Instant| f.elapsed()))
            });
            let t = if kind == Kind::Latency {
                zring::SocketType::Req
            } else {
                zring::SocketType::Push
            };
            let mut client = ctx.socket(t).map_err(e)?;
            client.connect(&ep).map_err(e)?;
            let mut rtts = Vec::with_capacity(count);
            for _ in 0..count {
                let start = Instant::now();
                client.send(&payload[..]).map_err(e)?;
                if kind == Kind::Latency {
                    client.recv().map_err(e)?;
                    rtts.push(start.elapsed());
                }
            }
            let elapsed = serving
                .join()
                .map_err(|_| "server thread panicked".to_string())??;
            Ok(match kind {
                Kind::Latency => percentile_sample(rtts),
                Kind::Throughput => Sample::Rate {
                    messages: count,
                    elapsed,
                },
            })
        }
        Imp::Libzmq => {
            let ctx = zmq::Context::new();
            let e = |e: zmq::Error| e.to_string();
            let t = if kind == Kind::Latency {
                zmq::REP
            } else {
                zmq::PULL
            };
            let server = ctx.socket(t).map_err(e)?;
            server.bind(&ep).map_err(e)?;
            let serving = std::thread::spawn(move || -> Result<Duration, String> {
                let mut msg = zmq::Message::new();
                let mut first = None;
                for _ in 0..count {
                    server.recv(&mut msg, 0).map_err(e)?;
                    first.get_or_insert_with(Instant::now);
                    if kind == Kind::Latency {
                        server.send(&msg[..], 0).map_err(e)?;
                    }
                }
                Ok(first.map_or(Duration::ZERO, |f: Instant| f.elapsed()))
            });
            let t = if kind == Kind::Latency {
                zmq::REQ
            } else {
                zmq::PUSH
            };
            let client = ctx.socket(t).map_err(e)?;
            client.connect(&ep).map_err(e)?;
            let mut msg = zmq::Message::new();
            let mut rtts = Vec::with_capacity(count);
            for _ in 0..count {
                let start = Instant::now();
                client.send(&payload[..], 0).map_err(e)?;
                if kind == Kind::Latency {
                    client.recv(&mut msg, 0).map_err(e)?;
                    rtts.push(start.elapsed());
                }
            }
            let elapsed = serving
                .join()
                .map_err(|_| "server thread panicked".to_string())??;
            Ok(match kind {
                Kind::Latency => percentile_sample(rtts),
                Kind::Throughput => Sample::Rate {
                    messages: count,
                    elapsed,
                },
            })
        }
        Imp::Bare => Ok(spinning_ping_pong(count)),
    }
}

/// Two threads handing a counter back and forth through one atomic, spinning.
fn spinning_ping_pong(count: usize) -> Sample {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let ball = Arc::new(AtomicU64::new(0));
    let other = ball.clone();
    let rounds = count as u64;
    let partner = std::thread::spawn(move || {
        for i in 0..rounds {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let mut rtts = Vec::with_capacity(count);
    for i in 0..rounds {
        let start = Instant::now();
        ball.store(2 * i + 1, Ordering::Release);
        while ball.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
        rtts.push(start.elapsed());
    }
    let _ = partner.join();
    percentile_sample(rtts)
}

// ---- Driving the rounds ---------------------------------------------------------------------------

struct Progress {
    done: usize,
    total: usize,
    tty: bool,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
        if self.tty {
            eprint!("\r[{bar}] {}/{} {what:<40}", self.done, self.total);
            if self.done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("[{bar}] {}/{} {what}", self.done, self.total);
        }
    }
}

/// One figure of a sample: a latency percentile in microseconds, a rate, or a bandwidth in MB/s.
fn figure(sample: &Sample, metric: &str, size: usize) -> Option<f64> {
    match (sample, metric) {
        (Sample::Latency(d), "p50") => Some(quantile(d.clone(), 0.5)),
        (Sample::Latency(d), "p99") => Some(quantile(d.clone(), 0.99)),
        (Sample::Latency(d), "p99.9") => Some(quantile(d.clone(), 0.999)),
        (Sample::Rate { messages, elapsed }, "rate") => {
            Some(*messages as f64 / elapsed.as_secs_f64())
        }
        (Sample::Rate { messages, elapsed }, "bandwidth") => {
            Some((*messages * size) as f64 / elapsed.as_secs_f64() / 1e6)
        }
        _ => None,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn quantile(mut d: Vec<Duration>, q: f64) -> f64 {
    d.sort();
    let i = ((d.len().saturating_sub(1)) as f64 * q).round() as usize;
    d.get(i).map_or(f64::NAN, |x| x.as_secs_f64() * 1e6)
}

/// Runs the bench and prints the table (or JSON).
pub(crate) fn run(args: &BenchArgs) -> Result<(), String> {
    let transports = if args.transport.is_empty() {
        vec![Transport::Tcp, Transport::Ipc, Transport::Inproc]
    } else {
        args.transport.clone()
    };
    let sizes = if args.size.is_empty() {
        vec![64, 1024, 65536, 1 << 20]
    } else {
        args.size.clone()
    };
    let kinds = match args.kind {
        Some(k) => vec![k],
        None => vec![Kind::Latency, Kind::Throughput],
    };
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let imps_for = |t: Transport, kind: Kind| match (t, kind) {
        // No bare limit for inproc streaming: the spinning ping-pong is a latency figure.
        (Transport::Inproc, Kind::Throughput) => vec![Imp::Zring, Imp::Libzmq],
        _ => vec![Imp::Zring, Imp::Libzmq, Imp::Bare],
    };
    let mut cells = Vec::new();
    for &kind in &kinds {
        for &t in &transports {
            for &size in &sizes {
                cells.push((kind, t, size));
            }
        }
    }
    let total: usize = cells
        .iter()
        .map(|&(k, t, _)| imps_for(t, k).len())
        .sum::<usize>()
        * rounds;
    let mut progress = Progress {
        done: 0,
        total,
        tty: std::io::stderr().is_terminal(),
    };
    // samples[(cell index, imp)] -> per-round samples
    let mut samples: Vec<Vec<(Imp, Sample)>> = (0..cells.len()).map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, &(kind, t, size)) in cells.iter().enumerate() {
            for imp in imps_for(t, kind) {
                progress.step(&format!("{kind:?} {t:?} {size} B {imp:?}"));
                let s = if t == Transport::Inproc {
                    measure_inproc(imp, kind, size, args.quick)?
                } else {
                    measure(imp, kind, t, size, args.quick)?
                };
                samples[i].push((imp, s));
            }
        }
    }
    let mut rows = Vec::new();
    for (i, &(kind, t, size)) in cells.iter().enumerate() {
        let per = |imp: Imp, f: &dyn Fn(&Sample) -> Option<f64>| {
            median(
                samples[i]
                    .iter()
                    .filter(|(m, _)| *m == imp)
                    .filter_map(|(_, s)| f(s))
                    .collect(),
            )
        };
        let metrics: &[(&'static str, &'static str)] = match kind {
            Kind::Latency => &[("p50", "us"), ("p99", "us"), ("p99.9", "us")],
            Kind::Throughput => &[("rate", "msgs/s"), ("bandwidth", "MB/s")],
        };
        for &(metric, unit) in metrics {
            let f = |s: &Sample| figure(s, metric, size);
            let (z, l, b) = (
                per(Imp::Zring, &f),
                per(Imp::Libzmq, &f),
                per(Imp::Bare, &f),
            );
            let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
            rows.push(Row {
                kind,
                transport: t,
                size,
                metric,
                unit,
                zring: z,
                libzmq: l,
                bare: b,
                zring_vs_libzmq: ratio(z, l),
                zring_vs_bare: ratio(z, b),
            });
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let fmt = |v: Option<f64>| {
        v.map_or("-".to_string(), |v| {
            if v >= 1000.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
    };
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "row", "zring", "libzmq", "bare", "/libzmq", "/bare"
    );
    for r in &rows {
        println!(
            "{:<34} {:>12} {:>12} {:>12} {:>9} {:>9}",
            format!(
                "{:?} {:?} {} B {} ({})",
                r.kind, r.transport, r.size, r.metric, r.unit
            )
            .to_lowercase(),
            fmt(r.zring),
            fmt(r.libzmq),
            fmt(r.bare),
            fmt(r.zring_vs_libzmq),
            fmt(r.zring_vs_bare)
        );
    }
    println!("(medians of {rounds} interleaved round(s); latency is one-way, half a round trip; lower is better for latency, higher for rates)");
    Ok(())
}
