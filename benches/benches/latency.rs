//! One-way latency (half a REQ/REP round trip) for every transport and size, zring beside libzmq,
//! the bare limit and, over tcp, the pure-Rust ZeroMQs. `cargo bench -p zring-benches --bench
//! latency -- 'tcp/64'` runs one row.

use criterion::{BenchmarkId, Criterion};
use zring_benches::{bench_row, Imp, Pattern, Row, Transport};

const SIZES: [usize; 4] = [64, 1024, 65536, 1 << 20];

fn latency(c: &mut Criterion) {
    for transport in [
        Transport::Tcp,
        Transport::Ipc,
        Transport::Inproc,
        Transport::Shm,
    ] {
        let mut g = c.benchmark_group(format!("latency/{}", transport.name()));
        for size in SIZES {
            for imp in Imp::ALL.into_iter().filter(|i| i.runs(transport)) {
                let row = Row {
                    imp,
                    transport,
                    pattern: Pattern::ReqRep,
                    size,
                };
                bench_row(&mut g, BenchmarkId::new(imp.name(), size), row);
            }
        }
        g.finish();
    }
}

fn main() {
    zring_benches::main(&[latency]);
}
