//! Replays the committed fuzz corpus (`fuzz/corpus/`) through the same entry points as the fuzz
//! targets, so that every input that once found something is checked by the ordinary test run.

use std::path::Path;
use std::time::Instant;

use zring_zmtp::fuzzing;

fn replay(target: &str, run: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn connection_corpus_replays() {
    replay("connection", |d| {
        fuzzing::connection_input(d, Instant::now())
    });
}

#[test]
fn metadata_corpus_replays() {
    replay("metadata", fuzzing::metadata_round_trip);
}

#[test]
fn frames_corpus_replays() {
    replay("frames", fuzzing::frames_round_trip);
}
