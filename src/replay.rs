//! Replays of real days: one scenario, one strategy, the real engine against the simulator —
//! and the references every run is judged against (no bot, the hindsight oracle, baselines).
//!
//! A run here is exactly what `marginguard run` does on a simulated account (same engine, same
//! core, same sim venue, a virtual clock and an in-memory journal), so the table answers "would
//! this strategy, with this reserve, have saved me on that day?" for the bot as it ships.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::core::{Caps, Levels, MetricKind, Strategy};
use crate::engine::{run_accounts, AccountRunner, AccountSetup, Event};
use crate::journal::Journal;
use crate::money::{Ratio, Usdt};
use crate::venue::sim::market::SUBSTEP_MS;
use crate::venue::sim::path::oracle_reserve;
use crate::venue::sim::{Scenario, SimOutcome, SimVenue};

/// Overrides a user may apply to every scenario of a replay.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub poll_interval: Option<Duration>,
    pub settlement: Option<Duration>,
    pub reserve: Option<Usdt>,
}

impl Overrides {
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut s = scenario.clone();
        if let Some(poll) = self.poll_interval {
            s.poll_interval = poll;
        }
        if let Some(settlement) = self.settlement {
            s.settlement = settlement;
        }
        if let Some(reserve) = self.reserve {
            s.reserve = reserve;
        }
        s
    }
}

/// How the bot sees the account during a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// A REST snapshot every poll interval (the scenario's).
    Poll,
    /// Streamed marks: the bot sees every 15-second sub-step of the walk, and its rescue
    /// horizon is a 1 s stream cadence plus the settlement latency.
    Stream,
}

impl Feed {
    /// The stream cadence a streamed replay assumes (Binance's `@markPrice@1s`).
    pub const STREAM_CADENCE: Duration = Duration::from_secs(1);
}

/// What a run is: a strategy on a scenario (polled or streamed), or the same day with no bot.
#[derive(Debug, Clone)]
pub enum Contender {
    NoBot,
    Bot(Strategy),
    Streamed(Strategy),
}

impl Contender {
    pub fn label(&self) -> String {
        match self {
            Contender::NoBot => "no bot".into(),
            Contender::Bot(strategy) => strategy.name.clone(),
            Contender::Streamed(strategy) => format!("{} · stream", strategy.name),
        }
    }

    /// `strategy` run on each of `feeds`.
    pub fn on_feeds(strategy: &Strategy, feeds: &[Feed]) -> Vec<Contender> {
        feeds
            .iter()
            .map(|feed| match feed {
                Feed::Poll => Contender::Bot(strategy.clone()),
                Feed::Stream => Contender::Streamed(strategy.clone()),
            })
            .collect()
    }
}

/// One replayed day.
#[derive(Debug, Clone)]
pub struct Run {
    pub scenario: String,
    pub contender: String,
    pub outcome: SimOutcome,
    /// The least reserve that, moved in at the start, would have avoided liquidation.
    pub oracle: Usdt,
    pub reserve: Usdt,
    pub events: Vec<Event>,
}

/// Replays `scenario` with `contender`, to the end of its day.
pub async fn replay(scenario: &Scenario, contender: &Contender) -> Run {
    let oracle = oracle_reserve(scenario);
    let (outcome, events) = match contender {
        // Without a bot the engine still watches (its timeline shows the day), with caps of
        // zero so that it can never move anything.
        Contender::NoBot => run_engine(scenario, watcher(), Caps::nothing(), Feed::Poll).await,
        Contender::Bot(strategy) => {
            let caps = scenario.caps_or_reserve();
            run_engine(scenario, strategy.clone(), caps, Feed::Poll).await
        }
        Contender::Streamed(strategy) => {
            let caps = scenario.caps_or_reserve();
            run_engine(scenario, strategy.clone(), caps, Feed::Stream).await
        }
    };
    Run {
        scenario: scenario.name.clone(),
        contender: contender.label(),
        outcome,
        oracle,
        reserve: scenario.reserve,
        events,
    }
}

/// The levels a watching engine reports against (it never acts).
fn watcher() -> Strategy {
    Strategy::new(
        "watch".into(),
        String::new(),
        MetricKind::LiquidationDistance,
        Levels {
            alert_below: ratio(10),
            top_up_below: ratio(8),
            target: ratio(12),
            floor: ratio(4),
        },
        None,
    )
    .expect("valid levels")
}

async fn run_engine(
    scenario: &Scenario,
    strategy: Strategy,
    caps: Caps,
    feed: Feed,
) -> (SimOutcome, Vec<Event>) {
    let clock = Clock::virtual_at(scenario.start());
    let (sim, poll_interval) = match feed {
        Feed::Poll => (
            SimVenue::new(scenario.clone(), clock.clone()),
            scenario.poll_interval,
        ),
        // The walk changes the marks only at its sub-steps, so a tick at each sub-step sees
        // every mark a stream would push.
        Feed::Stream => (
            SimVenue::new(scenario.clone(), clock.clone()).streamed(Feed::STREAM_CADENCE),
            Duration::from_millis(SUBSTEP_MS as u64),
        ),
    };
    let sim = Arc::new(sim);
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let runner = AccountRunner::new(
        AccountSetup {
            name: "replay".into(),
            venue: sim.clone(),
            strategy,
            caps,
            poll_interval,
            clock,
            key_salt: 0,
            journal: Arc::new(Journal::in_memory()),
            unknown_outcome_grace: Duration::from_secs(120),
        },
        Some(sender),
    )
    .expect("an in-memory journal always opens");
    run_accounts(vec![runner], std::future::pending(), Duration::from_secs(1)).await;
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    (sim.finish(), events)
}

/// Replays every scenario × contender, in parallel on the runtime's workers, in a stable
/// order (scenario-major). `progress` is called after each finished run.
pub async fn replay_all(
    scenarios: &[Scenario],
    contenders: &[Contender],
    progress: impl Fn(usize, usize),
) -> Vec<Run> {
    let total = scenarios.len() * contenders.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (si, scenario) in scenarios.iter().enumerate() {
        for (ci, contender) in contenders.iter().enumerate() {
            let (scenario, contender) = (scenario.clone(), contender.clone());
            tasks.spawn(async move { (si, ci, replay(&scenario, &contender).await) });
        }
    }
    let mut runs: Vec<(usize, usize, Run)> = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        runs.push(joined.expect("a replay does not panic"));
        progress(runs.len(), total);
    }
    runs.sort_by_key(|(si, ci, _)| (*si, *ci));
    runs.into_iter().map(|(_, _, run)| run).collect()
}

/// "Top up only at the brink": act when the margin-ratio buffer falls under 2 %, refill to 4 %.
/// The baseline a bot must beat to be worth more than a last-second reflex.
pub fn brink_rule() -> Strategy {
    Strategy::new(
        "brink (buffer < 2%)".into(),
        "top up only at the brink: buffer below 2 %, refill to 4 %".into(),
        MetricKind::MarginRatioBuffer,
        Levels {
            alert_below: ratio(2),
            top_up_below: ratio(2),
            target: ratio(4),
            floor: ratio(1),
        },
        None,
    )
    .expect("valid levels")
}

fn ratio(percent: i64) -> Ratio {
    Ratio(rust_decimal::Decimal::new(percent, 2))
}

/// One point of a sweep: a strategy variant with a reserve rule, over every scenario.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub strategy: String,
    /// The reserve each scenario got, as a multiple of its hindsight oracle (`None`: the
    /// scenario's own reserve).
    pub reserve_multiple: Option<rust_decimal::Decimal>,
    pub survived: usize,
    pub runs: usize,
    pub spent: Usdt,
    /// Not beaten by another point on both survival (more) and reserve spent (less).
    pub on_frontier: bool,
}

/// The strategy with its trigger at `trigger` and its target `refill` above it; the alert
/// keeps its distance above the trigger and the floor stays below it.
pub fn variant(base: &Strategy, trigger: Ratio, refill: Ratio) -> Result<Strategy, String> {
    let l = &base.levels;
    let levels = Levels {
        alert_below: trigger + (l.alert_below - l.top_up_below),
        top_up_below: trigger,
        target: trigger + refill,
        floor: l.floor.min(Ratio(trigger.0 / rust_decimal::Decimal::TWO)),
    };
    Strategy::new(
        format!(
            "{} t={} r={}",
            base.name,
            trigger.percent(),
            refill.percent()
        ),
        base.description.clone(),
        base.metric,
        levels,
        base.volatility,
    )
    .map_err(|e| e.to_string())
}

/// Sums runs into sweep points and marks the frontier of survival against reserve spent.
pub fn frontier(runs: &[(Option<rust_decimal::Decimal>, Run)]) -> Vec<SweepPoint> {
    let mut points: Vec<SweepPoint> = Vec::new();
    for (multiple, run) in runs {
        let index = match points
            .iter()
            .position(|p| p.strategy == run.contender && p.reserve_multiple == *multiple)
        {
            Some(i) => i,
            None => {
                points.push(SweepPoint {
                    strategy: run.contender.clone(),
                    reserve_multiple: *multiple,
                    survived: 0,
                    runs: 0,
                    spent: Usdt::ZERO,
                    on_frontier: false,
                });
                points.len() - 1
            }
        };
        let point = &mut points[index];
        point.runs += 1;
        point.spent += run.outcome.reserve_spent;
        if run.outcome.liquidated.is_none() {
            point.survived += 1;
        }
    }
    let snapshot = points.clone();
    for point in &mut points {
        point.on_frontier = !snapshot.iter().any(|other| {
            other.survived >= point.survived
                && other.spent <= point.spent
                && (other.survived > point.survived || other.spent < point.spent)
        });
    }
    points.sort_by(|a, b| b.survived.cmp(&a.survived).then(a.spent.cmp(&b.spent)));
    points
}
