//! The streaming half of the conformance suite: every venue's mock streams marks and account
//! events, and the real engine runs its real loop (`AccountRunner::run`) against the real
//! adapter over real sockets — streams are what wake it, so scripted ticks would prove
//! nothing here.
//!
//! The polls are slow on purpose (30 s) wherever a scenario claims the stream did the work:
//! an answer within a second cannot then have come from a poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::{MockExchange, ScriptedAccount};
use crate::common::RunningEngine;
use marginguard::engine::EventKind;
use marginguard::venue::Venue;
use marginguard::wiring::{self, Mode};

/// A mock that also speaks its venue's streams.
#[async_trait]
pub trait StreamingExchange: MockExchange {
    /// The adapter with streams on this mock, reconciled by REST every `reconcile_every`.
    fn streaming_adapter(&self, reconcile_every: Duration) -> Box<dyn Venue>;
    /// Moves the mark: pushed on the stream at once, and read by REST too.
    fn move_mark(&self, mark: Decimal);
    /// Moves the mark REST reports without pushing it.
    fn set_rest_mark(&self, mark: Decimal);
    fn stall_streams(&self, stalled: bool);
    fn drop_streams(&self);
    fn refuse_stream_connections(&self, count: u32);
    /// Sends `text` as a frame on every open connection.
    fn send_raw(&self, text: &str);
    /// Mark frames in the venue's format that must not read (an empty or zero price, a
    /// float exponent, a truncated frame …), each carrying `mark`.
    fn broken_mark_frames(&self, mark: Decimal) -> Vec<String>;
    /// Mark-stream connections the mock accepted.
    fn mark_connects(&self) -> u32;
    /// Account-stream connections the mock accepted.
    fn account_connects(&self) -> u32;
}

const SLOW_POLL: Duration = Duration::from_secs(30);
const RECONCILE: Duration = Duration::from_secs(30);

fn sent(event: &EventKind) -> bool {
    matches!(event, EventKind::TransferSent { .. })
}

/// Waits until the mark and account streams are connected and the REST reads their connects
/// bring (the account is reseeded on each) are over: no new position read for 300 ms.
/// A fixed pause was not enough under load: a late account-stream connect's reseed was then
/// counted against the decision (`a_mark_jump…` failed "the decision waited for a REST read").
async fn until_streaming<M: StreamingExchange>(mock: &M, connects: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.mark_connects() < connects || mock.account_connects() < 1 {
        assert!(Instant::now() < deadline, "the streams never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The reconnect's REST read, and a mark frame or two.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut reads = mock.position_reads();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300) {
        assert!(Instant::now() < deadline, "REST reads never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = mock.position_reads();
        if now != reads {
            reads = now;
            quiet_since = Instant::now();
        }
    }
}

/// The wick arrives on the stream: a transfer reaches the venue long before the next poll
/// (30 s away), and no REST position read came between the mark and the decision.
pub async fn a_mark_jump_on_the_stream_tops_up_before_the_next_poll<M: StreamingExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    let venue = wiring::for_mode(mock.streaming_adapter(RECONCILE), Mode::Live);
    let mut running = RunningEngine::start(venue, SLOW_POLL);
    until_streaming(&mock, 1).await;
    let reads = mock.position_reads();
    let jumped = Instant::now();
    mock.move_mark(Decimal::from(58_000));
    let mut seen = Vec::new();
    let answered = running
        .wait_for(Duration::from_secs(2), &mut seen, sent)
        .await;
    let latency = jumped.elapsed();
    assert!(answered, "no top-up within 2 s of the wick: {seen:#?}");
    // Counted up to the transfer's arrival at the mock: the engine's next tick may read
    // REST (its own transfer is not yet seen there) before this test looks.
    assert_eq!(
        mock.position_reads_before_first_transfer(),
        reads,
        "the decision waited for a REST read"
    );
    let mut later = running.stop().await;
    seen.append(&mut later);
    assert_eq!(mock.transfers().len(), 1, "{seen:#?}");
    assert!(!mock.liquidated());
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
}

/// Dry-run on a streamed account: the engine decides the top-up on the stream; the venue
/// receives no transfer request.
pub async fn dry_run_on_a_stream_sends_nothing<M: StreamingExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    let venue = wiring::for_mode(mock.streaming_adapter(RECONCILE), Mode::DryRun);
    let mut running = RunningEngine::start(venue, SLOW_POLL);
    until_streaming(&mock, 1).await;
    mock.move_mark(Decimal::from(58_000));
    let mut seen = Vec::new();
    assert!(
        running
            .wait_for(Duration::from_secs(2), &mut seen, sent)
            .await,
        "the stream must make the engine want a top-up: {seen:#?}"
    );
    running.stop().await;
    assert_eq!(mock.transfer_requests(), 0);
}

/// The streams die and refuse to come back for a while: the marks go stale, snapshots come
/// from REST at the poll interval; the streams reconnect on their own (no restart) and the
/// polls are served locally again.
pub async fn a_dropped_stream_falls_back_to_rest_and_recovers<M: StreamingExchange>() {
    const POLL: Duration = Duration::from_secs(1);
    let mock = M::start(&ScriptedAccount::default()).await;
    let venue = wiring::for_mode(mock.streaming_adapter(RECONCILE), Mode::Live);
    let running = RunningEngine::start(venue, POLL);
    until_streaming(&mock, 1).await;
    let streamed_reads = mock.position_reads();
    tokio::time::sleep(POLL * 2).await;
    assert_eq!(
        mock.position_reads(),
        streamed_reads,
        "polls read REST while the stream was fresh"
    );
    let before = mock.mark_connects();
    mock.refuse_stream_connections(3);
    mock.drop_streams();
    // Stale after three cadences, then a REST read at each poll.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let fallback_reads = mock.position_reads() - streamed_reads;
    assert!(
        fallback_reads >= 1,
        "no REST read while the stream was dead"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    // Three refused, then one accepted.
    while mock.mark_connects() < before + 4 {
        assert!(Instant::now() < deadline, "the stream did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let recovered_reads = mock.position_reads();
    assert_eq!(
        mock.position_reads(),
        recovered_reads,
        "the polls still read REST after the stream came back"
    );
    let events = running.stop().await;
    assert_eq!(mock.transfer_requests(), 0, "{events:#?}");
}

/// The stream goes silent while REST moves on: once its marks are older than the cadence
/// allows, a snapshot is REST's, never the stale local figure.
pub async fn a_stale_stream_is_never_decided_on<M: StreamingExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    let venue: Arc<dyn Venue> = Arc::from(mock.streaming_adapter(RECONCILE));
    let listener = {
        let venue = venue.clone();
        tokio::spawn(async move {
            loop {
                venue.changed().await;
            }
        })
    };
    venue.snapshot().await.expect("the REST seed");
    until_streaming(&mock, 1).await;
    // A new connection is seeded from REST: whatever happened while it was down.
    venue.snapshot().await.expect("the seed after connecting");
    let reads = mock.position_reads();
    let local = venue.snapshot().await.expect("a streamed snapshot");
    assert_eq!(
        mock.position_reads(),
        reads,
        "a fresh stream needs no REST read"
    );
    mock.stall_streams(true);
    mock.set_rest_mark(Decimal::from(58_800));
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let after = venue.snapshot().await.expect("a REST snapshot");
    listener.abort();
    assert_eq!(
        mock.position_reads(),
        reads + 1,
        "the stale stream was used"
    );
    assert_eq!(
        after.account.positions[0].mark.0,
        Decimal::from(58_800),
        "{after:?} (local was {local:?})"
    );
}

/// Frames that do not read — carrying a mark that would demand a top-up — move nothing; a
/// sound frame afterwards does.
pub async fn malformed_frames_move_nothing<M: StreamingExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    let venue = wiring::for_mode(mock.streaming_adapter(RECONCILE), Mode::Live);
    let mut running = RunningEngine::start(venue, SLOW_POLL);
    until_streaming(&mock, 1).await;
    for frame in mock.broken_mark_frames(Decimal::from(50_000)) {
        mock.send_raw(&frame);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(mock.transfer_requests(), 0, "a broken frame moved money");
    mock.move_mark(Decimal::from(58_000));
    let mut seen = Vec::new();
    assert!(
        running
            .wait_for(Duration::from_secs(2), &mut seen, sent)
            .await,
        "a sound frame after the broken ones must still act: {seen:#?}"
    );
    running.stop().await;
    assert_eq!(mock.transfers().len(), 1);
}

/// A server that accepts and closes every connection: reconnects back off (0.5 s doubling,
/// jittered), so a few seconds hold a handful of attempts, not hundreds.
pub async fn reconnects_stay_bounded_under_a_flapping_server<M: StreamingExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.refuse_stream_connections(u32::MAX);
    let venue = wiring::for_mode(mock.streaming_adapter(RECONCILE), Mode::Live);
    let running = RunningEngine::start(venue, SLOW_POLL);
    tokio::time::sleep(Duration::from_secs(4)).await;
    running.stop().await;
    let attempts = mock.mark_connects();
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} connection attempts in 4 s"
    );
    assert_eq!(mock.transfer_requests(), 0);
}

/// One `#[tokio::test]` per streaming scenario, run against `$mock` (a `StreamingExchange`).
macro_rules! streaming_conformance_tests {
    ($mock:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_mark_jump_on_the_stream_tops_up_before_the_next_poll() {
            $crate::conformance::streaming::a_mark_jump_on_the_stream_tops_up_before_the_next_poll::<$mock>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dry_run_on_a_stream_sends_nothing() {
            $crate::conformance::streaming::dry_run_on_a_stream_sends_nothing::<$mock>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_dropped_stream_falls_back_to_rest_and_recovers() {
            $crate::conformance::streaming::a_dropped_stream_falls_back_to_rest_and_recovers::<$mock>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_stale_stream_is_never_decided_on() {
            $crate::conformance::streaming::a_stale_stream_is_never_decided_on::<$mock>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn malformed_frames_move_nothing() {
            $crate::conformance::streaming::malformed_frames_move_nothing::<$mock>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reconnects_stay_bounded_under_a_flapping_server() {
            $crate::conformance::streaming::reconnects_stay_bounded_under_a_flapping_server::<$mock>().await;
        }
    };
}
pub(crate) use streaming_conformance_tests;
