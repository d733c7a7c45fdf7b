//! Mock Binance streaming, beyond the shared conformance scenarios: what Binance's own stream
//! rules demand (the listen key's life, `MARGIN_CALL`), the local account never deciding twice
//! on money it has already sent, and the config that turns streams on.

mod common;
mod mock_binance;
mod mock_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_binance::{d, MockBinance, Route};

async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

async fn streaming(mock: &MockBinance) {
    assert!(
        until(Duration::from_secs(5), || {
            let (m, p) = mock.stream_connects();
            m >= 1 && p >= 1
        })
        .await,
        "the streams never connected"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Regression: the local account is seeded before our transfer; if it were re-priced on
/// marks as if nothing had been sent, every mark below the trigger would send again. With
/// the account event suppressed, only the rule "after our own transfer, read REST until it
/// shows" stands between a wick and a second top-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_is_not_sent_twice_while_the_local_account_lags_behind_it() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    mock.with(|s| s.ws.account_event_on_transfer = false);
    let running = common::RunningEngine::start(
        Arc::from(mock.streaming_adapter(Duration::from_secs(30))),
        Duration::from_secs(30),
    );
    streaming(&mock).await;
    mock.move_mark(d("58000"));
    assert!(until(Duration::from_secs(2), || mock.ledger().len() == 1).await);
    for mark in ["57950", "57900", "57850", "57800"] {
        mock.move_mark(d(mark));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let events = running.stop().await;
    assert_eq!(mock.ledger().len(), 1, "sent twice: {events:#?}");
}

/// `listenKeyExpired`: no user-data event comes on that key again, so a new key is created
/// and a new connection made, without a restart; the account is read again from REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_listen_key_is_created_again_and_the_account_reseeded() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let running = common::RunningEngine::start(
        Arc::from(mock.streaming_adapter(Duration::from_secs(30))),
        Duration::from_secs(30),
    );
    streaming(&mock).await;
    let reads = mock.count(Route::PositionRisk);
    mock.expire_listen_key();
    assert!(
        until(Duration::from_secs(5), || mock.stream_connects().1 >= 2).await,
        "the account stream did not come back"
    );
    assert!(
        until(Duration::from_secs(2), || mock.count(Route::PositionRisk)
            > reads)
        .await
    );
    assert_eq!(mock.with(|s| s.ws.listen_keys_created), 2);
    running.stop().await;
}

/// `MARGIN_CALL` is a last-ditch trigger: the account is read from REST at once (not at the
/// next poll 30 s away) and decided on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_margin_call_reads_the_account_at_once() {
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let running = common::RunningEngine::start(
        Arc::from(mock.streaming_adapter(Duration::from_secs(30))),
        Duration::from_secs(30),
    );
    streaming(&mock).await;
    let reads = mock.count(Route::PositionRisk);
    mock.push_margin_call();
    assert!(
        until(Duration::from_secs(1), || mock.count(Route::PositionRisk)
            > reads)
        .await,
        "MARGIN_CALL did not bring a REST read"
    );
    running.stop().await;
}

/// The listen key grants reading the account's stream: it never reaches a log line.
#[tokio::test]
async fn the_listen_key_never_reaches_a_log_line() {
    let (captured, _guard) = common::capture();
    let mock = MockBinance::start(d("6000"), d("10000")).await;
    let running = common::RunningEngine::start(
        Arc::from(mock.streaming_adapter(Duration::from_secs(30))),
        Duration::from_secs(30),
    );
    streaming(&mock).await;
    mock.expire_listen_key();
    assert!(until(Duration::from_secs(5), || mock.stream_connects().1 >= 2).await);
    running.stop().await;
    let text = captured.text();
    assert!(
        text.contains("stream connected"),
        "logs were captured: {text}"
    );
    assert!(
        !text.contains("pqia91ma19a5s61cv6a81va65sdf19v8a"),
        "{text}"
    );
}
