//! Every pattern over every transport (inproc and tcp), against the rules of specs 28-31 and libzmq's
//! behaviour. Transport-specific rules (exact high-water-mark counts on inproc, reconnection on tcp)
//! have their own files.

#[allow(
    dead_code,
    reason = "shared helpers; this file uses the transport-neutral ones"
)]
#[macro_use]
mod common;

use common::{sync_pubsub, wait_peers, Net};
use serde::{Deserialize, Serialize};
use zring::{Error, Msg, Socket, SocketType};

fn text(parts: Vec<Msg>) -> Vec<String> {
    parts
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

fn recv_n(s: &mut Socket, n: usize) -> Vec<String> {
    (0..n).map(|_| s.recv_string().unwrap()).collect()
}

for_transports!(
    req_rep_is_lock_step,
    req_round_robins_and_rep_answers_each_requester,
    rep_keeps_the_whole_envelope,
    req_takes_the_first_delimited_reply_of_its_peer_and_drops_the_rest,
    rep_answers_requests_one_at_a_time_behind_their_delimiter,
    router_prefixes_and_routes_by_routing_id,
    dealer_round_robins_out_and_fair_queues_in,
    subscribers_get_only_matching_messages,
    xpub_and_xsub_carry_subscriptions,
    push_round_robins_and_pull_fair_queues,
    pair_exchanges_both_ways,
    frames_of_every_size_arrive_whole,
    a_multipart_message_received_frame_by_frame_keeps_its_frames_and_flags,
    json_round_trips,
    ten_thousand_messages_arrive_in_order,
    a_fast_stream_mixed_with_multipart_large_and_paused_sends_keeps_its_order,
);

fn req_rep_is_lock_step(net: &Net) {
    let (mut rep, ep) = net.bound(SocketType::Rep);
    let mut req = net.connected(SocketType::Req, &ep);
    assert!(matches!(req.recv(), Err(Error::InvalidState)));
    assert!(matches!(rep.send("x"), Err(Error::InvalidState)));
    for i in 0..3 {
        req.send(format!("hello {i}")).unwrap();
        assert!(matches!(req.send("again"), Err(Error::InvalidState)));
        assert_eq!(rep.recv_string().unwrap(), format!("hello {i}"));
        rep.send("world").unwrap();
        assert_eq!(req.recv_string().unwrap(), "world");
    }
}

fn req_round_robins_and_rep_answers_each_requester(net: &Net) {
    let (mut a, ep_a) = net.bound(SocketType::Rep);
    let (mut b, ep_b) = net.bound(SocketType::Rep);
    let mut req = net.socket(SocketType::Req);
    req.connect(&ep_a).unwrap();
    req.connect(&ep_b).unwrap();
    wait_peers(&mut a, 1);
    wait_peers(&mut b, 1);
    for i in 0..4 {
        req.send(format!("q{i}")).unwrap();
        let rep = if i % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(rep.recv_string().unwrap(), format!("q{i}"));
        rep.send(format!("r{i}")).unwrap();
        assert_eq!(req.recv_string().unwrap(), format!("r{i}"));
    }
    let (mut rep, ep) = net.bound(SocketType::Rep);
    let mut r1 = net.connected(SocketType::Req, &ep);
    let mut r2 = net.connected(SocketType::Req, &ep);
    r1.send("from 1").unwrap();
    r2.send("from 2").unwrap();
    for _ in 0..2 {
        let q = rep.recv_string().unwrap();
        rep.send(q.replace("from", "to")).unwrap();
    }
    assert_eq!(r1.recv_string().unwrap(), "to 1");
    assert_eq!(r2.recv_string().unwrap(), "to 2");
}

fn rep_keeps_the_whole_envelope(net: &Net) {
    let (mut rep, ep) = net.bound(SocketType::Rep);
    let mut dealer = net.connected(SocketType::Dealer, &ep);
    dealer.send_multipart(["hop1", "hop2", "", "q"]).unwrap();
    assert_eq!(text(rep.recv_multipart().unwrap()), ["q"]);
    rep.send("r").unwrap();
    assert_eq!(
        text(dealer.recv_multipart().unwrap()),
        ["hop1", "hop2", "", "r"]
    );
    dealer.send("no envelope: dropped").unwrap();
    dealer.send_multipart(["", "ok"]).unwrap();
    assert_eq!(text(rep.recv_multipart().unwrap()), ["ok"]);
}

fn req_takes_the_first_delimited_reply_of_its_peer_and_drops_the_rest(net: &Net) {
    let (mut router, ep) = net.bound(SocketType::Router);
    let mut req = net.connected(SocketType::Req, &ep);
    req.send("q1").unwrap();
    let got = router.recv_multipart().unwrap();
    assert_eq!(text(got[1..].to_vec()), ["", "q1"]);
    let id = got[0].clone();
    // No delimiter, and a delimiter with two frames behind it: no reply; then the reply; then one
    // more (the peer misbehaves).
    router
        .send_multipart([id.clone(), Msg::from("stray")])
        .unwrap();
    router
        .send_multipart([id.clone(), Msg::from(""), Msg::from("r1")])
        .unwrap();
    router
        .send_multipart([id.clone(), Msg::from(""), Msg::from("extra")])
        .unwrap();
    assert_eq!(text(req.recv_multipart().unwrap()), ["r1"]);
    // Answered: a receive before the next request is refused, whatever is waiting.
    assert!(!req.readable());
    assert!(matches!(req.recv(), Err(Error::InvalidState)));
    req.send("q2").unwrap();
    assert_eq!(
        text(router.recv_multipart().unwrap()[1..].to_vec()),
        ["", "q2"]
    );
    // As libzmq's REQ (without REQ_CORRELATE): the next delimited message of the peer it asked is
    // the reply.
    assert_eq!(req.recv_string().unwrap(), "extra");
    req.send("q3").unwrap();
    assert_eq!(
        text(router.recv_multipart().unwrap()[1..].to_vec()),
        ["", "q3"]
    );
    router
        .send_multipart([id, Msg::from(""), Msg::from("r3")])
        .unwrap();
    assert_eq!(req.recv_string().unwrap(), "r3");
}

fn rep_answers_requests_one_at_a_time_behind_their_delimiter(net: &Net) {
    let (mut rep, ep) = net.bound(SocketType::Rep);
    let mut dealer = net.connected(SocketType::Dealer, &ep);
    dealer.send_multipart(["", "a"]).unwrap();
    dealer.send_multipart(["", "b"]).unwrap();
    dealer.send_multipart(["hop", "", "c"]).unwrap();
    assert_eq!(rep.recv_string().unwrap(), "a");
    // A reply is owed: the next request waits for it.
    assert!(matches!(rep.recv(), Err(Error::InvalidState)));
    rep.send("ra").unwrap();
    assert!(matches!(rep.send("twice"), Err(Error::InvalidState)));
    assert_eq!(rep.recv_string().unwrap(), "b");
    rep.send("rb").unwrap();
    assert_eq!(rep.recv_string().unwrap(), "c");
    rep.send("rc").unwrap();
    assert_eq!(text(dealer.recv_multipart().unwrap()), ["", "ra"]);
    assert_eq!(text(dealer.recv_multipart().unwrap()), ["", "rb"]);
    assert_eq!(text(dealer.recv_multipart().unwrap()), ["hop", "", "rc"]);
}

fn router_prefixes_and_routes_by_routing_id(net: &Net) {
    let (mut router, ep) = net.bound(SocketType::Router);
    let mut named = net.socket(SocketType::Dealer);
    named.set_routing_id("A").unwrap();
    named.connect(&ep).unwrap();
    let mut anon = net.connected(SocketType::Dealer, &ep);
    named.send_multipart(["x", "y"]).unwrap();
    assert_eq!(text(router.recv_multipart().unwrap()), ["A", "x", "y"]);
    anon.send("z").unwrap();
    let got = router.recv_multipart().unwrap();
    assert_eq!(got[0].len(), 5, "a generated id: 5 octets");
    assert_eq!(got[0][0], 0);
    router
        .send_multipart([Msg::from("A"), Msg::from("to A")])
        .unwrap();
    router
        .send_multipart([got[0].clone(), Msg::from("to anon")])
        .unwrap();
    assert_eq!(named.recv_string().unwrap(), "to A");
    assert_eq!(anon.recv_string().unwrap(), "to anon");
    router.send_multipart(["nobody", "lost"]).unwrap();
    assert_eq!(router.drops().unroutable, 1);
}

fn dealer_round_robins_out_and_fair_queues_in(net: &Net) {
    let (mut dealer, ep) = net.bound(SocketType::Dealer);
    let mut peers: Vec<Socket> = (0..3)
        .map(|_| net.connected(SocketType::Dealer, &ep))
        .collect();
    wait_peers(&mut dealer, 3);
    for i in 0..6 {
        dealer.send(format!("{i}")).unwrap();
    }
    let mut got: Vec<Vec<String>> = peers.iter_mut().map(|p| recv_n(p, 2)).collect();
    got.sort();
    assert_eq!(got, [["0", "3"], ["1", "4"], ["2", "5"]]);
    for (i, p) in peers.iter_mut().enumerate() {
        for j in 0..3 {
            p.send(format!("p{i}m{j}")).unwrap();
        }
    }
    // Wait until every peer's three messages are in, then check one round from each at a time.
    let order = recv_n(&mut dealer, 9);
    for m in 0..3 {
        let mut round: Vec<&str> = order[m * 3..m * 3 + 3].iter().map(|s| &s[..2]).collect();
        round.sort();
        if net_is_inproc(net) {
            assert_eq!(round, ["p0", "p1", "p2"], "fair queuing: {order:?}");
        }
    }
    let mut all = order.clone();
    all.sort();
    assert_eq!(all.len(), 9);
}

fn net_is_inproc(net: &Net) -> bool {
    matches!(net.transport, common::Transport::Inproc)
}

fn subscribers_get_only_matching_messages(net: &Net) {
    let (mut publisher, ep) = net.bound(SocketType::Pub);
    let mut sub = net.connected(SocketType::Sub, &ep);
    sub.subscribe("10001 ").unwrap();
    sync_pubsub(&mut publisher, &mut sub);
    for msg in ["10001 hot", "20000 cold", "10001 warm", "1000 no"] {
        publisher.send(msg).unwrap();
    }
    publisher.send_multipart(["10001 ", "two frames"]).unwrap();
    assert_eq!(sub.recv_string().unwrap(), "10001 hot");
    assert_eq!(sub.recv_string().unwrap(), "10001 warm");
    assert_eq!(
        text(sub.recv_multipart().unwrap()),
        ["10001 ", "two frames"]
    );
    // Counted: a second subscription needs a second cancel.
    sub.subscribe("A").unwrap();
    sub.subscribe("A").unwrap();
    sub.unsubscribe("A").unwrap();
    sync_pubsub(&mut publisher, &mut sub);
    publisher.send("A1").unwrap();
    publisher.send("10001 fence").unwrap();
    assert_eq!(sub.recv_string().unwrap(), "A1");
    assert_eq!(sub.recv_string().unwrap(), "10001 fence");
}

fn xpub_and_xsub_carry_subscriptions(net: &Net) {
    let (mut xpub, ep) = net.bound(SocketType::XPub);
    let mut sub = net.connected(SocketType::Sub, &ep);
    sub.subscribe("t").unwrap();
    assert_eq!(&xpub.recv().unwrap()[..], b"\x01t");
    sub.unsubscribe("t").unwrap();
    assert_eq!(&xpub.recv().unwrap()[..], b"\x00t");
    // XSUB upstream of a PUB: subscribes by sending.
    let (mut publisher, ep2) = net.bound(SocketType::Pub);
    let mut xsub = net.connected(SocketType::XSub, &ep2);
    xsub.send(&b"\x01news"[..]).unwrap();
    wait_peers(&mut publisher, 1);
    let deadline = std::time::Instant::now() + common::WATCHDOG;
    xsub.set_rcvtimeo(Some(std::time::Duration::from_millis(5)))
        .unwrap();
    let got = loop {
        publisher.send("sport: no").unwrap();
        publisher.send("news: yes").unwrap();
        if let Ok(m) = xsub.recv() {
            break m;
        }
        assert!(std::time::Instant::now() < deadline);
    };
    assert_eq!(got.as_str().unwrap(), "news: yes");
}

fn push_round_robins_and_pull_fair_queues(net: &Net) {
    let (mut push, ep) = net.bound(SocketType::Push);
    let mut p1 = net.connected(SocketType::Pull, &ep);
    let mut p2 = net.connected(SocketType::Pull, &ep);
    wait_peers(&mut push, 2);
    for i in 0..10 {
        push.send(format!("{i}")).unwrap();
    }
    let mut a = recv_n(&mut p1, 5);
    let mut b = recv_n(&mut p2, 5);
    if a[0] != "0" {
        std::mem::swap(&mut a, &mut b);
    }
    assert_eq!(a, ["0", "2", "4", "6", "8"]);
    assert_eq!(b, ["1", "3", "5", "7", "9"]);

    let (mut pull, ep) = net.bound(SocketType::Pull);
    let mut w1 = net.connected(SocketType::Push, &ep);
    let mut w2 = net.connected(SocketType::Push, &ep);
    for i in 0..3 {
        w1.send(format!("w1-{i}")).unwrap();
        w2.send(format!("w2-{i}")).unwrap();
    }
    let got = recv_n(&mut pull, 6);
    for w in ["w1", "w2"] {
        let mine: Vec<&String> = got.iter().filter(|m| m.starts_with(w)).collect();
        assert_eq!(
            mine,
            [&format!("{w}-0"), &format!("{w}-1"), &format!("{w}-2")]
        );
    }
}

fn pair_exchanges_both_ways(net: &Net) {
    let (mut a, ep) = net.bound(SocketType::Pair);
    let mut b = net.connected(SocketType::Pair, &ep);
    b.send("hello").unwrap();
    assert_eq!(a.recv_string().unwrap(), "hello");
    a.send("back").unwrap();
    assert_eq!(b.recv_string().unwrap(), "back");
    let _intruder = net.connected(SocketType::Pair, &ep);
    a.send("still b").unwrap();
    assert_eq!(b.recv_string().unwrap(), "still b");
    assert_eq!(a.peer_count(), 1);
}

/// A multipart message taken frame by frame (`recv`: the short way of a socket with one peer, over
/// shm straight from the ring): every frame in order, `more` on all but the last, a large frame
/// among small ones, then the next message alone.
fn a_multipart_message_received_frame_by_frame_keeps_its_frames_and_flags(net: &Net) {
    let (mut pull, ep) = net.bound(SocketType::Pull);
    let mut push = net.connected(SocketType::Push, &ep);
    wait_peers(&mut pull, 1);
    let large = vec![7u8; 100_000];
    let parts: Vec<&[u8]> = vec![b"head", &large, b"", b"tail"];
    for _ in 0..3 {
        push.send_multipart(parts.clone()).unwrap();
    }
    push.send("alone").unwrap();
    for _ in 0..3 {
        recv_frame_by_frame(&mut pull, &parts);
    }
    let last = pull.recv().unwrap();
    assert_eq!((&last[..], last.more()), (&b"alone"[..], false));
}

/// Receives `parts` from `s` one frame at a time (`recv`), checking each frame and its `more`
/// flag (set on all but the last).
fn recv_frame_by_frame(s: &mut Socket, parts: &[&[u8]]) {
    for (i, want) in parts.iter().enumerate() {
        let got = s.recv().unwrap();
        assert_eq!(&got[..], *want, "frame {i}");
        assert_eq!(got.more(), i + 1 < parts.len(), "more on frame {i}");
    }
}

fn frames_of_every_size_arrive_whole(net: &Net) {
    let (mut a, ep) = net.bound(SocketType::Pair);
    let mut b = net.connected(SocketType::Pair, &ep);
    let sizes = [0usize, 1, 29, 30, 31, 255, 256, 65536, 4 << 20];
    let parts: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
        .collect();
    a.send_multipart(parts.clone()).unwrap();
    for (i, p) in parts.iter().enumerate() {
        let m = b.recv().unwrap();
        assert_eq!(&m[..], &p[..], "frame {i}");
        assert_eq!(m.more(), i + 1 < parts.len());
    }
    b.send_multipart(parts.iter().rev()).unwrap();
    let back: Vec<Vec<u8>> = a
        .recv_multipart()
        .unwrap()
        .iter()
        .map(|m| m.to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = parts.iter().rev().cloned().collect();
    assert_eq!(back, expected);
}

fn json_round_trips(net: &Net) {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Task {
        id: u32,
        workload: Vec<u64>,
    }
    let (mut push, ep) = net.bound(SocketType::Push);
    let mut pull = net.connected(SocketType::Pull, &ep);
    let task = Task {
        id: 7,
        workload: vec![1, 2, 3],
    };
    push.send_json(&task).unwrap();
    assert_eq!(pull.recv_json::<Task>().unwrap(), task);
}

fn ten_thousand_messages_arrive_in_order(net: &Net) {
    let (mut pull, ep) = net.bound(SocketType::Pull);
    let mut push = net.connected(SocketType::Push, &ep);
    let sender = std::thread::spawn(move || {
        for i in 0..10_000u32 {
            push.send(&i.to_be_bytes()[..]).unwrap();
        }
        push
    });
    for i in 0..10_000u32 {
        assert_eq!(&pull.recv().unwrap()[..], &i.to_be_bytes()[..]);
    }
    drop(sender.join().unwrap());
}

/// A stream fast enough for the sender to write its own batches (over a network stream, through a
/// write lease), broken by sends that must go another way (multipart, large, or after a pause, and
/// with the stream's end left to the I/O thread, the sender busy elsewhere): every message arrives,
/// whole and in order.
fn a_fast_stream_mixed_with_multipart_large_and_paused_sends_keeps_its_order(net: &Net) {
    const N: u32 = 200_000;
    let (mut pull, ep) = net.bound(SocketType::Pull);
    let mut push = net.connected(SocketType::Push, &ep);
    wait_peers(&mut push, 1);
    let body = |i: u32| -> Vec<u8> {
        let mut b = i.to_be_bytes().to_vec();
        b.resize(
            if i % 50_000 == 7 {
                100_000
            } else {
                4 + (i % 60) as usize
            },
            0xA5,
        );
        b
    };
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            if i % 1_000 == 3 {
                push.send_multipart([body(i), b"second".to_vec()]).unwrap();
            } else {
                push.send(body(i)).unwrap();
            }
            if i % 20_000 == 0 {
                // Busy elsewhere for a moment, without waiting on the socket.
                let until = std::time::Instant::now() + std::time::Duration::from_millis(2);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
        }
        push
    });
    for i in 0..N {
        let m = pull.recv().unwrap();
        assert_eq!(&m[..], &body(i)[..], "message {i}");
        if i % 1_000 == 3 {
            assert!(m.more(), "message {i} has a second frame");
            assert_eq!(&pull.recv().unwrap()[..], b"second", "message {i}");
        } else {
            assert!(!m.more(), "message {i}");
        }
    }
    drop(sender.join().unwrap());
}

/// Busy polling (`ContextBuilder::spin` without a bound, for dedicated cores): every transport still
/// attaches its peers, reads its streams and delivers, and a receive still ends at its timeout.
#[test]
fn busy_polling_sockets_deliver_over_every_transport_and_time_out() {
    use common::Transport;
    use std::time::Duration;
    for transport in [
        Transport::Inproc,
        Transport::Tcp,
        Transport::Ipc,
        Transport::Shm,
    ] {
        let net = Net {
            ctx: zring::Context::builder().spin(Some(Duration::MAX)).build(),
            transport,
        };
        let (mut rep, ep) = net.bound(SocketType::Rep);
        let mut req = net.connected(SocketType::Req, &ep);
        let server = std::thread::spawn(move || {
            for _ in 0..200 {
                let m = rep.recv().unwrap();
                rep.send(m).unwrap();
            }
            rep
        });
        for i in 0..200 {
            req.send(format!("{i}")).unwrap();
            assert_eq!(req.recv_string().unwrap(), format!("{i}"), "{transport:?}");
        }
        let mut rep = server.join().unwrap();
        rep.set_rcvtimeo(Some(Duration::from_millis(20))).unwrap();
        assert!(
            matches!(rep.recv(), Err(Error::WouldBlock)),
            "{transport:?}"
        );
    }
}
