//! Mock Binance end to end: config → wiring → engine ticks → signed calls; the pre-flight
//! `check`; clock skew and -1021; the weight headers, 429 and 418; and a canary secret that
//! must never reach a log line.

mod common;
mod mock_binance;
mod mock_server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{capture, strategy_path};
use marginguard::cli::{self, CliError};
use marginguard::config::Config;
use marginguard::venue::binance::signing;
use marginguard::venue::{Venue, VenueError};
use marginguard::wiring::{self, Mode};
use mock_binance::{d, MockBinance, Route, SECRET};

/// A config file for one Binance account on the mock; env var names unique per test.
fn write_config(dir_name: &str, mock: &MockBinance, dry_run: bool, tag: &str) -> PathBuf {
    common::binance_mock_config(
        dir_name,
        &mock.url,
        (mock_binance::API_KEY, SECRET),
        dry_run,
        tag,
    )
}

#[tokio::test]
async fn config_to_live_rescue_leaves_a_correctly_signed_transfer_in_the_ledger() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.script_marks(&[
        d("60000"),
        d("58500"),
        d("57000"),
        d("55000"),
        d("54500"),
        d("54000"),
    ]);
    let config = Config::load(&write_config("mg-live", &mock, false, "LIVE")).unwrap();
    assert!(!config.dry_run);
    let wired = wiring::wire(&config.accounts, &config.journal, Mode::Live, None).unwrap();
    let mut runner = wired.runners.into_iter().next().unwrap();
    for _ in 0..6 {
        runner.tick().await.unwrap();
    }
    assert!(!mock.liquidated());
    let ledger = mock.ledger();
    assert!(!ledger.is_empty());
    for row in &ledger {
        let (signed, signature) = row.query.rsplit_once("&signature=").unwrap();
        assert!(
            signed.starts_with("type=MAIN_UMFUTURE&asset=USDT&amount="),
            "{signed}"
        );
        assert!(signed.contains("&recvWindow=5000&timestamp="), "{signed}");
        assert_eq!(signing::sign(SECRET.as_bytes(), signed), signature);
        assert!(row.amount.scale() <= 2, "amount in cents: {}", row.amount);
    }
    let moved: rust_decimal::Decimal = ledger.iter().map(|r| r.amount).sum();
    assert_eq!(mock.wallet(), d("6000") + moved);
    assert_eq!(mock.count(Route::Transfer), ledger.len());
}

#[tokio::test]
async fn dry_run_config_never_posts_a_transfer() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.script_marks(&[d("58500"), d("55000"), d("55000")]);
    let config = Config::load(&write_config("mg-dry", &mock, true, "DRY")).unwrap();
    let mode = if config.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let wired = wiring::wire(&config.accounts, &config.journal, mode, None).unwrap();
    let mut runner = wired.runners.into_iter().next().unwrap();
    for _ in 0..3 {
        runner.tick().await.unwrap();
    }
    assert_eq!(mock.count(Route::Transfer), 0);
    assert!(mock.count(Route::PositionRisk) >= 3);
}

fn refusal(result: Result<String, CliError>) -> String {
    match result {
        Err(CliError::Refused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn check_reports_skew_and_mode_and_refuses_unsafe_keys_and_modes() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let path = write_config("mg-check", &mock, false, "CHECK");
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("key: withdraw no, transfer yes, IP-restricted yes"),
        "{out}"
    );
    assert!(out.contains("clock: local clock"), "{out}");
    assert!(
        out.contains("account mode: single-asset (USDT pool), one-way"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");

    mock.with(|s| s.restrictions["ipRestrict"] = false.into());
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("warning: the key has no IP restriction"),
        "{out}"
    );

    mock.with(|s| s.restrictions["enableWithdrawals"] = true.into());
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("the API key can withdraw"), "{message}");

    mock.with(|s| {
        s.restrictions["enableWithdrawals"] = false.into();
        s.restrictions["permitsUniversalTransfer"] = false.into();
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(
        message.contains("cannot transfer into the futures wallet"),
        "{message}"
    );

    mock.with(|s| {
        s.restrictions["permitsUniversalTransfer"] = true.into();
        s.multi_assets = true;
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("Multi-Assets mode"), "{message}");
    assert_eq!(mock.count(Route::Transfer), 0, "check never moves money");
}

#[tokio::test]
async fn a_skewed_server_clock_is_measured_and_a_1021_resyncs_once() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    // Binance 20 s ahead: measured at the first signed call, so no request is rejected.
    mock.with(|s| s.skew_ms = 20_000);
    let venue = mock.adapter(SECRET);
    venue.snapshot().await.unwrap();
    assert_eq!(mock.count_code(-1021), 0);
    let offset = venue.http().offset().unwrap().offset_ms;
    assert!((19_000..=21_000).contains(&offset), "offset {offset}");
    // The server's clock jumps 30 s back: the next calls are rejected once, resync, retry.
    mock.with(|s| s.skew_ms = -10_000);
    let syncs = mock.count(Route::ServerTime);
    venue.snapshot().await.unwrap();
    let rejected = mock.count_code(-1021);
    assert!((1..=3).contains(&rejected), "{rejected} rejections");
    assert!(mock.count(Route::ServerTime) > syncs);
    venue.snapshot().await.unwrap();
    assert_eq!(mock.count_code(-1021), rejected, "no second rejection");
}

#[tokio::test]
async fn the_server_reported_weight_holds_calls_before_binance_says_429() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    // Another process on this IP has spent 90 % of the futures minute.
    mock.with(|s| {
        s.used.insert(
            mock_binance::Pool::Futures,
            (std::time::Instant::now(), 2_160),
        );
    });
    let venue = mock.adapter(SECRET);
    let error = venue.snapshot().await.unwrap_err();
    assert!(
        matches!(
            error,
            VenueError::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{error:?}"
    );
    let futures_calls = mock
        .seen()
        .iter()
        .filter(|r| r.path.starts_with("/fapi"))
        .count();
    // The clock sync went out and its answer reported the weight; every read after it was
    // held back.
    assert_eq!(futures_calls, 1, "{:#?}", mock.seen());
    assert_eq!(mock.count_status(429), 0);
}

#[tokio::test]
async fn overuse_gets_429_the_adapter_waits_it_out_and_calling_through_gets_418() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.with(|s| {
        s.limits.insert(mock_binance::Pool::Futures, 12);
    });
    let venue = mock.adapter(SECRET);
    assert!(matches!(
        venue.snapshot().await,
        Err(VenueError::RateLimited { .. })
    ));
    assert_eq!(mock.count_status(429), 1);
    let before = mock.seen().len();
    assert!(matches!(
        venue.snapshot().await,
        Err(VenueError::RateLimited { .. })
    ));
    let fapi_after = mock.seen()[before..]
        .iter()
        .filter(|r| r.path.starts_with("/fapi"))
        .count();
    assert_eq!(fapi_after, 0, "the adapter called through Retry-After");
    assert_eq!(mock.count_status(418), 0);
    // A client that ignores Retry-After is banned.
    let status = reqwest::get(format!("{}/fapi/v1/time", mock.url))
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 418);
}

#[tokio::test]
async fn a_ban_stops_every_call_to_that_host_and_raises_an_alert() {
    let (logs, _guard) = capture();
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let venue = mock.adapter(SECRET);
    mock.fail_next(
        Route::PositionRisk,
        mock_binance::Fault::Banned {
            retry_after_secs: 30,
        },
    );
    assert!(matches!(
        venue.snapshot().await,
        Err(VenueError::RateLimited { .. })
    ));
    assert!(
        logs.text().contains("ALERT: Binance has banned this IP"),
        "{}",
        logs.text()
    );
    let before = mock.seen().len();
    assert!(venue.snapshot().await.is_err());
    assert!(venue.permissions().await.is_err());
    let fapi_after = mock.seen()[before..]
        .iter()
        .filter(|r| r.path.starts_with("/fapi"))
        .count();
    assert_eq!(fapi_after, 0, "a call reached the banning host");
}

/// The canary secret signs every call of a full rescue, a rejected call and a timeout; it
/// must appear nowhere in TRACE-level logs, in `Debug` of the config, or in error messages.
#[tokio::test]
async fn a_canary_secret_never_appears_in_logs_debug_or_errors() {
    const CANARY: &str = "CANARY-5f4dcc3b5aa765d61d8327deb882cf99-SECRET";
    let (logs, _guard) = capture();
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.with(|s| s.secret = CANARY.into());
    mock.script_marks(&[d("60000"), d("58500"), d("57000"), d("55000"), d("54000")]);
    mock.fail_next(
        Route::Transfer,
        mock_binance::Fault::Slow(Duration::from_millis(800)),
    );
    let venue: Arc<dyn Venue> = wiring::for_mode(Box::new(mock.adapter(CANARY)), Mode::Live);
    let (mut runner, _events) = common::distance_runner(
        "canary",
        venue,
        7,
        Arc::new(marginguard::journal::Journal::in_memory()),
    );
    for _ in 0..5 {
        runner.tick().await.unwrap();
    }
    assert!(!mock.ledger().is_empty() && !mock.liquidated());
    let wrong = mock.adapter("not-the-secret");
    let error = wrong.snapshot().await.unwrap_err();
    let settings = marginguard::venue::binance::BinanceSettings::custom(
        &mock.url,
        &mock.url,
        marginguard::venue::binance::Credentials::new(mock_binance::API_KEY, CANARY),
    );
    let text = format!(
        "{}\n{settings:?}\n{settings:#?}\n{error}\n{error:?}",
        logs.text()
    );
    assert!(
        text.contains("top-up"),
        "the rescue must have been logged: {text}"
    );
    assert!(
        text.contains("outcome unknown"),
        "the timeout must have been logged"
    );
    assert!(!text.contains(CANARY), "the secret leaked");
    assert!(
        !text.contains("5f4dcc3b5aa765d61d8327deb882cf99"),
        "part of the secret leaked"
    );
}

#[test]
fn the_docs_testnet_config_loads_and_testnet_refuses_live() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/binance.md"))
            .unwrap();
    let start = docs
        .find("```toml\n# marginguard-testnet.toml")
        .expect("testnet block")
        + "```toml\n".len();
    let block = &docs[start..start + docs[start..].find("```").unwrap()];
    std::env::set_var("BINANCE_API_KEY", "k");
    std::env::set_var("BINANCE_API_SECRET", "s");
    let dir = std::env::temp_dir().join(format!("mg-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("marginguard-testnet.toml");
    let written = block.replace(
        "strategies/distance.toml",
        &strategy_path().display().to_string(),
    );
    std::fs::write(&path, &written).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.accounts[0].venue.kind(), "binance");
    std::fs::write(&path, written.replace("dry_run = true", "dry_run = false")).unwrap();
    // The profile's limit is the venue's to state and wiring's to check, before arming.
    let live = Config::load(&path).unwrap();
    let refusals = wiring::mode_refusals(&live.accounts, Mode::chosen(live.dry_run, false));
    assert!(
        refusals.len() == 1 && refusals[0].contains("testnet"),
        "{refusals:?}"
    );
    assert!(wiring::mode_refusals(&live.accounts, Mode::chosen(live.dry_run, true)).is_empty());
    std::fs::write(
        &path,
        written.replace("profile = \"testnet\"", "profile = \"staging\""),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.key, "accounts[0].binance.profile");
    assert!(
        error.message.contains("production, testnet, custom"),
        "{error}"
    );
    std::fs::write(
        &path,
        written.replace("BINANCE_API_SECRET", "MG_TEST_UNSET_SECRET_VAR"),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert!(
        error.message.contains("MG_TEST_UNSET_SECRET_VAR"),
        "{error}"
    );
}

/// Regression (found by the crash harness): a rescue settled through a history lookup kept no
/// `tranId` in the journal, so after a restart the same history row could settle a later
/// rescue of the same amount — the journal then claimed money that never moved.
#[tokio::test]
async fn a_rescue_settled_by_lookup_keeps_its_tran_id_in_the_journal() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.script_marks(&[d("58500"), d("58500"), d("58500")]);
    mock.fail_next(Route::Transfer, mock_binance::Fault::UnknownAfterApplying);
    let venue: Arc<dyn Venue> = wiring::for_mode(Box::new(mock.adapter(SECRET)), Mode::Live);
    let journal = Arc::new(marginguard::journal::Journal::in_memory());
    let (mut runner, _events) = common::distance_runner("lookup", venue, 11, journal.clone());
    runner.tick().await.unwrap(); // sends; the answer is a 503 after the mock applied it
    runner.tick().await.unwrap(); // looks it up in the history: settled
    let ledger = mock.ledger();
    assert_eq!(ledger.len(), 1);
    let rows = journal.all().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, marginguard::journal::RescueStage::Settled);
    assert_eq!(
        rows[0].venue_id.as_deref(),
        Some(ledger[0].tran_id.to_string().as_str())
    );
}

/// Issue 10 item 2: `run` skipped the pre-flight `check` does, armed a live account with a
/// withdraw-enabled key, and with a key that could not transfer sent a doomed transfer every
/// tick while the account was liquidated.
#[tokio::test]
async fn run_refuses_to_arm_a_live_key_that_check_refuses() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.script_marks(&[d("55000"), d("54500"), d("54000")]);
    let live = write_config("mg-run-preflight", &mock, false, "RUNPRE");
    let run = |path: PathBuf| async move {
        cli::run(
            Config::load(&path).unwrap(),
            false,
            Some(3),
            std::future::pending(),
        )
        .await
    };

    mock.with(|s| s.restrictions["enableWithdrawals"] = true.into());
    let message = refusal(run(live.clone()).await);
    assert!(message.contains("the API key can withdraw"), "{message}");

    mock.with(|s| {
        s.restrictions["enableWithdrawals"] = false.into();
        s.restrictions["permitsUniversalTransfer"] = false.into();
    });
    let message = refusal(run(live).await);
    assert!(message.contains("Permits Universal Transfer"), "{message}");
    assert_eq!(
        mock.count(Route::Transfer),
        0,
        "nothing armed, nothing sent"
    );
    assert_eq!(mock.count(Route::PositionRisk), 0, "no tick ran");

    // A dry run may watch with the key that cannot transfer: it starts, and moves nothing.
    let dry = write_config("mg-run-preflight-dry", &mock, true, "RUNPREDRY");
    cli::run(
        Config::load(&dry).unwrap(),
        false,
        Some(1),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(mock.count(Route::PositionRisk) >= 1, "the dry run ticked");
    assert_eq!(mock.count(Route::Transfer), 0);
}

/// Issue 10 item 5: caps were keyed by the config's account name, so renaming an account
/// reset its 24 h spend and the renamed account paid past the day cap. Rows now follow the
/// account's id at the venue (Binance's `uid`).
#[tokio::test]
async fn renaming_an_account_does_not_reset_its_day_cap() {
    let mock = MockBinance::start(d("6000"), d("20000")).await;
    let path = write_config("mg-rename", &mock, false, "RENAME");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_per_rescue = \"5000\"", "max_per_rescue = \"3000\"")
        .replace("max_per_day = \"10000\"", "max_per_day = \"3000\"");
    std::fs::write(&path, &text).unwrap();
    let run = || async {
        cli::run(
            Config::load(&path).unwrap(),
            false,
            Some(1),
            std::future::pending(),
        )
        .await
        .unwrap()
    };
    // 1 BTC long from 60,000 on 6,000: at 57,000 the distance is about 5 %, below the 8 %
    // trigger, and restoring 12 % takes more than the 3,000 cap.
    mock.script_marks(&[d("57000")]);
    run().await;
    let first: rust_decimal::Decimal = mock.ledger().iter().map(|r| r.amount).sum();
    assert_eq!(first, d("3000"), "the first rescue takes the whole day cap");

    std::fs::write(&path, text.replace("binance-mock", "renamed")).unwrap();
    // 9,000 in the wallet now: at 54,500 the distance is about 6 %, below the trigger again.
    mock.script_marks(&[d("54500")]);
    run().await;
    let total: rust_decimal::Decimal = mock.ledger().iter().map(|r| r.amount).sum();
    assert_eq!(
        total,
        d("3000"),
        "the renamed account paid past the day cap"
    );
}

/// Issue 10 item 5: two accounts drawing on one reserve wallet each kept `keep_at_least` on
/// their own and together spent below it (8,000 moved from a 20,000 reserve keeping 16,000).
/// On Binance the reserve is the account's own Spot wallet, so two accounts on one reserve are
/// one venue account configured twice: refused before arming.
#[tokio::test]
async fn one_venue_account_configured_twice_is_refused() {
    let mock = MockBinance::start(d("6000"), d("20000")).await;
    let path = write_config("mg-shared-reserve", &mock, false, "SHARED");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("keep_at_least = \"0\"", "keep_at_least = \"16000\"");
    let second = text[text.find("[[accounts]]").unwrap()..].replace("binance-mock", "second");
    std::fs::write(&path, format!("{text}\n{second}")).unwrap();
    mock.script_marks(&[d("57000")]);
    let message = refusal(
        cli::run(
            Config::load(&path).unwrap(),
            false,
            Some(1),
            std::future::pending(),
        )
        .await,
    );
    assert!(
        message.contains("second: the same binance account (id 354937868) as `binance-mock`"),
        "{message}"
    );
    assert!(mock.ledger().is_empty(), "nothing armed, nothing moved");
    // `check` runs the same pre-flight, so it refuses what `run` refuses.
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("the same binance account"), "{message}");
}

/// `check` used to open (and lock) the dry-run journal: beside a running dry-run daemon it
/// was refused, and run as root it left root-owned files the daemon could not open.
#[tokio::test]
async fn check_beside_a_running_daemon_opens_no_journal() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let path = write_config("mg-check-beside", &mock, false, "BESIDE");
    let config = Config::load(&path).unwrap();
    let journal = marginguard::journal::dry_run_path(&config.journal);
    let _ = std::fs::remove_file(&journal);
    let daemon = marginguard::journal::Journal::open(&journal).expect("the daemon's journal");
    let out = cli::check_with(config.clone(), cli::CheckOptions::WITHOUT_PLAN)
        .await
        .expect("check runs beside the daemon");
    assert!(out.contains("key: withdraw no"), "{out}");
    drop(daemon);
    let _ = std::fs::remove_file(&journal);
    cli::check_with(config.clone(), cli::CheckOptions::WITHOUT_PLAN)
        .await
        .unwrap();
    assert!(!journal.exists(), "check created {}", journal.display());
}

/// Issue 13 item 5: an isolated position is not guarded, and `check` says so by name.
#[tokio::test]
async fn check_names_an_isolated_position_as_not_guarded() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.with(|s| s.isolated = vec!["ETHUSDT".into()]);
    let path = write_config("mg-check-isolated", &mock, false, "ISOLATED");
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("warning: ETHUSDT is on isolated margin: NOT guarded"),
        "{out}"
    );
    mock.with(|s| s.isolated.clear());
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(!out.contains("NOT guarded"), "{out}");
}
