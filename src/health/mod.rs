//! Health checks: which GSLB addresses are fit to be answered.
//!
//! A zone declares checks per data center (applied to each of its addresses) or per address;
//! the validator turns them into [`Check`]s. The compiler asks the [`Registry`] for one
//! [`TargetHealth`] per (check, address) and keeps the `Arc` in the snapshot; the query path
//! calls [`TargetHealth::is_up`], two relaxed atomic loads, no lock.
//!
//! ```text
//! zone::validate ─▶ Check ─▶ Registry::target(check, addr) ─▶ Arc<TargetHealth> in Snapshot
//!                                  │                                   ▲ is_up() (lock-free)
//!                                  └─ one task per distinct key: probe ─▶ hysteresis ─┘
//! ```
//!
//! Identical checks (same address, every field of the [`Check`] equal) used by several
//! names or zones share one `TargetHealth` and one probe task. After a reload,
//! [`Registry::retain`] with the new snapshot's keys cancels the probes nothing uses any more.
//!
//! - [`hysteresis`]: rise/fall thresholds, pure.
//! - [`probe`]: one TCP connect or HTTP(S) GET, every failure a [`ProbeError`].
//! - [`target`]: the shared health of one target: state, admin override, detail, flapping.
//! - [`registry`]: deduplication and the probe loops (interval, jitter, timeout).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub mod admin;
pub mod hysteresis;
pub mod load;
pub mod probe;
pub mod registry;
pub mod table;
pub mod target;

#[cfg(test)]
mod test_support;

pub use admin::{
    Admin, OverrideDetail, OverrideError, OverrideKey, OverrideMeta, Overrides, parse_admin,
    unix_now,
};
pub use load::{LoadRegistry, LoadSignal, LoadState};
pub use probe::ProbeError;
pub use registry::{Key, Registry};
pub use table::{HealthId, HealthTable, LoadId, TableFull, Word};
pub use target::{Detail, FLAP_MAX_CHANGES, FLAP_WINDOW_INTERVALS, Observation, TargetHealth};

/// Where the compiler finds health and overrides: one table, the probes that write its
/// address slots, and the operators' overrides.
#[derive(Clone)]
pub struct HealthSources {
    /// Probe states, one per (check, address), kept in the registry's table.
    pub registry: std::sync::Arc<Registry>,
    /// Operator overrides, kept in the same table.
    pub overrides: std::sync::Arc<Overrides>,
    /// Load signals, whose shedding is kept in the same table.
    pub loads: std::sync::Arc<LoadRegistry>,
}

impl HealthSources {
    /// A table with overrides read from `state_file` (`None`: in memory only).
    pub fn new(state_file: Option<&std::path::Path>) -> Result<Self, OverrideError> {
        let registry = Registry::new();
        let overrides = Overrides::load(state_file, registry.table().clone())?;
        let loads = LoadRegistry::new(registry.table().clone());
        Ok(Self {
            registry,
            overrides,
            loads,
        })
    }

    /// The table both write and the query path reads.
    pub fn table(&self) -> &std::sync::Arc<HealthTable> {
        self.registry.table()
    }
}

/// A validated health check: what to probe and how often. The zone validator builds it.
///
/// Part of the deduplication key, so every field matters: two checks that differ only in
/// `rise` are different checks with different states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Check {
    /// What one probe does.
    pub kind: CheckKind,
    /// Time between the starts of two probes (before jitter).
    pub interval: Duration,
    /// Limit on one whole probe (connect, TLS, request, body). Keep it below `interval`.
    pub timeout: Duration,
    /// Successes in a row for a down target to come up (≥ 1).
    pub rise: u32,
    /// Failures in a row for an up target to go down (≥ 1).
    pub fall: u32,
    /// Each probe starts up to this much (uniformly random) after its slot, so targets
    /// added together do not probe in lockstep; zero fires exactly on the interval.
    pub jitter: Duration,
    /// What to assume before enough results are in.
    pub initial: InitialState,
}

/// What one probe does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// Success is a completed TCP handshake; the connection is closed at once.
    Tcp {
        /// Port to connect to.
        port: u16,
    },
    /// An HTTP/1.1 GET; success is an expected status (and body substring, if set).
    Http {
        /// HTTPS instead of HTTP.
        tls: bool,
        /// Port to connect to.
        port: u16,
        /// Request path with query, starting with `/`.
        path: String,
        /// `Host` header; default: the address (HTTP) or the TLS name (HTTPS).
        host: Option<String>,
        /// Accepted status codes; empty means 200..=399. Redirects are never followed.
        expect: Vec<u16>,
        /// The first 64 KiB of the body must contain this.
        body_contains: Option<String>,
        /// Verify the certificate chain and name (HTTPS). On unless the operator opts out.
        verify_tls: bool,
        /// TLS server name (SNI, and the name the certificate must match); default: `host`.
        /// Without either, no SNI is sent and the certificate must match the address.
        sni: Option<String>,
    },
}

/// What a target is assumed to be before its results say otherwise.
/// See [`hysteresis`] for the exact rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InitialState {
    /// Up; goes down after `fall` failures in a row (the first result counts).
    #[default]
    Up,
    /// Down; comes up after `rise` successes in a row (the first result counts).
    Down,
    /// Up until the first result, which sets the state at once; then `rise`/`fall` apply.
    FirstResult,
}

impl CheckKind {
    /// The port probed.
    pub fn port(&self) -> u16 {
        match *self {
            CheckKind::Tcp { port } | CheckKind::Http { port, .. } => port,
        }
    }
}

/// `tcp connect`, `https GET /health`: how checks are named in logs and `explain`.
impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckKind::Tcp { .. } => f.write_str("tcp connect"),
            CheckKind::Http { tls, path, .. } => {
                write!(f, "{} GET {path}", if *tls { "https" } else { "http" })
            }
        }
    }
}

/// `192.0.2.10:443 (https GET /health)`: one target in logs.
pub(crate) fn describe(kind: &CheckKind, addr: IpAddr) -> String {
    format!("{} ({kind})", SocketAddr::new(addr, kind.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_targets() {
        let http = CheckKind::Http {
            tls: true,
            port: 443,
            path: "/health".into(),
            host: None,
            expect: vec![],
            body_contains: None,
            verify_tls: true,
            sni: None,
        };
        assert_eq!(
            describe(&http, "192.0.2.10".parse().unwrap()),
            "192.0.2.10:443 (https GET /health)"
        );
        assert_eq!(
            describe(&CheckKind::Tcp { port: 25 }, "2001:db8::1".parse().unwrap()),
            "[2001:db8::1]:25 (tcp connect)"
        );
    }
}
