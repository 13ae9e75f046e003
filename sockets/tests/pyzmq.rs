//! The guide's programs written with pyzmq (`examples/python/`) against zring's examples: pyzmq is
//! libzmq 4.3.5 underneath, so this is libzmq interop at the level users program at. Skipped, with a
//! note, where pyzmq is not installed, unless `ZRING_REQUIRE_PYZMQ=1` (CI installs it and sets that).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

fn example(name: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let mut c = Command::new(profile_dir.join("examples").join(name));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn python(script: &str) -> Command {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "examples",
        "python",
        script,
    ]
    .iter()
    .collect();
    let mut c = Command::new("python3");
    c.arg(path).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn pyzmq_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import zmq"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("ZRING_REQUIRE_PYZMQ").is_none(),
            "pyzmq is required here: pip install pyzmq"
        );
        eprintln!("skipped: pyzmq is not installed (pip install pyzmq)");
    }
    ok
}

fn finished(child: Child, what: &str) -> String {
    let out: Output = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_guides_programs_in_pyzmq_work_with_zring() {
    if !pyzmq_available() {
        return;
    }
    // Hello world, both ways round.
    let server = example("hello_world")
        .args(["server", "tcp://127.0.0.1:5565"])
        .spawn()
        .unwrap();
    let client = python("hwclient.py")
        .args(["tcp://127.0.0.1:5565", "10"])
        .spawn()
        .unwrap();
    assert_eq!(
        finished(client, "hwclient.py").matches("got World").count(),
        10
    );
    assert_eq!(
        finished(server, "zring server")
            .matches("received Hello")
            .count(),
        10
    );

    let server = python("hwserver.py")
        .args(["tcp://127.0.0.1:5566", "10"])
        .spawn()
        .unwrap();
    let client = example("hello_world")
        .args(["client", "tcp://127.0.0.1:5566"])
        .spawn()
        .unwrap();
    assert_eq!(
        finished(client, "zring client")
            .matches("got World")
            .count(),
        10
    );
    assert_eq!(
        finished(server, "hwserver.py")
            .matches("received Hello")
            .count(),
        10
    );

    // Weather: a pyzmq publisher and a zring subscriber; a zring publisher and a pyzmq subscriber.
    let mut server = python("wuserver.py")
        .args(["tcp://127.0.0.1:5567", "20"])
        .spawn()
        .unwrap();
    let client = example("weather")
        .args(["client", "tcp://127.0.0.1:5567"])
        .spawn()
        .unwrap();
    let out = finished(client, "zring weather client");
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.contains("average temperature for zip code 10001 over 20 updates"));

    // The pipeline: zring's ventilator and sink, two pyzmq workers.
    let pipeline = example("pipeline").arg("external").spawn().unwrap();
    let workers: Vec<Child> = (0..2)
        .map(|n| {
            python("taskwork.py")
                .args([
                    "tcp://127.0.0.1:5557",
                    "tcp://127.0.0.1:5558",
                    &n.to_string(),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    let out = finished(pipeline, "zring pipeline");
    for w in workers {
        finished(w, "taskwork.py");
    }
    assert_eq!(out.matches(" done by worker ").count(), 100);
    assert!(out.contains("100 results collected: 50 by worker 0, 50 by worker 1"));
}
