//! The real daemon rehearsing a crash with every notifier and the heartbeat configured, each
//! pointed at a mock receiver on 127.0.0.1: the rescue reaches the phone while the crash
//! plays, a receiver that hangs delays nobody, the secrets appear nowhere they should not,
//! and SIGTERM's "stopped" message gets out before the process exits.

mod common;
mod mock_receiver;

use std::path::PathBuf;
use std::time::Duration;

use common::{sim_account, Daemon};
use hmac::{Hmac, Mac};
use mock_receiver::{Receiver, Reply};
use sha2::Sha256;

const TOKEN: &str = "CANARY-TG-6f1c0e5b9a8d4c3e";
const HOOK_SECRET: &str = "CANARY-HMAC-2b7e151628aed2a6";
const HEARTBEAT_PATH: &str = "/ping/CANARY-HB-0d9c8b7a";

fn write_config(telegram: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mg-alerts-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r#"
[http]
listen = "127.0.0.1:0"

[alerts]
cool_off = "30m"

[[notifiers]]
name = "phone"
kind = "telegram"
api_url = "{telegram}"
bot_token_env = "MG_E2E_TELEGRAM_TOKEN"
chat_id = "42"

[[notifiers]]
name = "pager"
kind = "webhook"
url_env = "MG_E2E_WEBHOOK_URL"
hmac_secret_env = "MG_E2E_WEBHOOK_SECRET"
min_severity = "warning"

[[notifiers]]
name = "stuck"
kind = "webhook"
url_env = "MG_E2E_HANGING_URL"
timeout = "2s"

[heartbeat]
url_env = "MG_E2E_HEARTBEAT_URL"
every = "10s"

{account}"#,
        account = sim_account("distance-bot", "strategies/distance.toml", Some(600)),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn texts(receiver: &Receiver) -> Vec<String> {
    receiver
        .hits()
        .iter()
        .filter(|hit| !hit.body.is_empty())
        .map(|hit| hit.json()["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn get(daemon: &Daemon, path: &str) -> String {
    reqwest::get(daemon.url(path))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn verify_signature(hit: &mock_receiver::Hit) -> bool {
    let (Some(timestamp), Some(signature)) = (
        hit.header("x-marginguard-timestamp"),
        hit.header("x-marginguard-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&hit.body);
    signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescue_reaches_every_notifier_while_the_crash_plays_and_no_secret_leaks() {
    let ok = r#"{"ok":true,"result":{}}"#;
    let telegram = Receiver::start(Reply::status(200, ok)).await;
    let webhook = Receiver::start(Reply::status(204, "")).await;
    let hanging = Receiver::start(Reply::Hang).await;
    let heartbeat = Receiver::start(Reply::status(200, "OK")).await;
    let daemon = Daemon::start(
        &["-v"],
        &write_config(&telegram.url),
        &[
            ("MG_E2E_TELEGRAM_TOKEN", TOKEN.to_string()),
            ("MG_E2E_WEBHOOK_URL", format!("{}/hook", webhook.url)),
            ("MG_E2E_WEBHOOK_SECRET", HOOK_SECRET.to_string()),
            ("MG_E2E_HANGING_URL", format!("{}/hook", hanging.url)),
            (
                "MG_E2E_HEARTBEAT_URL",
                format!("{}{HEARTBEAT_PATH}", heartbeat.url),
            ),
        ],
    );

    // The first rescue comes about four seconds in, with the stuck receiver hanging on
    // every alert since the first.
    wait_for("a top-up message on the phone", || {
        texts(&telegram).iter().any(|t| t.contains("top-up sent"))
    })
    .await;
    let hit = &telegram.hits()[0];
    assert_eq!(hit.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(hit.json()["chat_id"], "42");
    wait_for("the signed webhook", || {
        webhook
            .hits()
            .iter()
            .any(|h| h.json()["event"] == "top_up_sent")
    })
    .await;
    let hooks = webhook.hits();
    assert!(hooks.iter().all(verify_signature), "every hook is signed");
    assert!(
        hooks.iter().all(|h| h.json()["severity"] != "info"),
        "min_severity = warning filters info"
    );
    wait_for("a heartbeat", || {
        heartbeat.hits().iter().any(|h| h.path == HEARTBEAT_PATH)
    })
    .await;
    assert!(!hanging.hits().is_empty(), "the stuck receiver was asked");

    for path in ["/metrics", "/status.json", "/"] {
        let body = get(&daemon, path).await;
        assert!(!body.contains("CANARY"), "a secret in {path}");
    }
    let metrics = get(&daemon, "/metrics").await;
    let sent_line = metrics
        .lines()
        .find(|l| l.starts_with("marginguard_alerts_sent_total{notifier=\"phone\"}"))
        .expect("phone's counter");
    let sent: u64 = sent_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(sent >= 2, "{sent_line}");
    assert!(metrics.contains("marginguard_heartbeat_pings_total{result=\"ok\"}"));
    for text in texts(&telegram) {
        assert!(!text.contains("CANARY"), "a secret in an alert: {text}");
    }

    let (status, logs) = daemon.terminate();
    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("top-up sent")),
        "the logs were read"
    );
    for line in &logs {
        assert!(!line.contains("CANARY"), "a secret in a log line: {line}");
    }
    assert!(
        texts(&telegram)
            .iter()
            .any(|t| t.contains("marginguard stopped")),
        "the stopped message is flushed before exit: {:?}",
        texts(&telegram)
    );
}
