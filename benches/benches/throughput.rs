//! Streaming: PUSH/PULL for every transport and size (zring beside libzmq, the bare limit and, over
//! tcp, the pure-Rust ZeroMQs), and PUB to 1 and to 8 subscribers over tcp, 64 B. `cargo bench -p
//! zring-benches --bench throughput -- 'pushpull/tcp/zring/64$'` runs one row.

use criterion::{BenchmarkId, Criterion, Throughput};
use zring_benches::{bench_row, Imp, Pattern, Row, Transport};

fn push_pull(c: &mut Criterion) {
    // rzmq 0.5.28 (io_uring sessions) stops delivering a stream of 64 KiB messages after some
    // thousands (the PULL side waits forever), so it has no rows from 64 KiB up.
    let stalls = |imp, size| imp == Imp::Rzmq && size >= 65536;
    zring_benches::suite(c, "pushpull", Pattern::PushPull, true, stalls);
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
