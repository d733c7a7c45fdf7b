//! The crash harness: the real binary, live against each mock venue (Binance, Bybit, OKX), killed
//! with SIGKILL at seeded points around its transfers and restarted, over and over. Afterwards the mock's ledger must
//! match the journal: no transfer twice, no transfer without its record, every cap respected.
//!
//! Kill points (`marginguard::failpoint`): before the intent is written; after it, before the
//! call; after the venue answered, before the answer is recorded; while verifying a settled
//! transfer — plus "during the request": the mock applies the transfer and holds its answer
//! while the harness kills the client.
//!
//! CI runs a few hundred kill points. The full run:
//!
//! ```sh
//! CRASH_KILL_POINTS=10000 CRASH_THREADS=24 cargo test --release --test crash -- --nocapture
//! ```
#![cfg(unix)]

mod mock_binance;
mod mock_bybit;
mod mock_okx;
mod mock_server;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use marginguard::failpoint;
use marginguard::journal::{Journal, RescueStage};
use mock_binance::MockBinance;
use mock_bybit::MockBybit;
use mock_okx::MockOkx;

/// What the harness needs of a mock venue.
trait CrashVenue {
    fn name(&self) -> &'static str;
    /// The `[accounts.<venue>]` table pointing the daemon at this mock, with its key in the
    /// environment variables `MG_CRASH_KEY`, `MG_CRASH_SECRET` (and `MG_CRASH_PASSPHRASE`).
    fn venue_table(&self) -> String;
    fn credentials(&self) -> [(&'static str, &'static str); 3];
    fn set_mark(&self, mark: Decimal);
    /// Forgets the request counts: each child is a fresh process, and counts piling up across
    /// hundreds of them would hold calls no single daemon would make.
    fn reset_usage(&self);
    /// The next transfer is applied and its answer held back (for a kill mid-request).
    fn hold_next_transfer_answer(&self);
    fn clear_faults(&self);
    fn transfer_amounts(&self) -> Vec<Decimal>;
}

impl CrashVenue for MockBinance {
    fn name(&self) -> &'static str {
        "binance"
    }
    fn venue_table(&self) -> String {
        format!(
            "[accounts.binance]\nprofile = \"custom\"\nfutures_url = \"{url}\"\nspot_url = \"{url}\"\napi_key_env = \"MG_CRASH_KEY\"\napi_secret_env = \"MG_CRASH_SECRET\"\nrequest_timeout = \"2s\"\nrecv_window = \"1s\"\n",
            url = self.url
        )
    }
    fn credentials(&self) -> [(&'static str, &'static str); 3] {
        credentials(mock_binance::API_KEY, mock_binance::SECRET, "")
    }
    fn set_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }
    fn reset_usage(&self) {
        self.with(|s| s.used.clear());
    }
    fn hold_next_transfer_answer(&self) {
        self.fail_next(
            mock_binance::Route::Transfer,
            mock_binance::Fault::Slow(Duration::from_secs(5)),
        );
    }
    fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }
    fn transfer_amounts(&self) -> Vec<Decimal> {
        self.ledger().iter().map(|row| row.amount).collect()
    }
}

impl CrashVenue for MockBybit {
    fn name(&self) -> &'static str {
        "bybit"
    }
    fn venue_table(&self) -> String {
        format!(
            "[accounts.bybit]\nprofile = \"testnet\"\nbase_url = \"{url}\"\napi_key_env = \"MG_CRASH_KEY\"\napi_secret_env = \"MG_CRASH_SECRET\"\nrequest_timeout = \"2s\"\nrecv_window = \"1s\"\n",
            url = self.url
        )
    }
    fn credentials(&self) -> [(&'static str, &'static str); 3] {
        credentials(mock_bybit::API_KEY, mock_bybit::SECRET, "")
    }
    fn set_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }
    fn reset_usage(&self) {
        self.with(|s| {
            s.used.clear();
            s.closed_until.clear();
            s.ip_used.1 = 0;
        });
    }
    fn hold_next_transfer_answer(&self) {
        self.fail_next(
            mock_bybit::Route::Transfer,
            mock_bybit::Fault::Slow(Duration::from_secs(5)),
        );
    }
    fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }
    fn transfer_amounts(&self) -> Vec<Decimal> {
        self.ledger().iter().map(|row| row.amount).collect()
    }
}

const MAX_PER_RESCUE: i64 = 2_000;
const MAX_PER_DAY: i64 = 6_000;

/// The mark at each step of a chain: a slide from 60,000 to 50,000 that needs more top-ups
/// than the day cap allows, so the caps are exercised too.
const MARKS: [i64; 12] = [
    60_000, 58_500, 58_000, 57_000, 56_000, 55_500, 55_000, 54_000, 53_000, 52_000, 51_000, 50_000,
];

/// Where a child is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KillPoint {
    Failpoint(&'static str),
    DuringRequest,
}

impl KillPoint {
    fn name(self) -> &'static str {
        match self {
            KillPoint::Failpoint(name) => name,
            KillPoint::DuringRequest => "during_request",
        }
    }
}

/// A small deterministic generator: the same seed replays the same chain.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default, Debug)]
struct Tally {
    chains: usize,
    children: usize,
    kills: BTreeMap<&'static str, usize>,
    venues: BTreeMap<&'static str, usize>,
    transfers: usize,
    double_transfers: usize,
    lost_records: usize,
    cap_violations: usize,
    open_rows_left: usize,
}

impl Tally {
    fn kill_points(&self) -> usize {
        self.kills.values().sum()
    }

    fn absorb(&mut self, chain: Tally) {
        self.chains += chain.chains;
        self.children += chain.children;
        for (point, count) in chain.kills {
            *self.kills.entry(point).or_default() += count;
        }
        for (venue, count) in chain.venues {
            *self.venues.entry(venue).or_default() += count;
        }
        self.transfers += chain.transfers;
        self.double_transfers += chain.double_transfers;
        self.lost_records += chain.lost_records;
        self.cap_violations += chain.cap_violations;
        self.open_rows_left += chain.open_rows_left;
    }
}

impl CrashVenue for MockOkx {
    fn name(&self) -> &'static str {
        "okx"
    }
    fn venue_table(&self) -> String {
        format!(
            "[accounts.okx]\nrest_url = \"{url}\"\napi_key_env = \"MG_CRASH_KEY\"\napi_secret_env = \"MG_CRASH_SECRET\"\npassphrase_env = \"MG_CRASH_PASSPHRASE\"\nrequest_timeout = \"2s\"\n",
            url = self.url
        )
    }
    fn credentials(&self) -> [(&'static str, &'static str); 3] {
        credentials(mock_okx::API_KEY, mock_okx::SECRET, mock_okx::PASSPHRASE)
    }
    fn set_mark(&self, mark: Decimal) {
        self.with(|s| s.mark = mark);
    }
    fn reset_usage(&self) {
        self.with(|s| s.calls.clear());
    }
    fn hold_next_transfer_answer(&self) {
        self.fail_next(
            mock_okx::Route::Transfer,
            mock_okx::Fault::Slow(Duration::from_secs(5)),
        );
    }
    fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }
    fn transfer_amounts(&self) -> Vec<Decimal> {
        self.ledger().iter().map(|row| row.amount).collect()
    }
}

fn credentials(
    key: &'static str,
    secret: &'static str,
    passphrase: &'static str,
) -> [(&'static str, &'static str); 3] {
    [
        ("MG_CRASH_KEY", key),
        ("MG_CRASH_SECRET", secret),
        ("MG_CRASH_PASSPHRASE", passphrase),
    ]
}

fn write_config(dir: &Path, mock: &dyn CrashVenue) -> PathBuf {
    let strategy = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/distance.toml");
    let config = format!(
        r#"dry_run = false
journal = "journal.sqlite"

[[accounts]]
name = "crash"
venue = "{venue_name}"
strategy = "{strategy}"
poll_interval = "1s"
# A non-zero grace, run from the first lookup after the venue could have shown the transfer.
unknown_outcome_grace = "2s"

[accounts.caps]
max_per_rescue = "{MAX_PER_RESCUE}"
max_per_day = "{MAX_PER_DAY}"
cooldown = "0s"

{venue}"#,
        strategy = strategy.display(),
        venue = mock.venue_table(),
        venue_name = mock.name(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn spawn(config: &Path, mock: &dyn CrashVenue, armed: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginguard"));
    command
        .args(["run", "--ticks", "1", "--config"])
        .arg(config)
        .envs(mock.credentials())
        .env("RUST_LOG", "error")
        .env_remove(failpoint::ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(point) = armed {
        command.env(failpoint::ENV, point);
    }
    command.spawn().unwrap()
}

/// Lines of a child's stderr, read on a thread so the harness can wait with a deadline.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn kill(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
}

/// Runs one child for one tick, armed at `point`. Returns whether it was killed there.
fn run_child(config: &Path, mock: &dyn CrashVenue, point: Option<KillPoint>) -> bool {
    mock.reset_usage();
    let armed = match point {
        Some(KillPoint::Failpoint(name)) => Some(name),
        _ => None,
    };
    if point == Some(KillPoint::DuringRequest) {
        mock.hold_next_transfer_answer();
    }
    let ledger_before = mock.transfer_amounts().len();
    let mut child = spawn(config, mock, armed);
    let lines = stderr_lines(&mut child);
    let mut said = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "child hung");
        if point == Some(KillPoint::DuringRequest) && mock.transfer_amounts().len() > ledger_before
        {
            // The mock has moved the money and holds its answer: kill the client now.
            kill(&mut child);
            return true;
        }
        match lines.recv_timeout(Duration::from_millis(2)) {
            Ok(line) if line.starts_with("FAILPOINT") => {
                kill(&mut child);
                return true;
            }
            Ok(line) => said.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                assert!(
                    status.success(),
                    "{} child failed: {status:?}\n{}",
                    mock.name(),
                    said.join("\n")
                );
                if point == Some(KillPoint::DuringRequest) {
                    // No transfer this tick: take the unused fault back.
                    mock.clear_faults();
                }
                return false;
            }
        }
    }
}

const POINTS: [KillPoint; 5] = [
    KillPoint::Failpoint(failpoint::BEFORE_INTENT),
    KillPoint::Failpoint(failpoint::AFTER_INTENT),
    KillPoint::Failpoint(failpoint::AFTER_RESPONSE),
    KillPoint::Failpoint(failpoint::DURING_VERIFICATION),
    KillPoint::DuringRequest,
];

/// One chain: a fresh mock account and journal, the mark sliding step by step, a child per
/// step (most of them armed at a random kill point), then unarmed children to settle, then
/// the books are compared.
/// How late the mocks' transfer lookups show a transfer: under the configured 2 s grace, so
/// a lagging record is waited for.
const HISTORY_LAG: Duration = Duration::from_millis(1_500);

fn run_chain(runtime: &tokio::runtime::Runtime, seed: u64, tally: &mut Tally) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Alternate venues chain by chain, from the same starting book.
    let (wallet, reserve) = (Decimal::from(6_000), Decimal::from(10_000));
    // Binance's history and OKX's transfer-state show a transfer late (HISTORY_LAG, within
    // the grace): a restarted daemon must wait for it, not read the lag as absence.
    let mock: Box<dyn CrashVenue> = match seed % 3 {
        0 => {
            let okx = runtime.block_on(MockOkx::start(wallet, reserve));
            okx.with(|s| s.state_lag_ms = HISTORY_LAG.as_millis() as i64);
            Box::new(okx)
        }
        1 => {
            let binance = runtime.block_on(MockBinance::start(wallet, reserve));
            binance.with(|s| s.history_lag_ms = HISTORY_LAG.as_millis() as i64);
            Box::new(binance)
        }
        _ => Box::new(runtime.block_on(MockBybit::start(wallet, reserve))),
    };
    let mock = mock.as_ref();
    let dir = std::env::temp_dir().join(format!("mg-crash-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(&dir, mock);
    for mark in MARKS {
        mock.set_mark(Decimal::from(mark));
        // Several children per step: a killed one leaves work for the next.
        for _ in 0..3 {
            let point =
                (rng.below(5) != 0).then(|| POINTS[rng.below(POINTS.len() as u64) as usize]);
            tally.children += 1;
            if run_child(&config, mock, point) {
                let name = point.expect("killed only when armed").name();
                *tally.kills.entry(name).or_default() += 1;
                *tally.venues.entry(mock.name()).or_default() += 1;
            }
        }
    }
    // Settle: unarmed ticks reconcile whatever the kills left open. A transfer whose call a
    // kill cut off before it was made is absent at the venue, and on Binance and OKX it only
    // lapses once the venue could have shown it plus the grace: wait for that, boundedly.
    let journal = dir.join("journal.sqlite");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        tally.children += 1;
        run_child(&config, mock, None);
        if !has_open_rows(&journal) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    tally.chains += 1;
    check_books(&dir.join("journal.sqlite"), mock, tally);
    let _ = std::fs::remove_dir_all(&dir);
}

fn has_open_rows(journal: &Path) -> bool {
    Journal::open_for_reading(journal)
        .and_then(|j| j.all())
        .map(|rows| rows.iter().any(|r| r.state.is_open()))
        .unwrap_or(false)
}

/// Every transfer the venue made has exactly one journal row; no row claims two transfers;
/// the caps hold; nothing is left open.
fn check_books(journal: &Path, mock: &dyn CrashVenue, tally: &mut Tally) {
    let ledger = mock.transfer_amounts();
    let rows = Journal::open(journal).unwrap().all().unwrap();
    tally.transfers += ledger.len();
    tally.open_rows_left += rows.iter().filter(|r| r.state.is_open()).count();
    let mut recorded: Vec<Decimal> = rows
        .iter()
        .filter(|r| r.state == RescueStage::Settled)
        .map(|r| r.amount.0)
        .collect();
    let all_amounts: Vec<Decimal> = rows.iter().map(|r| r.amount.0).collect();
    let mut total = Decimal::ZERO;
    for amount in &ledger {
        total += *amount;
        if *amount > Decimal::from(MAX_PER_RESCUE) {
            tally.cap_violations += 1;
        }
        match recorded.iter().position(|a| a == amount) {
            Some(i) => {
                recorded.swap_remove(i);
            }
            // A transfer whose rescue is recorded but already matched: paid twice.
            None if all_amounts.contains(amount) => tally.double_transfers += 1,
            None => tally.lost_records += 1,
        }
    }
    if total > Decimal::from(MAX_PER_DAY) {
        tally.cap_violations += 1;
    }
    // Settled rows no transfer backs are lost records too (the journal claims money moved).
    tally.lost_records += recorded.len();
    if tally.lost_records + tally.double_transfers > 0 && std::env::var("CRASH_DEBUG").is_ok() {
        eprintln!("{} ledger: {ledger:#?}", mock.name());
        eprintln!(
            "journal: {:#?}",
            rows.iter()
                .map(|r| (
                    r.key.compact(),
                    r.amount.0,
                    r.created_at,
                    r.state,
                    r.venue_id.clone(),
                    r.detail.clone()
                ))
                .collect::<Vec<_>>()
        );
        panic!("books differ");
    }
}

#[test]
fn killed_at_any_point_the_daemon_never_pays_twice_nor_forgets() {
    let target: usize = std::env::var("CRASH_KILL_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    // Chains are independent (each has its own mock, journal and folder) and spend most of
    // their time waiting for unseen transfers to lapse, so they run side by side.
    let threads: usize = std::env::var("CRASH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let started = Instant::now();
    let shared = std::sync::Mutex::new((Tally::default(), 1_u64));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let seed = {
                        let mut guard = shared.lock().unwrap();
                        if guard.0.kill_points() >= target {
                            return;
                        }
                        guard.1 += 1;
                        guard.1 - 1
                    };
                    let mut chain = Tally::default();
                    run_chain(&runtime, seed, &mut chain);
                    shared.lock().unwrap().0.absorb(chain);
                }
            });
        }
    });
    let tally = shared.into_inner().unwrap().0;
    println!(
        "crash harness: {} kill points over {} chains and {} child processes in {:.0?}",
        tally.kill_points(),
        tally.chains,
        tally.children,
        started.elapsed()
    );
    for (point, count) in &tally.kills {
        println!("  killed {point:<20} {count}");
    }
    for (venue, count) in &tally.venues {
        println!("  kill points against {venue:<8} {count}");
    }
    println!(
        "  transfers {}, double transfers {}, lost records {}, cap violations {}, rows left open {}",
        tally.transfers,
        tally.double_transfers,
        tally.lost_records,
        tally.cap_violations,
        tally.open_rows_left
    );
    assert!(
        tally.transfers > 0,
        "the chains must move money to test anything"
    );
    assert_eq!(tally.double_transfers, 0, "{tally:?}");
    assert_eq!(tally.lost_records, 0, "{tally:?}");
    assert_eq!(tally.cap_violations, 0, "{tally:?}");
    assert_eq!(tally.open_rows_left, 0, "{tally:?}");
    assert_eq!(
        tally.venues.len(),
        3,
        "every venue was exercised: {tally:?}"
    );
    for point in POINTS {
        assert!(
            tally.kills.get(point.name()).copied().unwrap_or(0) > 0,
            "kill point {} never reached",
            point.name()
        );
    }
}
