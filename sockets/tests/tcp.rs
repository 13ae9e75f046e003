//! What is specific to tcp://: reconnection with queued messages kept, and hostile peers that must be
//! cut off without disturbing anyone else.

#[allow(dead_code, reason = "shared helpers; this file uses the tcp ones")]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{pusher_up, Net, Transport, WATCHDOG};
use zring::{Error, Socket, SocketType};

fn tcp() -> Net {
    Net::new(Transport::Tcp)
}

/// Binds `t` at `endpoint`, retrying while the previous owner's listener is still closing.
fn bind_again(net: &Net, t: SocketType, endpoint: &str) -> Socket {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let mut s = net.socket(t);
        match s.bind(endpoint) {
            Ok(()) => return s,
            Err(Error::AddressInUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("bind {endpoint}: {e}"),
        }
    }
}

#[test]
fn messages_queued_before_the_peer_exists_are_delivered_when_it_binds() {
    let net = tcp();
    // Find a free port, then release it.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut push = net.socket(SocketType::Push);
    push.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    push.connect(&endpoint).unwrap();
    for i in 0..5 {
        push.send(format!("queued {i}")).unwrap();
    }
    let mut pull = bind_again(&net, SocketType::Pull, &endpoint);
    for i in 0..5 {
        assert_eq!(pull.recv_string().unwrap(), format!("queued {i}"));
    }
}

#[test]
fn a_connecting_socket_reconnects_to_a_restarted_peer() {
    let net = tcp();
    let (mut pull, endpoint) = net.bound(SocketType::Pull);
    let mut push = net.socket(SocketType::Push);
    push.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    push.connect(&endpoint).unwrap();
    push.send("before").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "before");
    drop(pull);
    let mut pull = bind_again(&net, SocketType::Pull, &endpoint);
    // Messages written into the dying connection may be lost (TCP gives no receipts); everything
    // sent once the new connection is up arrives, in order.
    pull.set_rcvtimeo(Some(Duration::from_millis(10))).unwrap();
    let deadline = Instant::now() + WATCHDOG;
    let mut n = 0;
    let first = loop {
        push.send(format!("after {n}")).unwrap();
        n += 1;
        if let Ok(m) = pull.recv_string() {
            break m;
        }
        assert!(Instant::now() < deadline, "never reconnected");
    };
    let mut expected: usize = first.trim_start_matches("after ").parse().unwrap();
    pull.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    push.send("last").unwrap();
    loop {
        let m = pull.recv_string().unwrap();
        if m == "last" {
            break;
        }
        expected += 1;
        assert_eq!(m, format!("after {expected}"));
    }
    assert_eq!(expected, n - 1, "nothing lost after the reconnection");
}

fn greeting(mechanism: &[u8], major: u8) -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = major;
    g[11] = 1;
    g[12..12 + mechanism.len()].copy_from_slice(mechanism);
    g
}

fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = b"\x05READY\x0bSocket-Type".to_vec();
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut out = vec![0x04, body.len() as u8];
    out.extend(body);
    out
}

/// Sends `bytes` on a raw connection and waits until the server closes it.
fn closed_by_server(endpoint: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(endpoint.trim_start_matches("tcp://")).unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WATCHDOG;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
fn hostile_peers_are_cut_off_while_a_good_peer_keeps_going() {
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_maxmsgsize(Some(1 << 20)).unwrap();
    pull.set_handshake_ivl(Some(Duration::from_millis(50)))
        .unwrap();
    let endpoint = net.bind(&mut pull);
    let mut good = net.connected(SocketType::Push, &endpoint);

    let mut oversized = greeting(b"NULL", 3);
    oversized.extend(ready("PUSH"));
    oversized.extend_from_slice(b"\x02\x00\x00\x00\x00\x40\x00\x00\x00"); // claims 1 GiB
    let mut lying_ready = greeting(b"NULL", 3);
    lying_ready.extend_from_slice(b"\x04\x0e\x05READY\x01A\xff\xff\xff\xff\x00\x00");
    let mut wrong_type = greeting(b"NULL", 3);
    wrong_type.extend(ready("PUB"));
    let mut message_first = greeting(b"NULL", 3);
    message_first.extend_from_slice(b"\x00\x03abc");
    let cases: [(&str, Vec<u8>); 8] = [
        ("bad signature", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("ZMTP 1.0", b"\x05\x00ABCD".to_vec()),
        ("ZMTP 2.0", greeting(b"NULL", 1)),
        ("wrong mechanism", greeting(b"PLAIN", 3)),
        ("oversized frame", oversized),
        ("READY with a lying length", lying_ready),
        ("forbidden socket type", wrong_type),
        ("a stalled greeting", greeting(b"NULL", 3)[..20].to_vec()),
    ];
    let baseline = rss_kib();
    for round in 0..20 {
        for (what, bytes) in &cases {
            assert!(closed_by_server(&endpoint, bytes), "{what} was not closed");
        }
        // The good peer is served all along.
        good.send(format!("good {round}")).unwrap();
        assert_eq!(pull.recv_string().unwrap(), format!("good {round}"));
        // And a message before any handshake never reached the socket.
        assert!(closed_by_server(&endpoint, &message_first));
    }
    let grown = rss_kib().saturating_sub(baseline);
    assert!(
        grown < 16 * 1024,
        "memory grew by {grown} KiB over 180 hostile connections"
    );
    assert_eq!(pull.peer_count(), 1, "only the good peer is attached");
    pull.set_rcvtimeo(Some(Duration::ZERO)).unwrap();
    assert!(
        matches!(pull.recv(), Err(Error::WouldBlock)),
        "nothing hostile was delivered"
    );
}

#[test]
fn a_second_peer_of_a_pair_is_refused_over_tcp() {
    let net = tcp();
    let (mut a, ep) = net.bound(SocketType::Pair);
    let mut b = net.connected(SocketType::Pair, &ep);
    b.send("first").unwrap();
    assert_eq!(a.recv_string().unwrap(), "first");
    let mut intruder = net.connected(SocketType::Pair, &ep);
    intruder.send("intrusion").unwrap();
    b.send("second").unwrap();
    assert_eq!(a.recv_string().unwrap(), "second");
    assert_eq!(a.peer_count(), 1);
}

fn free_endpoint() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://{}", probe.local_addr().unwrap())
}

#[test]
fn a_dropped_socket_still_delivers_what_it_queued() {
    let net = tcp();
    let endpoint = free_endpoint();
    let mut push = net.socket(SocketType::Push);
    push.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    push.connect(&endpoint).unwrap();
    for i in 0..3 {
        push.send(format!("{i}")).unwrap();
    }
    drop(push);
    let mut pull = bind_again(&net, SocketType::Pull, &endpoint);
    for i in 0..3 {
        assert_eq!(pull.recv_string().unwrap(), format!("{i}"));
    }
}

/// Drops `ctx` on another thread and says whether that finished within the watchdog.
fn context_lets_go(ctx: zring::Context) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(ctx);
        let _ = done.send(());
    });
    finished.recv_timeout(WATCHDOG).is_ok()
}

#[test]
fn dropping_the_context_waits_no_longer_than_the_lingers() {
    for linger in [Duration::ZERO, Duration::from_millis(50)] {
        let net = tcp();
        let mut push = net.socket(SocketType::Push);
        push.set_linger(Some(linger)).unwrap();
        push.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
        push.connect(&free_endpoint()).unwrap();
        push.send("nobody will take this").unwrap();
        drop(push);
        assert!(context_lets_go(net.ctx), "linger {linger:?}");
    }
}

#[test]
fn immediate_queues_nothing_for_a_peer_that_is_not_there() {
    let net = tcp();
    let endpoint = free_endpoint();
    let mut push = net.socket(SocketType::Push);
    push.set_immediate(true).unwrap();
    push.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    push.connect(&endpoint).unwrap();
    assert!(matches!(push.try_send("nobody"), Err(Error::WouldBlock)));
    let mut pull = bind_again(&net, SocketType::Pull, &endpoint);
    push.send("now there is").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "now there is");
}

#[test]
fn ipv6_binds_both_families_and_literals_connect() {
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_ipv6(true).unwrap();
    pull.bind("tcp://*:0").unwrap();
    let bound = pull.last_endpoint().unwrap();
    assert!(bound.starts_with("tcp://[::]:"), "{bound}");
    let port = bound.rsplit(':').next().unwrap();
    let mut over_v6 = net.connected(SocketType::Push, &format!("tcp://[::1]:{port}"));
    let mut over_v4 = net.connected(SocketType::Push, &format!("tcp://127.0.0.1:{port}"));
    over_v6.send("six").unwrap();
    over_v4.send("four").unwrap();
    let mut got = [pull.recv_string().unwrap(), pull.recv_string().unwrap()];
    got.sort();
    assert_eq!(got, ["four", "six"]);
}

#[test]
fn the_monitor_says_why_each_connection_ended() {
    use zring::{DisconnectReason, MonitorEvent};
    use zring_zmtp::{Error as Wire, Incompatible, PeerMisbehaved};

    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_maxmsgsize(Some(1024)).unwrap();
    let monitor = pull.monitor();
    let endpoint = net.bind(&mut pull);
    let next = || monitor.recv_timeout(WATCHDOG).expect("an event");

    // A good peer: connected, handshake, then gone.
    let mut good = net.connected(SocketType::Push, &endpoint);
    good.send("hello").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "hello");
    assert!(matches!(next(), MonitorEvent::Connected { peer: Some(_) }));
    assert!(matches!(next(), MonitorEvent::HandshakeSucceeded { .. }));
    drop(good);
    assert!(matches!(
        next(),
        MonitorEvent::Disconnected {
            reason: DisconnectReason::PeerClosed,
            ..
        }
    ));

    // Not ZMTP at all.
    assert!(closed_by_server(&endpoint, b"GET / HTTP/1.1\r\n\r\n"));
    assert!(matches!(next(), MonitorEvent::Connected { .. }));
    assert_eq!(
        match next() {
            MonitorEvent::HandshakeFailed { reason, .. } => reason,
            other => panic!("{other:?}"),
        },
        DisconnectReason::Protocol(Wire::Incompatible(Incompatible::Unversioned))
    );

    // A frame over MAXMSGSIZE after a good handshake.
    let mut oversized = greeting(b"NULL", 3);
    oversized.extend(ready("PUSH"));
    oversized.extend_from_slice(b"\x02\x00\x00\x00\x00\x00\x00\x04\x01");
    assert!(closed_by_server(&endpoint, &oversized));
    assert!(matches!(next(), MonitorEvent::Connected { .. }));
    assert!(matches!(next(), MonitorEvent::HandshakeSucceeded { .. }));
    assert_eq!(
        match next() {
            MonitorEvent::Disconnected { reason, .. } => reason,
            other => panic!("{other:?}"),
        },
        DisconnectReason::Protocol(Wire::Peer(PeerMisbehaved::FrameTooLarge {
            claimed: 1025,
            max: 1024
        }))
    );
}

/// A raw peer that completes the handshake as `socket_type`, then reads and never answers.
/// A listener for a peer played by hand, and the endpoint a zring socket connects to.
fn hand_listener() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

fn silent_peer(listener: &std::net::TcpListener, socket_type: &str) -> TcpStream {
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s.write_all(&greeting(b"NULL", 3)).unwrap();
    s.write_all(&ready(socket_type)).unwrap();
    s
}

#[test]
fn a_peer_silent_past_the_heartbeat_timeout_is_dropped_and_reconnected() {
    use zring::{DisconnectReason, MonitorEvent};
    use zring_zmtp::{Error as Wire, TimeoutKind};

    let (listener, endpoint) = hand_listener();
    let net = tcp();
    let mut dealer = net.socket(SocketType::Dealer);
    dealer
        .set_heartbeat_ivl(Some(Duration::from_millis(20)))
        .unwrap();
    dealer
        .set_heartbeat_timeout(Some(Duration::from_millis(60)))
        .unwrap();
    dealer.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    let monitor = dealer.monitor();
    dealer.connect(&endpoint).unwrap();

    let mut first = silent_peer(&listener, "ROUTER");
    // The dealer PINGs, gets nothing back, and closes the stream.
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    loop {
        match first.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        seen.windows(5).any(|w| w == b"\x04PING"),
        "the dealer sent PINGs"
    );
    let events: Vec<MonitorEvent> = std::iter::from_fn(|| monitor.recv_timeout(WATCHDOG))
        .take(3)
        .collect();
    assert!(matches!(events[0], MonitorEvent::Connected { .. }));
    assert!(matches!(events[1], MonitorEvent::HandshakeSucceeded { .. }));
    assert!(matches!(
        &events[2],
        MonitorEvent::Disconnected {
            reason: DisconnectReason::Protocol(Wire::Timeout(TimeoutKind::Heartbeat)),
            ..
        }
    ));
    // And it comes back.
    let _second = silent_peer(&listener, "ROUTER");
    assert!(matches!(
        monitor.recv_timeout(WATCHDOG),
        Some(MonitorEvent::Connected { .. })
    ));
}

#[test]
fn a_forbidden_pair_is_refused_at_the_handshake_with_the_reason() {
    use zring::{DisconnectReason, MonitorEvent};
    use zring_zmtp::{Error as Wire, Incompatible};

    let net = tcp();
    let mut publisher = net.socket(SocketType::Pub);
    let monitor = publisher.monitor();
    let endpoint = net.bind(&mut publisher);
    let mut req = net.socket(SocketType::Req);
    req.set_linger(Some(Duration::ZERO)).unwrap();
    req.set_reconnect_ivl(Duration::from_secs(3600)).unwrap();
    req.connect(&endpoint).unwrap();
    req.send("never delivered").unwrap();
    assert!(matches!(
        monitor.recv_timeout(WATCHDOG),
        Some(MonitorEvent::Connected { .. })
    ));
    let failed = monitor.recv_timeout(WATCHDOG);
    assert!(
        matches!(
            &failed,
            Some(MonitorEvent::HandshakeFailed {
                reason: DisconnectReason::Protocol(Wire::Incompatible(Incompatible::SocketType {
                    ours: SocketType::Pub,
                    theirs: SocketType::Req
                })),
                ..
            })
        ) || matches!(
            &failed,
            Some(MonitorEvent::HandshakeFailed {
                reason: DisconnectReason::PeerClosed | DisconnectReason::Io(_),
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(publisher.peer_count(), 0);
}

/// The timer column (`tr`) of the local socket connected to `port` in /proc/net/tcp: 2 is the
/// keepalive timer.
fn timer_towards(port: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let remote_port = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
        let established = *fields.get(3)? == "01";
        (remote_port == port && established)
            .then(|| u8::from_str_radix(fields.get(5)?.split(':').next()?, 16).ok())
            .flatten()
    })
}

#[test]
fn tcp_keepalive_sets_so_keepalive_on_the_stream() {
    for (keepalive, timer) in [(Some(true), 2), (Some(false), 0)] {
        let net = tcp();
        let (mut pull, endpoint) = net.bound(SocketType::Pull);
        let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let mut push = net.socket(SocketType::Push);
        push.set_tcp_keepalive(keepalive).unwrap();
        push.connect(&endpoint).unwrap();
        push.send("x").unwrap();
        assert_eq!(pull.recv_string().unwrap(), "x");
        assert_eq!(timer_towards(port), Some(timer), "keepalive {keepalive:?}");
    }
}

#[test]
fn sockets_run_on_the_io_thread_their_affinity_names() {
    let ctx = zring::Context::builder().io_threads(2).build();
    let mut pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    pull.set_affinity(0b10).unwrap();
    pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut pushes: Vec<Socket> = (0..2u64)
        .map(|t| {
            let mut push = ctx.socket(SocketType::Push).unwrap();
            push.set_affinity(1 << t).unwrap();
            push.connect(&pull.last_endpoint().unwrap()).unwrap();
            push
        })
        .collect();
    for (i, p) in pushes.iter_mut().enumerate() {
        p.send(format!("from {i}")).unwrap();
    }
    let mut got = [pull.recv_string().unwrap(), pull.recv_string().unwrap()];
    got.sort();
    assert_eq!(got, ["from 0", "from 1"]);
    assert_eq!(ctx.io_threads(), 2);
}

/// Reads from a raw peer until `want` has been seen (the bytes before it are skipped).
fn read_until(s: &mut TcpStream, want: &[u8]) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WATCHDOG;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.windows(want.len()).any(|w| w == want) {
            return true;
        }
    }
    false
}

/// One message frame of `body` (short form).
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A PING command with TTL 0 and `context`, and the PONG that answers it.
fn ping_pong(context: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut ping = vec![0x04, (7 + context.len()) as u8];
    ping.extend_from_slice(b"\x04PING\x00\x00");
    ping.extend_from_slice(context);
    let mut pong = vec![0x04, (5 + context.len()) as u8];
    pong.extend_from_slice(b"\x04PONG");
    pong.extend_from_slice(context);
    (ping, pong)
}

/// A raw PUSH peer that a zring PULL connected to, past the handshake.
fn raw_pusher(listener: &std::net::TcpListener) -> TcpStream {
    let mut s = silent_peer(listener, "PUSH");
    assert!(read_until(&mut s, b"PULL"), "the PULL's READY arrives");
    s
}

#[test]
fn a_receiver_reading_its_stream_itself_answers_pings_and_survives_the_stream_ending() {
    use zring::{DisconnectReason, MonitorEvent};

    let (listener, endpoint) = hand_listener();
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_reconnect_ivl(Duration::from_millis(10)).unwrap();
    let monitor = pull.monitor();
    pull.connect(&endpoint).unwrap();
    let (got, received) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        // Once a message has come, every receive waits on the one stream from this thread.
        for _ in 0..4 {
            let m = pull.recv_string().unwrap();
            got.send(m).unwrap();
        }
    });
    let mut peer = raw_pusher(&listener);
    peer.write_all(&frame(b"one")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "one");
    // The receiver is now waiting in its next receive: the PING is read (and answered) there.
    let (ping, pong) = ping_pong(b"ab");
    peer.write_all(&ping).unwrap();
    assert!(read_until(&mut peer, &pong), "the PING is answered");
    peer.write_all(&frame(b"two")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "two");
    // A malformed command (its name longer than its body) closes the stream; the socket reconnects
    // and the receiver, still in its receive, gets what the new stream brings.
    peer.write_all(&[0x04, 0x03, 0x10, b'A', b'B']).unwrap();
    let mut second = raw_pusher(&listener);
    let disconnected =
        std::iter::from_fn(|| monitor.recv_timeout(WATCHDOG)).find_map(|e| match e {
            MonitorEvent::Disconnected { reason, .. } => Some(reason),
            _ => None,
        });
    assert!(matches!(disconnected, Some(DisconnectReason::Protocol(_))));
    second.write_all(&frame(b"three")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "three");
    // The peer going away mid-wait is the same: a new stream serves the waiting receiver.
    drop(second);
    let mut third = raw_pusher(&listener);
    third.write_all(&frame(b"four")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "four");
    receiver.join().unwrap();
}

#[test]
fn input_is_read_while_the_receiver_is_busy_elsewhere() {
    let (listener, endpoint) = hand_listener();
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.connect(&endpoint).unwrap();
    let (got, received) = std::sync::mpsc::channel();
    let (go, resume) = std::sync::mpsc::channel::<()>();
    let receiver = std::thread::spawn(move || {
        for _ in 0..2 {
            got.send(pull.recv_string().unwrap()).unwrap();
        }
        // Busy elsewhere: no receive until told.
        resume.recv_timeout(WATCHDOG).unwrap();
        got.send(pull.recv_string().unwrap()).unwrap();
    });
    let mut peer = raw_pusher(&listener);
    peer.write_all(&frame(b"one")).unwrap();
    peer.write_all(&frame(b"two")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "one");
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "two");
    // The receiver read its stream itself; now it is not receiving, and the I/O thread answers.
    let (ping, pong) = ping_pong(b"busy");
    peer.write_all(&ping).unwrap();
    assert!(read_until(&mut peer, &pong), "the PING is answered");
    peer.write_all(&frame(b"three")).unwrap();
    go.send(()).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "three");
    receiver.join().unwrap();
}

#[test]
fn a_receiver_with_a_tiny_queue_reading_its_stream_loses_nothing() {
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_rcvhwm(2).unwrap();
    let ep = net.bind(&mut pull);
    let mut push = net.connected(SocketType::Push, &ep);
    let body = vec![7u8; 512];
    let sender = std::thread::spawn(move || {
        for i in 0..5_000u32 {
            let mut m = i.to_be_bytes().to_vec();
            m.extend_from_slice(&body);
            push.send(m).unwrap();
        }
        push
    });
    for i in 0..5_000u32 {
        let m = pull.recv().unwrap();
        assert_eq!(&m[..4], &i.to_be_bytes()[..]);
        assert_eq!(m.len(), 516);
    }
    drop(sender.join().unwrap());
}

#[test]
fn a_receiver_waiting_on_its_stream_times_out_and_is_reached_by_a_second_peer() {
    for transport in [Transport::Tcp, Transport::Ipc] {
        let net = Net::new(transport);
        let (mut pull, ep) = net.bound(SocketType::Pull);
        let mut first = net.connected(SocketType::Push, &ep);
        first.send("one").unwrap();
        assert_eq!(pull.recv_string().unwrap(), "one");
        // The receiver now waits on its one stream itself: timeouts shorter and longer than the
        // bounded receive it starts with end in `WouldBlock`.
        for ms in [0, 1, 5] {
            pull.set_rcvtimeo(Some(Duration::from_millis(ms))).unwrap();
            assert!(matches!(pull.recv(), Err(Error::WouldBlock)), "{ms} ms");
        }
        pull.set_rcvtimeo(Some(WATCHDOG)).unwrap();
        let receiver = std::thread::spawn(move || {
            let mut got = vec![pull.recv_string().unwrap(), pull.recv_string().unwrap()];
            got.sort();
            got
        });
        // A second peer comes while the receiver waits on the first one's stream.
        let mut second = net.connected(SocketType::Push, &ep);
        second.send("two").unwrap();
        first.send("three").unwrap();
        assert_eq!(receiver.join().unwrap(), ["three", "two"], "{transport:?}");
    }
}

/// Receives `n` strings on `s` on a thread of its own, handing each over as it comes; the thread
/// gives the socket back.
fn receiving(
    mut s: Socket,
    n: usize,
) -> (
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<Socket>,
) {
    let (got, received) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        for _ in 0..n {
            got.send(s.recv_string().unwrap()).unwrap();
        }
        s
    });
    (received, receiver)
}

#[test]
fn a_conflating_receiver_reading_its_stream_keeps_only_the_newest_message() {
    let (listener, endpoint) = hand_listener();
    let net = tcp();
    let mut pull = net.socket(SocketType::Pull);
    pull.set_conflate(true).unwrap();
    pull.connect(&endpoint).unwrap();
    // After the first message the receiver waits on its one stream itself, and the burst comes in
    // one read there.
    let (received, receiver) = receiving(pull, 2);
    let mut peer = raw_pusher(&listener);
    peer.write_all(&frame(b"first")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "first");
    let burst: Vec<u8> = (0..100)
        .flat_map(|i| frame(format!("state {i}").as_bytes()))
        .collect();
    peer.write_all(&burst).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "state 99");
    let mut pull = receiver.join().unwrap();
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

/// The `i`-th message of a mixed stream: mostly small one-frame messages (which the sender batches
/// itself), with large ones and multipart ones among them (which take the socket's queue).
fn mixed(i: u32) -> Vec<Vec<u8>> {
    let tag = i.to_be_bytes().to_vec();
    match i % 50 {
        7 => vec![tag, vec![1u8; 100 * 1024]],
        13 => vec![[tag, vec![2u8; 40 * 1024]].concat()],
        29 => vec![tag, Vec::new(), b"third".to_vec()],
        _ => vec![tag],
    }
}

#[test]
fn a_stream_of_small_large_and_multipart_messages_arrives_in_order_even_when_dropped_at_once() {
    for transport in [Transport::Tcp, Transport::Ipc] {
        let net = Net::new(transport);
        let (mut pull, ep) = net.bound(SocketType::Pull);
        let mut push = pusher_up(&net, &mut pull, &ep, |_| {});
        let sender = std::thread::spawn(move || {
            for i in 0..20_000u32 {
                match mixed(i).as_slice() {
                    [one] => push.send(one.as_slice()).unwrap(),
                    parts => push
                        .send_multipart(parts.iter().map(Vec::as_slice))
                        .unwrap(),
                }
            }
            // Dropped at once: what it batched or queued is still delivered (linger).
        });
        for i in 0..20_000u32 {
            let got: Vec<Vec<u8>> = pull
                .recv_multipart()
                .unwrap()
                .iter()
                .map(|m| m.to_vec())
                .collect();
            assert_eq!(got, mixed(i), "{transport:?} message {i}");
        }
        sender.join().unwrap();
        assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    }
}

#[test]
fn a_sender_dropped_right_after_a_burst_delivers_all_of_it() {
    for transport in [Transport::Tcp, Transport::Ipc] {
        let net = Net::new(transport);
        let (mut pull, ep) = net.bound(SocketType::Pull);
        for round in 0..100u32 {
            let mut push = pusher_up(&net, &mut pull, &ep, |_| {});
            for i in 0..200u32 {
                push.send(format!("{round} {i}")).unwrap();
            }
            // The burst is in the stream's batch when the socket goes.
            drop(push);
            for i in 0..200u32 {
                let want = format!("{round} {i}");
                assert_eq!(pull.recv_string().unwrap(), want, "{transport:?}");
            }
        }
    }
}

#[test]
fn the_end_of_a_fast_stream_arrives_while_the_sender_makes_no_call() {
    for transport in [Transport::Tcp, Transport::Ipc] {
        let net = Net::new(transport);
        let (mut pull, ep) = net.bound(SocketType::Pull);
        let mut push = pusher_up(&net, &mut pull, &ep, |_| {});
        let (got_all, all_got) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            for round in 0..3u32 {
                // Fast enough that the sender writes its batches itself; its last batch is
                // left for the I/O thread, since the sender stays silent until all has come.
                for i in 0..50_000u32 {
                    push.send([round.to_be_bytes(), i.to_be_bytes()].concat())
                        .unwrap();
                }
                all_got.recv_timeout(WATCHDOG).unwrap();
            }
            push
        });
        for round in 0..3u32 {
            for i in 0..50_000u32 {
                let m = pull.recv().unwrap();
                assert_eq!(
                    &m[..],
                    [round.to_be_bytes(), i.to_be_bytes()].concat(),
                    "{transport:?}"
                );
            }
            got_all.send(()).unwrap();
        }
        drop(sender.join().unwrap());
    }
}

#[test]
fn a_subscriber_reading_its_stream_drops_what_it_did_not_subscribe_to() {
    // A raw publisher that sends everything: the SUB's own filter must hold.
    let (listener, endpoint) = hand_listener();
    let net = tcp();
    let mut sub = net.socket(SocketType::Sub);
    sub.subscribe("a").unwrap();
    sub.connect(&endpoint).unwrap();
    let (received, receiver) = receiving(sub, 3);
    let mut peer = silent_peer(&listener, "PUB");
    assert!(
        read_until(&mut peer, b"\x09SUBSCRIBEa"),
        "the subscription arrives"
    );
    peer.write_all(&frame(b"a first")).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "a first");
    // The receiver now reads its stream itself: one read brings all of these.
    let burst: Vec<u8> = [&b"b no"[..], b"a second", b"c no", b"b no", b"a third"]
        .iter()
        .flat_map(|m| frame(m))
        .collect();
    peer.write_all(&burst).unwrap();
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "a second");
    assert_eq!(received.recv_timeout(WATCHDOG).unwrap(), "a third");
    let mut sub = receiver.join().unwrap();
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
}
