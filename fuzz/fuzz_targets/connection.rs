//! Greeting, NULL handshake and frame decoding from arbitrary peer bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zring_zmtp::fuzzing::connection_input(data, std::time::Instant::now()));
