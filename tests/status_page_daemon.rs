//! The real daemon, rehearsing a crash day on the simulator with its endpoint on, looked at
//! in headless Chromium: the cards show the accounts, their figures, and a rescue appearing.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{sim_account, Daemon};
use marginguard::operator::status::StatusReport;

/// Two simulated accounts on the 2024-08-05 crash, 600 simulated seconds per second: the
/// first rescue comes about four seconds in.
fn write_config() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mg-page-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n{}{}",
        sim_account("distance-bot", "strategies/distance.toml", Some(600)),
        sim_account("seed-ladder-bot", "strategies/seed-ladder.toml", Some(600)),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn status(daemon: &Daemon) -> Option<StatusReport> {
    let url = daemon.url("/status.json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let response = reqwest::get(&url).await.ok()?;
        response.json::<StatusReport>().await.ok()
    })
}

/// Polls `status.json` until `done` holds (at most a minute).
fn wait_for(daemon: &Daemon, what: &str, done: impl Fn(&StatusReport) -> bool) -> StatusReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(report) = status(daemon).filter(|r| done(r)) {
            return report;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_shows_the_accounts_their_figures_and_a_rescue_appearing() {
    let daemon = Daemon::start(&[], &write_config(), &[]);
    let first = wait_for(&daemon, "both accounts' first figures", |r| {
        r.accounts.iter().all(|a| a.equity.is_some())
    });
    assert_eq!(first.accounts.len(), 2);
    let html = browser::dump_dom(&daemon.url("/"), Duration::from_secs(3));
    let seen = browser::visible_text(&html);
    for needed in [
        "distance-bot",
        "seed-ladder-bot",
        "simulated",
        "liquidation distance",
    ] {
        assert!(seen.contains(needed), "{needed:?} not on the page: {seen}");
    }
    assert!(seen.contains("USDT"), "figures in USDT: {seen}");

    let rescued = wait_for(&daemon, "a rescue in the journal", |r| {
        r.accounts
            .iter()
            .any(|a| a.name == "distance-bot" && !a.rescues.is_empty())
    });
    let card = rescued
        .accounts
        .iter()
        .find(|a| a.name == "distance-bot")
        .unwrap();
    let rescue = card.rescues.last().expect("the first rescue");
    let html = browser::dump_dom(&daemon.url("/"), Duration::from_secs(3));
    let seen = browser::visible_text(&html);
    assert!(
        seen.contains(&rescue.amount),
        "the rescue of {} USDT is not on the page: {seen}",
        rescue.amount
    );
    assert!(seen.contains(&rescue.created_at), "its time: {seen}");
    assert!(seen.contains("settled") || seen.contains("acked"), "{seen}");

    // The terminal reads the same report from the running daemon.
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(["status", "--config"])
        .arg(write_config())
        .args(["--url", &daemon.base])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("from {}", daemon.url("/status.json"))),
        "{text}"
    );
    assert!(
        text.contains("distance-bot (sim simulated, polled)") && text.contains(&rescue.amount),
        "{text}"
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-daemon.png");
    browser::screenshot(
        &daemon.url("/"),
        &shot,
        (1280, 1100),
        Duration::from_secs(3),
    );
}
