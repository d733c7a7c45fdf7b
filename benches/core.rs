//! How fast the decision core and the simulator are. Figures go in the README, not in tests.
//!
//! `cargo bench --bench core`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal_macros::dec;

use marginguard::clock::Clock;
use marginguard::core::metrics::liquidation_distance;
use marginguard::core::{
    decide, Account, Caps, Levels, MetricKind, Position, RescueState, Situation, Strategy,
    TierTable,
};
use marginguard::money::{Price, Qty, Ratio, Usdt};
use marginguard::time::Timestamp;
use marginguard::venue::sim::{Scenario, SimVenue};

fn account(positions: usize) -> Account {
    let tiers = Arc::new(
        TierTable::from_rates(&[
            (Usdt(dec!(0)), Ratio(dec!(0.004))),
            (Usdt(dec!(50000)), Ratio(dec!(0.005))),
            (Usdt(dec!(250000)), Ratio(dec!(0.01))),
        ])
        .unwrap(),
    );
    let positions: Vec<Position> = (0..positions)
        .map(|i| Position {
            symbol: format!("SYM{i}"),
            size: Qty(dec!(2)),
            entry: Price(dec!(50000)),
            mark: Price(dec!(49000)),
            leverage: dec!(10),
            tiers: tiers.clone(),
        })
        .collect();
    let maintenance = positions
        .iter()
        .map(|p| p.tiers.maintenance(p.notional()))
        .sum();
    Account {
        equity: Usdt(dec!(8000)) * Ratio(rust_decimal::Decimal::from(positions.len() as u64)),
        maintenance,
        positions,
    }
}

fn strategy() -> Strategy {
    Strategy::new(
        "distance".into(),
        String::new(),
        MetricKind::LiquidationDistance,
        Levels {
            alert_below: Ratio(dec!(0.10)),
            top_up_below: Ratio(dec!(0.08)),
            target: Ratio(dec!(0.12)),
            floor: Ratio(dec!(0.04)),
        },
        None,
    )
    .unwrap()
}

fn bench_decide(c: &mut Criterion) {
    let caps = Caps {
        max_per_rescue: Usdt(dec!(5000)),
        max_per_day: Usdt(dec!(20000)),
        keep_at_least: Usdt::ZERO,
        cooldown: Duration::from_secs(60),
    };
    let strategy = strategy();
    let mut group = c.benchmark_group("decide");
    for n in [1usize, 5] {
        let account = account(n);
        group.bench_function(format!("{n}-position-account"), |b| {
            b.iter(|| {
                let situation = Situation {
                    account: &account,
                    reserve_available: Usdt(dec!(50000)),
                    rescues: RescueState::default(),
                    now: Timestamp(0),
                    volatility: None,
                    rescue_horizon: Duration::from_secs(70),
                    transfer_step: Usdt(dec!(0.01)),
                    portfolio_left: None,
                };
                black_box(decide(black_box(&situation), &strategy, &caps))
            })
        });
        group.bench_function(format!("liquidation-distance-{n}-positions"), |b| {
            b.iter(|| black_box(liquidation_distance(black_box(&account))))
        });
    }
    group.finish();
}

/// A whole crash day through the simulator, no bot: 1,440 minutes × 4 sub-steps, every one
/// evaluated by the liquidation engine (equity, maintenance, all three metrics).
fn bench_sim_day(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/btc-2024-08-05-10x-long.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    // A wallet deep enough to survive the day, so every sub-step is evaluated.
    scenario.wallet = Usdt(dec!(60000));
    let bars = scenario.positions[0].bars.len() as u64;
    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(bars * 4));
    group.bench_function("one-day-no-bot (elements = position sub-steps)", |b| {
        b.iter(|| {
            let sim = SimVenue::new(scenario.clone(), Clock::virtual_at(scenario.start()));
            black_box(sim.finish())
        })
    });
    group.finish();
}

/// The replay's inner loop on one core: every position marked at every sub-step of a day, its
/// PnL and tiered maintenance summed — what the hindsight oracle and the sweep run on.
fn bench_position_bars(c: &mut Criterion) {
    use marginguard::venue::sim::path::worst_deficit;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scenario =
        Scenario::load(&root.join("scenarios/btc-2024-08-05-10x-long.toml")).unwrap();
    // A two-position book: BTC and ETH, both long, on the same day.
    let eth = Scenario::load(&root.join("scenarios/btc-2024-08-05-10x-long.toml")).unwrap();
    let mut eth_position = eth.positions[0].clone();
    eth_position.symbol = "ETHUSDT".into();
    scenario.positions.push(eth_position);
    let evaluations = (scenario.positions[0].bars.len() * 4 * scenario.positions.len()) as u64;
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(evaluations));
    group.bench_function(
        "position-bar evaluations (oracle pass, 2 positions, 1 day)",
        |b| b.iter(|| black_box(worst_deficit(black_box(&scenario)))),
    );
    group.finish();
}

criterion_group!(benches, bench_decide, bench_sim_day, bench_position_bars);
criterion_main!(benches);
