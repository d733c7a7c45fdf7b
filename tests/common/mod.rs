//! Helpers every venue's end-to-end and conformance tests share. Nothing here names a venue.
// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use marginguard::clock::Clock;
use marginguard::core::Caps;
use marginguard::engine::{AccountRunner, AccountSetup, Event};
use marginguard::journal::Journal;
use marginguard::money::Usdt;
use marginguard::venue::Venue;
use rust_decimal::Decimal;
use tokio::sync::mpsc;

/// Collects everything a tracing subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// The strategy every end-to-end config points at.
pub fn strategy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/distance.toml")
}

/// A live runner on the default `distance` strategy (top up below an 8 % move, refill to
/// 12 %), caps 5,000 per rescue and 10,000 a day, no cooldown, 2 s polls, wall clock,
/// recording into `journal`.
pub fn distance_runner(
    name: &str,
    venue: Arc<dyn Venue>,
    key_salt: u64,
    journal: Arc<Journal>,
) -> (AccountRunner, mpsc::UnboundedReceiver<Event>) {
    distance_runner_polling(name, venue, key_salt, journal, Duration::from_secs(2))
}

/// `distance_runner` polling every `poll_interval`.
pub fn distance_runner_polling(
    name: &str,
    venue: Arc<dyn Venue>,
    key_salt: u64,
    journal: Arc<Journal>,
    poll_interval: Duration,
) -> (AccountRunner, mpsc::UnboundedReceiver<Event>) {
    let strategy =
        marginguard::config::strategy::load(&strategy_path()).expect("distance strategy");
    let (sender, receiver) = mpsc::unbounded_channel();
    let runner = AccountRunner::new(
        AccountSetup {
            name: name.into(),
            venue,
            strategy,
            caps: Caps {
                max_per_rescue: Usdt(Decimal::from(5_000)),
                max_per_day: Usdt(Decimal::from(10_000)),
                keep_at_least: Usdt::ZERO,
                cooldown: Duration::ZERO,
            },
            poll_interval,
            clock: Clock::Wall,
            key_salt,
            journal,
            unknown_outcome_grace: Duration::from_secs(120),
        },
        Some(sender),
    )
    .expect("an in-memory journal opens");
    (runner, receiver)
}

/// Writes a config for one account named `<venue>-mock` on `venue` into a fresh temp folder
/// named after `dir_name` and this process, and returns its path. `venue_table` is the body
/// of the `[accounts.<venue>]` table (URLs, credential env var names, profile …); the caller
/// sets those env vars itself.
pub fn write_config(dir_name: &str, venue: &str, venue_table: &str, dry_run: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{dir_name}-{}", std::process::id()));
    // A fresh folder: the journal beside the config must not carry another run's rescues.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("marginguard.toml");
    let toml = format!(
        r#"dry_run = {dry_run}

[[accounts]]
name = "{venue}-mock"
venue = "{venue}"
strategy = "{strategy}"
poll_interval = "10s"

[accounts.caps]
max_per_rescue = "5000"
max_per_day = "10000"
keep_at_least = "0"
cooldown = "0s"

[accounts.{venue}]
{venue_table}"#,
        strategy = strategy_path().display(),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// The real run loop of a `distance_runner_polling` engine on `venue`, in a task: what the
/// streaming tests drive, since streams (not scripted ticks) are what wake it.
pub struct RunningEngine {
    trigger: marginguard::engine::ShutdownTrigger,
    events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<marginguard::engine::AccountExit>,
}

impl RunningEngine {
    pub fn start(venue: Arc<dyn Venue>, poll_interval: Duration) -> Self {
        let (runner, events) = distance_runner_polling(
            "streaming",
            venue,
            1,
            Arc::new(Journal::in_memory()),
            poll_interval,
        );
        let (trigger, shutdown) = marginguard::engine::shutdown::channel();
        let task = tokio::spawn(runner.run(shutdown));
        Self {
            trigger,
            events,
            task,
        }
    }

    /// Waits up to `limit` for an event matching `want`; everything seen meanwhile is kept.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        seen: &mut Vec<marginguard::engine::EventKind>,
        want: impl Fn(&marginguard::engine::EventKind) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    let hit = want(&event.kind);
                    seen.push(event.kind);
                    if hit {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Shuts the engine down and returns the events not yet read.
    pub async fn stop(mut self) -> Vec<marginguard::engine::EventKind> {
        self.trigger.trigger();
        let _ = self.task.await;
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            out.push(event.kind);
        }
        out
    }
}

/// A path in this repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One `[[accounts]]` table for a simulated account on the 2024-08-05 crash with `strategy`
/// (a repo path), the demo's caps and a 10 s poll; `speed` paces it (simulated seconds per
/// wall second), `None` replays as fast as it computes.
pub fn sim_account(name: &str, strategy: &str, speed: Option<u32>) -> String {
    let speed = speed.map(|s| format!("speed = {s}\n")).unwrap_or_default();
    format!(
        r#"
[[accounts]]
name = "{name}"
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
{speed}"#,
        strategy = repo(strategy).display(),
        scenario = repo("scenarios/btc-2024-08-05-10x-long.toml").display(),
    )
}

/// The daemon binary running `run --config`, with its endpoint's address read from the line
/// it prints ("status page on http://…/") and every stderr line kept. Killed when dropped.
pub struct Daemon {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/`.
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts it with `args` before `run`, and `env` set.
    pub fn start(args: &[&str], config: &Path, env: &[(&str, String)]) -> Daemon {
        use std::io::BufRead;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_marginguard"));
        command
            .args(args)
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the daemon starts");
        let stderr = child.stderr.take().expect("stderr");
        let (found, address) = std::sync::mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    /// SIGTERM, then the exit status and every line it wrote on stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("the daemon exits");
        // The reader thread ends with the pipe; give it a moment to keep the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let logs = self.logs.lock().unwrap().clone();
        (status, logs)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A config for one Binance account on a mock at `url`, holding `key`/`secret` in env vars
/// whose names carry `tag` (unique per test: tests run in parallel in one process).
pub fn binance_mock_config(
    dir_name: &str,
    url: &str,
    (key, secret): (&str, &str),
    dry_run: bool,
    tag: &str,
) -> PathBuf {
    let key_env = format!("MG_TEST_BINANCE_KEY_{tag}");
    let secret_env = format!("MG_TEST_BINANCE_SECRET_{tag}");
    std::env::set_var(&key_env, key);
    std::env::set_var(&secret_env, secret);
    let table = format!(
        r#"profile = "custom"
futures_url = "{url}"
spot_url = "{url}"
api_key_env = "{key_env}"
api_secret_env = "{secret_env}"
request_timeout = "2s"
"#
    );
    write_config(dir_name, "binance", &table, dry_run)
}

/// `check` on the config at `path`, keys and figures only: the venue suites check what a
/// venue answers, not the reserve plan (which replays every crash day per call).
pub async fn check_without_plan(path: &Path) -> Result<String, marginguard::cli::CliError> {
    let config = marginguard::config::Config::load(path).expect("the config loads");
    marginguard::cli::check_with(config, marginguard::cli::CheckOptions::WITHOUT_PLAN).await
}
