//! `poll` over several sockets, and `proxy` as a broker (ROUTER/DEALER) and a forwarder (XSUB/XPUB),
//! over every transport.

#[allow(dead_code, reason = "shared helpers")]
mod common;

use std::time::Duration;

use common::{wait_peers, Net};
use zring::{poll, proxy_steerable, Events, PollItem, SocketType};

for_transports!(
    poll_reports_the_socket_that_became_readable,
    poll_times_out_with_nothing_ready,
    a_broker_proxy_connects_clients_to_workers,
    a_forwarder_proxy_carries_subscriptions_up_and_messages_down,
);

fn poll_reports_the_socket_that_became_readable(net: &Net) {
    let (mut quiet, _ep_quiet) = net.bound(SocketType::Pull);
    let (mut busy, ep_busy) = net.bound(SocketType::Pull);
    let mut push = net.connected(SocketType::Push, &ep_busy);
    wait_peers(&mut busy, 1);
    let sender = std::thread::spawn(move || {
        push.send("wake").unwrap();
        push
    });
    let mut items = [
        PollItem::new(&mut quiet, Events::READABLE),
        PollItem::new(&mut busy, Events::READABLE),
    ];
    assert_eq!(poll(&mut items, Some(common::WATCHDOG)).unwrap(), 1);
    assert!(!items[0].is_readable());
    assert!(items[1].is_readable());
    assert_eq!(items[1].socket().recv_string().unwrap(), "wake");
    let mut push = sender.join().unwrap();
    let mut items = [PollItem::new(
        &mut push,
        Events::READABLE | Events::WRITABLE,
    )];
    assert_eq!(poll(&mut items, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(
        items[0].events(),
        Events::WRITABLE,
        "a PUSH with a peer is writable only"
    );
}

fn poll_times_out_with_nothing_ready(net: &Net) {
    let (mut a, _) = net.bound(SocketType::Pull);
    let (mut b, _) = net.bound(SocketType::Sub);
    let mut items = [
        PollItem::new(&mut a, Events::READABLE),
        PollItem::new(&mut b, Events::READABLE),
    ];
    assert_eq!(
        poll(&mut items, Some(Duration::from_millis(20))).unwrap(),
        0
    );
    assert!(items.iter().all(|i| i.events().is_empty()));
}

fn a_broker_proxy_connects_clients_to_workers(net: &Net) {
    let (mut frontend, ep_front) = net.bound(SocketType::Router);
    let (mut backend, ep_back) = net.bound(SocketType::Dealer);
    let (mut control, ep_control) = net.bound(SocketType::Pair);
    let mut stop = net.connected(SocketType::Pair, &ep_control);
    wait_peers(&mut control, 1);
    let reps: Vec<_> = (0..2)
        .map(|_| net.connected(SocketType::Rep, &ep_back))
        .collect();
    // Each worker answers two jobs: both must be there before the first job is dealt, or the
    // first would get three (a DEALER deals only to the peers it has).
    wait_peers(&mut backend, 2);
    let broker = std::thread::spawn(move || {
        proxy_steerable(&mut frontend, &mut backend, &mut control).unwrap();
    });
    let workers: Vec<_> = reps
        .into_iter()
        .enumerate()
        .map(|(w, mut rep)| {
            std::thread::spawn(move || {
                for _ in 0..2 {
                    let q = rep.recv_string().unwrap();
                    rep.send(format!("{q} by worker {w}")).unwrap();
                }
            })
        })
        .collect();
    let mut clients: Vec<_> = (0..4)
        .map(|_| net.connected(SocketType::Req, &ep_front))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(format!("job {i}")).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let answer = c.recv_string().unwrap();
        assert!(
            answer.starts_with(&format!("job {i} by worker ")),
            "{answer}"
        );
    }
    for w in workers {
        w.join().unwrap();
    }
    stop.send("TERMINATE").unwrap();
    broker.join().unwrap();
}

fn a_forwarder_proxy_carries_subscriptions_up_and_messages_down(net: &Net) {
    let (mut publisher, ep_pub) = net.bound(SocketType::Pub);
    let mut xsub = net.connected(SocketType::XSub, &ep_pub);
    let (mut xpub, ep_xpub) = net.bound(SocketType::XPub);
    let (mut control, ep_control) = net.bound(SocketType::Pair);
    let mut stop = net.connected(SocketType::Pair, &ep_control);
    wait_peers(&mut control, 1);
    let mut sub = net.connected(SocketType::Sub, &ep_xpub);
    sub.subscribe("news").unwrap();
    let forwarder = std::thread::spawn(move || {
        proxy_steerable(&mut xsub, &mut xpub, &mut control).unwrap();
    });
    // The subscription travels SUB -> XPUB -> proxy -> XSUB -> PUB; publish until it has arrived.
    sub.set_rcvtimeo(Some(Duration::from_millis(5))).unwrap();
    let deadline = std::time::Instant::now() + common::WATCHDOG;
    let got = loop {
        publisher.send("sport: no").unwrap();
        publisher.send("news: yes").unwrap();
        if let Ok(m) = sub.recv_string() {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "nothing forwarded");
    };
    assert_eq!(got, "news: yes");
    stop.send("TERMINATE").unwrap();
    forwarder.join().unwrap();
}
