//! Reaction latency and idle request weight, measured against the in-process mock venues on
//! loopback (`cargo bench --bench reaction`).
//!
//! Reaction: from the mock's mark frame leaving its socket to the signed transfer request
//! arriving at the mock, over many trials; each trial is a fresh engine, adapter and journal
//! on one mock, so no trial's caps, cooldown or in-flight row touches the next. The same with
//! REST polling every second, from the mock's mark change to the transfer.
//!
//! Idle weight: what a healthy account costs per minute in request weight, streamed versus
//! polled at the default 10 s, as a share of the venue's budget.
//!
//! `BENCH_STREAM_TRIALS` (default 1000), `BENCH_POLL_TRIALS` (default 100) and
//! `BENCH_IDLE_SECS` (default 60) set the sizes.

#[path = "../tests/mock_binance/mod.rs"]
mod mock_binance;
#[path = "../tests/mock_server/mod.rs"]
mod mock_server;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use marginguard::clock::Clock;
use marginguard::core::Caps;
use marginguard::engine::{self, AccountRunner, AccountSetup};
use marginguard::journal::Journal;
use marginguard::money::Usdt;
use marginguard::venue::Venue;
use mock_binance::MockBinance;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A runner on the default strategy with caps that never bind and no cooldown.
fn runner(venue: Arc<dyn Venue>, poll: Duration, salt: u64) -> AccountRunner {
    let strategy = marginguard::config::strategy::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/distance.toml"),
    )
    .expect("the shipped strategy loads");
    let big = Usdt(Decimal::from(1_000_000_000));
    AccountRunner::new(
        AccountSetup {
            name: "bench".into(),
            venue,
            strategy,
            caps: Caps {
                max_per_rescue: big,
                max_per_day: big,
                keep_at_least: Usdt::ZERO,
                cooldown: Duration::ZERO,
            },
            poll_interval: poll,
            clock: Clock::Wall,
            key_salt: salt,
            journal: Arc::new(Journal::in_memory()),
            unknown_outcome_grace: Duration::from_secs(120),
        },
        None,
    )
    .expect("an in-memory journal opens")
}

/// The healthy account every trial starts from: 1 BTC long at 60,000, 6,000 in the wallet.
fn reset(mock: &MockBinance) {
    mock.with(|s| {
        s.wallet = Decimal::from(6_000);
        s.spot_free = Decimal::from(1_000_000_000);
        s.qty = Decimal::ONE;
        s.mark = Decimal::from(60_000);
        s.liquidated = false;
        s.seen.clear();
        s.used.clear();
    });
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    done()
}

struct Started {
    trigger: engine::ShutdownTrigger,
    task: tokio::task::JoinHandle<engine::AccountExit>,
}

fn start(runner: AccountRunner) -> Started {
    let (trigger, shutdown) = engine::shutdown::channel();
    Started {
        trigger,
        task: tokio::spawn(runner.run(shutdown)),
    }
}

impl Started {
    async fn stop(self) {
        self.trigger.trigger();
        let _ = self.task.await;
    }
}

/// One streamed trial: the latency from the wick's frame leaving the mock to the transfer
/// arriving, or `None` if no transfer came within 2 s.
async fn streamed_trial(mock: &MockBinance, salt: u64) -> Option<Duration> {
    reset(mock);
    let (markets, privates) = mock.stream_connects();
    let venue: Arc<dyn Venue> = Arc::from(mock.streaming_adapter(Duration::from_secs(30)));
    let running = start(runner(venue, Duration::from_secs(30), salt));
    let connected = wait_until(Duration::from_secs(5), || {
        let (m, p) = mock.stream_connects();
        m > markets && p > privates
    })
    .await;
    // The reseeds after connecting (both streams), so the wick meets a settled account as
    // it would in a daemon that has run for a while.
    tokio::time::sleep(Duration::from_millis(env_or("BENCH_SETTLE_MS", 150) as u64)).await;
    let arrivals = mock.with(|s| s.transfer_arrivals.len());
    mock.with(|s| s.ws.moved_mark_sent = None);
    mock.move_mark(Decimal::from(58_000));
    let arrived = wait_until(Duration::from_secs(2), || {
        mock.with(|s| s.transfer_arrivals.len() > arrivals)
    })
    .await;
    let latency = mock.with(|s| {
        let sent = s.ws.moved_mark_sent?;
        let at = *s.transfer_arrivals.get(arrivals)?;
        Some(at.saturating_duration_since(sent))
    });
    running.stop().await;
    if !(connected && arrived && latency.is_some()) {
        eprintln!(
            "trial {salt}: connected {connected}, transfer {arrived}, frame seen {}",
            latency.is_some()
        );
    }
    (connected && arrived).then_some(latency).flatten()
}

/// One polled trial (1 s polls): from the mark change at the mock to the transfer.
async fn polled_trial(mock: &MockBinance, salt: u64) -> Option<Duration> {
    reset(mock);
    let venue: Arc<dyn Venue> = Arc::new(mock.adapter(mock_binance::SECRET));
    let running = start(runner(venue, Duration::from_secs(1), salt));
    let first_read = wait_until(Duration::from_secs(3), || {
        mock.count(mock_binance::Route::PositionRisk) > 0
    })
    .await;
    // A phase that varies from trial to trial against the poll.
    let phase = Duration::from_millis(salt.wrapping_mul(7919) % 1000);
    tokio::time::sleep(phase).await;
    let arrivals = mock.with(|s| s.transfer_arrivals.len());
    let changed = Instant::now();
    mock.with(|s| s.mark = Decimal::from(58_000));
    let arrived = wait_until(Duration::from_secs(3), || {
        mock.with(|s| s.transfer_arrivals.len() > arrivals)
    })
    .await;
    let latency = mock.with(|s| {
        s.transfer_arrivals
            .get(arrivals)
            .map(|at| at.saturating_duration_since(changed))
    });
    running.stop().await;
    (first_read && arrived).then_some(latency).flatten()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(label: &str, mut samples: Vec<Duration>, failures: usize) {
    samples.sort();
    println!(
        "{label:<34} trials {:>5}  p50 {:>9.3} ms  p99 {:>9.3} ms  max {:>9.3} ms  no transfer {failures}",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn reaction(trials_stream: usize, trials_poll: usize) {
    let mock = MockBinance::start(Decimal::from(6_000), Decimal::from(1_000_000_000)).await;
    mock.with(|s| s.history_lag_ms = 0);
    let mut samples = Vec::with_capacity(trials_stream);
    let mut failures = 0;
    for trial in 0..trials_stream {
        match streamed_trial(&mock, trial as u64 + 1).await {
            Some(latency) => samples.push(latency),
            None => failures += 1,
        }
    }
    summary("binance streamed (mark → transfer)", samples, failures);
    let mut samples = Vec::with_capacity(trials_poll);
    let mut failures = 0;
    for trial in 0..trials_poll {
        match polled_trial(&mock, trial as u64 + 1).await {
            Some(latency) => samples.push(latency),
            None => failures += 1,
        }
    }
    summary("binance polled every 1 s", samples, failures);
}

/// The weight a healthy account spends per minute: (futures IP, spot IP, SAPI IP) weights.
fn weights(mock: &MockBinance) -> [u32; 3] {
    use mock_binance::Route;
    let mut total = [0u32; 3];
    for seen in mock.seen() {
        let (pool, weight) = match seen.route {
            Some(Route::ServerTime | Route::Brackets) => (0, 1),
            Some(Route::Account | Route::PositionRisk | Route::AccountConfig) => (0, 5),
            Some(Route::ListenKeyCreate | Route::ListenKeyKeepalive) => (0, 1),
            Some(Route::SpotAccount) => (1, 20),
            Some(Route::TransferHistory | Route::ApiRestrictions) => (2, 1),
            _ => continue,
        };
        total[pool] += weight;
    }
    total
}

async fn idle_weight(seconds: u64) {
    let streamed = MockBinance::start(Decimal::from(6_000), Decimal::from(10_000)).await;
    let polled = MockBinance::start(Decimal::from(6_000), Decimal::from(10_000)).await;
    let poll = Duration::from_secs(10);
    let a = start(runner(
        Arc::from(streamed.streaming_adapter(Duration::from_secs(30))),
        poll,
        1,
    ));
    let b = start(runner(
        Arc::new(polled.adapter(mock_binance::SECRET)),
        poll,
        2,
    ));
    // Start-up reads (brackets, clock, config) are not idle: count from the first minute on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    streamed.with(|s| s.seen.clear());
    polled.with(|s| s.seen.clear());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    a.stop().await;
    b.stop().await;
    let per_minute = |w: u32| f64::from(w) * 60.0 / seconds as f64;
    let limits = [2_400.0, 6_000.0, 12_000.0];
    for (label, mock) in [
        ("binance streamed, idle", &streamed),
        ("binance polled every 10 s, idle", &polled),
    ] {
        let w = weights(mock);
        println!(
            "{label:<34} weight/min: futures {:>6.1} ({:.2} % of 2,400)  spot {:>6.1} ({:.2} % of 6,000)  sapi {:>5.1} ({:.3} % of 12,000)",
            per_minute(w[0]),
            per_minute(w[0]) / limits[0] * 100.0,
            per_minute(w[1]),
            per_minute(w[1]) / limits[1] * 100.0,
            per_minute(w[2]),
            per_minute(w[2]) / limits[2] * 100.0,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small.
    let benching = std::env::args().any(|a| a == "--bench");
    let (stream, poll, idle) = if benching {
        (
            env_or("BENCH_STREAM_TRIALS", 1_000),
            env_or("BENCH_POLL_TRIALS", 100),
            env_or("BENCH_IDLE_SECS", 60) as u64,
        )
    } else {
        (3, 1, 3)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        reaction(stream, poll).await;
        idle_weight(idle).await;
    });
}
