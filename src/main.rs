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
use meridian::reload::Reloader;
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
    /// Show how a client's answer is decided: GeoIP result, rule or ranking, answer, ECS scope.
    Explain {
        /// The name asked for, e.g. cdn.example.com.
        name: String,
        /// The record type (default A).
        #[arg(default_value = "A")]
        qtype: String,
        /// The client: an address (as if it were the source) or a subnet (as if sent as ECS).
        #[arg(long, value_name = "IP[/PREFIX]")]
        client: String,
    },
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => check(cli.config),
        Command::Explain {
            name,
            qtype,
            client,
        } => explain(cli.config, &name, &qtype, &client),
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

fn explain(config: Option<PathBuf>, name: &str, qtype: &str, client: &str) -> ExitCode {
    use std::str::FromStr;
    let usage = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(EXIT_INVALID)
    };
    let Ok(mut name) = hickory_proto::rr::Name::from_str(name) else {
        return usage(format!("{name:?} is not a domain name"));
    };
    name.set_fqdn(true);
    let Ok(qtype) = hickory_proto::rr::RecordType::from_str(&qtype.to_ascii_uppercase()) else {
        return usage(format!("{qtype:?} is not a record type (e.g. A, AAAA, MX)"));
    };
    let client = match meridian::explain::Client::from_str(client) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => {
            eprint!("{}", d.render());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match load_snapshot(&cfg, 1) {
        Ok((snap, _)) => {
            print!(
                "{}",
                meridian::explain::explain(&snap, &name, qtype, client)
            );
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprint!("{}", d.render());
            eprintln!("cannot explain: {}", d.summary());
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
        let reloader = Reloader::new(cfg.clone(), snapshot.clone());
        let stop_watch = tokio_util::sync::CancellationToken::new();
        let watcher = tokio::spawn(reloader.clone().watch(stop_watch.clone()));
        wait_for_signals(&reloader).await;
        info!("shutting down");
        stop_watch.cancel();
        let _ = watcher.await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Runs until SIGINT or SIGTERM; SIGHUP reloads, keeping the old snapshot on error.
async fn wait_for_signals(reloader: &Reloader) {
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
                info!("SIGHUP: reloading");
                let _ = reloader.reload().await;
            }
        }
    }
}
