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
    },
    /// Validate a config, read each account once (moving nothing) and print its buffer.
    Check {
        #[arg(long)]
        config: PathBuf,
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
        Command::Run { config, dry_run } => {
            let path = config.unwrap_or_else(cli::default_config_path);
            let config = cli::load_config(&path)?;
            // A rehearsal on the simulator prints its own timeline; engine logs would repeat
            // it line by line, so they start at `error` there unless asked for.
            let rehearsal = config.accounts.iter().all(|a| a.venue.kind() == "sim");
            init_logging(format, verbose, if rehearsal { "error" } else { "info" });
            Ok(cli::run(config, dry_run, shutdown_signal()).await?)
        }
        Command::Check { config } => {
            init_logging(format, verbose, "warn");
            let config = cli::load_config(&config)?;
            Ok(cli::check(config).await?)
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
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::warn!("SIGINT: finishing the steps in flight; press ^C again to exit now"),
        _ = terminate => tracing::warn!("SIGTERM: finishing the steps in flight"),
    }
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("second SIGINT: exiting now");
            std::process::exit(130);
        }
    });
}
