//! Writes Meridian's test GeoIP databases (see `geoip/README.md`).
//!
//! ```text
//! cargo run --example make_test_geoip [-- [OUT_DIR] [--verify]]
//! cargo run --release --example make_test_geoip -- --synthetic N_V4 N_V6 SEED FILE
//! ```
//!
//! The first form writes the six small fixture databases into `OUT_DIR`
//! (default `geoip/`); the output is byte-identical on every run. `--verify`
//! reads them back and checks a lookup per fixture network. The second form
//! writes a full-size synthetic City database for load benchmarks and reports
//! how long that took.

#[path = "../tests/support/geoip_fixtures.rs"]
mod geoip_fixtures;
#[path = "../tests/support/mmdb.rs"]
mod mmdb;

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use geoip_fixtures::{BUILD_EPOCH, NETWORKS, UNMATCHED};
use maxminddb::{Reader, geoip2, path};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: make_test_geoip [OUT_DIR] [--verify]\n       \
                     make_test_geoip --synthetic N_V4 N_V6 SEED FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--synthetic") => synthetic(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => fixtures(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_test_geoip: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fixtures(args: &[String]) -> Result<()> {
    let mut out_dir = PathBuf::from("geoip");
    let mut verify = false;
    for arg in args {
        match arg.as_str() {
            "--verify" => verify = true,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown flag {flag}\n{USAGE}").into());
            }
            dir => out_dir = dir.into(),
        }
    }
    std::fs::create_dir_all(&out_dir)?;
    for (name, writer) in geoip_fixtures::test_databases() {
        let path = out_dir.join(name);
        std::fs::write(&path, writer.to_bytes(BUILD_EPOCH))?;
        println!("wrote {}", path.display());
    }
    if verify {
        verify_fixtures(&out_dir)?;
        println!(
            "verified {} fixture networks in every database",
            NETWORKS.len()
        );
    }
    Ok(())
}

/// Checks the files on disk: structure (the reader's own verifier) and, for
/// each layout, one lookup per fixture network plus the unmatched addresses.
fn verify_fixtures(dir: &Path) -> Result<()> {
    let open = |name: &str| -> Result<Reader<Vec<u8>>> {
        let reader = Reader::open_readfile(dir.join(name))?;
        reader.verify()?;
        Ok(reader)
    };
    let city = open("test-city.mmdb")?;
    let country = open("test-country.mmdb")?;
    let flat_v4 = open("test-flat-v4.mmdb")?;
    let flat_v6 = open("test-flat-v6.mmdb")?;
    let lite = open("test-ipinfo-lite.mmdb")?;
    let asn = open("test-asn.mmdb")?;

    for &(network, place) in NETWORKS {
        let addr = network.parse::<ipnet::IpNet>()?.network();
        let check = |what: &str, got: Option<&str>, want: &str| -> Result<()> {
            if got == Some(want) {
                Ok(())
            } else {
                Err(format!("{network} in {what}: got {got:?}, want {want:?}").into())
            }
        };
        let record = city.lookup(addr)?.decode::<geoip2::City>()?;
        check(
            "test-city",
            record.and_then(|c| c.city.names.english),
            place.city,
        )?;
        let record = country.lookup(addr)?.decode::<geoip2::Country>()?;
        let iso_code = place.country.iso_code;
        check(
            "test-country",
            record.and_then(|c| c.country.iso_code),
            iso_code,
        )?;
        let flat = if addr.is_ipv4() { &flat_v4 } else { &flat_v6 };
        let record: Option<String> = flat.lookup(addr)?.decode_path(&path!["city"])?;
        check("test-flat", record.as_deref(), place.city)?;
        let record: Option<String> = lite.lookup(addr)?.decode_path(&path!["country_code"])?;
        check("test-ipinfo-lite", record.as_deref(), iso_code)?;
        let want = geoip_fixtures::asn_of(network).number;
        let got = asn
            .lookup(addr)?
            .decode::<geoip2::Asn>()?
            .and_then(|a| a.autonomous_system_number);
        if got != Some(want) {
            return Err(format!("{network} in test-asn: got {got:?}, want {want}").into());
        }
    }
    for reader in [&city, &country, &lite] {
        for addr in UNMATCHED {
            if reader.lookup(addr.parse()?)?.has_data() {
                return Err(format!("{addr} should be unmatched").into());
            }
        }
    }
    Ok(())
}

fn synthetic(args: &[String]) -> Result<()> {
    let [n_v4, n_v6, seed, file] = args else {
        return Err(USAGE.into());
    };
    let (n_v4, n_v6, seed) = (n_v4.parse()?, n_v6.parse()?, seed.parse()?);

    let start = Instant::now();
    let writer = geoip_fixtures::synthetic_city(n_v4, n_v6, seed);
    let built = start.elapsed();
    let mut out = BufWriter::new(File::create(file)?);
    writer.write_to(&mut out, BUILD_EPOCH)?;
    drop(out);
    let total = start.elapsed();

    let reader = Reader::open_readfile(file)?;
    let metadata = reader.metadata();
    println!(
        "wrote {file}: {n_v4} IPv4 + {n_v6} IPv6 networks, {} nodes, {}-bit records, {} MiB \
         in {:.2?} (tree {built:.2?}, serialization {:.2?})",
        metadata.node_count,
        metadata.record_size,
        std::fs::metadata(file)?.len() >> 20,
        total,
        total - built,
    );
    Ok(())
}
