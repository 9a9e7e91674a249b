#!/usr/bin/env bash
# Memory and load time of a 100,000-name zone: generates the zone (one A record per name),
# starts the release build on it (one UDP thread, no API, no GeoIP database), and prints
# the load time from `meridian check`, peak RSS during the load and RSS while serving.
#
#   cargo build --release && bash benches/big_zone.sh [NAMES]
set -euo pipefail
names=${1:-100000}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/release/meridian
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/zones"
python3 - "$names" > "$work/zones/big.example.toml" <<'PY'
import sys
n = int(sys.argv[1])
print('origin = "big.example"\nttl = "1h"\n[soa]\nprimary = "ns1"\ncontact = "hostmaster@big.example"')
print('serial = 1\nrefresh = "1h"\nretry = "15m"\nexpire = "1w"\nnegative_ttl = "5m"')
print('[names."@"]\nns = ["ns1.big.example."]\n[names.ns1]\na = "192.0.2.53"')
for i in range(n):
    print(f'[names.host{i}]\na = "10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"')
PY
cat > "$work/meridian.toml" <<CFG
listen = ["127.0.0.1:0"]
udp_threads = 1
[api]
listen = "off"
CFG
/usr/bin/time -f "check: %e s, peak RSS %M KiB" "$bin" check --config "$work/meridian.toml" 2>&1 | tail -1
"$bin" --config "$work/meridian.toml" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'listening on udp' "$work/log" && break; sleep 0.1; done
grep -E 'VmHWM|VmRSS' "/proc/$pid/status" | tr -s ' \t' ' ' | sed 's/^/serve: /'
