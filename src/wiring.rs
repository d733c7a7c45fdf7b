//! Wiring: config → venues, clocks and runners.
//!
//! Architecture invariant: this is the only place that reads `dry_run`. A real venue in
//! dry-run is wrapped in `DryRun` here; below this point nothing knows. The simulator is never
//! wrapped: its money is simulated, so its transfers must play out for a rehearsal to mean
//! anything.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{AccountConfig, VenueConfig};
use crate::engine::{AccountRunner, AccountSetup, EventSink};
use crate::venue::binance::BinanceVenue;
use crate::venue::okx::OkxVenue;
use crate::venue::sim::SimVenue;
use crate::venue::Venue;

/// Whether the money-moving call is really made against real venues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Live,
}

/// A simulated account, kept so the caller can ask how its day ended.
pub struct SimHandle {
    pub account: String,
    pub strategy: String,
    pub venue: Arc<SimVenue>,
}

pub struct Wired {
    pub runners: Vec<AccountRunner>,
    /// Every account's venue as the engine sees it, in config order (for `check`).
    pub venues: Vec<Arc<dyn Venue>>,
    pub sims: Vec<SimHandle>,
}

pub fn wire(accounts: &[AccountConfig], mode: Mode, events: EventSink) -> Wired {
    let mut runners = Vec::with_capacity(accounts.len());
    let mut venues = Vec::with_capacity(accounts.len());
    let mut sims = Vec::new();
    for account in accounts {
        let (venue, clock, key_salt) = match &account.venue {
            VenueConfig::Sim {
                scenario, speed, ..
            } => {
                let clock = Clock::paced_at(scenario.start(), *speed);
                let sim = Arc::new(SimVenue::new((**scenario).clone(), clock.clone()));
                tracing::info!(account = %account.name, ?mode,
                    "simulated venue: its money is simulated, so its transfers play out whatever the mode");
                sims.push(SimHandle {
                    account: account.name.clone(),
                    strategy: account.strategy.name.clone(),
                    venue: sim.clone(),
                });
                (sim as Arc<dyn Venue>, clock, 0)
            }
            VenueConfig::Binance(settings) => {
                let clock = Clock::Wall;
                let venue = BinanceVenue::new(settings, clock.clone());
                tracing::info!(account = %account.name, ?mode, profile = settings.profile.name(), "binance venue");
                (for_mode(Box::new(venue), mode), clock, process_salt())
            }
            VenueConfig::Okx(settings) => {
                let clock = Clock::Wall;
                let venue = OkxVenue::new(settings, clock.clone());
                tracing::info!(account = %account.name, ?mode, region = %settings.region, demo = settings.http.demo, "okx venue");
                (for_mode(Box::new(venue), mode), clock, process_salt())
            }
        };
        venues.push(venue.clone());
        runners.push(AccountRunner::new(
            AccountSetup {
                name: account.name.clone(),
                venue,
                strategy: account.strategy.clone(),
                caps: account.caps.clone(),
                poll_interval: account.poll_interval,
                clock,
                key_salt,
            },
            events.clone(),
        ));
    }
    Wired {
        runners,
        venues,
        sims,
    }
}

/// Varies transfer keys between processes of a live daemon.
fn process_salt() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id())
}

/// Wraps a real venue for the chosen mode. Real adapters call this from `wire`.
pub fn for_mode(venue: Box<dyn Venue>, mode: Mode) -> Arc<dyn Venue> {
    match mode {
        Mode::DryRun => Arc::new(crate::venue::dry_run::DryRun::new(venue)),
        Mode::Live => Arc::from(venue),
    }
}
