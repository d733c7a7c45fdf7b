//! The real daemon rehearsing a crash with every notifier and the heartbeat configured, each
//! pointed at a mock receiver on 127.0.0.1: the rescue reaches the phone while the crash
//! plays, a receiver that hangs delays nobody, the secrets appear nowhere they should not,
//! and SIGTERM's "stopped" message gets out before the process exits.

mod mock_receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use mock_receiver::{Receiver, Reply};
use sha2::Sha256;

const TOKEN: &str = "CANARY-TG-6f1c0e5b9a8d4c3e";
const HOOK_SECRET: &str = "CANARY-HMAC-2b7e151628aed2a6";
const HEARTBEAT_PATH: &str = "/ping/CANARY-HB-0d9c8b7a";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

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

[[accounts]]
name = "distance-bot"
venue = "sim"
strategy = "{strategy}"
poll_interval = "10s"
[accounts.caps]
max_per_rescue = "6000"
max_per_day = "15000"
keep_at_least = "0"
cooldown = "1m"
[accounts.sim]
scenario = "{scenario}"
speed = 600
"#,
        strategy = repo("strategies/distance.toml").display(),
        scenario = repo("scenarios/btc-2024-08-05-10x-long.toml").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

struct Daemon {
    child: Child,
    base: String,
    /// Every line the daemon wrote on stderr.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path, env: &[(&str, String)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_marginguard"));
        command
            .args(["-v", "run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the daemon starts");
        let stderr = child.stderr.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("status page on ") {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let base = address
            .recv_timeout(Duration::from_secs(60))
            .expect("the daemon says where its endpoint is");
        Daemon { child, base, logs }
    }

    async fn get(&self, path: &str) -> String {
        let url = format!("{}{}", self.base.trim_end_matches('/'), path);
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    }

    /// SIGTERM, then the exit status and every log line.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe; give it a moment to push the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let logs = self.logs.lock().unwrap().clone();
        (status, logs)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn texts(receiver: &Receiver) -> Vec<String> {
    receiver
        .hits()
        .iter()
        .filter(|hit| !hit.body.is_empty())
        .map(|hit| hit.json()["text"].as_str().unwrap_or_default().to_string())
        .collect()
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
        let body = daemon.get(path).await;
        assert!(!body.contains("CANARY"), "a secret in {path}");
    }
    let metrics = daemon.get("/metrics").await;
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
