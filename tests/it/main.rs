//! Integration tests of the `meridian` binary: one test binary (`cargo test --test it`),
//! with the DNS behaviour in `dns`, the command line in `cli`, and the process and client
//! plumbing they share in `harness`.

#[path = "../support/check_server.rs"]
mod check_server;
mod cli;
mod dns;
mod geo;
#[path = "../support/geoip_fixtures.rs"]
mod geoip_fixtures;
mod harness;
mod health;
#[path = "../support/mmdb.rs"]
mod mmdb;
