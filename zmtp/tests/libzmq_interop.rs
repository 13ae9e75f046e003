//! The codec against real libzmq (the `zmq` crate, which builds libzmq 4.3), with no zring socket in
//! between: a plain `TcpStream` driven only by the codec, in both directions.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Wire, WAIT};
use zring_zmtp::{Config, Error, Event, Incompatible, SocketType, Version};

fn libzmq(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    s.set_sndtimeo(WAIT.as_millis() as i32).unwrap();
    s
}

fn bind_ephemeral(s: &zmq::Socket) -> String {
    s.bind("tcp://127.0.0.1:*").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    ep.trim_start_matches("tcp://").to_string()
}

fn codec(kind: SocketType) -> Config {
    Config::new(kind)
}

/// Frames of every interesting size: empty, 1, the short/long boundary, 64 KiB and 4 MiB.
fn sized_parts() -> Vec<Vec<u8>> {
    [0usize, 1, 255, 256, 65536, 4 << 20]
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
        .collect()
}

fn to_vecs(parts: Vec<Bytes>) -> Vec<Vec<u8>> {
    parts.into_iter().map(|b| b.to_vec()).collect()
}

#[test]
fn codec_dealer_talks_to_libzmq_router_both_ways() {
    let ctx = zmq::Context::new();
    let router = libzmq(&ctx, zmq::ROUTER);
    let addr = bind_ephemeral(&router);
    let mut cfg = codec(SocketType::Dealer);
    cfg.identity = Bytes::from_static(b"dealer-1");
    let mut wire = Wire::new(TcpStream::connect(addr).unwrap(), cfg);
    let peer = wire.ready();
    assert_eq!(peer.socket_type, SocketType::Router);
    assert_eq!(peer.version, Version::V3_1);

    let parts = sized_parts();
    wire.send(parts.iter().map(|p| Bytes::from(p.clone())));
    let got = router.recv_multipart(0).unwrap();
    assert_eq!(got[0], b"dealer-1", "libzmq routes by our Identity");
    assert_eq!(got[1..], parts[..]);

    let mut reply = vec![b"dealer-1".to_vec()];
    reply.extend(parts.iter().rev().cloned());
    router.send_multipart(reply, 0).unwrap();
    let back = to_vecs(wire.recv());
    assert_eq!(back, parts.iter().rev().cloned().collect::<Vec<_>>());
}

#[test]
fn codec_sub_gets_only_its_topic_from_libzmq_pub() {
    let ctx = zmq::Context::new();
    let publisher = libzmq(&ctx, zmq::PUB);
    let addr = bind_ephemeral(&publisher);
    let mut wire = Wire::new(TcpStream::connect(addr).unwrap(), codec(SocketType::Sub));
    wire.ready();
    wire.conn.subscribe(b"weather").unwrap();
    // Slow joiner: publish until the subscription has reached libzmq and a message comes back.
    let first = wire.until("a filtered message", |w| {
        publisher.send("other", 0).unwrap();
        publisher.send_multipart(["weather", "early"], 0).unwrap();
        w.try_event()
    });
    let Event::Frame(first) = first else {
        panic!("expected a frame, got {first:?}");
    };
    assert_eq!(&first.body[..], b"weather");
    assert!(first.more());
    assert_eq!(to_vecs(wire.recv()), vec![b"early".to_vec()]);
    publisher.send("other", 0).unwrap();
    publisher.send_multipart(["weather", "last"], 0).unwrap();
    loop {
        let msg = to_vecs(wire.recv());
        assert_eq!(
            msg.len(),
            2,
            "only two-frame weather messages pass: {msg:?}"
        );
        assert_eq!(msg[0], b"weather");
        if msg[1] == b"last" {
            break;
        }
    }
}

#[test]
fn libzmq_dealer_talks_to_a_codec_router_on_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = zmq::Context::new();
    let dealer = libzmq(&ctx, zmq::DEALER);
    dealer.set_identity(b"zd").unwrap();
    dealer
        .connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut wire = Wire::new(stream, codec(SocketType::Router));
    let peer = wire.ready();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(&peer.identity[..], b"zd");

    let parts = sized_parts();
    dealer.send_multipart(&parts, 0).unwrap();
    assert_eq!(to_vecs(wire.recv()), parts);
    wire.send(["reply", "", "two"]);
    assert_eq!(
        dealer.recv_multipart(0).unwrap(),
        vec![b"reply".to_vec(), vec![], b"two".to_vec()]
    );
}

#[test]
fn libzmq_sub_subscribes_to_a_codec_pub_on_a_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = zmq::Context::new();
    let sub = libzmq(&ctx, zmq::SUB);
    sub.set_subscribe(b"A").unwrap();
    sub.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut wire = Wire::new(stream, codec(SocketType::Pub));
    assert_eq!(wire.ready().socket_type, SocketType::Sub);
    assert_eq!(
        wire.next_event(),
        Event::Subscribe(Bytes::from_static(b"A"))
    );
    // The codec reports the subscription; filtering is the socket's job, so send only what matches.
    wire.send(["A-one"]);
    wire.send(["A-two", "more"]);
    assert_eq!(sub.recv_bytes(0).unwrap(), b"A-one");
    assert_eq!(
        sub.recv_multipart(0).unwrap(),
        vec![b"A-two".to_vec(), b"more".to_vec()]
    );
    sub.set_unsubscribe(b"A").unwrap();
    assert_eq!(wire.next_event(), Event::Cancel(Bytes::from_static(b"A")));
}

#[test]
fn libzmq_heartbeats_are_answered_and_ours_are_answered_by_libzmq() {
    let ctx = zmq::Context::new();
    let router = libzmq(&ctx, zmq::ROUTER);
    // libzmq drops a peer that does not answer its PINGs within the timeout.
    router.set_heartbeat_ivl(20).unwrap();
    router.set_heartbeat_timeout(200).unwrap();
    let addr = bind_ephemeral(&router);
    let mut cfg = codec(SocketType::Dealer);
    cfg.identity = Bytes::from_static(b"hb");
    cfg.heartbeat_ivl = Some(Duration::from_millis(20));
    cfg.heartbeat_timeout = Some(Duration::from_millis(500));
    let mut wire = Wire::new(TcpStream::connect(addr).unwrap(), cfg);
    wire.ready();
    wire.until("libzmq's PINGs and PONGs", |w| {
        let s = w.conn.stats();
        (s.pings_received >= 10 && s.pongs_received >= 10).then_some(())
    });
    // After 10 answered PINGs (10 x 20 ms, beyond libzmq's 200 ms timeout), the link still carries
    // messages both ways.
    wire.send(["still", "here"]);
    assert_eq!(
        router.recv_multipart(0).unwrap(),
        vec![b"hb".to_vec(), b"still".to_vec(), b"here".to_vec()]
    );
    router.send_multipart(["hb", "yes"], 0).unwrap();
    assert_eq!(to_vecs(wire.recv()), vec![b"yes".to_vec()]);
}

#[test]
fn a_codec_req_meeting_a_libzmq_pub_is_refused() {
    let ctx = zmq::Context::new();
    let publisher = libzmq(&ctx, zmq::PUB);
    let addr = bind_ephemeral(&publisher);
    let mut wire = Wire::new(TcpStream::connect(addr).unwrap(), codec(SocketType::Req));
    // Whichever side reads the other's READY first refuses: the codec with a typed error, or libzmq
    // by closing the stream. Either way no handshake completes.
    match wire.until_closed() {
        Ok(error) => assert_eq!(
            error,
            Error::Incompatible(Incompatible::SocketType {
                ours: SocketType::Req,
                theirs: SocketType::Pub
            })
        ),
        Err(closed) => assert_eq!(closed, "peer closed the stream"),
    }
    assert!(!wire.conn.is_ready());
    assert_eq!(wire.try_event(), None);
}

#[test]
fn libzmq_push_feeds_a_codec_pull_ten_thousand_messages_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = zmq::Context::new();
    let push = libzmq(&ctx, zmq::PUSH);
    push.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut wire = Wire::new(stream, codec(SocketType::Pull));
    wire.ready();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..10_000u32 {
            push.send(&i.to_be_bytes()[..], 0).unwrap();
        }
        push
    });
    for i in 0..10_000u32 {
        let msg = wire.recv();
        assert_eq!(msg, vec![Bytes::copy_from_slice(&i.to_be_bytes())]);
    }
    assert!(started.elapsed() < WAIT * 6, "bounded");
    drop(sender.join().unwrap());
}
