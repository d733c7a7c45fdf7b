//! The reserve planner on the shipped crash days: one row per day, the oracle below the
//! strategy's need, the search's answer proved by replaying either side of it, the three
//! output formats, determinism; a live account on the Binance mock read once and moving
//! nothing, `check`'s one line; and the inputs it must refuse or answer plainly.

mod common;
mod mock_binance;
mod mock_server;

use std::path::{Path, PathBuf};

use marginguard::cli::{self, BookSource, CliError, OutputFormat, PlanRequest};
use marginguard::config::Config;
use marginguard::plan::{self, Book, PlanSettings, Precision};
use marginguard::replay::{replay, Contender};
use marginguard::venue::sim::Scenario;
use mock_binance::{d, MockBinance, Route, SECRET};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn shipped_days() -> Vec<PathBuf> {
    plan::shipped_days(&repo("scenarios")).unwrap()
}

/// Three single days the 10× long dies on without help, to keep the debug-build tests quick
/// where every day is not the point.
fn some_days() -> Vec<PathBuf> {
    [
        "btc-2021-12-04-10x-long.toml",
        "btc-2024-08-05-10x-long.toml",
        "eth-2025-02-03-10x-long-perp.toml",
    ]
    .iter()
    .map(|name| repo(&format!("scenarios/{name}")))
    .collect()
}

fn scenario_request(days: Vec<PathBuf>, format: OutputFormat) -> PlanRequest {
    PlanRequest {
        book: BookSource::Scenario(repo("scenarios/btc-2024-08-05-10x-long.toml")),
        strategy: Some(repo("strategies/distance.toml")),
        settlement: None,
        poll_interval: None,
        days,
        format,
    }
}

fn settings() -> PlanSettings {
    let book = Scenario::load(&repo("scenarios/btc-2024-08-05-10x-long.toml")).unwrap();
    PlanSettings {
        strategy: marginguard::config::strategy::load(&repo("strategies/distance.toml")).unwrap(),
        poll_interval: book.poll_interval,
        settlement: book.settlement,
        precision: Precision::FINE,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipped_book_gets_one_row_per_day_and_a_recommendation() {
    let days = shipped_days();
    let out = cli::plan(&scenario_request(Vec::new(), OutputFormat::Table))
        .await
        .unwrap();
    for path in &days {
        let day = Scenario::load(path).unwrap();
        let prefix: String = day.name.chars().take(30).collect();
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("  2") && l.contains(&prefix))
                .count(),
            1,
            "one row for {}:\n{out}",
            day.name
        );
    }
    assert!(
        out.contains(&format!(" of {} days keep ", days.len())),
        "{out}"
    );
    assert!(out.contains("your reserve of 15,000.00 covers"), "{out}");
    assert!(
        out.contains("20 % of capital: 5,000.00 USDT covers"),
        "{out}"
    );
    assert!(
        out.contains("30 % of capital: 7,500.00 USDT covers"),
        "{out}"
    );
    assert!(out.contains("max over days:"), "{out}");
    assert!(out.contains("caps unbounded"), "{out}");
}

/// The oracle moves everything in at the start, so no strategy needs less; and the search's
/// answer is exact to its resolution: the needed reserve survives, the largest failure below
/// it is liquidated, and they lie within the resolution of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_needed_reserve_survives_and_one_step_less_does_not() {
    let settings = settings();
    let book = Book::from_scenario(
        &Scenario::load(&repo("scenarios/btc-2024-08-05-10x-long.toml")).unwrap(),
    );
    let days = plan::load_days(&some_days()).unwrap();
    let planned = plan::plan(&book, &days, &settings, &|_, _| {}).unwrap();
    assert_eq!(planned.days.len(), days.len());
    for (day, scenario) in planned.days.iter().zip(&days) {
        let needed = day.needed.expect("each of these days is survivable");
        assert!(day.oracle <= needed, "{}: oracle above the need", day.day);
        let Some(failed) = day.failed_at else {
            // The book survives the day alone (BTC spot on the ETH crash day): nothing needed.
            assert!(day.oracle.is_zero() && needed.is_zero(), "{}", day.day);
            assert!(day.no_bot.liquidated.is_none(), "{}", day.day);
            continue;
        };
        let gap = needed - failed;
        let resolution = (needed.0 * settings.precision.relative).max(rust_decimal::Decimal::ONE);
        assert!(
            gap.0 > rust_decimal::Decimal::ZERO && gap.0 <= resolution,
            "{}: {failed} … {needed}",
            day.day
        );
        let (mut on_day, _) = plan::book_on_day(&book, scenario, &settings).unwrap();
        let contender = Contender::Bot(settings.strategy.clone());
        on_day.reserve = needed;
        let run = replay(&on_day, &contender).await;
        assert!(
            run.outcome.liquidated.is_none(),
            "{}: {needed} must survive",
            day.day
        );
        on_day.reserve = failed;
        let run = replay(&on_day, &contender).await;
        assert!(
            run.outcome.liquidated.is_some(),
            "{}: {failed} must not",
            day.day
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_csv_parse_and_the_output_is_the_same_twice() {
    let days = some_days();
    let json = cli::plan(&scenario_request(days.clone(), OutputFormat::Json))
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = value["days"].as_array().unwrap();
    assert_eq!(rows.len(), days.len());
    for row in rows {
        let oracle: rust_decimal::Decimal = row["oracle"].as_str().unwrap().parse().unwrap();
        let needed: rust_decimal::Decimal = row["needed"].as_str().unwrap().parse().unwrap();
        assert!(oracle <= needed, "{row}");
    }
    assert_eq!(value["recommendation"]["of"], days.len());
    assert_eq!(value["seed_rule"].as_array().unwrap().len(), 2);

    let csv = cli::plan(&scenario_request(days.clone(), OutputFormat::Csv))
        .await
        .unwrap();
    let lines: Vec<Vec<String>> = csv.lines().map(csv_fields).collect();
    assert_eq!(lines.len(), days.len() + 1, "{csv}");
    for line in &lines {
        assert_eq!(line.len(), lines[0].len(), "{csv}");
    }
    assert_eq!(lines[0][4], "needed");
    for line in &lines[1..] {
        let needed: rust_decimal::Decimal = line[4].parse().unwrap();
        assert!(
            json.contains(&format!("\"needed\": \"{needed}\"")),
            "csv and json agree on {needed}"
        );
    }

    let again = cli::plan(&scenario_request(days, OutputFormat::Json))
        .await
        .unwrap();
    assert_eq!(json, again, "same inputs, same output");
}

/// A minimal CSV reader: commas, quoted fields with doubled quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// A symbol without klines of its own on a day rides the BTC path, and says so.
#[test]
fn an_unknown_symbol_rides_btcs_path_with_a_note() {
    let scenario = Scenario::load(&repo("scenarios/btc-2024-08-05-10x-long.toml")).unwrap();
    let mut book = Book::from_scenario(&scenario);
    book.positions[0].symbol = "SOLUSDT".into();
    let day = Scenario::load(&repo("scenarios/eth-2025-02-03-10x-long-perp.toml")).unwrap();
    let (on_day, notes) = plan::book_on_day(&book, &day, &settings()).unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("SOLUSDT") && notes[0].contains("BTCUSDT-1m-2025-02-03"),
        "{notes:?}"
    );
    assert_eq!(on_day.positions[0].bars.len(), day.positions[0].bars.len());
    // ETH on a BTC-only day finds the day's ETH klines beside BTC's: no note.
    book.positions[0].symbol = "ETHUSDT".into();
    let btc_day = Scenario::load(&repo("scenarios/btc-2022-05-09-12-10x-long.toml")).unwrap();
    let (on_day, notes) = plan::book_on_day(&book, &btc_day, &settings()).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(on_day.positions[0].bars.len(), 4 * 1440);
    assert_ne!(on_day.positions[0].entry, btc_day.positions[0].entry);
}

fn write_config(dir_name: &str, mock: &MockBinance, tag: &str) -> PathBuf {
    let tag = format!("PLAN_{tag}");
    common::binance_mock_config(
        dir_name,
        &mock.url,
        (mock_binance::API_KEY, SECRET),
        false,
        &tag,
    )
}

fn account_request(config: PathBuf, account: &str, format: OutputFormat) -> PlanRequest {
    PlanRequest {
        book: BookSource::Account {
            config,
            account: account.into(),
        },
        strategy: None,
        settlement: None,
        poll_interval: None,
        days: some_days(),
        format,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_account_is_read_once_moves_nothing_and_check_prints_the_line() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let path = write_config("mg-plan-live", &mock, "LIVE");
    let out = cli::plan(&account_request(
        path.clone(),
        "binance-mock",
        OutputFormat::Table,
    ))
    .await
    .unwrap();
    assert!(
        out.contains("account binance-mock: BTCUSDT long 60,000.00 USDT"),
        "{out}"
    );
    assert!(out.contains("reserve 10,000.00 USDT"), "{out}");
    assert!(out.contains("the account's caps"), "{out}");
    assert!(out.contains(" of 3 days keep "), "{out}");
    assert_eq!(mock.count(Route::Transfer), 0, "a plan moves nothing");
    assert_eq!(mock.count(Route::PositionRisk), 1, "read once");

    let out = cli::check(Config::load(&path).unwrap()).await.unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("reserve plan: keep "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("shipped crash days with strategy distance"),
        "{line}"
    );
    assert!(line.contains("(your reserve 10,000 covers "), "{line}");
    assert!(
        line.contains(&format!(
            "`marginguard plan --config {} --account binance-mock`",
            path.display()
        )),
        "{line}"
    );
    assert_eq!(mock.count(Route::Transfer), 0, "check moves nothing either");
}

#[tokio::test]
async fn a_flat_account_needs_no_reserve() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.with(|s| s.qty = d("0"));
    let path = write_config("mg-plan-flat", &mock, "FLAT");
    let out = cli::plan(&account_request(path, "binance-mock", OutputFormat::Table))
        .await
        .unwrap();
    assert!(out.contains("no open positions"), "{out}");
    assert!(out.contains("a flat book needs no reserve"), "{out}");
    let book = Book {
        positions: Vec::new(),
        ..Book::from_scenario(
            &Scenario::load(&repo("scenarios/btc-2024-08-05-10x-long.toml")).unwrap(),
        )
    };
    let days = plan::load_days(&some_days()).unwrap();
    let planned = plan::plan(&book, &days, &settings(), &|_, _| {}).unwrap();
    assert!(planned.days.is_empty() && planned.recommendation().is_none());
    assert_eq!(
        plan::one_line(&planned, "x"),
        "reserve plan: a flat book needs no reserve"
    );
}

#[tokio::test]
async fn an_unknown_account_names_the_allowed_ones() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let path = write_config("mg-plan-unknown", &mock, "UNKNOWN");
    match cli::plan(&account_request(path, "nope", OutputFormat::Table)).await {
        Err(CliError::Usage(message)) => {
            assert!(message.contains("no account `nope`"), "{message}");
            assert!(message.contains("allowed: binance-mock"), "{message}");
        }
        other => panic!("expected a usage error, got {other:?}"),
    }
    assert_eq!(mock.count(Route::PositionRisk), 0, "nothing was read");
}

#[tokio::test]
async fn a_missing_scenario_or_day_file_is_named() {
    let missing = repo("scenarios/no-such-day.toml");
    let mut request = scenario_request(Vec::new(), OutputFormat::Table);
    request.book = BookSource::Scenario(missing.clone());
    match cli::plan(&request).await {
        Err(CliError::Config(e)) => assert_eq!(e.file, missing, "{e}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let request = scenario_request(vec![missing.clone()], OutputFormat::Table);
    match cli::plan(&request).await {
        Err(CliError::Config(e)) => assert!(e.to_string().contains("no-such-day.toml"), "{e}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Numbers no venue would hold must be answered, not panic: a wallet and a notional near
/// `Decimal`'s bounds, and a leverage outside the simulator's range refused by name.
#[tokio::test]
async fn huge_numbers_and_bad_leverage_do_not_panic() {
    let scenario = Scenario::load(&repo("scenarios/btc-2024-08-05-10x-long.toml")).unwrap();
    let days = plan::load_days(&some_days()[1..2]).unwrap();
    let mut book = Book::from_scenario(&scenario);
    book.wallet = marginguard::money::Usdt(rust_decimal::Decimal::MAX);
    let planned = plan::plan(&book, &days, &settings(), &|_, _| {}).unwrap();
    assert_eq!(planned.days[0].needed, Some(marginguard::money::Usdt::ZERO));
    assert!(plan::render_table(&planned).contains("to survive 1 of 1 days keep 0.00 USDT"));

    let mut book = Book::from_scenario(&scenario);
    book.positions[0].notional = marginguard::money::Usdt(rust_decimal::Decimal::MAX);
    let planned = plan::plan(&book, &days, &settings(), &|_, _| {}).unwrap();
    assert_eq!(planned.days[0].needed, None, "no reserve saves that book");
    assert!(plan::render_table(&planned).contains("not survivable"));

    let mut book = Book::from_scenario(&scenario);
    book.positions[0].leverage = rust_decimal::Decimal::ZERO;
    let error = plan::plan(&book, &days, &settings(), &|_, _| {}).unwrap_err();
    assert!(error.to_string().contains("BTCUSDT: leverage 0"), "{error}");
}
