//! Mock Bybit end to end: config → wiring → engine ticks → signed calls; one rescue moves money
//! once however often it is sent; 131214; account-mode refusals; the `check` pre-flight; demo
//! trading without transfer endpoints; clock skew and 10002; the limit headers, 10006 and 403;
//! degraded tiers; a canary secret that must never reach a log line; and the streams: the
//! private stream's auth and pushes, a refused auth, the ticker stream's heartbeat.

mod common;
mod mock_bybit;
mod mock_server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{capture, strategy_path};
use marginguard::cli::{self, CliError};
use marginguard::config::Config;
use marginguard::money::Usdt;
use marginguard::time::Timestamp;
use marginguard::venue::bybit::Profile;
use marginguard::venue::{TransferKey, TransferRequest, TransferStatus, Venue, VenueError};
use marginguard::wiring::{self, Mode};
use mock_bybit::{d, MockBybit, Route, API_KEY, SECRET};

/// A config file for one Bybit account on the mock; env var names unique per test.
fn write_config(
    dir_name: &str,
    mock: &MockBybit,
    dry_run: bool,
    profile: &str,
    tag: &str,
) -> PathBuf {
    let key_env = format!("MG_TEST_BYBIT_KEY_{tag}");
    let secret_env = format!("MG_TEST_BYBIT_SECRET_{tag}");
    std::env::set_var(&key_env, API_KEY);
    std::env::set_var(&secret_env, SECRET);
    let table = format!(
        r#"profile = "{profile}"
base_url = "{url}"
api_key_env = "{key_env}"
api_secret_env = "{secret_env}"
request_timeout = "2s"
"#,
        url = mock.url,
    );
    common::write_config(dir_name, "bybit", &table, dry_run)
}

fn request(seed: u64, amount: &str) -> TransferRequest {
    TransferRequest {
        key: TransferKey::derive("dup", Timestamp(1_700_000_000_000), seed, 3),
        amount: Usdt(d(amount)),
        created_at: marginguard::clock::Clock::Wall.now(),
    }
}

#[tokio::test]
async fn config_to_live_rescue_leaves_signed_transfers_keyed_by_the_rescue() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.script_marks(&[
        d("60000"),
        d("58500"),
        d("57000"),
        d("55000"),
        d("54500"),
        d("54000"),
    ]);
    let config = Config::load(&write_config(
        "mg-bybit-live",
        &mock,
        false,
        "testnet",
        "LIVE",
    ))
    .unwrap();
    let wired = wiring::wire(&config.accounts, &config.journal, Mode::Live, None).unwrap();
    let mut runner = wired.runners.into_iter().next().unwrap();
    for _ in 0..6 {
        runner.tick().await.unwrap();
    }
    assert!(!mock.liquidated());
    let ledger = mock.ledger();
    assert!(!ledger.is_empty());
    for row in &ledger {
        let expected_start = format!(
            r#"{{"transferId":"{}","coin":"USDT","amount":""#,
            row.transfer_id
        );
        assert!(row.body.starts_with(&expected_start), "{}", row.body);
        assert!(row
            .body
            .ends_with(r#"","fromAccountType":"FUND","toAccountType":"UNIFIED"}"#));
        assert_eq!(
            &row.transfer_id[14..15],
            "4",
            "a v4 UUID: {}",
            row.transfer_id
        );
        assert!(row.amount.scale() <= 2, "cents: {}", row.amount);
    }
    let moved: rust_decimal::Decimal = ledger.iter().map(|r| r.amount).sum();
    assert_eq!(mock.wallet(), d("6000") + moved);
    assert_eq!(mock.count(Route::Transfer), ledger.len());
    assert_eq!(mock.count_code(10004) + mock.count_code(10002), 0);
}

/// The same rescue sent three times — once answered, once after its answer was lost, once
/// more — moves money once: the resends carry the same transferId, Bybit answers 131214, and
/// the adapter reads that as "exists" and looks it up.
#[tokio::test]
async fn a_duplicate_submission_moves_money_once() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let venue = mock.adapter(SECRET);
    let rescue = request(0, "1234.56");
    let first = venue.transfer(&rescue).await.unwrap();
    assert_eq!(first.status, TransferStatus::Settled);
    assert_eq!(first.venue_id.as_deref(), Some(rescue.key.uuid().as_str()));
    let second = venue.transfer(&rescue).await.unwrap();
    assert_eq!(
        second.status,
        TransferStatus::Settled,
        "131214 is not a failure"
    );
    assert_eq!(mock.count_code(131214), 1);
    assert_eq!(mock.ledger().len(), 1);
    assert_eq!(mock.wallet(), d("7234.56"));

    // Another rescue whose answer is lost: unknown; the resend finds it already made.
    let lost = request(1, "100");
    mock.fail_next(
        Route::Transfer,
        mock_bybit::Fault::Slow(Duration::from_millis(800)),
    );
    let error = venue.transfer(&lost).await.unwrap_err();
    assert!(
        matches!(error, VenueError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert_eq!(
        venue.transfer_status(&lost).await.unwrap(),
        TransferStatus::Settled
    );
    assert_eq!(
        venue.transfer(&lost).await.unwrap().status,
        TransferStatus::Settled
    );
    assert_eq!(mock.count_code(131214), 2);
    assert_eq!(mock.ledger().len(), 2);
    assert_eq!(
        mock.wallet(),
        d("7334.56"),
        "each rescue moved money exactly once"
    );
    // A rescue Bybit never saw is not found.
    assert_eq!(
        venue.transfer_status(&request(2, "5")).await.unwrap(),
        TransferStatus::NotFound
    );
}

#[tokio::test]
async fn a_5xx_or_10016_on_a_transfer_is_unknown_and_looked_up_by_its_id() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let venue = mock.adapter(SECRET);
    for (seed, fault) in [
        (10, mock_bybit::Fault::BadGatewayAfterApplying),
        (11, mock_bybit::Fault::CodeAfterApplying(10016)),
    ] {
        let rescue = request(seed, "10");
        mock.fail_next(Route::Transfer, fault);
        assert!(matches!(
            venue.transfer(&rescue).await,
            Err(VenueError::OutcomeUnknown { .. })
        ));
        assert_eq!(
            venue.transfer_status(&rescue).await.unwrap(),
            TransferStatus::Settled
        );
        let lookup = mock
            .seen()
            .into_iter()
            .rev()
            .find(|s| s.route == Some(Route::TransferList))
            .unwrap();
        assert!(
            lookup
                .query
                .contains(&format!("transferId={}", rescue.key.uuid())),
            "{}",
            lookup.query
        );
    }
    // Insufficient balance is a definite refusal: nothing moved, nothing to reconcile.
    let error = venue.transfer(&request(12, "999999")).await.unwrap_err();
    assert!(
        matches!(error, VenueError::Rejected { ref code, .. } if code == "131212"),
        "{error:?}"
    );
    assert_eq!(mock.ledger().len(), 2);
}

fn refusal(result: Result<String, CliError>) -> String {
    match result {
        Err(CliError::Refused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn anything_but_a_uta_in_cross_margin_is_refused() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.with(|s| s.margin_mode = "ISOLATED_MARGIN".into());
    let venue = mock.adapter(SECRET);
    match venue.snapshot().await {
        Err(VenueError::Unsupported { message }) => {
            assert!(message.contains("isolated margin"), "{message}");
            assert!(message.contains("REGULAR_MARGIN"), "{message}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let path = write_config("mg-bybit-mode", &mock, false, "testnet", "MODE");
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("isolated margin"), "{message}");
    mock.with(|s| {
        s.margin_mode = "PORTFOLIO_MARGIN".into();
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("portfolio margin"), "{message}");
    mock.with(|s| {
        s.margin_mode = "REGULAR_MARGIN".into();
        s.unified_margin_status = 1;
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("classic account"), "{message}");
    assert_eq!(mock.count(Route::Transfer), 0);
}

#[tokio::test]
async fn check_reports_clock_mode_and_key_and_refuses_unsafe_keys() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let path = write_config("mg-bybit-check", &mock, false, "testnet", "CHECK");
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("key: withdraw no, transfer yes, IP-restricted yes"),
        "{out}"
    );
    assert!(out.contains("clock: local clock"), "{out}");
    assert!(
        out.contains("account: UTA 2.0 (unifiedMarginStatus 5), cross margin (REGULAR_MARGIN)"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");

    mock.with(|s| {
        s.key_info["ips"] = serde_json::json!(["*"]);
        s.key_info["deadlineDay"] = 61.into();
    });
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("warning: the key has no IP restriction"),
        "{out}"
    );
    assert!(
        out.contains("90 days") && out.contains("61 day(s) left"),
        "{out}"
    );

    mock.with(|s| {
        s.key_info["permissions"]["Wallet"] = serde_json::json!(["AccountTransfer", "Withdraw"])
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(message.contains("the API key can withdraw"), "{message}");

    mock.with(|s| {
        s.key_info["permissions"]["Wallet"] = serde_json::json!(["AccountTransfer"]);
        s.key_info["readOnly"] = 1.into();
    });
    let message = refusal(common::check_without_plan(&path).await);
    assert!(
        message.contains("cannot transfer") && message.contains("read-only"),
        "{message}"
    );
    // The same read-only key is fine for a dry run, with a warning.
    let dry = write_config("mg-bybit-check-dry", &mock, true, "testnet", "CHECKDRY");
    let out = cli::check(Config::load(&dry).unwrap()).await.unwrap();
    assert!(out.contains("fine for a dry run"), "{out}");
    assert_eq!(mock.count(Route::Transfer), 0, "check never moves money");
}

#[tokio::test]
async fn demo_trading_has_no_transfer_endpoints_and_check_says_so() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.with(|s| s.demo = true);
    let live = write_config("mg-bybit-demo-live", &mock, false, "demo", "DEMOLIVE");
    let message = refusal(
        cli::run(
            Config::load(&live).unwrap(),
            false,
            Some(1),
            std::future::pending(),
        )
        .await,
    );
    assert!(message.contains("no transfer endpoints"), "{message}");

    let path = write_config("mg-bybit-demo", &mock, true, "demo", "DEMO");
    let out = common::check_without_plan(&path).await.unwrap();
    assert!(
        out.contains("demo trading has no transfer endpoints"),
        "{out}"
    );
    assert!(out.contains("transfer no"), "{out}");
    let venue = mock.adapter_as(Profile::Demo, SECRET);
    let snapshot = venue.snapshot().await.unwrap();
    assert_eq!(snapshot.reserve_available, Usdt::ZERO);
    assert!(matches!(
        venue.transfer(&request(0, "10")).await,
        Err(VenueError::Unsupported { .. })
    ));
    let asset_calls = mock
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/v5/asset") || s.path.starts_with("/v5/user"))
        .count();
    assert_eq!(
        asset_calls, 0,
        "the adapter called an endpoint demo trading does not have"
    );
}

#[tokio::test]
async fn a_skewed_server_clock_is_measured_and_a_10002_resyncs_once() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.with(|s| s.skew_ms = 20_000);
    let venue = mock.adapter(SECRET);
    venue.snapshot().await.unwrap();
    assert_eq!(mock.count_code(10002), 0);
    let offset = venue.http().offset().unwrap().offset_ms;
    assert!((19_000..=21_000).contains(&offset), "offset {offset}");
    mock.with(|s| s.skew_ms = -10_000);
    let syncs = mock.count(Route::ServerTime);
    venue.snapshot().await.unwrap();
    let rejected = mock.count_code(10002);
    assert!((1..=3).contains(&rejected), "{rejected} rejections");
    assert!(mock.count(Route::ServerTime) > syncs);
    venue.snapshot().await.unwrap();
    assert_eq!(mock.count_code(10002), rejected, "no second rejection");
}

#[tokio::test]
async fn the_limit_headers_hold_an_endpoint_before_bybit_says_10006() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    // Another process on this UID has left two position reads in this minute.
    mock.with(|s| {
        s.limits
            .insert(Route::Positions, (2, Duration::from_secs(60)));
    });
    let venue = mock.adapter(SECRET);
    venue.snapshot().await.unwrap();
    venue.snapshot().await.unwrap();
    let status = venue
        .http()
        .reported(&marginguard::venue::bybit::http::POSITIONS)
        .unwrap();
    assert_eq!((status.remaining, status.limit), (0, Some(2)));
    let reads = mock.count(Route::Positions);
    let error = venue.snapshot().await.unwrap_err();
    assert!(
        matches!(error, VenueError::RateLimited { retry_after: Some(wait) } if wait > Duration::from_secs(50)),
        "{error:?}"
    );
    assert_eq!(
        mock.count(Route::Positions),
        reads,
        "called an endpoint the server said was spent"
    );
    assert_eq!(mock.count_code(10006), 0);
}

#[tokio::test]
async fn a_10006_holds_the_endpoint_and_a_403_stops_every_call_with_an_alert() {
    let (logs, _guard) = capture();
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let venue = mock.adapter(SECRET);
    mock.fail_next(
        Route::Positions,
        mock_bybit::Fault::TooManyVisits {
            reset_after: Duration::from_secs(30),
        },
    );
    assert!(
        matches!(venue.snapshot().await, Err(VenueError::RateLimited { retry_after: Some(w) }) if w > Duration::from_secs(20))
    );
    let reads = mock.count(Route::Positions);
    assert!(venue.snapshot().await.is_err());
    assert_eq!(
        mock.count(Route::Positions),
        reads,
        "called through a 10006"
    );

    // HTTP 403 on a fresh account: the IP is banned for 10 minutes.
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let other = mock.adapter(SECRET);
    mock.fail_next(
        Route::Positions,
        mock_bybit::Fault::Status(403, "access too frequent".into()),
    );
    assert!(
        matches!(other.snapshot().await, Err(VenueError::RateLimited { retry_after: Some(w) }) if w > Duration::from_secs(500))
    );
    assert!(
        logs.text().contains("ALERT: Bybit answered HTTP 403"),
        "{}",
        logs.text()
    );
    let before = mock.seen().len();
    assert!(other.snapshot().await.is_err());
    assert!(other.permissions().await.is_err());
    assert!(other.transfer(&request(0, "1")).await.is_err());
    assert_eq!(mock.seen().len(), before, "a call went out during the ban");
}

#[tokio::test]
async fn unavailable_tiers_degrade_to_the_positions_own_rate_with_a_warning() {
    let (logs, _guard) = capture();
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.script_marks(&[d("55000")]);
    mock.fail_next(
        Route::RiskLimit,
        mock_bybit::Fault::Status(502, "<html>Bad Gateway</html>".into()),
    );
    let venue = mock.adapter(SECRET);
    let snapshot = venue.snapshot().await.unwrap();
    let tiers = snapshot.account.positions[0].tiers.tiers().to_vec();
    assert_eq!(tiers.len(), 1, "a flat stand-in");
    // positionMM 225 / positionValue 55,000.
    assert_eq!(tiers[0].rate.0, d("225") / d("55000"));
    // Issue 10 item 6: a snapshot on stand-in tiers said nothing of it to the decision.
    assert_eq!(snapshot.stand_in_tiers, vec!["BTCUSDT".to_string()]);
    assert!(
        logs.text().contains("risk-limit tiers unavailable"),
        "{}",
        logs.text()
    );
    // With the venue's tiers (read normally), the table has three.
    let fresh = mock.adapter(SECRET).snapshot().await.unwrap();
    assert_eq!(fresh.account.positions[0].tiers.tiers().len(), 3);
    assert!(fresh.stand_in_tiers.is_empty());
    assert_eq!(fresh.account.maintenance, Usdt(d("225")));
}

/// The canary secret signs every call of a full rescue (with a lost answer and its lookup), a
/// rejected call, and `check`; it must appear nowhere in TRACE logs, `Debug` or errors.
#[tokio::test]
async fn a_canary_secret_never_appears_in_logs_debug_or_errors() {
    const CANARY: &str = "CANARY-3858f62230ac3c915f300c664312c63f-BYBIT";
    let (logs, _guard) = capture();
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.with(|s| s.secret = CANARY.into());
    mock.script_marks(&[d("60000"), d("58500"), d("57000"), d("55000"), d("54000")]);
    mock.fail_next(
        Route::Transfer,
        mock_bybit::Fault::Slow(Duration::from_millis(800)),
    );
    let venue: Arc<dyn Venue> = wiring::for_mode(Box::new(mock.adapter(CANARY)), Mode::Live);
    let (mut runner, _events) = common::distance_runner(
        "canary",
        venue.clone(),
        7,
        Arc::new(marginguard::journal::Journal::in_memory()),
    );
    for _ in 0..5 {
        runner.tick().await.unwrap();
    }
    assert!(!mock.ledger().is_empty() && !mock.liquidated());
    venue.permissions().await.unwrap();
    let error = mock.adapter("not-the-secret").snapshot().await.unwrap_err();
    let settings = marginguard::venue::bybit::BybitSettings::at(
        Profile::Mainnet,
        &mock.url,
        marginguard::venue::bybit::Credentials::new(API_KEY, CANARY),
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
        "the lost answer must have been logged"
    );
    assert!(
        text.contains("10004"),
        "the rejection must have been logged"
    );
    assert!(!text.contains(CANARY), "the secret leaked");
    assert!(
        !text.contains("3858f62230ac3c915f300c664312c63f"),
        "part of the secret leaked"
    );
    // Every call of the rescue was verified against the canary; only the wrong key failed.
    assert_eq!(mock.count_code(10004), 1);
}

#[test]
fn the_docs_testnet_config_loads_and_demo_refuses_live() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bybit.md"))
        .unwrap();
    let start = docs
        .find("```toml\n# marginguard-testnet.toml")
        .expect("testnet block")
        + "```toml\n".len();
    let block = &docs[start..start + docs[start..].find("```").unwrap()];
    std::env::set_var("BYBIT_API_KEY", "k");
    std::env::set_var("BYBIT_API_SECRET", "s");
    let dir = std::env::temp_dir().join(format!("mg-bybit-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("marginguard-testnet.toml");
    let written = block.replace(
        "strategies/distance.toml",
        &strategy_path().display().to_string(),
    );
    std::fs::write(&path, &written).unwrap();
    let config = Config::load(&path).unwrap();
    assert!(
        !config.dry_run,
        "testnet can run live: transfers work there"
    );
    assert_eq!(config.accounts[0].venue.kind(), "bybit");
    std::fs::write(
        &path,
        written.replace("profile = \"testnet\"", "profile = \"demo\""),
    )
    .unwrap();
    let demo = Config::load(&path).unwrap();
    assert_eq!(
        wiring::mode_refusals(&demo.accounts, Mode::chosen(demo.dry_run, false)).len(),
        1,
        "demo has no transfers: refused live"
    );
    std::fs::write(
        &path,
        written.replace("profile = \"testnet\"", "profile = \"staging\""),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.key, "accounts[0].bybit.profile");
    assert!(error.message.contains("mainnet, testnet, demo"), "{error}");
    std::fs::write(
        &path,
        written.replace(
            "profile = \"testnet\"",
            "profile = \"testnet\"\nregion = \"nl\"",
        ),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.key, "accounts[0].bybit.region");
    std::fs::write(
        &path,
        written.replace("BYBIT_API_SECRET", "MG_TEST_UNSET_BYBIT_SECRET"),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert!(
        error.message.contains("MG_TEST_UNSET_BYBIT_SECRET"),
        "{error}"
    );
    std::fs::write(
        &path,
        written.replace("venue = \"bybit\"", "venue = \"binance\""),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.key, "accounts[0].bybit");
}

/// Issue 10 item 2: `run` armed a live account with keys `check` refuses.
#[tokio::test]
async fn run_refuses_to_arm_a_live_key_that_check_refuses() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let live = write_config("mg-bybit-run-preflight", &mock, false, "testnet", "RUNPRE");
    let run = |path: PathBuf| async move {
        cli::run(
            Config::load(&path).unwrap(),
            false,
            Some(2),
            std::future::pending(),
        )
        .await
    };
    mock.with(|s| {
        s.key_info["permissions"]["Wallet"] = serde_json::json!(["AccountTransfer", "Withdraw"])
    });
    let message = refusal(run(live.clone()).await);
    assert!(message.contains("the API key can withdraw"), "{message}");
    mock.with(|s| {
        s.key_info["permissions"]["Wallet"] = serde_json::json!(["AccountTransfer"]);
        s.key_info["readOnly"] = 1.into();
    });
    let message = refusal(run(live).await);
    assert!(message.contains("cannot transfer"), "{message}");
    assert_eq!(mock.count(Route::Transfer), 0);
    assert_eq!(mock.count(Route::WalletBalance), 0, "no tick ran");
}

/// Polls `done` every 20 ms for up to `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// A streamed venue with its streams started (they start when the engine first waits).
fn listening(venue: Box<dyn Venue>) -> (Arc<dyn Venue>, tokio::task::JoinHandle<()>) {
    let venue: Arc<dyn Venue> = Arc::from(venue);
    let listener = {
        let venue = venue.clone();
        tokio::spawn(async move {
            loop {
                venue.changed().await;
            }
        })
    };
    (venue, listener)
}

/// The private stream authenticates with the real signature, subscribes to `wallet` and
/// `position` once the auth is acked (the mock refuses a subscription before it), and a
/// transfer made elsewhere reaches the streamed account through its push: the next snapshot
/// is read from REST and shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_stream_authenticates_and_a_wallet_push_brings_a_rest_read() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let (venue, listener) = listening(mock.streaming_adapter(Duration::from_secs(30)));
    venue.snapshot().await.expect("the REST seed");
    let subscribed = |s: &mock_bybit::State_| {
        s.ws.subscriptions
            .iter()
            .any(|t| *t == ["wallet".to_string(), "position".to_string()])
    };
    assert!(
        eventually(Duration::from_secs(5), || mock
            .with(|s| s.ws.auths == (1, 0)
                && subscribed(s)
                && s.ws.mark_frames > 2))
        .await,
        "auths {:?}, subscriptions {:?}",
        mock.with(|s| s.ws.auths),
        mock.with(|s| s.ws.subscriptions.clone())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    venue.snapshot().await.expect("the seed after connecting");
    let reads = mock.count(Route::Positions);
    let before = venue.snapshot().await.expect("a streamed snapshot");
    assert_eq!(mock.count(Route::Positions), reads, "the stream was fresh");
    // A transfer the streamed venue did not make: only the push can tell it.
    let outside = mock.adapter(SECRET);
    outside
        .transfer(&request(77, "250"))
        .await
        .expect("the transfer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reads = mock.count(Route::Positions);
    let after = venue.snapshot().await.expect("a snapshot after the push");
    assert_eq!(
        mock.count(Route::Positions),
        reads + 1,
        "the wallet push brought no REST read"
    );
    assert_eq!(
        after.wallet_balance.0 - before.wallet_balance.0,
        d("250"),
        "{after:?}"
    );
    listener.abort();
}

/// A wrong secret: the auth is refused and retried after a back-off (a handful of attempts
/// in 3 s, not hundreds), and neither the secret nor the auth frame reaches a log line.
#[tokio::test]
async fn a_refused_stream_auth_backs_off_and_never_logs_the_secret() {
    const CANARY: &str = "CANARY-5d41402abc4b2a76b9719d911017c592-BYBIT-WS";
    let (logs, _guard) = capture();
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    let (venue, listener) =
        listening(mock.streaming_adapter_signing_with(CANARY, Duration::from_secs(30)));
    // REST refuses the same signature: no position, so no mark stream; the account stream
    // connects regardless.
    assert!(venue.snapshot().await.is_err());
    tokio::time::sleep(Duration::from_secs(3)).await;
    listener.abort();
    let (accepted, refused) = mock.with(|s| s.ws.auths);
    assert_eq!(accepted, 0);
    assert!((2..=6).contains(&refused), "{refused} auth attempts in 3 s");
    assert!(mock.with(|s| s.ws.subscriptions.is_empty()));
    let text = logs.text();
    assert!(
        text.contains("Invalid sign"),
        "the refusal must be logged: {text}"
    );
    assert!(!text.contains(CANARY), "the secret leaked");
    assert!(
        !text.contains("5d41402abc4b2a76b9719d911017c592"),
        "part of the secret leaked"
    );
    assert!(
        !text.contains("\"op\":\"auth\",\"args\""),
        "the auth frame was logged"
    );
}

/// A ticker stream gone quiet (here: a mock pushing once an hour) is probed with Bybit's
/// ping after 5 s; the pong keeps the connection past its 10 s silence limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_ticker_stream_is_pinged_and_its_pong_keeps_it() {
    let mock = MockBybit::start(d("6000"), d("10000")).await;
    mock.with(|s| s.ws.cadence = Duration::from_secs(3600));
    let (venue, listener) = listening(mock.streaming_adapter(Duration::from_secs(30)));
    venue.snapshot().await.expect("the REST seed");
    assert!(
        eventually(Duration::from_secs(5), || mock.stream_connects().0 == 1).await,
        "the mark stream never connected"
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    listener.abort();
    let (public_pings, _) = mock.with(|s| s.ws.pings);
    assert!(public_pings >= 2, "{public_pings} pings in 11 s of silence");
    assert_eq!(
        mock.stream_connects().0,
        1,
        "the pong did not keep the connection"
    );
}
