//! The reference for GeoIP load speed: a bare walk of MaxMind DB files with the maxminddb
//! crate, visiting every network and decoding every record it points at (into nothing),
//! which is the least any loader that reads the whole file has to do.
//!
//! ```text
//! cargo run --release --example mmdb_walk -- FILE...
//! ```
//!
//! Prints the networks walked and the seconds taken; `benches/geoip_load.sh` runs it
//! beside `meridian check` on the same files.

use maxminddb::{Reader, WithinOptions};
use serde::de::IgnoredAny;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = std::time::Instant::now();
    let mut networks = 0u64;
    for path in std::env::args_os().skip(1) {
        let reader = Reader::open_readfile(&path)?;
        for item in reader.networks(WithinOptions::default())? {
            let item = item?;
            item.network()?;
            item.decode::<IgnoredAny>()?;
            networks += 1;
        }
    }
    println!(
        "walked {networks} networks in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
