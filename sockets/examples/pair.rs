//! A PAIR exchange between threads over inproc: each step signals the next, as in the guide's
//! multithreaded relay. Run: `cargo run -p zring --example pair`.

use zring::{Context, SocketType};

fn main() -> zring::Result<()> {
    let ctx = Context::new();
    let mut receiver = ctx.socket(SocketType::Pair)?;
    receiver.bind("inproc://step3")?;

    let step2_ctx = ctx.clone();
    let step2 = std::thread::spawn(move || -> zring::Result<()> {
        let mut from_step1 = step2_ctx.socket(SocketType::Pair)?;
        from_step1.bind("inproc://step2")?;
        let step1_ctx = step2_ctx.clone();
        let step1 = std::thread::spawn(move || -> zring::Result<()> {
            let mut to_step2 = step1_ctx.socket(SocketType::Pair)?;
            to_step2.connect("inproc://step2")?;
            println!("step 1 ready, signaling step 2");
            to_step2.send("READY")
        });
        let signal = from_step1.recv_string()?;
        step1.join().map_err(|_| zring::Error::InvalidState)??;
        let mut to_step3 = step2_ctx.socket(SocketType::Pair)?;
        to_step3.connect("inproc://step3")?;
        println!("step 2 got {signal}, signaling step 3");
        to_step3.send("READY")
    });
    let signal = receiver.recv_string()?;
    step2.join().map_err(|_| zring::Error::InvalidState)??;
    println!("step 3 got {signal}: test successful");
    Ok(())
}
