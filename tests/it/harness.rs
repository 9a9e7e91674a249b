//! A real `meridian` process on 127.0.0.1, and DNS clients to talk to it.
//!
//! [`Server::start`] writes a config and zone files into a temporary directory, runs the
//! binary cargo built for this test run, and waits (at most [`START_TIMEOUT`]) for it to log
//! `listening on udp 127.0.0.1:PORT`; UDP and TCP share that port. The child is killed and
//! reaped when the [`Server`] is dropped, and its log is printed if the test failed.
//!
//! Every network operation has a timeout and every loop a bound, so a broken server fails
//! a test instead of hanging it.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, Record, RecordType};

/// How long a server may take to start listening.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for one UDP answer before resending.
pub(crate) const UDP_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a UDP query is sent before giving up.
pub(crate) const UDP_TRIES: usize = 3;
/// Read and write timeout of TCP clients.
pub(crate) const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// The crate's root directory (where Cargo.toml, zones/ and tests/ are).
pub(crate) fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `meridian` binary built for this test run.
pub(crate) fn meridian() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meridian"));
    cmd.env("NO_COLOR", "1")
        .env_remove("MERIDIAN_LOG")
        .env_remove("RUST_LOG")
        // Not under the test runner's service manager, if it has one.
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    cmd
}

/// Runs `meridian` with `args` in `dir` and returns its output, within `timeout`.
pub(crate) fn run_meridian(dir: &Path, args: &[&str]) -> Output {
    let mut child = meridian()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meridian");
    // Read both pipes on threads so neither can fill up and block the child.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait meridian") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meridian {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`) from log text.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A temporary directory with `zones/` holding `zones` (`(file stem, zone text)`).
fn with_zones(zones: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones_dir = dir.path().join("zones");
    std::fs::create_dir(&zones_dir).expect("zones dir");
    for (stem, text) in zones {
        std::fs::write(zones_dir.join(format!("{stem}.toml")), text).expect("write zone");
    }
    (dir, zones_dir)
}

/// Runs `ip ARGS` (network namespaces and veth pairs of the tests that make them),
/// panicking with its output on failure.
pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `meridian serve`.
pub(crate) struct Server {
    child: Child,
    /// The address UDP and TCP listen on.
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<String>>,
    single_udp_thread: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Serves `zones` (`(file stem, zone text)`: written as `STEM.toml`) with the config
    /// `listen = ["127.0.0.1:0"]`, `zones_dir` set, and `extra_config` appended (so it may
    /// hold top-level keys first, then tables).
    pub(crate) fn start(zones: &[(&str, &str)], extra_config: &str) -> Server {
        Self::start_with_env(zones, extra_config, &[])
    }

    /// [`Server::start`] with `env` set in the server's environment.
    pub(crate) fn start_with_env(
        zones: &[(&str, &str)],
        extra_config: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Server {
        let (dir, zones_dir) = with_zones(zones);
        Self::start_in(dir, &zones_dir, extra_config, env)
    }

    /// Serves the repository's own `zones/` directory (the shipped example zone).
    pub(crate) fn example() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, &repo_dir().join("zones"), "", &[])
    }

    fn start_in(
        dir: tempfile::TempDir,
        zones_dir: &Path,
        extra_config: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Server {
        Self::start_in_at(dir, zones_dir, extra_config, env, None)
    }

    /// [`Server::start`] in network namespace `netns` (one the test created), listening
    /// on `ip` there: an address of the test's veth pair.
    pub(crate) fn start_in_netns(
        zones: &[(&str, &str)],
        extra_config: &str,
        netns: &str,
        ip: &str,
    ) -> Server {
        let (dir, zones_dir) = with_zones(zones);
        Self::start_in_at(dir, &zones_dir, extra_config, &[], Some((netns, ip)))
    }

    fn start_in_at(
        dir: tempfile::TempDir,
        zones_dir: &Path,
        extra_config: &str,
        env: &[(&str, &std::ffi::OsStr)],
        netns: Option<(&str, &str)>,
    ) -> Server {
        let config = dir.path().join("meridian.toml");
        // Servers run side by side: the API gets an ephemeral port too, unless the test
        // configures it.
        let api = if extra_config.contains("[api]") || extra_config.contains("api.") {
            ""
        } else {
            "api.listen = \"127.0.0.1:0\"\n"
        };
        let listen_ip = netns.map_or("127.0.0.1", |(_, ip)| ip);
        let text = format!(
            "listen = [\"{listen_ip}:0\"]\n{api}zones_dir = {:?}\n{extra_config}\n",
            zones_dir.display().to_string()
        );
        std::fs::write(&config, &text).expect("write config");
        let single_udp_thread = extra_config
            .lines()
            .any(|l| l.replace(' ', "") == "udp_threads=1");

        let mut command = match netns {
            None => meridian(),
            Some((ns, _)) => {
                // `ip netns exec` runs the binary in place (no process of its own stays).
                let mut c = meridian();
                let bin = c.get_program().to_owned();
                let mut wrapped = Command::new("ip");
                wrapped.args(["netns", "exec", ns]).arg(bin);
                for (k, v) in c.get_envs() {
                    match v {
                        Some(v) => wrapped.env(k, v),
                        None => wrapped.env_remove(k),
                    };
                }
                wrapped.stdin(Stdio::null());
                c = wrapped;
                c
            }
        };
        let mut child = command
            .arg("--config")
            .arg(&config)
            .env("MERIDIAN_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meridian");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let log = log.clone();
            // Drains stderr for the child's whole life, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let line = strip_ansi(&line);
                    {
                        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                        l.push_str(&line);
                        l.push('\n');
                    }
                    let _ = tx.send(line);
                }
            });
        }

        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on udp ").nth(1) {
                        let addr: SocketAddr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
                        break addr;
                    }
                }
                Err(_) => {
                    // Timed out, or the child closed stderr (exited).
                    let _ = child.kill();
                    let status = child.wait();
                    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    panic!(
                        "meridian did not start listening within {START_TIMEOUT:?} \
                         (status {status:?})\nconfig:\n{text}\nlog:\n{log}"
                    );
                }
            }
        };
        assert!(
            addr.ip().is_loopback() || netns.is_some(),
            "server must listen on loopback: {addr}"
        );
        Server {
            child,
            addr,
            log,
            single_udp_thread,
            _dir: Some(dir),
        }
    }

    /// Everything the server logged so far (ANSI codes removed).
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends `packet` over UDP and returns the raw reply whose id matches, resending up to
    /// [`UDP_TRIES`] times.
    pub(crate) fn udp_bytes(&self, packet: &[u8]) -> Vec<u8> {
        self.udp_bytes_from("127.0.0.1", packet)
    }

    /// [`Server::udp_bytes`] from source address `src` (any 127/8 address works on Linux).
    pub(crate) fn udp_bytes_from(&self, src: &str, packet: &[u8]) -> Vec<u8> {
        let sock = udp_socket_from(src);
        match self.exchange_udp(&sock, packet, UDP_TRIES) {
            Some((reply, _)) => reply,
            None => panic!(
                "no UDP answer from {src} after {UDP_TRIES} tries of {UDP_TIMEOUT:?}\nlog:\n{}",
                self.log()
            ),
        }
    }

    /// Sends `query` over UDP from source address `src` and parses the answer.
    pub(crate) fn udp_from(&self, src: &str, query: &Message) -> Message {
        parse(&self.udp_bytes_from(src, &encode(query)))
    }

    /// Sends `packet` from `sock` up to `tries` times; the reply with the packet's id and
    /// how many sends it took, or `None`.
    pub(crate) fn exchange_udp(
        &self,
        sock: &UdpSocket,
        packet: &[u8],
        tries: usize,
    ) -> Option<(Vec<u8>, usize)> {
        for attempt in 1..=tries {
            sock.send_to(packet, self.addr).expect("udp send");
            if let Some(reply) = recv_matching(sock, self.addr, &packet[..2]) {
                return Some((reply, attempt));
            }
        }
        None
    }

    /// Sends `query` over UDP and parses the answer.
    pub(crate) fn udp(&self, query: &Message) -> Message {
        parse(&self.udp_bytes(&encode(query)))
    }

    /// Sends `packet` once over UDP; the first datagram back within [`UDP_TIMEOUT`], or
    /// `None` when nothing came.
    pub(crate) fn udp_raw(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let sock = self.udp_socket();
        sock.send_to(packet, self.addr).expect("udp send");
        let mut buf = vec![0u8; 65_535];
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.addr => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Sends `packet`, then a well-formed probe query, from one socket. With a single UDP
    /// thread (`udp_threads = 1`) the server handles them in order, so any reply to `packet`
    /// arrives before the probe's: returns that reply, or `None` when the probe's answer came
    /// first. Also asserts that the probe was answered, i.e. the server survived `packet`.
    pub(crate) fn udp_raw_then_probe(&self, packet: &[u8]) -> Option<Vec<u8>> {
        assert!(
            self.single_udp_thread,
            "udp_raw_then_probe needs a server started with `udp_threads = 1`"
        );
        let sock = self.udp_socket();
        let probe = encode(&query("probe.invalid.", RecordType::A));
        sock.send_to(packet, self.addr).expect("udp send");
        sock.send_to(&probe, self.addr).expect("udp send");
        let mut buf = vec![0u8; 65_535];
        let mut reply = None;
        for _ in 0..4 {
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) => panic!(
                    "the server did not answer the probe after {packet:02x?}: {e}\nlog:\n{}",
                    self.log()
                ),
            };
            if from != self.addr {
                continue;
            }
            let got = buf[..n].to_vec();
            if got.len() >= 12 && got[..2] == probe[..2] && Message::from_vec(&got).is_ok() {
                let m = parse(&got);
                if m.queries.first().map(|q| q.name().to_ascii()) == Some("probe.invalid.".into()) {
                    return reply;
                }
            }
            assert!(reply.is_none(), "two replies to one packet {packet:02x?}");
            reply = Some(got);
        }
        panic!("too many datagrams after {packet:02x?}");
    }

    /// Sends `query` over a new TCP connection and parses the answer.
    pub(crate) fn tcp(&self, query: &Message) -> Message {
        self.tcp_pipelined(std::slice::from_ref(query))
            .pop()
            .expect("one answer")
    }

    /// Writes every query on one TCP connection before reading any answer; returns the
    /// answers in the order they arrived.
    pub(crate) fn tcp_pipelined(&self, queries: &[Message]) -> Vec<Message> {
        let mut s = self.tcp_connect();
        let mut all = Vec::new();
        for q in queries {
            all.extend_from_slice(&frame(&encode(q)));
        }
        s.write_all(&all).expect("tcp write");
        (0..queries.len())
            .map(|i| match read_frame(&mut s) {
                Ok(Some(m)) => parse(&m),
                other => panic!(
                    "no TCP answer {i} of {}: {other:?}\nlog:\n{}",
                    queries.len(),
                    self.log()
                ),
            })
            .collect()
    }

    /// A TCP connection to the server with [`TCP_TIMEOUT`] on reads and writes.
    pub(crate) fn tcp_connect(&self) -> TcpStream {
        self.tcp_connect_from("127.0.0.1")
    }

    /// A TCP connection from source address `src` (127/8).
    pub(crate) fn tcp_connect_from(&self, src: &str) -> TcpStream {
        use socket2::{Domain, Protocol, Socket, Type};
        let ip: IpAddr = src.parse().expect("source address");
        assert!(ip.is_loopback(), "test clients stay on 127/8: {ip}");
        let sock =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("tcp socket");
        sock.bind(&SocketAddr::new(ip, 0).into())
            .unwrap_or_else(|e| panic!("bind TCP client to {ip}: {e}"));
        sock.connect_timeout(&self.addr.into(), TCP_TIMEOUT)
            .expect("tcp connect");
        let s: TcpStream = sock.into();
        s.set_read_timeout(Some(TCP_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(TCP_TIMEOUT)).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    /// Sends `query` over a new TCP connection from source address `src`; parses the answer.
    pub(crate) fn tcp_from(&self, src: &str, query: &Message) -> Message {
        let mut c = self.tcp_connect_from(src);
        c.write_all(&frame(&encode(query))).expect("tcp write");
        match read_frame(&mut c) {
            Ok(Some(m)) => parse(&m),
            other => panic!("no TCP answer from {src}: {other:?}\nlog:\n{}", self.log()),
        }
    }

    /// Asserts the server still answers a normal query over UDP.
    pub(crate) fn assert_alive(&self, zone_apex: &str) {
        let r = self.udp(&query(zone_apex, RecordType::SOA));
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::NoError,
            "server stopped answering\nlog:\n{}",
            self.log()
        );
        assert_eq!(r.answers.len(), 1, "{r}");
    }

    fn udp_socket(&self) -> UdpSocket {
        udp_socket_from("127.0.0.1")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- meridian log ----\n{}----", self.log());
        }
    }
}

/// A UDP socket bound to `src` (any 127/8 address works on Linux), with [`UDP_TIMEOUT`].
pub(crate) fn udp_socket_from(src: &str) -> UdpSocket {
    let ip: IpAddr = src.parse().expect("source address");
    assert!(ip.is_loopback(), "test clients stay on 127/8: {ip}");
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|e| panic!("bind UDP client to {ip}: {e}"));
    sock.set_read_timeout(Some(UDP_TIMEOUT)).expect("timeout");
    sock
}

fn recv_matching(sock: &UdpSocket, server: SocketAddr, id: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65_535];
    // Stray datagrams (late replies to earlier tries) are skipped, a bounded number of times.
    for _ in 0..16 {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == server && n >= 2 && buf[..2] == *id => {
                return Some(buf[..n].to_vec());
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Reads one length-prefixed message: `Ok(None)` on a clean close before a new message.
pub(crate) fn read_frame(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match s.read(&mut len[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg)?;
    Ok(Some(msg))
}

/// `msg` with its two-byte TCP length prefix.
pub(crate) fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

/// What became of a TCP connection the client waited on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The server closed it (EOF or reset).
    Yes,
    /// Data arrived instead.
    GotData(usize),
    /// Nothing happened within the wait.
    StillOpen,
}

/// Waits up to `wait` for the server to close `s`, reading and counting any data.
pub(crate) fn wait_closed(s: &mut TcpStream, wait: Duration) -> Closed {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => Closed::Yes,
        Ok(n) => Closed::GotData(n),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Closed::StillOpen
        }
        // Reset, broken pipe and the like: closed by the server.
        Err(_) => Closed::Yes,
    }
}

// ---------------------------------------------------------------------------------------
// Messages

static NEXT_ID: AtomicU16 = AtomicU16::new(0x1000);

/// A fresh message id (distinct within a test run, so stray replies are never confused).
pub(crate) fn next_id() -> u16 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// `b` as lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A query for `name`/`rtype`, class IN, RD clear, no EDNS.
pub(crate) fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new(next_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name_of(name), rtype));
    m
}

/// Parses `name` exactly as written (case kept), as an absolute name.
pub(crate) fn name_of(name: &str) -> Name {
    let mut n = Name::from_ascii(name).unwrap_or_else(|e| panic!("bad name {name:?}: {e}"));
    n.set_fqdn(true);
    n
}

/// `m` with an OPT record advertising `payload` bytes (EDNS version 0).
pub(crate) fn with_edns(mut m: Message, payload: u16) -> Message {
    let mut e = m.edns.take().unwrap_or_default();
    e.set_max_payload(payload);
    m.set_edns(e);
    m
}

/// `m` with EDNS (1232 unless already set) and the DO bit.
pub(crate) fn with_do(m: Message) -> Message {
    let mut m = ensure_edns(m);
    m.edns.as_mut().expect("edns").set_dnssec_ok(true);
    m
}

/// `m` with EDNS (1232 unless already set) of version `v`.
pub(crate) fn with_edns_version(m: Message, v: u8) -> Message {
    let mut m = ensure_edns(m);
    m.edns.as_mut().expect("edns").set_version(v);
    m
}

/// `m` with EDNS (1232 unless already set) and an ECS option `addr/source_prefix`, scope 0.
pub(crate) fn with_ecs(m: Message, addr: &str, source_prefix: u8) -> Message {
    let addr: IpAddr = addr.parse().expect("ip");
    with_edns_option(
        m,
        EdnsOption::Subnet(ClientSubnet::new(addr, source_prefix, 0)),
    )
}

/// `m` with EDNS (1232 unless already set) and `option` added (an
/// `EdnsOption::Unknown(code, bytes)` writes arbitrary option bytes).
pub(crate) fn with_edns_option(m: Message, option: EdnsOption) -> Message {
    let mut m = ensure_edns(m);
    m.edns.as_mut().expect("edns").options_mut().insert(option);
    m
}

/// `m` with RD set.
pub(crate) fn with_rd(mut m: Message) -> Message {
    m.metadata.recursion_desired = true;
    m
}

fn ensure_edns(m: Message) -> Message {
    if m.edns.is_some() {
        m
    } else {
        with_edns(m, 1232)
    }
}

/// The wire form of `m`.
pub(crate) fn encode(m: &Message) -> Vec<u8> {
    m.to_vec().expect("encode message")
}

/// Parses a reply, failing the test with the bytes when it is not a DNS message.
pub(crate) fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).unwrap_or_else(|e| panic!("unparsable reply {bytes:02x?}: {e}"))
}

/// The full 12-bit rcode of a reply (header plus OPT high bits), as a number.
pub(crate) fn rcode(m: &Message) -> u16 {
    u16::from(m.metadata.response_code)
}

/// The ECS option of a reply, if any.
pub(crate) fn ecs_of(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some(*cs),
        other => panic!("ECS option did not parse as one: {other:?}"),
    }
}

/// A raw query: header with `id`, flags `flags` (two bytes), counts, then `body`.
pub(crate) fn raw_packet(id: u16, flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + body.len());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        v.extend_from_slice(&c.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// Wire form of a question: `name` (uncompressed), type, class.
pub(crate) fn raw_question(name: &str, rtype: RecordType, class: u16) -> Vec<u8> {
    let mut v = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v.extend_from_slice(&u16::from(rtype).to_be_bytes());
    v.extend_from_slice(&class.to_be_bytes());
    v
}

// ---------------------------------------------------------------------------------------
// Assertions

/// Header facts of a reply, compared as one value so a failure shows all of them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) rcode: u16,
    pub(crate) aa: bool,
    pub(crate) tc: bool,
    pub(crate) rd: bool,
    pub(crate) ra: bool,
}

impl Head {
    /// NOERROR, AA, no TC/RD/RA: the usual authoritative answer to a plain query.
    pub(crate) fn aa() -> Self {
        Head {
            rcode: 0,
            aa: true,
            tc: false,
            rd: false,
            ra: false,
        }
    }

    /// The same with TC set.
    pub(crate) fn tc(mut self) -> Self {
        self.tc = true;
        self
    }
}

/// Asserts the reply is a response to `q` (same id, opcode, question) with header `head`.
pub(crate) fn assert_head(q: &Message, r: &Message, head: Head) {
    assert_eq!(r.metadata.message_type, MessageType::Response, "QR\n{r}");
    assert_eq!(r.metadata.id, q.metadata.id, "id\n{r}");
    assert_eq!(r.metadata.op_code, q.metadata.op_code, "opcode\n{r}");
    assert_eq!(r.queries, q.queries, "question section\n{r}");
    let got = Head {
        rcode: rcode(r),
        aa: r.metadata.authoritative,
        tc: r.metadata.truncation,
        rd: r.metadata.recursion_desired,
        ra: r.metadata.recursion_available,
    };
    assert_eq!(got, head, "header of the reply\n{r}");
}

/// The A and AAAA addresses of the answer section, sorted.
pub(crate) fn answer_ips(r: &Message) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = r
        .answers
        .iter()
        .filter_map(|rec| match &rec.data {
            hickory_proto::rr::RData::A(a) => Some(IpAddr::V4(a.0)),
            hickory_proto::rr::RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

/// A record as text, `owner TTL CLASS TYPE RDATA`, owner case kept.
pub(crate) fn show(r: &Record) -> String {
    r.to_string()
}

/// Asserts a section holds exactly `expected` (records as [`show`] prints them, in any
/// order), printing both side by side when not.
pub(crate) fn assert_section(section: &str, actual: &[Record], expected: &[&str]) {
    let mut got: Vec<String> = actual.iter().map(show).collect();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    got.sort();
    want.sort();
    if got == want {
        return;
    }
    panic!("{section} section differs:\n{}", side_by_side(&want, &got));
}

/// Asserts a section is exactly `expected`, in this order.
pub(crate) fn assert_section_ordered(section: &str, actual: &[Record], expected: &[&str]) {
    let got: Vec<String> = actual.iter().map(show).collect();
    let want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    if got != want {
        panic!(
            "{section} section differs (order matters):\n{}",
            side_by_side(&want, &got)
        );
    }
}

/// Answer, authority and additional sections at once (OPT is not part of `additionals`).
pub(crate) fn assert_sections(
    r: &Message,
    answer: &[&str],
    authority: &[&str],
    additional: &[&str],
) {
    assert_section("answer", &r.answers, answer);
    assert_section("authority", &r.authorities, authority);
    assert_section("additional", &r.additionals, additional);
}

/// Two columns, expected | actual, with `!` marking lines that differ.
pub(crate) fn side_by_side(expected: &[String], actual: &[String]) -> String {
    let width = expected
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("expected".len());
    let mut out = String::new();
    let _ = writeln!(out, "  {:width$} | actual", "expected");
    let _ = writeln!(out, "  {:-<width$}-+-{:-<20}", "", "");
    for i in 0..expected.len().max(actual.len()) {
        let e = expected.get(i).map_or("", String::as_str);
        let a = actual.get(i).map_or("", String::as_str);
        let mark = if e == a { ' ' } else { '!' };
        let _ = writeln!(out, "{mark} {e:width$} | {a}");
    }
    out
}

/// Line-by-line comparison of two texts, for golden files.
pub(crate) fn assert_text_eq(what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let e: Vec<String> = expected.lines().map(str::to_owned).collect();
    let a: Vec<String> = actual.lines().map(str::to_owned).collect();
    panic!(
        "{what} differs:\n{}\n(expected {} bytes, got {}; trailing newline expected: {}, got: {})",
        side_by_side(&e, &a),
        expected.len(),
        actual.len(),
        expected.ends_with('\n'),
        actual.ends_with('\n'),
    );
}

// ---------------------------------------------------------------------------------------
// The server's directory, and restarts on it (health and override tests)

impl Server {
    /// The temporary directory the server runs in: `meridian.toml`, `zones/` (unless it
    /// serves the repository's zones) and the state dir `.meridian/`.
    pub(crate) fn dir(&self) -> &Path {
        self._dir.as_ref().expect("the server's temp dir").path()
    }

    /// The config file the server was started with.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir().join("meridian.toml")
    }

    /// A file of the state dir `.meridian/` (`api-address`, `api-token`), trimmed.
    pub(crate) fn state_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(".meridian").join(name))
            .unwrap_or_else(|e| panic!("{name} in the state dir: {e}"))
            .trim()
            .to_owned()
    }

    /// How many times `needle` is in the server's log so far.
    pub(crate) fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// `meridian SUBCOMMAND --config <this server's config> ARGS...` in its directory.
    pub(crate) fn cli(&self, subcommand: &str, args: &[&str]) -> Output {
        let config = self.config_path();
        let mut all = vec![subcommand, "--config", config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        run_meridian(self.dir(), &all)
    }

    /// Where the HTTP API listens, as the server wrote it.
    pub(crate) fn api_addr(&self) -> SocketAddr {
        self.state_file("api-address").parse().expect("an address")
    }

    /// `Bearer TOKEN` with the server's own API token.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.state_file("api-token"))
    }

    /// One API request with an optional `Authorization` header value and JSON body, within
    /// `timeout`; status and body.
    pub(crate) fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        json: Option<&str>,
        timeout: Duration,
    ) -> (u16, String) {
        let url = format!("http://{}{path}", self.api_addr());
        crate::check_server::runtime().block_on(async {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .build()
                .expect("client");
            let mut req = client.request(method, url);
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            if let Some(body) = json {
                req = req
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            let resp = req.send().await.expect("API request");
            let status = resp.status().as_u16();
            (status, resp.text().await.expect("API body"))
        })
    }

    /// Kills this server and starts a new one on the same directory with the same config
    /// (so the same zones and state dir: overrides, API token); waits until it listens.
    pub(crate) fn restart(self) -> Server {
        Self::start_on(self.stop())
    }

    /// Kills and reaps the server, keeping its directory (config, zones, state dir).
    pub(crate) fn stop(mut self) -> tempfile::TempDir {
        let dir = self._dir.take().expect("the server's temp dir");
        // Dropping the server kills and reaps it; the directory stays (taken above).
        drop(self);
        dir
    }

    /// Starts a server on the directory of a [`Server::stop`]ped one, with its config
    /// file as it is; waits until it listens.
    pub(crate) fn start_on(dir: tempfile::TempDir) -> Server {
        let config = dir.path().join("meridian.toml");
        let text = std::fs::read_to_string(&config).expect("read config");
        let table: toml::Table = toml::from_str(&text).expect("config is TOML");
        let zones_dir = PathBuf::from(
            table
                .get("zones_dir")
                .and_then(|v| v.as_str())
                .expect("zones_dir in the config"),
        );
        // `start_in` writes `listen`, maybe `api.listen`, `zones_dir`, then the extra
        // config: hand it back everything after the `zones_dir` line.
        let extra: String = text
            .lines()
            .skip_while(|l| !l.starts_with("zones_dir = "))
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        Self::start_in(dir, &zones_dir, extra.trim_end(), &[])
    }
}

// ---------------------------------------------------------------------------------------
// Signals and exit (lifecycle tests)

impl Server {
    /// Sends `signal` (`"TERM"`, `"INT"`, `"HUP"`) to the server with the `kill` command.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {pid}: {status}");
    }

    /// Waits at most `limit` for the server to exit; its status and how long it took.
    /// Fails the test, showing the log, when it is still running. Drop still reaps it.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait meridian") {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() <= limit,
                "meridian still running {limit:?} later\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `n` random messages of 12 to 211 bytes with QR clear, the same on every run: each is a
/// query as far as the header goes, so the server must answer it.
pub(crate) fn garbage_queries(n: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n).map(move |round| {
        let len = 12 + (round * 7) % 200;
        let mut packet: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        packet[2] &= 0x7f;
        packet
    })
}
