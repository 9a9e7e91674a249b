//! Load signals: a data center reports how busy it is, and above `high` it sheds a growing
//! share of its answers to the next choice; below `low` it takes them back.
//!
//! ```text
//! GET url ─▶ number (body, or one Prometheus series) ─▶ step keep% ─▶ HealthTable::keep[LoadId]
//!                                                                        ▲ answer::select reads
//! ```
//!
//! One loop per (zone, data center) with a signal. The loop moves the share the site keeps
//! by `step` per interval: down while the value is above `high`, up while it is below
//! `low`, and holds it in between, so a site near its limit neither flaps nor jumps. A read
//! that fails (refused, timed out, a status that is not 2xx, a body that is not a number)
//! leaves the share where it is and is kept with its reason for `explain`. Selection never
//! sheds a client's last healthy data center, whatever the table says.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::table::{HealthTable, LoadId, TableFull};

/// Largest body read from a load endpoint: a number or a page of metrics.
const MAX_BODY: usize = 1 << 20;

/// A validated load signal of one data center.
///
/// Thresholds are kept in thousandths so that the signal can be compared and hashed: a
/// reload that changes nothing keeps the loop and its state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoadSignal {
    /// HTTP(S) URL to read.
    pub url: String,
    /// The Prometheus series to read from the body; `None`: the body is one number.
    pub metric: Option<String>,
    /// Above this (in thousandths), shed.
    pub high_milli: i64,
    /// Below this (in thousandths), take back.
    pub low_milli: i64,
    /// Time between reads.
    pub interval: Duration,
    /// Limit on one read.
    pub timeout: Duration,
    /// Percent of the weight shed or taken back per interval.
    pub step_percent: u8,
}

impl LoadSignal {
    /// The share kept after reading `value` when `keep` percent was kept.
    pub fn next_keep(&self, keep: u8, value: f64) -> u8 {
        let milli = value * 1000.0;
        if milli > self.high_milli as f64 {
            keep.saturating_sub(self.step_percent)
        } else if milli < self.low_milli as f64 {
            keep.saturating_add(self.step_percent).min(100)
        } else {
            keep
        }
    }
}

/// A Prometheus series as written in `metric`: a name and its labels, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    name: String,
    labels: Vec<(String, String)>,
}

impl Series {
    /// Parses `name` or `name{a="x",b="y"}`; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (name, rest) = match s.find('{') {
            Some(i) => (&s[..i], Some(s[i + 1..].strip_suffix('}')?)),
            None => (s, None),
        };
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid_name {
            return None;
        }
        let mut labels = Vec::new();
        if let Some(body) = rest {
            let mut body = body.trim();
            while !body.is_empty() {
                let (key, after) = body.split_once('=')?;
                let after = after.trim_start().strip_prefix('"')?;
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => value.push(chars.next()?.1),
                        (_, c) => value.push(c),
                    }
                };
                labels.push((key.trim().to_owned(), value));
                body = after[end + 1..].trim_start();
                body = body.strip_prefix(',').unwrap_or(body).trim_start();
            }
        }
        labels.sort();
        Some(Self {
            name: name.to_owned(),
            labels,
        })
    }

    /// The value of this series in Prometheus text exposition `text`, if present.
    pub fn find(&self, text: &str) -> Option<f64> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .find_map(|line| {
                // The series ends at the closing brace, or at the first blank without labels.
                let split = match line.find('{') {
                    Some(open) if line[..open].find(char::is_whitespace).is_none() => {
                        line.rfind('}')? + 1
                    }
                    _ => line.find(char::is_whitespace)?,
                };
                let (series, rest) = line.split_at(split);
                if Series::parse(series)? != *self {
                    return None;
                }
                rest.split_whitespace().next()?.parse::<f64>().ok()
            })
    }
}

/// The last read of a signal, for `explain` and the API.
#[derive(Clone, Debug, Default)]
pub struct LoadDetail {
    /// The last value read, and when.
    pub value: Option<(f64, SystemTime)>,
    /// Why the last read failed, and when; cleared by a good read.
    pub error: Option<(String, SystemTime)>,
}

/// The live state of one data center's signal.
#[derive(Debug)]
pub struct LoadState {
    /// Its slot in the table's load column.
    pub id: LoadId,
    /// The signal read.
    pub signal: LoadSignal,
    table: Arc<HealthTable>,
    detail: Mutex<LoadDetail>,
}

impl LoadState {
    /// Percent of its weight the data center keeps now.
    pub fn keep(&self) -> u8 {
        self.table.keep(self.id)
    }

    /// The last read.
    pub fn detail(&self) -> LoadDetail {
        self.detail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies one read: moves the kept share by the thresholds, or keeps it and the reason.
    pub fn record(&self, read: Result<f64, String>) {
        let now = SystemTime::now();
        let mut d = self.detail.lock().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(v) => {
                let keep = self.signal.next_keep(self.keep(), v);
                self.table.set_keep(self.id, keep);
                d.value = Some((v, now));
                d.error = None;
            }
            Err(e) => d.error = Some((e, now)),
        }
    }
}

/// What identifies a signal's loop: zone origin and data center id.
pub type LoadKey = (String, String);

/// One loop per data center with a load signal.
#[derive(Debug)]
pub struct LoadRegistry {
    table: Arc<HealthTable>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    signals: HashMap<LoadKey, Entry>,
    runtime: Option<Handle>,
    client: Option<reqwest::Client>,
}

#[derive(Debug)]
struct Entry {
    state: Arc<LoadState>,
    task: Option<AbortHandle>,
}

impl LoadRegistry {
    /// No signals; nothing is read until [`Self::start`].
    pub fn new(table: Arc<HealthTable>) -> Arc<Self> {
        Arc::new(Self {
            table,
            inner: Mutex::default(),
        })
    }

    /// Gets or creates the state of a data center's signal. A changed signal restarts its
    /// loop but keeps the share the site keeps now.
    pub fn signal(
        &self,
        zone: &str,
        datacenter: &str,
        signal: &LoadSignal,
    ) -> Result<Arc<LoadState>, TableFull> {
        let mut inner = self.lock();
        let key = (zone.to_owned(), datacenter.to_owned());
        if let Some(e) = inner.signals.get(&key) {
            if e.state.signal == *signal {
                return Ok(e.state.clone());
            }
        }
        if let Some(old) = inner.signals.remove(&key) {
            if let Some(t) = old.task {
                t.abort();
            }
        }
        let id = self.table.load_slot(zone, datacenter)?;
        let state = Arc::new(LoadState {
            id,
            signal: signal.clone(),
            table: self.table.clone(),
            detail: Mutex::default(),
        });
        let task = match (&inner.runtime, &inner.client) {
            (Some(rt), Some(client)) => Some(spawn_loop(rt, client.clone(), state.clone())),
            _ => None,
        };
        inner.signals.insert(
            key,
            Entry {
                state: state.clone(),
                task,
            },
        );
        Ok(state)
    }

    /// The state of a data center's signal, if it has one.
    pub fn get(&self, zone: &str, datacenter: &str) -> Option<Arc<LoadState>> {
        self.lock()
            .signals
            .get(&(zone.to_owned(), datacenter.to_owned()))
            .map(|e| e.state.clone())
    }

    /// Starts reading every signal on the current tokio runtime; later ones start at once.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) {
        let rt = Handle::current();
        let mut inner = self.lock();
        if inner.runtime.is_some() {
            return;
        }
        let client = match reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("meridian-load/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("load signals: cannot build an HTTP client: {e}; not shedding");
                return;
            }
        };
        for e in inner.signals.values_mut() {
            e.task = Some(spawn_loop(&rt, client.clone(), e.state.clone()));
        }
        inner.runtime = Some(rt);
        inner.client = Some(client);
    }

    /// Keeps only `keys`: after a reload, the signals no data center has any more stop,
    /// and their sites keep their whole weight again.
    pub fn retain(&self, keys: &HashSet<LoadKey>) {
        let mut inner = self.lock();
        inner.signals.retain(|k, e| {
            let keep = keys.contains(k);
            if !keep {
                if let Some(t) = &e.task {
                    t.abort();
                }
                self.table.set_keep(e.state.id, 100);
            }
            keep
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn spawn_loop(rt: &Handle, client: reqwest::Client, state: Arc<LoadState>) -> AbortHandle {
    rt.spawn(async move {
        let mut tick = tokio::time::interval(state.signal.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let read = tokio::time::timeout(state.signal.timeout, read(&client, &state.signal))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", state.signal.timeout)));
            if let Err(e) = &read {
                tracing::debug!("load {}: {e}", state.signal.url);
            }
            state.record(read);
        }
    })
    .abort_handle()
}

/// One read: GET the URL, then the number in the body or the series' value.
async fn read(client: &reqwest::Client, s: &LoadSignal) -> Result<f64, String> {
    let mut resp = client
        .get(&s.url)
        .send()
        .await
        .map_err(|e| format!("GET {}: {}", s.url, root_cause(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("GET {}: status {}", s.url, resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading {}: {}", s.url, root_cause(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("the body of {} is over {MAX_BODY} bytes", s.url));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let value = match &s.metric {
        None => text.trim().parse::<f64>().map_err(|_| {
            let shown: String = text.trim().chars().take(40).collect();
            format!("the body {shown:?} is not a number")
        })?,
        Some(m) => Series::parse(m)
            .and_then(|series| series.find(&text))
            .ok_or_else(|| format!("no series {m} in the body"))?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("{value} is not a finite number"))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal() -> LoadSignal {
        LoadSignal {
            url: "http://127.0.0.1:1/load".into(),
            metric: None,
            high_milli: 850,
            low_milli: 700,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            step_percent: 25,
        }
    }

    #[test]
    fn the_kept_share_steps_down_above_high_up_below_low_and_holds_between() {
        let s = signal();
        assert_eq!(s.next_keep(100, 0.9), 75);
        assert_eq!(s.next_keep(10, 0.9), 0);
        assert_eq!(s.next_keep(50, 0.8), 50);
        assert_eq!(s.next_keep(50, 0.85), 50);
        assert_eq!(s.next_keep(50, 0.5), 75);
        assert_eq!(s.next_keep(90, 0.5), 100);
    }

    #[test]
    fn series_are_found_by_name_and_labels_in_any_order() {
        let text = "# HELP load the load\n# TYPE load gauge\nload 0.5\n\
                    busy{core=\"all\",host=\"a\"} 0.91 1700000000\nbusy{core=\"0\"} 0.2\n";
        assert_eq!(Series::parse("load").unwrap().find(text), Some(0.5));
        let s = Series::parse("busy{host=\"a\", core=\"all\"}").unwrap();
        assert_eq!(s.find(text), Some(0.91));
        assert_eq!(Series::parse("busy").unwrap().find(text), None);
        assert_eq!(Series::parse("busy{core=\"1\"}").unwrap().find(text), None);
        assert!(Series::parse("1abc").is_none());
        assert!(Series::parse("x{a=\"b\"").is_none());
        assert!(Series::parse("").is_none());
    }

    #[test]
    fn a_failed_read_keeps_the_share_and_says_why() {
        let table = HealthTable::new(16);
        let reg = LoadRegistry::new(table.clone());
        let st = reg.signal("example.com.", "ams", &signal()).unwrap();
        st.record(Ok(0.95));
        assert_eq!(st.keep(), 75);
        st.record(Err("GET x: connection refused".into()));
        assert_eq!(st.keep(), 75);
        assert!(st.detail().error.is_some());
        st.record(Ok(0.1));
        assert_eq!(st.keep(), 100);
        assert!(st.detail().error.is_none());
        // The same signal again is the same state; retaining none gives the weight back.
        st.record(Ok(0.95));
        let again = reg.signal("example.com.", "ams", &signal()).unwrap();
        assert!(Arc::ptr_eq(&st, &again));
        reg.retain(&HashSet::new());
        assert_eq!(table.keep(st.id), 100);
    }
}
