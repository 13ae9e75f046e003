//! `zring bench`: zring, libzmq and the bare limits of the machine, measured by the same harness in
//! the same run, interleaved (zring, libzmq, bare, zring, ...), medians of the rounds. A latency
//! figure of a round pools [`LATENCY_SLICES`] shorter runs of each implementation, taken in turn.
//!
//! Latency is a REQ/REP ping-pong (one-way = half a round trip), throughput a PUSH/PULL stream timed
//! at the receiver. Over tcp and ipc the server side runs in a second process (this binary, started
//! with the hidden `__bench-serve` command); inproc runs in one process by nature.
//!
//! Where the two sides run is fixed (`--placement`): on a virtual machine a wake-up across cores costs
//! several times one on the same core, and a scheduler left free flips between the two from run to
//! run, so unpinned figures are bimodal. By default the client side is pinned to the first core and
//! the server side to the second, as latency-sensitive deployments give each process its own core.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// zring's shm:// (two processes); libzmq has none, so its column and the bare limit are ipc
    /// (the Unix socket): what a user of libzmq would use between two processes.
    Shm,
}

/// Where the client and server sides run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Placement {
    /// Client side on the first core, server side on the second (one core when there is only one).
    Split,
    /// Both sides on the first core.
    Same,
    /// Wherever the scheduler puts them.
    Free,
}

impl Placement {
    /// The cores (their ids, from `ids`: the cores the process may run on) of the client and the
    /// server side.
    fn cores(self, ids: &[usize]) -> (Option<usize>, Option<usize>) {
        let (first, second) = (ids.first().copied(), ids.get(1).or(ids.first()).copied());
        match self {
            Placement::Free => (None, None),
            Placement::Same => (first, first),
            Placement::Split => (first, second),
        }
    }
}

/// The cores this process may run on, by id.
fn allowed_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect()
}

/// Pins the calling thread (and the threads it starts from now on) to the core with this id.
fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Lets the calling thread (and the threads it starts from now on) run on any of `cores` again.
fn unpin(cores: &[usize]) {
    // SAFETY: `cpu_set_t` is plain data; CPU_ZERO/CPU_SET write within it; sched_setaffinity reads
    // `size_of::<cpu_set_t>()` bytes of it and its result is only advisory here.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Latency,
    Throughput,
    /// PUB to 1 and to 8 SUB over tcp, 64 B, the rate summed over the subscribers.
    Fanout,
    /// Memory per idle tcp connection.
    Memory,
}

/// A libzmq receive that waits this long ends its run with an error (run again once), never a hang:
/// libzmq stopped delivering an ipc stream once in many runs.
const STALL: Duration = Duration::from_secs(20);

/// A cell with no result after this long has stalled: the bench says which and exits. zring's
/// sockets wait as the bare limit's do, with no receive timeout (a timeout costs a timer and clock
/// reads per receive that the bare programs do not pay), so nothing else would end such a wait.
const CELL_LIMIT: Duration = Duration::from_secs(120);

/// Starts the watchdog of [`CELL_LIMIT`]: each cell sends its name as it begins; the thread ends
/// when the sender is dropped.
fn watchdog() -> std::sync::mpsc::Sender<String> {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut cell = String::new();
        loop {
            match rx.recv_timeout(CELL_LIMIT) {
                Ok(next) => cell = next,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "\n{cell}: no result after {} s: stalled",
                        CELL_LIMIT.as_secs()
                    );
                    std::process::exit(2);
                }
            }
        }
    });
    tx
}

/// A process the bench starts ends with the bench (a stalled bench exits, see [`CELL_LIMIT`]).
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

/// How many subscribers the fan-out rows have.
const FANOUT: [usize; 2] = [1, 8];

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
    /// Where the two sides run (see the module's documentation; default: split, then same).
    #[arg(long, value_enum)]
    placement: Vec<Placement>,
    /// zring's blocking calls spin instead of sleeping (`ContextBuilder::spin`), on both sides: for
    /// cores given to the application alone. libzmq has no such mode and runs as always.
    #[arg(long)]
    busy_poll: bool,
}

/// Whether zring contexts spin instead of sleeping (`--busy-poll`), in this process.
static BUSY_POLL: AtomicBool = AtomicBool::new(false);

/// One figure of one row.
#[derive(Debug, Clone, Serialize)]
struct Row {
    kind: Kind,
    /// For fan-out rows: how many subscribers.
    subscribers: Option<usize>,
    placement: Placement,
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

/// What one measurement gives: one-way latencies, a rate, or memory per connection.
enum Sample {
    Latency(Vec<Duration>),
    Rate {
        messages: usize,
        elapsed: Duration,
    },
    /// Resident memory added per idle connection, in bytes.
    Memory(f64),
}

impl Sample {
    /// This sample and a later slice of the same cell as one: their one-way latencies pooled. Only
    /// latency is measured in slices ([`slices`]); any other sample is whole, and `more` replaces it.
    fn pool(self, more: Sample) -> Sample {
        match (self, more) {
            (Sample::Latency(mut all), Sample::Latency(more)) => {
                all.extend(more);
                Sample::Latency(all)
            }
            (_, more) => more,
        }
    }
}

/// A latency cell of a round is measured in this many slices, each a connection of its own with a
/// share of the round trips, taken in turn by each implementation (zring, libzmq, bare, zring, ...),
/// and each implementation's slices are pooled into its sample. On this machine the cost of a
/// wake-up across cores flips between two levels (15 and 150 us) within a fraction of a second, so
/// that three back-to-back runs of 0.1-0.2 s each could find different levels and the tails compared
/// the machine's phases rather than the implementations; slices spread each one's round trips over
/// the same stretch of time.
const LATENCY_SLICES: usize = 4;

/// How many slices a cell of `kind` is measured in (see [`LATENCY_SLICES`]); one with `--quick`.
fn slices(kind: Kind, quick: bool) -> usize {
    if kind == Kind::Latency && !quick {
        LATENCY_SLICES
    } else {
        1
    }
}

/// How many round trips (latency, in each of a cell's [`slices`]) or messages (throughput) a
/// measurement takes. A stream of small messages is 3 M long for the libraries (at 4-20 M msgs/s,
/// 150-750 ms: long past the start-up of threads and buffers, which a stream of 300 k, 15 ms at
/// zring's rate, was not) and 100 k for the bare limit (a system call per message: 0.4-0.9 s
/// already, and the default run is to stay under 3 minutes when this machine is slow).
fn count(imp: Imp, kind: Kind, size: usize, quick: bool) -> usize {
    let (n, quick_divisor) = match kind {
        Kind::Latency => (
            match size {
                0..=1024 => 2000,
                1025..=65536 => 500,
                _ => 60,
            },
            4,
        ),
        Kind::Throughput => (
            match size {
                0..=128 if imp != Imp::Bare => 3_000_000,
                0..=1024 => 100_000,
                1025..=65536 => 6000,
                _ => 300,
            },
            5,
        ),
        Kind::Fanout => (100_000, 5),
        Kind::Memory => (500, 5),
    };
    let n: usize = if quick { n / quick_divisor } else { n };
    n.div_ceil(slices(kind, quick))
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
        Transport::Shm => format!("shm://bench-{tag}-{}", std::process::id()),
    }
}

// ---- The two libraries behind the same calls ----------------------------------------------------

/// One end of a measurement, zring's or libzmq's.
trait Peer: Send {
    fn send(&mut self, data: &[u8]) -> Result<(), String>;
    /// Receives a message and drops it.
    fn recv(&mut self) -> Result<(), String>;
    /// Receives a message and sends it back.
    fn echo(&mut self) -> Result<(), String>;
}

impl Peer for zring::Socket {
    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        zring::Socket::send(self, data).map_err(|e| e.to_string())
    }
    fn recv(&mut self) -> Result<(), String> {
        zring::Socket::recv(self)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn echo(&mut self) -> Result<(), String> {
        let m = zring::Socket::recv(self).map_err(|e| e.to_string())?;
        zring::Socket::send(self, m).map_err(|e| e.to_string())
    }
}

/// A libzmq socket with its receive buffer.
struct Zmq(zmq::Socket, zmq::Message);

impl Peer for Zmq {
    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.0.send(data, 0).map_err(|e| e.to_string())
    }
    fn recv(&mut self) -> Result<(), String> {
        self.0.recv(&mut self.1, 0).map_err(|e| e.to_string())
    }
    fn echo(&mut self) -> Result<(), String> {
        self.0.recv(&mut self.1, 0).map_err(|e| e.to_string())?;
        self.0.send(&self.1[..], 0).map_err(|e| e.to_string())
    }
}

/// The roles of a measurement.
#[derive(Clone, Copy)]
enum Role {
    Client,
    Server,
}

/// A zring or libzmq context.
#[derive(Clone)]
enum Ctx {
    Zring(zring::Context),
    Libzmq(zmq::Context),
}

impl Ctx {
    fn new(imp: Imp) -> Result<Ctx, String> {
        match imp {
            Imp::Zring if BUSY_POLL.load(Ordering::Relaxed) => Ok(Ctx::Zring(
                // A bound too large to add: spin until done.
                zring::Context::builder().spin(Some(Duration::MAX)).build(),
            )),
            Imp::Zring => Ok(Ctx::Zring(zring::Context::new())),
            Imp::Libzmq => Ok(Ctx::Libzmq(zmq::Context::new())),
            Imp::Bare => Err("the bare limit has no context".into()),
        }
    }

    /// The socket of `role` for `kind` (REQ/REP or PUSH/PULL): the server binds `ep`, the client
    /// connects to it. Returns it with the endpoint as bound.
    fn socket(&self, kind: Kind, role: Role, ep: &str) -> Result<(Box<dyn Peer>, String), String> {
        use zring::SocketType as T;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let t = match (kind, role) {
            (Kind::Latency, Role::Server) => T::Rep,
            (Kind::Latency, Role::Client) => T::Req,
            (Kind::Throughput | Kind::Memory, Role::Server) => T::Pull,
            (Kind::Throughput | Kind::Memory, Role::Client) => T::Push,
            (Kind::Fanout, Role::Server) => T::XPub,
            (Kind::Fanout, Role::Client) => T::Sub,
        };
        match self {
            Ctx::Zring(ctx) => {
                let mut s = ctx.socket(t).map_err(|x| e(&x))?;
                if kind == Kind::Fanout {
                    s.set_sndhwm(0).map_err(|x| e(&x))?;
                    s.set_rcvhwm(0).map_err(|x| e(&x))?;
                    match role {
                        Role::Server => s.set_xpub_verbose(true).map_err(|x| e(&x))?,
                        Role::Client => s.subscribe("").map_err(|x| e(&x))?,
                    }
                }
                match role {
                    Role::Server => s.bind(ep).map_err(|x| e(&x))?,
                    Role::Client => s.connect(ep).map_err(|x| e(&x))?,
                }
                let resolved = s.last_endpoint().unwrap_or_default();
                Ok((Box::new(s), resolved))
            }
            Ctx::Libzmq(ctx) => {
                let t = match t {
                    T::Rep => zmq::REP,
                    T::Req => zmq::REQ,
                    T::Pull => zmq::PULL,
                    T::XPub => zmq::XPUB,
                    T::Sub => zmq::SUB,
                    _ => zmq::PUSH,
                };
                let s = ctx.socket(t).map_err(|x| e(&x))?;
                let stall = i32::try_from(STALL.as_millis()).unwrap_or(i32::MAX);
                s.set_rcvtimeo(stall).map_err(|x| e(&x))?;
                if kind == Kind::Fanout {
                    // Every subscriber's subscription reaches the publisher (it counts them); nothing
                    // is dropped at a high-water mark, so every subscriber gets every message.
                    s.set_sndhwm(0).map_err(|x| e(&x))?;
                    s.set_rcvhwm(0).map_err(|x| e(&x))?;
                    match role {
                        Role::Server => s.set_xpub_verbose(true).map_err(|x| e(&x))?,
                        Role::Client => s.set_subscribe(b"").map_err(|x| e(&x))?,
                    }
                }
                match role {
                    Role::Server => s
                        .bind(&ep.replace("tcp://127.0.0.1:0", "tcp://127.0.0.1:*"))
                        .map_err(|x| e(&x))?,
                    Role::Client => s.connect(ep).map_err(|x| e(&x))?,
                }
                let resolved = s
                    .get_last_endpoint()
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                Ok((Box::new(Zmq(s, zmq::Message::new())), resolved))
            }
        }
    }
}

/// The server's loop: echoes `count` messages (latency) or receives them; returns the time from the
/// first message to the last.
fn serve_loop(s: &mut dyn Peer, kind: Kind, count: usize) -> Result<Duration, String> {
    let mut first = None;
    for i in 0..count {
        match kind {
            Kind::Latency => s.echo(),
            Kind::Throughput | Kind::Memory | Kind::Fanout => s.recv(),
        }
        .map_err(|e| format!("message {i} of {count}: {e}"))?;
        first.get_or_insert_with(Instant::now);
    }
    Ok(first.map_or(Duration::ZERO, |f| f.elapsed()))
}

/// The client's loop: round trips (latency) or a stream of `count` messages.
fn client_loop(
    s: &mut dyn Peer,
    kind: Kind,
    payload: &[u8],
    count: usize,
) -> Result<Vec<Duration>, String> {
    timed_loop(kind, count, |round_trip| {
        s.send(payload)?;
        if round_trip {
            s.recv()?;
        }
        Ok(())
    })
}

/// Runs `count` steps: round trips (`step(true)`: send, then receive), each timed (latency); or sends
/// alone (`step(false)`), with no clock read: a stream is timed by its receiving side.
fn timed_loop(
    kind: Kind,
    count: usize,
    mut step: impl FnMut(bool) -> Result<(), String>,
) -> Result<Vec<Duration>, String> {
    let latency = kind == Kind::Latency;
    let mut rtts = Vec::with_capacity(if latency { count } else { 0 });
    for _ in 0..count {
        if latency {
            let start = Instant::now();
            step(true)?;
            rtts.push(start.elapsed());
        } else {
            step(false)?;
        }
    }
    Ok(rtts)
}

// ---- The server side (the second process) --------------------------------------------------------

fn say(out: &mut dyn Write, line: String) -> Result<(), String> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// Serves one measurement: prints `READY <endpoint>` once bound, then for throughput `ELAPSED <ns>`.
fn serve(
    imp: Imp,
    kind: Kind,
    ep: &str,
    (size, count, subs): (usize, usize, usize),
    out: &mut dyn Write,
) -> Result<(), String> {
    if imp == Imp::Bare {
        return serve_bare(kind, ep, size, count, out);
    }
    let ctx = Ctx::new(imp)?;
    let (mut s, resolved) = ctx.socket(kind, Role::Server, ep)?;
    say(out, format!("READY {resolved}"))?;
    if kind == Kind::Fanout {
        // The publisher: once every subscriber's subscription has arrived (no slow joiner), the
        // stream; the subscribers time it.
        for _ in 0..subs {
            s.recv()?;
        }
        let payload = vec![0x5Au8; size];
        for _ in 0..count {
            s.send(&payload)?;
        }
        drop(s);
        return Ok(());
    }
    let elapsed = serve_loop(&mut *s, kind, count)?;
    if kind == Kind::Throughput {
        say(out, format!("ELAPSED {}", elapsed.as_nanos()))?;
    }
    if let Some(path) = ep.strip_prefix("ipc://") {
        // libzmq leaves its socket file behind.
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// The bare limit: the same exchange over a plain stream socket, each message `size` octets.
fn serve_bare(
    kind: Kind,
    ep: &str,
    size: usize,
    count: usize,
    out: &mut dyn Write,
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

/// Resident memory of this process, in bytes.
fn rss() -> Result<f64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| e.to_string())?;
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("unreadable /proc/self/statm")?;
    Ok(pages * 4096.0)
}

/// In a fresh process: a ROUTER and `n` DEALERs over tcp, each connection proven established by one
/// message; prints `MEMORY <bytes>`, the resident memory added per connection (both ends counted).
fn memory_command(imp: Imp, n: usize) -> Result<(), String> {
    let ctx = Ctx::new(imp)?;
    // The server socket and the I/O threads exist before the baseline is taken.
    let (mut router, ep) = ctx.socket(Kind::Throughput, Role::Server, "tcp://127.0.0.1:0")?;
    let (mut warm, _) = ctx.socket(Kind::Throughput, Role::Client, &ep)?;
    warm.send(b"warm")?;
    router.recv()?;
    let before = rss()?;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut c, _) = ctx.socket(Kind::Throughput, Role::Client, &ep)?;
        c.send(b"hello")?;
        clients.push(c);
    }
    for _ in 0..n {
        router.recv()?;
    }
    let after = rss()?;
    say(
        &mut std::io::stdout().lock(),
        format!("MEMORY {}", (after - before) / n as f64),
    )
}

/// Memory per idle connection, measured in a second process so that nothing else is counted.
fn measure_memory(imp: Imp, quick: bool) -> Result<Sample, String> {
    let n = count(imp, Kind::Memory, 0, quick);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["__bench-memory", &format!("{imp:?}"), &n.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: f64 = text
        .trim()
        .strip_prefix("MEMORY ")
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| {
            format!(
                "memory run said {text:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(Sample::Memory(bytes))
}

/// The hidden `__bench-memory IMP N` command.
pub(crate) fn memory_main(args: &[String]) -> Result<(), String> {
    let [imp, n] = args else {
        return Err("usage: __bench-memory IMP N".into());
    };
    die_with_parent();
    let imp = Imp::from_str(imp, true)?;
    memory_command(imp, n.parse().map_err(|_| "bad count")?)
}

/// The hidden `__bench-serve IMP KIND ENDPOINT SIZE COUNT SUBS CORE WAIT` command (`CORE`: `-` for
/// none; `SUBS`: subscribers a fan-out publisher waits for; `WAIT`: `busy` or `sleep`).
pub(crate) fn serve_command(args: &[String]) -> Result<(), String> {
    let [imp, kind, ep, size, count, subs, core, wait] = args else {
        return Err("usage: __bench-serve IMP KIND ENDPOINT SIZE COUNT SUBS CORE WAIT".into());
    };
    die_with_parent();
    pin(core.parse().ok());
    BUSY_POLL.store(wait == "busy", Ordering::Relaxed);
    let imp = Imp::from_str(imp, true)?;
    let kind = Kind::from_str(kind, true)?;
    let size = size.parse().map_err(|_| "bad size")?;
    let count = count.parse().map_err(|_| "bad count")?;
    let subs = subs.parse().map_err(|_| "bad subscriber count")?;
    serve(
        imp,
        kind,
        ep,
        (size, count, subs),
        &mut std::io::stdout().lock(),
    )
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
        (size, count, subs): (usize, usize, usize),
        core: Option<usize>,
    ) -> Result<(Server, String), String> {
        // libzmq and the bare limit have no shm: they run over the Unix socket.
        let transport = match (transport, imp) {
            (Transport::Shm, Imp::Libzmq | Imp::Bare) => Transport::Ipc,
            (t, _) => t,
        };
        let ep = endpoint(transport, &format!("{imp:?}"));
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "__bench-serve",
                &format!("{imp:?}"),
                &format!("{kind:?}"),
                &ep,
                &size.to_string(),
                &count.to_string(),
                &subs.to_string(),
                &core.map_or_else(|| "-".to_string(), |c| c.to_string()),
                if BUSY_POLL.load(Ordering::Relaxed) {
                    "busy"
                } else {
                    "sleep"
                },
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

    /// Waits for the server; for throughput, returns the time it reported.
    fn finish(mut self, kind: Kind) -> Result<Duration, String> {
        let elapsed = match kind {
            Kind::Throughput | Kind::Memory => {
                let line = self.line()?;
                let ns: u64 = line
                    .strip_prefix("ELAPSED ")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("server said {line:?}"))?;
                Duration::from_nanos(ns)
            }
            Kind::Latency | Kind::Fanout => Duration::ZERO,
        };
        let status = self.child.wait().map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(elapsed)
            .ok_or_else(|| format!("server exited with {status}"))
    }
}

/// One-way latencies from round trips, leaving out the first tenth (connection set-up, cold caches).
fn percentile_sample(rtts: Vec<Duration>) -> Sample {
    let warm_up = rtts.len() / 10;
    Sample::Latency(rtts.into_iter().skip(warm_up).map(|d| d / 2).collect())
}

fn sample(kind: Kind, rtts: Vec<Duration>, count: usize, elapsed: Duration) -> Sample {
    match kind {
        Kind::Latency => percentile_sample(rtts),
        Kind::Throughput | Kind::Memory | Kind::Fanout => Sample::Rate {
            messages: count,
            elapsed,
        },
    }
}

/// tcp or ipc: the server in a second process, the client here.
fn measure(
    imp: Imp,
    kind: Kind,
    transport: Transport,
    size: usize,
    quick: bool,
    server_core: Option<usize>,
) -> Result<Sample, String> {
    let count = count(imp, kind, size, quick);
    let (server, ep) = Server::start(imp, kind, transport, (size, count, 1), server_core)?;
    let payload = vec![0x5Au8; size];
    let rtts = match imp {
        Imp::Bare => bare_client(kind, &ep, &payload, count)?,
        _ => {
            let ctx = Ctx::new(imp)?;
            let (mut s, _) = ctx.socket(kind, Role::Client, &ep)?;
            client_loop(&mut *s, kind, &payload, count)?
        }
    };
    let elapsed = server.finish(kind)?;
    Ok(sample(kind, rtts, count, elapsed))
}

fn bare_client(
    kind: Kind,
    ep: &str,
    payload: &[u8],
    count: usize,
) -> Result<Vec<Duration>, String> {
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
    timed_loop(kind, count, |round_trip| {
        stream.write_all(payload).map_err(|e| e.to_string())?;
        if round_trip {
            stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// PUB to `subs` SUB over tcp: the publisher in a second process, each subscriber on its own thread
/// here; the rate is every subscriber's messages over the time from the first arrival anywhere to the
/// last.
fn measure_fanout(
    imp: Imp,
    size: usize,
    subs: usize,
    quick: bool,
    server_core: Option<usize>,
) -> Result<Sample, String> {
    let count = count(imp, Kind::Fanout, size, quick);
    let (server, ep) = Server::start(
        imp,
        Kind::Fanout,
        Transport::Tcp,
        (size, count, subs),
        server_core,
    )?;
    let ctx = Ctx::new(imp)?;
    let readers: Vec<_> = (0..subs)
        .map(|_| {
            let (ctx, ep) = (ctx.clone(), ep.clone());
            std::thread::spawn(move || -> Result<(Instant, Instant), String> {
                let (mut s, _) = ctx.socket(Kind::Fanout, Role::Client, &ep)?;
                s.recv()?;
                let first = Instant::now();
                for _ in 1..count {
                    s.recv()?;
                }
                Ok((first, Instant::now()))
            })
        })
        .collect();
    let mut span: Option<(Instant, Instant)> = None;
    for r in readers {
        let (a, b) = r.join().map_err(|_| "subscriber panicked")??;
        span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
    }
    server.finish(Kind::Fanout)?;
    let (first, last) = span.ok_or("no subscriber")?;
    Ok(Sample::Rate {
        messages: subs * count,
        elapsed: last - first,
    })
}

/// inproc: both sides in one process and one context (inproc reaches only sockets of the same
/// context), the server on a thread. The bare limit is two threads ping-ponging a counter through one
/// atomic, spinning: the cost of a cache line crossing cores and back.
fn measure_inproc(
    imp: Imp,
    kind: Kind,
    size: usize,
    quick: bool,
    server_core: Option<usize>,
    spin_cores: (Option<usize>, Option<usize>),
) -> Result<Sample, String> {
    let count = count(imp, kind, size, quick);
    if imp == Imp::Bare {
        return Ok(spinning_ping_pong(count, spin_cores));
    }
    let ep = endpoint(Transport::Inproc, &format!("{imp:?}-{kind:?}-{size}"));
    let ctx = Ctx::new(imp)?;
    let (mut server, _) = ctx.socket(kind, Role::Server, &ep)?;
    let serving = std::thread::spawn(move || {
        pin(server_core);
        serve_loop(&mut *server, kind, count)
    });
    let (mut client, _) = ctx.socket(kind, Role::Client, &ep)?;
    let rtts = client_loop(&mut *client, kind, &vec![0x5Au8; size], count)?;
    let elapsed = serving
        .join()
        .map_err(|_| "server thread panicked".to_string())??;
    Ok(sample(kind, rtts, count, elapsed))
}

/// Two threads handing a counter back and forth through one atomic, spinning, on two cores whatever
/// the placement (two spinning threads on one core only take turns).
fn spinning_ping_pong(count: usize, spin_cores: (Option<usize>, Option<usize>)) -> Sample {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let ball = Arc::new(AtomicU64::new(0));
    let other = ball.clone();
    let rounds = count as u64;
    let (here, there) = spin_cores;
    let partner = std::thread::spawn(move || {
        pin(there);
        for i in 0..rounds {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let measuring = std::thread::spawn(move || {
        pin(here);
        let mut rtts = Vec::with_capacity(count);
        for i in 0..rounds {
            let start = Instant::now();
            ball.store(2 * i + 1, Ordering::Release);
            while ball.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
            rtts.push(start.elapsed());
        }
        rtts
    });
    let rtts = measuring.join().unwrap_or_default();
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
        (Sample::Memory(bytes), "per connection") => Some(bytes / 1024.0),
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
        None => vec![Kind::Latency, Kind::Throughput, Kind::Fanout, Kind::Memory],
    };
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    BUSY_POLL.store(args.busy_poll, Ordering::Relaxed);
    let placements = if args.placement.is_empty() {
        vec![Placement::Split, Placement::Same]
    } else {
        args.placement.clone()
    };
    let cores = allowed_cores();
    let spin_cores = Placement::Split.cores(&cores);
    let imps_for = |t: Transport, kind: Kind| match (t, kind) {
        // No bare limit for inproc streaming: the spinning ping-pong is a latency figure; and memory
        // compares the two libraries.
        (Transport::Inproc, Kind::Throughput) | (_, Kind::Memory | Kind::Fanout) => {
            vec![Imp::Zring, Imp::Libzmq]
        }
        _ => vec![Imp::Zring, Imp::Libzmq, Imp::Bare],
    };
    let mut cells = Vec::new();
    for &kind in &kinds {
        if kind == Kind::Memory {
            // One row: idle tcp connections, whatever the filters on transport, size and placement.
            cells.push((kind, Transport::Tcp, 0, placements[0], 0));
            continue;
        }
        for &p in &placements {
            if kind == Kind::Fanout {
                // tcp, 64 B, whatever the filters on transport and size.
                for subs in FANOUT {
                    cells.push((kind, Transport::Tcp, 64, p, subs));
                }
                continue;
            }
            for &t in &transports {
                for &size in &sizes {
                    cells.push((kind, t, size, p, 0));
                }
            }
        }
    }
    let total: usize = cells
        .iter()
        .map(|&(k, t, _, _, _)| imps_for(t, k).len() * slices(k, args.quick))
        .sum::<usize>()
        * rounds;
    let mut progress = Progress {
        done: 0,
        total,
        tty: std::io::stderr().is_terminal(),
    };
    // samples[(cell index, imp)] -> per-round samples
    let mut samples: Vec<Vec<(Imp, Sample)>> = (0..cells.len()).map(|_| Vec::new()).collect();
    // Started before any pin: it may run anywhere, and wakes only to take a cell's name.
    let stall = watchdog();
    for _ in 0..rounds {
        for (i, &(kind, t, size, placement, subs)) in cells.iter().enumerate() {
            let (client_core, server_core) = placement.cores(&cores);
            // Every thread started from now on (the libraries' I/O threads) inherits the pin.
            match client_core {
                Some(_) => pin(client_core),
                None => unpin(&cores),
            }
            let imps = imps_for(t, kind);
            // Each implementation's sample of this round, pooled over its slices.
            let mut pooled: Vec<Option<Sample>> = imps.iter().map(|_| None).collect();
            for _ in 0..slices(kind, args.quick) {
                for (&imp, pool) in imps.iter().zip(pooled.iter_mut()) {
                    let cell = format!("{kind:?} {t:?} {size} B {placement:?} {imp:?}");
                    progress.step(&cell);
                    // The watchdog outlives the loop: a send cannot fail.
                    let _ = stall.send(cell.clone());
                    let once = || match (kind, t) {
                        (Kind::Memory, _) => measure_memory(imp, args.quick),
                        (Kind::Fanout, _) => {
                            measure_fanout(imp, size, subs, args.quick, server_core)
                        }
                        (_, Transport::Inproc) => {
                            measure_inproc(imp, kind, size, args.quick, server_core, spin_cores)
                        }
                        _ => measure(imp, kind, t, size, args.quick, server_core),
                    };
                    // A run that stalled (see `STALL`) is run again, once, and said so.
                    let s = once().or_else(|e| {
                        eprintln!("\n{cell}: {e}; running it again");
                        once()
                    })?;
                    *pool = Some(match pool.take() {
                        Some(earlier) => earlier.pool(s),
                        None => s,
                    });
                }
            }
            for (imp, s) in imps.into_iter().zip(pooled) {
                samples[i].extend(s.map(|s| (imp, s)));
            }
        }
    }
    drop(stall);
    let mut rows = Vec::new();
    for (i, &(kind, t, size, placement, subs)) in cells.iter().enumerate() {
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
            Kind::Throughput | Kind::Fanout => &[("rate", "msgs/s"), ("bandwidth", "MB/s")],
            Kind::Memory => &[("per connection", "KiB")],
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
                subscribers: (kind == Kind::Fanout).then_some(subs),
                placement,
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
        "{:<40} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "row", "zring", "libzmq", "bare", "/libzmq", "/bare"
    );
    for r in &rows {
        println!(
            "{:<40} {:>12} {:>12} {:>12} {:>9} {:>9}",
            format!(
                "{:?} {:?} {} B{} {:?} {} ({})",
                r.kind,
                r.transport,
                r.size,
                r.subscribers.map_or(String::new(), |n| format!(" to {n}")),
                r.placement,
                r.metric,
                r.unit
            )
            .to_lowercase(),
            fmt(r.zring),
            fmt(r.libzmq),
            fmt(r.bare),
            fmt(r.zring_vs_libzmq),
            fmt(r.zring_vs_bare)
        );
    }
    let sliced = slices(Kind::Latency, args.quick);
    println!("(medians of {rounds} interleaved round(s), each latency figure of a round from {sliced} slice(s) in turn; latency is one-way, half a round trip; lower is better for latency and memory, higher for rates;");
    println!(" split: client and server on two cores, same: both on one core)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_of_a_latency_cell_pool_their_round_trips() {
        let us = Duration::from_micros;
        let first = Sample::Latency(vec![us(1), us(3)]);
        let Sample::Latency(all) = first.pool(Sample::Latency(vec![us(2)])) else {
            panic!("latency pooled into something else");
        };
        assert_eq!(all, vec![us(1), us(3), us(2)]);
        assert_eq!(quantile(all, 0.5), 2.0);
        assert_eq!(slices(Kind::Latency, false), LATENCY_SLICES);
        assert_eq!(slices(Kind::Latency, true), 1);
        assert_eq!(slices(Kind::Throughput, false), 1);
    }
}
