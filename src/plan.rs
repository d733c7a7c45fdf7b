//! The reserve planner: "how much reserve does my book need?", answered by replaying the book
//! through every shipped crash day with the user's strategy and settlement latency.
//!
//! A book (a scenario's positions, or a live account read once) is re-opened at each day's
//! first open with its own notional, side and leverage on its own wallet, so the day's price
//! path acts on it as returns from the open — exactly what the shipped scenarios do. For each
//! day the planner reports the hindsight oracle's reserve and the least reserve with which the
//! strategy, run by the real engine against the simulator, is not liquidated (a bisection over
//! the reserve, every probe a full replay).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::clock::Clock;
use crate::config_file::ConfigError;
use crate::core::{Account, Caps, Strategy, TierTable};
use crate::money::{Price, Qty, Usdt};
use crate::replay::{self, Contender};
use crate::time::Timestamp;
use crate::venue::sim::market::Bar;
use crate::venue::sim::path::oracle_reserve;
use crate::venue::sim::scenario::ScenarioPosition;
use crate::venue::sim::{Scenario, SimOutcome, SimVenue};

/// What can stop a plan before it replays anything.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A crash-day scenario could not be loaded.
    #[error(transparent)]
    Day(#[from] ConfigError),
    #[error("no crash-day scenarios to replay the book through")]
    NoDays,
    #[error("{symbol}: leverage {leverage} is outside (0, 200]")]
    Leverage { symbol: String, leverage: Decimal },
    #[error("{symbol}: a notional of {notional} USDT at {price} is a size too large to represent")]
    TooLarge {
        symbol: String,
        notional: Usdt,
        price: Price,
    },
}

/// One position of a book, independent of any day's prices.
#[derive(Debug, Clone)]
pub struct BookPosition {
    pub symbol: String,
    pub long: bool,
    /// USDT at entry (a scenario) or at mark (a live account): what is re-opened each day.
    pub notional: Usdt,
    pub leverage: Decimal,
    /// The position's maintenance brackets (the venue's, for a live account).
    pub tiers: Arc<TierTable>,
}

/// The book a plan is made for.
#[derive(Debug, Clone)]
pub struct Book {
    /// Where it came from ("scenario …", "account …"), for the heading.
    pub source: String,
    /// The futures wallet each day starts on (a live account's equity).
    pub wallet: Usdt,
    /// The reserve the user keeps now: what "covers" is judged against.
    pub reserve: Usdt,
    pub positions: Vec<BookPosition>,
    /// `None`: caps unbounded, the whole reserve may move; `Some`: the account's caps.
    pub caps: Option<Caps>,
}

impl Book {
    /// A scenario's book: its positions at their entry, its wallet and reserve; caps unbounded
    /// (the plan asks what reserve is needed, not what the scenario's caps allow).
    pub fn from_scenario(scenario: &Scenario) -> Book {
        let positions = scenario
            .positions
            .iter()
            .map(|p| BookPosition {
                symbol: p.symbol.clone(),
                long: p.is_long(),
                notional: p.size.saturating_mul(p.entry).abs(),
                leverage: p.leverage,
                tiers: p.tiers.clone(),
            })
            .collect();
        Book {
            source: format!("scenario {}", scenario.path.display()),
            wallet: scenario.wallet,
            reserve: scenario.reserve,
            positions,
            caps: None,
        }
    }

    /// A live account as one snapshot showed it: equity as the wallet, the reserve it could
    /// send, its open positions at mark, and its own caps.
    pub fn from_account(name: &str, account: &Account, reserve: Usdt, caps: Caps) -> Book {
        let positions = account
            .positions
            .iter()
            .filter(|p| !p.size.is_zero())
            .map(|p| BookPosition {
                symbol: p.symbol.clone(),
                long: p.size.0 > Decimal::ZERO,
                notional: p.notional(),
                leverage: p.leverage,
                tiers: p.tiers.clone(),
            })
            .collect();
        Book {
            source: format!("account {name}"),
            wallet: account.equity,
            reserve,
            positions,
            caps: Some(caps),
        }
    }

    pub fn is_flat(&self) -> bool {
        self.positions.is_empty()
    }
}

/// How finely the needed reserve is searched.
#[derive(Debug, Clone, Copy)]
pub struct Precision {
    /// Stop when the bracket is narrower than this share of its upper end …
    pub relative: Decimal,
    /// … or than this amount, whichever is larger.
    pub absolute: Usdt,
}

impl Precision {
    /// `plan`'s: 0.5 % or 1 USDT.
    pub const FINE: Precision = Precision {
        relative: Decimal::from_parts(5, 0, 0, false, 3),
        absolute: Usdt(Decimal::ONE),
    };
    /// `check`'s one-line version: 5 % or 10 USDT, about half the replays.
    pub const COARSE: Precision = Precision {
        relative: Decimal::from_parts(5, 0, 0, false, 2),
        absolute: Usdt(Decimal::TEN),
    };

    fn resolution(&self, high: Usdt) -> Usdt {
        Usdt((high.0.saturating_mul(self.relative)).max(self.absolute.0))
    }
}

/// Everything a plan replays with besides the book and the days.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub strategy: Strategy,
    pub poll_interval: Duration,
    pub settlement: Duration,
    pub precision: Precision,
}

/// The search never looks above this multiple of the larger of the wallet and the oracle.
pub const UPPER_MULTIPLE: i64 = 20;

/// One crash day's answer.
#[derive(Debug, Clone)]
pub struct DayPlan {
    /// `YYYY-MM-DD` of the first minute (`… to MM-DD` for a run of days).
    pub day: String,
    pub scenario: String,
    pub path: PathBuf,
    /// The book on that day with no bot.
    pub no_bot: SimOutcome,
    /// Whether the day spans more than one UTC date (liquidation times then carry the date).
    pub multi_day: bool,
    pub oracle: Usdt,
    /// The least reserve found with which the strategy survives; `None`: not even at `upper`.
    pub needed: Option<Usdt>,
    /// The largest reserve tried that was liquidated (`needed − resolution` or closer).
    pub failed_at: Option<Usdt>,
    /// The search's ceiling.
    pub upper: Usdt,
    /// The strategy's run at `needed` (or at `upper` when not survivable).
    pub run: SimOutcome,
    pub replays: usize,
    /// How the book was mapped onto the day's prices (proxies, brackets).
    pub notes: Vec<String>,
}

impl DayPlan {
    /// Whether `reserve` is enough for this day.
    pub fn covered_by(&self, reserve: Usdt) -> bool {
        self.needed.is_some_and(|needed| needed <= reserve)
    }
}

/// The whole answer.
#[derive(Debug, Clone)]
pub struct Plan {
    pub book: Book,
    pub strategy: String,
    pub poll_interval: Duration,
    pub settlement: Duration,
    pub days: Vec<DayPlan>,
}

/// A reserve rule beside the plan's own: an amount and how many days it covers.
#[derive(Debug, Clone)]
pub struct RuleLine {
    pub label: String,
    pub amount: Usdt,
    pub covers: usize,
}

impl Plan {
    /// The strategy's needs on the survivable days, least first.
    pub fn ladder(&self) -> Vec<Usdt> {
        let mut needs: Vec<Usdt> = self.days.iter().filter_map(|d| d.needed).collect();
        needs.sort();
        needs
    }

    /// How many days `reserve` covers.
    pub fn covers(&self, reserve: Usdt) -> usize {
        self.days.iter().filter(|d| d.covered_by(reserve)).count()
    }

    /// The recommendation: the reserve that survives every survivable day (the worst one's
    /// need), with how many days that is.
    pub fn recommendation(&self) -> Option<(usize, Usdt)> {
        let ladder = self.ladder();
        ladder.last().map(|worst| (ladder.len(), *worst))
    }

    /// Capital in the seed's rule of thumb: the wallet plus the reserve, all the money the
    /// user has put behind the book.
    pub fn capital(&self) -> Usdt {
        self.book.wallet.saturating_add(self.book.reserve)
    }

    /// The seed's "keep 20–30 % of capital as dry powder", as its two ends.
    pub fn seed_rule(&self) -> Vec<RuleLine> {
        [20, 30]
            .into_iter()
            .map(|percent| {
                let amount = Usdt(
                    self.capital()
                        .0
                        .saturating_mul(Decimal::new(percent, 2))
                        .round_dp(2),
                );
                RuleLine {
                    label: format!("{percent} % of capital"),
                    amount,
                    covers: self.covers(amount),
                }
            })
            .collect()
    }
}

/// The shipped crash days: every `scenarios/*.toml` in `dir`, sorted by file name.
pub fn shipped_days(dir: &Path) -> Result<Vec<PathBuf>, PlanError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        PlanError::Day(ConfigError::new(
            dir,
            "scenarios",
            format!("cannot list the crash days: {e}"),
        ))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(PlanError::NoDays);
    }
    Ok(paths)
}

/// Loads the crash days.
pub fn load_days(paths: &[PathBuf]) -> Result<Vec<Scenario>, PlanError> {
    if paths.is_empty() {
        return Err(PlanError::NoDays);
    }
    paths
        .iter()
        .map(|p| Scenario::load(p).map_err(PlanError::from))
        .collect()
}

/// Checks what every day would refuse, before any replay.
pub fn validate(book: &Book) -> Result<(), PlanError> {
    for p in &book.positions {
        if p.leverage <= Decimal::ZERO || p.leverage > Decimal::from(200) {
            return Err(PlanError::Leverage {
                symbol: p.symbol.clone(),
                leverage: p.leverage,
            });
        }
    }
    Ok(())
}

/// Plans `book` over `days` on every core: a pool of worker threads, each with its own
/// single-threaded runtime, takes the days longest first (a run of days bounds the wall time,
/// so it must not start last). Blocks the calling thread; `progress(done, total)` is called
/// from the workers after each day. The answer is in the order of `days` whatever the timing.
pub fn plan(
    book: &Book,
    days: &[Scenario],
    settings: &PlanSettings,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Plan, PlanError> {
    validate(book)?;
    let mut work = Vec::with_capacity(days.len());
    if !book.is_flat() {
        for day in days {
            work.push(book_on_day(book, day, settings)?);
        }
    }
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(work[i].0.positions[0].bars.len()));
    let planned = run_pool(&work, &order, settings, progress);
    Ok(Plan {
        book: book.clone(),
        strategy: settings.strategy.name.clone(),
        poll_interval: settings.poll_interval,
        settlement: settings.settlement,
        days: planned,
    })
}

fn run_pool(
    work: &[(Scenario, Vec<String>)],
    order: &[usize],
    settings: &PlanSettings,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<DayPlan> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len().max(1));
    let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let results: Mutex<Vec<Option<DayPlan>>> = Mutex::new(vec![None; work.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a single-threaded runtime builds");
                while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (scenario, notes) = work[index].clone();
                    let day = runtime.block_on(plan_day(
                        scenario,
                        notes,
                        &settings.strategy,
                        settings.precision,
                    ));
                    results.lock().expect("results lock")[index] = Some(day);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, work.len());
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|day| day.expect("every day was planned"))
        .collect()
}

/// The book re-opened at the day's first open: same notional, side, leverage and wallet; each
/// symbol on the day's own klines when the day has them, else on a stand-in path (noted).
pub fn book_on_day(
    book: &Book,
    day: &Scenario,
    settings: &PlanSettings,
) -> Result<(Scenario, Vec<String>), PlanError> {
    let mut notes = Vec::new();
    let mut positions = Vec::with_capacity(book.positions.len());
    for p in &book.positions {
        let (bars, klines_path) = day_path(day, &p.symbol, &mut notes);
        positions.push(reopen(p, bars, klines_path)?);
    }
    let scenario = Scenario {
        name: day.name.clone(),
        description: day.description.clone(),
        path: day.path.clone(),
        wallet: book.wallet,
        reserve: book.reserve,
        settlement: settings.settlement,
        transfer_step: day.transfer_step,
        positions,
        poll_interval: settings.poll_interval,
        caps: book.caps.clone(),
    };
    Ok((scenario, notes))
}

/// The minutes `symbol` lives through on `day`: the day's own position in it, else the same
/// kline files for that symbol beside the day's (the repo ships BTC and ETH for every crash
/// day), else BTC's path — or the day's first — as the market's stand-in.
fn day_path(day: &Scenario, symbol: &str, notes: &mut Vec<String>) -> (Arc<Vec<Bar>>, PathBuf) {
    if let Some(own) = day.positions.iter().find(|p| p.symbol == symbol) {
        return (own.bars.clone(), own.klines_path.clone());
    }
    if let Some((bars, path)) = sibling_klines(day, symbol) {
        let day_is_perp = day.positions[0]
            .klines_path
            .to_string_lossy()
            .contains("-perp");
        if day_is_perp && !path.to_string_lossy().contains("-perp") {
            notes.push(format!(
                "{symbol}: no perpetual klines for this day; its spot klines stand in"
            ));
        }
        return (bars, path);
    }
    let proxy = day
        .positions
        .iter()
        .find(|p| p.symbol == "BTCUSDT")
        .map(|p| (p.bars.clone(), p.klines_path.clone()))
        .or_else(|| sibling_klines(day, "BTCUSDT"))
        .unwrap_or_else(|| {
            let first = &day.positions[0];
            (first.bars.clone(), first.klines_path.clone())
        });
    notes.push(format!(
        "{symbol}: no {symbol} klines for this day; {} stands in as the market",
        proxy
            .1
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    proxy
}

/// `symbol`'s klines for the same minutes as the day's first position, from files named like
/// the day's (`BTCUSDT-1m-2024-08-05.csv` → `ETHUSDT-1m-2024-08-05.csv`), one per UTC date.
fn sibling_klines(day: &Scenario, symbol: &str) -> Option<(Arc<Vec<Bar>>, PathBuf)> {
    let first = &day.positions[0];
    let dir = first.klines_path.parent()?;
    let name = first.klines_path.file_name()?.to_str()?;
    // The same kind of prices if the repo has them, else the spot ones.
    let suffixes: &[&str] = if name.ends_with("-perp.csv") {
        &["-perp.csv", ".csv"]
    } else {
        &[".csv"]
    };
    suffixes
        .iter()
        .find_map(|suffix| klines_beside(day, dir, symbol, suffix))
}

fn klines_beside(
    day: &Scenario,
    dir: &Path,
    symbol: &str,
    suffix: &str,
) -> Option<(Arc<Vec<Bar>>, PathBuf)> {
    let first = &day.positions[0];
    let mut dates: Vec<String> = first.bars.iter().map(|b| b.open_time.date()).collect();
    dates.dedup();
    let mut bars = Vec::with_capacity(first.bars.len());
    let mut first_path = None;
    for date in dates {
        let path = dir.join(format!("{symbol}-1m-{date}{suffix}"));
        bars.extend(crate::venue::sim::market::load_klines(&path).ok()?);
        first_path.get_or_insert(path);
    }
    let same_minutes = bars.len() == first.bars.len()
        && bars.first().map(|b| b.open_time) == first.bars.first().map(|b| b.open_time);
    same_minutes.then(|| (Arc::new(bars), first_path.unwrap_or_default()))
}

/// A position opened at the first bar's open with the book's notional.
fn reopen(
    p: &BookPosition,
    bars: Arc<Vec<Bar>>,
    klines_path: PathBuf,
) -> Result<ScenarioPosition, PlanError> {
    // Every loaded kline file has at least one row.
    let entry = bars[0].open;
    let too_large = || PlanError::TooLarge {
        symbol: p.symbol.clone(),
        notional: p.notional,
        price: entry,
    };
    // As a scenario sizes a notional: 10⁻⁶ base units is finer than any venue's lot step.
    let magnitude = p
        .notional
        .0
        .checked_div(entry.0)
        .ok_or_else(too_large)?
        .round_dp_with_strategy(6, RoundingStrategy::ToZero);
    Ok(ScenarioPosition {
        symbol: p.symbol.clone(),
        size: Qty(if p.long { magnitude } else { -magnitude }),
        entry,
        leverage: p.leverage,
        tiers: p.tiers.clone(),
        bars,
        klines_path,
    })
}

/// One day: no bot, the oracle, then the search for the strategy's need.
async fn plan_day(
    scenario: Scenario,
    notes: Vec<String>,
    strategy: &Strategy,
    precision: Precision,
) -> DayPlan {
    let no_bot = SimVenue::new(scenario.clone(), Clock::virtual_at(scenario.start())).finish();
    let oracle = oracle_reserve(&scenario);
    let upper = Usdt(
        scenario
            .wallet
            .0
            .max(oracle.0)
            .max(Decimal::ONE)
            .saturating_mul(Decimal::from(UPPER_MULTIPLE))
            .round_dp(2),
    );
    let search = search_needed(&scenario, strategy, oracle, upper, precision).await;
    let first = scenario.start();
    let last = Timestamp(scenario.end().0.saturating_sub(1));
    let multi_day = first.date() != last.date();
    let day = if multi_day {
        format!("{} to {}", first.date(), &last.date()[5..])
    } else {
        first.date()
    };
    DayPlan {
        day,
        scenario: scenario.name.clone(),
        path: scenario.path.clone(),
        no_bot,
        multi_day,
        oracle,
        needed: search.needed,
        failed_at: search.failed_at,
        upper,
        run: search.run,
        replays: search.replays,
        notes,
    }
}

struct Search {
    needed: Option<Usdt>,
    failed_at: Option<Usdt>,
    run: SimOutcome,
    replays: usize,
}

/// The least reserve (to `precision`) with which `strategy` survives the day.
///
/// Below the oracle nothing survives (moving it all in at the start is the best any bot can
/// do), so the search starts there. The run with the ceiling as reserve spends some S and
/// survives; with exactly S every decision is the same (the reserve clamped nothing), so S
/// bounds the answer too. The strategy's need usually sits just above the oracle, so the
/// search gallops up from it (oracle, +1, +3, +7 … resolutions, never past S) and bisects the
/// last bracket. Survival is monotone enough in the reserve for this; the answer is always a
/// reserve whose replay survived, and `failed_at` one whose replay did not.
async fn search_needed(
    scenario: &Scenario,
    strategy: &Strategy,
    oracle: Usdt,
    upper: Usdt,
    precision: Precision,
) -> Search {
    let mut replays = 0;
    let mut probe = |reserve: Usdt| {
        replays += 1;
        let mut s = scenario.clone();
        s.reserve = reserve;
        let contender = Contender::Bot(strategy.clone());
        async move { replay::replay(&s, &contender).await.outcome }
    };
    if oracle.is_zero() {
        // The book survives the day alone; with no reserve the bot cannot move anything.
        let run = probe(Usdt::ZERO).await;
        return Search {
            needed: run.liquidated.is_none().then_some(Usdt::ZERO),
            failed_at: None,
            run,
            replays,
        };
    }
    let at_upper = probe(upper).await;
    if at_upper.liquidated.is_some() {
        return Search {
            needed: None,
            failed_at: Some(upper),
            run: at_upper,
            replays,
        };
    }
    let mut cap = at_upper.reserve_spent.max(oracle);
    let mut high = (upper, at_upper);
    // The oracle less a transfer step cannot survive (see above).
    let mut low = oracle
        .saturating_sub(scenario.transfer_step)
        .max(Usdt::ZERO);
    let mut failed_at = low;
    let (mut offset, mut stride) = (Usdt::ZERO, precision.resolution(oracle));
    loop {
        let candidate = oracle.saturating_add(offset).min(cap);
        if candidate >= high.0 || candidate <= low {
            break;
        }
        let run = probe(candidate).await;
        if run.liquidated.is_none() {
            high = (candidate, run);
            break;
        }
        (low, failed_at) = (candidate, candidate);
        if candidate == cap {
            cap = high.0;
        }
        offset = offset.saturating_add(stride);
        stride = stride.saturating_add(stride);
    }
    while high.0 - low > precision.resolution(high.0) {
        let middle = Usdt((low.0 + (high.0 - low).0 / Decimal::TWO).round_dp(2));
        if middle <= low || middle >= high.0 {
            break;
        }
        let run = probe(middle).await;
        if run.liquidated.is_none() {
            high = (middle, run);
        } else {
            (low, failed_at) = (middle, middle);
        }
    }
    Search {
        needed: Some(high.0),
        failed_at: Some(failed_at),
        run: high.1,
        replays,
    }
}

/// "liquidated at HH:MM" (with the date on a run of days) or "survives".
pub fn no_bot_label(day: &DayPlan) -> String {
    match &day.no_bot.liquidated {
        Some(l) if day.multi_day => format!("liquidated {} {}", &l.at.date()[5..], l.at.hh_mm()),
        Some(l) => format!("liquidated at {}", l.at.hh_mm()),
        None => "survives".into(),
    }
}

fn needed_label(day: &DayPlan) -> String {
    match day.needed {
        Some(needed) => money(needed),
        None => format!("not survivable (≤ {})", money(day.upper)),
    }
}

fn money(amount: Usdt) -> String {
    crate::report::money(amount)
}

/// Whole USDT with thousands separators, for the one-line summaries.
fn whole(amount: Usdt) -> String {
    let rounded = Usdt(
        amount
            .0
            .round_dp_with_strategy(0, RoundingStrategy::AwayFromZero),
    );
    let text = money(rounded);
    text.strip_suffix(".00").map(str::to_owned).unwrap_or(text)
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

fn caps_label(caps: &Option<Caps>) -> String {
    match caps {
        None => "caps unbounded (the whole reserve may move)".into(),
        Some(c) => format!(
            "the account's caps ({} per rescue, {} per 24 h, keep {})",
            money(c.max_per_rescue),
            money(c.max_per_day),
            money(c.keep_at_least)
        ),
    }
}

fn book_line(book: &Book) -> String {
    let positions: Vec<String> = book
        .positions
        .iter()
        .map(|p| {
            format!(
                "{} {} {} USDT at {}×",
                p.symbol,
                if p.long { "long" } else { "short" },
                money(p.notional),
                p.leverage.normalize()
            )
        })
        .collect();
    format!(
        "{}: {}; wallet {} USDT, reserve {} USDT",
        book.source,
        if positions.is_empty() {
            "no open positions".into()
        } else {
            positions.join(", ")
        },
        money(book.wallet),
        money(book.reserve)
    )
}

const FLAT: &str = "a flat book needs no reserve";

/// The table for people: one row per day, then the recommendation and the seed's rule.
pub fn render_table(plan: &Plan) -> String {
    let mut out = format!("reserve plan for {}\n", book_line(&plan.book));
    if plan.book.is_flat() {
        out.push_str(&format!("{FLAT}\n"));
        return out;
    }
    out.push_str(&format!(
        "strategy {}, polls every {}, transfers settle in {}; {}\n\n",
        plan.strategy,
        crate::config::literal::format_duration(plan.poll_interval),
        crate::config::literal::format_duration(plan.settlement),
        caps_label(&plan.book.caps)
    ));
    out.push_str(&format!(
        "  {:<19} {:<46} {:<24} {:>12} {:>30}  {}\n",
        "day", "scenario", "no bot", "oracle", "strategy needs", "your reserve"
    ));
    for day in &plan.days {
        out.push_str(&format!(
            "  {:<19} {:<46} {:<24} {:>12} {:>30}  {}\n",
            day.day,
            clip(&day.scenario, 46),
            no_bot_label(day),
            money(day.oracle),
            needed_label(day),
            if day.covered_by(plan.book.reserve) {
                "covers"
            } else {
                "short"
            }
        ));
    }
    for day in &plan.days {
        for note in &day.notes {
            out.push_str(&format!("  note ({}): {note}\n", day.day));
        }
    }
    out.push('\n');
    out.push_str(&recommendation_lines(plan));
    out
}

fn recommendation_lines(plan: &Plan) -> String {
    let m = plan.days.len();
    let reserve = plan.book.reserve;
    let mut out = String::new();
    match plan.recommendation() {
        Some((n, keep)) => out.push_str(&format!(
            "to survive {n} of {m} days keep {} USDT (the strategy's need on its worst survivable day); your reserve of {} covers {} of {m}\n",
            money(keep),
            money(reserve),
            plan.covers(reserve)
        )),
        None => out.push_str(&format!(
            "no reserve up to {}× the wallet lets the strategy survive any of the {m} days\n",
            UPPER_MULTIPLE
        )),
    }
    let ladder = plan.ladder();
    if ladder.len() > 1 {
        let steps: Vec<String> = ladder
            .iter()
            .enumerate()
            .map(|(i, need)| format!("{} → {}", i + 1, money(*need)))
            .collect();
        out.push_str(&format!(
            "  days survived → reserve to keep: {}\n",
            steps.join(", ")
        ));
    }
    if let Some(worst) = plan
        .days
        .iter()
        .filter(|d| d.needed.is_some())
        .max_by_key(|d| d.needed)
    {
        out.push_str(&format!(
            "  max over days: {} USDT on {} ({}); the hindsight oracle needed {}\n",
            money(worst.needed.unwrap_or_default()),
            worst.day,
            worst.scenario,
            money(worst.oracle)
        ));
    }
    for day in plan.days.iter().filter(|d| d.needed.is_none()) {
        out.push_str(&format!(
            "  not survivable: {} ({}) — liquidated even with {} USDT in reserve{}\n",
            day.day,
            day.scenario,
            money(day.upper),
            if plan.book.caps.is_some() {
                " under the account's caps"
            } else {
                ""
            }
        ));
    }
    out.push_str(&format!(
        "seed's rule, 20–30 % of capital (capital = wallet + reserve = {} USDT):\n",
        money(plan.capital())
    ));
    for rule in plan.seed_rule() {
        out.push_str(&format!(
            "  {}: {} USDT covers {} of {m}\n",
            rule.label,
            money(rule.amount),
            rule.covers
        ));
    }
    out
}

/// `check`'s one line for an account.
pub fn one_line(plan: &Plan, command: &str) -> String {
    let m = plan.days.len();
    if plan.book.is_flat() {
        return format!("reserve plan: {FLAT}");
    }
    let keep = match plan.recommendation() {
        Some((n, keep)) => format!(
            "keep {} USDT to survive {n} of {m} shipped crash days",
            whole(keep)
        ),
        None => format!("no reserve survives any of the {m} shipped crash days"),
    };
    format!(
        "reserve plan: {keep} with strategy {} (your reserve {} covers {} of {m}); `{command}` for the table",
        plan.strategy,
        whole(plan.book.reserve),
        plan.covers(plan.book.reserve)
    )
}

/// One row per day, exact decimals; the recommendation is the JSON's.
pub fn render_csv(plan: &Plan) -> String {
    let mut out = String::from(
        "day,scenario,no_bot_liquidated_at,oracle,needed,failed_at,upper,covered,replays,notes\n",
    );
    for day in &plan.days {
        let cells = [
            day.day.clone(),
            day.scenario.clone(),
            day.no_bot
                .liquidated
                .as_ref()
                .map(|l| format!("{} {}", l.at.date(), l.at.hh_mm()))
                .unwrap_or_default(),
            day.oracle.0.to_string(),
            day.needed.map(|n| n.0.to_string()).unwrap_or_default(),
            day.failed_at.map(|n| n.0.to_string()).unwrap_or_default(),
            day.upper.0.to_string(),
            day.covered_by(plan.book.reserve).to_string(),
            day.replays.to_string(),
            day.notes.join("; "),
        ];
        let quoted: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Everything, amounts as exact decimal strings.
pub fn render_json(plan: &Plan) -> String {
    use serde_json::json;
    let amount = |a: Usdt| json!(a.0.to_string());
    let days: Vec<serde_json::Value> = plan
        .days
        .iter()
        .map(|d| {
            json!({
                "day": d.day,
                "scenario": d.scenario,
                "path": d.path.display().to_string(),
                "no_bot_liquidated_at": d.no_bot.liquidated.as_ref().map(|l| format!("{} {}", l.at.date(), l.at.hh_mm())),
                "oracle": amount(d.oracle),
                "needed": d.needed.map(amount),
                "failed_at": d.failed_at.map(amount),
                "upper": amount(d.upper),
                "covered": d.covered_by(plan.book.reserve),
                "reserve_spent_at_needed": amount(d.run.reserve_spent),
                "replays": d.replays,
                "notes": d.notes,
            })
        })
        .collect();
    let recommendation = plan
        .recommendation()
        .map(|(n, keep)| json!({ "survive": n, "of": plan.days.len(), "keep": amount(keep) }));
    let seed: Vec<serde_json::Value> = plan
        .seed_rule()
        .iter()
        .map(|r| json!({ "rule": r.label, "amount": amount(r.amount), "covers": r.covers }))
        .collect();
    let value = json!({
        "book": book_line(&plan.book),
        "flat": plan.book.is_flat(),
        "wallet": amount(plan.book.wallet),
        "reserve": amount(plan.book.reserve),
        "strategy": plan.strategy,
        "poll_interval_secs": plan.poll_interval.as_secs_f64(),
        "settlement_secs": plan.settlement.as_secs_f64(),
        "caps": caps_label(&plan.book.caps),
        "days": days,
        "recommendation": recommendation,
        "reserve_covers": plan.covers(plan.book.reserve),
        "ladder": plan.ladder().into_iter().map(amount).collect::<Vec<_>>(),
        "capital": amount(plan.capital()),
        "seed_rule": seed,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
