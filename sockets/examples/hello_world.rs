//! The hello-world REQ/REP pair: a server answers "World" to each "Hello". Run:
//! `cargo run -p zring --example hello_world` (or start only one side with `server` or `client` and
//! an endpoint, e.g. against pyzmq's hwserver.py: `-- client tcp://localhost:5555`).

use zring::{Context, SocketType};

fn server(ctx: &Context, endpoint: &str, requests: usize) -> zring::Result<()> {
    let mut rep = ctx.socket(SocketType::Rep)?;
    rep.bind(endpoint)?;
    for _ in 0..requests {
        let request = rep.recv_string()?;
        println!("server: received {request}");
        rep.send("World")?;
    }
    Ok(())
}

fn client(ctx: &Context, endpoint: &str, requests: usize) -> zring::Result<()> {
    let mut req = ctx.socket(SocketType::Req)?;
    req.connect(endpoint)?;
    for n in 0..requests {
        req.send("Hello")?;
        let reply = req.recv_string()?;
        println!("client: request {n} got {reply}");
    }
    Ok(())
}

fn main() -> zring::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let ctx = Context::new();
    match args.get(1).map(String::as_str) {
        Some("server") => server(&ctx, args.get(2).map_or("tcp://*:5555", |s| s), 10),
        Some("client") => client(&ctx, args.get(2).map_or("tcp://localhost:5555", |s| s), 10),
        _ => {
            let server_ctx = ctx.clone();
            let s = std::thread::spawn(move || server(&server_ctx, "tcp://127.0.0.1:5555", 10));
            client(&ctx, "tcp://127.0.0.1:5555", 10)?;
            s.join().map_err(|_| zring::Error::InvalidState)?
        }
    }
}
