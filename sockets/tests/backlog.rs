//! Backlogs: a sender far ahead of its receivers queues what the kernel's buffers and the stream's
//! batch cannot hold, and all of it must arrive although the sender goes quiet. In a test binary of
//! their own, so that what they queue (tens of megabytes) is not counted by the memory checks of the
//! other tcp tests, which run beside each other in one process.

#[allow(dead_code, reason = "shared helpers; this file uses the network ones")]
mod common;

use common::{pusher_up, sync_pubsub, Net, Transport, WATCHDOG};
use zring::{Error, Socket, SocketType};

/// Has `sender` queue `count` numbered messages while `receivers` read nothing, far more than the
/// kernel's buffers and the stream's batch hold: the rest waits in the socket's queue, which the I/O
/// thread must drain batch after batch on its own (the sender then waits outside the library), also
/// when the kernel takes each batch at once. Then every receiver must get every message, in order.
fn a_backlog_drains_while_the_sender_waits(
    mut sender: Socket,
    receivers: &mut [Socket],
    count: u32,
) {
    let (queued, all_queued) = std::sync::mpsc::channel::<()>();
    let (got_all, all_got) = std::sync::mpsc::channel::<()>();
    let sending = std::thread::spawn(move || {
        let mut body = [0x5Au8; 64];
        for i in 0..count {
            body[..4].copy_from_slice(&i.to_be_bytes());
            sender.send(&body[..]).unwrap();
        }
        queued.send(()).unwrap();
        all_got.recv_timeout(WATCHDOG * 4).unwrap();
        sender
    });
    all_queued.recv_timeout(WATCHDOG * 4).unwrap();
    for i in 0..count {
        for (k, r) in receivers.iter_mut().enumerate() {
            let m = r.recv().unwrap();
            assert_eq!(&m[..4], i.to_be_bytes(), "receiver {k}");
        }
    }
    got_all.send(()).unwrap();
    drop(sending.join().unwrap());
    for r in receivers {
        assert!(matches!(r.try_recv(), Err(Error::WouldBlock)));
    }
}

#[test]
fn a_backlog_behind_a_slow_receiver_drains_while_the_sender_makes_no_call() {
    for transport in [Transport::Tcp, Transport::Ipc] {
        let net = Net::new(transport);
        let (mut pull, ep) = net.bound(SocketType::Pull);
        let push = pusher_up(&net, &mut pull, &ep, |s| s.set_sndhwm(0).unwrap());
        a_backlog_drains_while_the_sender_waits(push, std::slice::from_mut(&mut pull), 300_000);
    }
}

#[test]
fn every_subscriber_gets_the_end_of_a_burst_while_the_publisher_makes_no_call() {
    // A publisher without a high-water mark drops nothing: its subscribers, slower than it, hold it
    // back through their streams, and what waits goes out when they read again.
    let net = Net::new(Transport::Tcp);
    let mut publisher = net.socket(SocketType::Pub);
    // Before the bind, as with libzmq: the connections it accepts take the options it had then.
    publisher.set_sndhwm(0).unwrap();
    let ep = net.bind(&mut publisher);
    let mut subs: Vec<Socket> = (0..3)
        .map(|_| {
            let mut sub = net.connected(SocketType::Sub, &ep);
            // The burst's messages begin with a zero octet (their number, big-endian, is below
            // 2^24); the probes that bring the other subscribers up do not.
            sub.subscribe("\0").unwrap();
            sync_pubsub(&mut publisher, &mut sub);
            sub
        })
        .collect();
    a_backlog_drains_while_the_sender_waits(publisher, &mut subs, 200_000);
}
