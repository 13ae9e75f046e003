//! zring sockets against libzmq 4.3 (the `zmq` crate) over tcp://, every pattern in both roles: zring
//! binds and libzmq connects, and the reverse.

#[allow(dead_code, reason = "shared helpers; this file uses the tcp ones")]
mod common;

use std::time::{Duration, Instant};

use common::{Net, Transport, WATCHDOG};
use zring::{Msg, Socket, SocketType};

/// Frames of 0, 1, 255, 256, 65536 octets and 4 MiB.
fn sized_parts() -> Vec<Vec<u8>> {
    [0usize, 1, 255, 256, 65536, 4 << 20]
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
        .collect()
}

fn bytes(parts: Vec<Msg>) -> Vec<Vec<u8>> {
    parts.into_iter().map(|m| m.to_vec()).collect()
}

fn libzmq(ctx: &zmq::Context, t: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(WATCHDOG.as_millis() as i32).unwrap();
    s.set_sndtimeo(WATCHDOG.as_millis() as i32).unwrap();
    s
}

/// How the two sockets meet.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// zring binds, libzmq connects.
    ZringBinds,
    /// libzmq binds, zring connects.
    LibzmqBinds,
}

/// A zring socket and a libzmq socket, connected.
fn meet(
    net: &Net,
    zctx: &zmq::Context,
    ours: SocketType,
    theirs: zmq::SocketType,
    role: Role,
    setup: impl FnOnce(&mut Socket, &zmq::Socket),
) -> (Socket, zmq::Socket) {
    let mut z = net.socket(ours);
    let l = libzmq(zctx, theirs);
    setup(&mut z, &l);
    match role {
        Role::ZringBinds => {
            z.bind("tcp://127.0.0.1:0").unwrap();
            l.connect(&z.last_endpoint().unwrap()).unwrap();
        }
        Role::LibzmqBinds => {
            l.bind("tcp://127.0.0.1:*").unwrap();
            z.connect(&l.get_last_endpoint().unwrap().unwrap()).unwrap();
        }
    }
    (z, l)
}

const ROLES: [Role; 2] = [Role::ZringBinds, Role::LibzmqBinds];

fn tcp() -> Net {
    Net::new(Transport::Tcp)
}

#[test]
fn req_and_rep_interoperate_in_both_roles() {
    let zctx = zmq::Context::new();
    for role in ROLES {
        let net = tcp();
        let (mut req, rep) = meet(&net, &zctx, SocketType::Req, zmq::REP, role, |_, _| {});
        req.send_multipart(sized_parts()).unwrap();
        assert_eq!(rep.recv_multipart(0).unwrap(), sized_parts(), "{role:?}");
        rep.send_multipart(sized_parts().iter().rev(), 0).unwrap();
        let back = bytes(req.recv_multipart().unwrap());
        assert_eq!(back, sized_parts().into_iter().rev().collect::<Vec<_>>());

        let (mut rep, req) = meet(&net, &zctx, SocketType::Rep, zmq::REQ, role, |_, _| {});
        req.send_multipart(["a", "b"], 0).unwrap();
        assert_eq!(
            bytes(rep.recv_multipart().unwrap()),
            [b"a".to_vec(), b"b".to_vec()]
        );
        rep.send("c").unwrap();
        assert_eq!(req.recv_bytes(0).unwrap(), b"c");
    }
}

#[test]
fn dealer_and_router_route_by_identity_in_both_directions() {
    let zctx = zmq::Context::new();
    for role in ROLES {
        let net = tcp();
        // zring DEALER with an identity, libzmq ROUTER.
        let (mut dealer, router) = meet(
            &net,
            &zctx,
            SocketType::Dealer,
            zmq::ROUTER,
            role,
            |z, _| {
                z.set_routing_id("zd").unwrap();
            },
        );
        dealer.send_multipart(sized_parts()).unwrap();
        let got = router.recv_multipart(0).unwrap();
        assert_eq!(got[0], b"zd", "{role:?}");
        assert_eq!(got[1..], sized_parts()[..]);
        router.send_multipart(["zd", "reply"], 0).unwrap();
        assert_eq!(dealer.recv_string().unwrap(), "reply");

        // zring ROUTER, libzmq DEALER with an identity.
        let (mut router, dealer) = meet(
            &net,
            &zctx,
            SocketType::Router,
            zmq::DEALER,
            role,
            |_, l| {
                l.set_identity(b"ld").unwrap();
            },
        );
        dealer.send_multipart(sized_parts(), 0).unwrap();
        let got = bytes(router.recv_multipart().unwrap());
        assert_eq!(got[0], b"ld");
        assert_eq!(got[1..], sized_parts()[..]);
        router.send_multipart(["ld", "back", ""]).unwrap();
        assert_eq!(
            dealer.recv_multipart(0).unwrap(),
            [b"back".to_vec(), Vec::new()]
        );
    }
}

/// Publishes with `publish` until `receive` gets something, then returns it (the slow-joiner effect).
fn until_received<T>(mut publish: impl FnMut(), mut receive: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        publish();
        if let Some(t) = receive() {
            return t;
        }
        assert!(Instant::now() < deadline, "nothing arrived");
    }
}

#[test]
fn subscriptions_and_filtering_work_across_implementations() {
    let zctx = zmq::Context::new();
    for role in ROLES {
        let net = tcp();
        // zring PUB, libzmq SUB: the subscription travels to zring, which filters.
        let (mut publisher, sub) = meet(&net, &zctx, SocketType::Pub, zmq::SUB, role, |_, l| {
            l.set_subscribe(b"weather").unwrap();
            l.set_rcvtimeo(5).unwrap();
        });
        let first = until_received(
            || {
                publisher.send("sport nothing").unwrap();
                publisher.send_multipart(["weather", "sunny"]).unwrap();
            },
            || sub.recv_multipart(0).ok(),
        );
        assert_eq!(first, [b"weather".to_vec(), b"sunny".to_vec()], "{role:?}");
        assert_eq!(publisher.drops().hwm, 0);

        // libzmq PUB, zring SUB.
        let (mut sub, publisher) = meet(&net, &zctx, SocketType::Sub, zmq::PUB, role, |z, _| {
            z.subscribe("A").unwrap();
            z.set_rcvtimeo(Some(Duration::from_millis(5))).unwrap();
        });
        let got = until_received(
            || {
                publisher.send("B no", 0).unwrap();
                publisher.send("A yes", 0).unwrap();
            },
            || sub.recv_string().ok(),
        );
        assert_eq!(got, "A yes");

        // zring XPUB sees a libzmq SUB's subscription. A bound libzmq SUB sends its subscriptions to
        // a new connection when the application next calls into it, so the SUB is polled meanwhile.
        let (mut xpub, sub) = meet(&net, &zctx, SocketType::XPub, zmq::SUB, role, |z, _| {
            z.set_rcvtimeo(Some(Duration::from_millis(5))).unwrap();
        });
        sub.set_subscribe(b"topic").unwrap();
        let poll_sub = || {
            let _ = sub.recv_bytes(zmq::DONTWAIT);
        };
        let first = until_received(poll_sub, || xpub.recv().ok());
        assert_eq!(&first[..], b"\x01topic");
        sub.set_unsubscribe(b"topic").unwrap();
        let last = until_received(poll_sub, || xpub.recv().ok());
        assert_eq!(&last[..], b"\x00topic");
    }
}

#[test]
fn push_pull_and_pair_interoperate_in_both_roles() {
    let zctx = zmq::Context::new();
    for role in ROLES {
        let net = tcp();
        let (mut push, pull) = meet(&net, &zctx, SocketType::Push, zmq::PULL, role, |_, _| {});
        push.send_multipart(sized_parts()).unwrap();
        assert_eq!(pull.recv_multipart(0).unwrap(), sized_parts(), "{role:?}");

        let (mut pull, push) = meet(&net, &zctx, SocketType::Pull, zmq::PUSH, role, |_, _| {});
        for i in 0..1000 {
            push.send(format!("{i}").as_bytes(), 0).unwrap();
        }
        for i in 0..1000 {
            assert_eq!(pull.recv_string().unwrap(), format!("{i}"));
        }

        let (mut pair, other) = meet(&net, &zctx, SocketType::Pair, zmq::PAIR, role, |_, _| {});
        pair.send("ping").unwrap();
        assert_eq!(other.recv_bytes(0).unwrap(), b"ping");
        other.send("pong", 0).unwrap();
        assert_eq!(pair.recv_string().unwrap(), "pong");
    }
}

#[test]
fn a_libzmq_peer_with_heartbeats_keeps_its_connection() {
    let zctx = zmq::Context::new();
    let net = tcp();
    let (mut dealer, router) = meet(
        &net,
        &zctx,
        SocketType::Dealer,
        zmq::ROUTER,
        Role::LibzmqBinds,
        |z, l| {
            z.set_routing_id("hb").unwrap();
            // libzmq drops a peer that does not answer its PINGs within 20 ms.
            l.set_heartbeat_ivl(2).unwrap();
            l.set_heartbeat_timeout(20).unwrap();
        },
    );
    let monitor_ep = "inproc://hb-monitor";
    router
        .monitor(monitor_ep, zmq::SocketEvent::DISCONNECTED as i32)
        .unwrap();
    let events = zctx.socket(zmq::PAIR).unwrap();
    events.connect(monitor_ep).unwrap();
    // Round trips until well past many heartbeat timeouts.
    let started = Instant::now();
    let mut trips = 0;
    while started.elapsed() < Duration::from_millis(300) {
        dealer.send("ping").unwrap();
        let got = router.recv_multipart(0).unwrap();
        assert_eq!(got[0], b"hb");
        router.send_multipart(["hb", "pong"], 0).unwrap();
        assert_eq!(dealer.recv_string().unwrap(), "pong");
        trips += 1;
    }
    assert!(trips > 0);
    assert!(
        events.recv_bytes(zmq::DONTWAIT).is_err(),
        "libzmq saw no disconnection: our PONGs answered its PINGs"
    );
}

#[test]
fn a_forbidden_pair_never_exchanges_a_message() {
    let zctx = zmq::Context::new();
    let net = tcp();
    let publisher = libzmq(&zctx, zmq::PUB);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let mut req = net.socket(SocketType::Req);
    req.set_reconnect_ivl(Duration::from_secs(3600)).unwrap();
    // Its request can never be delivered: do not wait for it when closing.
    req.set_linger(Some(Duration::ZERO)).unwrap();
    req.connect(&publisher.get_last_endpoint().unwrap().unwrap())
        .unwrap();
    req.send("queued, never delivered").unwrap();
    req.set_rcvtimeo(Some(Duration::from_millis(50))).unwrap();
    assert!(matches!(req.recv(), Err(zring::Error::WouldBlock)));
    let mut rep = net.socket(SocketType::Rep);
    rep.bind("tcp://127.0.0.1:0").unwrap();
    let libzmq_pub = libzmq(&zctx, zmq::PUB);
    libzmq_pub.connect(&rep.last_endpoint().unwrap()).unwrap();
    rep.set_rcvtimeo(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(rep.peer_count(), 0);
    assert!(matches!(rep.recv(), Err(zring::Error::WouldBlock)));
}
