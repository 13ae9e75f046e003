//! Helpers shared by the socket tests: a transport-neutral way to bind and connect, and bounded waits
//! for what happens in the background on network transports (connections, subscriptions).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zring::{Context, Socket, SocketType};

/// Every receive and send in the tests waits at most this long.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(5);

/// A transport under test.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    Inproc,
    Tcp,
    Ipc,
    Shm,
}

static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

/// A context and a transport.
pub(crate) struct Net {
    pub(crate) ctx: Context,
    pub(crate) transport: Transport,
}

impl Net {
    pub(crate) fn new(transport: Transport) -> Net {
        Net {
            ctx: Context::new(),
            transport,
        }
    }

    /// A socket whose blocking calls give up after [`WATCHDOG`].
    pub(crate) fn socket(&self, t: SocketType) -> Socket {
        let mut s = self.ctx.socket(t).unwrap();
        s.set_rcvtimeo(Some(WATCHDOG)).unwrap();
        s.set_sndtimeo(Some(WATCHDOG)).unwrap();
        s
    }

    /// Binds `s` on a fresh address and returns the endpoint peers connect to.
    pub(crate) fn bind(&self, s: &mut Socket) -> String {
        match self.transport {
            Transport::Inproc => {
                let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
                let ep = format!("inproc://test-{n}");
                s.bind(&ep).unwrap();
                ep
            }
            Transport::Tcp => {
                s.bind("tcp://127.0.0.1:0").unwrap();
                s.last_endpoint().unwrap()
            }
            Transport::Ipc => {
                let ep = format!("ipc://{}", ipc_path().display());
                s.bind(&ep).unwrap();
                ep
            }
            Transport::Shm => {
                let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
                let ep = format!("shm://test-{}-{n}", std::process::id());
                s.bind(&ep).unwrap();
                ep
            }
        }
    }

    /// A bound socket of type `t` and its endpoint.
    pub(crate) fn bound(&self, t: SocketType) -> (Socket, String) {
        let mut s = self.socket(t);
        let ep = self.bind(&mut s);
        (s, ep)
    }

    /// A socket of type `t` connected to `ep`.
    pub(crate) fn connected(&self, t: SocketType, ep: &str) -> Socket {
        let mut s = self.socket(t);
        s.connect(ep).unwrap();
        s
    }
}

/// A PUSH that `configure` sets up (before it connects), connected to `pull` at `ep`, its stream
/// up (a first message has come through).
pub(crate) fn pusher_up(
    net: &Net,
    pull: &mut Socket,
    ep: &str,
    configure: impl FnOnce(&mut Socket),
) -> Socket {
    let mut push = net.socket(SocketType::Push);
    configure(&mut push);
    push.connect(ep).unwrap();
    push.send("up").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "up");
    push
}

/// A fresh path for an ipc socket file.
pub(crate) fn ipc_path() -> std::path::PathBuf {
    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("zring-test-{}-{n}.sock", std::process::id()))
}

/// Waits until `s` has `n` peers attached (bounded by [`WATCHDOG`]).
pub(crate) fn wait_peers(s: &mut Socket, n: usize) {
    let deadline = Instant::now() + WATCHDOG;
    while s.peer_count() < n {
        assert!(Instant::now() < deadline, "{} peers never attached", n);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until what `publisher` sends reaches `sub` (the slow-joiner effect): publishes a probe until
/// one arrives, then a last marker, and drains the probes up to it. Each call uses a topic of its own,
/// so that a probe can never match an earlier call's subscription whose cancel is still on its way.
pub(crate) fn sync_pubsub(publisher: &mut Socket, sub: &mut Socket) {
    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
    let topic = format!("\x7fsync-{n}/");
    let end = format!("{topic}end");
    sub.subscribe(&topic).unwrap();
    let deadline = Instant::now() + WATCHDOG;
    sub.set_rcvtimeo(Some(Duration::from_millis(5))).unwrap();
    loop {
        publisher.send(topic.as_str()).unwrap();
        if sub.recv().is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions never reached the publisher"
        );
    }
    sub.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    publisher.send(end.as_str()).unwrap();
    while sub.recv_string().unwrap() != end {}
    sub.unsubscribe(&topic).unwrap();
}

/// Instantiates each named test for every transport.
#[macro_export]
macro_rules! for_transports {
    ($($name:ident),* $(,)?) => {
        mod inproc {
            $(#[test] fn $name() { super::$name(&$crate::common::Net::new($crate::common::Transport::Inproc)); })*
        }
        mod tcp {
            $(#[test] fn $name() { super::$name(&$crate::common::Net::new($crate::common::Transport::Tcp)); })*
        }
        mod ipc {
            $(#[test] fn $name() { super::$name(&$crate::common::Net::new($crate::common::Transport::Ipc)); })*
        }
        mod shm {
            $(#[test] fn $name() { super::$name(&$crate::common::Net::new($crate::common::Transport::Shm)); })*
        }
    };
}
