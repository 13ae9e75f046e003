//! Streaming: PUSH/PULL for every transport and size (zring beside libzmq, the bare limit and, over
//! tcp, the pure-Rust ZeroMQs), and PUB to 1 and to 8 subscribers over tcp, 64 B. `cargo bench -p
//! zring-benches --bench throughput -- 'pushpull/tcp/zring/64$'` runs one row.

use criterion::{BenchmarkId, Criterion, Throughput};
use zring_benches::{bench_row, Imp, Pattern, Row, Transport};

const SIZES: [usize; 4] = [64, 1024, 65536, 1 << 20];

fn push_pull(c: &mut Criterion) {
    for transport in [
        Transport::Tcp,
        Transport::Ipc,
        Transport::Inproc,
        Transport::Shm,
    ] {
        let mut g = c.benchmark_group(format!("pushpull/{}", transport.name()));
        for size in SIZES {
            g.throughput(Throughput::Elements(1));
            // rzmq 0.5.28 (io_uring sessions) stops delivering a stream of 64 KiB messages after
            // some thousands (the PULL side waits forever), so it has no rows from 64 KiB up.
            let stalls = |imp: &Imp| *imp == Imp::Rzmq && size >= 65536;
            for imp in Imp::ALL
                .into_iter()
                .filter(|i| i.runs(transport) && !stalls(i))
            {
                let row = Row {
                    imp,
                    transport,
                    pattern: Pattern::PushPull,
                    size,
                };
                bench_row(&mut g, BenchmarkId::new(imp.name(), size), row);
            }
        }
        g.finish();
    }
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("pubsub/tcp/64");
    for subscribers in [1, 8] {
        // Messages delivered, summed over the subscribers.
        g.throughput(Throughput::Elements(subscribers as u64));
        for imp in [Imp::Zring, Imp::Libzmq] {
            let row = Row {
                imp,
                transport: Transport::Tcp,
                pattern: Pattern::PubSub(subscribers),
                size: 64,
            };
            bench_row(&mut g, BenchmarkId::new(imp.name(), subscribers), row);
        }
    }
    g.finish();
}

fn main() {
    zring_benches::main(&[push_pull, fanout]);
}
