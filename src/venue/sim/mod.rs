//! The embedded simulated venue: a cross-margin account living through real kline days.
//!
//! It implements the same `Venue` trait as the real adapters. Its money is simulated, so its
//! transfers really happen (after the scenario's settlement latency) and its liquidation
//! engine really liquidates when equity ≤ maintenance at any sub-step of any minute — that is
//! how a user rehearses a crash before trusting the bot with a live account.
//! Simplifications, stated: no fees, no funding payments, and liquidation takes the whole
//! remaining margin (the account is closed out flat with a zero wallet).

pub mod market;
pub mod path;
pub mod scenario;

use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::core::{Account, MetricValue, Metrics, Position};
use crate::money::{Price, Usdt};
use crate::time::Timestamp;
use crate::venue::{
    KeyPermissions, TransferReceipt, TransferRequest, TransferRules, TransferStatus, Venue,
    VenueError, VenueSnapshot,
};
use market::SUBSTEPS_PER_MINUTE;
pub use scenario::Scenario;

/// How a replay ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOutcome {
    /// Up to when the day was replayed: its end, unless the run was stopped early.
    pub as_of: Timestamp,
    pub complete: bool,
    pub liquidated: Option<Liquidation>,
    pub reserve_spent: Usdt,
    pub top_ups: usize,
    pub lowest_distance: (MetricValue, Timestamp),
    pub lowest_buffer: (MetricValue, Timestamp),
    pub final_equity: Usdt,
    pub reserve_left: Usdt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Liquidation {
    pub at: Timestamp,
    pub marks: Vec<(String, Price)>,
    pub equity: Usdt,
    pub maintenance: Usdt,
}

pub struct SimVenue {
    scenario: Scenario,
    clock: Clock,
    state: Mutex<SimState>,
    /// Streamed: the marks reach the bot at this cadence (a replay in stream mode).
    stream_cadence: Option<std::time::Duration>,
}

#[derive(Debug)]
struct SimState {
    /// Index of the next sub-step to apply, over all minutes.
    next_step: usize,
    marks: Vec<Price>,
    wallet: Usdt,
    reserve: Usdt,
    open: bool,
    transfers: Vec<SimTransfer>,
    liquidated: Option<Liquidation>,
    lowest_distance: (MetricValue, Timestamp),
    lowest_buffer: (MetricValue, Timestamp),
}

#[derive(Debug)]
struct SimTransfer {
    request: TransferRequest,
    settle_at: Timestamp,
    settled: bool,
}

impl SimVenue {
    pub fn new(scenario: Scenario, clock: Clock) -> Self {
        let start = scenario.start();
        let marks = scenario.positions.iter().map(|p| p.entry).collect();
        let state = SimState {
            next_step: 0,
            marks,
            wallet: scenario.wallet,
            reserve: scenario.reserve,
            open: true,
            transfers: Vec::new(),
            liquidated: None,
            lowest_distance: (MetricValue::Unbounded, start),
            lowest_buffer: (MetricValue::Unbounded, start),
        };
        Self {
            scenario,
            clock,
            state: Mutex::new(state),
            stream_cadence: None,
        }
    }

    /// This venue as a streamed one: its marks reach the bot every `cadence`, so the rescue
    /// horizon is that cadence plus the settlement latency.
    pub fn streamed(mut self, cadence: std::time::Duration) -> Self {
        self.stream_cadence = Some(cadence);
        self
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The state, locked. `expect`: the lock is only poisoned by a panic while it is held,
    /// and nothing under it panics (its arithmetic saturates or is checked).
    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().expect("sim lock")
    }

    /// Replays the rest of the day (whatever the bot does) and reports how it ended.
    pub fn finish(&self) -> SimOutcome {
        let mut state = self.lock();
        self.advance(&mut state, self.scenario.end());
        self.outcome(&state, self.scenario.end(), true)
    }

    /// How the day stands now, without replaying the rest: for a run stopped early, where
    /// replaying on without the bot would misreport what the bot did.
    pub fn outcome_so_far(&self) -> SimOutcome {
        let now = self.clock.now().min(self.scenario.end());
        let mut state = self.lock();
        self.advance(&mut state, now);
        self.outcome(&state, now, now >= self.scenario.end())
    }

    fn outcome(&self, state: &SimState, as_of: Timestamp, complete: bool) -> SimOutcome {
        SimOutcome {
            as_of,
            complete,
            liquidated: state.liquidated.clone(),
            // The reserve only ever shrinks by accepted transfers, so this is in [0, reserve].
            reserve_spent: self.scenario.reserve - state.reserve,
            top_ups: state.transfers.len(),
            lowest_distance: state.lowest_distance,
            lowest_buffer: state.lowest_buffer,
            final_equity: self.account(state).equity,
            reserve_left: state.reserve,
        }
    }

    /// A loaded scenario has at least one position (see `path::walk`).
    fn total_steps(&self) -> usize {
        self.scenario.positions[0].bars.len() * SUBSTEPS_PER_MINUTE
    }

    fn step_time(&self, step: usize) -> Timestamp {
        path::substep_time(self.scenario.start().as_millis(), step)
    }

    /// Applies every sub-step up to `now`: settle due transfers, move the marks, let the
    /// liquidation engine look.
    fn advance(&self, state: &mut SimState, now: Timestamp) {
        while state.next_step < self.total_steps() && self.step_time(state.next_step) <= now {
            let at = self.step_time(state.next_step);
            settle_due(state, at);
            let (minute, k) = (
                state.next_step / SUBSTEPS_PER_MINUTE,
                state.next_step % SUBSTEPS_PER_MINUTE,
            );
            // One mark per position (built so in `new`), and every position has the same
            // minutes, so `minute < total_steps / 4` is in range for all.
            for (mark, p) in state.marks.iter_mut().zip(&self.scenario.positions) {
                *mark = p.bars[minute].substep(k, p.is_long());
            }
            self.inspect(state, at, k);
            state.next_step += 1;
        }
        settle_due(state, now);
    }

    /// What the venue's liquidation engine sees at every sub-step. Cheap on purpose (two
    /// figures, no allocation); the liquidation distance, which needs the solver, is tracked
    /// at each minute's adverse extreme, where a one-sided book is closest to liquidation.
    fn inspect(&self, state: &mut SimState, at: Timestamp, substep: usize) {
        if state.liquidated.is_some() {
            return;
        }
        let (equity, maintenance) =
            path::equity_and_maintenance(&self.scenario.positions, &state.marks, state.wallet);
        let buffer = crate::core::metrics::buffer_of(equity, maintenance);
        if buffer < state.lowest_buffer.0 {
            state.lowest_buffer = (buffer, at);
        }
        if substep == 1 || equity <= maintenance {
            let distance = Metrics::of(&self.account(state)).distance.magnitude();
            if distance < state.lowest_distance.0 {
                state.lowest_distance = (distance, at);
            }
        }
        if equity <= maintenance {
            state.liquidated = Some(Liquidation {
                at,
                marks: self
                    .scenario
                    .positions
                    .iter()
                    .zip(&state.marks)
                    .map(|(p, m)| (p.symbol.clone(), *m))
                    .collect(),
                equity,
                maintenance,
            });
            // Closed out flat; the remaining margin goes with the liquidation.
            state.wallet = Usdt::ZERO;
        }
    }

    fn positions(&self, state: &SimState) -> Vec<Position> {
        if state.liquidated.is_some() {
            return Vec::new();
        }
        self.scenario
            .positions
            .iter()
            .zip(&state.marks)
            .map(|(p, mark)| Position {
                symbol: p.symbol.clone(),
                size: p.size,
                entry: p.entry,
                mark: *mark,
                leverage: p.leverage,
                tiers: p.tiers.clone(),
            })
            .collect()
    }

    /// What the venue reports. Saturated like the path's figures (see `path`): the core
    /// recomputes its metrics from the positions with checked arithmetic anyway.
    fn account(&self, state: &SimState) -> Account {
        let positions = self.positions(state);
        let pnl = positions
            .iter()
            .fold(Usdt::ZERO, |sum, p| sum.saturating_add(p.unrealized_pnl()));
        let maintenance = positions.iter().fold(Usdt::ZERO, |sum, p| {
            sum.saturating_add(p.tiers.maintenance(p.notional()))
        });
        Account {
            equity: state.wallet.saturating_add(pnl),
            maintenance,
            positions,
        }
    }

    /// Whether the wallet can take `amount` on top of every transfer still settling: the
    /// wallet only grows by settlements, so what fits now still fits when it lands.
    fn wallet_can_hold(state: &SimState, amount: Usdt) -> bool {
        let mut pending = state.transfers.iter().filter(|t| !t.settled);
        pending
            .try_fold(state.wallet, |sum, t| sum.checked_add(t.request.amount))
            .and_then(|sum| sum.checked_add(amount))
            .is_some()
    }
}

fn settle_due(state: &mut SimState, now: Timestamp) {
    for t in state.transfers.iter_mut().filter(|t| !t.settled) {
        if t.settle_at <= now {
            t.settled = true;
            // Cannot saturate: `transfer` accepted it only if the wallet could hold it.
            state.wallet = state.wallet.saturating_add(t.request.amount);
        }
    }
}

#[async_trait]
impl Venue for SimVenue {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn observation_interval(&self) -> Option<std::time::Duration> {
        self.stream_cadence
    }

    fn transfer_rules(&self) -> TransferRules {
        TransferRules {
            step: self.scenario.transfer_step,
            settlement: self.scenario.settlement,
        }
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let now = self.clock.now();
        let mut state = self.lock();
        if now >= self.scenario.end() {
            self.advance(&mut state, self.scenario.end());
            state.open = false;
        }
        if !state.open {
            return Err(VenueError::Closed {
                reason: format!("the scenario `{}` has ended", self.scenario.name),
            });
        }
        self.advance(&mut state, now);
        Ok(VenueSnapshot {
            as_of: now,
            account: self.account(&state),
            wallet_balance: state.wallet,
            reserve_available: state.reserve,
            shadowed: Usdt::ZERO,
            stand_in_tiers: Vec::new(),
            unguarded: Vec::new(),
        })
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.advance(&mut state, now);
        if state.transfers.iter().any(|t| t.request.key == request.key) {
            return Err(VenueError::Rejected {
                code: "duplicate".into(),
                message: format!("transfer {} exists already", request.key),
            });
        }
        if request.amount > state.reserve || request.amount.0 <= rust_decimal::Decimal::ZERO {
            return Err(VenueError::Rejected {
                code: "insufficient".into(),
                message: format!(
                    "cannot move {} with {} in the reserve",
                    request.amount, state.reserve
                ),
            });
        }
        if !Self::wallet_can_hold(&state, request.amount) {
            return Err(VenueError::Rejected {
                code: "overflow".into(),
                message: format!(
                    "cannot move {} into a futures wallet of {}: the balance would exceed what the venue can book",
                    request.amount, state.wallet
                ),
            });
        }
        // Accepted amounts are positive and at most the reserve: it stays in [0, reserve].
        state.reserve -= request.amount;
        state.transfers.push(SimTransfer {
            request: request.clone(),
            settle_at: Timestamp(
                now.as_millis()
                    .saturating_add(crate::core::saturated_millis(self.scenario.settlement)),
            ),
            settled: false,
        });
        settle_due(&mut state, now);
        Ok(TransferReceipt {
            venue_id: Some(format!("sim-{}", state.transfers.len())),
            status: TransferStatus::Pending,
        })
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.advance(&mut state, now);
        Ok(
            match state
                .transfers
                .iter()
                .find(|t| t.request.key == request.key)
            {
                Some(t) if t.settled => TransferStatus::Settled,
                Some(_) => TransferStatus::Pending,
                None => TransferStatus::NotFound,
            },
        )
    }

    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        Ok(KeyPermissions {
            can_withdraw: false,
            account_id: None,
            can_transfer: true,
            ip_restricted: true,
            notes: vec!["simulated venue: no key, no network".into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::TransferKey;
    use rust_decimal::Decimal;
    use std::path::Path;

    fn venue_with_reserve(reserve: Usdt) -> (SimVenue, Clock) {
        let mut scenario = Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/btc-2024-08-05-10x-long.toml"),
        )
        .unwrap();
        scenario.reserve = reserve;
        let clock = Clock::virtual_at(scenario.start());
        (SimVenue::new(scenario, clock.clone()), clock)
    }

    fn request(key: u128, amount: Usdt, at: Timestamp) -> TransferRequest {
        TransferRequest {
            key: TransferKey(key),
            amount,
            created_at: at,
        }
    }

    /// Issue 10 item 3: `simulate --reserve 79228162514264337593543950335` with no transfer
    /// step moved the whole reserve in, and settling it overflowed the futures wallet. The
    /// venue refuses a transfer the wallet cannot hold, as a real one refuses any it cannot
    /// book.
    #[tokio::test]
    async fn a_transfer_the_wallet_cannot_hold_is_refused_not_overflowed() {
        let (venue, clock) = venue_with_reserve(Usdt(Decimal::MAX));
        let at = clock.now();
        let refused = venue.transfer(&request(1, Usdt(Decimal::MAX), at)).await;
        assert!(
            matches!(refused, Err(VenueError::Rejected { .. })),
            "{refused:?}"
        );
        // What fits beside the 10,000 wallet is accepted and settles.
        let fits = Usdt(Decimal::MAX - Decimal::from(20_000));
        venue.transfer(&request(2, fits, at)).await.unwrap();
        clock.sleep(std::time::Duration::from_secs(120)).await;
        let snapshot = venue.snapshot().await.unwrap();
        assert!(snapshot.wallet_balance > fits);
        let outcome = venue.finish();
        assert!(outcome.liquidated.is_none());
    }
}
