//! Writes the seed corpora of the fuzz targets (fuzz/, see the README's "Fuzzing").
//!
//! ```text
//! cargo run --example fuzz_seeds [-- OUT_DIR]      # default fuzz/corpus
//! ```
//!
//! Every file is named `seed-*` and the output is the same on every run:
//! - `respond/`: two bytes choosing the client address (see fuzz_targets/respond.rs), then
//!   a query: static names, GSLB names with and without ECS, CNAMEs, a wildcard, a
//!   delegation, NXDOMAIN, ANY, answers that need TC at 512 and at 1232 bytes (example.net
//!   of tests/fixtures/good), BADVERS, an unknown opcode, a second question, a response,
//!   short packets;
//! - `fast_path/`: the same queries with a transport byte after the address (even: UDP,
//!   odd: TCP), one of each;
//! - `zone_loader/`: the example zone, the test fixtures' zone files, the zones of the
//!   scenario files (tests/fixtures/scenarios) and the README's zone snippets;
//! - `config_loader/`: the test configs, the scenario files' configs and the README's
//!   config snippets;
//! - `ecs/`: ECS option bodies, valid and not, each followed by a scope byte;
//! - `zone_loader.dict`, `config_loader.dict`: libFuzzer dictionaries of the keys, table
//!   headers and short string values of those seeds, and TOML punctuation.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

/// Named seed files of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fuzz/corpus"));
    let mut n = 0;
    let respond = respond_seeds()?;
    // fast_path: the address bytes, a transport byte, the query.
    let fast_path: Seeds = respond
        .iter()
        .flat_map(|(name, bytes)| {
            [(0u8, "udp"), (1, "tcp")].map(|(t, label)| {
                let mut b = bytes[..2.min(bytes.len())].to_vec();
                b.push(t);
                b.extend_from_slice(bytes.get(2..).unwrap_or(&[]));
                (format!("{name}-{label}"), b)
            })
        })
        .collect();
    for (target, seeds) in [
        ("respond", respond),
        ("fast_path", fast_path),
        ("zone_loader", zone_seeds(root)?),
        ("config_loader", config_seeds(root)?),
        ("ecs", ecs_seeds()),
    ] {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        if target.ends_with("_loader") {
            fs::write(out.join(format!("{target}.dict")), toml_dictionary(&seeds))?;
        }
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes)?;
            n += 1;
        }
    }
    println!("wrote {n} seeds under {}", out.display());
    Ok(())
}

/// Client address bytes of the respond target: (0x01, x) is 127.0.1.x (Amsterdam in the
/// test GeoIP data), 0x02 New York, 0x03 Singapore, 0x04 São Paulo, 0x05 Sydney;
/// (0x40, x) is 192.0.2.x; (0x81, x) the IPv4-mapped 127.0.1.x; (0xc0, x) an IPv6 address.
const AMS: [u8; 2] = [0x01, 7];
const NYC: [u8; 2] = [0x02, 7];
const SIN: [u8; 2] = [0x03, 7];
const GRU: [u8; 2] = [0x04, 7];
const SYD: [u8; 2] = [0x05, 7];
const DOC: [u8; 2] = [0x40, 7];
const MAPPED: [u8; 2] = [0x81, 7];
const V6: [u8; 2] = [0xc0, 7];

/// How a seed query carries EDNS.
enum Opt {
    None,
    Payload(u16),
    Ecs(&'static str, u8),
    Version(u8),
}

fn query(id: u16, name: &str, qtype: RecordType, opt: Opt) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name)?, qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    match opt {
        Opt::None => return Ok(m.to_vec()?),
        Opt::Payload(p) => {
            e.set_max_payload(p);
        }
        Opt::Ecs(addr, prefix) => {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                addr.parse()?,
                prefix,
                0,
            )));
        }
        Opt::Version(v) => {
            e.set_version(v);
        }
    }
    m.set_edns(e);
    Ok(m.to_vec()?)
}

fn respond_seeds() -> Result<Seeds, Box<dyn Error>> {
    use RecordType::*;
    let cases: Vec<(&str, [u8; 2], &str, RecordType, Opt)> = vec![
        ("static-a", AMS, "www.example.com.", A, Opt::None),
        (
            "static-aaaa",
            NYC,
            "www.example.com.",
            AAAA,
            Opt::Payload(1232),
        ),
        ("apex-mx", SIN, "example.com.", MX, Opt::Payload(4096)),
        ("apex-ns", GRU, "example.com.", NS, Opt::None),
        ("apex-soa", SYD, "example.com.", SOA, Opt::None),
        ("apex-caa", AMS, "example.com.", CAA, Opt::None),
        ("apex-any", NYC, "example.com.", ANY, Opt::None),
        (
            "apex-any-edns",
            NYC,
            "example.com.",
            ANY,
            Opt::Payload(4096),
        ),
        ("gslb-nearest-ams", AMS, "cdn.example.com.", A, Opt::None),
        ("gslb-nearest-syd", SYD, "cdn.example.com.", AAAA, Opt::None),
        ("gslb-nearest-v6", V6, "cdn.example.com.", A, Opt::None),
        (
            "gslb-nearest-mapped",
            MAPPED,
            "cdn.example.com.",
            A,
            Opt::None,
        ),
        ("gslb-map-gru", GRU, "api.example.com.", A, Opt::None),
        ("gslb-map-network", DOC, "api.example.com.", A, Opt::None),
        ("gslb-map-any", SIN, "api.example.com.", ANY, Opt::None),
        ("gslb-spread", NYC, "video.example.com.", A, Opt::None),
        (
            "gslb-spread-aaaa",
            AMS,
            "video.example.com.",
            AAAA,
            Opt::None,
        ),
        ("gslb-txt-nodata", AMS, "cdn.example.com.", TXT, Opt::None),
        (
            "ecs-v4",
            AMS,
            "cdn.example.com.",
            A,
            Opt::Ecs("127.0.5.0", 24),
        ),
        (
            "ecs-v4-map",
            AMS,
            "api.example.com.",
            A,
            Opt::Ecs("127.0.4.0", 24),
        ),
        (
            "ecs-v4-32",
            SYD,
            "video.example.com.",
            A,
            Opt::Ecs("127.0.2.9", 32),
        ),
        (
            "ecs-v4-0",
            SYD,
            "cdn.example.com.",
            A,
            Opt::Ecs("0.0.0.0", 0),
        ),
        (
            "ecs-v6",
            AMS,
            "cdn.example.com.",
            AAAA,
            Opt::Ecs("2001:db8::", 48),
        ),
        (
            "ecs-static",
            AMS,
            "www.example.com.",
            A,
            Opt::Ecs("127.0.3.0", 24),
        ),
        ("cname", AMS, "web.example.com.", A, Opt::None),
        ("srv", AMS, "_sip._tcp.example.com.", SRV, Opt::None),
        ("ptr", AMS, "ptr-example.example.com.", PTR, Opt::None),
        ("wildcard", AMS, "x.y.apps.example.com.", A, Opt::None),
        ("wildcard-txt", AMS, "q.apps.example.com.", TXT, Opt::None),
        (
            "below-wildcard",
            AMS,
            "status.apps.example.com.",
            A,
            Opt::None,
        ),
        ("delegation", AMS, "a.dev.example.com.", A, Opt::None),
        ("delegation-ns", AMS, "dev.example.com.", NS, Opt::None),
        ("nxdomain", AMS, "nope.example.com.", A, Opt::None),
        (
            "nxdomain-edns",
            AMS,
            "nope.example.com.",
            AAAA,
            Opt::Payload(512),
        ),
        ("refused", AMS, "example.org.", A, Opt::None),
        ("axfr", AMS, "example.com.", AXFR, Opt::None),
        ("badvers", AMS, "cdn.example.com.", A, Opt::Version(1)),
        ("small-payload", AMS, "example.com.", ANY, Opt::Payload(100)),
        // example.net (tests/fixtures/good): answers over 512 and 1232 bytes, CNAME chains.
        ("tc-512", AMS, "many.example.net.", A, Opt::None),
        ("tc-1232", AMS, "many.example.net.", A, Opt::Payload(1232)),
        (
            "tc-tcp-sized",
            AMS,
            "many.example.net.",
            A,
            Opt::Payload(65535),
        ),
        ("big-mx", NYC, "bigmx.example.net.", MX, Opt::None),
        (
            "long-txt",
            NYC,
            "longtxt.example.net.",
            TXT,
            Opt::Payload(1232),
        ),
        ("cname-chain", AMS, "hop1.example.net.", A, Opt::None),
        ("cname-wildcard", AMS, "to-wild.example.net.", A, Opt::None),
        (
            "cname-dangling",
            AMS,
            "dangling.example.net.",
            AAAA,
            Opt::None,
        ),
    ];
    let mut seeds = Vec::new();
    for (i, (name, src, qname, qtype, opt)) in cases.into_iter().enumerate() {
        let mut bytes = src.to_vec();
        bytes.extend(query(0x1000 + i as u16, qname, qtype, opt)?);
        seeds.push((name.to_owned(), bytes));
    }
    // A name of 60 one-byte labels under the wildcard.
    let long = format!("{}apps.example.com.", "a.".repeat(60));
    let mut bytes = AMS.to_vec();
    bytes.extend(query(0x2000, &long, RecordType::ANY, Opt::None)?);
    seeds.push(("long-name".into(), bytes));

    let base = {
        let mut b = AMS.to_vec();
        b.extend(query(0x3000, "cdn.example.com.", RecordType::A, Opt::None)?);
        b
    };
    // An unknown opcode with every header flag set (genreport's opcodeflg test).
    let mut b = base.clone();
    b[4] = 0x7f | (15 << 3);
    b[5] = 0xf0;
    seeds.push(("opcode-flags".into(), b));
    let mut m = Message::query();
    m.metadata.id = 0x4000;
    m.metadata.op_code = OpCode::Notify;
    m.add_query(Query::query(
        Name::from_str("example.com.")?,
        RecordType::SOA,
    ));
    let mut b = AMS.to_vec();
    b.extend(m.to_vec()?);
    seeds.push(("notify".into(), b));
    // Two questions.
    let mut m = Message::query();
    m.metadata.id = 0x4001;
    m.add_query(Query::query(
        Name::from_str("www.example.com.")?,
        RecordType::A,
    ));
    m.add_query(Query::query(
        Name::from_str("cdn.example.com.")?,
        RecordType::A,
    ));
    let mut b = AMS.to_vec();
    b.extend(m.to_vec()?);
    seeds.push(("two-questions".into(), b));
    // A response (dropped), a bare header, and a question cut short (header-only FORMERR).
    let mut b = base.clone();
    b[4] |= 0x80;
    seeds.push(("response".into(), b));
    seeds.push(("header-only".into(), base[..14].to_vec()));
    seeds.push(("cut".into(), base[..20].to_vec()));
    Ok(seeds)
}

/// The README's ```toml blocks, each a zone snippet (has `origin` or `[names`) or a config.
fn readme_blocks(root: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    let readme = fs::read_to_string(root.join("README.md"))?;
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, "```toml") => cur = Some(String::new()),
            (Some(_), "```") => blocks.extend(cur.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    Ok(blocks)
}

fn is_zone(text: &str) -> bool {
    text.contains("origin =") || text.contains("[names") || text.contains("[datacenters")
}

/// The indented blocks after `ZONE name file` and `CONFIG` lines of a scenario file: a zone
/// is the named file with the block appended, a config is the block.
fn scenario_blocks(root: &Path, text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        let (zone, mut block) = match words.next() {
            Some("ZONE") => {
                let file = words.nth(1).unwrap_or_default();
                (
                    true,
                    fs::read_to_string(root.join(file)).unwrap_or_default(),
                )
            }
            Some("CONFIG") => (false, String::new()),
            _ => continue,
        };
        while let Some(l) = lines.next_if(|l| l.starts_with("    ")) {
            block.push_str(&l[4..]);
            block.push('\n');
        }
        out.push((zone, block));
    }
    out
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn scenario_files(root: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("tests/fixtures/scenarios"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

fn zone_seeds(root: &Path) -> Result<Seeds, Box<dyn Error>> {
    let mut seeds = Vec::new();
    for dir in [
        "zones",
        "tests/fixtures/good",
        "tests/fixtures/bad",
        "tests/fixtures/scenarios",
    ] {
        for f in toml_files(&root.join(dir))? {
            seeds.push((format!("file-{}", stem(&f)), fs::read(&f)?));
        }
    }
    for f in scenario_files(root)? {
        let text = fs::read_to_string(&f)?;
        for (i, (_, block)) in scenario_blocks(root, &text)
            .into_iter()
            .filter(|(zone, _)| *zone)
            .enumerate()
        {
            seeds.push((format!("scenario-{}-{i}", stem(&f)), block.into_bytes()));
        }
    }
    for (i, block) in readme_blocks(root)?.into_iter().enumerate() {
        if is_zone(&block) {
            seeds.push((format!("readme-{i}"), block.into_bytes()));
        }
    }
    Ok(seeds)
}

fn config_seeds(root: &Path) -> Result<Seeds, Box<dyn Error>> {
    let mut seeds = Vec::new();
    for f in ["check-good.toml", "check-bad.toml"] {
        let p = root.join("tests/fixtures").join(f);
        seeds.push((format!("file-{}", stem(&p)), fs::read(&p)?));
    }
    for f in scenario_files(root)? {
        let text = fs::read_to_string(&f)?;
        for (i, (_, block)) in scenario_blocks(root, &text)
            .into_iter()
            .filter(|(zone, _)| !*zone)
            .enumerate()
        {
            seeds.push((format!("scenario-{}-{i}", stem(&f)), block.into_bytes()));
        }
    }
    for (i, block) in readme_blocks(root)?.into_iter().enumerate() {
        if !is_zone(&block) {
            seeds.push((format!("readme-{i}"), block.into_bytes()));
        }
    }
    Ok(seeds)
}

fn ecs_seeds() -> Seeds {
    let cases: [(&str, &[u8]); 14] = [
        ("v4-24", &[0, 1, 24, 0, 192, 0, 2, 20]),
        ("v4-0", &[0, 1, 0, 0, 0]),
        ("v4-32", &[0, 1, 32, 0, 127, 0, 1, 9, 32]),
        ("v4-25", &[0, 1, 25, 0, 192, 0, 2, 128, 25]),
        ("v4-scope", &[0, 1, 24, 24, 127, 0, 3, 16]),
        ("v6-48", &[0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 56]),
        (
            "v6-56",
            &[0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0x80, 0],
        ),
        (
            "v6-128",
            &[
                0, 2, 128, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 64,
            ],
        ),
        ("family-3", &[0, 3, 24, 0, 1, 2, 3, 0]),
        ("v4-33", &[0, 1, 33, 0, 1, 2, 3, 4, 5, 0]),
        ("v4-long", &[0, 1, 24, 0, 192, 0, 2, 0, 0]),
        ("v4-short", &[0, 1, 24, 0, 192, 0, 0]),
        ("host-bits", &[0, 1, 23, 0, 192, 0, 3, 0]),
        ("truncated", &[0, 1, 0]),
    ];
    cases
        .iter()
        .map(|(name, b)| ((*name).to_owned(), b.to_vec()))
        .collect()
}

/// A libFuzzer dictionary for TOML seeds: every key and key segment, table header and
/// short quoted value they contain, and TOML's punctuation. Sorted, one quoted token a line.
fn toml_dictionary(seeds: &Seeds) -> String {
    let mut tokens = std::collections::BTreeSet::new();
    for t in [
        "[", "]", "[[", "]]", " = ", "\n", "\"", "'", "{", "}", ", ", "\"\"\"", "#",
    ] {
        tokens.insert(t.to_owned());
    }
    for (_, bytes) in seeds {
        for line in String::from_utf8_lossy(bytes).lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.strip_prefix('[') {
                Some(_) if line.contains('#') => {
                    let header = line.split('#').next().unwrap_or_default().trim();
                    tokens.insert(format!("{header}\n"));
                    (header.trim_matches(|c| c == '[' || c == ']'), "")
                }
                Some(header) => {
                    tokens.insert(format!("{line}\n"));
                    (header.trim_matches(|c| c == '[' || c == ']'), "")
                }
                None => match line.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => continue,
                },
            };
            tokens.insert(format!("{key} = "));
            for segment in key.split('.') {
                tokens.insert(segment.trim_matches('"').to_owned());
            }
            if value.starts_with('"') && value.len() <= 24 {
                tokens.insert(value.split(" #").next().unwrap_or(value).trim().to_owned());
            }
        }
    }
    let mut out = String::new();
    for t in tokens.iter().filter(|t| !t.is_empty() && t.len() <= 64) {
        out.push('"');
        for b in t.bytes() {
            match b {
                b'"' | b'\\' => out.push_str(&format!("\\x{b:02x}")),
                0x20..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out.push_str("\"\n");
    }
    out
}
