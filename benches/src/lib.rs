//! The harness of zring's criterion suites (`benches/latency.rs`, `benches/throughput.rs`): the same
//! rows as `zring bench`, so that a regression shows in `cargo bench`, with the pure-Rust ZeroMQs a
//! user might pick instead (zmq.rs, OMQ.rs, rzmq) beside zring, libzmq and the bare limits.
//!
//! A row runs a server side and a client side. Wherever the transport crosses processes (tcp, ipc,
//! shm) the server side is a second process: the bench binary itself, started again with
//! [`SERVE_ENV`] set, which [`serve_if_asked`] turns into the server. inproc runs it on a thread.
//! The client side is pinned to the first core and the server side to the second, as `zring bench
//! --placement split` does. Every library is driven through the same [`Link`] calls.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod peers;

pub use peers::Link;

/// The environment variable that makes a bench binary the server side of a row.
pub const SERVE_ENV: &str = "ZRING_BENCH_SERVE";

/// An implementation measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imp {
    /// zring, this project.
    Zring,
    /// libzmq 4.3, through the `zmq` crate.
    Libzmq,
    /// A bare stream socket (TCP, or Unix for ipc and shm): the limit of the machine.
    Bare,
    /// zmq.rs (crate `zeromq`) on a single-thread tokio runtime driven by the calling thread.
    ZmqRs,
    /// OMQ.rs (crate `omq-tokio`), its blocking API.
    Omq,
    /// rzmq with its io_uring backend.
    Rzmq,
}

impl Imp {
    /// Every implementation, in the order rows list them.
    pub const ALL: [Imp; 6] = [
        Imp::Zring,
        Imp::Libzmq,
        Imp::Bare,
        Imp::ZmqRs,
        Imp::Omq,
        Imp::Rzmq,
    ];

    /// The name used in benchmark ids and on the command line of the server side.
    pub fn name(self) -> &'static str {
        match self {
            Imp::Zring => "zring",
            Imp::Libzmq => "libzmq",
            Imp::Bare => "bare",
            Imp::ZmqRs => "zmq.rs",
            Imp::Omq => "omq.rs",
            Imp::Rzmq => "rzmq",
        }
    }

    fn from_name(name: &str) -> Option<Imp> {
        Imp::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this implementation has `transport` (libzmq and the bare limit stand in for shm
    /// with the Unix socket, as a user of libzmq would between two processes).
    pub fn runs(self, transport: Transport) -> bool {
        match self {
            Imp::Zring | Imp::Libzmq => true,
            Imp::Bare => transport != Transport::Inproc,
            Imp::ZmqRs | Imp::Omq | Imp::Rzmq => transport == Transport::Tcp,
        }
    }
}

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP over loopback.
    Tcp,
    /// A Unix-domain stream socket.
    Ipc,
    /// Within one process.
    Inproc,
    /// zring's shared-memory rings between two processes.
    Shm,
}

impl Transport {
    /// The name used in benchmark group names.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
            Transport::Inproc => "inproc",
            Transport::Shm => "shm",
        }
    }

    /// Every transport, in the order the suites list them.
    pub const ALL: [Transport; 4] = [
        Transport::Tcp,
        Transport::Ipc,
        Transport::Inproc,
        Transport::Shm,
    ];

    fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }

    /// What `imp` actually runs for this row: shm is zring's alone, the others use the Unix socket.
    fn for_imp(self, imp: Imp) -> Transport {
        if self == Transport::Shm && imp != Imp::Zring {
            Transport::Ipc
        } else {
            self
        }
    }
}

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// REQ/REP ping-pong: the server echoes.
    ReqRep,
    /// PUSH/PULL: the server pushes what it is ordered, the client pulls and times it.
    PushPull,
    /// (X)PUB to this many SUB sockets of the client side, everything delivered (no HWM).
    PubSub(usize),
}

impl Pattern {
    fn encode(self) -> String {
        match self {
            Pattern::ReqRep => "reqrep".into(),
            Pattern::PushPull => "pushpull".into(),
            Pattern::PubSub(n) => format!("pubsub{n}"),
        }
    }

    fn decode(s: &str) -> Option<Pattern> {
        match s {
            "reqrep" => Some(Pattern::ReqRep),
            "pushpull" => Some(Pattern::PushPull),
            _ => s.strip_prefix("pubsub")?.parse().ok().map(Pattern::PubSub),
        }
    }
}

/// One row: who, over what, which pattern, how large the messages are.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The implementation.
    pub imp: Imp,
    /// The transport.
    pub transport: Transport,
    /// The pattern.
    pub pattern: Pattern,
    /// Message size in octets (never 0: an empty message stops an echo server).
    pub size: usize,
}

/// The first core (client side) and the second (server side) this process may run on, as first
/// asked: before [`pin_client`] narrows the client's mask to one core (which a server process would
/// inherit), so that the two sides get a core each.
fn cores() -> (Option<usize>, Option<usize>) {
    static IDS: OnceLock<Vec<usize>> = OnceLock::new();
    let ids = IDS.get_or_init(|| {
        core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect()
    });
    (ids.first().copied(), ids.get(1).or(ids.first()).copied())
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Pins the calling thread to the first core and creates zring's and libzmq's contexts there (their
/// I/O threads share the affinity). Call once at the start of a bench's `main`, after
/// [`serve_if_asked`].
pub fn pin_client() {
    pin(cores().0);
    peers::contexts();
}

/// A fresh endpoint for each session (criterion starts a row's session more than once, and a closed
/// libzmq socket lets its name go only later).
fn endpoint(transport: Transport, imp: Imp) -> String {
    static SESSIONS: AtomicUsize = AtomicUsize::new(0);
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{}-{n}", imp.name(), std::process::id());
    match transport {
        Transport::Tcp => "tcp://127.0.0.1:0".into(),
        Transport::Ipc => {
            let path = std::env::temp_dir().join(format!("zring-crit-{tag}.sock"));
            let _ = std::fs::remove_file(&path);
            format!("ipc://{}", path.display())
        }
        Transport::Inproc => format!("inproc://crit-{tag}"),
        Transport::Shm => format!("shm://crit-{tag}"),
    }
}

/// The server side's loop: binds, says where, then echoes (REQ/REP) or sends what `orders` ask for.
fn serve(row: Row, ep: &str, ready: impl FnOnce(String), orders: mpsc::Receiver<u64>) {
    let (mut link, resolved) = peers::open(row, true, ep);
    ready(resolved);
    match row.pattern {
        Pattern::ReqRep => while link.echo() > 0 {},
        Pattern::PushPull | Pattern::PubSub(_) => {
            if let Pattern::PubSub(n) = row.pattern {
                // No slow joiner: every subscription is in before anything is published.
                for _ in 0..n {
                    link.recv();
                }
            }
            let payload = vec![0x5A; row.size];
            while let Some(n) = link.next_order(&orders) {
                for _ in 0..n {
                    link.send(&payload);
                }
            }
        }
    }
}

/// Call first in a bench's `main`: when this process was started as the server side of a row, it
/// serves that row and exits.
pub fn serve_if_asked() {
    let Ok(spec) = std::env::var(SERVE_ENV) else {
        return;
    };
    let fields: Vec<&str> = spec.split(' ').collect();
    let parsed = match fields[..] {
        [imp, transport, pattern, size, core, ep] => Imp::from_name(imp)
            .zip(Transport::from_name(transport))
            .zip(Pattern::decode(pattern))
            .zip(size.parse().ok())
            .map(|(((imp, transport), pattern), size)| {
                (
                    Row {
                        imp,
                        transport,
                        pattern,
                        size,
                    },
                    core.parse().ok(),
                    ep,
                )
            }),
        _ => None,
    };
    let Some((row, core, ep)) = parsed else {
        eprintln!("{SERVE_ENV}={spec:?}: not a row");
        std::process::exit(2);
    };
    pin(core);
    let (tx, orders) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Some(n) = line.ok().and_then(|l| l.trim().parse().ok()) else {
                break;
            };
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    serve(
        row,
        ep,
        |resolved| {
            println!("READY {resolved}");
            let _ = std::io::stdout().flush();
        },
        orders,
    );
    std::process::exit(0);
}

/// Where the server side runs.
enum Side {
    Process(Child, ChildStdin),
    Thread(Option<JoinHandle<()>>, Option<mpsc::Sender<u64>>),
}

/// A row set up: the server side running, the client side's sockets connected.
pub struct Session {
    row: Row,
    side: Side,
    /// The client side: one socket, or one per subscriber.
    clients: Vec<Box<dyn Link>>,
    payload: Vec<u8>,
    /// Where the server side is bound.
    endpoint: String,
}

impl Session {
    /// Starts the server side of `row` and connects the client side to it, then exchanges a few
    /// messages so that connections and buffers are warm.
    pub fn start(row: Row) -> Session {
        let (_, server_core) = cores();
        let transport = row.transport.for_imp(row.imp);
        let ep = endpoint(transport, row.imp);
        let (side, resolved) = if transport == Transport::Inproc {
            let (tx, orders) = mpsc::channel();
            let (ready_tx, ready) = mpsc::channel();
            let server_ep = ep.clone();
            let handle = std::thread::spawn(move || {
                pin(server_core);
                serve(
                    row,
                    &server_ep,
                    |resolved| {
                        let _ = ready_tx.send(resolved);
                    },
                    orders,
                );
            });
            let resolved = ready.recv().expect("the server thread said where it is");
            (Side::Thread(Some(handle), Some(tx)), resolved)
        } else {
            let spec = format!(
                "{} {} {} {} {} {ep}",
                row.imp.name(),
                transport.name(),
                row.pattern.encode(),
                row.size,
                server_core.map_or_else(|| "-".into(), |c| c.to_string()),
            );
            let exe = std::env::current_exe().expect("the bench binary's path");
            let mut child = Command::new(exe)
                .env(SERVE_ENV, spec)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the server process starts");
            let stdin = child.stdin.take().expect("its stdin");
            let mut out = BufReader::new(child.stdout.take().expect("its stdout"));
            let mut line = String::new();
            out.read_line(&mut line)
                .expect("the server process says where it is");
            let resolved = line
                .trim()
                .strip_prefix("READY ")
                .unwrap_or_else(|| panic!("the server process said {line:?}"))
                .to_string();
            // The rest of its output is of no interest; reading it keeps the pipe from filling.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            (Side::Process(child, stdin), resolved)
        };
        let subscribers = match row.pattern {
            Pattern::PubSub(n) => n,
            _ => 1,
        };
        let clients: Vec<Box<dyn Link>> = (0..subscribers)
            .map(|_| peers::open(row, false, &resolved).0)
            .collect();
        let mut session = Session {
            row,
            side,
            clients,
            payload: vec![0xA5; row.size],
            endpoint: resolved,
        };
        session.run(100);
        session
    }

    fn order(&mut self, n: u64) {
        match &mut self.side {
            Side::Process(_, stdin) => {
                writeln!(stdin, "{n}").expect("the server process takes orders");
                stdin.flush().expect("the server process takes orders");
            }
            Side::Thread(_, Some(tx)) => tx.send(n).expect("the server thread takes orders"),
            Side::Thread(_, None) => unreachable!("orders go to a running server side"),
        }
    }

    /// Runs `n` iterations and returns the time they took: for REQ/REP, `n` round trips and half
    /// their time (one-way latency); otherwise `n` messages streamed (to each subscriber).
    pub fn run(&mut self, n: u64) -> Duration {
        match self.row.pattern {
            Pattern::ReqRep => {
                let link = &mut self.clients[0];
                let start = Instant::now();
                for _ in 0..n {
                    link.send(&self.payload);
                    link.recv();
                }
                start.elapsed() / 2
            }
            Pattern::PushPull | Pattern::PubSub(_) => {
                self.order(n);
                let start = Instant::now();
                for _ in 0..n {
                    for link in &mut self.clients {
                        link.recv();
                    }
                }
                start.elapsed()
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        match &mut self.side {
            Side::Process(child, _) => {
                // The server process may be blocked in a receive: it is stopped, not asked.
                let _ = child.kill();
                let _ = child.wait();
                if let Some(path) = self.endpoint.strip_prefix("ipc://") {
                    let _ = std::fs::remove_file(path);
                }
            }
            Side::Thread(handle, tx) => {
                if self.row.pattern == Pattern::ReqRep {
                    // The empty message stops the echo (zring and libzmq carry it like any other).
                    self.clients[0].send(&[]);
                    self.clients[0].recv();
                }
                drop(tx.take());
                if let Some(h) = handle.take() {
                    let _ = h.join();
                }
            }
        }
    }
}

/// A bench's `main`: the server side when asked ([`serve_if_asked`]), else the client pinned
/// ([`pin_client`]) running `groups` with this suite's criterion settings: short warm-up and
/// measurement (each row starts a process and its sockets), enough samples for a stable median.
pub fn main(groups: &[fn(&mut criterion::Criterion)]) {
    serve_if_asked();
    pin_client();
    let mut c = criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    for group in groups {
        group(&mut c);
    }
    c.final_summary();
}

/// The message sizes of the suites.
pub const SIZES: [usize; 4] = [64, 1024, 65536, 1 << 20];

/// Measures `row` as the benchmark `id` of `group`: one session (server side and sockets) per
/// criterion run, [`Session::run`] per batch of iterations.
pub fn bench_row(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: criterion::BenchmarkId,
    row: Row,
) {
    group.bench_function(id, |b| {
        let mut session = Session::start(row);
        b.iter_custom(|iters| session.run(iters));
    });
}

/// Every transport and size of `pattern` (REQ/REP or PUSH/PULL), a group `NAME/TRANSPORT` each, a
/// benchmark `IMP/SIZE` for every implementation that runs it and that `skip` does not leave out;
/// `per_message` sets criterion's throughput (one element per message) for streaming.
pub fn suite(
    c: &mut criterion::Criterion,
    name: &str,
    pattern: Pattern,
    per_message: bool,
    skip: impl Fn(Imp, usize) -> bool,
) {
    for transport in Transport::ALL {
        let mut g = c.benchmark_group(format!("{name}/{}", transport.name()));
        if per_message {
            g.throughput(criterion::Throughput::Elements(1));
        }
        for size in SIZES {
            for imp in Imp::ALL
                .into_iter()
                .filter(|&i| i.runs(transport) && !skip(i, size))
            {
                let row = Row {
                    imp,
                    transport,
                    pattern,
                    size,
                };
                bench_row(&mut g, criterion::BenchmarkId::new(imp.name(), size), row);
            }
        }
        g.finish();
    }
}
