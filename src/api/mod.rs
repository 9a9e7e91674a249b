//! The operator HTTP API: a status page, overrides, live `explain`, reloads and metrics,
//! bound to loopback by default.
//!
//! | method and path | does | token |
//! |---|---|---|
//! | `GET /` | the status page ([`status::PAGE`]): every GSLB name, its data centers on a map and in a table | read |
//! | `GET /v1/status` | the same as JSON ([`status::Status`]) | read |
//! | `GET /v1/explain?name=&type=&client=` | the `explain` text over the live snapshot and health | read |
//! | `GET /metrics` | Prometheus text format (names in [`crate::metrics`]) | read |
//! | `GET /v1/overrides` | the overrides in force, with who, when, why and until when, as JSON | always |
//! | `PUT /v1/overrides` `{"target": "ams", "zone": null, "state": "down", "for_seconds": 7200, "reason": "..."}` | sets one (`clear` removes it); in a fleet, for every node | always |
//! | `GET /v1/fleet` | the fleet as this node sees it ([`crate::cluster::FleetStatus`]); 404 on a single node | read |
//! | `POST /v1/reload` | reloads as SIGHUP does: `{"generation": N}`, or 422 with the diagnostics as `meridian check` prints them | always |
//! | `GET /healthz` | `200 ok` while the process serves | never |
//! | `GET /readyz` | `200 ready` once zones are loaded, sockets bound and the first probe round is done; `503` with the reason before | never |
//!
//! "read": the bearer token is needed only with `[api] read_requires_token = true`. Those
//! endpoints change nothing, and by default the API listens on loopback only. Whatever
//! changes state, and the override list, always needs the token; the health endpoints
//! never do, for load balancers. The token is checked before the request's parameters, so
//! a request without it learns nothing but 401.
//!
//! The `meridian override`, `reload` and `explain` commands are clients of it ([`client`]):
//! they read the same config to find the address and the [`token`].

pub mod client;
pub mod metrics;
pub mod status;
pub mod token;

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use arc_swap::ArcSwap;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::compile::Snapshot;
use crate::health::{Admin, OverrideKey, OverrideMeta, Overrides, parse_admin};
use crate::reload::Reloader;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The live snapshot.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// The overrides.
    pub overrides: Arc<Overrides>,
    /// The bearer token requests must carry.
    pub token: Arc<str>,
    /// Whether the read-only endpoints need the token too (`[api] read_requires_token`).
    pub read_requires_token: bool,
    /// How far the start has come, for `/readyz`.
    pub readiness: Arc<Readiness>,
    /// What `POST /v1/reload` runs: the same reload as SIGHUP.
    pub reloader: Arc<Reloader>,
    /// The fleet, when this node is in one: overrides go through it.
    pub cluster: Option<Arc<Cluster>>,
}

/// The answer to a reload that succeeded.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReloadResponse {
    /// The generation now serving.
    pub generation: u64,
}

/// How far the server's start has come: the zones are loaded and the sockets bound before
/// the API answers at all; then the first health round runs, then DNS starts serving.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

impl Readiness {
    const PROBING: u8 = 0;
    const STARTING_DNS: u8 = 1;
    const READY: u8 = 2;

    /// The first health round is done; the DNS listeners are being started.
    pub fn probed(&self) {
        self.0.store(Self::STARTING_DNS, Ordering::Release);
    }

    /// DNS is being answered.
    pub fn ready(&self) {
        self.0.store(Self::READY, Ordering::Release);
    }

    /// `None` when ready, else why not.
    pub fn not_ready(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Acquire) {
            Self::PROBING => Some("first health probe round still running"),
            Self::STARTING_DNS => Some("DNS listeners starting"),
            _ => None,
        }
    }
}

/// A request to set an override.
#[derive(Debug, Serialize, Deserialize)]
pub struct OverrideRequest {
    /// A data center id (`ams`) or an address (`192.0.2.10`).
    pub target: String,
    /// The zone, where the data center id exists in several.
    pub zone: Option<String>,
    /// `up`, `down`, `drain` or `clear`.
    pub state: String,
    /// Ends by itself after this many seconds; `None`: when cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<u64>,
    /// Why, shown with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who asks (`user@host`), shown with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One override in force.
#[derive(Debug, Serialize, Deserialize)]
pub struct OverrideEntry {
    /// What it applies to.
    #[serde(flatten)]
    pub key: OverrideKey,
    /// `up`, `down` or `drain`.
    pub state: String,
    /// Who, when, why, until when.
    #[serde(flatten)]
    pub meta: OverrideMeta,
}

/// Serves the API on `listener` until `cancel`.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState, cancel: CancellationToken) {
    let app = Router::new()
        .route("/", get(status_page))
        .route("/v1/status", get(status_json))
        .route("/v1/overrides", get(list_overrides).put(set_override))
        .route("/v1/explain", get(explain))
        .route("/v1/fleet", get(fleet))
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
}

/// The status page. It holds no data (it fetches `v1/status`), but it is guarded like the
/// data so that `read_requires_token` hides all of it. The content security policy lets
/// it run its own inline script and style and fetch from this API, and nothing else: the
/// page loads nothing from elsewhere, and shows text from zone files only as text.
async fn status_page(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized_read(&state, &headers) {
        return *r;
    }
    (
        [
            ("cache-control", "no-store"),
            (
                "content-security-policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            ("x-content-type-options", "nosniff"),
        ],
        Html(status::PAGE),
    )
        .into_response()
}

/// Every zone, GSLB name and data center as it stands now.
async fn status_json(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized_read(&state, &headers) {
        return *r;
    }
    let snap = state.snapshot.load_full();
    ([("cache-control", "no-store")], Json(status::status(&snap))).into_response()
}

/// The Prometheus exposition.
async fn metrics_text(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized_read(&state, &headers) {
        return *r;
    }
    let snap = state.snapshot.load_full();
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        metrics::render(&snap),
    )
        .into_response()
}

/// Alive: the process answers HTTP. No token, for load balancers and service managers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to answer DNS with real health. No token.
async fn readyz(State(state): State<ApiState>) -> Response {
    match state.readiness.not_ready() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// For the read-only endpoints: open unless `read_requires_token`.
fn authorized_read(state: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if state.read_requires_token {
        authorized(state, headers)
    } else {
        Ok(())
    }
}

fn authorized(state: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare in constant time: the token is the only thing guarding the API.
    let ok = given.is_some_and(|g| {
        g.len() == state.token.len()
            && g.bytes()
                .zip(state.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(Box::new(
            (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response(),
        ))
    }
}

async fn list_overrides(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    let list: Vec<OverrideEntry> = state
        .overrides
        .details()
        .into_iter()
        .map(|d| OverrideEntry {
            key: d.key,
            state: d.state.to_string(),
            meta: d.meta,
        })
        .collect();
    Json(list).into_response()
}

async fn set_override(
    State(state): State<ApiState>,
    headers: HeaderMap,
    req: Result<Json<OverrideRequest>, JsonRejection>,
) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    // The body is judged after the token, so a caller without it learns nothing.
    let Json(req) = match req {
        Ok(r) => r,
        Err(e) => return (e.status(), format!("{}\n", e.body_text())).into_response(),
    };
    let Some(admin) = parse_admin(&req.state) else {
        return bad_request(format!(
            "{:?} is not a state: use up, down, drain or clear",
            req.state
        ));
    };
    let snap = state.snapshot.load_full();
    let key = match resolve_target(&snap, &req.target, req.zone.as_deref()) {
        Ok(k) => k,
        Err(msg) => return bad_request(msg),
    };
    if req.for_seconds == Some(0) {
        return bad_request("--for must be at least one second".into());
    }
    let ttl = req.for_seconds.map(std::time::Duration::from_secs);
    let meta = OverrideMeta {
        by: req.by.clone(),
        at: Some(crate::health::unix_now()),
        reason: req.reason.clone(),
        expires: req.for_seconds.map(|s| crate::health::unix_now() + s),
    };
    if let Some(cluster) = &state.cluster {
        return match cluster.set_override(&key, admin, meta, ttl).await {
            Ok(()) => {
                (StatusCode::OK, format!("{key}: {} (fleet)\n", shown(admin))).into_response()
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}\nnothing was changed; the fleet's overrides live in etcd\n"),
            )
                .into_response(),
        };
    }
    // Writing the state file is blocking I/O: off the async workers.
    let overrides = state.overrides.clone();
    let k = key.clone();
    let stored = tokio::task::spawn_blocking(move || overrides.set_with(&k, admin, meta)).await;
    let stored = match stored {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
    };
    match stored {
        Ok(()) => (StatusCode::OK, format!("{key}: {}\n", shown(admin))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Reloads as SIGHUP does. On failure the old snapshot keeps serving and the answer is
/// 422 with every diagnostic, then a summary line, as `meridian check` prints them.
async fn reload(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    match state.reloader.reload().await {
        Ok(generation) => Json(ReloadResponse { generation }).into_response(),
        Err(d) => {
            let serving = state.snapshot.load().generation;
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{}reload rejected: {}; still serving generation {serving}\n",
                    d.render(),
                    d.summary()
                ),
            )
                .into_response()
        }
    }
}

/// `cleared`, or the state.
fn shown(admin: Admin) -> String {
    if admin == Admin::None {
        "cleared".to_owned()
    } else {
        admin.to_string()
    }
}

/// The fleet as this node sees it.
async fn fleet(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized_read(&state, &headers) {
        return *r;
    }
    match &state.cluster {
        Some(c) => ([("cache-control", "no-store")], Json(c.status())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "this node is not in a fleet (no [cluster] in its config)\n",
        )
            .into_response(),
    }
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response()
}

/// Turns what an operator typed into an override key, checked against the snapshot.
pub fn resolve_target(
    snap: &Snapshot,
    target: &str,
    zone: Option<&str>,
) -> Result<OverrideKey, String> {
    if let Ok(ip) = IpAddr::from_str(target) {
        return if snap.datacenter_addresses().any(|a| a == ip) {
            Ok(OverrideKey::Address { address: ip })
        } else {
            Err(format!("no data center has the address {ip}"))
        };
    }
    let zone = zone.map(|z| {
        let z = z.trim_end_matches('.').to_ascii_lowercase();
        format!("{z}.")
    });
    let zones: Vec<String> = snap
        .datacenter_zones(target)
        .into_iter()
        .filter(|z| zone.as_ref().is_none_or(|want| want == z))
        .collect();
    match zones.as_slice() {
        [one] => Ok(OverrideKey::Datacenter {
            zone: one.clone(),
            datacenter: target.to_owned(),
        }),
        [] => Err(match zone {
            Some(z) => format!("no data center {target:?} in zone {z}"),
            None => format!("no data center {target:?} in any zone"),
        }),
        many => Err(format!(
            "data center {target:?} exists in zones {}; say which with --zone",
            many.join(", ")
        )),
    }
}

#[derive(Deserialize)]
struct ExplainQuery {
    name: String,
    #[serde(rename = "type")]
    qtype: Option<String>,
    client: String,
}

async fn explain(
    State(state): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<ExplainQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = authorized_read(&state, &headers) {
        return *r;
    }
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return bad_request(format!(
                "{}; give name, client and optionally type, e.g. \
                 ?name=cdn.example.com&type=A&client=192.0.2.0/24",
                e.body_text()
            ));
        }
    };
    let qtype = q.qtype.as_deref().unwrap_or("A");
    let question = match crate::explain::Question::parse(&q.name, qtype, &q.client) {
        Ok(x) => x,
        Err(e) => return bad_request(e),
    };
    let snap = state.snapshot.load_full();
    crate::explain::explain(&snap, &question.name, question.qtype, question.client).into_response()
}
