//! Meridian: an authoritative GeoDNS / GSLB server.
//!
//! An operator delegates a domain to Meridian and describes it in zone files: ordinary
//! records, and data centers with GSLB names that answer each client with the data center
//! nearest to it that is healthy.
//!
//! # Words
//! - **zone**: one delegated domain, one TOML file in the zones directory.
//! - **node**: an owner name in a zone and its record sets.
//! - **record set**: the records of one name and type.
//! - **data center**: a site that serves traffic: addresses, a location, health checks.
//! - **GSLB name**: a name whose A/AAAA answers are chosen per client from its
//!   **candidates**, the data centers it may send clients to.
//! - **policy**: how a GSLB name orders its candidates for a client: `nearest` (great-circle
//!   distance) or `map` (rules by network, AS number, subdivision, country, continent).
//! - **candidate list**: the ordered candidates one client gets; compiled per policy into a
//!   table from address ranges to lists, whose range gives the **ECS scope**.
//! - **check**: a health probe (HTTP, HTTPS or TCP); a **target** is one check of one
//!   address, probed once however many names use it.
//! - **head**: the candidates at the start of a client's list that share its traffic by
//!   data center weight (`spread`, `band`); **spill** targets take a down or overloaded
//!   head's share; **shedding** is a head passing part of its share on while its load
//!   signal is above `high`.
//! - **override**: an operator forcing a data center or address up, down or drained.
//! - **snapshot**: every zone compiled into immutable lookup tables; the query path reads one
//!   snapshot per message and a reload swaps in a new one atomically.
//! - **health table**: one atomic byte per (check, address) slot and per data center, with
//!   the probe state and the override bits; the snapshot holds slot ids, so health and
//!   overrides change without a reload and a query does one load per address.
//!
//! # Request path
//! Each layer imports only the layers below it:
//! ```text
//! serve    packet ─▶ udp / tcp ─▶ handler: edns (OPT, ECS, UDP limit) ─▶ rules (header)
//!            │                         ─▶ answer::resolve ─▶ encode (once, cut to fit)
//!            │
//! answer     ▼ resolve (zone, node, wildcard, CNAME, referral) ─▶ select (health, the
//!            │        weighted head, spill, shedding, fail-open, all-down policy)
//! compile    ▼ Snapshot: zones, nodes, record sets, GSLB candidates with health slot ids,
//!            │          weights, rotation indices, load slots
//! geo, health, weigh, family   ▼ GeoIP tables (list + ECS scope), HealthTable words and
//!                                 load column, per-thread rotation and hashing, Family
//! ```
//! `explain` and the API sit beside `serve` and call the same `answer` functions, so what
//! they print is what is answered; what they show of the live state (verdicts and why,
//! effective weights, answer counts) comes from `live`, so `explain`, `/metrics` and
//! `/v1/status` agree. `server` assembles everything.
//!
//! Loading runs beside it:
//! ```text
//! meridian.toml ─▶ config ─┐
//! zones/*.toml ─▶ zone::spec ─▶ zone::validate ─▶ zone::model ─▶ compile ─▶ ArcSwap<Snapshot>
//!                            (diag: every problem with file:line:col, key, help)
//! ```

pub mod answer;
pub mod api;
pub mod cluster;
pub mod compile;
pub mod config;
pub mod diag;
pub mod explain;
pub mod family;
pub mod geo;
pub mod health;
pub mod live;
pub mod load;
pub mod metrics;
pub mod name_key;
pub mod querylog;
pub mod reload;
pub mod serve;
pub mod server;
pub mod spec_values;
pub mod systemd;
pub mod weigh;
pub mod xdp;
pub mod zone;
