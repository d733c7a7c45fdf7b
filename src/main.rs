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
    },
    /// Print the rescues recorded in the journal: when, account, amount, buffer, state.
    History {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Show the dry-run journal even if the config is live.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replay one scenario with one strategy and print the timeline and outcome.
    Simulate {
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long)]
        strategy: PathBuf,
        /// Replay the day without the bot.
        #[arg(long)]
        no_bot: bool,
    },
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
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
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
        Command::Check { config } => {
            init_logging(format, verbose, "warn");
            let config = cli::load_config(&config)?;
            Ok(cli::check(config).await?)
        }
        Command::History { config, dry_run } => {
            init_logging(format, verbose, "warn");
            let path = config.unwrap_or_else(cli::default_config_path);
            let config = cli::load_config(&path)?;
            Ok(cli::history(&config, dry_run)?)
        }
        Command::Simulate {
            scenario,
            strategy,
            no_bot,
        } => {
            // Without a bot the engine only watches, with caps of zero; its "cannot top up"
            // errors would be noise, so logs are off unless asked for.
            init_logging(format, verbose, if no_bot { "off" } else { "error" });
            Ok(cli::simulate(&scenario, &strategy, no_bot).await?)
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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
