//! Property tests: whatever is encoded decodes back to itself wherever the byte stream is cut, and
//! arbitrary bytes never make the codec panic.

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use zring_zmtp::testing::{Pair, Side};
use zring_zmtp::{flags, fuzzing, Command, Config, FrameDecoder, SocketType, Transmit};

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Message(Vec<Vec<u8>>),
    Command(Command),
}

fn body(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        2 => proptest::collection::vec(any::<u8>(), 240..270),
        1 => proptest::collection::vec(any::<u8>(), 0..max),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let bytes = || body(300).prop_map(Bytes::from);
    prop_oneof![
        bytes().prop_map(Command::Subscribe),
        bytes().prop_map(Command::Cancel),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..=16)).prop_map(|(ttl, c)| {
            Command::Ping {
                ttl,
                context: Bytes::from(c),
            }
        }),
        proptest::collection::vec(any::<u8>(), 0..=16).prop_map(|c| Command::Pong {
            context: Bytes::from(c)
        }),
        proptest::collection::vec(any::<u8>(), 0..=255).prop_map(|r| Command::Error {
            reason: Bytes::from(r)
        }),
        ("[A-Z]{1,12}", body(50)).prop_filter_map("a known name", |(name, data)| {
            let known = ["READY", "ERROR", "SUBSCRIBE", "CANCEL", "PING", "PONG"];
            (!known.contains(&name.as_str())).then(|| Command::Unknown {
                name: Bytes::from(name),
                data: Bytes::from(data),
            })
        }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => proptest::collection::vec(body(3000), 1..5).prop_map(Item::Message),
        1 => command().prop_map(Item::Command),
    ]
}

/// Cut points: sizes of successive pieces, cycled; a list of just `1` is one byte at a time.
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![1]),
        proptest::collection::vec(1usize..300, 1..20),
        proptest::collection::vec(1usize..5000, 1..5),
    ]
}

fn encode(items: &[Item], inline_max: usize) -> Vec<u8> {
    let mut t = Transmit::with_inline_max(inline_max);
    for item in items {
        match item {
            Item::Message(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    let more = if i + 1 < parts.len() { flags::MORE } else { 0 };
                    t.push_frame(Bytes::from(p.clone()), more);
                }
            }
            Item::Command(c) => c.encode(&mut t),
        }
    }
    t.to_vec()
}

fn decode(wire: &[u8], cuts: &[usize]) -> Vec<Item> {
    let mut decoder = FrameDecoder::new(Some(1 << 20));
    let mut items = Vec::new();
    let mut parts = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().cycle() {
        if at >= wire.len() {
            break;
        }
        let end = (at + cut).min(wire.len());
        let mut input = Bytes::copy_from_slice(&wire[at..end]);
        at = end;
        while let Some(frame) = decoder.decode(&mut input).unwrap() {
            if frame.is_command() {
                items.push(Item::Command(Command::decode(frame.body).unwrap()));
            } else {
                parts.push(frame.body.to_vec());
                if !frame.more() {
                    items.push(Item::Message(std::mem::take(&mut parts)));
                }
            }
        }
    }
    assert!(decoder.is_idle());
    items
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn messages_and_commands_round_trip_at_any_cut(
        items in proptest::collection::vec(item(), 0..12),
        cuts in cuts(),
        inline_max in 0usize..2000,
    ) {
        let wire = encode(&items, inline_max);
        prop_assert_eq!(decode(&wire, &cuts), items);
    }

    #[test]
    fn views_decode_the_same_frames_as_owned_decoding_at_any_cut(
        items in proptest::collection::vec(item(), 0..12),
        cut in 1usize..400,
    ) {
        let wire = encode(&items, 64);
        let mut owned = FrameDecoder::new(None);
        let mut viewer = FrameDecoder::new(None);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for piece in wire.chunks(cut) {
            let mut input = Bytes::copy_from_slice(piece);
            while let Some(f) = owned.decode(&mut input).unwrap() {
                a.push(f);
            }
            viewer
                .decode_all(&Bytes::copy_from_slice(piece), |v| {
                    b.push(v.into_frame());
                    Ok::<(), zring_zmtp::PeerMisbehaved>(())
                })
                .unwrap();
        }
        prop_assert_eq!(a, b);
        prop_assert!(owned.is_idle() && viewer.is_idle());
    }

    #[test]
    fn bodies_read_in_place_decode_the_same_frames(
        items in proptest::collection::vec(item(), 0..12),
        cuts in cuts(),
        min in 1usize..3000,
    ) {
        // As the engine reads: a long body's rest straight into its buffer whenever the decoder
        // lends it, the stream into buffers of its own otherwise.
        let wire = encode(&items, 64);
        let mut decoder = FrameDecoder::new(None);
        let mut frames = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + cut).min(wire.len());
            let filled = decoder.fill_body(min, |buf, room| {
                let before = buf.len();
                // The room is never more than twice what arrived, or 8 KiB.
                assert!(room <= before.max(8192));
                let take = room.min(end - at);
                buf.extend_from_slice(&wire[at..at + take]);
                at += take;
            });
            match filled {
                Some(frame) => frames.extend(frame),
                None => {
                    let mut input = Bytes::copy_from_slice(&wire[at..end]);
                    at = end;
                    while let Some(f) = decoder.decode(&mut input).unwrap() {
                        frames.push(f);
                    }
                }
            }
        }
        prop_assert!(decoder.is_idle());
        let mut whole = FrameDecoder::new(None);
        let mut expected = Vec::new();
        let mut input = Bytes::from(wire);
        while let Some(f) = whole.decode(&mut input).unwrap() {
            expected.push(f);
        }
        prop_assert_eq!(frames, expected);
    }

    #[test]
    fn messages_cross_a_connection_pair_at_any_chunk_size(
        messages in proptest::collection::vec(proptest::collection::vec(body(3000), 1..5), 1..10),
        chunk in 1usize..400,
    ) {
        let mut pair = Pair::new(
            Config::new(SocketType::Dealer),
            Config::new(SocketType::Router),
            Instant::now(),
        )
        .unwrap();
        pair.chunk = chunk;
        pair.drive().unwrap();
        for m in &messages {
            pair.a.send_message(m.iter().cloned().map(Bytes::from)).unwrap();
        }
        pair.drive().unwrap();
        let got: Vec<Vec<Vec<u8>>> = pair
            .messages(Side::B)
            .into_iter()
            .map(|m| m.into_iter().map(|b| b.to_vec()).collect())
            .collect();
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        fuzzing::connection_input(&data, Instant::now());
        fuzzing::frames_round_trip(&data);
        fuzzing::metadata_round_trip(&data);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_handshake_never_panic(
        select in any::<u8>(),
        cut in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let mut input = vec![select | 0x30, cut];
        input.extend(data);
        fuzzing::connection_input(&input, Instant::now());
    }
}
