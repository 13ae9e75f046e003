//! A ROUTER/DEALER broker (`proxy`) between REQ clients and REP workers, over tcp. Clients send 10
//! requests each; workers answer; a control socket stops the broker. Run:
//! `cargo run -p zring --example broker`.

use zring::{proxy_steerable, Context, SocketType};

const CLIENTS: usize = 3;
const WORKERS: usize = 2;
const REQUESTS: usize = 10;

fn main() -> zring::Result<()> {
    let ctx = Context::new();
    let mut frontend = ctx.socket(SocketType::Router)?;
    frontend.bind("tcp://127.0.0.1:5559")?;
    let mut backend = ctx.socket(SocketType::Dealer)?;
    backend.bind("tcp://127.0.0.1:5560")?;
    let mut control = ctx.socket(SocketType::Pair)?;
    control.bind("inproc://broker-control")?;
    let mut stop = ctx.socket(SocketType::Pair)?;
    stop.connect("inproc://broker-control")?;
    let broker =
        std::thread::spawn(move || proxy_steerable(&mut frontend, &mut backend, &mut control));

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let ctx = ctx.clone();
            std::thread::spawn(move || -> zring::Result<usize> {
                let mut rep = ctx.socket(SocketType::Rep)?;
                rep.set_rcvtimeo(Some(std::time::Duration::from_millis(500)))?;
                rep.connect("tcp://127.0.0.1:5560")?;
                let mut served = 0;
                // Serve until no request has come for half a second.
                while let Ok(request) = rep.recv_string() {
                    rep.send(format!("{request} -> worker {w}"))?;
                    served += 1;
                }
                Ok(served)
            })
        })
        .collect();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let ctx = ctx.clone();
            std::thread::spawn(move || -> zring::Result<()> {
                let mut req = ctx.socket(SocketType::Req)?;
                req.connect("tcp://127.0.0.1:5559")?;
                for n in 0..REQUESTS {
                    req.send(format!("client {c} request {n}"))?;
                    println!("{}", req.recv_string()?);
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().map_err(|_| zring::Error::InvalidState)??;
    }
    let mut served = 0;
    for w in workers {
        served += w.join().map_err(|_| zring::Error::InvalidState)??;
    }
    stop.send("TERMINATE")?;
    broker.join().map_err(|_| zring::Error::InvalidState)??;
    println!("{served} requests served through the broker");
    Ok(())
}
