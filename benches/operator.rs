//! What watching costs: folding one engine event into the operator's board (the path every
//! tick's event takes), rendering `/metrics`, building `/status.json` — and how long an alert
//! takes from `send` to a webhook receiver on loopback (signing, HTTP, the receiver's 204).
//!
//! `cargo bench --bench operator`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use marginguard::config::Config;
use marginguard::engine::{Event, EventKind};
use marginguard::operator::{AlertRules, Operator};
use marginguard::wiring::{self, Mode};

/// The demo's accounts, wired as `run` wires them, and one real `Observed` event of each.
fn demo() -> (Operator, Vec<Event>) {
    let config = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
        .expect("the demo config");
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut wired = wiring::wire(
        &config.accounts,
        &config.journal,
        Mode::DryRun,
        Some(sender),
    )
    .expect("wired");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Two hours into the day, so the board holds decisions and the journal rescues.
    for runner in &mut wired.runners {
        for _ in 0..720 {
            runtime.block_on(runner.tick()).expect("a tick");
        }
    }
    let accounts = wiring::watched_accounts(&config.accounts, Mode::DryRun, &wired);
    let operator = Operator::new(accounts, AlertRules::default(), None, None);
    let mut observed = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        operator.observe(&event);
        if matches!(event.kind, EventKind::Observed { .. }) {
            observed.push(event);
        }
    }
    (operator, observed)
}

fn bench_operator(c: &mut Criterion) {
    let (operator, observed) = demo();
    let event = observed.last().expect("an observation").clone();
    let mut group = c.benchmark_group("operator");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("observe one tick's event", |b| {
        b.iter(|| operator.observe(std::hint::black_box(&event)))
    });
    group.bench_function("render /metrics (2 accounts)", |b| {
        b.iter(|| operator.metrics())
    });
    group.bench_function("build /status.json (2 accounts, journal read)", |b| {
        b.iter(|| serde_json::to_string(&operator.status()).unwrap())
    });
    group.finish();
}

/// A webhook receiver on 127.0.0.1:0 that counts what it receives.
async fn counting_receiver() -> (String, Arc<Counted>) {
    let counted = Arc::new(Counted::default());
    let state = counted.clone();
    let router = axum::Router::new().fallback(move || {
        let state = state.clone();
        async move {
            state
                .count
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            state.arrived.notify_waiters();
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, counted)
}

#[derive(Default)]
struct Counted {
    count: std::sync::atomic::AtomicU64,
    arrived: tokio::sync::Notify,
}

impl Counted {
    async fn wait_past(&self, before: u64) {
        loop {
            let arrived = self.arrived.notified();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) > before {
                return;
            }
            arrived.await;
        }
    }
}

fn bench_alert_delivery(c: &mut Criterion) {
    use marginguard::operator::{Alert, AlertEvent, AlertSeverity, Notifiers, RawNotifier};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, counted) = runtime.block_on(counting_receiver());
    std::env::set_var("MG_BENCH_WEBHOOK_URL", format!("{url}/hook"));
    std::env::set_var("MG_BENCH_WEBHOOK_SECRET", "bench-secret");
    let raw: RawNotifier = toml::from_str(
        "name = \"bench\"\nkind = \"webhook\"\nurl_env = \"MG_BENCH_WEBHOOK_URL\"\nhmac_secret_env = \"MG_BENCH_WEBHOOK_SECRET\"",
    )
    .unwrap();
    let settings = raw.build(Path::new("bench.toml"), "notifiers[0].").unwrap();
    let notifiers = runtime.block_on(async { Notifiers::start(vec![settings]) });
    let alert = Alert {
        event: AlertEvent::TopUpSent,
        severity: AlertSeverity::Warning,
        account: Some("main".into()),
        venue: Some("binance".into()),
        at: marginguard::time::Timestamp(1_796_409_600_123),
        title: "main: top-up sent: 1,200 USDT into the futures wallet".into(),
        text: "liquidation distance 7.9% < 8.00%".into(),
        recovered: false,
        details: [("amount".to_string(), "1200".to_string())].into(),
    };
    c.bench_function(
        "operator/alert send → signed webhook received (loopback)",
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for _ in 0..iters {
                        let before = counted.count.load(std::sync::atomic::Ordering::SeqCst);
                        notifiers.send(&alert);
                        counted.wait_past(before).await;
                    }
                    started.elapsed()
                })
            })
        },
    );
}

criterion_group!(benches, bench_operator, bench_alert_delivery);
criterion_main!(benches);
