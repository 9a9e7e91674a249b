//! Integration tests: one test binary (`cargo test --test it`). The DNS and geo behaviour
//! is in `scenarios` (rows of tests/fixtures/scenarios/ answered in-process); what needs
//! the `meridian` process is in `dns` and `geo` (sockets, TCP, reloads, explain), `cli`,
//! `health`, `ops` (`meridian reload`) and `lifecycle` (file watching, shutdown,
//! systemd), with the process and client plumbing they share in `harness`.

#[path = "../support/check_server.rs"]
mod check_server;
mod cli;
mod dns;
mod fleet;
mod geo;
#[path = "../support/geoip_fixtures.rs"]
mod geoip_fixtures;
mod harness;
mod health;
mod lifecycle;
mod limits;
mod metrics;
#[path = "../support/mmdb.rs"]
mod mmdb;
mod ops;
mod querylog;
mod rrl;
mod scenarios;
mod shedding;
mod status;
mod weights;
mod xdp;
