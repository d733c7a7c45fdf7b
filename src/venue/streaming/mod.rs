//! A venue read through its streams: the REST adapter's snapshot held locally and re-priced
//! on every streamed mark, so a wick is seen within the stream's cadence instead of the poll
//! interval. REST stays the source of truth.
//!
//! Who may change the local account:
//! - the REST adapter, through `Streaming::snapshot` alone: it seeds the account at start,
//!   after an account event (a fill, a transfer, funding), after a reconnect and every
//!   `reconcile_every`, and whenever the streamed marks cannot price it;
//! - the stream connections, through `MarkBoard`: they write marks and raise the "account
//!   changed" flag, nothing else. They never write balances or positions: an account event is
//!   a delta the venue documents as partial (Binance's `ACCOUNT_UPDATE` carries no maintenance,
//!   Bybit's `wallet` has no snapshot), so it forces a REST read before the next decision
//!   instead of being merged by hand.
//!
//! The stale guard: a position whose mark is missing or older than `max_mark_age` makes the
//! whole account unpriceable locally, and the snapshot comes from REST — the engine then runs
//! at its poll interval until the marks are fresh again (said once in the log each way).

pub mod local;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use self::local::{drift, marks_usable, reprice, StreamedMark, Unpriced};
use crate::clock::Clock;
use crate::money::{Ratio, Usdt};
use crate::time::Timestamp;
use crate::venue::common::stream::{
    run_stream, Backoff, FrameSink, StreamCounters, StreamEvent, StreamKind, StreamProtocol,
};
use crate::venue::{
    KeyPermissions, TransferKey, TransferReceipt, TransferRequest, TransferRules, TransferStatus,
    Venue, VenueError, VenueSnapshot,
};

/// How a streamed account is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// The mark stream's push interval (Binance `@markPrice@1s`: 1 s).
    pub cadence: Duration,
    /// No decision on a mark older than this (three cadences by default).
    pub max_mark_age: Duration,
    /// A REST snapshot reconciles the local account at least this often.
    pub reconcile_every: Duration,
    /// Local equity this far from REST's (a share of REST's) is logged with both figures.
    pub drift_alert: Ratio,
}

impl StreamSettings {
    pub const DEFAULT_RECONCILE: Duration = Duration::from_secs(30);

    /// Three cadences of staleness allowed, never under a second (a 100 ms stream must not
    /// fall back to REST on every network hiccup).
    pub fn for_cadence(cadence: Duration) -> Self {
        Self {
            cadence,
            max_mark_age: (cadence * 3).max(Duration::from_secs(1)),
            reconcile_every: Self::DEFAULT_RECONCILE,
            drift_alert: Ratio(rust_decimal::Decimal::new(1, 2)),
        }
    }
}

/// What the stream connections write: marks by symbol and the "account changed" flag. The
/// one place they touch.
pub struct MarkBoard {
    clock: Clock,
    /// The adapter's measured offset to the venue's clock (server − local, ms).
    offset_ms: Box<dyn Fn() -> i64 + Send + Sync>,
    marks: Mutex<HashMap<String, StreamedMark>>,
    account_changed: AtomicBool,
    /// Connections lost since the last seed: marks and account events may have been missed.
    reconnected: AtomicBool,
    wake: Notify,
    frames: AtomicU64,
    /// The symbols of the positions REST last showed: the mark streams to subscribe. A
    /// change opens the mark connection again with the new set.
    wanted: watch::Sender<BTreeSet<String>>,
}

impl MarkBoard {
    pub fn new(clock: Clock, offset_ms: Box<dyn Fn() -> i64 + Send + Sync>) -> Self {
        Self {
            clock,
            offset_ms,
            marks: Mutex::new(HashMap::new()),
            account_changed: AtomicBool::new(false),
            reconnected: AtomicBool::new(false),
            wake: Notify::new(),
            frames: AtomicU64::new(0),
            wanted: watch::Sender::new(BTreeSet::new()),
        }
    }

    /// `f` over the marks, without copying them.
    fn with_marks<T>(&self, f: impl FnOnce(&HashMap<String, StreamedMark>) -> T) -> T {
        f(&self.marks.lock().expect("marks lock"))
    }

    /// The symbols whose marks are wanted, as they change.
    pub fn watch_wanted(&self) -> watch::Receiver<BTreeSet<String>> {
        self.wanted.subscribe()
    }

    /// Subscribes to the marks of `snapshot`'s open positions (a new connection when the set
    /// changed).
    fn want_positions_of(&self, snapshot: &VenueSnapshot) {
        let symbols: BTreeSet<String> = snapshot
            .account
            .positions
            .iter()
            .filter(|p| !p.size.is_zero())
            .map(|p| p.symbol.clone())
            .collect();
        self.wanted.send_if_modified(|wanted| {
            let changed = *wanted != symbols;
            *wanted = symbols;
            changed
        });
    }

    /// Events delivered so far (marks and account events).
    pub fn events(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Whether the REST account must be read before the next decision; clears the flag.
    fn take_must_reseed(&self) -> bool {
        let changed = self.account_changed.swap(false, Ordering::AcqRel);
        let reconnected = self.reconnected.swap(false, Ordering::AcqRel);
        changed || reconnected
    }

    fn must_reseed(&self) -> bool {
        self.account_changed.load(Ordering::Acquire) || self.reconnected.load(Ordering::Acquire)
    }

    fn record_mark(&self, symbol: String, price: crate::money::Price, venue_time_ms: i64) {
        let received = self.clock.now();
        let at = Timestamp(venue_time_ms.saturating_sub((self.offset_ms)()));
        let mark = StreamedMark {
            price,
            at,
            received,
        };
        let moved = {
            let mut marks = self.marks.lock().expect("marks lock");
            match marks.get(&symbol) {
                // Frames on one connection are ordered, but a reconnect may replay an older
                // one: never step a mark back in time.
                Some(old) if old.at > at => false,
                Some(old) => {
                    let moved = old.price != price;
                    marks.insert(symbol, mark);
                    moved
                }
                None => {
                    marks.insert(symbol, mark);
                    true
                }
            }
        };
        if moved {
            self.wake.notify_one();
        }
    }
}

impl FrameSink for MarkBoard {
    fn deliver(&self, event: StreamEvent) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        match event {
            StreamEvent::Mark {
                symbol,
                price,
                venue_time_ms,
            } => self.record_mark(symbol, price, venue_time_ms),
            StreamEvent::AccountChanged { reason } => {
                tracing::debug!(%reason, "account event: the account is read from REST before the next decision");
                self.account_changed.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            StreamEvent::MarginCall => {
                tracing::warn!("the venue pushed a margin call: reading the account now");
                self.account_changed.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            StreamEvent::Reconnect { .. }
            | StreamEvent::Refused { .. }
            | StreamEvent::Send { .. } => {}
        }
    }

    fn connected(&self, stream: &str, kind: StreamKind, up: bool) {
        if !up {
            return;
        }
        tracing::info!(%stream, "stream connected");
        // An account event may have come while the account stream was down: read REST. A
        // mark stream misses nothing its next frame does not bring back, and a REST read per
        // mark reconnect would spend the venue's tightest budgets (OKX) for nothing.
        if kind == StreamKind::Account {
            self.reconnected.store(true, Ordering::Release);
            self.wake.notify_one();
        }
    }
}

/// Why the local account is not used for a snapshot.
enum NotPriced {
    NoSeed,
    ReconcileDue,
    /// Our own transfer may have moved money the seed does not show yet.
    OwnTransfer,
    Marks(Unpriced),
}

/// A transfer this process made that REST has not shown yet: until it does, the seed is
/// older than the account, so every snapshot is a REST read (at most one a second).
#[derive(Debug, Clone, Copy)]
struct OwnTransfer {
    key: TransferKey,
    /// The futures wallet REST must show for the seed to include the transfer.
    wallet_target: Usdt,
    since: Timestamp,
}

/// After this long an unseen own transfer no longer holds the local account back (the
/// engine's reconcile and its lapse rule own the transfer's fate).
const OWN_TRANSFER_PATIENCE: Duration = Duration::from_secs(600);
/// While our own transfer is unseen, REST is read on a mark at most this often.
const MIN_REST_GAP: Duration = Duration::from_secs(1);

struct Seed {
    snapshot: VenueSnapshot,
    read_at: Timestamp,
}

/// Starts the stream connections; called once, when the engine first waits on the venue (so
/// `check`, which never waits, opens no stream).
pub type StreamStarter = Box<dyn FnOnce(Arc<MarkBoard>) -> Vec<JoinHandle<()>> + Send>;

/// The symbols a mark connection subscribes, following the positions REST last showed.
pub struct WatchedSymbols(tokio::sync::Mutex<watch::Receiver<BTreeSet<String>>>);

impl WatchedSymbols {
    pub fn of(board: &MarkBoard) -> Self {
        Self(tokio::sync::Mutex::new(board.watch_wanted()))
    }

    /// The set now, marked seen: `changed` returns only on a later change.
    pub async fn current(&self) -> BTreeSet<String> {
        self.0.lock().await.borrow_and_update().clone()
    }

    /// Returns when the set changes (never once the account is gone).
    pub async fn changed(&self) {
        if self.0.lock().await.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `rest` read through a mark stream and an account stream, as every venue's `open()` builds
/// it: `offset_ms` is the adapter's measured offset to the venue's clock (marks are stamped
/// with the venue's time), and `protocols` makes the two connections' protocols once the
/// engine first waits on the venue.
pub fn streamed<M, A>(
    rest: Box<dyn Venue>,
    clock: Clock,
    settings: StreamSettings,
    offset_ms: Box<dyn Fn() -> i64 + Send + Sync>,
    protocols: impl FnOnce(&MarkBoard) -> (M, A) + Send + 'static,
) -> Box<dyn Venue>
where
    M: StreamProtocol,
    A: StreamProtocol,
{
    let board = Arc::new(MarkBoard::new(clock.clone(), offset_ms));
    let starter: StreamStarter = Box::new(move |board: Arc<MarkBoard>| {
        let counters = Arc::new(StreamCounters::default());
        let (marks, account) = protocols(&board);
        vec![
            tokio::spawn(run_stream(
                Arc::new(marks),
                board.clone(),
                Backoff::default(),
                counters.clone(),
            )),
            tokio::spawn(run_stream(
                Arc::new(account),
                board,
                Backoff::default(),
                counters,
            )),
        ]
    });
    Box::new(Streaming::new(rest, board, settings, clock, starter))
}

pub struct Streaming {
    rest: Box<dyn Venue>,
    board: Arc<MarkBoard>,
    settings: StreamSettings,
    clock: Clock,
    seed: Mutex<Option<Seed>>,
    starter: Mutex<Option<StreamStarter>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Why the marks cannot price the account, while they cannot (logged once each way).
    falling_back: Mutex<Option<String>>,
    drifts: AtomicU64,
    local_snapshots: AtomicU64,
    own_transfers: Mutex<Vec<OwnTransfer>>,
    last_rest_read: Mutex<Option<Timestamp>>,
}

impl Streaming {
    pub fn new(
        rest: Box<dyn Venue>,
        board: Arc<MarkBoard>,
        settings: StreamSettings,
        clock: Clock,
        starter: StreamStarter,
    ) -> Self {
        Self {
            rest,
            board,
            settings,
            clock,
            seed: Mutex::new(None),
            starter: Mutex::new(Some(starter)),
            tasks: Mutex::new(Vec::new()),
            falling_back: Mutex::new(None),
            drifts: AtomicU64::new(0),
            local_snapshots: AtomicU64::new(0),
            own_transfers: Mutex::new(Vec::new()),
            last_rest_read: Mutex::new(None),
        }
    }

    /// How many REST reconciles found local equity beyond `drift_alert`.
    pub fn drifts(&self) -> u64 {
        self.drifts.load(Ordering::Relaxed)
    }

    /// How many snapshots came from the local account rather than REST.
    pub fn local_snapshots(&self) -> u64 {
        self.local_snapshots.load(Ordering::Relaxed)
    }

    fn start(&self) {
        if let Some(starter) = self.starter.lock().expect("starter lock").take() {
            let tasks = starter(self.board.clone());
            self.tasks.lock().expect("tasks lock").extend(tasks);
        }
    }

    /// The seed re-priced at the streamed marks, if it is fresh enough to use.
    fn priced(&self, now: Timestamp) -> Result<VenueSnapshot, NotPriced> {
        self.with_usable_seed(now, |seed, marks, max_age| {
            reprice(seed, marks, now, max_age)
        })
    }

    /// Whether `priced` would succeed, without re-pricing: checked on every frame that wakes.
    fn can_price(&self, now: Timestamp) -> bool {
        self.with_usable_seed(now, |seed, marks, max_age| {
            marks_usable(seed, marks, now, max_age)
        })
        .is_ok()
    }

    /// `f` over the seed and the marks, unless the seed is absent, due for a reconcile or
    /// behind our own transfer.
    fn with_usable_seed<T>(
        &self,
        now: Timestamp,
        f: impl FnOnce(&VenueSnapshot, &HashMap<String, StreamedMark>, Duration) -> Result<T, Unpriced>,
    ) -> Result<T, NotPriced> {
        if !self.own_transfers.lock().expect("own lock").is_empty() {
            return Err(NotPriced::OwnTransfer);
        }
        let seed = self.seed.lock().expect("seed lock");
        let Some(seed) = seed.as_ref() else {
            return Err(NotPriced::NoSeed);
        };
        if now.since(seed.read_at) >= self.settings.reconcile_every {
            return Err(NotPriced::ReconcileDue);
        }
        let max_age = self.settings.max_mark_age;
        self.board
            .with_marks(|marks| f(&seed.snapshot, marks, max_age))
            .map_err(NotPriced::Marks)
    }

    /// While our own transfer is unseen, a mark may bring a REST read, at most once a second.
    fn rest_read_due(&self, now: Timestamp) -> bool {
        let own = !self.own_transfers.lock().expect("own lock").is_empty();
        let last = *self.last_rest_read.lock().expect("read lock");
        own && last.is_none_or(|last| now.since(last) >= MIN_REST_GAP)
    }

    fn note_fallback(&self, why: Option<&str>) {
        let mut falling_back = self.falling_back.lock().expect("fallback lock");
        match (falling_back.as_deref(), why) {
            (None, Some(why)) => {
                tracing::warn!(venue = self.rest.kind(), reason = %why,
                    "streamed marks cannot price the account: deciding on REST snapshots at the poll interval until they can");
                *falling_back = Some(why.to_string());
            }
            (Some(was), None) => {
                tracing::info!(venue = self.rest.kind(), was = %was,
                    "streamed marks price the account again: deciding on every mark");
                *falling_back = None;
            }
            _ => {}
        }
    }

    async fn read_rest(&self, now: Timestamp) -> Result<VenueSnapshot, VenueError> {
        let local = self.priced(now).ok();
        *self.last_rest_read.lock().expect("read lock") = Some(now);
        let rest = self.rest.snapshot().await?;
        self.board.want_positions_of(&rest);
        self.own_transfers.lock().expect("own lock").retain(|own| {
            let shown = rest.wallet_balance >= own.wallet_target;
            let given_up = now.since(own.since) >= OWN_TRANSFER_PATIENCE;
            if given_up && !shown {
                tracing::warn!(venue = self.rest.kind(), key = %own.key,
                    "REST has not shown our transfer for 10 minutes; the streamed account is used again");
            }
            !shown && !given_up
        });
        if let Some(local) = local {
            self.compare(&local, &rest);
        }
        *self.seed.lock().expect("seed lock") = Some(Seed {
            snapshot: rest.clone(),
            read_at: now,
        });
        Ok(rest)
    }

    fn compare(&self, local: &VenueSnapshot, rest: &VenueSnapshot) {
        let (local_equity, rest_equity) = (local.account.equity, rest.account.equity);
        let Some(share) = drift(local_equity, rest_equity) else {
            return;
        };
        if share > self.settings.drift_alert {
            let drifts = self.drifts.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(venue = self.rest.kind(), local = %local_equity, rest = %rest_equity,
                drift = %share.percent(), drifts,
                "the local account drifted from REST beyond the alert; REST's figures replace it");
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

#[async_trait]
impl Venue for Streaming {
    fn kind(&self) -> &'static str {
        self.rest.kind()
    }

    fn transfer_rules(&self) -> TransferRules {
        self.rest.transfer_rules()
    }

    /// The local account when the marks can price it; otherwise (and when an account event,
    /// a reconnect or the reconcile interval asks for it) the REST snapshot, which seeds it.
    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let now = self.clock.now();
        if !self.board.take_must_reseed() {
            match self.priced(now) {
                Ok(priced) => {
                    self.note_fallback(None);
                    self.local_snapshots.fetch_add(1, Ordering::Relaxed);
                    return Ok(priced);
                }
                Err(NotPriced::Marks(why)) => self.note_fallback(Some(&why.to_string())),
                Err(NotPriced::NoSeed | NotPriced::ReconcileDue | NotPriced::OwnTransfer) => {}
            }
        }
        self.read_rest(now).await
    }

    /// Until REST shows a transfer that may have moved money, the seed is older than the
    /// account: snapshots come from REST.
    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        let wallet_before = self
            .seed
            .lock()
            .expect("seed lock")
            .as_ref()
            .map(|seed| seed.snapshot.wallet_balance);
        let result = self.rest.transfer(request).await;
        let may_have_moved = match &result {
            Ok(receipt) => !matches!(receipt.status, TransferStatus::Failed(_)),
            Err(error) => error.retry() == crate::venue::Retry::AfterReconcile,
        };
        if may_have_moved {
            let wallet_target = wallet_before
                .and_then(|w| w.checked_add(request.amount))
                .unwrap_or(Usdt(rust_decimal::Decimal::MAX));
            self.own_transfers
                .lock()
                .expect("own lock")
                .push(OwnTransfer {
                    key: request.key,
                    wallet_target,
                    since: self.clock.now(),
                });
        }
        result
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        let status = self.rest.transfer_status(request).await?;
        if matches!(status, TransferStatus::Failed(_)) {
            // It moved nothing: the seed is not behind on its account.
            self.own_transfers
                .lock()
                .expect("own lock")
                .retain(|own| own.key != request.key);
        }
        Ok(status)
    }

    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        self.rest.permissions().await
    }

    fn remember(&self, key: TransferKey, venue_id: &str) {
        self.rest.remember(key, venue_id)
    }

    fn matched_id(&self, key: TransferKey) -> Option<String> {
        self.rest.matched_id(key)
    }

    fn refuses_duplicate_keys(&self) -> bool {
        self.rest.refuses_duplicate_keys()
    }

    fn may_still_act_for(&self) -> Duration {
        self.rest.may_still_act_for()
    }

    /// Returns when a streamed mark moved a price the account can be re-priced at, or an
    /// account event asks for a read. While the marks cannot price the account it keeps
    /// waiting: the engine's poll timer reads REST then, at the poll interval, not at the
    /// stream's rate.
    async fn changed(&self) {
        self.start();
        loop {
            self.board.wake.notified().await;
            let now = self.clock.now();
            if self.board.must_reseed() || self.can_price(now) || self.rest_read_due(now) {
                return;
            }
        }
    }

    fn observation_interval(&self) -> Option<Duration> {
        let usable = self.falling_back.lock().expect("fallback lock").is_none();
        usable.then_some(self.settings.cadence)
    }

    fn feed(&self) -> Option<crate::venue::FeedHealth> {
        let fallback_reason = self.falling_back.lock().expect("fallback lock").clone();
        Some(crate::venue::FeedHealth {
            streaming: fallback_reason.is_none(),
            fallback_reason,
            drifts: self.drifts(),
        })
    }
}
