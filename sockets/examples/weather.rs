//! The weather-update PUB/SUB: a server publishes "zipcode temperature humidity" for random zip
//! codes; a client subscribes to one zip code (`subscribe("10001 ")`), averages 20 updates, and the
//! server stops when the client is done. Run: `cargo run -p zring --example weather`, or only the
//! client against another server (pyzmq's wuserver.py): `-- client tcp://localhost:5556`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zring::{Context, SocketType};

const UPDATES: usize = 20;
const MAX_PUBLISHED: usize = 50_000_000;

/// A small deterministic pseudo-random sequence (xorshift), so that no crate is needed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Subscribes to zip code 10001 at `endpoint` and returns the average of 20 temperatures.
fn client(ctx: &Context, endpoint: &str) -> zring::Result<f64> {
    let mut sub = ctx.socket(SocketType::Sub)?;
    sub.connect(endpoint)?;
    sub.subscribe("10001 ")?;
    let mut total = 0i64;
    for _ in 0..UPDATES {
        let update = sub.recv_string()?;
        let temperature: i64 = update
            .split_whitespace()
            .nth(1)
            .and_then(|t| t.parse().ok())
            .ok_or(zring::Error::InvalidState)?;
        total += temperature;
    }
    Ok(total as f64 / UPDATES as f64)
}

fn main() -> zring::Result<()> {
    let ctx = Context::new();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        let endpoint = args.get(2).map_or("tcp://localhost:5556", |s| s);
        let average = client(&ctx, endpoint)?;
        println!("average temperature for zip code 10001 over {UPDATES} updates: {average:.1} F");
        return Ok(());
    }
    let mut publisher = ctx.socket(SocketType::Pub)?;
    publisher.bind("tcp://127.0.0.1:5556")?;
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let server = std::thread::spawn(move || -> zring::Result<usize> {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut published = 0;
        // Zip codes 10000-10019, so that 10001 comes up often.
        while !stop.load(Ordering::Relaxed) && published < MAX_PUBLISHED {
            let zipcode = 10000 + rng.below(20);
            let temperature = rng.below(215) as i64 - 80;
            let humidity = rng.below(50) + 10;
            publisher.send(format!("{zipcode:05} {temperature} {humidity}"))?;
            published += 1;
        }
        Ok(published)
    });

    let average = client(&ctx, "tcp://127.0.0.1:5556")?;
    done.store(true, Ordering::Relaxed);
    let published = server.join().map_err(|_| zring::Error::InvalidState)??;
    println!(
        "average temperature for zip code 10001 over {UPDATES} updates: {average:.1} F ({published} published in all)"
    );
    Ok(())
}
