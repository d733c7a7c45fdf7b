//! The commands. Thin: load and validate, wire, run, print.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{self, AccountConfig, Config, ConfigError, VenueConfig};
use crate::core::{decide, Caps, RescueState, Situation, Strategy};
use crate::engine::{run_accounts, AccountExit, Event, StopReason};
use crate::journal::{Journal, JournalError};
use crate::operator::{http, AlertSink, Heartbeat, NotifierSink, Operator, PingSink};
use crate::plot;
use crate::replay::{self, Contender, Feed, Overrides, Run};
use crate::report::{self, SummaryRow, Timeline, TimelineOptions};
use crate::venue::sim::{Scenario, SimVenue};
use crate::wiring::{self, Mode, SimHandle};

/// How long runners get to finish the step in flight after SIGINT/SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors the binary maps to exit codes: 2 for anything the user must fix in a file.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Refused(String),
    /// The journal cannot be opened or read: nothing starts, because caps computed without
    /// it could spend twice.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// An account runner died: its account went unguarded, so the run is not a normal one
    /// and the process must end non-zero for its supervisor to restart it. `report` is what
    /// the run printed before that, still worth showing.
    #[error("account runner failed ({}); every account was stopped", failed.join("; "))]
    RunnerFailed { report: String, failed: Vec<String> },
}

/// `config/demo.toml`, found from the working folder or, failing that, from the source tree
/// this binary was built from — so `cargo run --release` works from anywhere in the repo.
pub fn default_config_path() -> PathBuf {
    let local = PathBuf::from("config/demo.toml");
    if local.exists() {
        return local;
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    if built_from.exists() {
        built_from
    } else {
        local
    }
}

pub fn load_config(path: &Path) -> Result<Config, CliError> {
    Ok(Config::load(path)?)
}

/// `run`: every account until shutdown (or, for simulated accounts, until their day ends).
pub async fn run(
    config: Config,
    force_dry_run: bool,
    max_ticks: Option<u64>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<String, CliError> {
    let mode = Mode::chosen(config.dry_run, force_dry_run);
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let venues = wiring::build_venues(&config.accounts, mode);
    // Nothing runs before every key passes the same pre-flight as `check` (issue 10 item 2),
    // which also learns each account's id at its venue for the journal (item 5).
    let preflight = wiring::preflight(&config.accounts, &venues.venues, mode).await;
    for (account, check) in config.accounts.iter().zip(&preflight.checks) {
        for warning in &check.warnings {
            tracing::warn!(account = %account.name, "{warning}");
        }
    }
    if !preflight.refusals.is_empty() {
        return Err(CliError::Refused(format!(
            "refusing to start:\n{}",
            preflight.refusals.join("\n")
        )));
    }
    let account_ids = preflight.account_ids();
    let mut wired = wiring::arm(
        &config.accounts,
        venues,
        &config.journal,
        mode,
        Some(sender),
        &account_ids,
    )?;
    if let Some(max_per_day) = config.portfolio_max_per_day {
        wiring::share_portfolio(&mut wired, max_per_day)?;
    }
    if let Some(ticks) = max_ticks {
        for runner in &mut wired.runners {
            runner.stop_after(ticks);
        }
    }
    // Only a simulated day is reported, and as rows built while its events arrive; a live
    // account's events are dropped as they come, so weeks of running keep nothing and a long
    // rehearsal keeps only what it prints (issue 10 item 4).
    let mut timelines: HashMap<String, Timeline> = wired
        .sims
        .iter()
        .map(|sim| {
            (
                sim.account.clone(),
                Timeline::new(TimelineOptions::default()),
            )
        })
        .collect();
    let operator = operator_for(&config, mode, &wired);
    let (stop_operator, operator_stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = operator_stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    if let Some(http) = config.operator.http {
        let (address, _) = http::serve(http, operator.clone(), stopped())
            .await
            .map_err(|e| CliError::Refused(format!("refusing to start: {e}")))?;
        // For a person at a terminal, and for whoever asked for any free port (port 0) and
        // must learn which: under a service manager the log line above says it in the log's
        // own format.
        if http.listen.port() == 0 || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("status page on http://{address}/ (metrics at /metrics)");
        }
    }
    tokio::spawn(operator.clone().run_timer(stopped()));
    let observer = operator.clone();
    let collector = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            observer.observe(&event);
            if let Some(timeline) = timelines.get_mut(&*event.account) {
                timeline.push(&event);
            }
        }
        timelines
    });
    let exits = run_accounts(wired.runners, shutdown, SHUTDOWN_GRACE).await;
    let timelines = collector.await.unwrap_or_default();
    operator.stopped(&exits, ALERT_FLUSH).await;
    let _ = stop_operator.send(true);
    let mut out = String::new();
    if !wired.sims.is_empty() {
        out.push_str(&rehearsal_report(
            &config.accounts,
            &wired.sims,
            timelines,
            &exits,
        ));
    }
    for exit in &exits {
        tracing::info!(account = %exit.name, reason = ?exit.reason, spent = %exit.spent, rescues = exit.rescues, "stopped");
    }
    let failed = failed_runners(&exits);
    if failed.is_empty() {
        Ok(out)
    } else {
        Err(CliError::RunnerFailed {
            report: out,
            failed,
        })
    }
}

/// How long the notifiers get to deliver the last alerts (the shutdown one) at exit.
pub const ALERT_FLUSH: Duration = Duration::from_secs(5);

/// The operator's side for a wired daemon: its board over every account, its alert rules
/// and sinks.
fn operator_for(config: &Config, mode: Mode, wired: &wiring::Wired) -> Operator {
    let accounts = wiring::watched_accounts(&config.accounts, mode, wired);
    let settings = &config.operator;
    let alerts: Option<Arc<dyn AlertSink>> = (!settings.notifiers.is_empty())
        .then(|| Arc::new(NotifierSink::start(settings.notifiers.clone())) as Arc<dyn AlertSink>);
    let heartbeat: Option<Arc<dyn PingSink>> = settings
        .heartbeat
        .clone()
        .map(|h| Arc::new(Heartbeat::start(h)) as Arc<dyn PingSink>);
    Operator::new(accounts, settings.alerts, alerts, heartbeat)
}

/// `name: why` for every runner that died rather than stopped.
fn failed_runners(exits: &[AccountExit]) -> Vec<String> {
    exits
        .iter()
        .filter_map(|exit| match &exit.reason {
            StopReason::Failed(why) => Some(format!("{}: {why}", exit.name)),
            _ => None,
        })
        .collect()
}

/// Timelines and the closing summary for simulated accounts, grouped by scenario, with the
/// same day without the bot beside them.
fn rehearsal_report(
    accounts: &[AccountConfig],
    sims: &[SimHandle],
    mut timelines: HashMap<String, Timeline>,
    exits: &[AccountExit],
) -> String {
    let mut scenarios: Vec<&Path> = Vec::new();
    for account in accounts {
        let VenueConfig::Sim { scenario_path, .. } = &account.venue else {
            continue;
        };
        if !scenarios.contains(&scenario_path.as_path()) {
            scenarios.push(scenario_path);
        }
    }
    let mut out = String::new();
    for scenario_path in scenarios {
        let mut rows = Vec::new();
        let mut scenario: Option<&Scenario> = None;
        for handle in sims {
            let sim_scenario = handle.venue.scenario();
            if sim_scenario.path != scenario_path {
                continue;
            }
            if scenario.is_none() {
                out.push_str(&report::scenario_heading(sim_scenario));
                scenario = Some(sim_scenario);
            }
            let account = accounts.iter().find(|a| a.name == handle.account);
            let stopped_early = exits.iter().any(|e| {
                e.name == handle.account && !matches!(e.reason, StopReason::VenueClosed(_))
            });
            let outcome = if stopped_early {
                handle.venue.outcome_so_far()
            } else {
                handle.venue.finish()
            };
            out.push('\n');
            if let Some(account) = account {
                out.push_str(&account_heading(account));
            }
            let timeline = timelines
                .remove(&handle.account)
                .unwrap_or_else(|| Timeline::new(TimelineOptions::default()));
            out.push_str(&timeline.render(report::liquidation_row(&outcome)));
            rows.push(SummaryRow {
                label: format!("{} ({})", handle.account, handle.strategy),
                outcome,
            });
        }
        if let Some(scenario) = scenario {
            rows.push(SummaryRow {
                label: "same day, no bot".into(),
                outcome: replay_without_bot(scenario),
            });
            out.push_str("\nsummary\n");
            out.push_str(&report::summary(&rows));
            out.push('\n');
        }
    }
    out
}

fn account_heading(account: &AccountConfig) -> String {
    format!(
        "account {} — {}\n  caps: {}; polls every {}\n",
        account.name,
        strategy_line(&account.strategy),
        caps_line(&account.caps),
        config::literal::format_duration(account.poll_interval),
    )
}

pub fn strategy_line(strategy: &Strategy) -> String {
    let l = &strategy.levels;
    let mut line = format!(
        "strategy {} on {}: alert below {}, top up below {}, refill to {}, floor {}",
        strategy.name,
        strategy.metric.name(),
        l.alert_below.percent(),
        l.top_up_below.percent(),
        l.target.percent(),
        l.floor.percent()
    );
    if let Some(v) = &strategy.volatility {
        line.push_str(&format!(
            "; widened by {} × realized volatility × √(poll + settlement), at most {}",
            v.multiplier,
            v.max_widening.percent()
        ));
    }
    line
}

/// The scenario as the venue alone plays it.
pub fn replay_without_bot(scenario: &Scenario) -> crate::venue::sim::SimOutcome {
    let clock = crate::clock::Clock::virtual_at(scenario.start());
    SimVenue::new(scenario.clone(), clock).finish()
}

/// What `simulate` was asked for.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    pub scenarios: Vec<PathBuf>,
    pub strategies: Vec<PathBuf>,
    pub no_bot: bool,
    /// Add the brink rule and the seed ladder to every scenario's rows.
    pub baselines: bool,
    pub overrides: Overrides,
    /// Each strategy runs once per feed (polled, streamed).
    pub feeds: Vec<Feed>,
    pub format: OutputFormat,
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// `simulate`: one scenario with one strategy prints its timeline; anything more prints the
/// comparison table (every run beside no bot and the hindsight oracle).
pub async fn simulate(request: &SimulateRequest) -> Result<String, CliError> {
    let scenarios = request
        .scenarios
        .iter()
        .map(|path| Ok(request.overrides.apply(&Scenario::load(path)?)))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let strategies = request
        .strategies
        .iter()
        .map(|path| config::strategy::load(path))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if strategies.is_empty() && !request.no_bot {
        return Err(CliError::Usage(
            "give at least one --strategy, or --no-bot to replay the day alone".into(),
        ));
    }
    let detailed = scenarios.len() == 1
        && strategies.len() <= 1
        && !request.baselines
        && request.format == OutputFormat::Table;
    let mut contenders = vec![Contender::NoBot];
    if request.baselines {
        contenders.push(Contender::Bot(replay::brink_rule()));
        contenders.push(Contender::Bot(shipped_strategy("seed-ladder")?));
    }
    let feeds = if request.feeds.is_empty() {
        vec![Feed::Poll]
    } else {
        request.feeds.clone()
    };
    for strategy in &strategies {
        contenders.extend(Contender::on_feeds(strategy, &feeds));
    }
    let quiet = detailed || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let runs = replay::replay_all(&scenarios, &contenders, |done, total| {
        if !quiet {
            progress_bar(done, total);
        }
    })
    .await;
    if let Some(path) = &request.plot {
        write_plot(path, &runs, &strategies)?;
    }
    if detailed {
        return Ok(simulate_one(&scenarios[0], strategies.first(), &runs));
    }
    Ok(match request.format {
        OutputFormat::Table => report::comparison(&runs),
        OutputFormat::Csv => report::comparison_csv(&runs),
        OutputFormat::Json => report::comparison_json(&runs),
    })
}

/// A shipped strategy by name, from the source tree's `strategies/` (a baseline).
fn shipped_strategy(name: &str) -> Result<Strategy, CliError> {
    let local = PathBuf::from(format!("strategies/{name}.toml"));
    let path = if local.exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("strategies/{name}.toml"))
    };
    Ok(config::strategy::load(&path)?)
}

fn progress_bar(done: usize, total: usize) {
    progress_bar_of(done, total, "runs");
}

/// `[####……] done/total <what>` on stderr, redrawn in place.
fn progress_bar_of(done: usize, total: usize, what: &str) {
    let width = 30;
    let filled = done * width / total.max(1);
    eprint!(
        "\r  [{}{}] {done}/{total} {what}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if done == total {
        eprintln!();
    }
}

fn write_plot(path: &Path, runs: &[Run], strategies: &[Strategy]) -> Result<(), CliError> {
    let Some(strategy) = strategies.first() else {
        return Err(CliError::Usage("--plot needs a --strategy to draw".into()));
    };
    let run = runs
        .iter()
        .find(|r| r.contender == strategy.name)
        .expect("every strategy was replayed");
    let no_bot = runs
        .iter()
        .find(|r| r.scenario == run.scenario && r.contender == "no bot");
    let svg = plot::svg(run, no_bot, strategy);
    plot::write(path, &svg).map_err(|e| CliError::Usage(format!("--plot {}: {e}", path.display())))
}

/// The detailed view of one scenario and (at most) one strategy: timeline and summary.
fn simulate_one(scenario: &Scenario, strategy: Option<&Strategy>, runs: &[Run]) -> String {
    let no_bot_run = runs.iter().find(|r| r.contender == "no bot");
    let bot_runs: Vec<&Run> = runs.iter().filter(|r| r.contender != "no bot").collect();
    // The timeline is the first feed's (polled, unless only the stream was asked for).
    let bot_run = bot_runs.first().copied();
    let shown = bot_run
        .or(no_bot_run)
        .expect("the no-bot run is always made");
    let mut out = report::scenario_heading(scenario);
    out.push('\n');
    match strategy {
        Some(strategy) => out.push_str(&format!(
            "{}\n  caps: {}; polls every {}\n",
            strategy_line(strategy),
            caps_line(&scenario.caps_or_reserve()),
            config::literal::format_duration(scenario.poll_interval)
        )),
        None => out.push_str("without the bot (nothing moves)\n"),
    }
    let events: Vec<&Event> = shown.events.iter().collect();
    out.push_str(&report::timeline(
        &events,
        report::liquidation_row(&shown.outcome),
        TimelineOptions {
            actions: bot_run.is_some(),
            ..TimelineOptions::default()
        },
    ));
    let mut rows = Vec::new();
    for run in &bot_runs {
        rows.push(SummaryRow {
            label: format!("bot ({})", run.contender),
            outcome: run.outcome.clone(),
        });
    }
    if let Some(run) = no_bot_run {
        rows.push(SummaryRow {
            label: "no bot".into(),
            outcome: run.outcome.clone(),
        });
    }
    out.push_str("\nsummary\n");
    out.push_str(&report::summary(&rows));
    out.push_str(&format!(
        "  hindsight oracle: {} USDT moved in at the start would have avoided liquidation ({} USDT in the reserve)\n",
        report::money(shown.oracle),
        report::money(shown.reserve)
    ));
    out
}

fn caps_line(caps: &Caps) -> String {
    format!(
        "{} per rescue, {} per 24 h, keep {} in reserve, cooldown {}",
        report::money(caps.max_per_rescue),
        report::money(caps.max_per_day),
        report::money(caps.keep_at_least),
        config::literal::format_duration(caps.cooldown),
    )
}

/// `check`: validate, then read each account once (never moving anything) and print its
/// buffer. A key that can withdraw is refused.
pub async fn check(config: Config) -> Result<String, CliError> {
    check_with(config, CheckOptions::default()).await
}

/// What `check` does beyond reading each account once.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The one-line reserve plan per live account (a few replays per crash day: about a
    /// second per account in a release build).
    pub plan: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { plan: true }
    }
}

impl CheckOptions {
    /// Keys, modes and figures only (`check --no-plan`).
    pub const WITHOUT_PLAN: CheckOptions = CheckOptions { plan: false };
}

/// `check` as asked.
pub async fn check_with(config: Config, options: CheckOptions) -> Result<String, CliError> {
    let mut out = format!(
        "{}: valid; {} account(s); dry_run = {}\n",
        config.path.display(),
        config.accounts.len(),
        config.dry_run
    );
    // `check` never moves money, so it reads through the dry-run wrapper; it opens no
    // journal, so it runs beside a daemon (which holds the journal's lock) and, run as
    // another user, leaves no file behind that the daemon could not open.
    let wired = wiring::build_venues(&config.accounts, Mode::DryRun);
    // The same pre-flight as `run`, in the mode the config would run in.
    let preflight = wiring::preflight(
        &config.accounts,
        &wired.venues,
        Mode::chosen(config.dry_run, false),
    )
    .await;
    let mut refusals = preflight.refusals;
    for ((account, venue), key) in config
        .accounts
        .iter()
        .zip(&wired.venues)
        .zip(&preflight.checks)
    {
        out.push_str(&format!(
            "\naccount {} (venue {})\n  {}\n",
            account.name,
            venue.kind(),
            strategy_line(&account.strategy)
        ));
        for line in &key.lines {
            out.push_str(&format!("  {line}\n"));
        }
        for warning in &key.warnings {
            out.push_str(&format!("  warning: {warning}\n"));
        }
        match venue.snapshot().await {
            Ok(snapshot) => {
                let situation = Situation {
                    account: &snapshot.account,
                    reserve_available: snapshot.reserve_available,
                    rescues: RescueState::default(),
                    now: snapshot.as_of,
                    volatility: None,
                    rescue_horizon: account.poll_interval + venue.transfer_rules().settlement,
                    transfer_step: venue.transfer_rules().step,
                    portfolio_left: None,
                };
                let decision = decide(&situation, &account.strategy, &account.caps);
                for symbol in &snapshot.unguarded {
                    out.push_str(&format!(
                        "  warning: {symbol} is on isolated margin: NOT guarded (a top-up of the cross wallet cannot help it); switch it to cross margin to have it guarded\n"
                    ));
                }
                let m = decision.metrics;
                out.push_str(&format!(
                    "  equity {} USDT, maintenance {} USDT, reserve {} USDT\n  buffer {}, cushion {}, liquidation distance {}; the bot would: {}\n",
                    report::money(snapshot.account.equity),
                    report::money(snapshot.account.maintenance),
                    report::money(snapshot.reserve_available),
                    m.buffer,
                    m.cushion,
                    m.distance,
                    report::action_label(&decision.action)
                ));
                // A simulated account's book is a scenario: `plan --scenario` covers it.
                if options.plan && account.venue.kind() != "sim" {
                    let line = check_plan_line(&config.path, account, &snapshot).await;
                    out.push_str(&format!("  {line}\n"));
                }
            }
            Err(error) => refusals.push(format!("{}: snapshot failed: {error}", account.name)),
        }
    }
    if refusals.is_empty() {
        Ok(out)
    } else {
        Err(CliError::Refused(format!("{out}\n{}", refusals.join("\n"))))
    }
}

/// `history`: the rescues in the journal, oldest first.
pub fn history(config: &config::JournalSettings, dry_run: bool) -> Result<String, CliError> {
    let path = config.to_read(dry_run);
    if !path.exists() {
        return Ok(format!(
            "{}: no journal yet — no rescue has been recorded\n",
            path.display()
        ));
    }
    // Read beside a running daemon: its lock is not taken, nor needed to read.
    let journal = Journal::open_for_reading(&path)?;
    let records = journal.all()?;
    Ok(format!(
        "{} ({})\n{}",
        path.display(),
        if path == config.journal {
            "live"
        } else {
            "dry-run"
        },
        report::history(&records)
    ))
}

/// What `sweep` was asked for.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub scenarios: Vec<PathBuf>,
    pub strategy: PathBuf,
    pub triggers: Vec<crate::money::Ratio>,
    pub refills: Vec<crate::money::Ratio>,
    /// Reserves as multiples of each scenario's hindsight oracle; empty: the scenarios' own.
    pub reserve_multiples: Vec<rust_decimal::Decimal>,
    pub overrides: Overrides,
    pub format: OutputFormat,
}

/// `sweep`: a grid of strategy variants × reserves × scenarios, replayed in parallel, reduced to
/// survival against reserve spent with its frontier marked.
pub async fn sweep(request: &SweepRequest) -> Result<String, CliError> {
    let scenarios = request
        .scenarios
        .iter()
        .map(|path| Ok(request.overrides.apply(&Scenario::load(path)?)))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let base = config::strategy::load(&request.strategy)?;
    let triggers = if request.triggers.is_empty() {
        vec![base.levels.top_up_below]
    } else {
        request.triggers.clone()
    };
    let refills = if request.refills.is_empty() {
        vec![base.levels.target - base.levels.top_up_below]
    } else {
        request.refills.clone()
    };
    let mut contenders = Vec::new();
    for trigger in &triggers {
        for refill in &refills {
            let strategy = replay::variant(&base, *trigger, *refill).map_err(|e| {
                CliError::Usage(format!(
                    "trigger {} with refill {}: {e}",
                    trigger.percent(),
                    refill.percent()
                ))
            })?;
            contenders.push(Contender::Bot(strategy));
        }
    }
    let multiples: Vec<Option<rust_decimal::Decimal>> = if request.reserve_multiples.is_empty() {
        vec![None]
    } else {
        request
            .reserve_multiples
            .iter()
            .copied()
            .map(Some)
            .collect()
    };
    let total = multiples.len() * scenarios.len() * contenders.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut runs = Vec::with_capacity(total);
    for multiple in &multiples {
        let funded: Vec<Scenario> = scenarios
            .iter()
            .map(|s| with_reserve_multiple(s, *multiple))
            .collect();
        let batch = replay::replay_all(&funded, &contenders, |_, _| {
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if show {
                progress_bar(finished, total);
            }
        })
        .await;
        runs.extend(batch.into_iter().map(|run| (*multiple, run)));
    }
    let points = replay::frontier(&runs);
    Ok(match request.format {
        OutputFormat::Table => report::sweep_table(&points, scenarios.len()),
        OutputFormat::Csv => report::sweep_csv(&points),
        OutputFormat::Json => report::sweep_json(&points),
    })
}

/// The scenario with its reserve set to `multiple` × its hindsight oracle (at least one
/// transfer step, so a day that needs nothing still has a reserve to spend).
fn with_reserve_multiple(scenario: &Scenario, multiple: Option<rust_decimal::Decimal>) -> Scenario {
    let mut s = scenario.clone();
    if let Some(m) = multiple {
        let oracle = crate::venue::sim::path::oracle_reserve(scenario);
        s.reserve = crate::money::Usdt((oracle.0 * m).round_dp(2)).max(s.transfer_step);
        s.caps = None;
    }
    s
}

/// How long `status` waits for the daemon's endpoint before reading the journal instead.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// `status`: the running daemon's per-account summary from its endpoint, or — when the
/// config has none or it does not answer — what the journal says.
pub async fn status(
    settings: &config::StatusSettings,
    endpoint: Option<&str>,
) -> Result<String, CliError> {
    let mut note = String::new();
    let url = match endpoint {
        Some(base) => Some(format!("{}/status.json", base.trim_end_matches('/'))),
        None => settings.http.map(|http| status_url(http.listen)),
    };
    if let Some(url) = url {
        match fetch_status(&url).await {
            Ok(report) => return Ok(format!("from {url}\n{}", report.render_text())),
            Err(why) => note = format!("no answer from {url} ({why}); "),
        }
    }
    let path = settings.journal.to_read(false);
    let mut out = format!("{note}from the journal {}\n", path.display());
    if !path.exists() {
        out.push_str("  no journal yet — no rescue has been recorded\n");
        return Ok(out);
    }
    let journal = Journal::open_for_reading(&path)?;
    let now = crate::clock::Clock::Wall.now();
    for (name, venue) in &settings.accounts {
        let rows = journal.recent(name, crate::operator::status::RESCUES_SHOWN)?;
        out.push_str(&journal_summary(name, venue, &rows, now));
    }
    Ok(out)
}

/// The endpoint's address as a client reaches it: a wildcard listen is asked on loopback.
fn status_url(listen: std::net::SocketAddr) -> String {
    let host = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}/status.json", listen.port())
}

async fn fetch_status(url: &str) -> Result<crate::operator::status::StatusReport, String> {
    let client = reqwest::Client::builder()
        .timeout(STATUS_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    response
        .json()
        .await
        .map_err(|e| e.without_url().to_string())
}

/// One account's rescues as the journal has them: what moved over 24 h, the latest rows.
fn journal_summary(
    name: &str,
    venue: &str,
    rows: &[crate::journal::RescueRecord],
    now: crate::time::Timestamp,
) -> String {
    let day_ago = crate::time::Timestamp(now.0.saturating_sub(86_400_000));
    let spent = rows
        .iter()
        .filter(|r| r.created_at > day_ago && r.state.may_have_moved())
        .try_fold(crate::money::Usdt::ZERO, |sum, r| {
            sum.0.checked_add(r.amount.0).map(crate::money::Usdt)
        });
    let spent = spent.map_or_else(|| "beyond range".to_string(), report::money);
    let mut out = format!(
        "\n{name} ({venue}) — the daemon is not answering; from its journal\n  moved over the last 24 h: {spent} USDT (of the {} latest rows)\n",
        rows.len()
    );
    if rows.is_empty() {
        out.push_str("  no rescues recorded\n");
    } else {
        out.push_str(&report::history(rows));
    }
    out
}

/// Where `plan`'s book comes from.
#[derive(Debug, Clone)]
pub enum BookSource {
    /// A scenario file's positions, wallet and reserve.
    Scenario(PathBuf),
    /// A live account, read once through `check`'s path (moving nothing).
    Account { config: PathBuf, account: String },
}

/// What `plan` was asked for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub book: BookSource,
    /// Default: the account's strategy, or the shipped `distance`.
    pub strategy: Option<PathBuf>,
    /// Default: the scenario's, or 1 minute for an account.
    pub settlement: Option<Duration>,
    /// Default: the scenario's, or the account's.
    pub poll_interval: Option<Duration>,
    /// Crash-day scenario files; empty: every shipped `scenarios/*.toml`.
    pub days: Vec<PathBuf>,
    pub format: OutputFormat,
}

/// The settlement an account's plan assumes unless told: the scenarios' own minute.
pub const PLAN_SETTLEMENT: Duration = Duration::from_secs(60);

/// `scenarios/`, found like [`default_config_path`]: the working folder's, else the source
/// tree's this binary was built from.
pub fn shipped_scenarios_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// `plan`: how much reserve the book needs, from every shipped crash day.
pub async fn plan(request: &PlanRequest) -> Result<String, CliError> {
    let (book, defaults) = match &request.book {
        BookSource::Scenario(path) => {
            let scenario = Scenario::load(path)?;
            let defaults = (None, scenario.poll_interval, scenario.settlement);
            (crate::plan::Book::from_scenario(&scenario), defaults)
        }
        BookSource::Account { config, account } => {
            let config = load_config(config)?;
            let account = find_account(&config, account)?;
            let book = read_book(account).await?;
            let defaults = (
                Some(account.strategy.clone()),
                account.poll_interval,
                PLAN_SETTLEMENT,
            );
            (book, defaults)
        }
    };
    let (account_strategy, poll_interval, settlement) = defaults;
    let strategy = match (&request.strategy, account_strategy) {
        (Some(path), _) => config::strategy::load(path)?,
        (None, Some(strategy)) => strategy,
        (None, None) => shipped_strategy("distance")?,
    };
    let settings = crate::plan::PlanSettings {
        strategy,
        poll_interval: request.poll_interval.unwrap_or(poll_interval),
        settlement: request.settlement.unwrap_or(settlement),
        precision: crate::plan::Precision::FINE,
    };
    let days = load_plan_days(&request.days)?;
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let plan = plan_off_the_runtime(book, days, settings, move |done, total| {
        if show {
            progress_bar_of(done, total, "crash days");
        }
    })
    .await?;
    Ok(match request.format {
        OutputFormat::Table => crate::plan::render_table(&plan),
        OutputFormat::Csv => crate::plan::render_csv(&plan),
        OutputFormat::Json => crate::plan::render_json(&plan),
    })
}

/// The planner blocks while its own worker threads replay, so it runs beside the runtime.
async fn plan_off_the_runtime(
    book: crate::plan::Book,
    days: Vec<Scenario>,
    settings: crate::plan::PlanSettings,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<crate::plan::Plan, CliError> {
    tokio::task::spawn_blocking(move || crate::plan::plan(&book, &days, &settings, &progress))
        .await
        .map_err(|e| CliError::Usage(format!("the planner stopped: {e}")))?
        .map_err(plan_error)
}

fn plan_error(error: crate::plan::PlanError) -> CliError {
    match error {
        crate::plan::PlanError::Day(e) => CliError::Config(e),
        other => CliError::Usage(other.to_string()),
    }
}

fn load_plan_days(requested: &[PathBuf]) -> Result<Vec<Scenario>, CliError> {
    let paths = if requested.is_empty() {
        crate::plan::shipped_days(&shipped_scenarios_dir()).map_err(plan_error)?
    } else {
        requested.to_vec()
    };
    crate::plan::load_days(&paths).map_err(plan_error)
}

/// The account called `name`, or a usage error naming the ones there are.
fn find_account<'c>(config: &'c Config, name: &str) -> Result<&'c AccountConfig, CliError> {
    config
        .accounts
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
            CliError::Usage(format!(
                "{}: no account `{name}`; allowed: {}",
                config.path.display(),
                names.join(", ")
            ))
        })
}

/// One snapshot of the account through the dry-run wrapper, as `check` reads it.
async fn read_book(account: &AccountConfig) -> Result<crate::plan::Book, CliError> {
    let wired = wiring::build_venues(std::slice::from_ref(account), Mode::DryRun);
    let venue = wired
        .venues
        .first()
        .ok_or_else(|| CliError::Usage(format!("{}: no venue was built", account.name)))?;
    let snapshot = venue
        .snapshot()
        .await
        .map_err(|e| CliError::Refused(format!("{}: snapshot failed: {e}", account.name)))?;
    Ok(book_of(account, &snapshot))
}

fn book_of(account: &AccountConfig, snapshot: &crate::venue::VenueSnapshot) -> crate::plan::Book {
    crate::plan::Book::from_account(
        &account.name,
        &snapshot.account,
        snapshot.reserve_available,
        account.caps.clone(),
    )
}

/// `check`'s one-line plan for a live account, on the coarse search so `check` stays fast.
async fn check_plan_line(
    config_path: &Path,
    account: &AccountConfig,
    snapshot: &crate::venue::VenueSnapshot,
) -> String {
    let days = match load_plan_days(&[]) {
        Ok(days) => days,
        Err(e) => return format!("reserve plan: unavailable ({e})"),
    };
    let settings = crate::plan::PlanSettings {
        strategy: account.strategy.clone(),
        poll_interval: account.poll_interval,
        settlement: PLAN_SETTLEMENT,
        precision: crate::plan::Precision::COARSE,
    };
    let command = format!(
        "marginguard plan --config {} --account {}",
        config_path.display(),
        account.name
    );
    match plan_off_the_runtime(book_of(account, snapshot), days, settings, |_, _| {}).await {
        Ok(plan) => crate::plan::one_line(&plan, &command),
        Err(e) => format!("reserve plan: unavailable ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Usdt;

    fn exit(name: &str, reason: StopReason) -> AccountExit {
        AccountExit {
            name: name.into(),
            reason,
            spent: Usdt::ZERO,
            rescues: 0,
        }
    }

    /// Issue 10 item 3: a runner that died was logged as "stopped" and `run` returned Ok, so
    /// the process exited 0 while an account had gone unguarded.
    #[test]
    fn a_failed_runner_is_named_and_normal_stops_are_not() {
        let exits = [
            exit("a", StopReason::Shutdown),
            exit("b", StopReason::Failed("Division overflowed".into())),
            exit("c", StopReason::VenueClosed("day over".into())),
        ];
        assert_eq!(failed_runners(&exits), vec!["b: Division overflowed"]);
        assert!(failed_runners(&exits[..1]).is_empty());
        assert!(failed_runners(&[exit("d", StopReason::TickLimit)]).is_empty());
    }
}
