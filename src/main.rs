//! The `meridian` command: serve, check, explain, override, reload.
//!
//! Exit status: 0 success, 1 runtime failure (e.g. a port already in use, the server not
//! reachable), 2 invalid config, zones or arguments.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use meridian::api::OverrideRequest;
use meridian::api::client::{self, Api, ClientError};
use meridian::config::{self, ServerConfig};
use meridian::diag::Diagnostics;
use meridian::explain::Question;
use meridian::health::HealthSources;
use meridian::health::parse_admin;
use meridian::load::load_snapshot;
use meridian::server::{self, RunError};
use meridian::spec_values::Seconds;

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
        /// End the override by itself after this long (`90s`, `30m`, `2h`, `1d`).
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// Why: shown with the override in `overrides`, `explain` and the status page.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the overrides in force in the running server, with who set them, when, why,
    /// and until when.
    Overrides,
    /// Show the fleet's nodes as etcd has them: region, version, zones and serials
    /// served, and whether they agree (needs `[cluster]`).
    Fleet,
    /// Validate the zones as `check` does, then store them in etcd as the fleet's next
    /// zone set; every node fetches it and reloads (needs `[cluster]`). A set with any
    /// error is refused before anything is stored.
    Push,
    /// Reload the running server's config, zones and GeoIP databases (as SIGHUP does);
    /// print the new generation, or every problem found while the old data keeps serving.
    Reload,
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_INVALID: u8 = 2;

/// Why a command failed: the exit status, and the whole message the operator sees.
#[derive(Debug)]
enum CliError {
    /// Invalid config, zones or arguments: exit 2.
    Invalid(String),
    /// A runtime failure, such as a port in use or the server not reachable: exit 1.
    Runtime(String),
}

impl CliError {
    /// The diagnostics, then `what` failed and the count.
    fn diagnostics(d: &Diagnostics, what: &str) -> Self {
        Self::Invalid(format!("{}{what}: {}\n", d.render(), d.summary()))
    }

    /// One `error:` line.
    fn usage(message: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("error: {message}\n"))
    }

    /// `serve` reports through its log, as everything else it says; the other commands
    /// print the message as it is.
    fn report(&self, to_log: bool) -> ExitCode {
        let (text, code) = match self {
            Self::Invalid(t) => (t, EXIT_INVALID),
            Self::Runtime(t) => (t, EXIT_RUNTIME),
        };
        if to_log {
            for line in text.lines() {
                tracing::error!("{line}");
            }
        } else {
            eprint!("{text}");
        }
        ExitCode::from(code)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let mut text = format!("error: {e}");
        if !e.is_server_text() {
            text.push('\n');
        }
        if e.is_invalid_request() {
            Self::Invalid(text)
        } else {
            Self::Runtime(text)
        }
    }
}

impl From<RunError> for CliError {
    fn from(e: RunError) -> Self {
        let mut text = e.diagnostics().map(Diagnostics::render).unwrap_or_default();
        text.push_str(&e.to_string());
        if e.is_invalid_input() {
            Self::Invalid(text)
        } else {
            Self::Runtime(text)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    if serving {
        init_logging();
    }
    match run(command, cli.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(serving),
    }
}

fn run(command: Command, config: Option<PathBuf>) -> Result<(), CliError> {
    match command {
        Command::Serve => {
            let cfg = load_config(config).map_err(|d| CliError::Invalid(d.render()))?;
            Ok(server::run(cfg)?)
        }
        Command::Check => check(config),
        Command::Explain {
            name,
            qtype,
            client,
            offline,
        } => explain(config, &name, &qtype, &client, offline),
        Command::Override {
            target,
            state,
            zone,
            for_,
            reason,
        } => set_override(config, target, state, zone, for_, reason),
        Command::Overrides => list_overrides(config),
        Command::Fleet => fleet(config),
        Command::Push => push(config),
        Command::Reload => reload(config),
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

/// Health sources for commands that do not probe: nothing is started, overrides are read.
fn offline_health(cfg: &ServerConfig) -> Result<HealthSources, CliError> {
    HealthSources::new(Some(&cfg.overrides_file())).map_err(CliError::usage)
}

fn check(config: Option<PathBuf>) -> Result<(), CliError> {
    let failed = |d: Diagnostics| CliError::diagnostics(&d, "check failed");
    let cfg = load_config(config).map_err(failed)?;
    let health = offline_health(&cfg)?;
    let (snap, warnings) = load_snapshot(&cfg, &health, 1).map_err(failed)?;
    eprint!("{}", warnings.render());
    let names: usize = snap.zones().iter().map(|z| z.node_count()).sum();
    println!(
        "ok: {} zone(s), {names} name(s) in {}",
        snap.zones().len(),
        cfg.zones_dir.display()
    );
    Ok(())
}

/// The API client is async; the commands make one request each, on a runtime of their own.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

fn explain(
    config: Option<PathBuf>,
    name: &str,
    qtype: &str,
    client: &str,
    offline: bool,
) -> Result<(), CliError> {
    let question = Question::parse(name, qtype, client).map_err(CliError::usage)?;
    let failed = |d: Diagnostics| CliError::diagnostics(&d, "cannot explain");
    let cfg = load_config(config).map_err(failed)?;
    if !offline {
        let name = question.name.to_string();
        if let Some(text) = block_on(client::explain(&cfg, &name, qtype, client))? {
            print!("{text}");
            return Ok(());
        }
    }
    let health = offline_health(&cfg)?;
    let (snap, _) = load_snapshot(&cfg, &health, 1).map_err(failed)?;
    if !offline {
        println!(
            "(the server's API is not reachable: explaining from the files; health not probed)"
        );
    }
    print!(
        "{}",
        meridian::explain::explain(&snap, &question.name, question.qtype, question.client)
    );
    Ok(())
}

fn set_override(
    config: Option<PathBuf>,
    subject: String,
    state: String,
    zone: Option<String>,
    for_: Option<String>,
    reason: Option<String>,
) -> Result<(), CliError> {
    if parse_admin(&state).is_none() {
        return Err(CliError::usage(format!(
            "{state:?} is not a state: use up, down, drain or clear"
        )));
    }
    let for_seconds = match for_.as_deref().map(Seconds::parse) {
        None => None,
        Some(Some(Seconds(s))) if s > 0 => Some(s),
        Some(_) => {
            return Err(CliError::usage(format!(
                "--for {:?} is not a duration: write e.g. 90s, 30m, 2h or 1d",
                for_.unwrap_or_default()
            )));
        }
    };
    let cfg = load_config(config).map_err(|d| CliError::diagnostics(&d, "cannot override"))?;
    let request = OverrideRequest {
        target: subject,
        zone,
        state,
        for_seconds,
        reason,
        by: Some(who()),
    };
    let api = Api::find(&cfg)?;
    print!("{}", block_on(api.set_override(&request))?);
    Ok(())
}

fn list_overrides(config: Option<PathBuf>) -> Result<(), CliError> {
    let cfg =
        load_config(config).map_err(|d| CliError::diagnostics(&d, "cannot list overrides"))?;
    let api = Api::find(&cfg)?;
    let list = block_on(api.overrides())?;
    if list.is_empty() {
        println!("no overrides");
    }
    for e in list {
        let about = e.meta.describe();
        if about.is_empty() {
            println!("{}: {}", e.key, e.state);
        } else {
            println!("{}: {} ({about})", e.key, e.state);
        }
    }
    Ok(())
}

/// `user@host`, as well as the environment tells.
fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| user_of_uid().unwrap_or_else(|| "unknown".into()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

fn push(config: Option<PathBuf>) -> Result<(), CliError> {
    let refused = |d: Diagnostics| CliError::diagnostics(&d, "push refused, nothing stored");
    let cfg = load_config(config).map_err(refused)?;
    let Some(cluster) = &cfg.cluster else {
        return Err(CliError::usage(
            "the config has no [cluster] section: push needs the fleet's etcd",
        ));
    };
    let health = offline_health(&cfg)?;
    let (snap, warnings) = load_snapshot(&cfg, &health, 1).map_err(refused)?;
    eprint!("{}", warnings.render());
    let paths = meridian::zone::zone_files(&cfg.zones_dir)
        .map_err(|e| CliError::Runtime(format!("error: {}: {e}\n", cfg.zones_dir.display())))?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path)
            .map_err(|e| CliError::Runtime(format!("error: {}: {e}\n", path.display())))?;
        files.push((name, bytes));
    }
    let size: usize = files.iter().map(|(_, b)| b.len()).sum();
    let generation = block_on(meridian::cluster::zoneset::push(cluster, &files, &who()))
        .map_err(|e| CliError::Runtime(format!("error: {e}\nnothing was stored\n")))?;
    println!(
        "pushed zone set {generation}: {} zone(s) in {} file(s), {size} bytes; the nodes \
         load it within about a second (see `meridian fleet`)",
        snap.zones().len(),
        files.len()
    );
    Ok(())
}

/// This process's user name from /etc/passwd, when the environment does not say.
fn user_of_uid() -> Option<String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

fn fleet(config: Option<PathBuf>) -> Result<(), CliError> {
    let cfg =
        load_config(config).map_err(|d| CliError::diagnostics(&d, "cannot show the fleet"))?;
    let Some(cluster) = &cfg.cluster else {
        return Err(CliError::usage(
            "the config has no [cluster] section: this is a single node",
        ));
    };
    let mut nodes = block_on(meridian::cluster::read_nodes(cluster))
        .map_err(|e| CliError::Runtime(format!("error: {e}\n")))?;
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    if nodes.is_empty() {
        println!("no live nodes under {}", cluster.key("nodes/"));
        return Ok(());
    }
    let agree = meridian::cluster::agree(&nodes);
    // The zone set most nodes serve is the reference a disagreeing node is told apart from.
    let reference = nodes
        .iter()
        .max_by_key(|n| nodes.iter().filter(|m| m.zones == n.zones).count())
        .map(|n| n.zones.clone())
        .unwrap_or_default();
    println!(
        "{:<16} {:<10} {:<8} {:>8} {:>10}  zones",
        "node", "region", "version", "zone set", "generation"
    );
    for n in &nodes {
        let zones: Vec<String> = n.zones.iter().map(|(z, s)| format!("{z}@{s}")).collect();
        let mark = if n.zones == reference {
            ""
        } else {
            "  (differs)"
        };
        let set = if n.zone_set == 0 {
            "files".to_owned()
        } else {
            n.zone_set.to_string()
        };
        println!(
            "{:<16} {:<10} {:<8} {set:>8} {:>10}  {}{mark}",
            n.node,
            n.region,
            n.version,
            n.generation,
            zones.join(" ")
        );
    }
    println!(
        "{} node(s); {}",
        nodes.len(),
        if agree {
            "all serve the same zone set, zones and serials"
        } else {
            "they do NOT all serve the same zone set, zones and serials"
        }
    );
    Ok(())
}

fn reload(config: Option<PathBuf>) -> Result<(), CliError> {
    let cfg = load_config(config).map_err(|d| CliError::diagnostics(&d, "cannot reload"))?;
    let api = Api::find(&cfg)?;
    match block_on(api.reload())? {
        Ok(generation) => {
            println!("reloaded: now serving generation {generation}");
            Ok(())
        }
        // The server's text: every diagnostic, then the summary line.
        Err(diagnostics) => Err(CliError::Invalid(diagnostics)),
    }
}
