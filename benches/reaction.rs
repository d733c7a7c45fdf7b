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
//! `BENCH_IDLE_SECS` (default 60, 0 skips it) set the sizes, `BENCH_VENUES` (e.g. `okx`) the
//! venues, `BENCH_SETTLE_MS` (default 150) how long a fresh engine settles before the wick.

#[path = "../tests/mock_binance/mod.rs"]
mod mock_binance;
#[path = "../tests/mock_bybit/mod.rs"]
mod mock_bybit;
#[path = "../tests/mock_okx/mod.rs"]
mod mock_okx;
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
use mock_bybit::MockBybit;
use mock_okx::MockOkx;

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

/// What the bench needs of a venue's mock.
trait BenchMock: Sized {
    const NAME: &'static str;
    async fn start() -> Self;
    /// The healthy account every trial starts from: 1 BTC long at 60,000, 6,000 in the
    /// futures wallet, an ample reserve; the request log cleared.
    fn reset(&self);
    fn streaming_adapter(&self) -> Box<dyn Venue>;
    fn polling_adapter(&self) -> Box<dyn Venue>;
    /// (mark-stream, account-stream) connections accepted so far.
    fn stream_connects(&self) -> (u32, u32);
    /// Moves the mark and pushes it on the stream.
    fn move_mark(&self, mark: Decimal);
    /// Moves the mark REST reports, without a push.
    fn set_rest_mark(&self, mark: Decimal);
    /// When the first frame with the last moved mark left the mock's socket.
    fn moved_mark_sent(&self) -> Option<Instant>;
    /// When each transfer request reached the mock.
    fn transfer_arrivals(&self) -> Vec<Instant>;
    fn position_reads(&self) -> usize;
    fn clear_requests(&self);
    /// Each budget the requests so far drew on: (name, spent, limit), both per minute of
    /// `seconds` observed.
    fn budgets(&self, seconds: f64) -> Vec<(String, f64, f64)>;
}

impl BenchMock for MockBinance {
    const NAME: &'static str = "binance";

    async fn start() -> Self {
        MockBinance::start(Decimal::from(6_000), Decimal::from(1_000_000_000)).await
    }

    fn reset(&self) {
        self.with(|s| {
            s.wallet = Decimal::from(6_000);
            s.spot_free = Decimal::from(1_000_000_000);
            s.qty = Decimal::ONE;
            s.mark = Decimal::from(60_000);
            s.liquidated = false;
            s.seen.clear();
            s.used.clear();
        });
    }

    fn streaming_adapter(&self) -> Box<dyn Venue> {
        MockBinance::streaming_adapter(self, Duration::from_secs(30))
    }

    fn polling_adapter(&self) -> Box<dyn Venue> {
        Box::new(self.adapter(mock_binance::SECRET))
    }

    fn stream_connects(&self) -> (u32, u32) {
        MockBinance::stream_connects(self)
    }

    fn move_mark(&self, mark: Decimal) {
        MockBinance::move_mark(self, mark);
    }

    fn set_rest_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }

    fn moved_mark_sent(&self) -> Option<Instant> {
        self.with(|s| s.ws.moved_mark_sent)
    }

    fn transfer_arrivals(&self) -> Vec<Instant> {
        self.with(|s| s.transfer_arrivals.clone())
    }

    fn position_reads(&self) -> usize {
        self.count(mock_binance::Route::PositionRisk)
    }

    fn clear_requests(&self) {
        self.with(|s| s.seen.clear());
    }

    /// Binance's weight pools (binance.md §5).
    fn budgets(&self, seconds: f64) -> Vec<(String, f64, f64)> {
        use mock_binance::Route;
        let mut spent = [0u32; 3];
        for seen in self.seen() {
            let (pool, weight) = match seen.route {
                Some(Route::ServerTime | Route::Brackets) => (0, 1),
                Some(Route::Account | Route::PositionRisk | Route::AccountConfig) => (0, 5),
                Some(Route::ListenKeyCreate | Route::ListenKeyKeepalive) => (0, 1),
                Some(Route::SpotAccount) => (1, 20),
                Some(Route::TransferHistory | Route::ApiRestrictions) => (2, 1),
                _ => continue,
            };
            spent[pool] += weight;
        }
        let per_minute = |w: u32| f64::from(w) * 60.0 / seconds;
        vec![
            ("futures IP weight".into(), per_minute(spent[0]), 2_400.0),
            ("spot IP weight".into(), per_minute(spent[1]), 6_000.0),
            ("sapi IP weight".into(), per_minute(spent[2]), 12_000.0),
        ]
    }
}

/// Requests per minute of each endpoint the requests so far called, against its documented
/// limit per minute.
fn per_endpoint<R: std::fmt::Debug + Eq + std::hash::Hash + Copy>(
    routes: impl Iterator<Item = R>,
    limit_per_minute: impl Fn(R) -> Option<f64>,
    seconds: f64,
) -> Vec<(String, f64, f64)> {
    let mut counts: std::collections::HashMap<R, u32> = std::collections::HashMap::new();
    for route in routes {
        *counts.entry(route).or_default() += 1;
    }
    let mut out: Vec<(String, f64, f64)> = counts
        .into_iter()
        .filter_map(|(route, n)| {
            let limit = limit_per_minute(route)?;
            Some((format!("{route:?}"), f64::from(n) * 60.0 / seconds, limit))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl BenchMock for MockBybit {
    const NAME: &'static str = "bybit";

    async fn start() -> Self {
        MockBybit::start(Decimal::from(6_000), Decimal::from(1_000_000_000)).await
    }

    fn reset(&self) {
        self.with(|s| {
            s.wallet = Decimal::from(6_000);
            s.fund = Decimal::from(1_000_000_000);
            s.qty = Decimal::ONE;
            s.mark = Decimal::from(60_000);
            s.liquidated = false;
            s.seen.clear();
            s.used.clear();
            s.closed_until.clear();
            s.ip_used = (std::time::Instant::now(), 0);
            if let Some(cadence) = mock_cadence() {
                s.ws.cadence = cadence;
            }
        });
    }

    fn streaming_adapter(&self) -> Box<dyn Venue> {
        MockBybit::streaming_adapter(self, Duration::from_secs(30))
    }

    fn polling_adapter(&self) -> Box<dyn Venue> {
        Box::new(self.adapter(mock_bybit::SECRET))
    }

    fn stream_connects(&self) -> (u32, u32) {
        MockBybit::stream_connects(self)
    }

    fn move_mark(&self, mark: Decimal) {
        MockBybit::move_mark(self, mark);
    }

    fn set_rest_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }

    fn moved_mark_sent(&self) -> Option<Instant> {
        self.with(|s| s.ws.moved_mark_sent)
    }

    fn transfer_arrivals(&self) -> Vec<Instant> {
        self.with(|s| s.transfer_arrivals.clone())
    }

    fn position_reads(&self) -> usize {
        self.count(mock_bybit::Route::Positions)
    }

    fn clear_requests(&self) {
        self.with(|s| s.seen.clear());
    }

    /// Bybit's per-UID endpoint limits (bybit.md §5.3); public endpoints share 600 per 5 s.
    fn budgets(&self, seconds: f64) -> Vec<(String, f64, f64)> {
        let routes = self.seen().into_iter().filter_map(|seen| seen.route);
        per_endpoint(
            routes,
            |route: mock_bybit::Route| {
                Some(match route.limit() {
                    Some((count, window)) => f64::from(count) * 60.0 / window.as_secs_f64(),
                    None => 7_200.0,
                })
            },
            seconds,
        )
    }
}

impl BenchMock for MockOkx {
    const NAME: &'static str = "okx";

    async fn start() -> Self {
        MockOkx::start(Decimal::from(6_000), Decimal::from(1_000_000_000)).await
    }

    fn reset(&self) {
        self.with(|s| {
            s.cash = Decimal::from(6_000);
            s.funding = Decimal::from(1_000_000_000);
            s.contracts = Decimal::from(100);
            s.mark = Decimal::from(60_000);
            s.liquidated = false;
            s.seen.clear();
            s.calls.clear();
            if let Some(cadence) = mock_cadence() {
                s.ws.cadence = cadence;
            }
        });
    }

    fn streaming_adapter(&self) -> Box<dyn Venue> {
        MockOkx::streaming_adapter(self, Duration::from_secs(30))
    }

    fn polling_adapter(&self) -> Box<dyn Venue> {
        Box::new(self.adapter(mock_okx::SECRET))
    }

    fn stream_connects(&self) -> (u32, u32) {
        MockOkx::stream_connects(self)
    }

    fn move_mark(&self, mark: Decimal) {
        MockOkx::move_mark(self, mark);
    }

    fn set_rest_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }

    fn moved_mark_sent(&self) -> Option<Instant> {
        self.with(|s| s.ws.moved_mark_sent)
    }

    fn transfer_arrivals(&self) -> Vec<Instant> {
        self.with(|s| s.transfer_arrivals.clone())
    }

    fn position_reads(&self) -> usize {
        self.count(mock_okx::Route::Positions)
    }

    fn clear_requests(&self) {
        self.with(|s| s.seen.clear());
    }

    /// OKX's per-endpoint limits (okx.md §5).
    fn budgets(&self, seconds: f64) -> Vec<(String, f64, f64)> {
        let routes = self.seen().into_iter().filter_map(|seen| seen.route);
        per_endpoint(
            routes,
            |route: mock_okx::Route| {
                let (count, window) = route.limit();
                Some(count as f64 * 60.0 / window.as_secs_f64())
            },
            seconds,
        )
    }
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
async fn streamed_trial<M: BenchMock>(mock: &M, salt: u64) -> Option<Duration> {
    mock.reset();
    let (markets, privates) = mock.stream_connects();
    let venue: Arc<dyn Venue> = Arc::from(mock.streaming_adapter());
    let running = start(runner(venue, Duration::from_secs(30), salt));
    let connected = wait_until(Duration::from_secs(5), || {
        let (m, p) = mock.stream_connects();
        m > markets && p > privates
    })
    .await;
    // The reseeds after connecting (both streams), so the wick meets a settled account as
    // it would in a daemon that has run for a while.
    tokio::time::sleep(Duration::from_millis(env_or("BENCH_SETTLE_MS", 150) as u64)).await;
    let arrivals = mock.transfer_arrivals().len();
    mock.move_mark(Decimal::from(58_000));
    let arrived = wait_until(Duration::from_secs(2), || {
        mock.transfer_arrivals().len() > arrivals
    })
    .await;
    let latency = mock.moved_mark_sent().and_then(|sent| {
        let at = *mock.transfer_arrivals().get(arrivals)?;
        Some(at.saturating_duration_since(sent))
    });
    running.stop().await;
    if !(connected && arrived && latency.is_some()) {
        eprintln!(
            "{} trial {salt}: connected {connected}, transfer {arrived}, frame seen {}",
            M::NAME,
            latency.is_some()
        );
    }
    (connected && arrived).then_some(latency).flatten()
}

/// One polled trial (1 s polls): from the mark change at the mock to the transfer.
async fn polled_trial<M: BenchMock>(mock: &M, salt: u64) -> Option<Duration> {
    mock.reset();
    let venue: Arc<dyn Venue> = Arc::from(mock.polling_adapter());
    let running = start(runner(venue, Duration::from_secs(1), salt));
    let first_read = wait_until(Duration::from_secs(3), || mock.position_reads() > 0).await;
    // A phase that varies from trial to trial against the poll.
    let phase = Duration::from_millis(salt.wrapping_mul(7919) % 1000);
    tokio::time::sleep(phase).await;
    let arrivals = mock.transfer_arrivals().len();
    let changed = Instant::now();
    mock.set_rest_mark(Decimal::from(58_000));
    let arrived = wait_until(Duration::from_secs(3), || {
        mock.transfer_arrivals().len() > arrivals
    })
    .await;
    let latency = mock
        .transfer_arrivals()
        .get(arrivals)
        .map(|at| at.saturating_duration_since(changed));
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

async fn reaction<M: BenchMock>(trials_stream: usize, trials_poll: usize) {
    let mock = M::start().await;
    let mut samples = Vec::with_capacity(trials_stream);
    let mut failures = 0;
    for trial in 0..trials_stream {
        match streamed_trial(&mock, trial as u64 + 1).await {
            Some(latency) => samples.push(latency),
            None => failures += 1,
        }
    }
    summary(
        &format!("{} streamed (mark → transfer)", M::NAME),
        samples,
        failures,
    );
    let mut samples = Vec::with_capacity(trials_poll);
    let mut failures = 0;
    for trial in 0..trials_poll {
        match polled_trial(&mock, trial as u64 + 1).await {
            Some(latency) => samples.push(latency),
            None => failures += 1,
        }
    }
    summary(&format!("{} polled every 1 s", M::NAME), samples, failures);
}

/// A healthy account streamed, and one polled at the default 10 s, side by side for
/// `seconds`: request budget spent per minute.
async fn idle_weight<M: BenchMock>(seconds: u64) {
    let streamed = M::start().await;
    let polled = M::start().await;
    streamed.reset();
    polled.reset();
    let poll = Duration::from_secs(10);
    let a = start(runner(Arc::from(streamed.streaming_adapter()), poll, 1));
    let b = start(runner(Arc::from(polled.polling_adapter()), poll, 2));
    // Start-up reads (tiers, clock, account mode) are not idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    streamed.clear_requests();
    polled.clear_requests();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    a.stop().await;
    b.stop().await;
    for (label, mock) in [
        ("streamed, idle", &streamed),
        ("polled every 10 s, idle", &polled),
    ] {
        let line = mock
            .budgets(seconds as f64)
            .into_iter()
            .map(|(name, spent, limit)| {
                format!(
                    "{name} {spent:.1}/min ({:.2} % of {limit})",
                    spent / limit * 100.0
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        println!("{} {label:<26} {line}", M::NAME);
    }
}

/// `BENCH_MOCK_CADENCE_MS`: the Bybit and OKX mocks push periodic marks this often instead of
/// at their venues' 100 / 200 ms, to see what the mock's own frame traffic costs the tail.
fn mock_cadence() -> Option<Duration> {
    std::env::var("BENCH_MOCK_CADENCE_MS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// `BENCH_VENUES=okx,bybit` runs only those (all by default).
fn wanted(venue: &str) -> bool {
    std::env::var("BENCH_VENUES").map_or(true, |list| list.split(',').any(|v| v.trim() == venue))
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
        if wanted(MockBinance::NAME) {
            reaction::<MockBinance>(stream, poll).await;
        }
        if wanted(MockBybit::NAME) {
            reaction::<MockBybit>(stream, poll).await;
        }
        if wanted(MockOkx::NAME) {
            reaction::<MockOkx>(stream, poll).await;
        }
        if idle > 0 {
            idle_weight::<MockBinance>(idle).await;
            idle_weight::<MockBybit>(idle).await;
            idle_weight::<MockOkx>(idle).await;
        }
    });
}
