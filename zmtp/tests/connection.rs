//! The connection state machine against the specs (23, 37) and the conformance checklist: golden bytes,
//! scripted raw peers, hostile input, timers on a simulated clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zring_zmtp::testing::{Pair, Side};
use zring_zmtp::{
    Config, Connection, Error, Event, EventRef, Incompatible, Mechanism, PeerMisbehaved,
    SocketType, TimeoutKind, Transmit, UsageError, Version,
};

fn config(t: SocketType) -> Config {
    Config::new(t)
}

fn greeting(major: u8, minor: u8) -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = major;
    g[11] = minor;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A command frame (short form) around `body`.
fn cmd(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, u8::try_from(body.len()).unwrap()];
    out.extend_from_slice(body);
    out
}

fn ready(socket_type: &str, identity: Option<&str>) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    if let Some(id) = identity {
        body.push(8);
        body.extend_from_slice(b"Identity");
        body.extend_from_slice(&(id.len() as u32).to_be_bytes());
        body.extend_from_slice(id.as_bytes());
    }
    cmd(&body)
}

/// A connection of type `t` facing a scripted raw peer.
struct Raw {
    conn: Connection,
    now: Instant,
    events: Vec<Event>,
}

impl Raw {
    fn new(t: SocketType) -> Raw {
        Raw::with(config(t))
    }

    fn with(cfg: Config) -> Raw {
        let now = Instant::now();
        Raw {
            conn: Connection::new(cfg, now).unwrap(),
            now,
            events: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let r = self
            .conn
            .handle_input(Bytes::copy_from_slice(bytes), self.now);
        self.events
            .extend(std::iter::from_fn(|| self.conn.poll_event()));
        r
    }

    /// A peer of type `peer` (version 3.1) greets and sends READY.
    fn handshake(t: SocketType, peer: &str) -> Raw {
        let mut raw = Raw::new(t);
        raw.feed(&greeting(3, 1)).unwrap();
        raw.feed(&ready(peer, None)).unwrap();
        assert!(raw.conn.is_ready());
        raw.out();
        raw
    }

    fn out(&mut self) -> Vec<u8> {
        let mut t = Transmit::new();
        self.conn.poll_transmit(&mut t);
        t.to_vec()
    }

    fn frames(&self) -> Vec<(Vec<u8>, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Frame(f) => Some((f.body.to_vec(), f.more())),
                _ => None,
            })
            .collect()
    }
}

// ---- A. Greeting -----------------------------------------------------------------------------------

#[test]
fn whole_greeting_and_ready_are_sent_before_anything_is_read() {
    // Checklist 3: libzmq sends its greeting in stages and waits for ours; we send all of it up front.
    let mut raw = Raw::new(SocketType::Dealer);
    let out = raw.out();
    assert_eq!(&out[..64], &greeting(3, 1)[..]);
    assert_eq!(&out[64..], &ready("DEALER", Some(""))[..]);
}

#[test]
fn ready_is_byte_exact_for_dealer_router_and_push() {
    // Checklist 21 (spec 37's worked example) and 26 (Identity only from REQ, DEALER, ROUTER).
    let dealer = Raw::new(SocketType::Dealer).out();
    assert_eq!(
        &dealer[64..],
        b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"
    );
    let mut cfg = config(SocketType::Router);
    cfg.identity = Bytes::from_static(b"abc");
    let router = Raw::with(cfg).out();
    assert_eq!(
        &router[64..],
        b"\x04\x2c\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER\x08Identity\x00\x00\x00\x03abc"
    );
    let push = Raw::new(SocketType::Push).out();
    assert_eq!(
        &push[64..],
        b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x04PUSH"
    );
}

#[test]
fn a_libzmq_style_staged_greeting_completes() {
    let mut raw = Raw::new(SocketType::Dealer);
    let g = greeting(3, 1);
    raw.feed(&g[..10]).unwrap();
    raw.feed(&g[10..11]).unwrap();
    raw.feed(&g[11..]).unwrap();
    raw.feed(&ready("ROUTER", None)).unwrap();
    assert!(raw.conn.is_ready());
}

#[test]
fn a_greeting_one_byte_at_a_time_completes() {
    let mut raw = Raw::new(SocketType::Pull);
    let mut stream = greeting(3, 1);
    stream.extend(ready("PUSH", None));
    stream.extend_from_slice(b"\x00\x03abc");
    for b in stream {
        raw.feed(&[b]).unwrap();
    }
    assert_eq!(raw.frames(), vec![(b"abc".to_vec(), false)]);
}

#[test]
fn greeting_ready_and_a_message_in_one_write_are_all_processed() {
    // Checklist 22.
    let mut raw = Raw::new(SocketType::Pull);
    let mut stream = greeting(3, 1);
    stream.extend(ready("PUSH", None));
    stream.extend_from_slice(b"\x01\x01a\x00\x01b");
    raw.feed(&stream).unwrap();
    let Event::Ready(peer) = &raw.events[0] else {
        panic!("first event {:?}", raw.events[0]);
    };
    assert_eq!(peer.socket_type, SocketType::Push);
    assert_eq!(peer.version, Version::V3_1);
    assert_eq!(
        raw.frames(),
        vec![(b"a".to_vec(), true), (b"b".to_vec(), false)]
    );
}

#[test]
fn padding_and_higher_versions_are_accepted() {
    // Checklist 2 and 5.
    for (major, minor, expected) in [
        (3, 1, Version::V3_1),
        (3, 2, Version::V3_1),
        (4, 0, Version::V3_1),
        (3, 0, Version::V3_0),
    ] {
        let mut raw = Raw::new(SocketType::Pair);
        let mut g = greeting(major, minor);
        g[1..9].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF]);
        raw.feed(&g).unwrap();
        assert_eq!(raw.conn.version(), Some(expected));
    }
}

#[test]
fn zmtp_1_0_and_2_0_peers_are_refused_early() {
    // Checklist 4 and 5: a 1.0 identity frame is refused at its first octet.
    let mut raw = Raw::new(SocketType::Dealer);
    assert_eq!(
        raw.feed(b"\x05\x00ABCD"),
        Err(Error::Incompatible(Incompatible::Unversioned))
    );
    // A 2.0 peer: refused once octet 10 arrives, without waiting for all 64.
    let mut raw = Raw::new(SocketType::Dealer);
    assert_eq!(
        raw.feed(&greeting(1, 0)[..12]),
        Err(Error::Incompatible(Incompatible::Version {
            major: 1,
            minor: 0
        }))
    );
    // Every later call reports the same error.
    assert_eq!(
        raw.feed(b"more"),
        Err(Error::Incompatible(Incompatible::Version {
            major: 1,
            minor: 0
        }))
    );
    assert_eq!(
        raw.conn.send_frame(Bytes::new(), false),
        Err(UsageError::Closed)
    );
}

#[test]
fn mechanism_mismatch_compares_all_twenty_octets() {
    // Checklist 8.
    // (offset, octets written over our greeting): PLAIN; NULL with junk in its padding; "null".
    let patches: [(usize, &[u8]); 3] = [(12, b"PLAIN"), (20, b"x"), (12, b"null")];
    for (at, patch) in patches {
        let mut g = greeting(3, 1);
        g[at..at + patch.len()].copy_from_slice(patch);
        let mut raw = Raw::new(SocketType::Dealer);
        let err = raw.feed(&g).unwrap_err();
        assert!(
            matches!(err, Error::Incompatible(Incompatible::Mechanism { ours, .. }) if ours == Mechanism::NULL),
            "{err:?}"
        );
    }
}

// ---- B/C. Handshake -------------------------------------------------------------------------------

#[test]
fn a_message_before_ready_is_refused_and_not_delivered() {
    // Checklist 20, CVE-2020-15166.
    let mut raw = Raw::new(SocketType::Pull);
    raw.feed(&greeting(3, 1)).unwrap();
    assert_eq!(
        raw.feed(b"\x00\x03abc"),
        Err(PeerMisbehaved::MessageBeforeReady.into())
    );
    assert!(raw.events.is_empty());
}

#[test]
fn a_wrong_command_or_a_second_ready_is_refused() {
    // Checklist 23.
    let mut raw = Raw::new(SocketType::Pull);
    raw.feed(&greeting(3, 1)).unwrap();
    assert_eq!(
        raw.feed(b"\x04\x06\x05HELLO"),
        Err(PeerMisbehaved::UnexpectedCommand {
            name: "HELLO".into()
        }
        .into())
    );
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    assert_eq!(
        raw.feed(&ready("PUSH", None)),
        Err(PeerMisbehaved::UnexpectedCommand {
            name: "READY".into()
        }
        .into())
    );
}

#[test]
fn socket_type_mismatch_sends_error_then_fails() {
    // Checklist 25: a REQ meeting a PUB.
    let mut raw = Raw::new(SocketType::Req);
    raw.out();
    raw.feed(&greeting(3, 1)).unwrap();
    assert_eq!(
        raw.feed(&ready("PUB", None)),
        Err(Incompatible::SocketType {
            ours: SocketType::Req,
            theirs: SocketType::Pub
        }
        .into())
    );
    assert_eq!(raw.out(), b"\x04\x1a\x05ERROR\x13Invalid socket type");
    assert!(raw.events.is_empty());
}

#[test]
fn every_forbidden_pair_fails_on_both_sides_and_every_legal_pair_connects() {
    for ours in SocketType::ALL {
        for theirs in SocketType::ALL {
            let mut pair = Pair::new(config(ours), config(theirs), Instant::now()).unwrap();
            let result = pair.drive();
            if ours.is_compatible(theirs) {
                result.unwrap();
                assert!(pair.a.is_ready() && pair.b.is_ready(), "{ours} {theirs}");
            } else {
                let failure = result.unwrap_err();
                assert!(
                    matches!(
                        failure.error,
                        Error::Incompatible(Incompatible::SocketType { .. })
                    ),
                    "{ours} {theirs}: {failure:?}"
                );
                assert!(!pair.a.is_ready() && !pair.b.is_ready());
            }
        }
    }
}

#[test]
fn metadata_faults_are_refused() {
    // Checklist 24 and 26, hostile 10 and 11.
    let cases: [(&[u8], Error); 4] = [
        (
            b"\x05READY\x01A\xff\xff\xff\xff",
            PeerMisbehaved::Metadata(zring_zmtp::MetadataError::ValueTooLong { len: u32::MAX })
                .into(),
        ),
        (b"\x05READY", PeerMisbehaved::MissingSocketType.into()),
        (
            b"\x05READY\x0bSocket-Type\x00\x00\x00\x04ABCD",
            Incompatible::UnknownSocketType {
                name: "ABCD".into(),
            }
            .into(),
        ),
        (
            b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x02\x00x",
            PeerMisbehaved::InvalidIdentity { len: 2 }.into(),
        ),
    ];
    for (bytes, expected) in cases {
        let mut raw = Raw::new(SocketType::Router);
        raw.feed(&greeting(3, 1)).unwrap();
        assert_eq!(raw.feed(&cmd(bytes)), Err(expected), "{bytes:?}");
        assert!(raw.events.is_empty());
    }
}

#[test]
fn lower_case_property_names_and_extra_properties_are_accepted() {
    let mut raw = Raw::new(SocketType::Router);
    raw.feed(&greeting(3, 1)).unwrap();
    raw.feed(&cmd(
        b"\x05READY\x0bsocket-type\x00\x00\x00\x06DEALER\x05X-Foo\x00\x00\x00\x03bar\x08IDENTITY\x00\x00\x00\x01A",
    ))
    .unwrap();
    let Some(Event::Ready(peer)) = raw.events.first() else {
        panic!("{:?}", raw.events);
    };
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(&peer.identity[..], b"A");
    assert_eq!(
        peer.metadata.get("x-foo").map(|v| &v[..]),
        Some(&b"bar"[..])
    );
}

#[test]
fn error_during_the_handshake_is_surfaced_with_its_reason() {
    // Checklist 27.
    let mut raw = Raw::new(SocketType::Dealer);
    raw.feed(&greeting(3, 1)).unwrap();
    assert_eq!(
        raw.feed(b"\x04\x0b\x05ERROR\x04nope"),
        Err(Error::PeerError {
            reason: "nope".into()
        })
    );
    let mut raw = Raw::new(SocketType::Dealer);
    raw.feed(&greeting(3, 1)).unwrap();
    assert!(matches!(
        raw.feed(b"\x04\x07\x05ERROR\x09"),
        Err(Error::Peer(PeerMisbehaved::MalformedCommand { .. }))
    ));
}

#[test]
fn our_invalid_identity_is_refused_locally() {
    let mut cfg = config(SocketType::Dealer);
    cfg.identity = Bytes::from_static(b"\x00abc");
    assert_eq!(
        Connection::new(cfg.clone(), Instant::now()).unwrap_err(),
        UsageError::InvalidIdentity
    );
    cfg.identity = Bytes::from(vec![b'a'; 256]);
    assert!(Connection::new(cfg, Instant::now()).is_err());
}

// ---- B. Framing ------------------------------------------------------------------------------------

#[test]
fn short_long_boundary_is_255_and_256() {
    // Checklist 13 and 14.
    let mut raw = Raw::handshake(SocketType::Push, "PULL");
    raw.conn.send_frame(Bytes::new(), false).unwrap();
    raw.conn
        .send_frame(Bytes::from(vec![b'x'; 255]), false)
        .unwrap();
    raw.conn
        .send_frame(Bytes::from(vec![b'y'; 256]), true)
        .unwrap();
    let out = raw.out();
    assert_eq!(&out[..2], b"\x00\x00");
    assert_eq!(&out[2..4], b"\x00\xff");
    assert_eq!(
        &out[4 + 255..4 + 255 + 9],
        b"\x03\x00\x00\x00\x00\x00\x00\x01\x00"
    );
    assert_eq!(out.len(), 2 + 2 + 255 + 9 + 256);
}

#[test]
fn non_minimal_long_sizes_are_accepted() {
    // Checklist 15.
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    raw.feed(b"\x02\x00\x00\x00\x00\x00\x00\x00\x05hello")
        .unwrap();
    assert_eq!(raw.frames(), vec![(b"hello".to_vec(), false)]);
}

#[test]
fn reserved_bits_and_command_with_more_are_refused() {
    // Checklist 15, hostile 15 and 16.
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    assert_eq!(
        raw.feed(b"\x08\x00"),
        Err(PeerMisbehaved::ReservedFlags { flags: 0x08 }.into())
    );
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    assert_eq!(
        raw.feed(b"\x05"),
        Err(PeerMisbehaved::CommandWithMore.into())
    );
}

#[test]
fn oversized_frames_are_refused_before_any_allocation() {
    // Checklist 16, hostile 14: refused from the header alone.
    let mut cfg = config(SocketType::Pull);
    cfg.max_msg_size = Some(1000);
    let mut raw = Raw::with(cfg);
    raw.feed(&greeting(3, 1)).unwrap();
    raw.feed(&ready("PUSH", None)).unwrap();
    raw.feed(b"\x02\x00\x00\x00\x00\x00\x00\x03\xe8").unwrap(); // exactly 1000: fine so far
    let mut raw2 = Raw::handshake(SocketType::Pull, "PUSH");
    raw2.conn = {
        let mut cfg = config(SocketType::Pull);
        cfg.max_msg_size = Some(1000);
        Connection::new(cfg, raw2.now).unwrap()
    };
    raw2.feed(&greeting(3, 1)).unwrap();
    raw2.feed(&ready("PUSH", None)).unwrap();
    assert_eq!(
        raw2.feed(b"\x02\x00\x00\x00\x00\x00\x00\x03\xe9"),
        Err(PeerMisbehaved::FrameTooLarge {
            claimed: 1001,
            max: 1000
        }
        .into())
    );
    // With no configured maximum, a size past what the machine can address is still refused.
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    assert!(matches!(
        raw.feed(b"\x02\xff\xff\xff\xff\xff\xff\xff\xff"),
        Err(Error::Peer(PeerMisbehaved::FrameTooLarge {
            claimed: u64::MAX,
            ..
        }))
    ));
}

#[test]
fn too_many_frames_in_one_message_are_refused() {
    // Hostile 17.
    let mut cfg = config(SocketType::Pull);
    cfg.max_frames = Some(3);
    let mut raw = Raw::with(cfg);
    raw.feed(&greeting(3, 1)).unwrap();
    raw.feed(&ready("PUSH", None)).unwrap();
    raw.feed(b"\x01\x00\x01\x00\x00\x00").unwrap(); // three frames: fine
    assert_eq!(
        raw.feed(b"\x01\x00\x01\x00\x01\x00\x01\x00"),
        Err(PeerMisbehaved::TooManyFrames { max: 3 }.into())
    );
}

#[test]
fn unknown_commands_after_the_handshake_are_ignored() {
    // Checklist 19.
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    raw.feed(b"\x04\x05\x04ABCD\x00\x02ok").unwrap();
    assert_eq!(raw.frames(), vec![(b"ok".to_vec(), false)]);
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    assert!(matches!(
        raw.feed(b"\x04\x02\x09\x41"),
        Err(Error::Peer(PeerMisbehaved::MalformedCommand { .. }))
    ));
}

#[test]
fn a_body_inside_one_buffer_is_a_slice_of_it() {
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    let mut wire = vec![0x02, 0, 0, 0, 0, 0, 0, 0x10, 0];
    wire.extend(std::iter::repeat_n(7u8, 4096));
    let input = Bytes::from(wire);
    raw.conn.handle_input(input.clone(), raw.now).unwrap();
    let Some(Event::Frame(f)) = raw.conn.poll_event() else {
        panic!("no frame");
    };
    assert_eq!(f.body.len(), 4096);
    assert_eq!(f.body.as_ptr(), input[9..].as_ptr(), "zero-copy");
}

#[test]
fn the_fast_path_lends_frames_in_wire_order_without_copying() {
    let mut conn = Connection::new(config(SocketType::Pull), Instant::now()).unwrap();
    let mut stream = greeting(3, 1);
    stream.extend(ready("PUSH", None));
    stream.extend_from_slice(b"\x01\x03one\x00\x03two");
    let data = Bytes::from(stream);
    let mut seen = Vec::new();
    conn.handle_input_with(&data, Instant::now(), |e| match e {
        EventRef::Ready(peer) => seen.push(format!("ready {}", peer.socket_type)),
        EventRef::Frame(view) => {
            assert!(
                data.as_ptr_range().contains(&view.body().as_ptr()),
                "a view of the input"
            );
            seen.push(format!(
                "{} more={}",
                String::from_utf8_lossy(view.body()),
                view.more()
            ));
        }
        other => panic!("{other:?}"),
    })
    .unwrap();
    assert_eq!(seen, ["ready PUSH", "one more=true", "two more=false"]);
    assert!(
        conn.poll_event().is_none(),
        "nothing queued on the fast path"
    );
}

#[test]
fn a_body_split_across_buffers_is_assembled_once() {
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    let mut wire = vec![0x02, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]; // 65536
    wire.extend((0..65536u32).map(|i| i as u8));
    let pieces: Vec<Bytes> = wire.chunks(1000).map(Bytes::copy_from_slice).collect();
    for p in &pieces {
        raw.conn.handle_input(p.clone(), raw.now).unwrap();
    }
    let Some(Event::Frame(f)) = raw.conn.poll_event() else {
        panic!("no frame");
    };
    assert_eq!(&f.body[..], &wire[9..]);
    assert!(pieces
        .iter()
        .all(|p| !p.as_ptr_range().contains(&f.body.as_ptr())));
}

#[test]
fn a_header_at_the_end_of_one_buffer_and_its_body_in_the_next_is_still_zero_copy() {
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    raw.feed(b"\x00").unwrap();
    raw.feed(b"\x05").unwrap();
    let body = Bytes::from_static(b"hello");
    raw.conn.handle_input(body.clone(), raw.now).unwrap();
    let Some(Event::Frame(f)) = raw.conn.poll_event() else {
        panic!("no frame");
    };
    assert_eq!(f.body.as_ptr(), body.as_ptr());
}

// ---- D. Pub-sub on the wire ------------------------------------------------------------------------

#[test]
fn sub_sends_subscribe_and_cancel_commands_to_a_3_1_peer() {
    let mut raw = Raw::handshake(SocketType::Sub, "PUB");
    raw.conn.subscribe(b"A").unwrap();
    raw.conn.cancel(b"A").unwrap();
    assert_eq!(raw.out(), b"\x04\x0b\x09SUBSCRIBEA\x04\x08\x06CANCELA");
}

#[test]
fn sub_sends_subscription_messages_to_a_3_0_peer() {
    // Checklist 6 and 29.
    let mut raw = Raw::new(SocketType::Sub);
    raw.feed(&greeting(3, 0)).unwrap();
    raw.feed(&ready("PUB", None)).unwrap();
    raw.out();
    raw.conn.subscribe(b"A").unwrap();
    raw.conn.cancel(b"A").unwrap();
    assert_eq!(raw.out(), b"\x00\x02\x01A\x00\x02\x00A");
}

#[test]
fn publishers_accept_both_subscription_forms() {
    // Checklist 30; a multipart message starting 0x01 and an empty frame are messages.
    let mut raw = Raw::handshake(SocketType::XPub, "SUB");
    raw.feed(b"\x04\x0c\x09SUBSCRIBEab\x00\x02\x01x\x04\x08\x06CANCELc\x00\x02\x00y\x01\x02\x01z\x00\x00\x00\x00")
        .unwrap();
    let subs: Vec<Event> = raw.events.iter().skip(1).cloned().collect();
    assert_eq!(
        subs[..4],
        [
            Event::Subscribe(Bytes::from_static(b"ab")),
            Event::Subscribe(Bytes::from_static(b"x")),
            Event::Cancel(Bytes::from_static(b"c")),
            Event::Cancel(Bytes::from_static(b"y")),
        ]
    );
    assert_eq!(
        raw.frames(),
        vec![(b"\x01z".to_vec(), true), (vec![], false), (vec![], false)]
    );
}

#[test]
fn subscriptions_reaching_a_non_publisher_are_ignored_and_only_sub_sends_them() {
    let mut raw = Raw::handshake(SocketType::Pull, "PUSH");
    raw.feed(b"\x04\x0b\x09SUBSCRIBEA").unwrap();
    assert_eq!(raw.events.len(), 1, "only Ready");
    assert_eq!(raw.conn.subscribe(b"A"), Err(UsageError::NotSubscriber));
    let mut early = Raw::new(SocketType::Sub);
    assert_eq!(early.conn.subscribe(b"A"), Err(UsageError::NotReady));
}

// ---- E. Heartbeats ---------------------------------------------------------------------------------

#[test]
fn ping_is_answered_with_one_pong_echoing_its_context() {
    // Checklist 36, hostile 19 (a PING flood leaves one PONG pending).
    let mut raw = Raw::handshake(SocketType::Dealer, "ROUTER");
    raw.feed(b"\x04\x0c\x04PING\x00\x00hello").unwrap();
    raw.feed(b"\x04\x0c\x04PING\x00\x00hello").unwrap();
    assert_eq!(raw.out(), b"\x04\x0a\x04PONGhello");
    assert_eq!(raw.conn.stats().pings_received, 2);
    let mut raw = Raw::handshake(SocketType::Dealer, "ROUTER");
    assert!(matches!(
        raw.feed(b"\x04\x05\x04PING"),
        Err(Error::Peer(PeerMisbehaved::MalformedCommand { .. }))
    ));
}

#[test]
fn the_peers_ttl_closes_a_silent_connection_and_traffic_resets_it() {
    // Checklist 37.
    let mut raw = Raw::handshake(SocketType::Dealer, "ROUTER");
    raw.feed(b"\x04\x07\x04PING\x00\x05").unwrap(); // 500 ms
    assert_eq!(
        raw.conn.poll_timeout(),
        Some(raw.now + Duration::from_millis(500))
    );
    raw.now += Duration::from_millis(400);
    raw.conn.handle_timeout(raw.now).unwrap();
    raw.feed(b"\x00\x01x").unwrap(); // traffic: the TTL no longer applies
    assert_eq!(raw.conn.poll_timeout(), None);
    raw.feed(b"\x04\x07\x04PING\x00\x05").unwrap();
    raw.now += Duration::from_millis(500);
    assert_eq!(
        raw.conn.handle_timeout(raw.now),
        Err(Error::Timeout(TimeoutKind::PeerTtl))
    );
}

#[test]
fn our_heartbeat_pings_and_drops_a_silent_peer() {
    // Checklist 35 and 38.
    let mut a = config(SocketType::Dealer);
    a.heartbeat_ivl = Some(Duration::from_millis(100));
    a.heartbeat_ttl = Some(Duration::from_millis(1500));
    a.heartbeat_timeout = Some(Duration::from_millis(300));
    let mut pair = Pair::new(a, config(SocketType::Router), Instant::now()).unwrap();
    pair.drive().unwrap();
    for _ in 0..5 {
        pair.advance(Duration::from_millis(100)).unwrap();
        let mut t = Transmit::new();
        pair.a.poll_transmit(&mut t);
        assert_eq!(
            t.to_vec(),
            b"\x04\x07\x04PING\x00\x0f",
            "TTL 15 deciseconds"
        );
        // The peer answers: feed our PING to it and its PONG back.
        pair.b
            .handle_input(Bytes::from(t.to_vec()), pair.now)
            .unwrap();
        pair.drive().unwrap();
    }
    assert_eq!(pair.a.stats().pongs_received, 5);
    assert_eq!(pair.b.stats().pings_received, 5);
    // Now the peer goes silent: a PING, then nothing for the 300 ms timeout.
    pair.advance(Duration::from_millis(100)).unwrap();
    pair.advance(Duration::from_millis(299)).unwrap();
    let failure = pair.advance(Duration::from_millis(1)).unwrap_err();
    assert_eq!(failure.side, Side::A);
    assert_eq!(failure.error, Error::Timeout(TimeoutKind::Heartbeat));
}

#[test]
fn no_ping_is_sent_to_a_3_0_peer() {
    let mut cfg = config(SocketType::Dealer);
    cfg.heartbeat_ivl = Some(Duration::from_millis(100));
    let mut raw = Raw::with(cfg);
    raw.feed(&greeting(3, 0)).unwrap();
    raw.feed(&ready("ROUTER", None)).unwrap();
    raw.out();
    assert_eq!(raw.conn.poll_timeout(), None);
    raw.now += Duration::from_secs(1);
    raw.conn.handle_timeout(raw.now).unwrap();
    assert!(raw.out().is_empty());
}

#[test]
fn a_stalled_greeting_times_out_at_the_handshake_deadline() {
    // Checklist 11, hostile 7.
    let mut cfg = config(SocketType::Rep);
    cfg.handshake_ivl = Some(Duration::from_millis(250));
    let mut raw = Raw::with(cfg);
    raw.feed(&greeting(3, 1)[..5]).unwrap();
    assert_eq!(
        raw.conn.poll_timeout(),
        Some(raw.now + Duration::from_millis(250))
    );
    raw.now += Duration::from_millis(249);
    raw.conn.handle_timeout(raw.now).unwrap();
    raw.now += Duration::from_millis(1);
    assert_eq!(
        raw.conn.handle_timeout(raw.now),
        Err(Error::Timeout(TimeoutKind::Handshake))
    );
}

// ---- F. Messages through a pair -------------------------------------------------------------------

#[test]
fn multipart_messages_cross_a_pair_cut_at_every_size() {
    for chunk in [1, 2, 3, 7, 64, 65, 66, 1000, usize::MAX] {
        let mut pair = Pair::new(
            config(SocketType::Dealer),
            config(SocketType::Router),
            Instant::now(),
        )
        .unwrap();
        pair.chunk = chunk;
        pair.drive().unwrap();
        let parts: Vec<Bytes> = [0usize, 1, 255, 256, 65536]
            .iter()
            .map(|&n| Bytes::from(vec![n as u8; n]))
            .collect();
        pair.a.send_message(parts.clone()).unwrap();
        pair.b.send_message(["back"]).unwrap();
        pair.drive().unwrap();
        assert_eq!(pair.messages(Side::B), vec![parts]);
        assert_eq!(
            pair.messages(Side::A),
            vec![vec![Bytes::from_static(b"back")]]
        );
    }
}

#[test]
fn ten_thousand_messages_arrive_in_order() {
    // Checklist 46.
    let mut pair = Pair::new(
        config(SocketType::Push),
        config(SocketType::Pull),
        Instant::now(),
    )
    .unwrap();
    pair.chunk = 4093;
    pair.drive().unwrap();
    for i in 0..10_000u32 {
        pair.a
            .send_frame(Bytes::copy_from_slice(&i.to_be_bytes()), false)
            .unwrap();
    }
    pair.drive().unwrap();
    let got: Vec<u32> = pair
        .messages(Side::B)
        .iter()
        .map(|m| u32::from_be_bytes(m[0][..].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..10_000).collect::<Vec<_>>());
}
