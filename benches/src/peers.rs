//! Every implementation behind the same blocking calls ([`Link`]), used as its users use it: the
//! payload handed over as bytes, the message received whole.

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{mpsc, OnceLock};

use bytes::Bytes;

use crate::{Imp, Pattern, Row};

/// One connected socket of some implementation, blocking.
pub trait Link {
    /// Sends one message.
    fn send(&mut self, data: &[u8]);
    /// Receives one message and returns its size.
    fn recv(&mut self) -> usize;
    /// Receives one message, sends it back and returns its size.
    fn echo(&mut self) -> usize;
    /// Waits for the next order of the server side (`None`: no more).
    fn next_order(&mut self, orders: &mpsc::Receiver<u64>) -> Option<u64> {
        orders.recv().ok()
    }
}

/// Waits for an order while driving `rt`, whose tasks (accepting, handshakes) run only while the
/// calling thread is inside it.
fn drive_until_order(rt: &tokio::runtime::Runtime, orders: &mpsc::Receiver<u64>) -> Option<u64> {
    loop {
        match orders.try_recv() {
            Ok(n) => return Some(n),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => rt.block_on(async {
                tokio::time::sleep(std::time::Duration::from_micros(200)).await
            }),
        }
    }
}

/// The socket type of each side of a pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Req,
    Rep,
    Push,
    Pull,
    XPub,
    Sub,
}

fn kind(pattern: Pattern, server: bool) -> Kind {
    match (pattern, server) {
        (Pattern::ReqRep, true) => Kind::Rep,
        (Pattern::ReqRep, false) => Kind::Req,
        (Pattern::PushPull, true) => Kind::Push,
        (Pattern::PushPull, false) => Kind::Pull,
        (Pattern::PubSub(_), true) => Kind::XPub,
        (Pattern::PubSub(_), false) => Kind::Sub,
    }
}

/// Opens the server side (binds `ep`) or the client side (connects to it) of `row`; returns the
/// socket and the endpoint as bound.
pub(crate) fn open(row: Row, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    let kind = kind(row.pattern, server);
    match row.imp {
        Imp::Zring => zring_open(kind, server, ep),
        Imp::Libzmq => libzmq_open(kind, server, ep),
        Imp::Bare => bare_open(row, server, ep),
        Imp::ZmqRs => zmqrs_open(kind, server, ep),
        Imp::Omq => omq_open(kind, server, ep),
        Imp::Rzmq => rzmq_open(kind, server, ep),
    }
}

// ---- zring ---------------------------------------------------------------------------------------

/// One context per process, so that inproc rows find each other.
fn zring_context() -> &'static zring::Context {
    static CTX: OnceLock<zring::Context> = OnceLock::new();
    CTX.get_or_init(zring::Context::new)
}

fn zring_open(kind: Kind, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    use zring::SocketType as T;
    let t = match kind {
        Kind::Req => T::Req,
        Kind::Rep => T::Rep,
        Kind::Push => T::Push,
        Kind::Pull => T::Pull,
        Kind::XPub => T::XPub,
        Kind::Sub => T::Sub,
    };
    let mut s = zring_context().socket(t).expect("a zring socket");
    if matches!(kind, Kind::XPub | Kind::Sub) {
        s.set_sndhwm(0).expect("SNDHWM");
        s.set_rcvhwm(0).expect("RCVHWM");
        if kind == Kind::XPub {
            s.set_xpub_verbose(true).expect("XPUB_VERBOSE");
        } else {
            s.subscribe("").expect("SUBSCRIBE");
        }
    }
    if server {
        s.bind(ep).expect("zring binds");
    } else {
        s.connect(ep).expect("zring connects");
    }
    let resolved = s.last_endpoint().unwrap_or_else(|| ep.to_string());
    (Box::new(s), resolved)
}

impl Link for zring::Socket {
    fn send(&mut self, data: &[u8]) {
        zring::Socket::send(self, data).expect("zring sends");
    }
    fn recv(&mut self) -> usize {
        zring::Socket::recv(self).expect("zring receives").len()
    }
    fn echo(&mut self) -> usize {
        let m = zring::Socket::recv(self).expect("zring receives");
        let n = m.len();
        zring::Socket::send(self, m).expect("zring sends");
        n
    }
}

// ---- libzmq --------------------------------------------------------------------------------------

fn libzmq_context() -> &'static zmq::Context {
    static CTX: OnceLock<zmq::Context> = OnceLock::new();
    CTX.get_or_init(zmq::Context::new)
}

/// Creates the per-process contexts of zring and libzmq on the calling thread, so that their I/O
/// threads share its affinity.
pub(crate) fn contexts() {
    zring_context();
    libzmq_context();
}

struct Zmq(zmq::Socket, zmq::Message);

fn libzmq_open(kind: Kind, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    let t = match kind {
        Kind::Req => zmq::REQ,
        Kind::Rep => zmq::REP,
        Kind::Push => zmq::PUSH,
        Kind::Pull => zmq::PULL,
        Kind::XPub => zmq::XPUB,
        Kind::Sub => zmq::SUB,
    };
    let s = libzmq_context().socket(t).expect("a libzmq socket");
    if matches!(kind, Kind::XPub | Kind::Sub) {
        s.set_sndhwm(0).expect("SNDHWM");
        s.set_rcvhwm(0).expect("RCVHWM");
        if kind == Kind::XPub {
            s.set_xpub_verbose(true).expect("XPUB_VERBOSE");
        } else {
            s.set_subscribe(b"").expect("SUBSCRIBE");
        }
    }
    if server {
        s.bind(&ep.replace(":0", ":*")).expect("libzmq binds");
    } else {
        s.connect(ep).expect("libzmq connects");
    }
    let resolved = s
        .get_last_endpoint()
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| ep.to_string());
    (Box::new(Zmq(s, zmq::Message::new())), resolved)
}

impl Link for Zmq {
    fn send(&mut self, data: &[u8]) {
        self.0.send(data, 0).expect("libzmq sends");
    }
    fn recv(&mut self) -> usize {
        self.0.recv(&mut self.1, 0).expect("libzmq receives");
        self.1.len()
    }
    fn echo(&mut self) -> usize {
        self.0.recv(&mut self.1, 0).expect("libzmq receives");
        self.0.send(&self.1[..], 0).expect("libzmq sends");
        self.1.len()
    }
}

// ---- the bare limit ------------------------------------------------------------------------------

/// A bare stream socket carrying messages of one known size back to back. The server side accepts
/// on its first call.
struct Bare {
    listener: Option<Listener>,
    stream: Option<Stream>,
    buf: Vec<u8>,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Bare {
    fn stream(&mut self) -> &mut Stream {
        if self.stream.is_none() {
            let s = match self.listener.take() {
                Some(Listener::Tcp(l)) => {
                    let s = l.accept().expect("the bare peer connects").0;
                    s.set_nodelay(true).expect("TCP_NODELAY");
                    Stream::Tcp(s)
                }
                Some(Listener::Unix(l)) => Stream::Unix(l.accept().expect("the peer connects").0),
                None => unreachable!("a bare link has a listener or a stream"),
            };
            self.stream = Some(s);
        }
        self.stream.as_mut().expect("set just above")
    }

    /// Reads one message.
    fn read(&mut self) -> usize {
        let mut buf = std::mem::take(&mut self.buf);
        match self.stream() {
            Stream::Tcp(s) => read_all(s, &mut buf),
            Stream::Unix(s) => read_all(s, &mut buf),
        }
        self.buf = buf;
        self.buf.len()
    }
}

/// Reads exactly `buf.len()` octets or panics (the bare limit's receive).
fn read_all(stream: &mut impl std::io::Read, buf: &mut [u8]) {
    stream.read_exact(buf).expect("the bare peer's bytes");
}

fn bare_open(row: Row, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    let (listener, stream, resolved) = match (ep.strip_prefix("ipc://"), server) {
        (Some(path), true) => (
            Some(Listener::Unix(UnixListener::bind(path).expect("bare bind"))),
            None,
            ep.to_string(),
        ),
        (Some(path), false) => (
            None,
            Some(Stream::Unix(
                UnixStream::connect(path).expect("bare connect"),
            )),
            ep.to_string(),
        ),
        (None, true) => {
            let l = TcpListener::bind("127.0.0.1:0").expect("bare bind");
            let at = format!("tcp://{}", l.local_addr().expect("its address"));
            (Some(Listener::Tcp(l)), None, at)
        }
        (None, false) => {
            let s = TcpStream::connect(ep.trim_start_matches("tcp://")).expect("bare connect");
            s.set_nodelay(true).expect("TCP_NODELAY");
            (None, Some(Stream::Tcp(s)), ep.to_string())
        }
    };
    let bare = Bare {
        listener,
        stream,
        buf: vec![0; row.size],
    };
    (Box::new(bare), resolved)
}

impl Link for Bare {
    fn send(&mut self, data: &[u8]) {
        use std::io::Write;
        match self.stream() {
            Stream::Tcp(s) => s.write_all(data).expect("bare send"),
            Stream::Unix(s) => s.write_all(data).expect("bare send"),
        }
    }
    fn recv(&mut self) -> usize {
        self.read()
    }
    fn echo(&mut self) -> usize {
        let n = self.read();
        let buf = std::mem::take(&mut self.buf);
        self.send(&buf);
        self.buf = buf;
        n
    }
}

// ---- zmq.rs --------------------------------------------------------------------------------------

/// A zmq.rs socket on its own single-thread runtime, which the calling thread drives in each call
/// (zmq.rs's fastest configuration).
struct ZmqRs {
    rt: tokio::runtime::Runtime,
    socket: ZmqRsSocket,
}

enum ZmqRsSocket {
    Req(zeromq::ReqSocket),
    Rep(zeromq::RepSocket),
    Push(zeromq::PushSocket),
    Pull(zeromq::PullSocket),
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn zmqrs_open(kind: Kind, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    use zeromq::Socket;
    let rt = current_thread_runtime();
    let mut socket = match kind {
        Kind::Req => ZmqRsSocket::Req(zeromq::ReqSocket::new()),
        Kind::Rep => ZmqRsSocket::Rep(zeromq::RepSocket::new()),
        Kind::Push => ZmqRsSocket::Push(zeromq::PushSocket::new()),
        Kind::Pull => ZmqRsSocket::Pull(zeromq::PullSocket::new()),
        Kind::XPub | Kind::Sub => unreachable!("zmq.rs runs the tcp REQ/REP and PUSH/PULL rows"),
    };
    let resolved = rt.block_on(async {
        macro_rules! on {
            ($s:expr) => {
                if server {
                    $s.bind(ep).await.expect("zmq.rs binds").to_string()
                } else {
                    $s.connect(ep).await.expect("zmq.rs connects");
                    ep.to_string()
                }
            };
        }
        match &mut socket {
            ZmqRsSocket::Req(s) => on!(s),
            ZmqRsSocket::Rep(s) => on!(s),
            ZmqRsSocket::Push(s) => on!(s),
            ZmqRsSocket::Pull(s) => on!(s),
        }
    });
    (Box::new(ZmqRs { rt, socket }), resolved)
}

impl ZmqRs {
    fn recv_message(&mut self) -> zeromq::ZmqMessage {
        use zeromq::SocketRecv;
        let ZmqRs { rt, socket } = self;
        rt.block_on(async {
            match socket {
                ZmqRsSocket::Req(s) => s.recv().await,
                ZmqRsSocket::Rep(s) => s.recv().await,
                ZmqRsSocket::Pull(s) => s.recv().await,
                ZmqRsSocket::Push(_) => unreachable!("PUSH does not receive"),
            }
        })
        .expect("zmq.rs receives")
    }

    /// Sends `m`. A zmq.rs socket with no peer yet hands the message back instead of queueing it (a
    /// bound PUSH may be asked to send before the runtime has accepted the client's connection), so
    /// it is offered again, with the runtime driven in between, for up to `PEER_WAIT`.
    fn send_message(&mut self, mut m: zeromq::ZmqMessage) {
        use zeromq::SocketSend;
        const PEER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
        let ZmqRs { rt, socket } = self;
        let deadline = std::time::Instant::now() + PEER_WAIT;
        rt.block_on(async {
            loop {
                let sent = match socket {
                    ZmqRsSocket::Req(s) => s.send(m).await,
                    ZmqRsSocket::Rep(s) => s.send(m).await,
                    ZmqRsSocket::Push(s) => s.send(m).await,
                    ZmqRsSocket::Pull(_) => unreachable!("PULL does not send"),
                };
                match sent {
                    Err(zeromq::ZmqError::ReturnToSender { message, .. })
                        if std::time::Instant::now() < deadline =>
                    {
                        m = message;
                        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                    }
                    other => break other,
                }
            }
        })
        .expect("zmq.rs sends");
    }
}

fn zmqrs_len(m: &zeromq::ZmqMessage) -> usize {
    m.iter().map(Bytes::len).sum()
}

impl Link for ZmqRs {
    fn send(&mut self, data: &[u8]) {
        self.send_message(Bytes::copy_from_slice(data).into());
    }
    fn recv(&mut self) -> usize {
        zmqrs_len(&self.recv_message())
    }
    fn echo(&mut self) -> usize {
        let m = self.recv_message();
        let n = zmqrs_len(&m);
        self.send_message(m);
        n
    }
    fn next_order(&mut self, orders: &mpsc::Receiver<u64>) -> Option<u64> {
        drive_until_order(&self.rt, orders)
    }
}

// ---- OMQ.rs --------------------------------------------------------------------------------------

fn omq_open(kind: Kind, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    use omq_tokio::SocketType as T;
    static CTX: OnceLock<omq_tokio::Context> = OnceLock::new();
    let ctx = CTX.get_or_init(omq_tokio::Context::new);
    let t = match kind {
        Kind::Req => T::Req,
        Kind::Rep => T::Rep,
        Kind::Push => T::Push,
        Kind::Pull => T::Pull,
        Kind::XPub | Kind::Sub => unreachable!("OMQ.rs runs the tcp REQ/REP and PUSH/PULL rows"),
    };
    let s = ctx.blocking_socket(t, omq_tokio::Options::default());
    let resolved = if server {
        s.bind(ep).expect("OMQ.rs binds").to_string()
    } else {
        s.connect(ep).expect("OMQ.rs connects");
        ep.to_string()
    };
    (Box::new(s), resolved)
}

impl Link for omq_tokio::blocking::Socket {
    fn send(&mut self, data: &[u8]) {
        let m = omq_tokio::Message::single(Bytes::copy_from_slice(data));
        omq_tokio::blocking::Socket::send(self, m).expect("OMQ.rs sends");
    }
    fn recv(&mut self) -> usize {
        omq_tokio::blocking::Socket::recv(self)
            .expect("OMQ.rs receives")
            .len()
    }
    fn echo(&mut self) -> usize {
        let m = omq_tokio::blocking::Socket::recv(self).expect("OMQ.rs receives");
        let n = m.len();
        omq_tokio::blocking::Socket::send(self, m).expect("OMQ.rs sends");
        n
    }
}

// ---- rzmq ----------------------------------------------------------------------------------------

/// An rzmq socket with its sessions on the io_uring backend, driven from a tokio runtime.
struct Rzmq {
    rt: &'static tokio::runtime::Runtime,
    socket: rzmq::Socket,
}

fn rzmq_open(kind: Kind, server: bool, ep: &str) -> (Box<dyn Link>, String) {
    use rzmq::SocketType as T;
    static RT: OnceLock<(tokio::runtime::Runtime, rzmq::Context)> = OnceLock::new();
    let (rt, ctx) = RT.get_or_init(|| {
        let rt = current_thread_runtime();
        let ctx = rt.block_on(async {
            // Another context of this process may have started the backend already.
            let _ = rzmq::uring::initialize_uring_backend(rzmq::uring::UringConfig::default());
            rzmq::Context::new().expect("an rzmq context")
        });
        (rt, ctx)
    });
    let t = match kind {
        Kind::Req => T::Req,
        Kind::Rep => T::Rep,
        Kind::Push => T::Push,
        Kind::Pull => T::Pull,
        Kind::XPub | Kind::Sub => unreachable!("rzmq runs the tcp REQ/REP and PUSH/PULL rows"),
    };
    let (socket, resolved) = rt.block_on(async {
        let s = ctx.socket(t).expect("an rzmq socket");
        s.set_option(rzmq::socket::options::IO_URING_SESSION_ENABLED, true)
            .await
            .expect("IO_URING_SESSION_ENABLED");
        let resolved = if server {
            s.bind(ep).await.expect("rzmq binds");
            let at = s
                .get_option(rzmq::socket::options::LAST_ENDPOINT)
                .await
                .expect("LAST_ENDPOINT");
            String::from_utf8_lossy(&at).into_owned()
        } else {
            s.connect(ep).await.expect("rzmq connects");
            ep.to_string()
        };
        (s, resolved)
    });
    (Box::new(Rzmq { rt, socket }), resolved)
}

impl Link for Rzmq {
    fn send(&mut self, data: &[u8]) {
        let m = rzmq::Msg::from_vec(data.to_vec());
        self.rt.block_on(self.socket.send(m)).expect("rzmq sends");
    }
    fn recv(&mut self) -> usize {
        self.rt
            .block_on(self.socket.recv())
            .expect("rzmq receives")
            .size()
    }
    fn echo(&mut self) -> usize {
        let socket = &self.socket;
        self.rt.block_on(async {
            let m = socket.recv().await.expect("rzmq receives");
            let n = m.size();
            socket.send(m).await.expect("rzmq sends");
            n
        })
    }
    fn next_order(&mut self, orders: &mpsc::Receiver<u64>) -> Option<u64> {
        drive_until_order(self.rt, orders)
    }
}
