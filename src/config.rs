//! The server config file (`meridian.toml`) → [`ServerConfig`].
//!
//! Every setting has a default, so Meridian runs with no file at all: it then serves
//! `zones/` on 127.0.0.1:5300 (UDP and TCP), an unprivileged loopback port a newcomer can
//! query with `dig -p 5300`. Relative paths in a file are taken from the file's directory,
//! so a config works wherever the server is started from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use crate::diag::{Diagnostics, FileDiags, Source, deserialize, sections};
use crate::geo::db::LocationOverride;
use crate::geo::{Invalid, Location, parse_continent, parse_coord, parse_country, parse_network};
use crate::spec_values::Seconds;

/// Default listen address: loopback, unprivileged port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5300";
/// Default API address: loopback only.
pub const DEFAULT_API: &str = "127.0.0.1:5380";
/// Default location database: the test data shipped in `geoip/`, so a fresh checkout runs.
pub const DEFAULT_GEOIP: &str = "geoip/test-city.mmdb";
/// Default EDNS payload size (DNS Flag Day 2020: no fragmentation on common paths).
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;

/// The validated server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The file these settings came from, if any.
    pub file: Option<PathBuf>,
    /// Addresses to serve on, UDP and TCP on each.
    pub listen: Vec<SocketAddr>,
    /// Directory of zone files (`*.toml`).
    pub zones_dir: PathBuf,
    /// EDNS UDP payload size we advertise and truncate at.
    pub max_udp_payload: u16,
    /// Threads answering UDP per listen address.
    pub udp_threads: usize,
    /// TCP settings.
    pub tcp: TcpConfig,
    /// GeoIP databases and overrides.
    pub geoip: GeoConfig,
    /// Whether the config, zone and database files are watched (inotify) and reloaded as
    /// soon as they change.
    pub watch: bool,
    /// How often the files are also checked by modification time and length: the only
    /// check when watching is off or cannot start, a safety net beside the watcher
    /// otherwise. `None`: the default for the case ([`ServerConfig::reload_poll`]).
    pub reload_check: Option<Duration>,
    /// Where overrides and the API token are kept across restarts.
    pub state_dir: PathBuf,
    /// The HTTP API (overrides, live explain).
    pub api: ApiConfig,
    /// Longest wait at start for the first round of health probes before serving.
    pub health_startup_timeout: Duration,
    /// Whether the query path counts for `/metrics` (`[metrics] enabled`).
    pub metrics: bool,
    /// The query log (`[query_log]`); `None`: off.
    pub query_log: Option<QueryLogConfig>,
    /// Response rate limiting of UDP replies (`[rrl]`); `None`: off.
    pub rrl: Option<RrlConfig>,
    /// The AF_XDP path (`[xdp]`); `None`: sockets only.
    pub xdp: Option<crate::xdp::XdpConfig>,
    /// The fleet this node belongs to (`[cluster]`); `None`: a single node.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Response rate limiting (see [`crate::serve::rrl`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RrlConfig {
    /// Replies per second to one client network, per kind and name.
    pub responses_per_second: u32,
    /// The burst a network gets after a quiet spell is `responses_per_second × window`.
    pub window: Duration,
    /// Every `slip`-th limited reply goes out as an empty TC=1 reply; 0 drops them all.
    pub slip: u8,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Networks never limited.
    pub exempt: Vec<ipnet::IpNet>,
    /// Entries in the table (8 bytes each); the oldest are reused.
    pub table_size: usize,
}

/// The query log: where, how much, and how far the writer may fall behind.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLogConfig {
    /// The file lines are appended to.
    pub file: PathBuf,
    /// The fraction of queries logged, in (0, 1].
    pub sample_rate: f64,
    /// Entries waiting for the writer; more are dropped and counted.
    pub queue: usize,
}

/// The operator HTTP API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Where it listens; loopback by default, as it can change what the server answers.
    pub listen: Option<SocketAddr>,
    /// Bearer token; when unset one is generated and kept in `state_dir/api-token`.
    pub token: Option<String>,
    /// Whether the read-only endpoints (`/`, `/metrics`, `/v1/status`, `/v1/explain`) need
    /// the token too. Off by default: they change nothing, and the API listens on loopback.
    /// `/healthz` and `/readyz` stay open either way, for load balancers.
    pub read_requires_token: bool,
}

impl ServerConfig {
    /// The config as this node serves it: in a fleet, the zones come from the last set
    /// pushed to it once there is one (see [`crate::cluster::zoneset`]). `check` and
    /// `push` read `zones_dir` as written.
    pub fn serving(mut self) -> Self {
        if self.cluster.is_some() {
            self.zones_dir = crate::cluster::zoneset::serving_dir(&self.state_dir, &self.zones_dir);
        }
        self
    }

    /// Where overrides are persisted.
    pub fn overrides_file(&self) -> PathBuf {
        self.state_dir.join("overrides.json")
    }

    /// Where the server writes the API address it bound (for a configured port 0).
    pub fn api_address_file(&self) -> PathBuf {
        self.state_dir.join("api-address")
    }

    /// The API address clients should use: the configured one, or for port 0 the one the
    /// running server wrote down.
    pub fn api_address(&self) -> Option<SocketAddr> {
        let configured = self.api.listen?;
        if configured.port() != 0 {
            return Some(configured);
        }
        std::fs::read_to_string(self.api_address_file())
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// The file holding the generated API token.
    pub fn token_file(&self) -> PathBuf {
        self.state_dir.join("api-token")
    }

    /// How often the files are checked by modification time: `reload_check` when set;
    /// otherwise [`RELOAD_POLL_WATCHED`] while the watcher sees every change, and
    /// [`RELOAD_POLL_UNWATCHED`] when it is off or could not watch everything.
    pub fn reload_poll(&self, watching: bool) -> Duration {
        match self.reload_check {
            Some(d) => d,
            None if watching => RELOAD_POLL_WATCHED,
            None => RELOAD_POLL_UNWATCHED,
        }
    }
}

/// Default check interval beside a working watcher: only a safety net, for changes inotify
/// cannot see (a directory replaced behind a symlink, a network file system).
pub const RELOAD_POLL_WATCHED: Duration = Duration::from_secs(30);
/// Default check interval without the watcher: the only way changes are seen.
pub const RELOAD_POLL_UNWATCHED: Duration = Duration::from_secs(5);

/// Where client locations come from.
#[derive(Clone, Debug, Default)]
pub struct GeoConfig {
    /// Location databases, first match wins (e.g. separate IPv4 and IPv6 files).
    pub databases: Vec<PathBuf>,
    /// Optional AS-number database, for `asn` map rules.
    pub asn: Option<PathBuf>,
    /// Networks whose location the operator fixes, ahead of any database.
    pub overrides: Vec<LocationOverride>,
}

/// TCP limits (RFC 7766 §6.2: servers should time out idle connections and cap them).
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Duration,
    /// A started message must be complete within this time (defeats slow senders).
    pub message_timeout: Duration,
    /// Connections served at once; at the cap a new one closes the connection idle the
    /// longest, or is itself closed when none is idle.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            file: None,
            listen: vec![DEFAULT_LISTEN.parse().expect("valid default")],
            zones_dir: PathBuf::from("zones"),
            max_udp_payload: DEFAULT_UDP_PAYLOAD,
            udp_threads: default_udp_threads(),
            tcp: TcpConfig {
                idle_timeout: Duration::from_secs(10),
                message_timeout: Duration::from_secs(5),
                max_connections: 512,
            },
            geoip: GeoConfig {
                databases: vec![PathBuf::from(DEFAULT_GEOIP)],
                asn: None,
                overrides: Vec::new(),
            },
            watch: true,
            reload_check: None,
            state_dir: PathBuf::from(".meridian"),
            api: ApiConfig {
                listen: Some(DEFAULT_API.parse().expect("valid default")),
                token: None,
                read_requires_token: false,
            },
            health_startup_timeout: Duration::from_secs(10),
            metrics: true,
            query_log: None,
            rrl: None,
            xdp: None,
            cluster: None,
        }
    }
}

fn default_udp_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// The file's sections, each deserialized on its own so an error names its key.
#[derive(Debug, Default)]
struct ConfigSpec {
    listen: Option<Vec<Spanned<String>>>,
    zones_dir: Option<Spanned<String>>,
    max_udp_payload: Option<Spanned<i64>>,
    udp_threads: Option<Spanned<i64>>,
    tcp: Option<TcpSpec>,
    geoip: Option<GeoipSpec>,
    watch: Option<Spanned<bool>>,
    reload_check: Option<Spanned<Seconds>>,
    state_dir: Option<Spanned<String>>,
    api: Option<ApiSpec>,
    health_startup_timeout: Option<Spanned<Seconds>>,
    metrics: Option<MetricsSpec>,
    query_log: Option<QueryLogSpec>,
    rrl: Option<RrlSpec>,
    xdp: Option<XdpSpec>,
    cluster: Option<ClusterSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSpec {
    etcd: Option<Vec<Spanned<String>>>,
    node: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    quorum: Option<Spanned<String>>,
    probers: Option<Spanned<i64>>,
    isolated_after: Option<Spanned<Seconds>>,
    lease_ttl: Option<Spanned<Seconds>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XdpSpec {
    interfaces: Option<Vec<Spanned<String>>>,
    port: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RrlSpec {
    responses_per_second: Option<Spanned<i64>>,
    window: Option<Spanned<Seconds>>,
    slip: Option<Spanned<i64>>,
    ipv4_prefix: Option<Spanned<i64>>,
    ipv6_prefix: Option<Spanned<i64>>,
    exempt: Option<Vec<Spanned<String>>>,
    table_size: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryLogSpec {
    file: Option<Spanned<String>>,
    sample_rate: Option<Spanned<f64>>,
    queue: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSpec {
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiSpec {
    listen: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    read_requires_token: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoipSpec {
    databases: Option<Vec<Spanned<String>>>,
    asn: Option<Spanned<String>>,
    #[serde(rename = "override")]
    overrides: Option<Vec<Spanned<OverrideSpec>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideSpec {
    network: Spanned<String>,
    location: Option<Spanned<Vec<f64>>>,
    country: Option<Spanned<String>>,
    continent: Option<Spanned<String>>,
    subdivision: Option<Spanned<String>>,
    asn: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpSpec {
    idle_timeout: Option<Spanned<Seconds>>,
    message_timeout: Option<Spanned<Seconds>>,
    max_connections: Option<Spanned<i64>>,
}

/// Top-level keys of the config file: the sections [`parse`] reads, offered as "did you mean" hints.
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "zones_dir",
    "max_udp_payload",
    "udp_threads",
    "tcp",
    "geoip",
    "watch",
    "reload_check",
    "state_dir",
    "api",
    "health_startup_timeout",
    "metrics",
    "query_log",
    "rrl",
    "xdp",
    "cluster",
];

/// Loads the config: `path` if given (it must exist), else the defaults.
pub fn load(path: Option<&Path>, diags: &mut Diagnostics) -> Option<ServerConfig> {
    let Some(path) = path else {
        return Some(ServerConfig::default());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.error_global(
                format!("{}: cannot read config file: {e}", path.display()),
                Some("pass an existing file with --config, or omit it to use the defaults".into()),
            );
            return None;
        }
    };
    parse(path, &text, diags)
}

/// Validates config text read from `path`.
pub fn parse(path: &Path, text: &str, diags: &mut Diagnostics) -> Option<ServerConfig> {
    let source = Source::new(path, text);
    let errors_before = diags.error_count();
    let mut d = FileDiags::new(source, diags);
    let root = match DeTable::parse(text) {
        Ok(root) => root.into_inner(),
        Err(e) => {
            let msg = e.message().trim_end().to_owned();
            d.error(e.span(), "", format!("invalid TOML: {msg}"), None);
            return None;
        }
    };
    let mut spec = ConfigSpec::default();
    sections(&mut d, &root, CONFIG_KEYS, "allowed keys", |d, key, v| {
        match key {
            "listen" => spec.listen = deserialize(d, key, v),
            "zones_dir" => spec.zones_dir = deserialize(d, key, v),
            "max_udp_payload" => spec.max_udp_payload = deserialize(d, key, v),
            "udp_threads" => spec.udp_threads = deserialize(d, key, v),
            "tcp" => spec.tcp = deserialize(d, key, v),
            "geoip" => spec.geoip = deserialize(d, key, v),
            "watch" => spec.watch = deserialize(d, key, v),
            "reload_check" => spec.reload_check = deserialize(d, key, v),
            "state_dir" => spec.state_dir = deserialize(d, key, v),
            "api" => spec.api = deserialize(d, key, v),
            "health_startup_timeout" => spec.health_startup_timeout = deserialize(d, key, v),
            "metrics" => spec.metrics = deserialize(d, key, v),
            "query_log" => spec.query_log = deserialize(d, key, v),
            "rrl" => spec.rrl = deserialize(d, key, v),
            "xdp" => spec.xdp = deserialize(d, key, v),
            "cluster" => spec.cluster = deserialize(d, key, v),
            _ => return false,
        }
        true
    });
    if d.error_count() > errors_before {
        return None;
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = ServerConfig {
        file: Some(path.to_path_buf()),
        // A config file names its databases; none means every client is of unknown location.
        geoip: GeoConfig::default(),
        zones_dir: base.join("zones"),
        state_dir: base.join(".meridian"),
        ..ServerConfig::default()
    };

    if let Some(listen) = spec.listen {
        cfg.listen.clear();
        for (i, l) in listen.iter().enumerate() {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(a) => cfg.listen.push(a),
                Err(_) => d.error(
                    Some(l.span()),
                    format!("listen[{i}]"),
                    format!("{:?} is not an address and port", l.get_ref()),
                    Some("write \"127.0.0.1:5300\" or \"[::1]:5300\"".into()),
                ),
            }
        }
        if listen.is_empty() {
            d.error(
                None,
                "listen",
                "the list is empty",
                Some(format!(
                    "give at least one address, e.g. [\"{DEFAULT_LISTEN}\"]"
                )),
            );
        }
    }
    if let Some(z) = spec.zones_dir {
        cfg.zones_dir = base.join(z.get_ref());
    }
    if let Some(p) = spec.max_udp_payload {
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v >= 512 => cfg.max_udp_payload = v,
            _ => d.error(
                Some(p.span()),
                "max_udp_payload",
                format!("{} is outside 512..=65535", p.get_ref()),
                Some(format!(
                    "use {DEFAULT_UDP_PAYLOAD} unless you know your paths carry more"
                )),
            ),
        }
    }
    if let Some(t) = spec.udp_threads {
        match usize::try_from(*t.get_ref()) {
            Ok(v) if (1..=256).contains(&v) => cfg.udp_threads = v,
            _ => d.error(
                Some(t.span()),
                "udp_threads",
                format!("{} is outside 1..=256", t.get_ref()),
                Some("use about one thread per core".into()),
            ),
        }
    }
    if let Some(tcp) = spec.tcp {
        let mut secs = |v: Option<Spanned<Seconds>>, key: &str, target: &mut Duration| {
            if let Some(v) = v {
                if v.get_ref().0 == 0 || v.get_ref().0 > 3600 {
                    d.error(
                        Some(v.span()),
                        format!("tcp.{key}"),
                        format!("{} s is outside 1 s to 1 h", v.get_ref().0),
                        Some("use a few seconds, e.g. \"10s\"".into()),
                    );
                } else {
                    *target = Duration::from_secs(v.get_ref().0);
                }
            }
        };
        secs(tcp.idle_timeout, "idle_timeout", &mut cfg.tcp.idle_timeout);
        secs(
            tcp.message_timeout,
            "message_timeout",
            &mut cfg.tcp.message_timeout,
        );
        if let Some(m) = tcp.max_connections {
            match usize::try_from(*m.get_ref()) {
                Ok(v) if (1..=1_000_000).contains(&v) => cfg.tcp.max_connections = v,
                _ => d.error(
                    Some(m.span()),
                    "tcp.max_connections",
                    format!("{} is outside 1..=1000000", m.get_ref()),
                    Some("use a few hundred, e.g. 512".into()),
                ),
            }
        }
    }
    if let Some(s) = spec.state_dir {
        cfg.state_dir = base.join(s.get_ref());
    }
    if let Some(t) = spec.health_startup_timeout {
        if t.get_ref().0 > 3600 {
            d.error(
                Some(t.span()),
                "health_startup_timeout",
                format!("{} s is longer than an hour", t.get_ref().0),
                Some("a few seconds to a minute is typical".into()),
            );
        } else {
            cfg.health_startup_timeout = Duration::from_secs(t.get_ref().0);
        }
    }
    if let Some(MetricsSpec { enabled: Some(on) }) = spec.metrics {
        cfg.metrics = on;
    }
    if let Some(q) = spec.query_log {
        cfg.query_log = query_log(&mut d, base, q);
    }
    if let Some(r) = spec.rrl {
        cfg.rrl = rrl(&mut d, r);
    }
    if let Some(x) = spec.xdp {
        let port = cfg.listen.first().map_or(53, SocketAddr::port);
        cfg.xdp = xdp(&mut d, x, port);
    }
    if let Some(c) = spec.cluster {
        cfg.cluster = cluster(&mut d, c);
    }
    if let Some(api) = spec.api {
        if let Some(l) = api.listen {
            match l.get_ref().as_str() {
                "off" => cfg.api.listen = None,
                text => match text.parse::<SocketAddr>() {
                    Ok(a) => cfg.api.listen = Some(a),
                    Err(_) => d.error(
                        Some(l.span()),
                        "api.listen",
                        format!("{text:?} is not an address and port"),
                        Some(format!("write \"{DEFAULT_API}\", or \"off\" for no API")),
                    ),
                },
            }
        }
        if let Some(t) = api.token {
            if t.get_ref().len() < 16 {
                d.error(
                    Some(t.span()),
                    "api.token",
                    "the token is shorter than 16 characters",
                    Some("use a long random string, or leave it out to have one generated".into()),
                );
            } else {
                cfg.api.token = Some(t.get_ref().clone());
            }
        }
        if let Some(r) = api.read_requires_token {
            cfg.api.read_requires_token = r;
        }
    }
    if let Some(w) = spec.watch {
        cfg.watch = *w.get_ref();
    }
    if let Some(r) = spec.reload_check {
        match r.get_ref().0 {
            1..=3600 => cfg.reload_check = Some(Duration::from_secs(r.get_ref().0)),
            other => d.error(
                Some(r.span()),
                "reload_check",
                format!("{other} s is outside 1 s to 1 h"),
                Some("a few seconds, e.g. \"5s\"".into()),
            ),
        }
    }
    if let Some(g) = spec.geoip {
        for db in g.databases.iter().flatten() {
            cfg.geoip.databases.push(base.join(db.get_ref()));
        }
        cfg.geoip.asn = g.asn.map(|a| base.join(a.get_ref()));
        for (i, o) in g.overrides.iter().flatten().enumerate() {
            if let Some(ov) = location_override(&mut d, &format!("geoip.override[{i}]"), o) {
                cfg.geoip.overrides.push(ov);
            }
        }
    }
    if diags.error_count() > errors_before {
        None
    } else {
        Some(cfg)
    }
}

fn location_override(
    d: &mut FileDiags<'_>,
    key: &str,
    o: &Spanned<OverrideSpec>,
) -> Option<LocationOverride> {
    let spec = o.get_ref();
    let errors = d.error_count();
    let mut report = |span: std::ops::Range<usize>, field: &str, e: Invalid| {
        d.error(
            Some(span),
            format!("{key}.{field}"),
            e.message,
            Some(e.help),
        );
    };
    let network = parse_network(spec.network.get_ref())
        .map_err(|e| report(spec.network.span(), "network", e))
        .ok();
    let country = spec.country.as_ref().and_then(|c| {
        parse_country(c.get_ref())
            .map_err(|e| report(c.span(), "country", e))
            .ok()
    });
    let continent = spec.continent.as_ref().and_then(|c| {
        parse_continent(c.get_ref())
            .map_err(|e| report(c.span(), "continent", e))
            .ok()
    });
    let coord = spec.location.as_ref().and_then(|l| {
        parse_coord(l.get_ref())
            .map_err(|e| report(l.span(), "location", e))
            .ok()
    });
    if spec.asn == Some(0) {
        d.error(
            Some(o.span()),
            format!("{key}.asn"),
            "0 is not an AS number",
            Some("leave `asn` out to keep the database's AS number".into()),
        );
    }
    let subdivision = spec.subdivision.as_ref().and_then(|sub| {
        let text = sub.get_ref().to_ascii_uppercase();
        let valid = text.split_once('-').is_some_and(|(c, s)| {
            parse_country(c).is_ok()
                && (1..=3).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !valid {
            d.error(
                Some(sub.span()),
                format!("{key}.subdivision"),
                format!("{:?} is not an ISO 3166-2 subdivision code", sub.get_ref()),
                Some("write COUNTRY-SUBDIVISION, e.g. \"US-CA\"".into()),
            );
        }
        valid.then(|| text.into_boxed_str())
    });
    if d.error_count() > errors {
        return None;
    }
    let network = network?;
    if country.is_none()
        && continent.is_none()
        && coord.is_none()
        && subdivision.is_none()
        && spec.asn.is_none()
    {
        d.error(
            Some(o.span()),
            key,
            format!("override {network} says nothing about its clients"),
            Some("give at least one of location, country, continent, asn".into()),
        );
        return None;
    }
    let location = Location {
        city: None,
        country,
        continent,
        subdivision,
        coord,
        coord_is_centroid: false,
    }
    .complete();
    Some(LocationOverride {
        network,
        location,
        asn: spec.asn,
    })
}

/// The `[query_log]` section, checked.
fn query_log(d: &mut FileDiags<'_>, base: &Path, q: QueryLogSpec) -> Option<QueryLogConfig> {
    let mut out = QueryLogConfig {
        file: PathBuf::new(),
        sample_rate: 1.0,
        queue: DEFAULT_QUERY_LOG_QUEUE,
    };
    let mut ok = true;
    match q.file {
        Some(f) if !f.get_ref().is_empty() => out.file = base.join(f.get_ref()),
        Some(f) => {
            d.error(
                Some(f.span()),
                "query_log.file",
                "the file name is empty",
                Some("give a path, e.g. \"/var/log/meridian/queries.jsonl\"".into()),
            );
            ok = false;
        }
        None => {
            d.error(
                None,
                "query_log.file",
                "[query_log] has no `file`",
                Some("add file = \"/var/log/meridian/queries.jsonl\", or remove the section to log nothing".into()),
            );
            ok = false;
        }
    }
    if let Some(r) = q.sample_rate {
        let v = *r.get_ref();
        if v > 0.0 && v <= 1.0 {
            out.sample_rate = v;
        } else {
            d.error(
                Some(r.span()),
                "query_log.sample_rate",
                format!("{v} is outside (0, 1]"),
                Some("the fraction of queries to log: 1 for all, 0.01 for one in a hundred".into()),
            );
            ok = false;
        }
    }
    if let Some(n) = q.queue {
        match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=1_000_000).contains(&v) => out.queue = v,
            _ => {
                d.error(
                    Some(n.span()),
                    "query_log.queue",
                    format!("{} is outside 1..=1000000", n.get_ref()),
                    Some(format!(
                        "use {DEFAULT_QUERY_LOG_QUEUE} unless the writer is often behind"
                    )),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The `[xdp]` section, checked; `port` is the default (the first listen address's).
fn xdp(d: &mut FileDiags<'_>, x: XdpSpec, port: u16) -> Option<crate::xdp::XdpConfig> {
    let errors = d.error_count();
    let mut out = crate::xdp::XdpConfig {
        interfaces: Vec::new(),
        port,
    };
    for (i, v) in x.interfaces.iter().flatten().enumerate() {
        let text = v.get_ref();
        let (name, queue) = match text.split_once('@') {
            Some((n, q)) => (n, Some(q)),
            None => (text.as_str(), None),
        };
        let queue = match queue.map(str::parse::<u32>) {
            None => None,
            Some(Ok(q)) => Some(q),
            Some(Err(_)) => {
                d.error(
                    Some(v.span()),
                    format!("xdp.interfaces[{i}]"),
                    format!("`{text}`: the queue after @ is not a number"),
                    Some("write \"eth0\" for every queue or \"eth0@3\" for queue 3".into()),
                );
                continue;
            }
        };
        if name.is_empty() || name.len() >= 16 || name.contains(['/', ' ']) {
            d.error(
                Some(v.span()),
                format!("xdp.interfaces[{i}]"),
                format!("`{name}` is not an interface name"),
                Some("use the name `ip link` shows, e.g. \"eth0\"".into()),
            );
            continue;
        }
        out.interfaces.push((name.to_owned(), queue));
    }
    if out.interfaces.is_empty() && d.error_count() == errors {
        d.error(
            None,
            "xdp.interfaces",
            "[xdp] names no interface",
            Some(
                "add interfaces = [\"eth0\"], or remove the section to serve from sockets only"
                    .into(),
            ),
        );
    }
    if let Some(p) = &x.port {
        match u16::try_from(*p.get_ref()) {
            Ok(p) if p != 0 => out.port = p,
            _ => d.error(
                Some(p.span()),
                "xdp.port",
                format!("{} is not a UDP port", p.get_ref()),
                Some("the port DNS is served on, usually 53".into()),
            ),
        }
    }
    (d.error_count() == errors).then_some(out)
}

/// The `[cluster]` section, checked.
fn cluster(d: &mut FileDiags<'_>, c: ClusterSpec) -> Option<crate::cluster::ClusterConfig> {
    use crate::cluster::{ClusterConfig, Quorum};
    let errors = d.error_count();
    let mut out = ClusterConfig::default();
    for (i, e) in c.etcd.iter().flatten().enumerate() {
        let url = e.get_ref();
        if url.starts_with("https://") {
            d.error(
                Some(e.span()),
                format!("cluster.etcd[{i}]"),
                format!("{url:?}: TLS to etcd is not supported yet"),
                Some(
                    "use http:// on a private network, or an etcd gateway on this machine \
                     (etcd grpc-proxy) that speaks TLS to the members"
                        .into(),
                ),
            );
            continue;
        }
        match url.strip_prefix("http://") {
            Some(hostport) if !hostport.is_empty() && !hostport.contains('/') => {
                out.etcd.push(url.clone());
            }
            _ => d.error(
                Some(e.span()),
                format!("cluster.etcd[{i}]"),
                format!("{url:?} is not an etcd client URL"),
                Some("write \"http://10.0.0.11:2379\"".into()),
            ),
        }
    }
    if out.etcd.is_empty() && d.error_count() == errors {
        d.error(
            None,
            "cluster.etcd",
            "[cluster] names no etcd member",
            Some(
                "list the members' client URLs, e.g. etcd = [\"http://10.0.0.11:2379\"], or \
                 remove the section to run a single node"
                    .into(),
            ),
        );
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    match c.node {
        Some(n) if name_ok(n.get_ref()) => out.node = n.get_ref().clone(),
        Some(n) => d.error(
            Some(n.span()),
            "cluster.node",
            format!("{:?} is not a node name", n.get_ref()),
            Some("letters, digits, '-', '_' and '.', at most 63, e.g. \"ns1\"".into()),
        ),
        None => d.error(
            None,
            "cluster.node",
            "[cluster] needs this node's name",
            Some("add node = \"ns1\", unique within the fleet".into()),
        ),
    }
    if let Some(r) = c.region {
        if name_ok(r.get_ref()) {
            out.region = r.get_ref().clone();
        } else {
            d.error(
                Some(r.span()),
                "cluster.region",
                format!("{:?} is not a region name", r.get_ref()),
                Some("letters, digits, '-', '_' and '.', e.g. \"eu\"".into()),
            );
        }
    }
    if let Some(p) = c.prefix {
        let text = p.get_ref().trim_end_matches('/');
        if text.starts_with('/') && text.len() > 1 {
            out.prefix = text.to_owned();
        } else {
            d.error(
                Some(p.span()),
                "cluster.prefix",
                format!("{:?} is not a key prefix", p.get_ref()),
                Some("start it with '/', e.g. \"/meridian\"".into()),
            );
        }
    }
    if let Some(q) = c.quorum {
        match Quorum::parse(q.get_ref()) {
            Some(v) => out.quorum = v,
            None => d.error(
                Some(q.span()),
                "cluster.quorum",
                format!("{:?} is not a quorum rule", q.get_ref()),
                Some("use \"majority\", \"region_majority\", \"any\" or \"all\"".into()),
            ),
        }
    }
    if let Some(p) = c.probers {
        match usize::try_from(*p.get_ref()) {
            Ok(v) if v <= 64 => out.probers = v,
            _ => d.error(
                Some(p.span()),
                "cluster.probers",
                format!("{} is outside 0..=64", p.get_ref()),
                Some("2 or 3 probers per target; 0 has every node probe everything".into()),
            ),
        }
    }
    if let Some(t) = c.lease_ttl {
        match t.get_ref().0 {
            2..=300 => out.lease_ttl = Duration::from_secs(t.get_ref().0),
            other => d.error(
                Some(t.span()),
                "cluster.lease_ttl",
                format!("{other} s is outside 2 s to 5 min"),
                Some("a few seconds, e.g. \"5s\": how long a dead node's votes stay".into()),
            ),
        }
    }
    if let Some(t) = c.isolated_after {
        match t.get_ref().0 {
            1..=86_400 => out.isolated_after = Duration::from_secs(t.get_ref().0),
            other => d.error(
                Some(t.span()),
                "cluster.isolated_after",
                format!("{other} s is outside 1 s to 1 day"),
                Some("e.g. \"30s\"".into()),
            ),
        }
    }
    (d.error_count() == errors).then_some(out)
}

/// An integer setting of `[rrl]` within `range`, or an error naming it.
fn int(
    d: &mut FileDiags<'_>,
    v: &Spanned<i64>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    help: &str,
) -> Option<i64> {
    let n = *v.get_ref();
    if range.contains(&n) {
        return Some(n);
    }
    d.error(
        Some(v.span()),
        format!("rrl.{key}"),
        format!("{n} is outside {}..={}", range.start(), range.end()),
        Some(help.into()),
    );
    None
}

/// The `[rrl]` section, checked.
fn rrl(d: &mut FileDiags<'_>, r: RrlSpec) -> Option<RrlConfig> {
    let mut out = RrlConfig {
        responses_per_second: 0,
        window: Duration::from_secs(15),
        slip: 2,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        exempt: Vec::new(),
        table_size: 100_000,
    };
    let errors = d.error_count();
    match &r.responses_per_second {
        Some(v) => {
            if let Some(n) = int(
                d,
                v,
                "responses_per_second",
                1..=1_000_000,
                "BIND and Knot suggest 5 to 20",
            ) {
                out.responses_per_second = n as u32;
            }
        }
        None => d.error(
            None,
            "rrl.responses_per_second",
            "[rrl] has no `responses_per_second`",
            Some("add responses_per_second = 20, or remove the section to limit nothing".into()),
        ),
    }
    if let Some(v) = &r.slip {
        if let Some(n) = int(
            d,
            v,
            "slip",
            0..=10,
            "2 sends every second limited reply as TC=1; 0 drops them all",
        ) {
            out.slip = n as u8;
        }
    }
    if let Some(v) = &r.ipv4_prefix {
        if let Some(n) = int(d, v, "ipv4_prefix", 0..=32, "24 groups clients by /24") {
            out.ipv4_prefix = n as u8;
        }
    }
    if let Some(v) = &r.ipv6_prefix {
        if let Some(n) = int(d, v, "ipv6_prefix", 0..=128, "56 groups clients by /56") {
            out.ipv6_prefix = n as u8;
        }
    }
    if let Some(v) = &r.table_size {
        if let Some(n) = int(
            d,
            v,
            "table_size",
            4..=10_000_000,
            "8 bytes an entry; 100000 is 800 kB",
        ) {
            out.table_size = n as usize;
        }
    }
    if let Some(w) = &r.window {
        match w.get_ref().0 {
            1..=3600 => out.window = Duration::from_secs(w.get_ref().0),
            other => d.error(
                Some(w.span()),
                "rrl.window",
                format!("{other} s is outside 1 s to 1 h"),
                Some("a few seconds, e.g. \"15s\"".into()),
            ),
        }
    }
    for (i, n) in r.exempt.iter().flatten().enumerate() {
        match parse_network(n.get_ref()) {
            Ok(net) => out.exempt.push(net),
            Err(e) => d.error(
                Some(n.span()),
                format!("rrl.exempt[{i}]"),
                e.message,
                Some(e.help),
            ),
        }
    }
    (d.error_count() == errors).then_some(out)
}

/// Query log entries waiting for the writer, by default (about 2.6 MB).
pub const DEFAULT_QUERY_LOG_QUEUE: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<ServerConfig>, String) {
        let mut diags = Diagnostics::new();
        let c = parse(Path::new("/etc/meridian/meridian.toml"), text, &mut diags);
        (c, diags.render())
    }

    #[test]
    fn empty_file_gives_defaults_with_paths_from_its_directory() {
        let (c, out) = parse_str("");
        assert_eq!(out, "");
        let c = c.unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:5300".parse().unwrap()]);
        assert_eq!(c.max_udp_payload, 1232);
        assert!(c.watch);
        assert_eq!(c.reload_check, None);
        assert_eq!(c.reload_poll(true), RELOAD_POLL_WATCHED);
        assert_eq!(c.reload_poll(false), RELOAD_POLL_UNWATCHED);
        let (c, _) = parse_str("watch = false\nreload_check = \"1h\"\n");
        let c = c.unwrap();
        assert!(!c.watch);
        assert_eq!(c.reload_poll(true), Duration::from_secs(3600));
        let (c, _) = parse_str("zones_dir = \"z\"\n");
        assert_eq!(c.unwrap().zones_dir, PathBuf::from("/etc/meridian/z"));
    }

    #[test]
    fn every_bad_value_is_reported() {
        let (c, out) = parse_str(
            "listen = [\"127.0.0.1\", \"[::1]:53\"]\nmax_udp_payload = 100\n[tcp]\nmax_connections = 0\n",
        );
        assert!(c.is_none());
        assert_eq!(
            out,
            "error: /etc/meridian/meridian.toml:1:11: listen[0]: \"127.0.0.1\" is not an address and port\n  help: write \"127.0.0.1:5300\" or \"[::1]:5300\"\n\
             error: /etc/meridian/meridian.toml:2:19: max_udp_payload: 100 is outside 512..=65535\n  help: use 1232 unless you know your paths carry more\n\
             error: /etc/meridian/meridian.toml:4:19: tcp.max_connections: 0 is outside 1..=1000000\n  help: use a few hundred, e.g. 512\n"
        );
    }

    #[test]
    fn every_listed_key_is_a_section_the_parser_reads() {
        for key in CONFIG_KEYS {
            let (_, out) = parse_str(&format!("{key} = 0\n"));
            assert!(!out.contains("unknown key"), "{key}: {out}");
        }
    }

    #[test]
    fn metrics_counting_is_on_unless_turned_off() {
        assert!(parse_str("").0.unwrap().metrics);
        assert!(!parse_str("[metrics]\nenabled = false\n").0.unwrap().metrics);
        let (c, out) = parse_str("[metrics]\nenabled = 1\n");
        assert!(c.is_none());
        assert!(
            out.contains(":2:11: metrics: invalid type: integer `1`, expected a boolean"),
            "{out}"
        );
    }

    #[test]
    fn the_query_log_needs_a_file_and_a_rate_in_range() {
        assert_eq!(parse_str("").0.unwrap().query_log, None);
        let (c, out) = parse_str("[query_log]\nfile = \"q.jsonl\"\nsample_rate = 0.25\n");
        assert_eq!(out, "");
        assert_eq!(
            c.unwrap().query_log,
            Some(QueryLogConfig {
                file: PathBuf::from("/etc/meridian/q.jsonl"),
                sample_rate: 0.25,
                queue: DEFAULT_QUERY_LOG_QUEUE,
            })
        );
        let (c, out) = parse_str("[query_log]\nsample_rate = 1.5\nqueue = 0\n");
        assert!(c.is_none());
        assert!(
            out.contains("query_log.file: [query_log] has no `file`"),
            "{out}"
        );
        assert!(
            out.contains(":2:15: query_log.sample_rate: 1.5 is outside (0, 1]"),
            "{out}"
        );
        assert!(
            out.contains(":3:9: query_log.queue: 0 is outside 1..=1000000"),
            "{out}"
        );
    }

    #[test]
    fn rate_limiting_is_off_unless_configured_and_checked() {
        assert_eq!(parse_str("").0.unwrap().rrl, None);
        let (c, out) = parse_str("[rrl]\nresponses_per_second = 20\n");
        assert_eq!(out, "");
        assert_eq!(
            c.unwrap().rrl,
            Some(RrlConfig {
                responses_per_second: 20,
                window: Duration::from_secs(15),
                slip: 2,
                ipv4_prefix: 24,
                ipv6_prefix: 56,
                exempt: Vec::new(),
                table_size: 100_000,
            })
        );
        let (c, out) = parse_str(
            "[rrl]\nresponses_per_second = 5\nwindow = \"2s\"\nslip = 0\nipv4_prefix = 32\n\
             ipv6_prefix = 64\nexempt = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ntable_size = 1000\n",
        );
        assert_eq!(out, "");
        let r = c.unwrap().rrl.unwrap();
        assert_eq!(
            (
                r.responses_per_second,
                r.window,
                r.slip,
                r.ipv4_prefix,
                r.ipv6_prefix,
                r.table_size
            ),
            (5, Duration::from_secs(2), 0, 32, 64, 1000)
        );
        assert_eq!(
            r.exempt,
            [
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ]
        );
    }

    #[test]
    fn every_bad_rate_limiting_value_is_reported_with_its_position() {
        let (c, out) = parse_str(
            "[rrl]\nwindow = \"0s\"\nslip = 11\nipv4_prefix = 33\nipv6_prefix = -1\n\
             exempt = [\"10.0.0.1/8\", \"nope\"]\ntable_size = 0\n",
        );
        assert!(c.is_none());
        assert_eq!(
            out,
            "error: /etc/meridian/meridian.toml: rrl.responses_per_second: [rrl] has no `responses_per_second`\n  \
             help: add responses_per_second = 20, or remove the section to limit nothing\n\
             error: /etc/meridian/meridian.toml:2:10: rrl.window: 0 s is outside 1 s to 1 h\n  help: a few seconds, e.g. \"15s\"\n\
             error: /etc/meridian/meridian.toml:3:8: rrl.slip: 11 is outside 0..=10\n  \
             help: 2 sends every second limited reply as TC=1; 0 drops them all\n\
             error: /etc/meridian/meridian.toml:4:15: rrl.ipv4_prefix: 33 is outside 0..=32\n  help: 24 groups clients by /24\n\
             error: /etc/meridian/meridian.toml:5:15: rrl.ipv6_prefix: -1 is outside 0..=128\n  help: 56 groups clients by /56\n\
             error: /etc/meridian/meridian.toml:6:11: rrl.exempt[0]: \"10.0.0.1/8\" has address bits set past its prefix length\n  \
             help: did you mean \"10.0.0.0/8\"?\n\
             error: /etc/meridian/meridian.toml:6:25: rrl.exempt[1]: \"nope\" is not a network\n  \
             help: write an address and prefix length, e.g. \"192.0.2.0/24\" or \"2001:db8::/32\"\n\
             error: /etc/meridian/meridian.toml:7:14: rrl.table_size: 0 is outside 4..=10000000\n  help: 8 bytes an entry; 100000 is 800 kB\n"
        );
        let (c, out) = parse_str("[rrl]\nresponses_per_second = 0\nrate = 5\n");
        assert!(c.is_none());
        assert!(out.contains("rrl: unknown key `rate`"), "{out}");
    }

    #[test]
    fn reads_need_no_token_unless_configured() {
        assert!(!parse_str("").0.unwrap().api.read_requires_token);
        let on = parse_str("[api]\nread_requires_token = true\n").0.unwrap();
        assert!(on.api.read_requires_token);
        let (c, out) = parse_str("[api]\nread_requires_token = \"yes\"\n");
        assert!(c.is_none());
        assert!(
            out.contains(":2:23: api: invalid type: string \"yes\", expected a boolean"),
            "{out}"
        );
        // A misspelt key is still reported, with the keys the section has.
        let (c, out) = parse_str("[api]\nread_require_token = true\n");
        assert!(c.is_none());
        assert_eq!(
            out,
            "error: /etc/meridian/meridian.toml:2:1: api: unknown key `read_require_token`\n  \
             help: did you mean `read_requires_token`?\n"
        );
    }

    #[test]
    fn cluster_settings_are_checked_and_default_sensibly() {
        let (c, out) = parse_str(
            "[cluster]\netcd = [\"http://10.0.0.11:2379\", \"http://etcd.example:2379\"]\n\
             node = \"ns1\"\nregion = \"eu\"\nquorum = \"region_majority\"\nprobers = 2\n\
             isolated_after = \"1m\"\nprefix = \"/gslb/\"\n",
        );
        let c = c.unwrap_or_else(|| panic!("{out}")).cluster.unwrap();
        assert_eq!(c.etcd.len(), 2);
        assert_eq!((c.node.as_str(), c.region.as_str()), ("ns1", "eu"));
        assert_eq!(c.quorum, crate::cluster::Quorum::RegionMajority);
        assert_eq!(c.probers, 2);
        assert_eq!(c.isolated_after, Duration::from_secs(60));
        assert_eq!(c.lease_ttl, Duration::from_secs(5), "default");
        assert_eq!(c.prefix, "/gslb", "no trailing slash");
        assert_eq!(c.key("nodes/ns1"), "/gslb/nodes/ns1");

        let (c, out) = parse_str(
            "[cluster]\netcd = [\"10.0.0.11:2379\", \"https://e:2379\"]\nnode = \"ns 1\"\nquorum = \"most\"\n\
             probers = -1\nprefix = \"meridian\"\nlease_ttl = \"1s\"\n",
        );
        assert!(c.is_none());
        for want in [
            "cluster.etcd[0]: \"10.0.0.11:2379\" is not an etcd client URL",
            "cluster.etcd[1]: \"https://e:2379\": TLS to etcd is not supported yet",
            "cluster.node: \"ns 1\" is not a node name",
            "cluster.quorum: \"most\" is not a quorum rule",
            "cluster.probers: -1 is outside 0..=64",
            "cluster.prefix: \"meridian\" is not a key prefix",
            "cluster.lease_ttl: 1 s is outside 2 s to 5 min",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        let (c, out) = parse_str("[cluster]\netcd = [\"http://10.0.0.11:2379\"]\n");
        assert!(c.is_none());
        assert!(out.contains("[cluster] needs this node's name"), "{out}");
        assert!(
            parse_str("").0.unwrap().cluster.is_none(),
            "a single node by default"
        );
    }

    #[test]
    fn xdp_interfaces_queues_and_port() {
        let (c, out) =
            parse_str("listen = [\"0.0.0.0:5300\"]\n[xdp]\ninterfaces = [\"eth0\", \"eth1@3\"]\n");
        assert_eq!(
            c.unwrap().xdp,
            Some(crate::xdp::XdpConfig {
                interfaces: vec![("eth0".into(), None), ("eth1".into(), Some(3))],
                port: 5300,
            }),
            "{out}"
        );
        let (c, _) = parse_str("[xdp]\ninterfaces = [\"eth0\"]\nport = 53\n");
        assert_eq!(c.unwrap().xdp.unwrap().port, 53);
        let (c, out) = parse_str("[xdp]\ninterfaces = [\"eth0@x\", \"a/b\"]\nport = 70000\n");
        assert!(c.is_none());
        for want in [
            "xdp.interfaces[0]: `eth0@x`: the queue after @ is not a number",
            "xdp.interfaces[1]: `a/b` is not an interface name",
            "xdp.port: 70000 is not a UDP port",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        let (c, out) = parse_str("[xdp]\n");
        assert!(c.is_none());
        assert!(out.contains("[xdp] names no interface"), "{out}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_position() {
        let (c, out) = parse_str("zone_dir = \"z\"\n");
        assert!(c.is_none());
        assert!(
            out.starts_with("error: /etc/meridian/meridian.toml:1:1: zone_dir: unknown key `zone_dir`\n  help: did you mean `zones_dir`?"),
            "{out}"
        );
    }
}
