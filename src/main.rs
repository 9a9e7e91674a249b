//! The `meridian` command: serve, check, explain.
//!
//! Exit status: 0 success, 1 runtime failure (e.g. a port already in use), 2 invalid config
//! or zones.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use tracing::{error, info, warn};

use meridian::config::{self, ServerConfig};
use meridian::diag::Diagnostics;
use meridian::load::load_snapshot;
use meridian::serve::{self, Listeners, Responder};

/// Authoritative GeoDNS / GSLB server.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Server config file (default: built-in settings, serving ./zones on 127.0.0.1:5300).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve DNS (the default when no command is given).
    Serve,
    /// Validate the config and every zone; print all problems found; serve nothing.
    Check,
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(cli.config),
        Command::Serve => {
            init_logging();
            serve_main(cli.config)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_proto=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn load_config(path: Option<PathBuf>) -> Result<ServerConfig, Diagnostics> {
    let mut diags = Diagnostics::new();
    config::load(path.as_deref(), &mut diags).ok_or(diags)
}

fn check(config: Option<PathBuf>) -> ExitCode {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => {
            eprint!("{}", d.render());
            eprintln!("check failed: {}", d.summary());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match load_snapshot(&cfg, 1) {
        Ok((snap, warnings)) => {
            eprint!("{}", warnings.render());
            let names: usize = snap.zones().iter().map(|z| z.node_count()).sum();
            println!(
                "ok: {} zone(s), {names} name(s) in {}",
                snap.zones().len(),
                cfg.zones_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprint!("{}", d.render());
            eprintln!("check failed: {}", d.summary());
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn serve_main(config_path: Option<PathBuf>) -> ExitCode {
    let cfg = match load_config(config_path) {
        Ok(c) => c,
        Err(d) => {
            for line in d.render().lines() {
                error!("{line}");
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let (snap, warnings) = match load_snapshot(&cfg, 1) {
        Ok(x) => x,
        Err(d) => {
            for line in d.render().lines() {
                error!("{line}");
            }
            error!("not starting: {}", d.summary());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    for line in warnings.render().lines() {
        warn!("{line}");
    }
    let zones: Vec<String> = snap.zones().iter().map(|z| z.origin.to_string()).collect();
    info!("loaded {} zone(s): {}", zones.len(), zones.join(" "));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(async move {
        let listeners = match Listeners::bind(&cfg.listen) {
            Ok(l) => l,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        let addrs = listeners.local_addrs();
        let snapshot = Arc::new(ArcSwap::from_pointee(snap));
        let responder = Arc::new(Responder::new(snapshot.clone(), cfg.max_udp_payload));
        let running = match serve::start(listeners, responder, &cfg) {
            Ok(r) => r,
            Err(e) => {
                error!("cannot start serving: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        for a in &addrs {
            info!("listening on udp {a}");
            info!("listening on tcp {a}");
        }
        wait_for_signals(&cfg, &snapshot).await;
        info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Runs until SIGINT or SIGTERM; SIGHUP reloads the zones, keeping the old ones on error.
async fn wait_for_signals(cfg: &ServerConfig, snapshot: &ArcSwap<meridian::compile::Snapshot>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                let next = snapshot.load().generation + 1;
                let cfg = cfg.clone();
                let result = tokio::task::spawn_blocking(move || load_snapshot(&cfg, next)).await;
                match result {
                    Ok(Ok((snap, warnings))) => {
                        for line in warnings.render().lines() {
                            warn!("{line}");
                        }
                        snapshot.store(Arc::new(snap));
                        info!("reloaded: now serving generation {next}");
                    }
                    Ok(Err(d)) => {
                        for line in d.render().lines() {
                            error!("{line}");
                        }
                        error!(
                            "reload rejected: {}; still serving generation {}",
                            d.summary(),
                            next - 1
                        );
                    }
                    Err(e) => error!("reload failed: {e}"),
                }
            }
        }
    }
}
