//! The `liveproc` command line.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use liveproc::config::{Config, ServeArgs};
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LIVEPROC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(*args)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                liveproc::server::run(config, shutdown).await
            })
        }
        Command::Migrate(args) => {
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
