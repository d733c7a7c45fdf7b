//! Wiring: config → venues, clocks and runners.
//!
//! Architecture invariant: this is the only place that reads `dry_run`. A real venue in
//! dry-run is wrapped in `DryRun` here; below this point nothing knows. The simulator is never
//! wrapped: its money is simulated, so its transfers must play out for a rehearsal to mean
//! anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::journal::{dry_run_path, Journal, JournalError};

use crate::clock::Clock;
use crate::config::{AccountConfig, VenueConfig};
use crate::engine::{AccountRunner, AccountSetup, EventSink, Owner, PortfolioBook, ReserveBook};
use crate::money::Usdt;
use crate::venue::binance::BinanceVenue;
use crate::venue::bybit::BybitVenue;
use crate::venue::okx::OkxVenue;
use crate::venue::sim::SimVenue;
use crate::venue::Venue;

/// How an account's money moves, in words for the operator: `simulated` (the simulator's
/// money, transfers play out), `dry-run` (logged as "would transfer") or `live`.
pub fn mode_label(account: &AccountConfig, mode: Mode) -> &'static str {
    match (&account.venue, mode) {
        (VenueConfig::Sim { .. }, _) => "simulated",
        (_, Mode::DryRun) => "dry-run",
        (_, Mode::Live) => "live",
    }
}

/// Every wired account as the operator's side watches it: its config facts, clock, venue
/// and journal, in config order.
pub fn watched_accounts(
    accounts: &[AccountConfig],
    mode: Mode,
    wired: &Wired,
) -> Vec<crate::operator::WatchedAccount> {
    accounts
        .iter()
        .zip(
            wired
                .venues
                .iter()
                .zip(wired.clocks.iter().zip(&wired.journals)),
        )
        .map(
            |(account, (venue, (clock, journal)))| crate::operator::WatchedAccount {
                info: crate::operator::board::AccountInfo {
                    name: account.name.clone(),
                    venue: venue.kind(),
                    mode: mode_label(account, mode),
                    strategy: account.strategy.name.clone(),
                    metric: account.strategy.metric,
                    caps: account.caps.clone(),
                },
                clock: clock.clone(),
                venue: venue.clone(),
                journal: journal.clone(),
            },
        )
        .collect()
}

/// Whether the money-moving call is really made against real venues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Live,
}

impl Mode {
    /// The one place the config's `dry_run` is read: dry unless it says `false`, and always
    /// dry when the command line forces it.
    pub fn chosen(config_dry_run: bool, forced_dry_run: bool) -> Mode {
        if config_dry_run || forced_dry_run {
            Mode::DryRun
        } else {
            Mode::Live
        }
    }
}

/// Accounts that cannot run in `mode`: a venue whose profile has no transfer endpoints
/// (Binance's testnet, Bybit's demo) may only run dry. Asked of every venue the same way.
pub fn mode_refusals(accounts: &[AccountConfig], mode: Mode) -> Vec<String> {
    if mode == Mode::DryRun {
        return Vec::new();
    }
    accounts
        .iter()
        .filter_map(|account| {
            account
                .venue
                .transfers_unavailable()
                .map(|why| format!("{}: {why}", account.name))
        })
        .collect()
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
    /// Every account's clock and journal, in config order (for the operator's side).
    pub clocks: Vec<Clock>,
    pub journals: Vec<Arc<Journal>>,
}

/// Every account's venue, clock and key salt, built but not yet armed: the pre-flight asks
/// these venues who the accounts are before any runner exists.
pub struct Venues {
    /// In config order, as the engine will see them.
    pub venues: Vec<Arc<dyn Venue>>,
    clocks: Vec<(Clock, u64)>,
    sims: Vec<SimHandle>,
}

/// Builds every account's venue for `mode`; opens nothing and calls nothing.
pub fn build_venues(accounts: &[AccountConfig], mode: Mode) -> Venues {
    let mut venues = Vec::with_capacity(accounts.len());
    let mut clocks = Vec::with_capacity(accounts.len());
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
                let venue = BinanceVenue::open(settings, clock.clone());
                tracing::info!(account = %account.name, ?mode, profile = settings.profile.name(),
                    streams = settings.stream.is_some(), "binance venue");
                (for_mode(venue, mode), clock, process_salt())
            }
            VenueConfig::Bybit(settings) => {
                let clock = Clock::Wall;
                let venue = BybitVenue::open(settings, clock.clone());
                tracing::info!(account = %account.name, ?mode, profile = settings.profile.name(),
                    streams = settings.stream.is_some(), "bybit venue");
                (for_mode(venue, mode), clock, process_salt())
            }
            VenueConfig::Okx(settings) => {
                let clock = Clock::Wall;
                let venue = OkxVenue::open(settings, clock.clone());
                tracing::info!(account = %account.name, ?mode, region = %settings.region, demo = settings.http.demo,
                    streams = settings.stream.is_some(), "okx venue");
                (for_mode(venue, mode), clock, process_salt())
            }
        };
        venues.push(venue);
        clocks.push((clock, key_salt));
    }
    Venues {
        venues,
        clocks,
        sims,
    }
}

/// Builds every account's venue, clock, journal and runner, each account known by its config
/// name. `journal` is the live journal's path; dry-run writes beside it (`*.dry-run.*`) and
/// simulated accounts journal in memory, so the three never mix. Fails if a journal cannot be
/// opened or read.
pub fn wire(
    accounts: &[AccountConfig],
    journal: &Path,
    mode: Mode,
    events: EventSink,
) -> Result<Wired, JournalError> {
    arm(
        accounts,
        build_venues(accounts, mode),
        journal,
        mode,
        events,
        &[],
    )
}

/// The runners for built venues. `account_ids[i]`, where the venue told it, is account `i`'s
/// own id at its venue: its journal rows, caps and cooldown follow that id whatever the
/// config calls the account, and accounts on the same reserve wallet share one
/// `ReserveBook`, so together they never spend below `keep_at_least`.
pub fn arm(
    accounts: &[AccountConfig],
    built: Venues,
    journal: &Path,
    mode: Mode,
    events: EventSink,
    account_ids: &[Option<String>],
) -> Result<Wired, JournalError> {
    let mut runners = Vec::with_capacity(accounts.len());
    let mut account_clocks = Vec::with_capacity(accounts.len());
    let mut account_journals = Vec::with_capacity(accounts.len());
    let mut journals = Journals::new(journal, mode);
    let mut books: HashMap<String, ReserveBook> = HashMap::new();
    for (index, (account, (venue, (clock, key_salt)))) in accounts
        .iter()
        .zip(built.venues.iter().zip(built.clocks))
        .enumerate()
    {
        let owner = match account_ids.get(index).and_then(Option::as_deref) {
            Some(id) => Owner::identified(venue.kind(), &account.name, id),
            None => Owner::named(venue.kind(), &account.name),
        };
        let book = books
            .entry(owner.reserve_wallet.clone())
            .or_default()
            .clone();
        let journal = journals.for_venue(&account.venue)?;
        account_clocks.push(clock.clone());
        account_journals.push(journal.clone());
        let setup = AccountSetup {
            name: account.name.clone(),
            venue: venue.clone(),
            strategy: account.strategy.clone(),
            caps: account.caps.clone(),
            poll_interval: account.poll_interval,
            clock,
            key_salt,
            journal,
            unknown_outcome_grace: account.unknown_outcome_grace,
        };
        runners.push(AccountRunner::with_owner(
            setup,
            owner,
            book,
            events.clone(),
        )?);
    }
    Ok(Wired {
        runners,
        venues: built.venues,
        sims: built.sims,
        clocks: account_clocks,
        journals: account_journals,
    })
}

/// Puts every wired account under one portfolio-wide day cap, `max_per_day` across them
/// all, counted from their journals' last 24 h (so a restart keeps the day's spend) and
/// from every intent written since.
pub fn share_portfolio(wired: &mut Wired, max_per_day: Usdt) -> Result<(), JournalError> {
    let mut journals: Vec<Arc<Journal>> = Vec::new();
    for journal in &wired.journals {
        if !journals.iter().any(|j| Arc::ptr_eq(j, journal)) {
            journals.push(journal.clone());
        }
    }
    // The earliest of the accounts' clocks: a simulated day's rows are as old as its clock.
    let now = wired
        .clocks
        .iter()
        .map(Clock::now)
        .min()
        .unwrap_or_else(|| Clock::Wall.now());
    let book = PortfolioBook::capped(max_per_day, &journals, now)?;
    for runner in &mut wired.runners {
        runner.join_portfolio(book.clone());
    }
    Ok(())
}

/// Opens each journal once, on first use.
struct Journals {
    path: PathBuf,
    real: Option<Arc<Journal>>,
    simulated: Option<Arc<Journal>>,
}

impl Journals {
    fn new(live: &Path, mode: Mode) -> Self {
        let path = match mode {
            Mode::Live => live.to_path_buf(),
            Mode::DryRun => dry_run_path(live),
        };
        Self {
            path,
            real: None,
            simulated: None,
        }
    }

    fn for_venue(&mut self, venue: &VenueConfig) -> Result<Arc<Journal>, JournalError> {
        if matches!(venue, VenueConfig::Sim { .. }) {
            return Ok(self
                .simulated
                .get_or_insert_with(|| Arc::new(Journal::in_memory()))
                .clone());
        }
        if self.real.is_none() {
            let journal = Journal::open(&self.path)?;
            tracing::info!(journal = %self.path.display(), "journal opened");
            self.real = Some(Arc::new(journal));
        }
        Ok(self.real.clone().expect("opened above"))
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

/// What the key pre-flight found for one account: lines to show the operator, warnings, and
/// the reason not to arm it, if any. `check` prints it; `run` refuses to start on a refusal.
#[derive(Debug, Default)]
pub struct KeyCheck {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
    pub refusal: Option<String>,
    /// The account's id at its venue, when the venue told it.
    pub account_id: Option<String>,
}

/// The one pre-flight `check` and `run` share, so a key `check` refuses never arms.
///
/// A key that can withdraw is refused in every mode: this machine must never hold one. A key
/// that cannot transfer is refused live, where every rescue would be a doomed request while
/// the account is liquidated, and only warned about in a dry run, which moves nothing.
/// Permissions that cannot be read are a refusal: arming blind is what the pre-flight exists
/// to prevent, and a supervisor restarts the process once the venue answers.
async fn check_key(venue: &dyn Venue, mode: Mode) -> KeyCheck {
    let mut check = KeyCheck::default();
    match venue.permissions().await {
        Ok(p) if p.can_withdraw => {
            check.refusal =
                Some("the API key can withdraw; create a key without withdrawal permission".into())
        }
        Ok(p) => {
            check.account_id = p.account_id.clone();
            if let Some(id) = &p.account_id {
                check.lines.push(format!("account id at the venue: {id}"));
            }
            check.lines.push(format!(
                "key: withdraw {}, transfer {}, IP-restricted {}",
                yes_no(p.can_withdraw),
                yes_no(p.can_transfer),
                yes_no(p.ip_restricted),
            ));
            check
                .lines
                .extend(p.notes.iter().map(|note| format!("  - {note}")));
            if !p.can_transfer && mode == Mode::DryRun {
                check.warnings.push("the key cannot transfer into the futures wallet; fine for a dry run, refused live".into());
            } else if !p.can_transfer {
                check.refusal = Some(format!(
                    "the API key cannot transfer into the futures wallet{}; the bot could not rescue anything",
                    transfer_permission_hint(venue.kind())
                ));
            }
            if !p.ip_restricted {
                check.warnings.push(
                    "the key has no IP restriction; restrict it to this machine's address".into(),
                );
            }
        }
        Err(crate::venue::VenueError::Unsupported { message }) => check.refusal = Some(message),
        Err(error) => check.refusal = Some(format!("permissions unreadable: {error}")),
    }
    check
}

/// Where on each venue's key page the missing right is switched on.
fn transfer_permission_hint(kind: &str) -> &'static str {
    match kind {
        "binance" => " (on Binance: enable \"Permits Universal Transfer\")",
        "bybit" => " (on Bybit: a read-write key with Wallet → AccountTransfer, on testnet or mainnet — demo trading has no transfers)",
        "okx" => " (on OKX: give the key the Trade permission, which covers funding transfers)",
        _ => "",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// What the pre-flight found: each account's `KeyCheck` (config order) and every reason not
/// to arm, by account. `check` prints it all; `run` starts only when `refusals` is empty.
#[derive(Debug, Default)]
pub struct Preflight {
    pub checks: Vec<KeyCheck>,
    pub refusals: Vec<String>,
}

impl Preflight {
    /// Each account's id at its venue (where the venue tells it), for `arm`.
    pub fn account_ids(&self) -> Vec<Option<String>> {
        self.checks.iter().map(|c| c.account_id.clone()).collect()
    }
}

/// The pre-flight on every built account, the same for `check` and `run`: the mode's limits
/// (`mode_refusals`), each key (`check_key`), and one venue account configured twice.
pub async fn preflight(
    accounts: &[AccountConfig],
    venues: &[Arc<dyn Venue>],
    mode: Mode,
) -> Preflight {
    let mut refusals = mode_refusals(accounts, mode);
    let mut checks = Vec::with_capacity(accounts.len());
    for (account, venue) in accounts.iter().zip(venues) {
        let check = check_key(venue.as_ref(), mode).await;
        if let Some(refusal) = &check.refusal {
            refusals.push(format!("{}: {refusal}", account.name));
        }
        checks.push(check);
    }
    let account_ids: Vec<Option<String>> = checks.iter().map(|c| c.account_id.clone()).collect();
    refusals.extend(same_venue_account_twice(accounts, venues, &account_ids));
    Preflight { checks, refusals }
}

/// Two config accounts that are one venue account would each rescue it, each within its own
/// caps and each leaving `keep_at_least` in the one reserve as if the other did not exist:
/// together, twice the caps and half the reserve kept. One venue account is configured once.
fn same_venue_account_twice(
    accounts: &[AccountConfig],
    venues: &[Arc<dyn Venue>],
    account_ids: &[Option<String>],
) -> Vec<String> {
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    let mut refusals = Vec::new();
    for ((account, venue), id) in accounts.iter().zip(venues).zip(account_ids) {
        let Some(id) = id.as_deref() else { continue };
        if let Some(first) = seen.insert((venue.kind(), id), &account.name) {
            refusals.push(format!(
                "{}: the same {} account (id {id}) as `{first}`; configure one venue account once, or its caps and keep_at_least would count twice",
                account.name,
                venue.kind()
            ));
        }
    }
    refusals
}
