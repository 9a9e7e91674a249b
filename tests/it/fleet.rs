//! The fleet, from outside: three real etcd members and three `meridian serve` processes
//! sharing them, real HTTP check targets, DNS over UDP.
//!
//! - On loopback: an override given on one node answers on all three within 2 s; one given
//!   `--for` ends by itself; a site going down moves every node's clients within
//!   interval × fall plus the exchange; one etcd member killed changes nothing; `push`
//!   reaches every node and a broken set is refused before anything is stored; a node
//!   killed hands its probe assignments to the others.
//! - Across a veth pair between the root namespace and one this test creates (needs root):
//!   a node cut off from one site changes no node's answers under `majority`; a node cut
//!   off from etcd keeps the last agreed state, then goes by its own probes after
//!   `isolated_after`, and follows the fleet again once back.
//!
//! Every wait is a bounded poll. Needs etcd (Debian's etcd-server), which .ci/run installs.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::check_server::CheckServer;
use crate::harness::*;
use crate::health::{FAST, check};
use crate::weights::zone_with_serial;

/// The probe timing of [`FAST`], which the checks use: every 500 ms, down after 2
/// failures, up after 1 success.
const INTERVAL: Duration = Duration::from_millis(500);
const FALL: u32 = 2;

// ---------------------------------------------------------------------------------------
// etcd

/// Three etcd members on `ip`, each with its own data directory; killed on drop.
struct Etcd {
    members: Vec<Option<Child>>,
    clients: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A port free on `ip` a moment ago.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("a free port on {ip}: {e}"))
        .port()
}

impl Etcd {
    fn start(ip: &str) -> Self {
        assert!(
            Command::new("etcd").arg("--version").output().is_ok(),
            "etcd is not installed: `apt-get install etcd-server` (the fleet tests run real \
             members; .ci/run installs it)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let peers: Vec<String> = (0..3)
            .map(|_| format!("http://{ip}:{}", free_port(ip)))
            .collect();
        let clients: Vec<String> = (0..3)
            .map(|_| format!("http://{ip}:{}", free_port(ip)))
            .collect();
        let cluster: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("e{i}={p}"))
            .collect();
        let members = (0..3)
            .map(|i| {
                let log = std::fs::File::create(dir.path().join(format!("e{i}.log"))).unwrap();
                Some(
                    Command::new("etcd")
                        .args(["--name", &format!("e{i}")])
                        .arg("--data-dir")
                        .arg(dir.path().join(format!("e{i}")))
                        .args(["--listen-client-urls", &clients[i]])
                        .args(["--advertise-client-urls", &clients[i]])
                        .args(["--listen-peer-urls", &peers[i]])
                        .args(["--initial-advertise-peer-urls", &peers[i]])
                        .args(["--initial-cluster", &cluster.join(",")])
                        .args(["--initial-cluster-state", "new"])
                        .args(["--initial-cluster-token", "meridian-test"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(log)
                        .spawn()
                        .expect("spawn etcd"),
                )
            })
            .collect();
        let etcd = Self {
            members,
            clients,
            _dir: dir,
        };
        for url in &etcd.clients {
            wait_for("etcd member healthy", Duration::from_secs(20), || {
                http_get(url.trim_start_matches("http://"), "/health")
                    .filter(|b| b.contains("\"health\":\"true\""))
            });
        }
        etcd
    }

    /// `["http://...", ...]` for the config.
    fn toml_list(&self) -> String {
        let quoted: Vec<String> = self.clients.iter().map(|c| format!("\"{c}\"")).collect();
        format!("[{}]", quoted.join(", "))
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// The body of `GET path` on `host:port` over HTTP/1.0, if it answers 200 within 2 s.
fn http_get(hostport: &str, path: &str) -> Option<String> {
    let addr: SocketAddr = hostport.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// Polls `f` every 50 ms until it gives `Some`, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Zones and nodes

/// example.com with `www` over ams and fra (answered in that order while both are up),
/// each checked by HTTP on its own port.
fn zone(ams: &CheckServer, fra: &CheckServer, serial: u32, order: &str) -> String {
    let body = format!(
        r#"{}
{}
[datacenters.ams]
addresses = ["{}"]
location = [0.0, 0.0]
check = "ams"
[datacenters.fra]
addresses = ["{}"]
location = [0.0, 0.0]
check = "fra"
[names.www.gslb]
datacenters = ["ams", "fra"]
policy = "map"
ttl = "30s"
[names.www.gslb.map]
default = {order}
"#,
        check("ams", "http", ams.port(), FAST, ""),
        check("fra", "http", fra.port(), FAST, ""),
        ams.ip(),
        fra.ip(),
    );
    zone_with_serial(&body, serial)
}

const AMS_FIRST: &str = r#"["ams", "fra"]"#;
const FRA_FIRST: &str = r#"["fra", "ams"]"#;

/// The `[cluster]` section of node `n`.
fn cluster(etcd: &Etcd, n: usize, extra: &str) -> String {
    format!(
        "[cluster]\netcd = {}\nnode = \"ns{n}\"\nregion = \"r{n}\"\nlease_ttl = \"3s\"\n{extra}\n",
        etcd.toml_list()
    )
}

/// The addresses `www` answers with, asked from `src`.
fn www_from(s: &Server, src: &str) -> Option<Vec<IpAddr>> {
    let sock = UdpSocket::bind((src, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .ok()?;
    let q = query("www.example.com.", RecordType::A);
    sock.send_to(&encode(&q), s.addr).ok()?;
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = sock.recv_from(&mut buf).ok()?;
        let r = parse(&buf[..n]);
        if from == s.addr && r.metadata.id == q.metadata.id {
            return Some(answer_ips(&r));
        }
    }
}

fn www(s: &Server) -> Option<Vec<IpAddr>> {
    www_from(s, "127.0.0.1")
}

/// Waits until every node answers `ip` (asked from each node's `src`); how long it took.
fn all_answer(nodes: &[(&Server, &str)], ip: IpAddr, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    let deadline = start + limit;
    loop {
        let got: Vec<Option<Vec<IpAddr>>> = nodes.iter().map(|(s, src)| www_from(s, src)).collect();
        if got.iter().all(|g| g.as_deref() == Some(&[ip][..])) {
            return start.elapsed();
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = nodes.iter().map(|(s, _)| s.log()).collect();
            panic!(
                "{what}: not every node answers {ip} within {limit:?}: {got:?}\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli_ok(s: &Server, subcommand: &str, args: &[&str]) -> String {
    let o = s.cli(subcommand, args);
    assert!(
        o.status.success(),
        "meridian {subcommand} {args:?}: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The node's `/v1/fleet`, parsed.
fn fleet_of(s: &Server) -> serde_json::Value {
    let body = http_get(&s.api_addr().to_string(), "/v1/fleet").expect("GET /v1/fleet");
    serde_json::from_str(&body).expect("fleet JSON")
}

// ---------------------------------------------------------------------------------------
// Loopback

#[test]
fn overrides_health_and_zone_sets_are_shared_by_every_node() {
    let mut etcd = Etcd::start("127.0.0.1");
    let ams = CheckServer::http("127.0.0.71");
    let fra = CheckServer::http("127.0.0.72");
    let (ams_ip, fra_ip) = (ams.ip(), fra.ip());
    let text = zone(&ams, &fra, 1, AMS_FIRST);
    let nodes: Vec<Server> = (1..=3)
        .map(|n| {
            Server::start(
                &[("example.com", &text)],
                &cluster(&etcd, n, "probers = 2\nisolated_after = \"30s\""),
            )
        })
        .collect();
    let all: Vec<(&Server, &str)> = nodes.iter().map(|s| (s, "127.0.0.1")).collect();
    all_answer(
        &all,
        ams_ip,
        Duration::from_secs(15),
        "every node answers ams at first",
    );
    wait_for("all three nodes joined", Duration::from_secs(10), || {
        nodes
            .iter()
            .all(|s| fleet_of(s)["nodes"].as_array().map(Vec::len) == Some(3))
            .then_some(())
    });

    // Probers: each target is probed by exactly two of the three nodes.
    let probing: Vec<Vec<String>> = nodes
        .iter()
        .map(|s| {
            fleet_of(s)["probing"]
                .as_array()
                .expect("probing list")
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    for ip in [ams_ip, fra_ip] {
        let probers = probing
            .iter()
            .filter(|p| p.iter().any(|l| l.starts_with(&format!("{ip}:"))))
            .count();
        assert_eq!(probers, 2, "{ip} is probed by two nodes: {probing:?}");
    }

    // The standing is exported.
    let metrics = http_get(&nodes[0].api_addr().to_string(), "/metrics").expect("GET /metrics");
    for line in [
        "meridian_cluster_standing{standing=\"joined\"} 1",
        "meridian_cluster_standing{standing=\"cut_off\"} 0",
        "meridian_cluster_nodes 3",
        "meridian_cluster_transitions_total{to=\"joined\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // The status page shows the fleet: this node's standing and every node.
    let dom = crate::status::dump_dom(&format!("http://{}/", nodes[1].api_addr()));
    assert!(
        dom.contains("data-standing=\"joined\"")
            && (1..=3).all(|n| dom.contains(&format!("data-node=\"ns{n}\"")))
            && dom.contains("every node serves the same zone set"),
        "{dom}"
    );

    // An override on one node answers on all three within 2 s, with who and why.
    let asked = Instant::now();
    cli_ok(
        &nodes[0],
        "override",
        &["ams", "down", "--reason", "fibre cut"],
    );
    all_answer(&all, fra_ip, Duration::from_secs(2), "override reaches all");
    let took = asked.elapsed();
    eprintln!("override on ns1 answered on all three {took:?} after the command started");
    assert!(took <= Duration::from_secs(2), "{took:?}");
    let listed = cli_ok(&nodes[2], "overrides", &[]);
    assert!(
        listed.contains("data center ams of example.com.: down (by ")
            && listed.contains("\"fibre cut\""),
        "{listed}"
    );
    cli_ok(&nodes[1], "override", &["ams", "clear"]);
    all_answer(&all, ams_ip, Duration::from_secs(2), "clear reaches all");
    assert_eq!(cli_ok(&nodes[0], "overrides", &[]), "no overrides\n");

    // An override bound to a lease ends by itself.
    let set = Instant::now();
    cli_ok(&nodes[2], "override", &["ams", "drain", "--for", "2s"]);
    all_answer(
        &all,
        fra_ip,
        Duration::from_secs(2),
        "timed override reaches all",
    );
    let listed = cli_ok(&nodes[0], "overrides", &[]);
    assert!(
        listed.contains("drain (") && listed.contains("expires "),
        "{listed}"
    );
    all_answer(&all, ams_ip, Duration::from_secs(8), "timed override ends");
    let lasted = set.elapsed();
    eprintln!("a 2 s override lasted {lasted:?}");
    assert!(lasted >= Duration::from_millis(1900), "{lasted:?}");

    // A site down: every node moves its clients within interval × fall + the exchange.
    ams.set_status(503);
    let bound = INTERVAL * FALL + Duration::from_secs(3);
    let took = all_answer(&all, fra_ip, bound, "site down moves every node");
    eprintln!(
        "site down: all three nodes moved after {took:?} (interval × fall = {:?})",
        INTERVAL * FALL
    );
    for s in &nodes {
        assert!(
            s.log().contains("is now down (") && s.log().contains("votes down)"),
            "each node logs the fleet's verdict:\n{}",
            s.log()
        );
    }
    ams.set_status(200);
    all_answer(&all, ams_ip, Duration::from_secs(5), "site back");

    // One etcd member killed, the one every node started with: overrides still reach
    // every node, every node stays joined.
    etcd.kill(0);
    cli_ok(&nodes[0], "override", &["ams", "down"]);
    all_answer(
        &all,
        fra_ip,
        Duration::from_secs(5),
        "override with a member down",
    );
    cli_ok(&nodes[0], "override", &["ams", "clear"]);
    all_answer(
        &all,
        ams_ip,
        Duration::from_secs(5),
        "clear with a member down",
    );
    for s in &nodes {
        assert_eq!(fleet_of(s)["link"]["standing"], "joined", "{}", s.log());
        assert_eq!(s.log_count("fleet: cut off"), 0, "{}", s.log());
    }

    // A zone set pushed from one node reaches all; a broken one is refused, nothing stored.
    let file = nodes[0].dir().join("zones").join("example.com.toml");
    std::fs::write(&file, zone(&ams, &fra, 2, FRA_FIRST)).unwrap();
    let asked = Instant::now();
    let pushed = cli_ok(&nodes[0], "push", &[]);
    assert!(pushed.starts_with("pushed zone set 1:"), "{pushed}");
    all_answer(
        &all,
        fra_ip,
        Duration::from_secs(3),
        "pushed set reaches all",
    );
    eprintln!(
        "pushed zone set answered on all three {:?} after the command started",
        asked.elapsed()
    );
    // Each node updates its entry on its next lease beat.
    wait_for(
        "fleet shows set 1 everywhere",
        Duration::from_secs(3),
        || {
            let fleet = cli_ok(&nodes[1], "fleet", &[]);
            (fleet.contains("all serve the same zone set, zones and serials")
                && fleet.matches("example.com.@2").count() == 3
                && fleet.lines().filter(|l| l.contains(" 1 ")).count() == 3)
                .then_some(())
        },
    );
    std::fs::write(&file, zone(&ams, &fra, 3, AMS_FIRST) + "bogus = 1\n").unwrap();
    let o = nodes[0].cli("push", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown key `bogus`") && err.contains("push refused, nothing stored"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let fleet = cli_ok(&nodes[2], "fleet", &[]);
    assert!(fleet.contains("example.com.@2"), "still set 1: {fleet}");
    for s in &nodes[1..] {
        assert_eq!(www(s), Some(vec![fra_ip]), "still the pushed set");
    }

    // A node killed: its lease ends, and the node that did not probe ams takes over from
    // it; answers do not move meanwhile.
    let probes_ams = |s: &Server| {
        fleet_of(s)["probing"]
            .as_array()
            .expect("probing list")
            .iter()
            .any(|l| {
                l.as_str()
                    .unwrap_or_default()
                    .starts_with(&format!("{ams_ip}:"))
            })
    };
    let mut nodes = nodes;
    let idle = nodes
        .iter()
        .position(|s| !probes_ams(s))
        .expect("one node of three does not probe ams");
    let killed = nodes.remove((idle + 1) % 3);
    drop(killed.stop());
    let idle = nodes
        .iter()
        .position(|s| !probes_ams(s))
        .expect("still idle right after the kill");
    let took = Instant::now();
    wait_for("the idle node takes over", Duration::from_secs(8), || {
        for s in &nodes {
            assert_eq!(
                www(s),
                Some(vec![fra_ip]),
                "answers hold during the hand-over"
            );
        }
        let f = fleet_of(&nodes[idle]);
        (f["nodes"].as_array().map(Vec::len) == Some(2) && probes_ams(&nodes[idle])).then_some(())
    });
    eprintln!(
        "a killed node's probe targets moved after {:?}",
        took.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// A node in a namespace of its own

/// A namespace joined to the root one by a veth pair: root end `<net>.1` (etcd), `.3`
/// (the DNS client), `.10` and `.11` (the two sites); namespace end `<net>.2` (the node).
/// Deleting the namespace on drop deletes the pair with it.
struct Link {
    ns: String,
    net: String,
}

impl Link {
    fn new() -> Self {
        let id = std::process::id() % 100_000;
        let link = Self {
            ns: format!("mf{id}"),
            net: format!("10.213.{}", id % 250),
        };
        let (root_dev, ns_dev) = (format!("mfa{id}"), format!("mfb{id}"));
        ip(&["netns", "add", &link.ns]);
        ip(&[
            "link", "add", &root_dev, "type", "veth", "peer", "name", &ns_dev, "netns", &link.ns,
        ]);
        for host in [1, 3, 10, 11] {
            ip(&[
                "addr",
                "add",
                &format!("{}.{host}/24", link.net),
                "dev",
                &root_dev,
            ]);
        }
        ip(&["link", "set", &root_dev, "up"]);
        ip(&[
            "-n",
            &link.ns,
            "addr",
            "add",
            &format!("{}.2/24", link.net),
            "dev",
            &ns_dev,
        ]);
        ip(&["-n", &link.ns, "link", "set", &ns_dev, "up"]);
        ip(&["-n", &link.ns, "link", "set", "lo", "up"]);
        link
    }

    fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }

    /// Makes `host` of the root end unreachable from the namespace (or reachable again).
    fn cut(&self, host: u8, cut: bool) {
        let to = format!("{}/32", self.addr(host));
        let verb = if cut { "add" } else { "del" };
        ip(&["-n", &self.ns, "route", verb, "blackhole", &to]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_node_cut_off_from_a_site_or_from_etcd() {
    if !is_root() {
        eprintln!("skipped: needs root to create a network namespace");
        return;
    }
    let link = Link::new();
    let etcd = Etcd::start(&link.addr(1));
    let ams = CheckServer::http_on_test_link(&link.addr(10));
    let fra = CheckServer::http_on_test_link(&link.addr(11));
    let (ams_ip, fra_ip) = (ams.ip(), fra.ip());
    let text = zone(&ams, &fra, 1, AMS_FIRST);
    let isolated_after = Duration::from_secs(4);
    let extra = format!(
        "quorum = \"majority\"\nprobers = 0\nisolated_after = \"{}s\"",
        isolated_after.as_secs()
    );
    let n1 = Server::start(&[("example.com", &text)], &cluster(&etcd, 1, &extra));
    let n2 = Server::start(&[("example.com", &text)], &cluster(&etcd, 2, &extra));
    let n3 = Server::start_in_netns(
        &[("example.com", &text)],
        &format!(
            "api.listen = \"{}:0\"\n{}",
            link.addr(2),
            cluster(&etcd, 3, &extra)
        ),
        &link.ns,
        &link.addr(2),
    );
    let client = link.addr(3);
    let all = [
        (&n1, "127.0.0.1"),
        (&n2, "127.0.0.1"),
        (&n3, client.as_str()),
    ];
    all_answer(
        &all,
        ams_ip,
        Duration::from_secs(15),
        "every node answers ams at first",
    );
    wait_for("n3 joined", Duration::from_secs(10), || {
        (fleet_of(&n3)["nodes"].as_array().map(Vec::len) == Some(3)).then_some(())
    });

    // n3 alone loses its path to ams: its own probes say down, the fleet says up.
    link.cut(10, true);
    let own_down = format!(
        "target {}:{} (http GET /health) is now down",
        ams_ip,
        ams.port()
    );
    wait_for("n3's own probes fail", Duration::from_secs(5), || {
        (n3.log_count(&own_down) > 0).then_some(())
    });
    let until = Instant::now() + INTERVAL * FALL * 3;
    while Instant::now() < until {
        for (s, src) in &all {
            assert_eq!(
                www_from(s, src),
                Some(vec![ams_ip]),
                "one node's bad path moves no answer under majority\n{}",
                s.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let explained = cli_ok(
        &n3,
        "explain",
        &["www.example.com", "--client", "127.0.0.1"],
    );
    assert!(
        explained.contains("up by the fleet's verdict; this node's probes: down"),
        "{explained}"
    );
    link.cut(10, false);
    let own_up = format!(
        "target {}:{} (http GET /health) is now up",
        ams_ip,
        ams.port()
    );
    wait_for("n3's own probes recover", Duration::from_secs(5), || {
        (n3.log_count(&own_up) > 0).then_some(())
    });

    // n3 cut off from etcd: it keeps the last agreed state while the others move ...
    link.cut(1, true);
    let cut_at = Instant::now();
    wait_for("n3 notices", Duration::from_secs(5), || {
        (n3.log_count("fleet: cut off from etcd") > 0).then_some(())
    });
    let noticed = cut_at.elapsed();
    ams.set_status(503);
    let failed_at = Instant::now();
    let others = [(&n1, "127.0.0.1"), (&n2, "127.0.0.1")];
    all_answer(
        &others,
        fra_ip,
        INTERVAL * FALL + Duration::from_secs(3),
        "n1, n2 move",
    );
    assert_eq!(
        www_from(&n3, &client),
        Some(vec![ams_ip]),
        "cut off, n3 serves the last agreed state\n{}",
        n3.log()
    );
    assert_eq!(n3.log_count("fleet: isolated"), 0, "{}", n3.log());
    // ... then its own view after isolated_after.
    all_answer(
        &[(&n3, client.as_str())],
        fra_ip,
        isolated_after + INTERVAL * FALL + Duration::from_secs(3),
        "n3 goes by its own probes once isolated",
    );
    let moved = failed_at.elapsed();
    assert!(n3.log_count("fleet: isolated") == 1, "{}", n3.log());
    eprintln!("cut off noticed after {noticed:?}; n3 moved {moved:?} after the site failed");

    // Back: it joins again and follows the fleet.
    link.cut(1, false);
    wait_for("n3 joins again", Duration::from_secs(10), || {
        (n3.log_count("fleet: joined again") > 0).then_some(())
    });
    ams.set_status(200);
    all_answer(
        &all,
        ams_ip,
        Duration::from_secs(5),
        "all follow the fleet again",
    );
    drop(etcd);
}
