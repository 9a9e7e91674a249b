//! The AF_XDP path, from outside: a veth pair between two network namespaces this test
//! creates, Meridian with `[xdp]` on one end, real DNS clients in the other. Every UDP
//! answer must equal the socket path's for the same query (the same server without
//! `[xdp]`), over IPv4, IPv6 and IPv4 in frames with a VLAN tag; TCP and other traffic
//! still reach the kernel; the XDP
//! threads answered the UDP queries; the program is gone after exit.
//!
//! Needs root and a kernel with XDP sockets; without them it says so and passes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::{hex, ip, query, with_ecs, with_edns};

/// Two namespaces joined by a veth pair: server end 192.0.2.1/25 and 2001:db8:1::1, client
/// end 192.0.2.10/25 and 2001:db8:1::10 (Amsterdam in the test GeoIP data). Deleted on drop.
struct Net {
    server: String,
    client: String,
    dev: String,
}

impl Net {
    fn new() -> Self {
        let id = std::process::id() % 100_000;
        let net = Self {
            server: format!("mx-s{id}"),
            client: format!("mx-c{id}"),
            dev: format!("mxs{id}"),
        };
        let peer = format!("mxc{id}");
        ip(&["netns", "add", &net.server]);
        ip(&["netns", "add", &net.client]);
        ip(&[
            "link",
            "add",
            &net.dev,
            "netns",
            &net.server,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &net.client,
        ]);
        for (ns, dev, v4, v6) in [
            (&net.server, &net.dev, "192.0.2.1/25", "2001:db8:1::1/64"),
            (&net.client, &peer, "192.0.2.10/25", "2001:db8:1::10/64"),
        ] {
            ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
            ip(&["-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// Whether an XDP program is attached to the server end.
    fn attached(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.server, "-d", "link", "show", &self.dev])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).contains("xdp id")
    }

    /// Sends `queries` from the client namespace (UDP or TCP) and returns each reply
    /// (`None` for no reply within 2 s).
    fn ask(&self, proto: &str, server: &str, queries: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        self.run_client(CLIENT, &[proto, server, "5300"], queries)
    }

    /// Sends `queries` over IPv4 from 192.0.2.10 in Ethernet frames with an 802.1Q tag
    /// (VLAN 10) written by hand on a packet socket, and returns each reply's DNS message.
    fn ask_tagged(&self, queries: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        let id = std::process::id() % 100_000;
        let mac = |ns: &str, dev: &str| {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "cat"])
                .arg(format!("/sys/class/net/{dev}/address"))
                .output()
                .expect("ip runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let peer = format!("mxc{id}");
        let (server_mac, client_mac) = (mac(&self.server, &self.dev), mac(&self.client, &peer));
        let args = [
            peer.as_str(),
            &server_mac,
            &client_mac,
            "192.0.2.10",
            "192.0.2.1",
            "5300",
            "10",
        ];
        self.run_client(TAGGED_CLIENT, &args, queries)
    }

    /// Runs the Python client `script` with `args` in the client namespace: hex queries in,
    /// each reply out (`None` for none within 2 s).
    fn run_client(&self, script: &str, args: &[&str], queries: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.client, "python3", "-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut stdin = child.stdin.take().expect("stdin");
        for q in queries {
            writeln!(stdin, "{}", hex(q)).expect("write query");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("client ends");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| (l != "timeout").then(|| unhex(l)))
            .collect()
    }
}

/// A DNS client on a packet socket: each query in a frame with an 802.1Q tag, the reply
/// found by its UDP ports, whether the kernel took the tag off on receipt or not.
const TAGGED_CLIENT: &str = r#"
import socket, sys, binascii, struct, time
dev, dst, src, sip, dip, port, vid = sys.argv[1:8]
port, vid = int(port), int(vid)
mac = lambda m: binascii.unhexlify(m.replace(':', ''))
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((dev, 0))
s.settimeout(0.2)
sport = 41000
for line in sys.stdin:
    q = binascii.unhexlify(line.strip())
    sport += 1
    udp = struct.pack('!HHHH', sport, port, 8 + len(q), 0) + q
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                     socket.inet_aton(sip), socket.inet_aton(dip))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    s.send(mac(dst) + mac(src) + struct.pack('!HH', 0x8100, vid) + b'\x08\x00' + ip + udp)
    got, end = None, time.time() + 2
    while got is None and time.time() < end:
        try:
            f = s.recv(65535)
        except socket.timeout:
            continue
        at = 12
        while f[at:at + 2] in (b'\x81\x00', b'\x88\xa8'):
            at += 4
        if f[at:at + 2] != b'\x08\x00' or f[at + 11] != 17:
            continue
        u = at + 2 + (f[at + 2] & 15) * 4
        sp, dp, ln = struct.unpack('!HHH', f[u:u + 6])
        if sp == port and dp == sport:
            got = f[u + 8:u + ln]
    print(binascii.hexlify(got).decode() if got is not None else "timeout")
"#;

impl Drop for Net {
    fn drop(&mut self) {
        // The veth pair goes with its namespaces.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.server])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.client])
            .status();
    }
}

/// A DNS client in Python (the namespace has no other): hex queries in, hex replies out.
const CLIENT: &str = r#"
import socket, sys, binascii
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
for line in sys.stdin:
    q = binascii.unhexlify(line.strip())
    s = socket.socket(fam, socket.SOCK_DGRAM if proto == 'udp' else socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        if proto == 'udp':
            s.sendto(q, (host, port)); r = s.recv(65535)
        else:
            s.connect((host, port)); s.sendall(len(q).to_bytes(2, 'big') + q)
            n = int.from_bytes(s.recv(2), 'big'); r = b''
            while len(r) < n: r += s.recv(n - len(r))
        print(binascii.hexlify(r).decode())
    except socket.timeout:
        print("timeout")
    s.close()
"#;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Runs Meridian in the server namespace, with `[xdp]` on the veth or not, until `f` is
/// done; returns `f`'s result and the server's log.
fn with_server<T>(net: &Net, xdp: bool, f: impl FnOnce() -> T) -> (T, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    // The example zone, and example.net for answers too big for a UDP reply (TC).
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).expect("zones dir");
    for (from, to) in [
        ("zones/example.com.toml", "example.com.toml"),
        ("tests/fixtures/good/example.net.toml", "example.net.toml"),
    ] {
        std::fs::copy(root.join(from), zones.join(to)).expect("copy zone");
    }
    let mut cfg = format!(
        "listen = [\"0.0.0.0:5300\", \"[::]:5300\"]\nudp_threads = 1\nzones_dir = {:?}\n\
         state_dir = {:?}\n[api]\nlisten = \"off\"\n[geoip]\ndatabases = [{:?}]\n",
        zones,
        dir.path().join("state"),
        root.join("geoip/test-city.mmdb"),
    );
    if xdp {
        cfg.push_str(&format!("[xdp]\ninterfaces = [\"{}\"]\n", net.dev));
    }
    let cfg_path = dir.path().join("meridian.toml");
    std::fs::write(&cfg_path, cfg).expect("write config");
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = Stopped(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.server,
                env!("CARGO_BIN_EXE_meridian"),
                "--config",
            ])
            .arg(&cfg_path)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("meridian starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("listening on udp")
    {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = f();
    drop(server);
    (out, std::fs::read_to_string(&log_path).unwrap_or_default())
}

/// A server process, stopped when this is dropped, also when the test panics: SIGTERM (so
/// it detaches its program and logs its counts), then SIGKILL after 10 s.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether this machine can run the test: root, and XDP sockets in the kernel.
fn can_run() -> bool {
    // SAFETY: plain calls; the socket, if made, is closed at once.
    unsafe {
        if libc::geteuid() != 0 {
            return false;
        }
        let fd = libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0);
        if fd < 0 {
            return false;
        }
        libc::close(fd);
    }
    Command::new("python3").arg("-V").output().is_ok()
}

fn queries() -> Vec<Vec<u8>> {
    let v: Vec<Message> = vec![
        query("www.example.com.", RecordType::A),
        query("WWW.Example.COM.", RecordType::AAAA),
        query("cdn.example.com.", RecordType::A),
        query("cdn.example.com.", RecordType::AAAA),
        query("nothing-here.example.com.", RecordType::A),
        query("example.com.", RecordType::SOA),
        query("example.com.", RecordType::MX),
        with_edns(query("cdn.example.com.", RecordType::A), 1232),
        with_ecs(
            with_edns(query("cdn.example.com.", RecordType::A), 1232),
            "198.51.100.0",
            24,
        ),
        with_ecs(
            with_edns(query("cdn.example.com.", RecordType::A), 1232),
            "203.0.113.0",
            24,
        ),
        query("example.org.", RecordType::A),
        // 100 addresses: TC at 512 bytes, and at 1232.
        query("many.example.net.", RecordType::A),
        with_edns(query("many.example.net.", RecordType::A), 1232),
    ];
    let mut bytes: Vec<Vec<u8>> = v.iter().map(|m| m.to_vec().expect("encode")).collect();
    // Not a QUERY (NOTIMP through the general path), and a truncated message (FORMERR).
    let mut status = bytes[0].clone();
    status[2] = (status[2] & 0x87) | (2 << 3);
    bytes.push(status);
    bytes.push(bytes[0][..14].to_vec());
    bytes
}

#[test]
fn xdp_answers_as_the_sockets_do_and_leaves_nothing_behind() {
    if !can_run() {
        eprintln!("skipped: needs root, python3 and a kernel with AF_XDP sockets");
        return;
    }
    let net = Net::new();
    let qs = queries();
    // The last round: over the sockets untagged, over XDP in frames with a VLAN tag (which
    // the kernel, with no VLAN device here, would drop), from the same address.
    let ask_all = |tagged: bool| {
        [
            net.ask("udp", "192.0.2.1", &qs),
            net.ask("udp", "2001:db8:1::1", &qs),
            net.ask("tcp", "192.0.2.1", &qs[..1]),
            if tagged {
                net.ask_tagged(&qs)
            } else {
                net.ask("udp", "192.0.2.1", &qs)
            },
        ]
    };
    let (sockets, _) = with_server(&net, false, || ask_all(false));
    assert!(!net.attached());
    let ((xdp, attached), log) = with_server(&net, true, || (ask_all(true), net.attached()));
    assert!(attached, "program attached while serving: {log}");
    assert!(!net.attached(), "program detached after exit");
    // The big answer says TC over UDP, as it does over the sockets.
    let many = qs.len() - 4;
    let tc = |r: &Option<Vec<u8>>| r.as_ref().is_some_and(|r| r.len() > 2 && r[2] & 0x02 != 0);
    assert!(tc(&xdp[0][many]) && tc(&xdp[0][many + 1]) && tc(&xdp[1][many]));
    let rounds = ["IPv4", "IPv6", "TCP", "IPv4 with a VLAN tag"];
    for (family, (s, x)) in rounds.iter().zip(sockets.iter().zip(&xdp)) {
        assert_eq!(s.len(), x.len());
        for (i, (s, x)) in s.iter().zip(x).enumerate() {
            assert!(s.is_some(), "{family} query {i}: the socket path answered");
            assert_eq!(s, x, "{family} query {i}: XDP and sockets differ");
        }
    }
    // Every UDP query of both families came through XDP (TCP through the kernel).
    let answered: u64 = log
        .lines()
        .filter_map(|l| {
            l.split("answered ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(answered, 3 * qs.len() as u64, "{log}");
    // The socket's kernel counts are read at exit: nothing dropped at this rate.
    assert!(
        log.contains("the kernel dropped 0 (RX ring full 0, no free frame 0, other 0)"),
        "{log}"
    );
}

#[test]
fn a_missing_interface_is_reported_and_the_sockets_serve() {
    let s = crate::harness::Server::start(
        &[(
            "example.net",
            include_str!("../fixtures/good/example.net.toml"),
        )],
        "[xdp]\ninterfaces = [\"nosuchif0\"]\n",
    );
    let r = s.udp(&query("www.example.net.", RecordType::A));
    assert!(!r.answers.is_empty(), "answered over the socket");
    let log = s.log();
    assert!(
        log.contains("xdp: no interface nosuchif0; serving from sockets only"),
        "{log}"
    );
}
