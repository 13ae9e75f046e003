//! One-way latency (half a REQ/REP round trip) for every transport and size, zring beside libzmq,
//! the bare limit and, over tcp, the pure-Rust ZeroMQs. `cargo bench -p zring-benches --bench
//! latency -- 'tcp/.*/64$'` runs some rows.

use zring_benches::Pattern;

fn latency(c: &mut criterion::Criterion) {
    zring_benches::suite(c, "latency", Pattern::ReqRep, false, |_, _| false);
}

fn main() {
    zring_benches::main(&[latency]);
}
