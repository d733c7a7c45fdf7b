//! SIGTERM and SIGINT stop a running daemon after the step in flight, with exit code 0.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A demo account replayed at 600× so the run lasts minutes, not milliseconds.
fn paced_config() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("marginguard-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r#"
[[accounts]]
name = "paced"
venue = "sim"
strategy = "{strategy}"
poll_interval = "10s"
[accounts.caps]
max_per_rescue = "6000"
max_per_day = "15000"
[accounts.sim]
scenario = "{scenario}"
speed = 600
"#,
        strategy = root.join("strategies/distance.toml").display(),
        scenario = root
            .join("scenarios/btc-2024-08-05-10x-long.toml")
            .display(),
    );
    let path = dir.join("paced.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn stop_with(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(["run", "-vv", "--config"])
        .arg(paced_config())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon says it is running: its handlers are installed by then.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line.contains("running;") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "daemon exited early"
        );
        assert!(
            Instant::now() < deadline,
            "daemon never said it was running"
        );
    }
    // Let it make a few ticks — read from its log, not guessed with a sleep — then ask it to
    // stop mid-run.
    let mut ticks = 0;
    while ticks < 3 {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "daemon exited early"
        );
        assert!(Instant::now() < deadline, "daemon never ticked");
        if line.contains(" tick ") {
            ticks += 1;
        }
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{signal}: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("stopped at") && stdout.contains("alive"),
        "the summary reports where the run stopped:\n{stdout}"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("finishing the steps in flight"), "{rest}");
}

#[test]
fn sigterm_stops_gracefully_with_exit_0() {
    stop_with("-TERM");
}

#[test]
fn sigint_stops_gracefully_with_exit_0() {
    stop_with("-INT");
}
