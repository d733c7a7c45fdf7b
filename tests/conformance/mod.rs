//! The venue conformance suite: the scenarios every venue adapter must pass, written once.
//!
//! A venue plugs in by implementing `MockExchange` for its in-process mock (start it with a
//! scripted account, build the adapter pointed at it, script the mark, read the mock's ledger,
//! make the next call misbehave). Each scenario drives the real engine one `tick()` at a time
//! against the real adapter over real sockets; none sleeps longer than a `Retry-After` of 1 s.
//! Binance runs it in `tests/binance_conformance.rs`; Bybit and OKX will do the same.
//! Each venue's file implements `MockExchange` and calls `conformance_tests!(Its)` once, which
//! expands to one named `#[tokio::test]` per scenario, so a failure names scenario and venue.
#![allow(dead_code)]

pub mod streaming;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use marginguard::engine::{AccountRunner, Event, EventKind};
use marginguard::venue::{Venue, VenueError};
use marginguard::wiring::{self, Mode};

/// The account every mock starts with: a 1-unit BTC long at 60,000, 6,000 USDT in the
/// futures wallet, 10,000 in the reserve; maintenance tiers [0, 50k) 0.4 %, [50k, 250k) 0.5 %
/// (deduction 50). Without a bot it is liquidated when the mark reaches about 54,221
/// (6,000 + m − 60,000 = 0.005 m − 50).
pub struct ScriptedAccount {
    pub wallet: Decimal,
    pub reserve: Decimal,
}

impl Default for ScriptedAccount {
    fn default() -> Self {
        Self {
            wallet: Decimal::from(6_000),
            reserve: Decimal::from(10_000),
        }
    }
}

/// Which call of the adapter a fault is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The read that carries positions and marks.
    PositionRead,
    /// The money-moving call.
    Transfer,
}

/// Broken answers every venue can produce, each rendered by the mock in its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Truncated,
    Html,
    EmptyNumber,
    WrongType,
    ErrorCodeIn200,
    EmptyBody,
    ExponentNumber,
}

impl Malformed {
    pub const ALL: [Malformed; 7] = [
        Malformed::Truncated,
        Malformed::Html,
        Malformed::EmptyNumber,
        Malformed::WrongType,
        Malformed::ErrorCodeIn200,
        Malformed::EmptyBody,
        Malformed::ExponentNumber,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    RateLimited {
        retry_after_secs: u64,
    },
    Malformed(Malformed),
    /// The mock executes the transfer, then answers after the adapter's timeout.
    TimeoutAfterApplying,
    /// The mock executes the transfer, then answers 5xx "unknown".
    ServerErrorAfterApplying,
}

#[async_trait]
pub trait MockExchange: Send + Sync + Sized {
    async fn start(account: &ScriptedAccount) -> Self;
    /// The adapter under test, pointed at this mock, with a request timeout well under 1 s.
    fn adapter(&self) -> Box<dyn Venue>;
    /// The same adapter signing with a wrong secret.
    fn adapter_with_wrong_secret(&self) -> Box<dyn Venue>;
    /// Each position read takes the next mark; the last one stays.
    fn script_marks(&self, marks: &[Decimal]);
    fn fail_next(&self, target: Target, fault: Fault);
    /// Amounts of the transfers the mock executed (each verified as correctly signed).
    fn transfers(&self) -> Vec<Decimal>;
    /// Transfer requests the mock received, executed or not.
    fn transfer_requests(&self) -> usize;
    /// Requests refused for a bad signature or key.
    fn auth_rejections(&self) -> usize;
    /// Position reads the mock received.
    fn position_reads(&self) -> usize;
    /// Position reads the mock received before the first transfer request: what a decision
    /// could have waited for (reads after it race with the test's own look).
    fn position_reads_before_first_transfer(&self) -> usize;
    /// IP bans the mock handed out.
    fn bans(&self) -> usize;
    fn liquidated(&self) -> bool;
}

pub fn marks(values: &[i64]) -> Vec<Decimal> {
    values.iter().map(|v| Decimal::from(*v)).collect()
}

/// The suite's runner: the shared `distance` runner, on its own in-memory journal.
pub fn runner(venue: Arc<dyn Venue>) -> (AccountRunner, mpsc::UnboundedReceiver<Event>) {
    crate::common::distance_runner(
        "conformance",
        venue,
        1,
        Arc::new(marginguard::journal::Journal::in_memory()),
    )
}

pub fn drain(receiver: &mut mpsc::UnboundedReceiver<Event>) -> Vec<EventKind> {
    let mut out = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        out.push(event.kind);
    }
    out
}

async fn tick(runner: &mut AccountRunner) {
    runner.tick().await.expect("the runner must not stop");
}

fn count(events: &[EventKind], f: impl Fn(&EventKind) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn no_decisions(events: &[EventKind]) -> usize {
    count(events, |e| matches!(e, EventKind::NoDecision { .. }))
}

/// Live: the mark falls past the no-bot liquidation price; the bot tops up in time, every
/// transfer the mock executed was correctly signed and none was refused, and each landed.
pub async fn rescue<M: MockExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.script_marks(&marks(&[
        60_000, 59_000, 58_500, 58_500, 57_000, 56_000, 55_000, 55_000, 54_500, 54_000, 54_000,
    ]));
    let (mut runner, mut events) = runner(wiring::for_mode(mock.adapter(), Mode::Live));
    for _ in 0..11 {
        tick(&mut runner).await;
    }
    let events = drain(&mut events);
    assert!(
        !mock.liquidated(),
        "the account was liquidated: {events:#?}"
    );
    let transfers = mock.transfers();
    assert!(!transfers.is_empty(), "no transfer reached the venue");
    assert_eq!(
        mock.transfer_requests(),
        transfers.len(),
        "a transfer request was refused"
    );
    assert_eq!(mock.auth_rejections(), 0);
    let landed = count(&events, |e| {
        matches!(e, EventKind::TransferLanded { verified: true, .. })
    });
    assert_eq!(
        landed,
        transfers.len(),
        "every transfer must be seen to land: {events:#?}"
    );
    assert_eq!(no_decisions(&events), 0, "{events:#?}");
}

/// Dry-run: the engine decides top-ups, the venue receives no transfer request.
pub async fn dry_run_sends_nothing<M: MockExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.script_marks(&marks(&[58_500, 57_000, 55_000, 55_000]));
    let (mut runner, mut events) = runner(wiring::for_mode(mock.adapter(), Mode::DryRun));
    for _ in 0..4 {
        tick(&mut runner).await;
    }
    let events = drain(&mut events);
    let decided = count(&events, |e| matches!(e, EventKind::TransferSent { .. }));
    assert!(
        decided >= 1,
        "the scenario must make the engine want a top-up: {events:#?}"
    );
    assert_eq!(mock.transfer_requests(), 0);
    assert!(mock.transfers().is_empty());
}

/// A wrong secret: every signed read is refused, so no decision is made and nothing moves.
pub async fn bad_signature_moves_nothing<M: MockExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.script_marks(&marks(&[55_000]));
    let venue = mock.adapter_with_wrong_secret();
    match venue.snapshot().await {
        Err(VenueError::Auth { .. }) => {}
        other => panic!("a bad signature must be an Auth error, got {other:?}"),
    }
    let (mut runner, mut events) = runner(wiring::for_mode(venue, Mode::Live));
    for _ in 0..3 {
        tick(&mut runner).await;
    }
    let events = drain(&mut events);
    assert_eq!(no_decisions(&events), 3, "{events:#?}");
    assert!(mock.auth_rejections() >= 1);
    assert_eq!(mock.transfer_requests(), 0);
}

/// A 429 with `Retry-After: 3`: no decision that tick, nothing sent to that endpoint until the
/// seconds have passed, no ban earned, and the rescue goes through afterwards.
///
/// The limiter keeps wall-clock time, so the window is long enough (3 s) for two ticks that
/// send nothing to fall inside it on any machine; the check used to be skipped when they took
/// over 900 ms, which made it a test that could not fail.
pub async fn rate_limit_is_waited_out<M: MockExchange>() {
    const RETRY_AFTER: Duration = Duration::from_secs(3);
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.script_marks(&marks(&[55_000]));
    mock.fail_next(
        Target::PositionRead,
        Fault::RateLimited {
            retry_after_secs: RETRY_AFTER.as_secs(),
        },
    );
    let (mut runner, mut events) = runner(wiring::for_mode(mock.adapter(), Mode::Live));
    let started = std::time::Instant::now();
    tick(&mut runner).await;
    let reads = mock.position_reads();
    tick(&mut runner).await;
    tick(&mut runner).await;
    let elapsed = started.elapsed();
    assert!(elapsed < RETRY_AFTER, "three ticks took {elapsed:?}");
    assert_eq!(mock.position_reads(), reads, "called through Retry-After");
    assert_eq!(no_decisions(&drain(&mut events)), 3);
    assert_eq!(mock.transfer_requests(), 0);
    tokio::time::sleep(
        (RETRY_AFTER + Duration::from_millis(100)).saturating_sub(started.elapsed()),
    )
    .await;
    tick(&mut runner).await;
    assert_eq!(mock.transfers().len(), 1, "{:#?}", drain(&mut events));
    assert_eq!(mock.bans(), 0);
}

/// Every kind of broken answer on the position read: no decision, no transfer. Then a sound
/// answer on the same account does transfer — so the silence was the malformed data's doing.
pub async fn malformed_answers_move_nothing<M: MockExchange>() {
    let mock = M::start(&ScriptedAccount::default()).await;
    mock.script_marks(&marks(&[55_000]));
    let (mut runner, mut events) = runner(wiring::for_mode(mock.adapter(), Mode::Live));
    for kind in Malformed::ALL {
        mock.fail_next(Target::PositionRead, Fault::Malformed(kind));
        tick(&mut runner).await;
        let seen = drain(&mut events);
        assert_eq!(no_decisions(&seen), 1, "{kind:?}: {seen:#?}");
        assert_eq!(mock.transfer_requests(), 0, "{kind:?} led to a transfer");
    }
    tick(&mut runner).await;
    assert_eq!(mock.transfers().len(), 1);
}

/// The transfer is executed but its answer is lost (timeout, then a 5xx): the outcome is
/// unknown, the next tick finds it in the venue's records, and it is never sent again.
pub async fn unknown_outcome_is_reconciled<M: MockExchange>() {
    for fault in [Fault::TimeoutAfterApplying, Fault::ServerErrorAfterApplying] {
        let mock = M::start(&ScriptedAccount::default()).await;
        mock.script_marks(&marks(&[55_000]));
        mock.fail_next(Target::Transfer, fault);
        let (mut runner, mut events) = runner(wiring::for_mode(mock.adapter(), Mode::Live));
        tick(&mut runner).await;
        let first = drain(&mut events);
        assert_eq!(
            count(&first, |e| matches!(
                e,
                EventKind::TransferNotConfirmed { unknown: true, .. }
            )),
            1,
            "{fault:?}: {first:#?}"
        );
        assert_eq!(mock.transfers().len(), 1, "{fault:?}: the mock executed it");
        for _ in 0..3 {
            tick(&mut runner).await;
        }
        let later = drain(&mut events);
        assert_eq!(mock.transfer_requests(), 1, "{fault:?}: resent: {later:#?}");
        assert_eq!(
            count(&later, |e| matches!(
                e,
                EventKind::TransferLanded { verified: true, .. }
            )),
            1,
            "{fault:?}: {later:#?}"
        );
        assert!(!mock.liquidated());
    }
}

/// One `#[tokio::test]` per scenario above, run against `$mock` (a `MockExchange`). The tests
/// keep the scenarios' names, and each venue's test binary is named after the venue, so a
/// failure still says which scenario failed on which venue.
macro_rules! conformance_tests {
    ($mock:ty) => {
        #[tokio::test]
        async fn rescue() {
            $crate::conformance::rescue::<$mock>().await;
        }

        #[tokio::test]
        async fn dry_run_sends_nothing() {
            $crate::conformance::dry_run_sends_nothing::<$mock>().await;
        }

        #[tokio::test]
        async fn bad_signature_moves_nothing() {
            $crate::conformance::bad_signature_moves_nothing::<$mock>().await;
        }

        #[tokio::test]
        async fn rate_limit_is_waited_out() {
            $crate::conformance::rate_limit_is_waited_out::<$mock>().await;
        }

        #[tokio::test]
        async fn malformed_answers_move_nothing() {
            $crate::conformance::malformed_answers_move_nothing::<$mock>().await;
        }

        #[tokio::test]
        async fn unknown_outcome_is_reconciled() {
            $crate::conformance::unknown_outcome_is_reconciled::<$mock>().await;
        }
    };
}
pub(crate) use conformance_tests;
