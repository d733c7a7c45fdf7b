//! The embedded demo and the `simulate` command, end to end, in-process and as a binary.

use std::path::Path;
use std::process::Command;

use marginguard::cli;
use marginguard::config::Config;

fn demo_output() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::load(Path::new("config/demo.toml")).unwrap();
    runtime
        .block_on(cli::run(config, false, None, std::future::pending()))
        .unwrap()
}

fn summary_line<'a>(output: &'a str, starts: &str) -> &'a str {
    let summary = output.split("summary\n").nth(1).expect("a summary");
    summary
        .lines()
        .find(|l| l.trim_start().starts_with(starts))
        .unwrap_or_else(|| panic!("no summary row `{starts}` in\n{output}"))
}

#[test]
fn demo_rescues_what_is_liquidated_without_the_bot() {
    let output = demo_output();
    assert!(
        summary_line(&output, "distance-bot").contains("survived"),
        "{output}"
    );
    assert!(
        summary_line(&output, "same day, no bot").contains("LIQUIDATED"),
        "{output}"
    );
    assert!(
        summary_line(&output, "seed-ladder-bot").contains("LIQUIDATED"),
        "the literal rule of thumb is liquidated on this day (DESIGN.md)\n{output}"
    );
    assert!(
        output.contains("stand in for the mark price"),
        "the output must say the prices are last-trade, not mark"
    );
    assert!(output.contains("top-up") && output.contains("landed"));
}

#[test]
fn demo_replays_identically() {
    assert_eq!(demo_output(), demo_output());
}

#[test]
fn binary_runs_the_demo_with_no_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(summary_line(&stdout, "distance-bot").contains("survived"));
}

/// `simulate` of the distance strategy on 2024-08-05, with `extra` arguments.
fn simulate_distance_day(extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args([
            "simulate",
            "--scenario",
            "scenarios/btc-2024-08-05-10x-long.toml",
            "--strategy",
            "strategies/distance.toml",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn simulate_with_and_without_the_bot() {
    let run = |extra: &[&str]| {
        let output = simulate_distance_day(extra);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let with_bot = run(&[]);
    assert!(summary_line(&with_bot, "bot (distance)").contains("survived"));
    let without = run(&["--no-bot"]);
    assert!(summary_line(&without, "no bot").contains("LIQUIDATED"));
    assert!(
        !without.contains("USDT sent"),
        "nothing moves without the bot"
    );
    assert!(with_bot.contains("USDT sent"));
}

#[test]
fn check_prints_each_accounts_buffer() {
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(["check", "--config", "config/demo.toml"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.matches("buffer 95.50%").count(), 2, "{stdout}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(["--log-format", "json", "-v", "run"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() > 3, "{stderr}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("level").is_some() && value.get("fields").is_some());
    }
    assert!(stderr.contains("top-up sent"), "actions are logged");
}

/// Issue 10 item 3: a reserve at `Decimal::MAX` overflowed the clamp, killed the runner, and
/// the command still reported a normal run with exit 0.
#[test]
fn simulate_with_the_largest_reserve_neither_panics_nor_reports_a_dead_runner_as_normal() {
    let output = simulate_distance_day(&["--reserve", "79228162514264337593543950335"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        summary_line(&stdout, "bot (distance)").contains("survived"),
        "{stdout}"
    );
}

/// Issue 10 items 4 and 8: `--poll-interval 0s` replayed one instant forever, `--settlement
/// 999999999999h` overflowed the replay's clock, and `--plot chart.jpg` wrote SVG under a JPEG
/// name; the overrides obey the scenario file's bounds and a chart's name its format.
#[test]
fn simulate_refuses_overrides_a_scenario_file_would_refuse() {
    for (flag, value, says) in [
        ("--poll-interval", "0s", "must lie between 1s and 24h"),
        ("--settlement", "999999999999h", "must be at most 24h"),
        ("--reserve", "-1", "must not be negative"),
        ("--plot", "chart.jpg", "name a .svg or .png file"),
    ] {
        let output = simulate_distance_day(&[&format!("{flag}={value}")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}

/// A size the scenario loader accepts can be worth more than `Decimal` holds; the heading
/// multiplied it unchecked and panicked before the replay began.
#[test]
fn simulate_a_book_too_large_to_price_reports_instead_of_panicking() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("mg-huge-book-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("huge.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"huge\"\nwallet = \"10000\"\nreserve = \"15000\"\n[[positions]]\nsymbol = \"BTCUSDT\"\nside = \"long\"\nleverage = 10\nsize = \"1000000000000000000000000000\"\nklines = \"{}\"\n",
            root.join("data/klines/BTCUSDT-1m-2024-08-05.csv").display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(["simulate", "--no-bot", "--scenario"])
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("notional beyond range"),
        "{output:?}"
    );
}
