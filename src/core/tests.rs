//! Decision tests: hand-computed cases with the arithmetic written out, then properties.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::{prop_assert, prop_assert_eq, proptest, TestCaseError};
use proptest::strategy::Strategy as Gen;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::money::{Price, Qty};

fn btc_tiers() -> Arc<TierTable> {
    Arc::new(
        TierTable::from_rates(&[
            (Usdt(dec!(0)), Ratio(dec!(0.004))),
            (Usdt(dec!(50000)), Ratio(dec!(0.005))),
            (Usdt(dec!(250000)), Ratio(dec!(0.01))),
        ])
        .unwrap(),
    )
}

/// 2 BTC long at 50,000 (notional 100,000 at entry), 10× leverage, marked at `mark`, on
/// `wallet`. Maintenance is computed from the tiers, as the simulator does.
fn long_btc(wallet: Decimal, mark: Decimal) -> Account {
    let position = Position {
        symbol: "BTCUSDT".into(),
        size: Qty(dec!(2)),
        entry: Price(dec!(50000)),
        mark: Price(mark),
        leverage: dec!(10),
        tiers: btc_tiers(),
    };
    let maintenance = position.tiers.maintenance(position.notional());
    Account {
        equity: Usdt(wallet) + position.unrealized_pnl(),
        maintenance,
        positions: vec![position],
    }
}

/// A strategy with `[alert_below, top_up_below, target, floor]` and no volatility widening.
fn strategy(
    name: &str,
    metric: MetricKind,
    [alert, trigger, target, floor]: [Decimal; 4],
) -> Strategy {
    Strategy::new(
        name.into(),
        String::new(),
        metric,
        Levels {
            alert_below: Ratio(alert),
            top_up_below: Ratio(trigger),
            target: Ratio(target),
            floor: Ratio(floor),
        },
        None,
    )
    .unwrap()
}

fn distance_strategy() -> Strategy {
    strategy(
        "distance",
        MetricKind::LiquidationDistance,
        [dec!(0.10), dec!(0.08), dec!(0.12), dec!(0.04)],
    )
}

fn seed_ladder() -> Strategy {
    strategy(
        "seed-ladder",
        MetricKind::MarginRatioBuffer,
        [dec!(0.30), dec!(0.20), dec!(0.30), dec!(0.10)],
    )
}

fn generous_caps() -> Caps {
    Caps {
        max_per_rescue: Usdt(dec!(100000)),
        max_per_day: Usdt(dec!(100000)),
        keep_at_least: Usdt::ZERO,
        cooldown: Duration::ZERO,
    }
}

fn situation(account: &Account) -> Situation<'_> {
    Situation {
        account,
        reserve_available: Usdt(dec!(50000)),
        rescues: RescueState::default(),
        now: Timestamp(1_000_000),
        volatility: None,
        rescue_horizon: Duration::from_secs(120),
        transfer_step: Usdt(dec!(0.01)),
        portfolio_left: None,
    }
}

#[test]
fn healthy_account_holds() {
    // 5× on a 20,000 wallet: 20,000 + 100,000x = 450 + 500x ⇒ x ≈ −19.6 %, far above 10 %.
    let account = long_btc(dec!(20000), dec!(50000));
    let d = decide(&situation(&account), &distance_strategy(), &generous_caps());
    assert_eq!(d.action, Action::Hold);
}

#[test]
fn distance_between_trigger_and_alert_warns() {
    // Mark 49,500: E = 10,000 − 1,000 = 9,000; notional 99,000, M = 99,000 × 0.005 − 50 = 445;
    // 9,000 + 99,000x = 445 + 495x ⇒ x = −8,555/98,505 ≈ −8.68 %: between 8 % and 10 %.
    let account = long_btc(dec!(10000), dec!(49500));
    let d = decide(&situation(&account), &distance_strategy(), &generous_caps());
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Warning,
            blocked: None
        }
    );
}

#[test]
fn distance_below_trigger_tops_up_to_target() {
    // Mark 49,000: E = 8,000; notional 98,000, M = 490 − 50 = 440;
    // 8,000 + 98,000x = 440 + 490x ⇒ x = −7,560/97,510 ≈ −7.75 % < 8 %. Target 12 %:
    // surplus at x = −0.12: E = 8,000 − 11,760 = −3,760; M = 440 − 58.8 = 381.2
    // ⇒ needed = 3,760 + 381.2 = 4,141.2
    let account = long_btc(dec!(10000), dec!(49000));
    let d = decide(&situation(&account), &distance_strategy(), &generous_caps());
    assert_eq!(
        d.action,
        Action::TopUp(TopUp {
            amount: Usdt(dec!(4141.20)),
            needed: Usdt(dec!(4141.2)),
            clamped_by: None
        })
    );
}

#[test]
fn top_up_is_clamped_by_the_tightest_cap() {
    let account = long_btc(dec!(10000), dec!(49000));
    let caps = Caps {
        max_per_rescue: Usdt(dec!(3000)),
        max_per_day: Usdt(dec!(5000)),
        keep_at_least: Usdt(dec!(1000)),
        cooldown: Duration::ZERO,
    };
    let mut s = situation(&account);
    // day cap left: 5,000 − 2,500 = 2,500; reserve left: 4,000 − 1,000 = 3,000; per rescue 3,000
    s.rescues.spent_last_24h = Usdt(dec!(2500));
    s.reserve_available = Usdt(dec!(4000));
    let d = decide(&s, &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::TopUp(TopUp {
            amount: Usdt(dec!(2500)),
            needed: Usdt(dec!(4141.2)),
            clamped_by: Some(Cap::MaxPerDay)
        })
    );
}

#[test]
fn the_portfolio_day_cap_binds_like_the_account_caps_and_can_stop_a_rescue() {
    let account = long_btc(dec!(10000), dec!(49000));
    let mut s = situation(&account);
    s.portfolio_left = Some(Usdt(dec!(1200)));
    let d = decide(&s, &distance_strategy(), &generous_caps());
    assert_eq!(
        d.action,
        Action::TopUp(TopUp {
            amount: Usdt(dec!(1200)),
            needed: Usdt(dec!(4141.2)),
            clamped_by: Some(Cap::PortfolioPerDay)
        })
    );
    s.portfolio_left = Some(Usdt::ZERO);
    let d = decide(&s, &distance_strategy(), &generous_caps());
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::Exhausted(Cap::PortfolioPerDay))
        }
    );
}

#[test]
fn nothing_moves_while_a_transfer_is_in_flight() {
    let account = long_btc(dec!(10000), dec!(49000));
    let mut s = situation(&account);
    s.rescues.in_flight = Usdt(dec!(100));
    let d = decide(&s, &distance_strategy(), &generous_caps());
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::InFlight(Usdt(dec!(100))))
        }
    );
}

#[test]
fn cooldown_blocks_until_it_ends() {
    let account = long_btc(dec!(10000), dec!(49000));
    let caps = Caps {
        cooldown: Duration::from_secs(300),
        ..generous_caps()
    };
    let mut s = situation(&account);
    s.rescues.last_top_up_at = Some(Timestamp(1_000_000 - 60_000));
    let d = decide(&s, &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::Cooldown {
                until: Timestamp(1_000_000 + 240_000)
            })
        }
    );
    s.now = Timestamp(1_000_000 + 240_000);
    assert!(matches!(
        decide(&s, &distance_strategy(), &caps).action,
        Action::TopUp(_)
    ));
}

#[test]
fn below_floor_is_an_emergency_at_the_per_rescue_cap() {
    // Mark 47,000: E = 4,000; notional 94,000, M = 420; 4,000 + 94,000x = 420 + 470x
    // ⇒ x = −3,580/93,530 ≈ −3.83 % < 4 % floor. Needed for 12 %: surplus at −0.12:
    // E = 4,000 − 11,280 = −7,280, M = 420 − 56.4 = 363.6 ⇒ 7,643.6, below the 10,000 cap,
    // so the emergency moves the cap: 10,000.
    let account = long_btc(dec!(10000), dec!(47000));
    let caps = Caps {
        max_per_rescue: Usdt(dec!(10000)),
        ..generous_caps()
    };
    let d = decide(&situation(&account), &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::Emergency {
            top_up: Some(TopUp {
                amount: Usdt(dec!(10000)),
                needed: Usdt(dec!(7643.6)),
                clamped_by: None
            }),
            blocked: None
        }
    );
}

#[test]
fn exhausted_reserve_is_critical_and_names_the_cap() {
    let account = long_btc(dec!(10000), dec!(49000));
    let mut s = situation(&account);
    s.reserve_available = Usdt(dec!(100));
    let caps = Caps {
        keep_at_least: Usdt(dec!(100)),
        ..generous_caps()
    };
    let d = decide(&s, &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::Exhausted(Cap::Reserve))
        }
    );
}

#[test]
fn seed_ladder_acts_on_the_buffer() {
    // Seed ladder on the buffer 1 − M/E. Wallet 600 at mark 50,000: E = 600, M = 450,
    // b = 1 − 450/600 = 0.25: alert zone (< 30 %, ≥ 20 %).
    let account = long_btc(dec!(600), dec!(50000));
    let d = decide(&situation(&account), &seed_ladder(), &generous_caps());
    assert_eq!(d.value, MetricValue::Value(Ratio(dec!(0.25))));
    assert!(matches!(
        d.action,
        Action::Alert {
            severity: Severity::Warning,
            ..
        }
    ));
    // Wallet 540: b = 1 − 450/540 = 0.1666… < 20 %: refill to 30 %:
    // c = 450/0.7 − 540 = 102.857142… → rounded up to 102.86
    let account = long_btc(dec!(540), dec!(50000));
    let d = decide(&situation(&account), &seed_ladder(), &generous_caps());
    assert_eq!(d.action.top_up().unwrap().amount, Usdt(dec!(102.86)));
}

#[test]
fn volatility_widens_the_trigger() {
    // Distance ≈ 8.68 % holds for the plain strategy (alert only). With σ = 0.001 per √s over
    // a 100 s horizon and k = 1: widening = 1 × 0.001 × 10 = 0.01 ⇒ trigger 9 % > 8.68 %.
    let account = long_btc(dec!(10000), dec!(49500));
    let mut strategy = distance_strategy();
    strategy.volatility = Some(VolatilityWidening {
        multiplier: dec!(1),
        max_widening: Ratio(dec!(0.05)),
        window: Duration::from_secs(3600),
    });
    let mut s = situation(&account);
    s.volatility = Some(Ratio(dec!(0.001)));
    s.rescue_horizon = Duration::from_secs(100);
    let d = decide(&s, &strategy, &generous_caps());
    assert_eq!(d.levels.top_up_below, Ratio(dec!(0.09)));
    assert_eq!(d.levels.target, Ratio(dec!(0.13)));
    assert!(matches!(d.action, Action::TopUp(_)));
}

/// Issue 10 item 3 (a): `simulate --reserve 79228162514264337593543950335` panicked with
/// "Division overflowed" while rounding the reserve limit to the transfer step.
#[test]
fn a_reserve_at_decimal_max_does_not_overflow_the_clamp() {
    let account = long_btc(dec!(10000), dec!(49000));
    let caps = Caps {
        max_per_rescue: Usdt(Decimal::MAX),
        max_per_day: Usdt(Decimal::MAX),
        ..generous_caps()
    };
    let mut s = situation(&account);
    s.reserve_available = Usdt(Decimal::MAX);
    // A bottomless reserve changes nothing about what the target needs (see
    // distance_below_trigger_tops_up_to_target).
    let d = decide(&s, &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::TopUp(TopUp {
            amount: Usdt(dec!(4141.20)),
            needed: Usdt(dec!(4141.2)),
            clamped_by: None
        })
    );
    // Below the floor the emergency asks for the per-rescue cap, here Decimal::MAX itself.
    let account = long_btc(dec!(10000), dec!(47000));
    let d = decide(
        &situation_with_reserve(&account, Decimal::MAX),
        &distance_strategy(),
        &caps,
    );
    let top_up = d.action.top_up().expect("an emergency top-up");
    assert_eq!(top_up.amount, Usdt(Decimal::MAX));
}

fn situation_with_reserve(account: &Account, reserve: Decimal) -> Situation<'_> {
    Situation {
        reserve_available: Usdt(reserve),
        ..situation(account)
    }
}

/// Issue 10 item 3 (b): at 200× on a 0.6 % maintenance rate the maintenance (0.6 % of the
/// notional) is above the initial margin (0.5 %), so the cushion has no room and the amount
/// "needed" is unbounded; rounding that up to the step overflowed.
#[test]
fn a_cushion_strategy_where_maintenance_reaches_initial_does_not_overflow_the_clamp() {
    let position = Position {
        symbol: "BTCUSDT".into(),
        size: Qty(dec!(2)),
        entry: Price(dec!(50000)),
        mark: Price(dec!(50000)),
        leverage: dec!(200),
        tiers: Arc::new(TierTable::flat(Ratio(dec!(0.006)))),
    };
    // notional 100,000: IM = 500, M = 600.
    let account = Account {
        equity: Usdt(dec!(10000)),
        maintenance: position.tiers.maintenance(position.notional()),
        positions: vec![position],
    };
    let d = decide(&situation(&account), &cushion_strategy(), &generous_caps());
    // No cushion left reads as 0, below the floor: move everything the caps allow, which is
    // the 50,000 reserve — never more.
    assert_eq!(d.value, MetricValue::Value(Ratio::ZERO));
    assert_eq!(
        d.action,
        Action::Emergency {
            top_up: Some(TopUp {
                amount: Usdt(dec!(50000)),
                needed: Usdt(Decimal::MAX),
                clamped_by: Some(Cap::Reserve)
            }),
            blocked: None
        }
    );
}

/// strategies/cushion.toml
fn cushion_strategy() -> Strategy {
    strategy(
        "cushion",
        MetricKind::Cushion,
        [dec!(0.30), dec!(0.20), dec!(0.30), dec!(0.10)],
    )
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_strategy() -> impl Gen<Value = Strategy> {
    (0usize..3, 1u32..50, 1u32..50, 1u32..50, 1u32..50).prop_map(|(kind, a, b, c, d)| {
        // Build ordered levels floor < trigger ≤ alert, trigger < target from positive steps.
        let metric = MetricKind::ALL[kind];
        let unit = dec!(0.004);
        let floor = Decimal::from(a) * unit;
        let trigger = floor + Decimal::from(b) * unit;
        let alert = trigger + Decimal::from(c) * unit / dec!(2);
        let target = trigger + Decimal::from(d) * unit;
        Strategy::new(
            "prop".into(),
            String::new(),
            metric,
            Levels {
                alert_below: Ratio(alert),
                top_up_below: Ratio(trigger),
                target: Ratio(target),
                floor: Ratio(floor),
            },
            None,
        )
        .expect("levels built in order")
    })
}

fn arb_account() -> impl Gen<Value = Account> {
    (
        -30i64..30,        // size in tenths of BTC (sign = side)
        20_000u32..80_000, // entry
        20_000u32..80_000, // mark
        1u32..50,          // leverage
        0u32..40_000,      // wallet
    )
        .prop_filter("some exposure", |(size, ..)| *size != 0)
        .prop_map(|(size, entry, mark, leverage, wallet)| {
            let position = Position {
                symbol: "BTCUSDT".into(),
                size: Qty(Decimal::new(size, 1)),
                entry: Price(Decimal::from(entry)),
                mark: Price(Decimal::from(mark)),
                leverage: Decimal::from(leverage),
                tiers: btc_tiers(),
            };
            let maintenance = position.tiers.maintenance(position.notional());
            Account {
                equity: Usdt(Decimal::from(wallet)) + position.unrealized_pnl(),
                maintenance,
                positions: vec![position],
            }
        })
        .prop_filter("not already liquidated", |a| a.equity > a.maintenance)
}

fn arb_caps() -> impl Gen<Value = Caps> {
    (0u32..20_000, 0u32..40_000, 0u32..5_000, 0u64..600).prop_map(|(rescue, day, keep, cool)| {
        Caps {
            max_per_rescue: Usdt(Decimal::from(rescue)),
            max_per_day: Usdt(Decimal::from(day)),
            keep_at_least: Usdt(Decimal::from(keep)),
            cooldown: Duration::from_secs(cool),
        }
    })
}

fn arb_rescues() -> impl Gen<Value = (RescueState, Usdt)> {
    (
        0u32..3,
        0u32..40_000,
        proptest::option::of(0i64..1_000_000),
        0u32..60_000,
    )
        .prop_map(|(in_flight, spent, last, reserve)| {
            (
                RescueState {
                    in_flight: Usdt(Decimal::from(in_flight % 2 * 250)),
                    spent_last_24h: Usdt(Decimal::from(spent)),
                    last_top_up_at: last.map(Timestamp),
                },
                Usdt(Decimal::from(reserve)),
            )
        })
}

proptest! {
    #[test]
    fn caps_are_never_exceeded(
        account in arb_account(),
        strategy in arb_strategy(),
        caps in arb_caps(),
        (rescues, reserve) in arb_rescues(),
        portfolio_left in proptest::option::of(0u32..20_000),
    ) {
        let mut s = situation(&account);
        s.rescues = rescues;
        s.reserve_available = reserve;
        s.portfolio_left = portfolio_left.map(|left| Usdt(Decimal::from(left)));
        let d = decide(&s, &strategy, &caps);
        if let Some(top_up) = d.action.top_up() {
            prop_assert!(top_up.amount.0 > Decimal::ZERO);
            prop_assert!(top_up.amount <= caps.max_per_rescue);
            prop_assert!(top_up.amount + rescues.spent_last_24h <= caps.max_per_day);
            prop_assert!(top_up.amount <= reserve - caps.keep_at_least);
            if let Some(left) = s.portfolio_left {
                prop_assert!(top_up.amount <= left);
            }
        }
    }

    #[test]
    fn no_top_up_at_or_above_the_trigger(
        account in arb_account(),
        strategy in arb_strategy(),
        caps in arb_caps(),
    ) {
        let d = decide(&situation(&account), &strategy, &caps);
        if !d.value.is_below(d.levels.top_up_below) {
            prop_assert!(d.action.top_up().is_none(), "{:?} at {:?}", d.action, d.value);
        }
    }

    #[test]
    fn no_top_up_while_one_is_in_flight(
        account in arb_account(),
        strategy in arb_strategy(),
        in_flight in 1u32..10_000,
    ) {
        let mut s = situation(&account);
        s.rescues.in_flight = Usdt(Decimal::from(in_flight));
        let d = decide(&s, &strategy, &generous_caps());
        prop_assert!(d.action.top_up().is_none());
    }

    #[test]
    fn unclamped_top_up_restores_the_target_exactly(
        account in arb_account(),
        strategy in arb_strategy(),
    ) {
        let mut s = situation(&account);
        // No rounding, no binding caps: the amount is exactly what the metric needs.
        s.transfer_step = Usdt::ZERO;
        s.reserve_available = Usdt(dec!(10000000));
        let caps = Caps { max_per_rescue: Usdt(dec!(10000000)), max_per_day: Usdt(dec!(10000000)), ..generous_caps() };
        let d = decide(&s, &strategy, &caps);
        if let Action::TopUp(top_up) = d.action {
            prop_assert_eq!(top_up.clamped_by, None);
            let after = metrics::with_collateral(&account, top_up.amount);
            let reached = Metrics::of(&after).get(strategy.metric);
            let MetricValue::Value(v) = reached else {
                return Err(TestCaseError::fail(format!("unbounded after top-up: {reached:?}")));
            };
            prop_assert!((v.0 - d.levels.target.0).abs() < dec!(0.000000000001),
                "reached {} for target {}", v, d.levels.target);
        }
    }

    #[test]
    fn rounded_top_up_reaches_the_target_and_one_step_less_does_not(
        account in arb_account(),
        strategy in arb_strategy(),
    ) {
        let s = situation(&account);
        let d = decide(&s, &strategy, &generous_caps());
        if let Action::TopUp(TopUp { amount, clamped_by: None, .. }) = d.action {
            let reached = Metrics::of(&metrics::with_collateral(&account, amount)).get(strategy.metric);
            prop_assert!(!reached.is_below(d.levels.target));
            let less = Metrics::of(&metrics::with_collateral(&account, amount - s.transfer_step)).get(strategy.metric);
            prop_assert!(less.is_below(d.levels.target));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Extremes: whatever the venue, the journal or the config hands in, `decide` returns, and a
// top-up stays within every cap. Issue 10 item 3.

/// The values that break arithmetic: the ends of the range, zero, a sign change, the finest
/// fraction, and a few ordinary amounts so that some cases get as far as a top-up.
fn extreme() -> impl Gen<Value = Decimal> {
    proptest::sample::select(vec![
        Decimal::MAX,
        Decimal::MIN,
        Decimal::MAX / dec!(3),
        Decimal::ZERO,
        Decimal::ONE,
        -Decimal::ONE,
        Decimal::new(1, 28),
        Decimal::new(-1, 28),
        dec!(0.01),
        dec!(450),
        dec!(10000),
        dec!(50000),
    ])
}

fn extreme_tiers() -> impl Gen<Value = Arc<TierTable>> {
    proptest::sample::select(vec![
        btc_tiers(),
        Arc::new(TierTable::flat(Ratio(dec!(0.006)))),
        // A venue's own table is taken with its (non-negative) deductions unbounded.
        Arc::new(
            TierTable::new(vec![Tier {
                floor: Usdt::ZERO,
                rate: Ratio(dec!(0.5)),
                deduction: Usdt(Decimal::MAX),
            }])
            .unwrap(),
        ),
    ])
}

fn extreme_account() -> impl Gen<Value = Account> {
    (
        (extreme(), extreme()),
        (extreme(), extreme(), extreme(), extreme()),
        extreme_tiers(),
    )
        .prop_map(
            |((equity, maintenance), (size, entry, mark, leverage), tiers)| Account {
                equity: Usdt(equity),
                maintenance: Usdt(maintenance),
                positions: vec![Position {
                    symbol: "BTCUSDT".into(),
                    size: Qty(size),
                    entry: Price(entry),
                    mark: Price(mark),
                    leverage,
                    tiers,
                }],
            },
        )
}

fn extreme_caps() -> impl Gen<Value = Caps> {
    (
        extreme(),
        extreme(),
        extreme(),
        proptest::sample::select(vec![
            Duration::ZERO,
            Duration::from_secs(300),
            Duration::MAX,
        ]),
    )
        .prop_map(|(rescue, day, keep, cooldown)| Caps {
            max_per_rescue: Usdt(rescue),
            max_per_day: Usdt(day),
            keep_at_least: Usdt(keep),
            cooldown,
        })
}

fn extreme_instant() -> impl Gen<Value = Timestamp> {
    proptest::sample::select(vec![i64::MIN, -1, 0, 1_000_000, i64::MAX]).prop_map(Timestamp)
}

fn extreme_volatility() -> impl Gen<Value = Option<VolatilityWidening>> {
    proptest::option::of(extreme().prop_map(|multiplier| VolatilityWidening {
        multiplier,
        max_widening: Ratio(dec!(0.05)),
        window: Duration::from_secs(3600),
    }))
}

/// Anything in flight blocks a top-up; mostly nothing is, so most cases reach the clamp.
fn mostly_nothing() -> impl Gen<Value = Decimal> {
    proptest::prop_oneof![3 => proptest::strategy::Just(Decimal::ZERO), 1 => extreme()]
}

proptest! {
    // Most extreme cases end before the clamp (unknown metric, exhausted caps); enough cases
    // that a few dozen reach a top-up each run. About a quarter of a second.
    #![proptest_config(proptest::test_runner::Config::with_cases(2048))]

    #[test]
    fn extreme_figures_never_panic_nor_exceed_a_cap(
        account in extreme_account(),
        (strategy, volatility) in (arb_strategy(), extreme_volatility()),
        caps in extreme_caps(),
        (reserve, spent, in_flight, step) in (extreme(), extreme(), mostly_nothing(), extreme()),
        (last, now) in (proptest::option::of(extreme_instant()), extreme_instant()),
        (sigma, horizon) in (proptest::option::of(extreme()), proptest::sample::select(vec![
            Duration::ZERO, Duration::from_secs(120), Duration::MAX,
        ])),
    ) {
        let strategy = Strategy { volatility, ..strategy };
        let s = Situation {
            account: &account,
            reserve_available: Usdt(reserve),
            rescues: RescueState {
                in_flight: Usdt(in_flight),
                spent_last_24h: Usdt(spent),
                last_top_up_at: last,
            },
            now,
            volatility: sigma.map(Ratio),
            rescue_horizon: horizon,
            transfer_step: Usdt(step),
            portfolio_left: None,
        };
        let d = decide(&s, &strategy, &caps);
        if let Some(top_up) = d.action.top_up() {
            let amount = top_up.amount;
            prop_assert!(amount.0 > Decimal::ZERO, "{:?}", d.action);
            prop_assert!(amount <= s.reserve_available);
            prop_assert!(amount <= caps.max_per_rescue);
            prop_assert!(amount <= caps.max_per_day);
            // Saturated, the limits can only be lower than the true ones: a stricter check.
            prop_assert!(amount <= caps.max_per_day.saturating_sub(Usdt(spent)));
            prop_assert!(amount <= s.reserve_available.saturating_sub(caps.keep_at_least));
            if step > Decimal::ZERO {
                prop_assert!((amount.0 % step).is_zero(), "{} is no multiple of {}", amount, step);
            }
        }
        // Whatever the decision, it can be printed.
        let _ = (d.value.to_string(), d.metrics.distance.to_string(), d.levels.target.percent());
    }
}

/// A metric nobody could compute moves nothing and says why: the account's equity and
/// maintenance both sit at Decimal::MAX and the price of the position overflows.
#[test]
fn an_uncomputable_metric_moves_nothing_and_says_why() {
    let mut account = long_btc(dec!(10000), dec!(49000));
    account.positions[0].size = Qty(Decimal::MAX);
    let d = decide(&situation(&account), &distance_strategy(), &generous_caps());
    assert_eq!(d.value, MetricValue::Unknown);
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::Uncomputable)
        }
    );
}

/// The metric is known (the buffer is saturated far below the floor) but the amount that
/// restores the target is not: an emergency that moves nothing, with the reason.
#[test]
fn an_uncomputable_amount_moves_nothing_and_says_why() {
    let mut account = long_btc(dec!(10000), dec!(49000));
    account.equity = Usdt(Decimal::new(1, 28));
    account.maintenance = Usdt(Decimal::MAX);
    let d = decide(&situation(&account), &seed_ladder(), &generous_caps());
    // 1 − M/E with M/E overflowing: the quotient saturates at MAX, the buffer at 1 − MAX.
    assert_eq!(
        d.value,
        MetricValue::Value(Ratio(Decimal::ONE - Decimal::MAX))
    );
    assert_eq!(
        d.action,
        Action::Emergency {
            top_up: None,
            blocked: Some(Blocked::Uncomputable)
        }
    );
}

/// A cooldown too long for i64 milliseconds blocks for ever; cast, it wrapped into the past.
#[test]
fn an_endless_cooldown_never_lets_a_top_up_through() {
    let account = long_btc(dec!(10000), dec!(49000));
    let caps = Caps {
        cooldown: Duration::MAX,
        ..generous_caps()
    };
    let mut s = situation(&account);
    s.rescues.last_top_up_at = Some(Timestamp(0));
    let d = decide(&s, &distance_strategy(), &caps);
    assert_eq!(
        d.action,
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(Blocked::Cooldown {
                until: Timestamp(i64::MAX)
            })
        }
    );
}

/// Found by extreme_figures_never_panic_nor_exceed_a_cap: a negative keep_at_least (or amount
/// spent) lifted the reserve (or day) limit above the reserve (or the day cap) itself.
#[test]
fn negative_amounts_kept_or_spent_do_not_lift_a_cap() {
    let account = long_btc(dec!(10000), dec!(49000));
    let caps = Caps {
        keep_at_least: Usdt(dec!(-1000)),
        max_per_day: Usdt(dec!(2000)),
        ..generous_caps()
    };
    let mut s = situation(&account);
    s.reserve_available = Usdt(dec!(1500));
    s.rescues.spent_last_24h = Usdt(dec!(-1000));
    let top_up = decide(&s, &distance_strategy(), &caps)
        .action
        .top_up()
        .unwrap();
    assert_eq!(top_up.amount, Usdt(dec!(1500)));
    assert_eq!(top_up.clamped_by, Some(Cap::Reserve));
    s.reserve_available = Usdt(dec!(50000));
    let top_up = decide(&s, &distance_strategy(), &caps)
        .action
        .top_up()
        .unwrap();
    assert_eq!(top_up.amount, Usdt(dec!(2000)));
    assert_eq!(top_up.clamped_by, Some(Cap::MaxPerDay));
}

// ---------------------------------------------------------------------------------------------
// Sweep-back.

mod sweeping {
    use super::*;
    use crate::core::sweep::{
        decide_sweep, SweepAction, SweepBound, SweepCaps, SweepHold, SweepRule, SweepSituation,
    };

    fn rule() -> SweepRule {
        SweepRule {
            above: Ratio(dec!(0.20)),
            margin: Ratio(dec!(0.03)),
            calm_for: Duration::from_secs(1800),
            max_volatility: None,
        }
    }

    fn caps() -> SweepCaps {
        SweepCaps {
            max_per_sweep: Usdt(dec!(100000)),
            max_per_day: Usdt(dec!(100000)),
        }
    }

    /// Calm for an hour, 10,000 moved in, nothing open.
    fn calm(account: &Account) -> SweepSituation<'_> {
        SweepSituation {
            account,
            now: Timestamp(3_600_000),
            calm_since: Some(Timestamp(0)),
            volatility: None,
            returnable: Usdt(dec!(10000)),
            swept_last_24h: Usdt::ZERO,
            transfer_open: false,
            transferable: None,
            transfer_step: Usdt(dec!(0.01)),
        }
    }

    fn distance_after(account: &Account, amount: Usdt) -> MetricValue {
        let less = metrics::with_collateral(account, Usdt(-amount.0));
        Metrics::of(&less).get(MetricKind::LiquidationDistance)
    }

    #[test]
    fn a_calm_account_sweeps_down_to_above_minus_margin_and_no_further() {
        // 2 BTC long, 10×, on a 30,000 wallet at 50,000: a 25 % fall is far away.
        let account = long_btc(dec!(30000), dec!(50000));
        let mut s = calm(&account);
        s.returnable = Usdt(dec!(100000));
        let SweepAction::Sweep { amount, bound } =
            decide_sweep(&s, MetricKind::LiquidationDistance, &rule(), &caps())
        else {
            panic!("a calm account with surplus sweeps")
        };
        assert_eq!(bound, SweepBound::Margin);
        let after = distance_after(&account, amount);
        assert!(!after.is_below(Ratio(dec!(0.17))), "left at {after}");
        let one_step_more = distance_after(&account, Usdt(amount.0 + dec!(1)));
        assert!(
            one_step_more.is_below(Ratio(dec!(0.1701))),
            "the margin bound is tight: {one_step_more}"
        );
    }

    #[test]
    fn never_more_than_the_bot_moved_in() {
        let account = long_btc(dec!(30000), dec!(50000));
        let s = calm(&account);
        assert_eq!(
            decide_sweep(&s, MetricKind::LiquidationDistance, &rule(), &caps()),
            SweepAction::Sweep {
                amount: Usdt(dec!(10000)),
                bound: SweepBound::Returnable
            }
        );
        let mut s = calm(&account);
        s.returnable = Usdt::ZERO;
        assert_eq!(
            decide_sweep(&s, MetricKind::LiquidationDistance, &rule(), &caps()),
            SweepAction::Hold(SweepHold::NothingToReturn)
        );
    }

    #[test]
    fn not_before_the_calm_period_nor_while_volatile_nor_with_a_transfer_open() {
        let account = long_btc(dec!(30000), dec!(50000));
        let hold = |s: &SweepSituation<'_>, rule: &SweepRule| {
            decide_sweep(s, MetricKind::LiquidationDistance, rule, &caps())
        };
        let mut s = calm(&account);
        s.calm_since = Some(Timestamp(2_000_000));
        assert_eq!(hold(&s, &rule()), SweepAction::Hold(SweepHold::NotCalm));
        s.calm_since = None;
        assert_eq!(hold(&s, &rule()), SweepAction::Hold(SweepHold::NotCalm));
        let bounded = SweepRule {
            max_volatility: Some(Ratio(dec!(0.0001))),
            ..rule()
        };
        let mut s = calm(&account);
        assert_eq!(hold(&s, &bounded), SweepAction::Hold(SweepHold::Volatile));
        s.volatility = Some(Ratio(dec!(0.0002)));
        assert_eq!(hold(&s, &bounded), SweepAction::Hold(SweepHold::Volatile));
        s.volatility = Some(Ratio(dec!(0.00005)));
        assert!(matches!(hold(&s, &bounded), SweepAction::Sweep { .. }));
        let mut s = calm(&account);
        s.transfer_open = true;
        assert_eq!(
            hold(&s, &rule()),
            SweepAction::Hold(SweepHold::TransferOpen)
        );
        // Below `above` now, whatever the calm period says.
        let close = long_btc(dec!(10000), dec!(50000));
        let s = calm(&close);
        assert_eq!(hold(&s, &rule()), SweepAction::Hold(SweepHold::NotCalm));
    }

    #[test]
    fn above_must_clear_target_plus_margin() {
        let levels = Levels {
            alert_below: Ratio(dec!(0.10)),
            top_up_below: Ratio(dec!(0.08)),
            target: Ratio(dec!(0.12)),
            floor: Ratio(dec!(0.04)),
        };
        assert!(rule().check(&levels).is_ok());
        let low = SweepRule {
            above: Ratio(dec!(0.15)),
            ..rule()
        };
        let error = low.check(&levels).unwrap_err();
        assert!(error.contains("target + margin"), "{error}");
        let no_margin = SweepRule {
            margin: Ratio::ZERO,
            ..rule()
        };
        assert!(no_margin.check(&levels).is_err());
    }

    fn arb_sweep() -> impl Gen<Value = (SweepRule, SweepCaps, Usdt, Usdt, Option<Usdt>)> {
        (
            1u32..60,
            1u32..20,
            0u32..20_000,
            0u32..30_000,
            0u32..30_000,
            0u32..30_000,
            proptest::option::of(0u32..30_000),
        )
            .prop_map(
                |(above, margin, per_sweep, per_day, returnable, swept, transferable)| {
                    let unit = dec!(0.01);
                    let rule = SweepRule {
                        above: Ratio(Decimal::from(above + margin) * unit),
                        margin: Ratio(Decimal::from(margin) * unit),
                        calm_for: Duration::ZERO,
                        max_volatility: None,
                    };
                    let caps = SweepCaps {
                        max_per_sweep: Usdt(Decimal::from(per_sweep)),
                        max_per_day: Usdt(Decimal::from(per_day)),
                    };
                    let money = |v: u32| Usdt(Decimal::from(v));
                    (
                        rule,
                        caps,
                        money(returnable),
                        money(swept),
                        transferable.map(money),
                    )
                },
            )
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Issue 13 item 6: a sweep never leaves the metric below `above − margin` and never
        /// returns more than was moved in, nor more than its caps or the venue allow.
        #[test]
        fn a_sweep_never_crosses_its_floor_nor_returns_more_than_moved_in(
            account in arb_account(),
            kind in 0usize..3,
            (rule, caps, returnable, swept, transferable) in arb_sweep(),
        ) {
            let metric = MetricKind::ALL[kind];
            let mut s = calm(&account);
            s.returnable = returnable;
            s.swept_last_24h = swept;
            s.transferable = transferable;
            let before = Metrics::of(&account).get(metric);
            if let SweepAction::Sweep { amount, .. } = decide_sweep(&s, metric, &rule, &caps) {
                prop_assert!(amount.0 > Decimal::ZERO);
                prop_assert!(!before.is_below(rule.above), "swept below `above`: {before}");
                let after = Metrics::of(&metrics::with_collateral(&account, Usdt(-amount.0))).get(metric);
                prop_assert!(!after.is_below(rule.floor()), "left at {after}, floor {}", rule.floor().percent());
                prop_assert!(amount <= returnable);
                prop_assert!(amount <= caps.max_per_sweep);
                prop_assert!(amount.0 + swept.0 <= caps.max_per_day.0);
                if let Some(t) = transferable {
                    prop_assert!(amount <= t);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reduce-only last resort.

mod reducing {
    use super::*;
    use crate::core::reduce::{decide_reduction, ReduceDecision, ReduceRule};

    fn rule(max_share: Decimal) -> ReduceRule {
        ReduceRule {
            max_share: Ratio(max_share),
            slippage: Ratio(dec!(0.001)),
        }
    }

    const FLOOR: Ratio = Ratio(dec!(0.04));

    fn distance(account: &Account) -> MetricValue {
        Metrics::of(account).get(MetricKind::LiquidationDistance)
    }

    #[test]
    fn below_the_floor_with_no_money_the_smallest_share_that_restores_it_is_closed() {
        // 2 BTC long, 10×, on 10,000, marked at 45,500: equity 1,000 on a 91,000 notional,
        // maintenance 455 — about 0.6 % from liquidation. Closing a share s keeps the equity
        // (less the slippage) on (1 − s)·91,000: a 4 % distance needs s ≈ 0.78.
        let account = long_btc(dec!(10000), dec!(45500));
        assert!(
            distance(&account).is_below(Ratio(dec!(0.01))),
            "{}",
            distance(&account)
        );
        let ReduceDecision::Reduce(r) = decide_reduction(
            &account,
            MetricKind::LiquidationDistance,
            FLOOR,
            Usdt::ZERO,
            &rule(dec!(1)),
        ) else {
            panic!("a reduction is due")
        };
        assert!(
            !r.capped && r.share.0 > dec!(0.7) && r.share.0 < dec!(0.85),
            "{r:?}"
        );
        // The smallest that does: a hair less leaves it below the floor.
        let less = ReduceRule {
            max_share: Ratio(r.share.0 - dec!(0.001)),
            ..rule(dec!(1))
        };
        let ReduceDecision::Reduce(short) = decide_reduction(
            &account,
            MetricKind::LiquidationDistance,
            FLOOR,
            Usdt::ZERO,
            &less,
        ) else {
            panic!("a reduction is due")
        };
        assert!(short.capped && short.after.is_below(FLOOR), "{short:?}");
        assert!(!r.after.is_below(FLOOR), "left at {}", r.after);
        assert_eq!(r.orders.len(), 1);
        assert_eq!(r.orders[0].quantity.0, dec!(2) * r.share.0);
    }

    #[test]
    fn a_top_up_that_restores_the_floor_comes_first() {
        let account = long_btc(dec!(10000), dec!(45500));
        assert_eq!(
            decide_reduction(
                &account,
                MetricKind::LiquidationDistance,
                FLOOR,
                Usdt(dec!(5000)),
                &rule(dec!(0.5))
            ),
            ReduceDecision::TopUpSuffices
        );
        let healthy = long_btc(dec!(30000), dec!(50000));
        assert_eq!(
            decide_reduction(
                &healthy,
                MetricKind::LiquidationDistance,
                FLOOR,
                Usdt::ZERO,
                &rule(dec!(0.5))
            ),
            ReduceDecision::NotNeeded
        );
    }

    #[test]
    fn the_cap_binds_and_says_so() {
        let account = long_btc(dec!(10000), dec!(45500));
        let ReduceDecision::Reduce(r) = decide_reduction(
            &account,
            MetricKind::LiquidationDistance,
            FLOOR,
            Usdt::ZERO,
            &rule(dec!(0.01)),
        ) else {
            panic!("a reduction is due")
        };
        assert!(r.capped, "{r:?}");
        assert_eq!(r.share, Ratio(dec!(0.01)));
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Issue 13 item 6: a reduction never exceeds its cap, never happens while the
        /// top-up the caps allow could restore the floor, and below its cap it reaches the
        /// floor.
        #[test]
        fn a_reduction_stays_within_its_cap_and_only_when_money_cannot_help(
            account in arb_account(),
            kind in 0usize..3,
            floor in 1u32..40,
            top_up in 0u32..5_000,
            cap in 1u32..100,
        ) {
            let metric = MetricKind::ALL[kind];
            let floor = Ratio(Decimal::from(floor) * dec!(0.01));
            let top_up = Usdt(Decimal::from(top_up));
            let rule = rule(Decimal::from(cap) * dec!(0.01));
            let decision = decide_reduction(&account, metric, floor, top_up, &rule);
            if let ReduceDecision::Reduce(r) = decision {
                prop_assert!(r.share.0 > Decimal::ZERO && r.share <= rule.max_share);
                let funded = Metrics::of(&metrics::with_collateral(&account, top_up)).get(metric);
                prop_assert!(funded.is_below(floor), "a top-up to {funded} would have done");
                if !r.capped {
                    prop_assert!(!r.after.is_below(floor), "left at {}", r.after);
                }
                for (order, position) in r.orders.iter().zip(&account.positions) {
                    prop_assert!(order.quantity.0 <= position.size.0.abs() * rule.max_share.0);
                }
            }
        }
    }
}
