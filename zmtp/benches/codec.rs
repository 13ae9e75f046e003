//! Codec throughput: encode and decode of 64 B, 1 KiB and 64 KiB messages, in bytes per second (the
//! message rate is bytes / (size + header)). Run: `cargo bench -p zring-zmtp --bench codec`.
#![allow(
    missing_docs,
    reason = "a bench binary has no API; criterion's macros generate undocumented items"
)]

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zring_zmtp::testing::Pair;
use zring_zmtp::{
    Config, Connection, Event, EventRef, FrameDecoder, FrameView, PeerMisbehaved, SocketType,
    Transmit,
};

const SIZES: [usize; 3] = [64, 1024, 64 * 1024];

/// How many messages one iteration moves: about 4 MiB of payload, at least 64 messages.
fn batch(size: usize) -> usize {
    ((4 << 20) / size).max(64)
}

fn wire(size: usize, n: usize) -> Bytes {
    let mut t = Transmit::new();
    let body = Bytes::from(vec![0xA5u8; size]);
    for _ in 0..n {
        t.push_frame(body.clone(), 0);
    }
    Bytes::from(t.to_vec())
}

/// What a socket does with a frame view: a small body is copied into an inline buffer (as `Msg` keeps
/// small messages), a large one is taken as a zero-copy slice.
fn consume(view: FrameView<'_>) {
    let body = view.body();
    if body.len() <= 64 {
        let mut inline = [0u8; 64];
        inline[..body.len()].copy_from_slice(body);
        black_box(&inline);
    } else {
        black_box(view.into_bytes());
    }
}

/// A connection past its handshake, ready to decode messages.
fn ready_connection(now: Instant) -> Connection {
    let mut pair = Pair::new(
        Config::new(SocketType::Pull),
        Config::new(SocketType::Push),
        now,
    )
    .unwrap_or_else(|e| panic!("config: {e}"));
    pair.drive().unwrap_or_else(|e| panic!("handshake: {e:?}"));
    pair.a
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in SIZES {
        let n = batch(size);
        let input = wire(size, n);
        group.throughput(Throughput::Bytes((size * n) as u64));
        group.bench_with_input(
            BenchmarkId::new("frame_decoder", size),
            &input,
            |b, input| {
                b.iter(|| {
                    let mut decoder = FrameDecoder::new(None);
                    let mut data = input.clone();
                    let mut count = 0;
                    while let Ok(Some(frame)) = decoder.decode(&mut data) {
                        black_box(&frame);
                        count += 1;
                    }
                    assert_eq!(count, n);
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("views", size), &input, |b, input| {
            b.iter(|| {
                let mut decoder = FrameDecoder::new(None);
                let mut count = 0;
                decoder
                    .decode_all(input, |view| {
                        consume(view);
                        count += 1;
                        Ok::<(), PeerMisbehaved>(())
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(count, n);
            })
        });
        let now = Instant::now();
        let mut conn = ready_connection(now);
        group.bench_with_input(
            BenchmarkId::new("connection_views", size),
            &input,
            |b, input| {
                b.iter(|| {
                    let mut count = 0;
                    conn.handle_input_with(input, now, |event| {
                        if let EventRef::Frame(view) = event {
                            consume(view);
                            count += 1;
                        }
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(count, n);
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("connection", size), &input, |b, input| {
            b.iter(|| {
                conn.handle_input(input.clone(), now)
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut count = 0;
                while let Some(event) = conn.poll_event() {
                    if let Event::Frame(f) = event {
                        black_box(f);
                        count += 1;
                    }
                }
                assert_eq!(count, n);
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let n = batch(size);
        let body = Bytes::from(vec![0x5Au8; size]);
        group.throughput(Throughput::Bytes((size * n) as u64));
        let mut t = Transmit::new();
        group.bench_with_input(BenchmarkId::new("transmit", size), &body, |b, body| {
            b.iter(|| {
                for _ in 0..n {
                    t.push_frame(body.clone(), 0);
                }
                black_box(t.len());
                t.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
