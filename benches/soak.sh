#!/usr/bin/env bash
# Soak: the release build under steady load for a bounded time while everything around it
# moves. dnsperf (Debian's package, installed if missing) sends static, GSLB and NXDOMAIN
# queries at a fixed rate; two local HTTP check servers are stopped and started in turn,
# so GSLB answers fail over and back; the zone file is rewritten every few seconds (a new
# serial and a new name each time) and reloaded by the watcher; and a sender mixes random
# and mangled packets in. Reports what dnsperf saw (answered, lost, rcodes) and the
# server's RSS at start, after warm-up and at the end: RSS must not grow after warm-up.
#
#   cargo build --release && bash benches/soak.sh [SECONDS] [QPS]     # default 600 s, 20000 qps
#
# Everything runs on loopback (DNS on 127.0.0.1:5397, the checks on 127.0.0.31 and .32 port
# 5398) and is
# stopped when the script exits.
set -euo pipefail
secs=${1:-600}
qps=${2:-20000}
warmup=$((secs / 10 > 10 ? secs / 10 : 10))
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/release/meridian
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
if ! command -v dnsperf >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dnsperf
fi
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/zones"

zone() { # serial
    cat <<ZONE
origin = "soak.example"
ttl = "1h"
[soa]
primary = "ns1"
contact = "hostmaster@soak.example"
serial = $1
refresh = "1h"
retry = "15m"
expire = "1w"
negative_ttl = "5m"
[names."@"]
ns = ["ns1"]
[names.ns1]
a = "192.0.2.53"
[names.www]
a = "192.0.2.80"
[names.gen$1]
a = "192.0.2.$(( $1 % 250 + 1 ))"
[checks.web]
type = "http"
port = 5398
path = "/"
interval = "1s"
timeout = "500ms"
rise = 1
fall = 1
[datacenters.ams]
addresses = ["127.0.0.31"]
location = [52.37, 4.90]
check = "web"
[datacenters.nyc]
addresses = ["127.0.0.32"]
location = [40.71, -74.01]
check = "web"
[names.cdn.gslb]
datacenters = ["ams", "nyc"]
policy = "nearest"
ZONE
}
zone 1 > "$work/zones/soak.example.toml"
cat > "$work/meridian.toml" <<CFG
listen = ["127.0.0.1:5397"]
udp_threads = 1
[api]
listen = "off"
[geoip]
databases = ["$repo/geoip/test-city.mmdb"]
CFG

check_server() { # address
    python3 -m http.server 5398 --bind "$1" --directory "$work" >/dev/null 2>&1 &
    echo $!
}
ams=$(check_server 127.0.0.31); pids+=("$ams")
nyc=$(check_server 127.0.0.32); pids+=("$nyc")

"$bin" --config "$work/meridian.toml" > "$work/server.log" 2>&1 &
server=$!; pids+=("$server")
for _ in $(seq 100); do grep -q 'listening on udp' "$work/server.log" && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
rss_start=$(rss)

: > "$work/queries"
for _ in $(seq 40); do
    echo "cdn.soak.example A" >> "$work/queries"
    echo "www.soak.example A" >> "$work/queries"
    echo "nx$RANDOM.soak.example A" >> "$work/queries"
    echo "soak.example SOA" >> "$work/queries"
done
dnsperf -s 127.0.0.1 -p 5397 -d "$work/queries" -l "$secs" -Q "$qps" -c 4 -q 200 -S 60 \
    > "$work/dnsperf.out" 2>&1 &
perf=$!; pids+=("$perf")

# Garbage: random bytes and mangled queries, about 2000 packets a second.
python3 - "$secs" > /dev/null 2>&1 <<'PY' &
import os, random, socket, sys, time
end = time.time() + float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seed = bytes.fromhex("abcd01000001000000000001") + b"\x03cdn\x04soak\x07example\x00\x00\x01\x00\x01" \
    + bytes.fromhex("0000291000000000000b0008000700011800c000")
while time.time() < end:
    for _ in range(200):
        if random.random() < 0.5:
            p = os.urandom(random.randint(0, 600))
        else:
            p = bytearray(seed)
            for _ in range(random.randint(1, 6)):
                p[random.randrange(len(p))] = random.randrange(256)
            p = bytes(p[: random.randint(0, len(p))])
        s.sendto(p, ("127.0.0.1", 5397))
    time.sleep(0.1)
PY
pids+=("$!")

start=$(date +%s)
serial=1
rss_warm=
while kill -0 "$perf" 2>/dev/null; do
    sleep 5
    now=$(( $(date +%s) - start ))
    [ -z "$rss_warm" ] && [ "$now" -ge "$warmup" ] && rss_warm=$(rss)
    # A new zone generation, as an operator's deploy would write it.
    serial=$((serial + 1))
    zone "$serial" > "$work/zones/soak.tmp"
    mv "$work/zones/soak.tmp" "$work/zones/soak.example.toml"
    # Every 20 s one check server goes down for 10 s (GSLB fails over, then back).
    if [ $((now / 10 % 2)) -eq 1 ]; then
        if [ -n "$ams" ]; then kill "$ams" 2>/dev/null || true; ams=; fi
    elif [ -z "$ams" ]; then
        ams=$(check_server 127.0.0.31); pids+=("$ams")
    fi
done
rss_end=$(rss)
echo "soak: ${secs} s at ${qps} qps, zone rewritten every 5 s ($serial generations), check flipped every 10 s, garbage ~2000 pps"
grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency' "$work/dnsperf.out" | sed 's/^ */  /'
echo "  reloads: $(grep -c 'now serving generation' "$work/server.log"), rejected: $(grep -c 'reload rejected' "$work/server.log")"
echo "  RSS KiB: start $rss_start, after ${warmup} s warm-up $rss_warm, end $rss_end"
