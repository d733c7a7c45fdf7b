//! Rescue replay over real days: known outcomes, the oracle's exactness, and the commands'
//! outputs (table, CSV, JSON, charts, sweep).

use std::path::{Path, PathBuf};
use std::process::Command;

use marginguard::clock::Clock;
use marginguard::replay::{replay, Contender};
use marginguard::venue::sim::path::oracle_reserve;
use marginguard::venue::sim::{Scenario, SimVenue};

fn scenario(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
}

fn no_bot(s: &Scenario) -> marginguard::venue::sim::SimOutcome {
    SimVenue::new(s.clone(), Clock::virtual_at(s.start())).finish()
}

#[test]
fn a_days_long_crash_liquidates_a_10x_long_without_the_bot() {
    let luna = scenario("btc-2022-05-09-12-10x-long.toml");
    assert_eq!(
        luna.positions[0].bars.len(),
        4 * 1440,
        "four consecutive days"
    );
    let outcome = no_bot(&luna);
    let liquidation = outcome.liquidated.expect("liquidated without the bot");
    assert!(liquidation.at > luna.start(), "{liquidation:?}");
}

#[test]
fn the_oracle_reserve_is_the_least_that_survives_and_one_step_less_fails() {
    for name in [
        "btc-2022-05-09-12-10x-long.toml",
        "btc-2024-08-05-10x-long.toml",
        "eth-2025-02-03-10x-long-perp.toml",
    ] {
        let base = scenario(name);
        let oracle = oracle_reserve(&base);
        let mut funded = base.clone();
        funded.wallet += oracle;
        assert!(
            no_bot(&funded).liquidated.is_none(),
            "{name}: the oracle's reserve, moved in at the start, must survive"
        );
        funded.wallet -= base.transfer_step;
        assert!(
            no_bot(&funded).liquidated.is_some(),
            "{name}: one transfer step less than the oracle must be liquidated"
        );
    }
}

#[tokio::test]
async fn the_default_strategy_saves_the_demo_day_with_its_reserve() {
    let day = scenario("btc-2024-08-05-10x-long.toml");
    let strategy = marginguard::config::strategy::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/distance.toml"),
    )
    .unwrap();
    let run = replay(&day, &Contender::Bot(strategy)).await;
    assert!(run.outcome.liquidated.is_none());
    assert!(run.outcome.reserve_spent <= day.reserve);
    assert!(run.outcome.top_ups > 0);
}

/// The ETH crash of 2025-02-03 outruns a 10 s poll with the default strategy and the
/// scenario's reserve; streamed marks (every sub-step, horizon 1 s + settlement) save it.
#[tokio::test]
async fn streaming_saves_the_day_a_10s_poll_loses() {
    let day = scenario("eth-2025-02-03-10x-long-perp.toml");
    let strategy = marginguard::config::strategy::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/distance.toml"),
    )
    .unwrap();
    let polled = replay(&day, &Contender::Bot(strategy.clone())).await;
    let streamed = replay(&day, &Contender::Streamed(strategy)).await;
    assert!(polled.outcome.liquidated.is_some(), "{:?}", polled.outcome);
    assert!(
        streamed.outcome.liquidated.is_none(),
        "{:?}",
        streamed.outcome
    );
    assert_eq!(streamed.contender, "distance · stream");
}

#[test]
fn klines_of_days_that_do_not_follow_each_other_are_refused() {
    let dir = std::env::temp_dir().join(format!("mg-replay-gap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join("gap.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "gap"
wallet = "10000"
reserve = "1000"
[[positions]]
symbol = "BTCUSDT"
side = "long"
leverage = 10
notional = "100000"
klines = ["{}", "{}"]
"#,
            root.join("data/klines/BTCUSDT-1m-2022-05-09.csv").display(),
            root.join("data/klines/BTCUSDT-1m-2022-05-11.csv").display()
        ),
    )
    .unwrap();
    let error = Scenario::load(&path).unwrap_err();
    assert_eq!(error.key, "positions[0].klines");
    assert!(error.message.contains("consecutive"), "{error}");
}

fn marginguard(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn comparison_table_csv_and_json_agree() {
    let args = [
        "simulate",
        "--scenario",
        "scenarios/btc-2024-08-05-10x-long.toml",
        "scenarios/btc-2021-12-04-10x-long.toml",
        "--strategy",
        "strategies/volatility-adaptive.toml",
        "--baselines",
    ];
    let table = marginguard(&args);
    for row in [
        "no bot",
        "brink (buffer < 2%)",
        "seed-ladder",
        "volatility-adaptive · stream",
    ] {
        assert_eq!(
            table.matches(row).count(),
            2,
            "{row} once per day:\n{table}"
        );
    }
    // Polled and streamed rows of the strategy (baselines are polled only).
    assert_eq!(table.matches("volatility-adaptive").count(), 4, "{table}");
    let csv = marginguard(&[&args[..], &["--format", "csv"]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("scenario,run,survived,liquidated_at"));
    assert_eq!(lines.len(), 1 + 2 * 5);
    let json = marginguard(&[&args[..], &["--format", "json"]].concat());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 10);
    for (row, line) in rows.iter().zip(&lines[1..]) {
        let survived = row["survived"].as_bool().unwrap();
        assert!(line.contains(&format!(",{survived},")), "{line} vs {row}");
        assert!(line.contains(row["oracle_reserve"].as_str().unwrap()));
    }
    let no_bot = rows.iter().find(|r| r["run"] == "no bot").unwrap();
    assert_eq!(no_bot["survived"], false, "both days liquidate a 10× long");
}

#[test]
fn charts_are_written_as_svg_and_png() {
    let dir = std::env::temp_dir().join(format!("mg-replay-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, magic) in [
        ("rescue.svg", &b"<svg"[..]),
        ("rescue.png", &b"\x89PNG"[..]),
    ] {
        let path: PathBuf = dir.join(file);
        marginguard(&[
            "simulate",
            "--scenario",
            "scenarios/btc-2024-08-05-10x-long.toml",
            "--strategy",
            "strategies/distance.toml",
            "--plot",
            path.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(magic), "{file}");
    }
    let svg = std::fs::read_to_string(dir.join("rescue.svg")).unwrap();
    assert!(
        svg.contains("no bot: liquidated"),
        "the no-bot liquidation is marked"
    );
    assert!(
        svg.matches("<polyline").count() >= 6,
        "mark, metric and four level lines"
    );
}

#[test]
fn sweep_reports_a_frontier() {
    let out = marginguard(&[
        "sweep",
        "--scenario",
        "scenarios/btc-2024-08-05-10x-long.toml",
        "--strategy",
        "strategies/distance.toml",
        "--trigger",
        "5%,8%",
        "--refill",
        "4%",
        "--reserve-multiple",
        "1,1.5",
    ]);
    assert_eq!(
        out.matches("× oracle").count(),
        4,
        "2 triggers × 2 reserves:\n{out}"
    );
    assert!(out.lines().any(|l| l.trim_end().ends_with('*')), "{out}");
}
