//! The operator's side on a real engine: a simulated crash day run through the wiring `run`
//! uses, its events folded into the board, its alerts recorded, its endpoint scraped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{repo, sim_account};
use marginguard::config::Config;
use marginguard::engine::{run_accounts, AccountExit, EventKind};
use marginguard::operator::http::{self, HttpSettings};
use marginguard::operator::status::StatusReport;
use marginguard::operator::NotifierStats;
use marginguard::operator::{Alert, AlertEvent, AlertRules, AlertSink, Operator};
use marginguard::wiring::{self, Mode};

mod common;
mod mock_receiver;

/// Keeps every alert it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<Alert>>);

#[async_trait::async_trait]
impl AlertSink for Recorder {
    fn send(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
    fn counts(&self) -> Vec<NotifierStats> {
        vec![NotifierStats {
            name: "recorder".into(),
            kind: "recorder",
            sent: self.0.lock().unwrap().len() as u64,
            failed: 0,
            dropped: 0,
        }]
    }
    async fn flush(&self, _within: Duration) {}
}

/// A config of one simulated account on the 2024-08-05 crash, replayed as fast as it
/// computes.
fn sim_config(name: &str) -> Config {
    let dir = std::env::temp_dir().join(format!("mg-operator-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, sim_account(name, "strategies/distance.toml", None)).unwrap();
    Config::load(&path).unwrap()
}

struct Replayed {
    operator: Operator,
    alerts: Vec<Alert>,
    exits: Vec<AccountExit>,
    /// Events by kind name, as the engine emitted them.
    events: BTreeMap<&'static str, usize>,
}

/// Runs the config's accounts to the end of their day with the operator watching.
async fn replay(config: &Config) -> Replayed {
    let recorder = Arc::new(Recorder::default());
    let mut run = replay_into(config, recorder.clone()).await;
    run.alerts = recorder.0.lock().unwrap().clone();
    run
}

/// As `replay`, alerting into `sink`.
async fn replay_into(config: &Config, sink: Arc<dyn AlertSink>) -> Replayed {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let wired = wiring::wire(
        &config.accounts,
        &config.journal,
        Mode::DryRun,
        Some(sender),
    )
    .expect("wired");
    let accounts = wiring::watched_accounts(&config.accounts, Mode::DryRun, &wired);
    let operator = Operator::new(accounts, AlertRules::default(), Some(sink), None);
    let observer = operator.clone();
    let collector = tokio::spawn(async move {
        let mut events = BTreeMap::new();
        while let Some(event) = receiver.recv().await {
            observer.observe(&event);
            *events.entry(kind_name(&event.kind)).or_default() += 1;
        }
        events
    });
    let exits = run_accounts(
        wired.runners,
        std::future::pending(),
        Duration::from_secs(1),
    )
    .await;
    let events = collector.await.unwrap();
    operator.stopped(&exits, Duration::from_secs(1)).await;
    Replayed {
        operator,
        alerts: Vec::new(),
        exits,
        events,
    }
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Observed { .. } => "observed",
        EventKind::TransferSent { .. } => "sent",
        EventKind::TransferLanded { .. } => "landed",
        _ => "other",
    }
}

fn count(alerts: &[Alert], event: AlertEvent, recovered: bool) -> usize {
    alerts
        .iter()
        .filter(|a| a.event == event && a.recovered == recovered)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_day_is_a_handful_of_alerts_not_one_per_tick() {
    let config = sim_config("crash");
    let run = replay(&config).await;
    let ticks = run.events["observed"];
    let sent = run.events.get("sent").copied().unwrap_or(0);
    assert!(sent >= 1, "the day needs a rescue: {:?}", run.events);
    // Every top-up is told, once each, and so is its landing.
    assert_eq!(count(&run.alerts, AlertEvent::TopUpSent, false), sent);
    assert_eq!(
        count(&run.alerts, AlertEvent::TopUpLanded, false),
        run.events["landed"]
    );
    // A condition is told when it starts and when it clears, never more often than that.
    for event in AlertEvent::ALL.into_iter().filter(|e| e.is_condition()) {
        let started = count(&run.alerts, event, false);
        let cleared = count(&run.alerts, event, true);
        assert!(
            cleared <= started && started <= cleared + 1,
            "{event:?}: {started} announced, {cleared} recovered"
        );
    }
    assert!(
        count(&run.alerts, AlertEvent::AlertLevel, false) >= 1,
        "the crash crosses the alert level"
    );
    // The whole day: thousands of ticks, a few dozen messages at most.
    assert!(
        run.alerts.len() * 50 < ticks,
        "{} alerts for {ticks} ticks: {:#?}",
        run.alerts.len(),
        run.alerts.iter().map(|a| &a.title).collect::<Vec<_>>()
    );
    let last = run.alerts.last().expect("alerts");
    assert_eq!(
        last.event,
        AlertEvent::Shutdown,
        "the last word is the shutdown"
    );
    assert!(last.text.contains("crash"), "{}", last.text);
    assert_eq!(run.exits.len(), 1);
}

/// The text format's lines: `name{labels} value`, each family with HELP and TYPE first.
fn parse_metrics(text: &str) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut families: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counters end in _total: {name}");
            }
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("a number: {line}")),
        };
        let name = series.split('{').next().unwrap().to_string();
        assert!(
            name.starts_with("marginguard_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
            "{name}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| typed.contains(*base))
            })
            .unwrap_or(&name)
            .to_string();
        assert!(typed.contains(&family), "{name} has no TYPE line before it");
        families
            .entry(name)
            .or_default()
            .push((series.to_string(), value));
    }
    families
}

/// The metric names docs/operator.md documents.
fn documented_metrics() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo("docs/operator.md")).unwrap();
    doc.split('`')
        .filter(|word| word.starts_with("marginguard_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_metrics_health_and_status_that_parse() {
    let config = sim_config("scraped");
    let run = replay(&config).await;
    let (address, _server) = http::serve(
        HttpSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        run.operator.clone(),
        std::future::pending(),
    )
    .await
    .expect("listening");
    let get = |path: &str| {
        let url = format!("http://{address}{path}");
        async move {
            let response = reqwest::get(&url).await.expect("answered");
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".into()));
    // The day is over and its runner stopped: not ready, and says which account.
    let (status, body) = get("/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: scraped\n"));

    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    let families = parse_metrics(&text);
    let documented = documented_metrics();
    for name in families.keys() {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| documented.contains(*b))
            .unwrap_or(name);
        assert!(
            documented.contains(base),
            "{name} is not in docs/operator.md"
        );
    }
    let sample = |name: &str, labels: &str| {
        families[name]
            .iter()
            .find(|(series, _)| series.contains(labels))
            .unwrap_or_else(|| panic!("{name}{{{labels}}} in {:?}", families[name]))
            .1
    };
    assert!(sample("marginguard_account_equity_usdt", "account=\"scraped\"") > 0.0);
    let sent = sample("marginguard_top_ups_total", "outcome=\"sent\"");
    assert_eq!(sent as usize, run.events["sent"]);
    let ticks = sample("marginguard_ticks_total", "result=\"decided\"");
    assert_eq!(ticks as usize, run.events["observed"]);
    // The histogram's +Inf bucket counts every decision.
    let all = sample("marginguard_decision_latency_seconds_bucket", "le=\"+Inf\"");
    assert_eq!(all, ticks);
    assert_eq!(sample("marginguard_account_ready", "scraped"), 0.0);

    let (status, json) = get("/status.json").await;
    assert_eq!(status, 200);
    let report: StatusReport = serde_json::from_str(&json).expect("the documented shape");
    assert!(!report.ready);
    let card = &report.accounts[0];
    assert_eq!(
        (card.name.as_str(), card.mode.as_str(), card.state.as_str()),
        ("scraped", "simulated", "stopped")
    );
    assert_eq!(card.top_ups.sent as usize, run.events["sent"]);
    assert_eq!(card.rescues.len(), run.events["sent"].min(10));
    assert!(card.rescues[0].created_at >= card.rescues[card.rescues.len() - 1].created_at);
    let (status, page) = get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("status.json"), "the page reads the report");
}

/// Notifiers whose receivers hang (or fail) change nothing about the rescues: the same day
/// replays to the same spend, in about the time it takes without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_hang_or_fail_do_not_stall_rescues() {
    use marginguard::operator::notify::config::RawNotifier;
    use marginguard::operator::NotifierSink;
    use mock_receiver::{Receiver, Reply};
    let hanging = Receiver::start(Reply::Hang).await;
    let failing = Receiver::start(Reply::status(500, "down")).await;
    let raw: Vec<RawNotifier> = [(&hanging, "hangs"), (&failing, "fails")]
        .iter()
        .map(|(receiver, name)| {
            std::env::set_var(format!("MG_OPERATOR_TEST_URL_{name}"), format!("{}/x", receiver.url));
            toml::from_str(&format!(
                "name = \"{name}\"\nkind = \"webhook\"\nurl_env = \"MG_OPERATOR_TEST_URL_{name}\"\ntimeout = \"1s\""
            ))
            .unwrap()
        })
        .collect();
    let settings = raw
        .into_iter()
        .map(|r| r.build(Path::new("test.toml"), "notifiers[0].").unwrap())
        .collect();
    let quiet = replay(&sim_config("quiet")).await;
    let noisy = tokio::time::timeout(
        Duration::from_secs(60),
        replay_into(
            &sim_config("noisy"),
            Arc::new(NotifierSink::start(settings)),
        ),
    )
    .await
    .expect("a day with stuck receivers still replays");
    assert_eq!(quiet.exits[0].spent, noisy.exits[0].spent);
    assert_eq!(quiet.exits[0].rescues, noisy.exits[0].rescues);
    assert!(quiet.exits[0].rescues >= 1);
    let metrics = noisy.operator.metrics();
    assert!(!hanging.hits().is_empty() && !failing.hits().is_empty());
    assert!(
        metrics.contains("marginguard_alerts_dropped_total{notifier=\"hangs\"}")
            && metrics.contains("marginguard_alerts_failed_total{notifier=\"fails\"}"),
        "{metrics}"
    );
}
