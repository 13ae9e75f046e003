//! The frame decoder at arbitrary cut points: decode, re-encode, decode again.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zring_zmtp::fuzzing::frames_round_trip(data));
