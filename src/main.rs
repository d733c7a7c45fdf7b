//! The binary edge: arguments, logging, signals, exit codes. `anyhow` lives only here.
//!
//! Exit codes: 0 done; 1 runtime failure; 2 bad config or a refused pre-flight (nothing ran);
//! 130 a second SIGINT cut the graceful shutdown short.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use marginguard::cli::{self, CliError};

#[derive(Parser)]
#[command(
    name = "marginguard",
    version,
    about = "Keeps cross-margin perpetual-futures accounts out of liquidation by topping them up from a reserve wallet."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    /// More logs (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Watch every configured account and top it up when the strategy says so.
    /// With no config, runs the embedded demo (config/demo.toml) on the simulator.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Force dry-run whatever the config says.
        #[arg(long)]
        dry_run: bool,
        /// Stop each account after this many ticks (scripted checks; default: run until
        /// stopped).
        #[arg(long)]
        ticks: Option<u64>,
    },
    /// Validate a config, read each account once (moving nothing) and print its buffer.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// Skip the one-line reserve plan per live account (it replays the shipped crash
        /// days: about a second per account).
        #[arg(long)]
        no_plan: bool,
    },
    /// Print the rescues recorded in the journal: when, account, amount, buffer, state.
    History {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Show the dry-run journal even if the config is live.
        #[arg(long)]
        dry_run: bool,
    },
    /// The running daemon's per-account summary (from its [http] endpoint), or the
    /// journal's when it does not answer.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The daemon's endpoint (e.g. http://127.0.0.1:9187 through an SSH tunnel), instead
        /// of the config's [http] listen address.
        #[arg(long)]
        url: Option<String>,
    },
    /// Replay real days: one scenario with one strategy prints its timeline; several print a
    /// table beside no bot and the hindsight oracle.
    Simulate {
        /// Scenario files (several allowed: `--scenario scenarios/*.toml`).
        #[arg(long, num_args = 1.., required = true)]
        scenario: Vec<PathBuf>,
        /// Strategy files (several allowed).
        #[arg(long, num_args = 1..)]
        strategy: Vec<PathBuf>,
        /// Replay the day without the bot only.
        #[arg(long)]
        no_bot: bool,
        /// Add the baselines: top up only at the brink (buffer < 2 %) and the seed ladder.
        #[arg(long)]
        baselines: bool,
        /// Override every scenario's poll interval (e.g. 30s).
        #[arg(long, value_parser = parse_poll_interval_arg)]
        poll_interval: Option<std::time::Duration>,
        /// Override every scenario's transfer settlement latency (e.g. 2m).
        #[arg(long, value_parser = parse_settlement_arg)]
        settlement: Option<std::time::Duration>,
        /// Override every scenario's reserve (USDT).
        #[arg(long, value_parser = parse_money_arg)]
        reserve: Option<marginguard::money::Usdt>,
        /// How the bot sees the account: polled at the scenario's interval, streamed (every
        /// 15-second sub-step, horizon = 1 s + settlement), or both side by side.
        #[arg(long, value_enum, default_value = "both")]
        feed: FeedArg,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write a chart of the first strategy on the first scenario (.svg, or .png).
        #[arg(long, value_parser = parse_plot_arg)]
        plot: Option<PathBuf>,
    },
    /// How much reserve a book needs: replay it through every shipped crash day with a
    /// strategy and report, per day, the hindsight oracle's reserve and the strategy's need.
    Plan {
        /// The book: a scenario file's positions, wallet and reserve.
        #[arg(long, conflicts_with_all = ["config", "account"], required_unless_present = "config")]
        scenario: Option<PathBuf>,
        /// The book: a live account of this config, read once (moving nothing).
        #[arg(long, requires = "account")]
        config: Option<PathBuf>,
        /// Which account of --config.
        #[arg(long, requires = "config")]
        account: Option<String>,
        /// Default: the account's strategy, or strategies/distance.toml.
        #[arg(long)]
        strategy: Option<PathBuf>,
        /// Transfer settlement latency (default: the scenario's, or 1m).
        #[arg(long, value_parser = parse_settlement_arg)]
        settlement: Option<std::time::Duration>,
        /// Poll interval (default: the scenario's, or the account's).
        #[arg(long, value_parser = parse_poll_interval_arg)]
        poll_interval: Option<std::time::Duration>,
        /// Crash-day scenarios to replay through (default: every shipped scenarios/*.toml).
        #[arg(long, num_args = 1..)]
        days: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Replay a grid of strategy variants × reserves × scenarios on all cores and report
    /// survival against reserve spent, with the frontier marked.
    Sweep {
        #[arg(long, num_args = 1.., required = true)]
        scenario: Vec<PathBuf>,
        /// The strategy whose levels are varied.
        #[arg(long)]
        strategy: PathBuf,
        /// Trigger levels to try (e.g. 0.05,0.06,0.08 or 5%,8%).
        #[arg(long, value_delimiter = ',', value_parser = parse_ratio_arg)]
        trigger: Vec<marginguard::money::Ratio>,
        /// How far above the trigger to refill (target − trigger).
        #[arg(long, value_delimiter = ',', value_parser = parse_ratio_arg)]
        refill: Vec<marginguard::money::Ratio>,
        /// Reserves as multiples of each day's hindsight oracle (e.g. 1,1.25,1.5).
        #[arg(long, value_delimiter = ',', value_parser = parse_decimal_arg)]
        reserve_multiple: Vec<rust_decimal::Decimal>,
        #[arg(long, value_parser = parse_poll_interval_arg)]
        poll_interval: Option<std::time::Duration>,
        #[arg(long, value_parser = parse_settlement_arg)]
        settlement: Option<std::time::Duration>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn parse_ratio_arg(raw: &str) -> Result<marginguard::money::Ratio, String> {
    marginguard::config::literal::parse_ratio(raw)
}

fn parse_decimal_arg(raw: &str) -> Result<rust_decimal::Decimal, String> {
    marginguard::money::parse_decimal(raw).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

fn output_format(format: Format) -> cli::OutputFormat {
    match format {
        Format::Table => cli::OutputFormat::Table,
        Format::Csv => cli::OutputFormat::Csv,
        Format::Json => cli::OutputFormat::Json,
    }
}

/// Refused before the replay runs, not after it.
fn parse_plot_arg(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    marginguard::plot::is_png(&path).map(|_| path)
}

/// The command line's overrides obey the bounds a scenario file does.
fn parse_poll_interval_arg(raw: &str) -> Result<std::time::Duration, String> {
    marginguard::config::literal::parse_duration(raw)
        .and_then(marginguard::venue::sim::scenario::check_poll_interval)
}

fn parse_settlement_arg(raw: &str) -> Result<std::time::Duration, String> {
    marginguard::config::literal::parse_duration(raw)
        .and_then(marginguard::venue::sim::scenario::check_settlement)
}

fn parse_money_arg(raw: &str) -> Result<marginguard::money::Usdt, String> {
    raw.parse::<marginguard::money::Usdt>()
        .map_err(|e| e.to_string())
        .and_then(|m| {
            if m.is_sign_negative() {
                Err("must not be negative".into())
            } else {
                Ok(m)
            }
        })
}

#[derive(Clone, Copy, ValueEnum)]
enum FeedArg {
    Poll,
    Stream,
    Both,
}

impl FeedArg {
    fn feeds(self) -> Vec<marginguard::replay::Feed> {
        use marginguard::replay::Feed;
        match self {
            FeedArg::Poll => vec![Feed::Poll],
            FeedArg::Stream => vec![Feed::Stream],
            FeedArg::Both => vec![Feed::Poll, Feed::Stream],
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let command = args.command.unwrap_or(Command::Run {
        config: None,
        dry_run: false,
        ticks: None,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(command, args.log_format, args.verbose)) {
        Ok(output) => print_output(&output),
        Err(error) => report_error(error),
    }
}

async fn execute(command: Command, format: LogFormat, verbose: u8) -> anyhow::Result<String> {
    match command {
        Command::Run {
            config,
            dry_run,
            ticks,
        } => {
            let path = config.unwrap_or_else(cli::default_config_path);
            let config = cli::load_config(&path)?;
            // A rehearsal on the simulator prints its own timeline; engine logs would repeat
            // it line by line, so they start at `error` there unless asked for.
            let rehearsal = config.accounts.iter().all(|a| a.venue.kind() == "sim");
            init_logging(format, verbose, if rehearsal { "error" } else { "info" });
            let shutdown = install_shutdown_signals()?;
            tracing::info!(
                accounts = config.accounts.len(),
                "running; SIGINT or SIGTERM stops after the step in flight"
            );
            Ok(cli::run(config, dry_run, ticks, shutdown).await?)
        }
        Command::Check { config, no_plan } => {
            init_logging(format, verbose, "warn");
            let config = cli::load_config(&config)?;
            let options = cli::CheckOptions { plan: !no_plan };
            Ok(cli::check_with(config, options).await?)
        }
        Command::History { config, dry_run } => {
            init_logging(format, verbose, "warn");
            let path = config.unwrap_or_else(cli::default_config_path);
            let settings = marginguard::config::Config::load_journal_settings(&path)
                .map_err(CliError::Config)?;
            Ok(cli::history(&settings, dry_run)?)
        }
        Command::Status { config, url } => {
            init_logging(format, verbose, "warn");
            let path = config.unwrap_or_else(cli::default_config_path);
            let settings = marginguard::config::Config::load_status_settings(&path)
                .map_err(CliError::Config)?;
            Ok(cli::status(&settings, url.as_deref()).await?)
        }
        Command::Simulate {
            scenario,
            strategy,
            no_bot,
            baselines,
            poll_interval,
            settlement,
            reserve,
            feed,
            format: output,
            plot,
        } => {
            init_logging(format, verbose, "off");
            let request = cli::SimulateRequest {
                feeds: feed.feeds(),
                scenarios: scenario,
                strategies: if no_bot { Vec::new() } else { strategy },
                no_bot,
                baselines,
                overrides: marginguard::replay::Overrides {
                    poll_interval,
                    settlement,
                    reserve,
                },
                format: output_format(output),
                plot,
            };
            Ok(cli::simulate(&request).await?)
        }
        Command::Plan {
            scenario,
            config,
            account,
            strategy,
            settlement,
            poll_interval,
            days,
            format: output,
        } => {
            init_logging(format, verbose, "off");
            let book = match (scenario, config, account) {
                (Some(path), _, _) => cli::BookSource::Scenario(path),
                (None, Some(config), Some(account)) => cli::BookSource::Account { config, account },
                _ => {
                    return Err(CliError::Usage(
                        "give --scenario FILE, or --config FILE --account NAME".into(),
                    )
                    .into())
                }
            };
            let request = cli::PlanRequest {
                book,
                strategy,
                settlement,
                poll_interval,
                days,
                format: output_format(output),
            };
            Ok(cli::plan(&request).await?)
        }
        Command::Sweep {
            scenario,
            strategy,
            trigger,
            refill,
            reserve_multiple,
            poll_interval,
            settlement,
            format: output,
        } => {
            init_logging(format, verbose, "off");
            let request = cli::SweepRequest {
                scenarios: scenario,
                strategy,
                triggers: trigger,
                refills: refill,
                reserve_multiples: reserve_multiple,
                overrides: marginguard::replay::Overrides {
                    poll_interval,
                    settlement,
                    reserve: None,
                },
                format: output_format(output),
            };
            Ok(cli::sweep(&request).await?)
        }
    }
}

/// Writes a command's output. A reader that went away (`marginguard check | head`) is not
/// an error of ours: `print!` would panic on the broken pipe.
fn print_output(output: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write the output: {error}");
            ExitCode::from(1)
        }
    }
}

fn report_error(error: anyhow::Error) -> ExitCode {
    match error.downcast_ref::<CliError>() {
        Some(CliError::Config(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Some(CliError::Refused(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Some(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Some(failure @ CliError::RunnerFailed { report, .. }) => {
            print!("{report}");
            eprintln!("error: {failure}");
            ExitCode::from(1)
        }
        Some(CliError::Journal(e)) => {
            eprintln!("error: {e}; nothing started (caps need the journal)");
            ExitCode::from(1)
        }
        None => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat, verbose: u8, quiet_default: &str) {
    let default = match verbose {
        0 => quiet_default,
        1 => "info",
        _ => "debug",
    };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Transport crates log whole frames and requests at debug/trace (an OKX login frame with
    // its key and passphrase, a listen key in a URL): whatever RUST_LOG says, they speak at
    // info at most, so a secret never reaches a log line.
    for quiet in [
        "tungstenite=info",
        "tokio_tungstenite=info",
        "hyper=info",
        "hyper_util=info",
        "reqwest=info",
        "rustls=info",
    ] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The first SIGINT or SIGTERM starts a graceful shutdown; a second SIGINT exits at once.
/// The handlers are installed before this returns, so a signal sent once the daemon has said
/// it is running is never lost to the default action.
#[cfg(unix)]
fn install_shutdown_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::warn!("SIGINT: finishing the steps in flight; press ^C again to exit now"),
            _ = terminate.recv() => tracing::warn!("SIGTERM: finishing the steps in flight"),
        }
        tokio::spawn(async move {
            if interrupt.recv().await.is_some() {
                eprintln!("second SIGINT: exiting now");
                std::process::exit(130);
            }
        });
    })
}

#[cfg(not(unix))]
fn install_shutdown_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("^C: finishing the steps in flight");
        }
    })
}
