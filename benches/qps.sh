#!/usr/bin/env bash
# Queries per second and server CPU per query over real UDP sockets, for the four workloads
# of the wire fast path: static A (www), GSLB by source address (cdn, clients placed by
# the test GeoIP data), GSLB by ECS (cdn, subnets in four regions), NXDOMAIN.
#
#   cargo build --release && bash benches/qps.sh [SECONDS]
#
# The server (the example zones, one UDP thread) is pinned to core 0 and dnsperf to core 1:
# four dnsperf processes at once, one per client site, 35 queries outstanding each. For each
# workload it prints: QPS, the server's CPU per answered query (run time of its threads
# from /proc/PID/task/*/schedstat over the load window), mean and max latency, and lost
# queries; then, rate-limited to 90 % of that peak, the queries lost. Last, SCALING=1
# (default) runs the static workload with two UDP threads on both cores against one on one
# core: the load shares the machine with the server there, so the ratio says how much a
# second thread adds when the load generator also needs CPU, not how the server scales on
# a machine of its own.
#
# Installs dnsperf from Debian's packages when missing. Figures are noisy on a shared
# machine: compare runs made side by side, never across days.
set -euo pipefail
dur=${1:-8}
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/release/meridian
command -v dnsperf > /dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf > /dev/null; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=5320
echo "www.example.com A" > "$work/www.txt"
echo "cdn.example.com A" > "$work/cdn.txt"
for i in $(seq -w 1 1000); do echo "nx$i.example.com A"; done > "$work/nx.txt"
# ECS (dnsperf -E code:hex): family 1, source /25, scope 0; the test GeoIP data places
# 192.0.2.0/25, 198.51.100.0/25, 203.0.113.0/25 and 192.0.2.128/25 in four regions.
ecs=(8:00011900c0000200 8:00011900c6336400 8:00011900cb007100 8:00011900c0000280)

start() { # start THREADS CPUS
    cat > "$work/meridian.toml" <<CFG
listen = ["127.0.0.1:$port"]
udp_threads = $1
zones_dir = "$repo/zones"
[api]
listen = "off"
[geoip]
databases = ["$repo/geoip/test-city.mmdb"]
CFG
    taskset -c "$2" "$bin" --config "$work/meridian.toml" > "$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q 'listening on udp' "$work/log" && return 0; sleep 0.1; done
    cat "$work/log"; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
run_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }

# load WORKLOAD CPUS [RATE]: prints "qps cpu_us_per_query avg_ms max_ms lost"
load() {
    local wl=$1 cpus=$2 rate=${3:-} i args pids=() r0 r1 t0 t1
    r0=$(run_ns); t0=${EPOCHREALTIME/./}
    for i in 1 2 3 4; do
        case $wl in
            www) args=(-a "127.0.$i.5" -d "$work/www.txt") ;;
            cdn) args=(-a "127.0.$i.5" -d "$work/cdn.txt") ;;
            ecs) args=(-a 127.0.0.1 -E "${ecs[$((i - 1))]}" -d "$work/cdn.txt") ;;
            nx) args=(-a "127.0.$i.5" -d "$work/nx.txt") ;;
        esac
        [ -n "$rate" ] && args+=(-Q "$((rate / 4))")
        taskset -c "$cpus" dnsperf -s 127.0.0.1 -p "$port" -l "$dur" -t 2 -c 1 -q 35 "${args[@]}" \
            > "$work/out.$i" 2>&1 &
        pids+=($!)
    done
    sleep "$dur"
    r1=$(run_ns); t1=${EPOCHREALTIME/./}
    wait "${pids[@]}"
    awk -v run=$((r1 - r0)) '
        /Queries completed:/ { done += $3; last = $3 }
        /Queries lost:/ { lost += $3 }
        /Queries per second:/ { qps += $4 }
        /Average Latency/ { gsub(/[(),:]/, " "); avg += $4 * last; if ($8 + 0 > max) max = $8 }
        END { printf "%.0f %.2f %.3f %.3f %d\n", qps, run / 1000 / done, avg / done * 1000, max * 1000, lost }
    ' "$work"/out.[1-4]
}

printf '%-5s %9s %12s %9s %9s %6s %14s\n' workload QPS "CPU us/query" "avg ms" "max ms" lost "lost at 90 %"
start 1 0
for wl in www cdn ecs nx; do
    read -r qps cpu avg max lost < <(load "$wl" 1)
    read -r _ _ _ _ lost90 < <(load "$wl" 1 "$((qps * 9 / 10))")
    printf '%-8s %9s %12s %9s %9s %6s %14s\n' "$wl" "$qps" "$cpu" "$avg" "$max" "$lost" "$lost90"
done
stop
if [ "${SCALING:-1}" = 1 ]; then
    start 1 0,1
    read -r one _ < <(load www 0,1)
    stop
    start 2 0,1
    read -r two _ < <(load www 0,1)
    stop
    awk -v a="$one" -v b="$two" 'BEGIN {printf "scaling (www, server and load sharing cores 0-1): 1 thread %d QPS, 2 threads %d QPS, ratio %.2f\n", a, b, b / a}'
fi
