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
//! - **override**: an operator forcing a data center or address up, down or drained.
//! - **snapshot**: every zone compiled into immutable lookup tables; the query path reads one
//!   snapshot per message and a reload swaps in a new one atomically. Health and overrides
//!   sit beside it as shared atomics, so they change without a reload.
//!
//! # Request path
//! ```text
//! packet ─▶ serve::udp / serve::tcp ─▶ serve::handler (header, EDNS, ECS, truncation)
//!        ─▶ serve::resolve (zone, node, wildcard, CNAME, referral) over compile::Snapshot
//! ```
//! Loading runs beside it:
//! ```text
//! meridian.toml ─▶ config ─┐
//! zones/*.toml ─▶ zone::spec ─▶ zone::validate ─▶ zone::model ─▶ compile ─▶ ArcSwap<Snapshot>
//!                            (diag: every problem with file:line:col, key, help)
//! ```

pub mod api;
pub mod compile;
pub mod config;
pub mod diag;
pub mod explain;
pub mod geo;
pub mod health;
pub mod load;
pub mod name_key;
pub mod overrides;
pub mod reload;
pub mod serve;
pub mod spec_values;
pub mod zone;
