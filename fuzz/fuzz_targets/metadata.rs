//! READY metadata parsing: whatever decodes re-encodes to the same bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zring_zmtp::fuzzing::metadata_round_trip(data));
