//! The ventilator / workers / sink pipeline passing JSON: the ventilator PUSHes 100 tasks to two
//! workers, each worker does its task and PUSHes a result to the sink, which collects them in order of
//! arrival. Run: `cargo run -p zring --example pipeline`, or with `-- external` to leave the work to
//! two workers of another program (pyzmq's taskwork.py) on ports 5557 and 5558.

use serde::{Deserialize, Serialize};
use zring::{Context, SocketType};

const TASKS: u32 = 100;

#[derive(Debug, Serialize, Deserialize)]
struct Task {
    id: u32,
    /// Work to do: the sum of 0..workload.
    workload: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    id: u32,
    worker: usize,
    sum: u64,
}

fn worker(ctx: Context, n: usize) -> zring::Result<()> {
    let mut receiver = ctx.socket(SocketType::Pull)?;
    receiver.connect("tcp://127.0.0.1:5557")?;
    let mut sender = ctx.socket(SocketType::Push)?;
    sender.connect("tcp://127.0.0.1:5558")?;
    loop {
        let task: Task = receiver.recv_json()?;
        if task.workload == 0 {
            return Ok(());
        }
        let sum = (0..task.workload).sum();
        sender.send_json(&Outcome {
            id: task.id,
            worker: n,
            sum,
        })?;
    }
}

fn main() -> zring::Result<()> {
    let ctx = Context::new();
    let mut sink = ctx.socket(SocketType::Pull)?;
    sink.bind("tcp://127.0.0.1:5558")?;
    let mut ventilator = ctx.socket(SocketType::Push)?;
    ventilator.bind("tcp://127.0.0.1:5557")?;
    let external = std::env::args().nth(1).as_deref() == Some("external");
    let workers: Vec<_> = (0..2)
        .filter(|_| !external)
        .map(|n| {
            let ctx = ctx.clone();
            std::thread::spawn(move || worker(ctx, n))
        })
        .collect();
    // Wait until both workers are connected, so that the tasks are shared between them.
    while ventilator.peer_count() < 2 {
        std::thread::yield_now();
    }
    for id in 0..TASKS {
        ventilator.send_json(&Task {
            id,
            workload: 1000 + u64::from(id) * 10,
        })?;
    }
    let mut per_worker = [0u32; 2];
    for _ in 0..TASKS {
        let outcome: Outcome = sink.recv_json()?;
        if let Some(count) = per_worker.get_mut(outcome.worker) {
            *count += 1;
        }
        println!(
            "task {:3} done by worker {}: {}",
            outcome.id, outcome.worker, outcome.sum
        );
    }
    // Stop the workers: a task with no work.
    for _ in 0..2 {
        ventilator.send_json(&Task { id: 0, workload: 0 })?;
    }
    for w in workers {
        w.join().map_err(|_| zring::Error::InvalidState)??;
    }
    println!(
        "{TASKS} results collected: {} by worker 0, {} by worker 1",
        per_worker[0], per_worker[1]
    );
    Ok(())
}
