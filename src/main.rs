//! The `liveproc` command line.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use liveproc::config::{Config, LogFormat, ServeArgs};
use liveproc::migrate::MigrateArgs;

#[derive(Parser)]
#[command(name = "liveproc", version, about = "Live video processing server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Move a data dir (registry and files) into PostgreSQL and object
    /// storage; idempotent, resumable, verified.
    Migrate(MigrateArgs),
}

/// Logs to stderr, filtered by `LIVEPROC_LOG` (default `info`): text, or
/// one JSON object per line with the fields of the line's spans (the
/// stream and organization of a session's lines) for log shippers.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LIVEPROC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A line that cannot be written (stderr on a full disk) is lost, and
    // nothing else: tracing-subscriber's fallback would report it with
    // `eprintln!`, which panics on the same full disk, in whatever thread
    // logged (one holding the registry's lock poisoned it for good).
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(*args)?;
            init_logs(config.log_format);
            liveproc::heap::limit_arenas(config.malloc_arenas);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                liveproc::server::run(config, shutdown).await
            })
        }
        Command::Migrate(args) => {
            init_logs(LogFormat::Text);
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(liveproc::migrate::run(args))?;
            println!(
                "migrated: {} organizations, {} streams, {} recordings, {} clips; {} files copied and verified ({} bytes), {} already in the store",
                report.organizations,
                report.streams,
                report.recordings,
                report.clips,
                report.files_copied,
                report.bytes_copied,
                report.files_already_there
            );
            for failure in &report.failures {
                eprintln!("not migrated: {failure}");
            }
            if !report.failures.is_empty() {
                anyhow::bail!(
                    "{} files not migrated; run again to retry",
                    report.failures.len()
                );
            }
            Ok(())
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
