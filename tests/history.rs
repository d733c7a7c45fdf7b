//! `marginguard history` prints what the journal holds, from the journal the config names.

use std::path::PathBuf;
use std::process::Command;

use marginguard::journal::{dry_run_path, Journal, RescueRecord, RescueStage};
use marginguard::money::Usdt;
use marginguard::time::Timestamp;
use marginguard::venue::TransferKey;
use rust_decimal_macros::dec;

fn config_in(dir: &str) -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("mg-history-{}-{dir}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"dry_run = false
journal = "state/journal.sqlite"
[[accounts]]
name = "a"
venue = "sim"
strategy = "{}"
[accounts.caps]
max_per_rescue = "100"
max_per_day = "200"
[accounts.sim]
scenario = "{}"
"#,
            root.join("strategies/distance.toml").display(),
            root.join("scenarios/btc-2024-08-05-10x-long.toml")
                .display()
        ),
    )
    .unwrap();
    (config, dir.join("state/journal.sqlite"))
}

/// The binary's `command --config CONFIG extra…`, which must succeed; its stdout.
fn marginguard(command: &str, config: &PathBuf, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .arg(command)
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn history(config: &PathBuf, extra: &[&str]) -> String {
    marginguard("history", config, extra)
}

#[test]
fn history_lists_rescues_and_keeps_dry_run_apart() {
    let (config, journal_path) = config_in("list");
    assert!(history(&config, &[]).contains("no journal yet"));
    let journal = Journal::open(&journal_path).unwrap();
    journal
        .insert(&RescueRecord {
            key: TransferKey(0xabc),
            account: "btc-main".into(),
            venue: "binance".into(),
            asset: "USDT".into(),
            amount: Usdt(dec!(4261.31)),
            created_at: Timestamp(1_722_818_240_000),
            reason: "liquidation_distance 7.62% < 8.00% (refill to 12.00%)".into(),
            buffer_before: "94.41%".into(),
            buffer_after: Some("96.24%".into()),
            wallet_before: Usdt(dec!(10000)),
            state: RescueStage::Settled,
            venue_id: Some("42".into()),
            detail: None,
            verified: true,
            updated_at: Timestamp(1_722_818_300_000),
            unseen_since: None,
            venue_account: String::new(),
            reserve_wallet: String::new(),
        })
        .unwrap();
    let live = history(&config, &[]);
    assert!(live.contains("(live)"), "{live}");
    assert!(
        live.contains("btc-main") && live.contains("4,261.31"),
        "{live}"
    );
    assert!(live.contains("94.41%") && live.contains("96.24%") && live.contains("settled"));
    assert!(live.contains("2024-08-05T00:37:20"), "{live}");
    // The dry-run journal is another file, empty here.
    assert!(!dry_run_path(&journal_path).exists());
    assert!(history(&config, &["--dry-run"]).contains("no journal yet"));
}

/// Issue 10 item 8: `history` built every account, so it failed without the venue keys in the
/// environment — and took the daemon's journal lock, so it failed beside a running daemon.
#[test]
fn history_needs_no_secrets_and_reads_beside_a_running_daemon() {
    let (config, journal_path) = config_in("no-secrets");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[[accounts]]\nname = \"b\"\nvenue = \"binance\"\nstrategy = \"{}\"\n[accounts.caps]\nmax_per_rescue = \"100\"\nmax_per_day = \"200\"\n[accounts.binance]\nprofile = \"custom\"\nfutures_url = \"http://127.0.0.1:9\"\nspot_url = \"http://127.0.0.1:9\"\napi_key_env = \"MG_TEST_HISTORY_UNSET_KEY\"\napi_secret_env = \"MG_TEST_HISTORY_UNSET_SECRET\"\n",
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("strategies/distance.toml")
                .display()
        ),
    )
    .unwrap();
    // The daemon's writer holds the lock while `history` reads.
    let _daemon = Journal::open(&journal_path).unwrap();
    let out = history(&config, &[]);
    assert!(out.contains("(live)"), "{out}");
}

fn status(config: &PathBuf) -> String {
    marginguard("status", config, &[])
}

/// With no daemon answering at the configured endpoint, `status` says so and reads the
/// journal — without the venue keys, beside the daemon's lock.
#[test]
fn status_without_a_daemon_reads_the_journal_and_needs_no_secrets() {
    let (config, journal_path) = config_in("status");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[[accounts]]\nname = \"b\"\nvenue = \"binance\"\nstrategy = \"x.toml\"\n[accounts.caps]\nmax_per_rescue = \"100\"\nmax_per_day = \"200\"\n[accounts.binance]\napi_key_env = \"MG_TEST_STATUS_UNSET_KEY\"\napi_secret_env = \"MG_TEST_STATUS_UNSET_SECRET\"\n[http]\nlisten = \"127.0.0.1:9\"\n"
        ),
    )
    .unwrap();
    assert!(status(&config).contains("no journal yet"));
    let journal = Journal::open(&journal_path).unwrap();
    let mut record = RescueRecord {
        key: TransferKey(0xdef),
        account: "a".into(),
        venue: "sim".into(),
        asset: "USDT".into(),
        amount: Usdt(dec!(4261.31)),
        created_at: Timestamp(1_722_818_240_000),
        reason: "liquidation_distance 7.62% < 8.00% (refill to 12.00%)".into(),
        buffer_before: "94.41%".into(),
        buffer_after: None,
        wallet_before: Usdt(dec!(10000)),
        state: RescueStage::Settled,
        venue_id: None,
        detail: None,
        verified: true,
        updated_at: Timestamp(1_722_818_300_000),
        unseen_since: None,
        venue_account: String::new(),
        reserve_wallet: String::new(),
    };
    journal.insert(&record).unwrap();
    record.key = TransferKey(0xdf0);
    record.account = "other".into();
    journal.insert(&record).unwrap();
    let out = status(&config);
    assert!(
        out.contains("no answer from http://127.0.0.1:9/status.json"),
        "{out}"
    );
    assert!(
        out.contains("a (sim)") && out.contains("b (binance)"),
        "{out}"
    );
    assert!(out.contains("4,261.31") && out.contains("settled"), "{out}");
    assert_eq!(out.matches("4,261.31").count(), 1, "only a's row: {out}");
}
