//! One [`TargetHealth`] and one probe loop per distinct (check, address).
//!
//! # Loop timing
//! Probes run on a fixed grid of slots `interval` apart; each probe starts a uniformly
//! random delay in `[0, jitter]` after its slot. The delay is drawn anew every round and is
//! not carried into the next slot, so the mean rate stays exactly one probe per interval
//! while targets created together (a reload adds hundreds at once) spread out instead of
//! hitting shared links and servers in lockstep. The first probe runs at slot 0, i.e. within
//! `jitter` of the target's creation (or of [`Registry::start`]). A probe that overruns its
//! slot (timeout longer than interval) delays the next one instead of causing a burst.
//!
//! Each probe runs in its own task under the check's timeout; a panic in it is recorded as
//! a failure ([`ProbeError::Internal`]) and the loop goes on. Aborting a loop aborts its
//! in-flight probe.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use super::probe::{Clients, Probe, client_key};
use super::table::{HealthTable, TableFull};
use super::{Check, ProbeError, TargetHealth};
use crate::metrics::events::events;

/// What identifies a target: identical keys share one health and one probe loop.
pub type Key = (Check, IpAddr);

/// Loops never spin faster than this, whatever the check says (the validator should
/// enforce a saner minimum).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Hands out one [`TargetHealth`] per (check, address) and runs one probe loop per key.
pub struct Registry {
    table: Arc<HealthTable>,
    inner: Mutex<Inner>,
    shared: Arc<Shared>,
}

/// What the probe loops share with the registry (never the registry itself, so dropping
/// the last `Arc<Registry>` stops everything).
#[derive(Default)]
struct Shared {
    clients: Clients,
    /// Woken whenever a target gets its first result or targets are removed.
    first: Notify,
    /// Woken (one permit kept) whenever a target is added or removed, gets its first
    /// result or changes state: what the fleet's verdicts follow.
    changed: Notify,
}

struct Inner {
    targets: HashMap<Key, Entry>,
    /// Set by [`Registry::start`]; loops are spawned on it.
    runtime: Option<Handle>,
}

struct Entry {
    health: Arc<TargetHealth>,
    task: Option<AbortHandle>,
}

impl Registry {
    /// An empty registry; nothing is probed until [`Self::start`].
    pub fn new() -> Arc<Self> {
        Self::with_table(HealthTable::new(HealthTable::DEFAULT_CAPACITY))
    }

    /// An empty registry whose targets keep their state in `table`.
    pub fn with_table(table: Arc<HealthTable>) -> Arc<Self> {
        Arc::new(Self {
            table,
            inner: Mutex::new(Inner {
                targets: HashMap::new(),
                runtime: None,
            }),
            shared: Arc::default(),
        })
    }

    /// Gets or creates the shared health of a target. A new target starts in its initial
    /// state and, once [`Self::start`] was called, is probed at once.
    pub fn target(&self, check: &Check, addr: IpAddr) -> Result<Arc<TargetHealth>, TableFull> {
        let mut inner = self.lock();
        let key = (check.clone(), addr);
        if let Some(entry) = inner.targets.get(&key) {
            return Ok(entry.health.clone());
        }
        let id = self.table.address_slot(Some(check), addr)?;
        let health = Arc::new(TargetHealth::in_table(
            check.clone(),
            addr,
            self.table.clone(),
            id,
        ));
        let task = inner
            .runtime
            .as_ref()
            .map(|rt| spawn_loop(rt, &health, &self.shared));
        inner.targets.insert(
            key,
            Entry {
                health: health.clone(),
                task,
            },
        );
        self.shared.changed.notify_one();
        Ok(health)
    }

    /// The table the targets keep their state in.
    pub fn table(&self) -> &Arc<HealthTable> {
        &self.table
    }

    /// The health of a target if it is registered (for `explain` and admin commands).
    pub fn get(&self, check: &Check, addr: IpAddr) -> Option<Arc<TargetHealth>> {
        self.lock()
            .targets
            .get(&(check.clone(), addr))
            .map(|e| e.health.clone())
    }

    /// Every registered target, in no particular order.
    pub fn targets(&self) -> Vec<Arc<TargetHealth>> {
        self.lock()
            .targets
            .values()
            .map(|e| e.health.clone())
            .collect()
    }

    /// Number of registered targets (= probe loops once started).
    pub fn len(&self) -> usize {
        self.lock().targets.len()
    }

    /// Whether no target is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts the probe loops on the current tokio runtime; targets added later start at
    /// once. Calling it again does nothing.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) {
        let rt = Handle::current();
        let mut inner = self.lock();
        if inner.runtime.is_some() {
            return;
        }
        for entry in inner.targets.values_mut() {
            entry.task = Some(spawn_loop(&rt, &entry.health, &self.shared));
        }
        tracing::debug!("health: probing {} targets", inner.targets.len());
        inner.runtime = Some(rt);
    }

    /// Keeps only `keys` registered and probing: call after a reload with every key the new
    /// snapshot uses. The others stop probing; their `TargetHealth`, still held by an old
    /// snapshot, keeps its last state. Serialize with reloads: a target created by a
    /// concurrent load and not in `keys` is dropped too.
    pub fn retain(&self, keys: &HashSet<Key>) {
        let mut inner = self.lock();
        inner.targets.retain(|key, entry| {
            let keep = keys.contains(key);
            if !keep {
                if let Some(task) = &entry.task {
                    task.abort();
                }
                tracing::debug!("stopped probing target {}", entry.health.label());
            }
            keep
        });
        let used: HashSet<_> = inner
            .targets
            .keys()
            .filter_map(|(check, addr)| client_key(&check.kind, *addr))
            .collect();
        self.shared.clients.retain(|k| used.contains(k));
        drop(inner);
        self.shared.first.notify_waiters();
        self.shared.changed.notify_one();
    }

    /// Probes only the targets `wanted` says yes to (in a fleet, the ones assigned to this
    /// node): stops the others' loops and starts loops that are missing. Does nothing
    /// before [`Self::start`]. A target that stops being probed forgets its results
    /// ([`TargetHealth::forget`]); the health table keeps what it says.
    pub fn probe_only(&self, wanted: impl Fn(&Key) -> bool) {
        let mut inner = self.lock();
        let Some(rt) = inner.runtime.clone() else {
            return;
        };
        for (key, entry) in &mut inner.targets {
            match (wanted(key), &entry.task) {
                (true, None) => entry.task = Some(spawn_loop(&rt, &entry.health, &self.shared)),
                (false, Some(task)) => {
                    task.abort();
                    entry.task = None;
                    entry.health.forget();
                    tracing::debug!("not probing {}: assigned to others", entry.health.label());
                }
                _ => {}
            }
        }
    }

    /// Whether this node runs a probe loop for `key`.
    pub fn is_probing(&self, key: &Key) -> bool {
        self.lock()
            .targets
            .get(key)
            .is_some_and(|e| e.task.is_some())
    }

    /// Waits until a target is added or removed or one's state changes (a change since
    /// the last call counts).
    pub async fn changed(&self) {
        self.shared.changed.notified().await;
    }

    /// Waits until every registered target has had its first result, or `timeout`; returns
    /// how many are still without one. Meant for startup, before serving, so answers
    /// reflect probed health from the first query (most useful with
    /// [`super::InitialState::FirstResult`] or thresholds of 1).
    pub async fn first_round(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.first.notified();
            tokio::pin!(notified);
            // Register before counting, so a result landing in between still wakes us.
            notified.as_mut().enable();
            let pending = self.pending();
            if pending == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending();
            }
        }
    }

    fn pending(&self) -> usize {
        self.lock()
            .targets
            .values()
            .filter(|e| !e.health.has_result())
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        for entry in inner.targets.values() {
            if let Some(task) = &entry.task {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("targets", &self.len())
            .finish_non_exhaustive()
    }
}

fn spawn_loop(rt: &Handle, health: &Arc<TargetHealth>, shared: &Arc<Shared>) -> AbortHandle {
    let probe = Arc::new(Probe::new(
        &health.check().kind,
        health.addr(),
        &shared.clients,
    ));
    rt.spawn(probe_loop(health.clone(), probe, shared.clone()))
        .abort_handle()
}

async fn probe_loop(health: Arc<TargetHealth>, probe: Arc<Probe>, shared: Arc<Shared>) {
    let interval = health.check().interval.max(MIN_INTERVAL);
    let timeout = health.check().timeout;
    let jitter = health.check().jitter;
    // The check as a metric label: what it does and where, without the address, so series
    // stay one per check rather than one per target.
    let kind = &health.check().kind;
    let metric_label = format!("{kind} port {}", kind.port());
    let mut slot = Instant::now();
    loop {
        tokio::time::sleep_until(slot + random_delay(jitter)).await;
        let started = Instant::now();
        let probe = probe.clone();
        let result = isolated(async move { probe.run(timeout).await }).await;
        let first = !health.has_result();
        let took = started.elapsed();
        let transition = health.record(result.as_ref().map(|_| ()), took);
        if first || transition.is_some() {
            shared.changed.notify_one();
        }
        events().probe(
            &metric_label,
            took,
            result.as_ref().err().map(ProbeError::reason),
        );
        if first {
            shared.first.notify_waiters();
        }
        slot = (slot + interval).max(Instant::now());
    }
}

/// Runs one probe in its own task: a panic becomes a failure instead of ending the loop.
async fn isolated<F>(probe: F) -> Result<(), ProbeError>
where
    F: Future<Output = Result<(), ProbeError>> + Send + 'static,
{
    match AbortOnDrop(tokio::spawn(probe)).join().await {
        Ok(result) => result,
        Err(e) => Err(ProbeError::Internal(e.to_string())),
    }
}

/// Uniform in `[0, max]`.
fn random_delay(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// A task that is aborted when its owner goes away (the loop aborted mid-probe).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::test_support::{HttpServer, http, refused_port, wait_until};
    use crate::health::{Admin, CheckKind, InitialState};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn check(kind: CheckKind, rise: u32, fall: u32, initial: InitialState) -> Check {
        Check {
            kind,
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            rise,
            fall,
            jitter: Duration::from_millis(10),
            initial,
        }
    }

    const WAIT: Duration = Duration::from_secs(3);

    #[tokio::test]
    async fn rise_and_fall_through_the_loop() {
        let server = HttpServer::start().await;
        let registry = Registry::new();
        registry.start();
        let t = registry
            .target(&check(http(server.port()), 2, 3, InitialState::Up), LOCAL)
            .unwrap();
        assert!(registry.first_round(WAIT).await == 0);
        assert!(t.is_up());

        // Each poll reads one consistent detail: never down before `fall` failures, never
        // back up before `rise` successes.
        server.set_status(503);
        let went_down = wait_until(WAIT, || {
            let d = t.detail();
            assert!(
                d.probe_up || d.failures_in_a_row >= 3,
                "down too early: {d:?}"
            );
            !d.probe_up
        });
        assert!(went_down.await, "never went down");
        let d = t.detail();
        assert!(!t.is_up());
        assert_eq!(
            d.last.unwrap().error.as_deref(),
            Some("unexpected status 503")
        );

        server.set_status(200);
        let came_back = wait_until(WAIT, || {
            let d = t.detail();
            assert!(
                !d.probe_up || d.successes_in_a_row >= 2,
                "up too early: {d:?}"
            );
            d.probe_up
        });
        assert!(came_back.await, "never came back");
    }

    #[tokio::test]
    async fn initial_down_needs_rise_successes() {
        let server = HttpServer::start().await;
        let registry = Registry::new();
        let t = registry
            .target(&check(http(server.port()), 3, 1, InitialState::Down), LOCAL)
            .unwrap();
        registry.start();
        assert!(!t.is_up());
        assert!(wait_until(WAIT, || t.is_up()).await);
        assert_eq!(t.detail().successes_in_a_row, 3);
    }

    #[tokio::test]
    async fn first_result_decides_at_once() {
        let port = refused_port().await;
        let registry = Registry::new();
        registry.start();
        let t = registry
            .target(
                &check(CheckKind::Tcp { port }, 2, 5, InitialState::FirstResult),
                LOCAL,
            )
            .unwrap();
        assert!(t.is_up(), "up until the first result");
        assert_eq!(registry.first_round(WAIT).await, 0);
        assert!(!t.is_up());
        assert_eq!(
            t.detail().last.unwrap().error.as_deref(),
            Some("connection refused")
        );
    }

    #[tokio::test]
    async fn identical_keys_share_one_target_and_one_loop() {
        let server = HttpServer::start().await;
        let registry = Registry::new();
        registry.start();
        let s = check(http(server.port()), 1, 1, InitialState::Up);
        let a = registry.target(&s, LOCAL).unwrap();
        let b = registry.target(&s.clone(), LOCAL).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(registry.len(), 1);
        // A different path, port or address is another target.
        let mut other = s.clone();
        if let CheckKind::Http { path, .. } = &mut other.kind {
            *path = "/other".into();
        }
        assert!(!Arc::ptr_eq(&a, &registry.target(&other, LOCAL).unwrap()));
        assert_eq!(registry.len(), 2);
        assert!(registry.get(&s, LOCAL).is_some_and(|t| Arc::ptr_eq(&t, &a)));

        // One loop per key: two keys at 100 ms make about 20 requests a second, not 30+.
        let started = Instant::now();
        let hits = server.hits();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let per_key = (server.hits() - hits) as f64 / 2.0;
        let expected = started.elapsed().as_secs_f64() / 0.1;
        assert!(
            per_key <= expected + 2.0,
            "{per_key} probes per key in {expected} intervals"
        );
        assert!(
            per_key >= expected / 2.0,
            "{per_key} probes per key in {expected} intervals"
        );
    }

    #[tokio::test]
    async fn retain_stops_probing() {
        let kept_server = HttpServer::start().await;
        let gone_server = HttpServer::start().await;
        let registry = Registry::new();
        registry.start();
        let kept_check = check(http(kept_server.port()), 1, 1, InitialState::Up);
        let gone_check = check(http(gone_server.port()), 1, 1, InitialState::Up);
        let kept = registry.target(&kept_check, LOCAL).unwrap();
        let gone = registry.target(&gone_check, LOCAL).unwrap();
        assert_eq!(registry.first_round(WAIT).await, 0);

        registry.retain(&HashSet::from([(kept_check.clone(), LOCAL)]));
        assert_eq!(registry.len(), 1);
        assert!(registry.get(&gone_check, LOCAL).is_none());
        // At most the probe in flight may still land.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let gone_hits = gone_server.hits();
        let kept_hits = kept_server.hits();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(gone_server.hits(), gone_hits, "a retired target was probed");
        assert!(kept_server.hits() > kept_hits, "a kept target stopped");
        // The retired health keeps its last state for whoever still holds it.
        assert!(gone.is_up() && kept.is_up());
        // Asking again creates a fresh target.
        let again = registry.target(&gone_check, LOCAL).unwrap();
        assert!(!Arc::ptr_eq(&again, &gone));
    }

    #[tokio::test]
    async fn dropping_the_registry_stops_probing() {
        let server = HttpServer::start().await;
        let registry = Registry::new();
        registry.start();
        registry
            .target(&check(http(server.port()), 1, 1, InitialState::Up), LOCAL)
            .unwrap();
        assert_eq!(registry.first_round(WAIT).await, 0);
        drop(registry);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let hits = server.hits();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.hits(), hits);
    }

    #[tokio::test]
    async fn targets_before_and_after_start() {
        let server = HttpServer::start().await;
        let registry = Registry::new();
        let early = registry
            .target(&check(http(server.port()), 1, 1, InitialState::Down), LOCAL)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!early.has_result(), "probed before start");
        assert_eq!(registry.first_round(Duration::from_millis(50)).await, 1);
        registry.start();
        registry.start();
        let late = registry
            .target(
                &check(
                    CheckKind::Tcp {
                        port: server.port(),
                    },
                    1,
                    1,
                    InitialState::Down,
                ),
                LOCAL,
            )
            .unwrap();
        assert_eq!(registry.first_round(WAIT).await, 0);
        assert!(early.is_up() && late.is_up());
        assert_eq!(registry.targets().len(), 2);
    }

    #[tokio::test]
    async fn first_round_counts_targets_without_result() {
        let ok = HttpServer::start().await;
        let slow = HttpServer::start().await;
        slow.set_mode(crate::health::test_support::Mode::Slow);
        let refused = refused_port().await;
        let registry = Registry::new();
        registry.start();
        registry
            .target(&check(http(ok.port()), 1, 1, InitialState::Up), LOCAL)
            .unwrap();
        registry
            .target(
                &check(CheckKind::Tcp { port: refused }, 1, 1, InitialState::Up),
                LOCAL,
            )
            .unwrap();
        let mut slow_check = check(http(slow.port()), 1, 1, InitialState::Up);
        slow_check.timeout = Duration::from_secs(5);
        registry.target(&slow_check, LOCAL).unwrap();

        let started = Instant::now();
        assert_eq!(registry.first_round(Duration::from_millis(400)).await, 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        // Retiring the slow one completes the round.
        registry.retain(
            &registry
                .targets()
                .iter()
                .filter(|t| t.check() != &slow_check)
                .map(|t| (t.check().clone(), t.addr()))
                .collect(),
        );
        assert_eq!(registry.first_round(Duration::from_millis(100)).await, 0);
        // With the timeout shorter than the wait, every target reports.
        let slow_short = check(http(slow.port()), 1, 1, InitialState::Up);
        let t = registry.target(&slow_short, LOCAL).unwrap();
        assert_eq!(registry.first_round(WAIT).await, 0);
        assert_eq!(
            t.detail().last.unwrap().error.as_deref(),
            Some("timed out after 300ms")
        );
        assert!(!t.is_up());
    }

    #[tokio::test]
    async fn probes_write_their_state_into_the_table_and_leave_overrides_alone() {
        let port = refused_port().await;
        let registry = Registry::new();
        registry.start();
        let t = registry
            .target(
                &check(CheckKind::Tcp { port }, 1, 1, InitialState::Up),
                LOCAL,
            )
            .unwrap();
        let slot = t.slot().expect("a registered target has a slot");
        assert!(registry.table().word(slot).probe_up());
        assert!(wait_until(WAIT, || !registry.table().word(slot).probe_up()).await);
        let key = crate::health::OverrideKey::Address { address: LOCAL };
        registry.table().set_admin(&key, Admin::Up);
        // The probes go on under the override and do not clear it.
        let checked = t.detail().last.unwrap().at;
        assert!(wait_until(WAIT, || t.detail().last.unwrap().at > checked).await);
        let word = registry.table().word(slot);
        assert_eq!((word.admin(), word.probe_up()), (Admin::Up, false));
    }

    #[tokio::test]
    async fn a_panicking_probe_is_a_failure() {
        let err = isolated(async { panic!("boom") }).await.unwrap_err();
        assert!(matches!(err, ProbeError::Internal(_)), "{err:?}");
        assert_eq!(isolated(async { Ok(()) }).await, Ok(()));
    }

    #[test]
    fn random_delay_stays_within_bounds() {
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_millis(5);
        let delays: Vec<_> = (0..1000).map(|_| random_delay(max)).collect();
        assert!(delays.iter().all(|d| *d <= max));
        // Spread, not constant.
        assert!(delays.iter().any(|d| *d < max / 4) && delays.iter().any(|d| *d > max * 3 / 4));
    }
}
