//! The `zring` tool, run as a user runs it, against zring and libzmq peers.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use zring::{Context, SocketType};

const WATCHDOG: Duration = Duration::from_secs(10);

fn zring() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zring"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn free_endpoint() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://{}", probe.local_addr().unwrap())
}

fn socket(ctx: &Context, t: SocketType) -> zring::Socket {
    let mut s = ctx.socket(t).unwrap();
    s.set_rcvtimeo(Some(WATCHDOG)).unwrap();
    s.set_sndtimeo(Some(WATCHDOG)).unwrap();
    s
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for the child, which exits by itself (every run has `--timeout`).
fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn pull_prints_frames_with_tabs_and_escapes() {
    let ep = free_endpoint();
    let child = zring()
        .args(["pull", "--bind", &ep, "--count", "2", "--timeout", "10"])
        .spawn()
        .unwrap();
    let ctx = Context::new();
    let mut push = socket(&ctx, SocketType::Push);
    push.connect(&ep).unwrap();
    push.send("hello").unwrap();
    push.send_multipart([&b"\x00a\xff"[..], b"b"]).unwrap();
    let out = finish(child);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "hello\n\\x00a\\xff\tb\n");
}

#[test]
fn push_sends_each_line_of_standard_input() {
    let ctx = Context::new();
    let mut pull = socket(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:0").unwrap();
    let ep = pull.last_endpoint().unwrap();
    let mut child = zring()
        .args(["push", "--connect", &ep, "--timeout", "10"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\tthree\n")
        .unwrap();
    let out = finish(child);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(pull.recv_string().unwrap(), "one");
    let two: Vec<String> = pull
        .recv_multipart()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(two, ["two", "three"]);
}

#[test]
fn req_prints_each_reply_and_rep_answers_or_echoes() {
    let ctx = Context::new();
    let mut rep = socket(&ctx, SocketType::Rep);
    rep.bind("tcp://127.0.0.1:0").unwrap();
    let ep = rep.last_endpoint().unwrap();
    let child = zring()
        .args([
            "req",
            "--connect",
            &ep,
            "--send",
            "a",
            "--send",
            "b",
            "--timeout",
            "10",
        ])
        .spawn()
        .unwrap();
    for _ in 0..2 {
        let q = rep.recv_string().unwrap();
        rep.send(format!("re: {q}")).unwrap();
    }
    let out = finish(child);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "re: a\nre: b\n");

    for (reply, expected) in [(Some("fixed"), "fixed"), (None, "echo me")] {
        let ep = free_endpoint();
        let mut args = vec!["rep", "--bind", &ep, "--count", "1", "--timeout", "10"];
        if let Some(r) = reply {
            args.extend(["--reply", r]);
        }
        let child = zring().args(&args).spawn().unwrap();
        let mut req = socket(&ctx, SocketType::Req);
        req.connect(&ep).unwrap();
        req.send("echo me").unwrap();
        assert_eq!(req.recv_string().unwrap(), expected);
        let out = finish(child);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(stdout(&out), "echo me\n", "rep prints the request");
    }
}

#[test]
fn sub_prints_only_its_topics_from_a_libzmq_publisher() {
    let zctx = zmq::Context::new();
    let publisher = zctx.socket(zmq::PUB).unwrap();
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let ep = publisher.get_last_endpoint().unwrap().unwrap();
    let mut child = zring()
        .args([
            "sub",
            "--connect",
            &ep,
            "--subscribe",
            "A",
            "--count",
            "1",
            "--timeout",
            "10",
        ])
        .spawn()
        .unwrap();
    // Slow joiner: publish until the tool has what it wanted and exits.
    let deadline = Instant::now() + WATCHDOG;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sub never received");
        publisher.send("B not this", 0).unwrap();
        publisher.send("A this", 0).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = finish(child);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "A this\n");
}

#[test]
fn errors_exit_non_zero_with_one_line() {
    let bad = zring()
        .args(["pull", "--bind", "nonsense"])
        .output()
        .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", taken.local_addr().unwrap());
    let refused = zring().args(["pull", "--bind", &ep]).output().unwrap();
    let timeout = zring()
        .args(["pull", "--bind", &free_endpoint(), "--timeout", "0.1"])
        .output()
        .unwrap();
    for (out, says) in [
        (bad, "invalid endpoint"),
        (refused, "address already in use"),
        (timeout, "timed out"),
    ] {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    let help = zring().arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--subscribe"));
}

#[test]
fn a_latency_cell_is_measured_in_slices_taken_in_turn() {
    let out = zring()
        .args([
            "bench",
            "--rounds",
            "1",
            "--kind",
            "latency",
            "--transport",
            "inproc",
            "--size",
            "64",
            "--placement",
            "same",
            "--json",
        ])
        .output()
        .unwrap();
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{progress}");
    // Four slices of each of zring, libzmq and the bare limit, in turn.
    assert!(progress.contains("12/12"), "{progress}");
    let steps: Vec<&str> = progress
        .lines()
        .filter_map(|l| l.split_once("/12 ").map(|(_, cell)| cell.trim()))
        .collect();
    let turn = ["Zring", "Libzmq", "Bare"];
    assert_eq!(steps.len(), 12, "{progress}");
    for (i, step) in steps.iter().enumerate() {
        assert!(step.ends_with(turn[i % 3]), "step {i}: {step}");
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3, "p50, p99, p99.9: {rows:?}");
    for row in &rows {
        for imp in ["zring", "libzmq", "bare"] {
            assert!(row[imp].as_f64().unwrap_or(0.0) > 0.0, "{imp} in {row}");
        }
    }
}

#[test]
fn bench_measures_zring_libzmq_and_the_bare_limit_side_by_side() {
    let out = zring()
        .args([
            "bench",
            "--quick",
            "--transport",
            "tcp",
            "--size",
            "64",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Latency p50, p99, p99.9, throughput rate, bandwidth, and the fan-out rate and bandwidth to 1
    // and to 8 subscribers, each with the two sides on two cores and on one; memory per idle
    // connection.
    assert_eq!(rows.len(), 19);
    assert_eq!(
        rows.iter()
            .filter(|r| r["kind"] == "fanout" && r["subscribers"] == 8)
            .count(),
        4
    );
    for placement in ["split", "same"] {
        let n = rows.iter().filter(|r| r["placement"] == placement).count();
        assert!(n >= 5, "{n} rows with placement {placement}");
    }
    for row in &rows {
        let two_libraries = row["kind"] == "memory" || row["kind"] == "fanout";
        let imps: &[&str] = if two_libraries {
            &["zring", "libzmq"]
        } else {
            &["zring", "libzmq", "bare"]
        };
        for imp in imps {
            let v = row[imp].as_f64().unwrap_or(0.0);
            assert!(v > 0.0, "{imp} in {row}");
        }
        assert!(row["zring_vs_libzmq"].as_f64().is_some());
    }
    assert_eq!(rows.iter().filter(|r| r["kind"] == "memory").count(), 1);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("22/22"), "progress is shown: {progress}");

    // The plot script turns this output into the figures of docs/PERFORMANCE.md: one tcp panel
    // each, a line per implementation (and per percentile for latency).
    let dir = std::env::temp_dir().join(format!("zring-plot-{}", std::process::id()));
    let json = dir.join("bench.json");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&json, &out.stdout).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/plot.py");
    let plot = Command::new("python3")
        .arg(script)
        .arg(&json)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(plot.status.success(), "{}", stdout(&plot));
    for (file, metrics) in [
        ("latency.svg", &["p50", "p99", "p99.9"][..]),
        ("throughput.svg", &["bandwidth"][..]),
    ] {
        let svg = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(svg.contains(">tcp (split)</text>"), "{file}: {svg}");
        for imp in ["zring", "libzmq", "bare"] {
            for metric in metrics {
                let series = format!("data-imp=\"{imp}\" data-metric=\"{metric}\"");
                assert!(svg.contains(&series), "{file} has no {series}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
