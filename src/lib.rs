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
//! - **snapshot**: every zone compiled into immutable lookup tables; the query path reads one
//!   snapshot per message and a reload swaps in a new one atomically.
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
pub mod zone;
