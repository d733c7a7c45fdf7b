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
use market::{SUBSTEPS_PER_MINUTE, SUBSTEP_MS};
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
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Replays the rest of the day (whatever the bot does) and reports how it ended.
    pub fn finish(&self) -> SimOutcome {
        let mut state = self.state.lock().expect("sim lock");
        self.advance(&mut state, self.scenario.end());
        self.outcome(&state, self.scenario.end(), true)
    }

    /// How the day stands now, without replaying the rest: for a run stopped early, where
    /// replaying on without the bot would misreport what the bot did.
    pub fn outcome_so_far(&self) -> SimOutcome {
        let now = self.clock.now().min(self.scenario.end());
        let mut state = self.state.lock().expect("sim lock");
        self.advance(&mut state, now);
        self.outcome(&state, now, now >= self.scenario.end())
    }

    fn outcome(&self, state: &SimState, as_of: Timestamp, complete: bool) -> SimOutcome {
        SimOutcome {
            as_of,
            complete,
            liquidated: state.liquidated.clone(),
            reserve_spent: self.scenario.reserve - state.reserve,
            top_ups: state.transfers.len(),
            lowest_distance: state.lowest_distance,
            lowest_buffer: state.lowest_buffer,
            final_equity: self.account(state).equity,
            reserve_left: state.reserve,
        }
    }

    fn total_steps(&self) -> usize {
        self.scenario.positions[0].bars.len() * SUBSTEPS_PER_MINUTE
    }

    fn step_time(&self, step: usize) -> Timestamp {
        Timestamp(self.scenario.start().as_millis() + step as i64 * SUBSTEP_MS)
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
            for (i, p) in self.scenario.positions.iter().enumerate() {
                state.marks[i] = p.bars[minute].substep(k, p.is_long());
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

    fn account(&self, state: &SimState) -> Account {
        let positions = self.positions(state);
        let pnl: Usdt = positions.iter().map(Position::unrealized_pnl).sum();
        let maintenance = positions
            .iter()
            .map(|p| p.tiers.maintenance(p.notional()))
            .sum();
        Account {
            equity: state.wallet + pnl,
            maintenance,
            positions,
        }
    }
}

fn settle_due(state: &mut SimState, now: Timestamp) {
    for t in state.transfers.iter_mut().filter(|t| !t.settled) {
        if t.settle_at <= now {
            t.settled = true;
            state.wallet += t.request.amount;
        }
    }
}

#[async_trait]
impl Venue for SimVenue {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn transfer_rules(&self) -> TransferRules {
        TransferRules {
            step: self.scenario.transfer_step,
            settlement: self.scenario.settlement,
        }
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("sim lock");
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
        })
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("sim lock");
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
        state.reserve -= request.amount;
        state.transfers.push(SimTransfer {
            request: request.clone(),
            settle_at: now + self.scenario.settlement,
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
        let mut state = self.state.lock().expect("sim lock");
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
            can_transfer: true,
            ip_restricted: true,
            notes: vec!["simulated venue: no key, no network".into()],
        })
    }
}
