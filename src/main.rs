//! The `meridian` command: serve, check, explain, override.
//!
//! Exit status: 0 success, 1 runtime failure (e.g. a port already in use, the server not
//! reachable), 2 invalid config, zones or arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use meridian::api::{self, ApiState, OverrideRequest};
use meridian::config::{self, ServerConfig};
use meridian::diag::Diagnostics;
use meridian::explain::Question;
use meridian::health::{HealthSources, parse_admin};
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
    /// Show how a client's answer is decided: GeoIP result, rule or ranking, health, answer,
    /// ECS scope. Asks the running server (live health) and falls back to the files.
    Explain {
        /// The name asked for, e.g. cdn.example.com.
        name: String,
        /// The record type (default A).
        #[arg(default_value = "A")]
        qtype: String,
        /// The client: an address (as if it were the source) or a subnet (as if sent as ECS).
        #[arg(long, value_name = "IP[/PREFIX]")]
        client: String,
        /// Do not ask the running server; load the files and show health as not probed.
        #[arg(long)]
        offline: bool,
    },
    /// Force a data center or address up, down or drained in the running server, or clear
    /// the override. Overrides persist across restarts.
    Override {
        /// A data center id (`ams`) or an address (`192.0.2.10`).
        target: String,
        /// `up`, `down`, `drain` or `clear`.
        state: String,
        /// The zone, when the data center id exists in several.
        #[arg(long)]
        zone: Option<String>,
    },
    /// List the overrides in force in the running server.
    Overrides,
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
            offline,
        } => explain(cli.config, &name, &qtype, &client, offline),
        Command::Override {
            target,
            state,
            zone,
        } => override_cmd(cli.config, target, state, zone),
        Command::Overrides => list_overrides(cli.config),
        Command::Serve => {
            init_logging();
            serve_main(cli.config)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_proto=error"));
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

fn invalid(d: &Diagnostics, what: &str) -> ExitCode {
    eprint!("{}", d.render());
    eprintln!("{what}: {}", d.summary());
    ExitCode::from(EXIT_INVALID)
}

/// Health sources for commands that do not probe: nothing is started, overrides are read.
fn offline_health(cfg: &ServerConfig) -> Result<HealthSources, String> {
    HealthSources::new(Some(&cfg.overrides_file())).map_err(|e| e.to_string())
}

fn check(config: Option<PathBuf>) -> ExitCode {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => return invalid(&d, "check failed"),
    };
    let health = match offline_health(&cfg) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match load_snapshot(&cfg, &health, 1) {
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
        Err(d) => invalid(&d, "check failed"),
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn explain(
    config: Option<PathBuf>,
    name: &str,
    qtype: &str,
    client: &str,
    offline: bool,
) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(EXIT_INVALID)
    };
    let question = match Question::parse(name, qtype, client) {
        Ok(q) => q,
        Err(e) => return usage(e),
    };
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => return invalid(&d, "cannot explain"),
    };
    if !offline {
        match live_explain(&cfg, &question.name.to_string(), qtype, client) {
            Live::Text(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Live::Refused(status, body) => {
                eprint!("error: the server answered {status}: {body}");
                return ExitCode::from(EXIT_RUNTIME);
            }
            Live::Unreachable => {}
        }
    }
    let health = match offline_health(&cfg) {
        Ok(h) => h,
        Err(e) => return usage(e),
    };
    match load_snapshot(&cfg, &health, 1) {
        Ok((snap, _)) => {
            if !offline {
                println!(
                    "(the server's API is not reachable: explaining from the files; health not probed)"
                );
            }
            print!(
                "{}",
                meridian::explain::explain(&snap, &question.name, question.qtype, question.client)
            );
            ExitCode::SUCCESS
        }
        Err(d) => invalid(&d, "cannot explain"),
    }
}

/// What asking the running server gave.
enum Live {
    /// The explanation.
    Text(String),
    /// No server to ask (no API, no token or address yet, or nothing listening).
    Unreachable,
    /// The server answered with an error (status, body).
    Refused(u16, String),
}

/// Asks the running server to explain.
fn live_explain(cfg: &ServerConfig, name: &str, qtype: &str, client: &str) -> Live {
    let Some(addr) = cfg.api_address() else {
        return Live::Unreachable;
    };
    let Ok(token) = api::token(cfg.api.token.as_deref(), &cfg.token_file(), false) else {
        return Live::Unreachable;
    };
    let path = format!(
        "/v1/explain?name={}&type={}&client={}",
        urlencode(name),
        urlencode(qtype),
        urlencode(client)
    );
    match client_runtime().block_on(api::call(addr, &token, reqwest::Method::GET, &path, None)) {
        Ok((200, body)) => Live::Text(body),
        Ok((status, body)) => Live::Refused(status, body),
        Err(_) => Live::Unreachable,
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn api_target(cfg: &ServerConfig) -> Result<(std::net::SocketAddr, String), ExitCode> {
    if cfg.api.listen.is_none() {
        eprintln!("error: the API is off in the config ([api] listen = \"off\")");
        return Err(ExitCode::from(EXIT_INVALID));
    }
    let Some(addr) = cfg.api_address() else {
        eprintln!(
            "error: the API address is unknown: is the server running? ({} is missing)",
            cfg.api_address_file().display()
        );
        return Err(ExitCode::from(EXIT_RUNTIME));
    };
    match api::token(cfg.api.token.as_deref(), &cfg.token_file(), false) {
        Ok(t) => Ok((addr, t)),
        Err(e) => {
            eprintln!(
                "error: cannot read the API token {}: {e}",
                cfg.token_file().display()
            );
            Err(ExitCode::from(EXIT_RUNTIME))
        }
    }
}

/// Sends one request to the running server's API: `Ok(body)` for 200, else the exit code
/// after printing why (400: the request was wrong; anything else: a runtime failure).
fn api_request(
    cfg: &ServerConfig,
    method: reqwest::Method,
    path: &str,
    body: Option<&OverrideRequest>,
) -> Result<String, ExitCode> {
    let (addr, token) = api_target(cfg)?;
    match client_runtime().block_on(api::call(addr, &token, method, path, body)) {
        Ok((200, body)) => Ok(body),
        Ok((400, body)) => {
            eprint!("error: {body}");
            Err(ExitCode::from(EXIT_INVALID))
        }
        Ok((status, body)) => {
            eprint!("error: the server answered {status}: {body}");
            Err(ExitCode::from(EXIT_RUNTIME))
        }
        Err(e) => {
            eprintln!("error: cannot reach the server's API at {addr}: {e}");
            Err(ExitCode::from(EXIT_RUNTIME))
        }
    }
}

fn override_cmd(
    config: Option<PathBuf>,
    target: String,
    state: String,
    zone: Option<String>,
) -> ExitCode {
    if parse_admin(&state).is_none() {
        eprintln!("error: {state:?} is not a state: use up, down, drain or clear");
        return ExitCode::from(EXIT_INVALID);
    }
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => return invalid(&d, "cannot override"),
    };
    let req = OverrideRequest {
        target,
        zone,
        state,
    };
    match api_request(&cfg, reqwest::Method::PUT, "/v1/overrides", Some(&req)) {
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn list_overrides(config: Option<PathBuf>) -> ExitCode {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(d) => return invalid(&d, "cannot list overrides"),
    };
    match api_request(&cfg, reqwest::Method::GET, "/v1/overrides", None) {
        Ok(body) => {
            let list: Vec<api::OverrideEntry> = serde_json::from_str(&body).unwrap_or_default();
            if list.is_empty() {
                println!("no overrides");
            }
            for e in list {
                println!("{}: {}", e.key, e.state);
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
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
    let health = match HealthSources::new(Some(&cfg.overrides_file())) {
        Ok(h) => h,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    // Before loading: a file replaced while it is read is then seen as changed.
    let files = meridian::reload::fingerprint(&cfg);
    let (snap, warnings) = match load_snapshot(&cfg, &health, 1) {
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
    runtime.block_on(run(cfg, health, snap, files))
}

async fn run(
    cfg: ServerConfig,
    health: HealthSources,
    snap: meridian::compile::Snapshot,
    files: meridian::reload::Fingerprint,
) -> ExitCode {
    // Bind first, so a port in use fails fast, but answer only after the first health round.
    let listeners = match Listeners::bind(&cfg.listen) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let api_listener = match cfg.api.listen {
        Some(a) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => Some(l),
            Err(e) => {
                error!("cannot listen on api {a}: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        },
        None => None,
    };

    health.registry.start();
    if !health.registry.is_empty() {
        let targets = health.registry.len();
        let pending = health
            .registry
            .first_round(cfg.health_startup_timeout)
            .await;
        if pending == 0 {
            info!("health: first round done for {targets} target(s)");
        } else {
            warn!(
                "health: {pending} of {targets} target(s) without a result after {:?}; they keep their initial state",
                cfg.health_startup_timeout
            );
        }
    }

    let addrs = listeners.local_addrs();
    let snapshot = Arc::new(ArcSwap::from_pointee(snap));
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    // The API first: once DNS is announced, `meridian override` works.
    if let Some(l) = api_listener {
        let token = match api::token(cfg.api.token.as_deref(), &cfg.token_file(), true) {
            Ok(t) => t,
            Err(e) => {
                error!(
                    "cannot create the API token in {}: {e}",
                    cfg.token_file().display()
                );
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        if let Ok(a) = l.local_addr() {
            if let Err(e) = std::fs::write(cfg.api_address_file(), a.to_string()) {
                warn!("cannot write {}: {e}", cfg.api_address_file().display());
            }
            info!(
                "listening on api http://{a} (token in {})",
                cfg.token_file().display()
            );
        }
        let state = ApiState {
            snapshot: snapshot.clone(),
            overrides: health.overrides.clone(),
            token: Arc::from(token),
        };
        tasks.push(tokio::spawn(api::serve(l, state, stop.clone())));
    }
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

    tasks.push(tokio::spawn(meridian::answer::all_down::watch(
        snapshot.clone(),
        stop.clone(),
    )));
    let reloader = Reloader::new(cfg.clone(), health.clone(), snapshot.clone(), files);
    tasks.push(tokio::spawn(reloader.clone().watch(stop.clone())));
    wait_for_signals(&reloader).await;
    info!("shutting down");
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    running.shutdown().await;
    ExitCode::SUCCESS
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
