#!/usr/bin/env bash
# Meridian's AF_XDP path against Knot's, with the harness in ../shared/bench/xdp: a veth pair
# between namespaces dnssrv (server, CPU 0) and dnscli (kxdpgun, CPU 1), open-loop load at
# rising rates, answered QPS and the server core's CPU per answered query.
#
#   cargo build --release && bash benches/xdp.sh
#
# Env: REPS (3), DUR (5 s per run), RATES (kxdpgun rates for both, "200000 300000 400000"),
# HARNESS (../shared/bench/xdp). Installs kxdpgun (knot-dnsutils), ethtool, knot and gdnsd
# from Debian's packages when missing; needs root. Sets the namespaces up and takes them
# down again. The figure to compare is the peak answered QPS at >= 95 % answered, with its
# CPU per query (see the harness's README).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
harness=${HARNESS:-$repo/../shared/bench/xdp}
rates=${RATES:-"200000 300000 400000"}
need=()
for p in kxdpgun:knot-dnsutils ethtool:ethtool knotd:knot gdnsd:gdnsd; do
    command -v "${p%%:*}" > /dev/null || need+=("${p#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
fi
cd "$harness"
./netns.sh up > /dev/null
trap './netns.sh down > /dev/null 2>&1 || true' EXIT
out=$(mktemp -d /tmp/meridian-xdp.XXXXXX)
SERVERS="knot-xdp candidate" OUT=$out DNSPERF=0 REPS=${REPS:-3} DUR=${DUR:-5} \
    RATES_knot_xdp="$rates" RATES_candidate="$rates" \
    CAND_CMD="$repo/target/release/meridian --config $repo/benches/xdp/meridian.toml" ./bench.sh
python3 summarize.py "$out/results.tsv"
