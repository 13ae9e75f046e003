//! Drives a real libzmq socket through the codec over TCP and prints what was exchanged.
//!
//! A libzmq ROUTER binds on loopback; a plain `TcpStream`, driven only by `zring-zmtp`, connects to it as
//! a DEALER, completes the handshake, and exchanges multipart messages both ways. Then a libzmq SUB
//! connects to a codec-driven PUB listener and subscribes. Run: `cargo run -p zring-zmtp --example
//! libzmq_exchange`.

#[allow(
    dead_code,
    reason = "the driver is shared with the tests; this example uses part of it"
)]
#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{TcpListener, TcpStream};

use bytes::Bytes;
use common::Wire;
use zring_zmtp::{Config, Event, SocketType};

fn show(parts: &[impl AsRef<[u8]>]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .map(|p| {
            let p = p.as_ref();
            if p.len() > 24 {
                format!("<{} bytes>", p.len())
            } else {
                format!("{:?}", String::from_utf8_lossy(p))
            }
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = zmq::Context::new();

    // 1. The codec as a DEALER, connecting to a libzmq ROUTER.
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_linger(0)?;
    router.bind("tcp://127.0.0.1:*")?;
    let endpoint = router.get_last_endpoint()?.map_err(|_| "endpoint")?;
    println!("libzmq ROUTER bound at {endpoint}");

    let mut config = Config::new(SocketType::Dealer);
    config.identity = Bytes::from_static(b"codec-dealer");
    let stream = TcpStream::connect(endpoint.trim_start_matches("tcp://"))?;
    let mut wire = Wire::new(stream, config);
    let peer = wire.ready();
    println!(
        "codec DEALER: handshake done with a {} speaking {:?}",
        peer.socket_type, peer.version
    );

    let request: Vec<Bytes> = vec![
        Bytes::from_static(b"hello"),
        Bytes::from_static(b"from the codec"),
        Bytes::from(vec![7u8; 65536]),
    ];
    wire.send(request.clone());
    println!("codec DEALER  -> sent     {}", show(&request));
    let got = router.recv_multipart(0)?;
    println!("libzmq ROUTER <- received {}", show(&got));

    let reply = vec![
        got[0].clone(),
        b"hello back".to_vec(),
        b"from libzmq".to_vec(),
    ];
    router.send_multipart(&reply, 0)?;
    println!("libzmq ROUTER -> sent     {}", show(&reply));
    let back = wire.recv();
    println!("codec DEALER  <- received {}", show(&back));

    // 2. The codec as a PUB on a listener; libzmq's SUB connects and subscribes.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_linger(0)?;
    sub.set_subscribe(b"weather")?;
    sub.connect(&format!("tcp://{}", listener.local_addr()?))?;
    let (stream, _) = listener.accept()?;
    let mut publisher = Wire::new(stream, Config::new(SocketType::Pub));
    publisher.ready();
    let Event::Subscribe(topic) = publisher.next_event() else {
        return Err("expected the SUB's subscription".into());
    };
    println!(
        "codec PUB     <- libzmq SUB subscribed to {}",
        show(&[topic])
    );
    publisher.send(["weather", "22 degrees"]);
    println!(
        "libzmq SUB    <- received {}",
        show(&sub.recv_multipart(0)?)
    );
    println!(
        "octets written by the codec: {} (DEALER), {} (PUB)",
        wire.written, publisher.written
    );
    Ok(())
}
