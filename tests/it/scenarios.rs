//! DNS behaviour in-process: scenario files of queries and the replies they must get, run
//! against [`Responder::respond`] (bytes in, bytes out; no process, no socket).
//!
//! Each `tests/fixtures/scenarios/*.txt` file sets up one server and lists rows; every row
//! of a file runs, and the test fails listing every failing row with a side-by-side diff
//! of the expected and the actual reply.
//!
//! # File format
//! Lines starting with `#` are comments. First the set-up:
//! ```text
//! ZONE example.net tests/fixtures/good/example.net.toml   # zone file example.net.toml
//! ZONE example.org tests/fixtures/scenarios/example.org.toml
//!     [names.near.gslb]                                   # indented lines are appended
//!     datacenters = ["ams", "nyc"]
//! CONFIG
//!     max_udp_payload = 4096                              # meridian.toml; paths are
//!     [geoip]                                             # relative to the crate root
//!     databases = ["geoip/test-city.mmdb"]
//! ORDERED                                                 # answers compared in order
//! SET unknown = from=127.0.0.1 | ecs=10.0.0.0/8 via=tcp   # client sets for `each=`
//! ```
//! Then the rows. A row starts with what is sent and holds what must come back:
//! ```text
//! QUERY <name> <type> [options]   a query built from these (a fresh id, RD clear)
//! RAW <bytes> [options]           hex, `name:www.example.net` (wire labels and the root),
//!                                 `label:TEXT` (one label; `x*63` is 63 x's)
//! REPLY <RCODE> [aa] [tc] [rd] [ra]   or REPLY DROP (nothing is sent)
//! ANSWER / AUTHORITY / ADDITIONAL <record as hickory prints it>   ({1..40} expands)
//! ORDERED                         this row's answer is compared in order
//! SCOPE <n> | none                the reply's ECS scope (address and source must echo)
//! EDNS none | payload=N version=N do=0|1 options=-   the reply's OPT
//! SIZE <= N                       the reply is at most N bytes
//! TAIL <hex>                      the reply ends with these bytes
//! ```
//! Options: `from=IP` (source address, default 127.0.0.1), `via=udp|tcp|udp,tcp`, `rd`,
//! `class=CH`, `opcode=STATUS|UPDATE|NOTIFY|<n>`, `edns=<payload>`, `do`, `ednsver=<n>`,
//! `ecs=<addr>/<len>`, `opt=<code>:<hex>` (any EDNS option), `each=<set>` (the row once per
//! client of the set). `via=udp,tcp` and `each=` run a row several times.
//!
//! A section not listed must be empty. The header must echo the id and opcode (and, for
//! QUERY rows, the question); a QUERY row with EDNS must get an OPT with the server's
//! payload size, version 0, the query's DO bit and no option but ECS, and one without EDNS
//! must get no OPT (unless the row says `EDNS`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use meridian::serve::{Outcome, Responder, Transport};

use crate::geoip_fixtures::NETWORKS;
use crate::harness::*;

// ---------------------------------------------------------------------------------------
// The responder

/// A responder over zones and a config, and what the rows need to know of its config.
pub(crate) struct Loaded {
    pub(crate) responder: Responder,
    /// `max_udp_payload` of the config: the payload size every OPT in a reply advertises.
    pub(crate) max_udp_payload: u16,
    _dir: tempfile::TempDir,
}

/// The one place a responder is built: `zones` (`(file stem, zone text)`) written into a
/// temporary zones directory, `config` parsed as `meridian.toml` text in the crate root (so
/// `geoip/test-city.mmdb` names the test database), loaded as `meridian serve` loads it.
pub(crate) fn responder(zones: &[(String, String)], config: &str) -> Loaded {
    let dir = tempfile::tempdir().expect("temp dir");
    for (stem, text) in zones {
        std::fs::write(dir.path().join(format!("{stem}.toml")), text).expect("write zone");
    }
    let mut diags = meridian::diag::Diagnostics::new();
    let mut cfg = meridian::config::parse(&repo_dir().join("meridian.toml"), config, &mut diags)
        .unwrap_or_else(|| panic!("config does not parse:\n{}", diags.render()));
    cfg.zones_dir = dir.path().to_path_buf();
    let health = meridian::health::HealthSources::new(None).expect("no overrides");
    let (snap, _warnings) = meridian::load::load_snapshot(&cfg, &health, 1)
        .unwrap_or_else(|d| panic!("zones do not load:\n{}", d.render()));
    let responder = Responder::new(
        Arc::new(arc_swap::ArcSwap::from_pointee(snap)),
        cfg.max_udp_payload,
    );
    Loaded {
        responder,
        max_udp_payload: cfg.max_udp_payload,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------
// Parsing scenario files

/// What a row sends.
#[derive(Clone, Debug)]
enum Ask {
    Query { name: String, rtype: RecordType },
    Raw(Vec<u8>),
}

/// One row: what to send, how, and what must come back.
#[derive(Clone, Debug)]
struct Row {
    line: usize,
    text: String,
    ask: Ask,
    options: Vec<String>,
    /// `REPLY` words, e.g. `["NOERROR", "aa"]` or `["DROP"]`.
    reply: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    ordered: bool,
    scope: Option<String>,
    edns: Option<String>,
    max_size: Option<usize>,
    tail: Option<Vec<u8>>,
}

/// A parsed scenario file.
struct Scenario {
    name: String,
    zones: Vec<(String, String)>,
    config: String,
    sets: HashMap<String, Vec<Vec<String>>>,
    rows: Vec<Row>,
}

/// Where a ZONE or CONFIG block's indented lines go.
enum Block {
    None,
    Zone(usize),
    Config,
}

fn parse_scenario(name: &str, text: &str) -> Scenario {
    let mut s = Scenario {
        name: name.to_owned(),
        zones: Vec::new(),
        config: String::new(),
        sets: HashMap::new(),
        rows: Vec::new(),
    };
    let mut ordered_file = false;
    let mut block = Block::None;
    let fail = |n: usize, msg: &str| -> ! { panic!("{name}:{n}: {msg}") };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.starts_with([' ', '\t']) && !raw.trim().is_empty() {
            let line = raw.trim_start();
            match block {
                Block::Zone(z) => {
                    s.zones[z].1.push_str(line);
                    s.zones[z].1.push('\n');
                }
                Block::Config => {
                    s.config.push_str(line);
                    s.config.push('\n');
                }
                Block::None => fail(n, "indented line outside a ZONE or CONFIG block"),
            }
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        block = Block::None;
        let have_rows = !s.rows.is_empty();
        match word {
            "ZONE" | "CONFIG" | "SET" if have_rows => {
                fail(n, "set-up lines come before the first row")
            }
            "ZONE" => {
                let mut parts = rest.split_whitespace();
                let stem = parts.next().unwrap_or_else(|| fail(n, "ZONE needs a stem"));
                let mut zone = String::new();
                for file in parts {
                    let path = repo_dir().join(file);
                    zone.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
                        fail(n, &format!("cannot read {}: {e}", path.display()))
                    }));
                    zone.push('\n');
                }
                s.zones.push((stem.to_owned(), zone));
                block = Block::Zone(s.zones.len() - 1);
            }
            "CONFIG" => {
                if !rest.is_empty() {
                    s.config.push_str(rest);
                    s.config.push('\n');
                }
                block = Block::Config;
            }
            "SET" => {
                let (set, alts) = rest
                    .split_once('=')
                    .unwrap_or_else(|| fail(n, "SET <name> = <options> | <options> ..."));
                let alts = alts
                    .split('|')
                    .map(|a| a.split_whitespace().map(str::to_owned).collect())
                    .collect();
                s.sets.insert(set.trim().to_owned(), alts);
            }
            "ORDERED" if !have_rows => ordered_file = true,
            "QUERY" | "RAW" => {
                let mut options = Vec::new();
                let mut words = Vec::new();
                for w in rest.split_whitespace() {
                    if w.contains('=') || matches!(w, "rd" | "do") {
                        options.push(w.to_owned());
                    } else {
                        words.push(w);
                    }
                }
                let ask = if word == "QUERY" {
                    let [qname, rtype] = words[..] else {
                        fail(n, "QUERY <name> <type> [options]")
                    };
                    // hickory does not parse these two from text.
                    let rtype: RecordType = match rtype {
                        "IXFR" => RecordType::IXFR,
                        "OPT" => RecordType::OPT,
                        t => t
                            .parse()
                            .unwrap_or_else(|e| fail(n, &format!("type {t}: {e}"))),
                    };
                    Ask::Query {
                        name: qname.to_owned(),
                        rtype,
                    }
                } else {
                    Ask::Raw(raw_bytes(&words).unwrap_or_else(|e| fail(n, &e)))
                };
                s.rows.push(Row {
                    line: n,
                    text: line.to_owned(),
                    ask,
                    options,
                    reply: Vec::new(),
                    answer: Vec::new(),
                    authority: Vec::new(),
                    additional: Vec::new(),
                    ordered: ordered_file,
                    scope: None,
                    edns: None,
                    max_size: None,
                    tail: None,
                });
            }
            _ => {
                let Some(row) = s.rows.last_mut() else {
                    fail(n, &format!("{word}: not a set-up line, and no row yet"))
                };
                match word {
                    "REPLY" => row.reply = rest.split_whitespace().map(str::to_owned).collect(),
                    "ANSWER" => row.answer.extend(expand_range(rest)),
                    "AUTHORITY" => row.authority.extend(expand_range(rest)),
                    "ADDITIONAL" => row.additional.extend(expand_range(rest)),
                    "ORDERED" => row.ordered = true,
                    "SCOPE" => row.scope = Some(rest.to_owned()),
                    "EDNS" => row.edns = Some(rest.to_owned()),
                    "SIZE" => {
                        let limit = rest.strip_prefix("<=").map(str::trim);
                        row.max_size = Some(
                            limit
                                .and_then(|l| l.parse().ok())
                                .unwrap_or_else(|| fail(n, "SIZE <= <bytes>")),
                        );
                    }
                    "TAIL" => {
                        let words: Vec<&str> = rest.split_whitespace().collect();
                        row.tail = Some(raw_bytes(&words).unwrap_or_else(|e| fail(n, &e)));
                    }
                    other => fail(n, &format!("unknown line {other:?}")),
                }
            }
        }
    }
    for row in &s.rows {
        if row.reply.is_empty() {
            fail(row.line, "row without a REPLY line");
        }
    }
    s
}

/// Bytes from hex words, `name:a.b.c` and `label:TEXT` words.
fn raw_bytes(words: &[&str]) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    for w in words {
        if let Some(name) = w.strip_prefix("name:") {
            for label in name.trim_end_matches('.').split('.') {
                v.push(label.len() as u8);
                v.extend_from_slice(label.as_bytes());
            }
            v.push(0);
        } else if let Some(label) = w.strip_prefix("label:") {
            let text = match label.split_once('*') {
                Some((t, count)) => t.repeat(count.parse().map_err(|e| format!("{w}: {e}"))?),
                None => label.to_owned(),
            };
            v.push(text.len() as u8);
            v.extend_from_slice(text.as_bytes());
        } else {
            if w.len() % 2 != 0 {
                return Err(format!("odd number of hex digits in {w:?}"));
            }
            for i in (0..w.len()).step_by(2) {
                v.push(u8::from_str_radix(&w[i..i + 2], 16).map_err(|e| format!("{w}: {e}"))?);
            }
        }
    }
    Ok(v)
}

/// A record line with one `{a..b}` in it, once per number; other lines as they are.
fn expand_range(line: &str) -> Vec<String> {
    let range = line.find('{').and_then(|start| {
        let end = start + line[start..].find('}')?;
        let (a, b) = line[start + 1..end].split_once("..")?;
        Some((start, end, a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
    });
    match range {
        Some((start, end, a, b)) => (a..=b)
            .map(|i| format!("{}{i}{}", &line[..start], &line[end + 1..]))
            .collect(),
        None => vec![line.to_owned()],
    }
}

// ---------------------------------------------------------------------------------------
// Running rows

/// One run of a row: its options after `via=` and `each=` are expanded.
struct Run<'a> {
    row: &'a Row,
    options: Vec<String>,
}

fn runs<'a>(s: &Scenario, row: &'a Row) -> Vec<Run<'a>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for opt in &row.options {
        let alts: Vec<Vec<String>> = if let Some(set) = opt.strip_prefix("each=") {
            s.sets
                .get(set)
                .unwrap_or_else(|| panic!("{}:{}: no SET {set}", s.name, row.line))
                .clone()
        } else if let Some(vias) = opt.strip_prefix("via=") {
            vias.split(',').map(|v| vec![format!("via={v}")]).collect()
        } else {
            vec![vec![opt.clone()]]
        };
        out = out
            .iter()
            .flat_map(|o| {
                alts.iter().map(move |a| {
                    let mut o = o.clone();
                    o.extend(a.iter().cloned());
                    o
                })
            })
            .collect();
    }
    out.into_iter()
        .map(|options| Run { row, options })
        .collect()
}

/// The message a QUERY row sends, with its options applied.
fn build_query(name: &str, rtype: RecordType, options: &[String]) -> Result<Message, String> {
    let mut m = query(name, rtype);
    // The payload first, so `do`, `ecs` and the rest add to that OPT.
    for o in options {
        if let Some(p) = o.strip_prefix("edns=") {
            m = with_edns(m, p.parse().map_err(|e| format!("{o}: {e}"))?);
        }
    }
    for o in options {
        let (key, value) = o.split_once('=').unwrap_or((o, ""));
        match key {
            "from" | "via" | "edns" => {}
            "rd" => m = with_rd(m),
            "do" => m = with_do(m),
            "class" => {
                let class: DNSClass = value.parse().map_err(|e| format!("{o}: {e}"))?;
                m.queries[0].set_query_class(class);
            }
            "opcode" => {
                m.metadata.op_code = match value {
                    "STATUS" => OpCode::Status,
                    "UPDATE" => OpCode::Update,
                    "NOTIFY" => OpCode::Notify,
                    n => OpCode::from_u8(n.parse().map_err(|e| format!("{o}: {e}"))?),
                }
            }
            "ednsver" => m = with_edns_version(m, value.parse().map_err(|e| format!("{o}: {e}"))?),
            "ecs" => {
                let (addr, len) = value.split_once('/').ok_or(format!("{o}: addr/len"))?;
                m = with_ecs(m, addr, len.parse().map_err(|e| format!("{o}: {e}"))?);
            }
            "opt" => {
                let (code, hex) = value.split_once(':').ok_or(format!("{o}: code:hex"))?;
                let code: u16 = code.parse().map_err(|e| format!("{o}: {e}"))?;
                let bytes = raw_bytes(&[hex])?;
                m = with_edns_option(m, EdnsOption::Unknown(code, bytes));
            }
            _ => return Err(format!("unknown option {o:?}")),
        }
    }
    Ok(m)
}

fn option<'a>(options: &'a [String], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
}

/// The name of an rcode as the rows write it.
fn rcode_name(rc: u16) -> String {
    // 16 is BADVERS in an OPT and BADSIG in a TSIG; there is no TSIG here.
    if rc == 16 {
        return "BADVERS".into();
    }
    match <ResponseCode as From<u16>>::from(rc) {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        _ => format!("RCODE{rc}"),
    }
}

/// What the query of a run carries that the reply must echo.
struct Sent {
    bytes: Vec<u8>,
    message: Option<Message>,
}

/// Runs one row once; `Err` holds the report of a failing run.
fn check(loaded: &Loaded, scenario: &str, run: &Run<'_>) -> Result<(), String> {
    let row = run.row;
    let label = format!(
        "{scenario}:{}: {}{}",
        row.line,
        row.text,
        if run.options == row.options {
            String::new()
        } else {
            format!("  [{}]", run.options.join(" "))
        }
    );
    let sent = match &row.ask {
        Ask::Query { name, rtype } => {
            let m = build_query(name, *rtype, &run.options).map_err(|e| format!("{label}: {e}"))?;
            Sent {
                bytes: encode(&m),
                message: Some(m),
            }
        }
        Ask::Raw(bytes) => Sent {
            bytes: bytes.clone(),
            message: None,
        },
    };
    let transport = match option(&run.options, "via") {
        None | Some("udp") => Transport::Udp,
        Some("tcp") => Transport::Tcp,
        Some(other) => return Err(format!("{label}: via={other}?")),
    };
    let from: IpAddr = option(&run.options, "from")
        .unwrap_or("127.0.0.1")
        .parse()
        .map_err(|e| format!("{label}: from: {e}"))?;
    let mut out = Vec::new();
    let outcome = loaded.responder.respond(
        &sent.bytes,
        SocketAddr::new(from, 53_535),
        transport,
        &mut out,
    );
    let want = expected_lines(loaded, row, &sent);
    let got = actual_lines(row, &sent, outcome, &out);
    if want == got {
        Ok(())
    } else {
        Err(format!("{label}\n{}", side_by_side(&want, &got)))
    }
}

/// The section lines of a row or a reply: sorted unless `ordered`.
fn section(prefix: &str, records: impl IntoIterator<Item = String>, ordered: bool) -> Vec<String> {
    let mut v: Vec<String> = records
        .into_iter()
        .map(|r| format!("{prefix} {r}"))
        .collect();
    if !ordered {
        v.sort();
    }
    v
}

fn header_line(id_echoed: bool, qr: bool, opcode: u8) -> String {
    format!(
        "HEADER id={} qr={} opcode={opcode}",
        if id_echoed { "echoed" } else { "other" },
        u8::from(qr)
    )
}

fn question_lines(m: &Message) -> Vec<String> {
    m.queries
        .iter()
        .map(|q| {
            format!(
                "QUESTION {} {} {}",
                q.name(),
                q.query_class(),
                q.query_type()
            )
        })
        .collect()
}

fn expected_lines(loaded: &Loaded, row: &Row, sent: &Sent) -> Vec<String> {
    let mut v = Vec::new();
    if row.reply == ["DROP"] {
        v.push("REPLY DROP".to_owned());
        return v;
    }
    v.push(header_line(true, true, (sent.bytes[2] >> 3) & 0x0f));
    if let Some(m) = &sent.message {
        v.extend(question_lines(m));
    }
    v.push(format!("REPLY {}", row.reply.join(" ")));
    match (&row.edns, &sent.message) {
        (Some(e), _) => v.push(format!("EDNS {e}")),
        (None, Some(m)) => v.push(match &m.edns {
            Some(e) => format!(
                "EDNS payload={} version=0 do={} options=-",
                loaded.max_udp_payload,
                u8::from(e.flags().dnssec_ok)
            ),
            None => "EDNS none".to_owned(),
        }),
        (None, None) => {}
    }
    if let Some(scope) = &row.scope {
        v.push(format!("SCOPE {scope}"));
    }
    if let Some(max) = row.max_size {
        v.push(format!("SIZE <= {max}"));
    }
    if let Some(tail) = &row.tail {
        v.push(format!("TAIL {}", hex(tail)));
    }
    v.extend(section("ANSWER", row.answer.iter().cloned(), row.ordered));
    v.extend(section("AUTHORITY", row.authority.iter().cloned(), false));
    v.extend(section("ADDITIONAL", row.additional.iter().cloned(), false));
    v
}

fn actual_lines(row: &Row, sent: &Sent, outcome: Outcome, out: &[u8]) -> Vec<String> {
    if outcome == Outcome::Drop {
        return vec!["REPLY DROP".to_owned()];
    }
    let Ok(r) = Message::from_vec(out) else {
        return vec![format!("UNPARSABLE {}", hex(out))];
    };
    let mut v = vec![header_line(
        out.len() >= 2 && out[..2] == sent.bytes[..2],
        out.len() >= 3 && out[2] & 0x80 != 0,
        u8::from(r.metadata.op_code),
    )];
    if sent.message.is_some() {
        v.extend(question_lines(&r));
    }
    let mut reply = vec![rcode_name(rcode(&r))];
    for (set, flag) in [
        (r.metadata.authoritative, "aa"),
        (r.metadata.truncation, "tc"),
        (r.metadata.recursion_desired, "rd"),
        (r.metadata.recursion_available, "ra"),
    ] {
        if set {
            reply.push(flag.to_owned());
        }
    }
    v.push(format!("REPLY {}", reply.join(" ")));
    if row.edns.is_some() || sent.message.is_some() {
        v.push(match &r.edns {
            Some(e) => {
                let others: Vec<String> = e
                    .options()
                    .as_ref()
                    .iter()
                    .map(|(code, _)| u16::from(*code))
                    .filter(|&c| c != u16::from(EdnsCode::Subnet))
                    .map(|c| c.to_string())
                    .collect();
                format!(
                    "EDNS payload={} version={} do={} options={}",
                    e.max_payload(),
                    e.version(),
                    u8::from(e.flags().dnssec_ok),
                    if others.is_empty() {
                        "-".to_owned()
                    } else {
                        others.join(",")
                    }
                )
            }
            None => "EDNS none".to_owned(),
        });
    }
    if row.scope.is_some() {
        // What the query sent as ECS (an `opt=8:…` row sends bytes, not an ECS option).
        let sent_ecs = sent
            .message
            .as_ref()
            .and_then(|m| m.edns.as_ref()?.option(EdnsCode::Subnet))
            .and_then(|o| match o {
                EdnsOption::Subnet(cs) => Some(*cs),
                _ => None,
            });
        v.push(match ecs_of(&r) {
            None => "SCOPE none".to_owned(),
            Some(got) => match sent_ecs {
                Some(s) if s.addr() == got.addr() && s.source_prefix() == got.source_prefix() => {
                    format!("SCOPE {}", got.scope_prefix())
                }
                _ => format!(
                    "SCOPE {} echo={}/{}",
                    got.scope_prefix(),
                    got.addr(),
                    got.source_prefix()
                ),
            },
        });
    }
    if let Some(max) = row.max_size {
        v.push(if out.len() <= max {
            format!("SIZE <= {max}")
        } else {
            format!("SIZE {}", out.len())
        });
    }
    if let Some(tail) = &row.tail {
        v.push(if out.ends_with(tail) {
            format!("TAIL {}", hex(tail))
        } else {
            format!("TAIL {}", hex(&out[out.len().saturating_sub(tail.len())..]))
        });
    }
    let shown = |rs: &[Record]| rs.iter().map(show).collect::<Vec<_>>();
    v.extend(section("ANSWER", shown(&r.answers), row.ordered));
    v.extend(section("AUTHORITY", shown(&r.authorities), false));
    v.extend(section("ADDITIONAL", shown(&r.additionals), false));
    v
}

/// Runs every row of a scenario (text named `name`); returns how many runs passed, or
/// fails listing every failing run.
fn run_scenario(name: &str, text: &str) -> usize {
    let s = parse_scenario(name, text);
    assert!(!s.rows.is_empty(), "{name}: no rows");
    let loaded = responder(&s.zones, &s.config);
    let mut total = 0;
    let mut failures = Vec::new();
    for row in &s.rows {
        for run in runs(&s, row) {
            total += 1;
            if let Err(report) = check(&loaded, name, &run) {
                failures.push(report);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} runs ({} rows) failed:\n\n{}",
        failures.len(),
        s.rows.len(),
        failures.join("\n")
    );
    total
}

/// The scenario files.
fn scenario_dir() -> PathBuf {
    repo_dir().join("tests/fixtures/scenarios")
}

/// Runs `tests/fixtures/scenarios/<file>`.
fn run_file(file: &str) -> usize {
    let path = scenario_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    run_scenario(&format!("tests/fixtures/scenarios/{file}"), &text)
}

#[test]
fn every_scenario_file_has_a_test() {
    let this = include_str!("scenarios.rs");
    let mut files: Vec<String> = std::fs::read_dir(scenario_dir())
        .expect("scenario dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.ends_with(".txt").then_some(name)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        assert!(
            this.contains(&format!("run_file(\"{f}\")")),
            "tests/fixtures/scenarios/{f} is run by no test"
        );
    }
}

#[test]
fn a_failing_row_is_reported_with_every_other_failing_row() {
    // The runner itself: two wrong rows among right ones, both reported.
    let text = "ZONE example.net tests/fixtures/good/example.net.toml\n\
                QUERY www.example.net. A\nREPLY NOERROR aa\n\
                ANSWER www.example.net. 300 IN A 192.0.2.10\n\
                ANSWER www.example.net. 300 IN A 192.0.2.11\n\
                QUERY mail.example.net. A\nREPLY NXDOMAIN aa\n\
                QUERY nope.example.net. A edns=1232\nREPLY NXDOMAIN aa\n\
                AUTHORITY example.net. 300 IN SOA ns1.example.net. hostmaster.example.net. \
                2024010101 3600 900 604800 300\n\
                QUERY www.example.net. A\nREPLY NOERROR aa\n\
                ANSWER www.example.net. 300 IN A 192.0.2.10\n";
    let err = std::panic::catch_unwind(|| run_scenario("self-test", text))
        .expect_err("two rows are wrong");
    let msg = err
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(msg.starts_with("2 of 4 runs (4 rows) failed"), "{msg}");
    assert!(
        msg.contains("self-test:6: QUERY mail.example.net. A"),
        "{msg}"
    );
    assert!(
        msg.contains("self-test:11: QUERY www.example.net. A"),
        "{msg}"
    );
    assert!(
        msg.contains("! REPLY NXDOMAIN aa") && msg.contains("| REPLY NOERROR aa"),
        "{msg}"
    );
    assert!(
        !msg.contains("self-test:2:") && !msg.contains("self-test:8:"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------
// The scenario files, one test each

#[test]
fn scenarios_example_net() {
    run_file("example-net.txt");
}

#[test]
fn scenarios_short_ttl() {
    run_file("short-ttl.txt");
}

#[test]
fn scenarios_parent_child() {
    run_file("parent-child.txt");
}

#[test]
fn scenarios_shipped() {
    run_file("shipped.txt");
}

#[test]
fn scenarios_payload_4096() {
    run_file("payload-4096.txt");
}

#[test]
fn scenarios_cname_chains() {
    run_file("cname-chains.txt");
}

#[test]
fn scenarios_geo_shipped_city() {
    run_file("geo-shipped-city.txt");
}

#[test]
fn scenarios_geo_nearest() {
    run_file("geo-nearest.txt");
}

#[test]
fn scenarios_geo_scope_zero() {
    run_file("geo-scope-zero.txt");
}

#[test]
fn scenarios_geo_unknown_clients() {
    run_file("geo-unknown-clients.txt");
}

#[test]
fn scenarios_geo_no_geoip() {
    run_file("geo-no-geoip.txt");
}

#[test]
fn scenarios_geo_map() {
    run_file("geo-map.txt");
}

#[test]
fn scenarios_geo_map_without_asn() {
    run_file("geo-map-without-asn.txt");
}

#[test]
fn scenarios_geo_network_overrides() {
    run_file("geo-network-overrides.txt");
}

#[test]
fn scenarios_geo_location_overrides() {
    run_file("geo-location-overrides.txt");
}

#[test]
fn scenarios_geo_country() {
    run_file("geo-country.txt");
}

#[test]
fn scenarios_geo_flat_pair() {
    run_file("geo-flat-pair.txt");
}

#[test]
fn scenarios_geo_flat_v4_only() {
    run_file("geo-flat-v4-only.txt");
}

#[test]
fn scenarios_geo_ipinfo() {
    run_file("geo-ipinfo.txt");
}

#[test]
fn scenarios_geo_ipinfo_asn() {
    run_file("geo-ipinfo-asn.txt");
}

#[test]
fn scenarios_geo_families() {
    run_file("geo-families.txt");
}

// ---------------------------------------------------------------------------------------
// Rows computed here

/// The data centers of `tests/fixtures/scenarios/example.org.toml`: id, IPv4, IPv6,
/// latitude, longitude, in the order written.
fn org_datacenters() -> Vec<(String, String, String, f64, f64)> {
    let path = scenario_dir().join("example.org.toml");
    let text = std::fs::read_to_string(&path).expect("example.org.toml");
    let zone: toml::Table = toml::from_str(&text).expect("zone is TOML");
    let dcs = zone["datacenters"].as_table().expect("[datacenters]");
    let mut v = Vec::new();
    for (id, dc) in dcs {
        let addrs = dc["addresses"].as_array().expect("addresses");
        let loc = dc["location"].as_array().expect("location");
        v.push((
            id.clone(),
            addrs[0].as_str().expect("v4").to_owned(),
            addrs[1].as_str().expect("v6").to_owned(),
            loc[0].as_float().expect("latitude"),
            loc[1].as_float().expect("longitude"),
        ));
    }
    v
}

/// Great-circle distance in km (haversine, mean Earth radius 6371 km), computed here
/// independently of the server.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[test]
fn nearest_orders_the_answer_by_great_circle_distance() {
    // For every network of the test City database, the order the distances give.
    let dcs = org_datacenters();
    assert_eq!(dcs.len(), 5);
    let mut text = String::from(
        "ZONE example.org tests/fixtures/scenarios/example.org.toml\n\
         \x20   [names.near.gslb]\n\
         \x20   datacenters = [\"ams\", \"nyc\", \"sin\", \"syd\", \"gru\"]\n\
         \x20   policy = \"nearest\"\n\
         \x20   max_datacenters = 3\n\
         \x20   [names.all.gslb]\n\
         \x20   datacenters = [\"ams\", \"nyc\", \"sin\", \"syd\", \"gru\"]\n\
         \x20   max_datacenters = 5\n\
         CONFIG\n\
         \x20   [geoip]\n\
         \x20   databases = [\"geoip/test-city.mmdb\"]\n\
         ORDERED\n",
    );
    let mut rows = 0;
    for &(network, place) in NETWORKS {
        let mut ranked: Vec<(&str, f64)> = dcs
            .iter()
            .map(|(id, _, _, lat, lon)| {
                (
                    id.as_str(),
                    haversine_km((place.latitude, place.longitude), (*lat, *lon)),
                )
            })
            .collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        // The distances differ by hundreds of km, so no reasonable formula orders them
        // differently: the test checks the ranking, not rounding.
        for w in ranked.windows(2) {
            assert!(w[1].1 - w[0].1 > 300.0, "{network}: near tie {ranked:?}");
        }
        // The loopback ranges are also asked from a source address inside them.
        let mut clients = vec![format!("ecs={network} via=udp,tcp")];
        if let Some(net) = network.strip_suffix(".0/24")
            && net.starts_with("127.0.")
        {
            clients.push(format!("from={net}.5"));
        }
        for client in &clients {
            for rtype in [RecordType::A, RecordType::AAAA] {
                for (name, n) in [("near", 3), ("all", 5)] {
                    text.push_str(&format!("QUERY {name}.example.org. {rtype} {client}\n"));
                    text.push_str("REPLY NOERROR aa\n");
                    for (id, _) in &ranked[..n] {
                        let (_, v4, v6, _, _) =
                            dcs.iter().find(|d| d.0 == *id).expect("data center");
                        let addr = if rtype == RecordType::AAAA { v6 } else { v4 };
                        text.push_str(&format!(
                            "ANSWER {name}.example.org. 30 IN {rtype} {addr}\n"
                        ));
                    }
                    rows += 1;
                }
            }
        }
    }
    let loopback = NETWORKS
        .iter()
        .filter(|(n, _)| n.starts_with("127.0."))
        .count();
    assert_eq!(loopback, 6);
    assert_eq!(rows, 2 * 2 * (NETWORKS.len() + loopback));
    // ECS rows run over UDP and TCP.
    let runs = run_scenario("nearest (computed)", &text);
    assert_eq!(runs, 2 * 2 * (2 * NETWORKS.len() + loopback));
}

#[test]
fn every_message_of_a_header_or_more_with_qr_clear_is_answered() {
    // The garbage of `dns::random_garbage_is_answered_and_never_stops_the_server`, and
    // more of it, in-process: a reply for each, with the id and QR set.
    let loaded = responder(
        &[(
            "example.net".to_owned(),
            include_str!("../fixtures/good/example.net.toml").to_owned(),
        )],
        "",
    );
    let mut out = Vec::new();
    for packet in garbage_queries(2000) {
        for transport in [Transport::Udp, Transport::Tcp] {
            let src = SocketAddr::new([127, 0, 0, 1].into(), 53_535);
            let outcome = loaded.responder.respond(&packet, src, transport, &mut out);
            assert_eq!(outcome, Outcome::Reply, "{packet:02x?}");
            assert!(out.len() >= 12, "{out:02x?}");
            assert_eq!(out[..2], packet[..2], "id: {out:02x?}");
            assert_eq!(out[2] & 0x80, 0x80, "QR: {out:02x?}");
            assert_eq!(out[3] & 0x80, 0, "RA: {out:02x?}");
        }
    }
}

#[test]
fn any_at_the_apex_gets_one_rrset() {
    // RFC 8482 §4.2: the apex has NS, MX, A and TXT; which one set comes back is the
    // server's choice, so this is a property, not a row.
    let loaded = responder(
        &[(
            "example.net".to_owned(),
            include_str!("../fixtures/good/example.net.toml").to_owned(),
        )],
        "",
    );
    let q = query("example.net.", RecordType::ANY);
    let mut out = Vec::new();
    let src = SocketAddr::new([127, 0, 0, 1].into(), 53_535);
    let outcome = loaded
        .responder
        .respond(&encode(&q), src, Transport::Udp, &mut out);
    assert_eq!(outcome, Outcome::Reply);
    let r = parse(&out);
    assert_head(&q, &r, Head::aa());
    assert!(!r.answers.is_empty(), "{r}");
    let (t, owner) = (r.answers[0].record_type(), &r.answers[0].name);
    assert!(
        r.answers
            .iter()
            .all(|a| a.record_type() == t && a.name == *owner),
        "ANY must be answered with one RRset\n{r}"
    );
}
