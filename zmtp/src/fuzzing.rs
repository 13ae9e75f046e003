//! Entry points for the fuzz targets (`fuzz/`) and for the test that replays their corpus. Each takes
//! arbitrary bytes, must never panic, and asserts properties, not only survival. Not part of the API.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    Command, Config, Connection, Event, FrameDecoder, Greeting, Mechanism, Metadata, SocketType,
    Transmit,
};

/// The largest frame the fuzzed connection accepts.
const MAX_FRAME: u64 = 4096;

/// Feeds `data` to a connection as everything a peer sends. Octet 0 chooses our socket type (low
/// nibble) and whether a valid greeting (bit 4) and a valid READY from a compatible peer (bit 5) go
/// before the rest; octet 1 is the size of the pieces the stream is cut into (0 counts as 1).
///
/// Checks: no frame over the maximum; no more body octets out than in; after an error every call
/// fails again; what we send stays small (greeting, READY, one ERROR, one PONG, PINGs).
pub fn connection_input(data: &[u8], now: Instant) {
    let Some((&[select, cut], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let Some(&ours) = SocketType::ALL.get(usize::from(select & 0x0F) % SocketType::ALL.len())
    else {
        return;
    };
    let mut stream = Vec::with_capacity(rest.len() + 128);
    if select & 0x10 != 0 {
        stream.extend_from_slice(&Greeting::ours(Mechanism::NULL, false).encode());
    }
    if select & 0x20 != 0 {
        if let Some(peer) = SocketType::ALL.into_iter().find(|t| ours.is_compatible(*t)) {
            let mut md = Metadata::new();
            let _ = md.push("Socket-Type", peer.as_str());
            let mut ready = Transmit::new();
            Command::Ready(md).encode(&mut ready);
            stream.extend(ready.to_vec());
        }
    }
    stream.extend_from_slice(rest);

    let mut config = Config::new(ours);
    config.max_msg_size = Some(MAX_FRAME);
    config.max_frames = Some(64);
    config.heartbeat_ivl = Some(Duration::from_millis(3));
    config.handshake_ivl = Some(Duration::from_millis(50));
    let Ok(mut conn) = Connection::new(config, now) else {
        return;
    };
    let mut body_octets = 0usize;
    let mut clock = now;
    let mut failed = None;
    for piece in stream.chunks(usize::from(cut).max(1)) {
        clock += Duration::from_millis(1);
        let result = conn
            .handle_input(Bytes::copy_from_slice(piece), clock)
            .and_then(|()| conn.handle_timeout(clock));
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Frame(f) => {
                    assert!(f.body.len() as u64 <= MAX_FRAME);
                    body_octets += f.body.len();
                }
                Event::Subscribe(t) | Event::Cancel(t) => {
                    assert!(ours.is_publisher());
                    assert!(t.len() as u64 <= MAX_FRAME);
                }
                Event::Ready(peer) => assert!(ours.is_compatible(peer.socket_type)),
            }
        }
        if let Err(e) = result {
            failed = Some(e);
            break;
        }
    }
    assert!(body_octets <= stream.len());
    if let Some(e) = failed {
        assert_eq!(conn.error(), Some(&e));
        assert_eq!(conn.handle_input(Bytes::from_static(b"x"), clock), Err(e));
        assert!(!conn.is_ready());
    }
    let mut out = Transmit::new();
    conn.poll_transmit(&mut out);
    assert!(out.len() <= 64 + 64 + 300 + 64 + 9 * stream.len());
}

/// Decodes metadata; whatever decodes encodes back to exactly the input (the encoding is canonical).
pub fn metadata_round_trip(data: &[u8]) {
    if let Ok(md) = Metadata::decode(Bytes::copy_from_slice(data)) {
        let mut out = Vec::new();
        md.encode(&mut out);
        assert_eq!(out, data);
        assert_eq!(md.encoded_len(), data.len());
    }
}

/// Decodes frames from arbitrary bytes cut at the size in octet 0, both one owned frame at a time
/// ([`FrameDecoder::decode`]) and as views ([`FrameDecoder::decode_all`]): both give the same frames and
/// the same verdict. Re-encodes what decoded and decodes that again in one piece: the same frames come
/// back, and no more body octets than input.
pub fn frames_round_trip(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let pieces: Vec<Bytes> = rest
        .chunks(usize::from(cut).max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let mut decoder = FrameDecoder::new(Some(MAX_FRAME));
    let mut frames = Vec::new();
    let mut failed = false;
    'outer: for piece in &pieces {
        let mut input = piece.clone();
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'outer;
                }
            }
        }
    }
    let mut viewer = FrameDecoder::new(Some(MAX_FRAME));
    let mut viewed = Vec::new();
    let view_failed = pieces.iter().any(|piece| {
        viewer
            .decode_all(piece, |v| {
                viewed.push(v.into_frame());
                Ok::<(), crate::PeerMisbehaved>(())
            })
            .is_err()
    });
    assert_eq!(viewed, frames);
    assert_eq!(view_failed, failed);

    assert!(frames.iter().map(|f| f.body.len()).sum::<usize>() <= rest.len());
    let mut out = Transmit::with_inline_max(16);
    for f in &frames {
        out.push_frame(f.body.clone(), f.flags);
    }
    let mut again = Bytes::from(out.to_vec());
    let mut decoder = FrameDecoder::new(Some(MAX_FRAME));
    for f in &frames {
        assert_eq!(decoder.decode(&mut again).ok().flatten().as_ref(), Some(f));
    }
    assert!(again.is_empty() && decoder.is_idle());
}
