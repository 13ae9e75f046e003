//! Runs each program of `examples/` (built by `cargo test` beside this test) and checks what it
//! printed. The examples use fixed ports, so they run one after another in this one test.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

fn run(name: &str) -> String {
    let out = Command::new(example(name))
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e} (cargo test builds the examples)"));
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_example_runs_to_completion() {
    let hello = run("hello_world");
    assert_eq!(hello.matches("got World").count(), 10);

    let weather = run("weather");
    assert!(weather.contains("average temperature for zip code 10001 over 20 updates"));

    let pipeline = run("pipeline");
    assert_eq!(pipeline.matches(" done by worker ").count(), 100);
    assert!(pipeline.contains("100 results collected: 50 by worker 0, 50 by worker 1"));

    let pair = run("pair");
    assert!(pair.contains("step 3 got READY: test successful"));

    let broker = run("broker");
    assert_eq!(broker.matches(" -> worker ").count(), 30);
    assert!(broker.contains("30 requests served through the broker"));
}
