#!/usr/bin/env python3
"""RSS of a meridian process under a barrage of garbage UDP packets (not a test).

Starts `meridian` on 127.0.0.1 with tests/fixtures/good/example.net.toml, sends PACKETS
packets (by default half random bytes, half mutated queries with ECS), paced at about
40,000 a second, and prints the server's RSS every 20,000 packets. Bounded in count and
time. Extra arguments NAME=VALUE go into the server's environment (e.g. MALLOC_ARENA_MAX=2).

    python3 benches/garbage_rss.py [--binary target/debug/meridian] [--packets 200000]
        [--mode mixed|random|mutated] [NAME=VALUE ...]
"""
import argparse, os, random, re, socket, struct, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return -1


def query(name, qtype):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"
    head = struct.pack(">HHHHHH", random.randrange(65536), 0, 1, 0, 0, 1)
    opt = bytes([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2])
    return head + wire + struct.pack(">HH", qtype, 1) + opt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/debug/meridian"))
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--mode", choices=["mixed", "random", "mutated"], default="mixed")
    ap.add_argument("env", nargs="*")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "zones"))
        with open(os.path.join(ROOT, "tests/fixtures/good/example.net.toml")) as src:
            with open(os.path.join(d, "zones/example.net.toml"), "w") as dst:
                dst.write(src.read())
        with open(os.path.join(d, "m.toml"), "w") as f:
            f.write('listen = ["127.0.0.1:0"]\napi.listen = "off"\nwatch = false\n')
        env = dict(os.environ, MERIDIAN_LOG="info", NO_COLOR="1")
        env.update(kv.split("=", 1) for kv in a.env)
        log = open(os.path.join(d, "log"), "w+")
        server = subprocess.Popen([a.binary, "--config", os.path.join(d, "m.toml")],
                                  stderr=log, stdout=subprocess.DEVNULL, env=env)
        try:
            port = None
            for _ in range(100):
                time.sleep(0.1)
                log.seek(0)
                m = re.search(r"listening on udp 127\.0\.0\.1:(\d+)", log.read())
                if m:
                    port = int(m.group(1))
                    break
            assert port, "the server did not start"
            barrage(server.pid, port, a.packets, a.mode)
        finally:
            server.kill()
            server.wait()


def barrage(pid, port, n, mode):
    seeds = [query("www.example.net", 1), query("many.example.net", 1),
             query("x.apps.example.net", 16), query("nope.example.net", 28)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    rnd = random.Random(1)
    print("start: rss", rss_kb(pid), "kB", flush=True)
    t0 = time.time()
    for i in range(n):
        if mode == "random" or (mode == "mixed" and i % 2):
            p = bytearray(rnd.randbytes(rnd.randrange(12, 600)))
            p[2] &= 0x7F  # a query, so the server answers it
        else:
            p = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randrange(1, 5)):
                at, op = rnd.randrange(len(p)), rnd.randrange(4)
                if op == 0:
                    p[at] ^= 1 << rnd.randrange(8)
                elif op == 1:
                    del p[at:]
                elif op == 2:
                    p.insert(at, rnd.randrange(256))
                else:
                    p[at] = rnd.randrange(256)
                if not p:
                    p = bytearray(b"\0")
        try:
            s.sendto(bytes(p), ("127.0.0.1", port))
        except BlockingIOError:
            pass
        try:
            while True:
                s.recv(65535)
        except BlockingIOError:
            pass
        if i % 2000 == 1999:
            time.sleep(0.05)
        if i % 20000 == 19999:
            print(f"{i + 1} packets: rss {rss_kb(pid)} kB", flush=True)
    print(f"end: rss {rss_kb(pid)} kB after {n} packets in {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
