//! Every pattern over inproc://, against the rules of specs 28-31 and libzmq's behaviour. Every socket
//! has a receive timeout, so a bug fails a test instead of hanging it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zring::{Context, Error, Msg, Socket, SocketType};

const WATCHDOG: Duration = Duration::from_secs(5);

fn socket(ctx: &Context, t: SocketType) -> Socket {
    let mut s = ctx.socket(t).unwrap();
    s.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    s.set_sndtimeo(Some(WATCHDOG)).unwrap();
    s
}

fn bound(ctx: &Context, t: SocketType, name: &str) -> Socket {
    let mut s = socket(ctx, t);
    s.bind(&format!("inproc://{name}")).unwrap();
    s
}

fn connected(ctx: &Context, t: SocketType, name: &str) -> Socket {
    let mut s = socket(ctx, t);
    s.connect(&format!("inproc://{name}")).unwrap();
    s
}

fn text(parts: Vec<Msg>) -> Vec<String> {
    parts
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

// ---- REQ/REP ---------------------------------------------------------------------------------------

#[test]
fn req_rep_is_lock_step_and_says_so() {
    let ctx = Context::new();
    let mut rep = bound(&ctx, SocketType::Rep, "lockstep");
    let mut req = connected(&ctx, SocketType::Req, "lockstep");
    assert!(
        matches!(req.recv(), Err(Error::InvalidState)),
        "REQ receives before sending"
    );
    assert!(
        matches!(rep.send("x"), Err(Error::InvalidState)),
        "REP sends before receiving"
    );
    req.send("one").unwrap();
    assert!(
        matches!(req.send("two"), Err(Error::InvalidState)),
        "REQ sends twice"
    );
    assert_eq!(rep.recv_string().unwrap(), "one");
    assert!(
        matches!(rep.recv(), Err(Error::InvalidState)),
        "REP receives twice"
    );
    rep.send("reply").unwrap();
    assert_eq!(req.recv_string().unwrap(), "reply");
    assert_eq!(
        Error::InvalidState.to_string(),
        "operation cannot be accomplished in current state"
    );
}

#[test]
fn req_round_robins_over_reps_and_each_rep_answers_its_requester() {
    let ctx = Context::new();
    let mut a = bound(&ctx, SocketType::Rep, "rr-a");
    let mut b = bound(&ctx, SocketType::Rep, "rr-b");
    let mut req = socket(&ctx, SocketType::Req);
    req.connect("inproc://rr-a").unwrap();
    req.connect("inproc://rr-b").unwrap();
    for i in 0..4 {
        req.send(format!("q{i}")).unwrap();
        let rep = if i % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(rep.recv_string().unwrap(), format!("q{i}"));
        rep.send(format!("r{i}")).unwrap();
        assert_eq!(req.recv_string().unwrap(), format!("r{i}"));
    }
}

#[test]
fn rep_sends_each_reply_to_its_own_requester() {
    let ctx = Context::new();
    let mut rep = bound(&ctx, SocketType::Rep, "two-reqs");
    let mut r1 = connected(&ctx, SocketType::Req, "two-reqs");
    let mut r2 = connected(&ctx, SocketType::Req, "two-reqs");
    r1.send("from 1").unwrap();
    r2.send("from 2").unwrap();
    for _ in 0..2 {
        let q = rep.recv_string().unwrap();
        rep.send(q.replace("from", "to")).unwrap();
    }
    assert_eq!(r1.recv_string().unwrap(), "to 1");
    assert_eq!(r2.recv_string().unwrap(), "to 2");
}

#[test]
fn rep_behind_a_router_keeps_the_whole_envelope() {
    let ctx = Context::new();
    let mut rep = bound(&ctx, SocketType::Rep, "envelope");
    let mut dealer = connected(&ctx, SocketType::Dealer, "envelope");
    // A DEALER speaking for a broker: two address frames, the delimiter, the body.
    dealer.send_multipart(["hop1", "hop2", "", "q"]).unwrap();
    assert_eq!(text(rep.recv_multipart().unwrap()), ["q"]);
    rep.send("r").unwrap();
    assert_eq!(
        text(dealer.recv_multipart().unwrap()),
        ["hop1", "hop2", "", "r"]
    );
    // A request without the delimiter is not a request: dropped.
    dealer.send("no envelope").unwrap();
    dealer.send_multipart(["", "ok"]).unwrap();
    assert_eq!(text(rep.recv_multipart().unwrap()), ["ok"]);
}

// ---- DEALER/ROUTER ---------------------------------------------------------------------------------

#[test]
fn router_prefixes_routing_ids_and_routes_replies_by_them() {
    let ctx = Context::new();
    let mut router = bound(&ctx, SocketType::Router, "ids");
    let mut named = socket(&ctx, SocketType::Dealer);
    named.set_routing_id("A").unwrap();
    named.connect("inproc://ids").unwrap();
    let mut anon = connected(&ctx, SocketType::Dealer, "ids");
    named.send_multipart(["x", "y"]).unwrap();
    assert_eq!(text(router.recv_multipart().unwrap()), ["A", "x", "y"]);
    anon.send("z").unwrap();
    let got = router.recv_multipart().unwrap();
    assert_eq!(got[0].len(), 5, "a generated id: 5 octets");
    assert_eq!(got[0][0], 0, "starting with a zero octet");
    let anon_id = got[0].clone();
    router
        .send_multipart([Msg::from("A"), Msg::from("to A")])
        .unwrap();
    router
        .send_multipart([anon_id, Msg::from("to anon")])
        .unwrap();
    assert_eq!(named.recv_string().unwrap(), "to A");
    assert_eq!(anon.recv_string().unwrap(), "to anon");
}

#[test]
fn router_drops_unroutable_messages_and_counts_them_unless_mandatory() {
    let ctx = Context::new();
    let mut router = bound(&ctx, SocketType::Router, "unroutable");
    router.send_multipart(["nobody", "lost"]).unwrap();
    assert_eq!(router.drops().unroutable, 1);
    router.set_router_mandatory(true).unwrap();
    assert!(matches!(
        router.send_multipart(["nobody", "refused"]),
        Err(Error::HostUnreachable { id }) if id == b"nobody"
    ));
    assert_eq!(router.drops().unroutable, 1);
}

#[test]
fn router_refuses_a_second_peer_with_an_identity_in_use() {
    let ctx = Context::new();
    let mut router = bound(&ctx, SocketType::Router, "dup");
    let mut first = socket(&ctx, SocketType::Dealer);
    first.set_routing_id("same").unwrap();
    first.connect("inproc://dup").unwrap();
    let mut second = socket(&ctx, SocketType::Dealer);
    second.set_routing_id("same").unwrap();
    second.connect("inproc://dup").unwrap();
    first.send("first").unwrap();
    assert_eq!(text(router.recv_multipart().unwrap()), ["same", "first"]);
    assert_eq!(router.peer_count(), 1);
}

#[test]
fn dealer_round_robins_out_and_fair_queues_in() {
    let ctx = Context::new();
    let mut dealer = bound(&ctx, SocketType::Dealer, "dealer-rr");
    let mut peers: Vec<Socket> = (0..3)
        .map(|_| connected(&ctx, SocketType::Dealer, "dealer-rr"))
        .collect();
    assert_eq!(dealer.peer_count(), 3);
    for i in 0..6 {
        dealer.send(format!("{i}")).unwrap();
    }
    let got: Vec<Vec<String>> = peers
        .iter_mut()
        .map(|p| (0..2).map(|_| p.recv_string().unwrap()).collect())
        .collect();
    assert_eq!(got, [["0", "3"], ["1", "4"], ["2", "5"]]);
    // Fair queuing: every peer queues three messages before the dealer reads; it alternates.
    for (i, p) in peers.iter_mut().enumerate() {
        for j in 0..3 {
            p.send(format!("p{i}m{j}")).unwrap();
        }
    }
    let order: Vec<String> = (0..9).map(|_| dealer.recv_string().unwrap()).collect();
    assert_eq!(
        order,
        ["p0m0", "p1m0", "p2m0", "p0m1", "p1m1", "p2m1", "p0m2", "p1m2", "p2m2"]
    );
}

// ---- PUB/SUB ---------------------------------------------------------------------------------------

#[test]
fn subscribers_get_only_what_matches_their_prefixes() {
    let ctx = Context::new();
    let mut publisher = bound(&ctx, SocketType::Pub, "weather");
    let mut sub = connected(&ctx, SocketType::Sub, "weather");
    sub.subscribe("10001 ").unwrap();
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
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn subscriptions_are_counted_and_empty_means_everything() {
    let ctx = Context::new();
    let mut publisher = bound(&ctx, SocketType::Pub, "counted");
    let mut sub = connected(&ctx, SocketType::Sub, "counted");
    sub.subscribe("A").unwrap();
    sub.subscribe("A").unwrap();
    sub.unsubscribe("A").unwrap();
    publisher.send("A1").unwrap();
    assert_eq!(sub.recv_string().unwrap(), "A1", "still subscribed once");
    sub.unsubscribe("A").unwrap();
    publisher.send("A2").unwrap();
    assert!(matches!(sub.try_recv(), Err(Error::WouldBlock)));
    sub.subscribe("").unwrap();
    publisher.send("anything").unwrap();
    assert_eq!(sub.recv_string().unwrap(), "anything");
}

#[test]
fn a_slow_subscriber_loses_messages_alone_and_the_publisher_never_blocks() {
    let ctx = Context::new();
    let mut publisher = socket(&ctx, SocketType::Pub);
    publisher.set_sndhwm(10).unwrap();
    publisher.bind("inproc://slow").unwrap();
    let mut fast = socket(&ctx, SocketType::Sub);
    fast.set_rcvhwm(10).unwrap();
    fast.connect("inproc://slow").unwrap();
    fast.subscribe("").unwrap();
    let mut slow = socket(&ctx, SocketType::Sub);
    slow.set_rcvhwm(10).unwrap();
    slow.connect("inproc://slow").unwrap();
    slow.subscribe("").unwrap();
    let mut fast_got = 0;
    for i in 0..100 {
        publisher.try_send(format!("{i}")).unwrap();
        while let Ok(m) = fast.try_recv() {
            assert_eq!(m.as_str().unwrap(), fast_got.to_string());
            fast_got += 1;
        }
    }
    assert_eq!(fast_got, 100, "the fast subscriber got everything");
    let mut slow_got = 0;
    while slow.try_recv().is_ok() {
        slow_got += 1;
    }
    assert_eq!(
        slow_got, 20,
        "the slow one got its high-water marks' worth (10 + 10)"
    );
    assert_eq!(
        publisher.drops().hwm,
        80,
        "and the publisher counted the rest"
    );
}

#[test]
fn xpub_sees_first_subscriptions_last_cancels_and_departures() {
    let ctx = Context::new();
    let mut xpub = bound(&ctx, SocketType::XPub, "xpub");
    let mut s1 = connected(&ctx, SocketType::Sub, "xpub");
    let mut s2 = connected(&ctx, SocketType::Sub, "xpub");
    s1.subscribe("t").unwrap();
    assert_eq!(&xpub.recv().unwrap()[..], b"\x01t");
    s2.subscribe("t").unwrap();
    assert!(
        matches!(xpub.try_recv(), Err(Error::WouldBlock)),
        "not the first for t"
    );
    s1.unsubscribe("t").unwrap();
    assert!(
        matches!(xpub.try_recv(), Err(Error::WouldBlock)),
        "s2 still wants t"
    );
    drop(s2);
    assert_eq!(&xpub.recv().unwrap()[..], b"\x00t", "the last one left");
    xpub.set_xpub_verbose(true).unwrap();
    s1.subscribe("v").unwrap();
    s1.subscribe("v").unwrap();
    assert_eq!(&xpub.recv().unwrap()[..], b"\x01v");
    assert_eq!(
        &xpub.recv().unwrap()[..],
        b"\x01v",
        "verbose: every subscription"
    );
}

#[test]
fn xsub_subscribes_by_sending_and_forwards_through_an_xpub() {
    let ctx = Context::new();
    let mut publisher = bound(&ctx, SocketType::Pub, "upstream");
    let mut xsub = connected(&ctx, SocketType::XSub, "upstream");
    let mut xpub = bound(&ctx, SocketType::XPub, "downstream");
    let mut sub = connected(&ctx, SocketType::Sub, "downstream");
    sub.subscribe("news").unwrap();
    // A hand-made forwarder: subscriptions up, messages down.
    let subscription = xpub.recv().unwrap();
    assert_eq!(&subscription[..], b"\x01news");
    xsub.send(subscription).unwrap();
    publisher.send("news: forwarded").unwrap();
    publisher.send("sport: not").unwrap();
    let msg = xsub.recv().unwrap();
    assert_eq!(msg.as_str().unwrap(), "news: forwarded");
    xpub.send(msg).unwrap();
    assert_eq!(sub.recv_string().unwrap(), "news: forwarded");
}

#[test]
fn subscriptions_are_sent_again_to_a_publisher_that_binds_later() {
    let ctx = Context::new();
    let mut sub = connected(&ctx, SocketType::Sub, "late-pub");
    sub.subscribe("x").unwrap();
    let mut publisher = bound(&ctx, SocketType::Pub, "late-pub");
    publisher.send("x marks").unwrap();
    publisher.send("y not").unwrap();
    assert_eq!(sub.recv_string().unwrap(), "x marks");
}

// ---- PUSH/PULL -------------------------------------------------------------------------------------

#[test]
fn push_round_robins_and_pull_fair_queues() {
    let ctx = Context::new();
    let mut push = bound(&ctx, SocketType::Push, "pipeline");
    let mut p1 = connected(&ctx, SocketType::Pull, "pipeline");
    let mut p2 = connected(&ctx, SocketType::Pull, "pipeline");
    for i in 0..10 {
        push.send(format!("{i}")).unwrap();
    }
    let a: Vec<String> = (0..5).map(|_| p1.recv_string().unwrap()).collect();
    let b: Vec<String> = (0..5).map(|_| p2.recv_string().unwrap()).collect();
    assert_eq!(a, ["0", "2", "4", "6", "8"]);
    assert_eq!(b, ["1", "3", "5", "7", "9"]);

    let mut pull = bound(&ctx, SocketType::Pull, "fan-in");
    let mut w1 = connected(&ctx, SocketType::Push, "fan-in");
    let mut w2 = connected(&ctx, SocketType::Push, "fan-in");
    for i in 0..3 {
        w1.send(format!("w1-{i}")).unwrap();
        w2.send(format!("w2-{i}")).unwrap();
    }
    let order: Vec<String> = (0..6).map(|_| pull.recv_string().unwrap()).collect();
    assert_eq!(order, ["w1-0", "w2-0", "w1-1", "w2-1", "w1-2", "w2-2"]);
}

#[test]
fn push_at_its_high_water_mark_blocks_and_never_drops() {
    let ctx = Context::new();
    let mut pull = socket(&ctx, SocketType::Pull);
    pull.set_rcvhwm(5).unwrap();
    pull.bind("inproc://hwm").unwrap();
    let mut push = socket(&ctx, SocketType::Push);
    push.set_sndhwm(5).unwrap();
    push.connect("inproc://hwm").unwrap();
    for i in 0..10 {
        push.try_send(format!("{i}")).unwrap();
    }
    assert!(matches!(push.try_send("11th"), Err(Error::WouldBlock)));
    push.set_sndtimeo(Some(Duration::from_millis(20))).unwrap();
    assert!(
        matches!(push.send("11th"), Err(Error::WouldBlock)),
        "timed out"
    );
    let got: Vec<String> = (0..10).map(|_| pull.recv_string().unwrap()).collect();
    assert_eq!(got, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn a_blocked_push_wakes_when_the_pull_side_reads() {
    let ctx = Context::new();
    let mut pull = socket(&ctx, SocketType::Pull);
    pull.set_rcvhwm(1).unwrap();
    pull.bind("inproc://wake-writer").unwrap();
    let mut push = socket(&ctx, SocketType::Push);
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://wake-writer").unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..1000 {
            push.send(format!("{i}")).unwrap();
        }
    });
    for i in 0..1000 {
        assert_eq!(pull.recv_string().unwrap(), i.to_string());
    }
    writer.join().unwrap();
}

#[test]
fn push_with_no_peer_blocks_until_one_connects() {
    let ctx = Context::new();
    let mut push = bound(&ctx, SocketType::Push, "no-peer-yet");
    assert!(matches!(push.try_send("x"), Err(Error::WouldBlock)));
    let mut pull = connected(&ctx, SocketType::Pull, "no-peer-yet");
    push.send("now").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "now");
}

// ---- PAIR ------------------------------------------------------------------------------------------

#[test]
fn pair_has_exactly_one_peer() {
    let ctx = Context::new();
    let mut a = bound(&ctx, SocketType::Pair, "pair");
    let mut b = connected(&ctx, SocketType::Pair, "pair");
    let mut intruder = connected(&ctx, SocketType::Pair, "pair");
    intruder.try_send("intrusion").ok();
    b.send("hello").unwrap();
    assert_eq!(a.recv_string().unwrap(), "hello");
    assert!(
        matches!(a.try_recv(), Err(Error::WouldBlock)),
        "nothing from the intruder"
    );
    a.send("back").unwrap();
    assert_eq!(b.recv_string().unwrap(), "back");
    assert_eq!(a.peer_count(), 1);
}

// ---- Across patterns -------------------------------------------------------------------------------

#[test]
fn forbidden_pairs_are_refused_at_connect() {
    let ctx = Context::new();
    let _publisher = bound(&ctx, SocketType::Pub, "forbidden");
    let mut req = socket(&ctx, SocketType::Req);
    assert!(matches!(
        req.connect("inproc://forbidden"),
        Err(Error::Incompatible {
            ours: SocketType::Req,
            theirs: SocketType::Pub
        })
    ));
}

#[test]
fn connect_before_bind_queues_until_the_bind() {
    let ctx = Context::new();
    let mut push = connected(&ctx, SocketType::Push, "later");
    for i in 0..3 {
        push.send(format!("{i}")).unwrap();
    }
    let mut pull = bound(&ctx, SocketType::Pull, "later");
    let got: Vec<String> = (0..3).map(|_| pull.recv_string().unwrap()).collect();
    assert_eq!(got, ["0", "1", "2"]);
}

#[test]
fn binding_a_name_twice_is_refused_until_the_first_socket_is_gone() {
    let ctx = Context::new();
    let first = bound(&ctx, SocketType::Pull, "taken");
    let mut second = socket(&ctx, SocketType::Pull);
    assert!(matches!(
        second.bind("inproc://taken"),
        Err(Error::AddressInUse { .. })
    ));
    drop(first);
    second.bind("inproc://taken").unwrap();
}

#[test]
fn multipart_frames_arrive_whole_with_their_more_flags() {
    let ctx = Context::new();
    let mut a = bound(&ctx, SocketType::Pair, "frames");
    let mut b = connected(&ctx, SocketType::Pair, "frames");
    let sizes = [0usize, 1, 29, 30, 31, 255, 256, 65536, 4 << 20];
    let parts: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![n as u8; n]).collect();
    a.send_multipart(parts.clone()).unwrap();
    for (i, p) in parts.iter().enumerate() {
        let m = b.recv().unwrap();
        assert_eq!(&m[..], &p[..]);
        assert_eq!(m.more(), i + 1 < parts.len());
    }
    // Frame by frame, with the more flag.
    a.send(Msg::from("first").with_more(true)).unwrap();
    assert!(
        matches!(b.try_recv(), Err(Error::WouldBlock)),
        "nothing until the last frame"
    );
    a.send("last").unwrap();
    assert_eq!(text(b.recv_multipart().unwrap()), ["first", "last"]);
}

#[test]
fn json_and_strings_round_trip() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Task {
        id: u32,
        workload: Vec<u64>,
    }
    let ctx = Context::new();
    let mut push = bound(&ctx, SocketType::Push, "json");
    let mut pull = connected(&ctx, SocketType::Pull, "json");
    let task = Task {
        id: 7,
        workload: vec![1, 2, 3],
    };
    push.send_json(&task).unwrap();
    assert_eq!(pull.recv_json::<Task>().unwrap(), task);
    push.send(vec![0xFFu8, 0xFE]).unwrap();
    assert!(matches!(pull.recv_string(), Err(Error::Utf8(_))));
}

#[test]
fn a_receiver_blocked_in_another_thread_is_woken() {
    let ctx = Context::new();
    let mut pull = bound(&ctx, SocketType::Pull, "wake-reader");
    let mut push = connected(&ctx, SocketType::Push, "wake-reader");
    let reader = std::thread::spawn(move || pull.recv_string().unwrap());
    push.send("wake up").unwrap();
    assert_eq!(reader.join().unwrap(), "wake up");
}

#[test]
fn messages_queued_before_a_socket_is_dropped_are_still_delivered() {
    let ctx = Context::new();
    let mut pull = bound(&ctx, SocketType::Pull, "linger");
    let mut push = connected(&ctx, SocketType::Push, "linger");
    for i in 0..5 {
        push.send(format!("{i}")).unwrap();
    }
    drop(push);
    let got: Vec<String> = (0..5).map(|_| pull.recv_string().unwrap()).collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    assert_eq!(pull.peer_count(), 0, "the finished pipe is let go");
}

#[test]
fn operations_a_type_never_does_are_refused() {
    let ctx = Context::new();
    let mut publisher = socket(&ctx, SocketType::Pub);
    assert!(matches!(
        publisher.recv(),
        Err(Error::NotSupported { op: "recv", .. })
    ));
    let mut sub = socket(&ctx, SocketType::Sub);
    assert!(matches!(
        sub.send("x"),
        Err(Error::NotSupported { op: "send", .. })
    ));
    let mut push = socket(&ctx, SocketType::Push);
    assert!(matches!(
        push.subscribe("x"),
        Err(Error::NotSupported { .. })
    ));
    assert!(matches!(
        push.bind("udp://x:1"),
        Err(Error::InvalidEndpoint { .. })
    ));
    assert!(push.set_routing_id("").is_err());
}

#[test]
fn timeouts_return_would_block() {
    let ctx = Context::new();
    let mut pull = bound(&ctx, SocketType::Pull, "timeout");
    pull.set_rcvtimeo(Some(Duration::from_millis(10))).unwrap();
    assert!(matches!(pull.recv(), Err(Error::WouldBlock)));
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}
