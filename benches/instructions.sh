#!/usr/bin/env bash
# Instructions per `respond` (bytes in, bytes out) for each case of benches/answer.rs,
# counted by callgrind: the same figure on a busy machine as on a quiet one, where the
# criterion times move by 20 % or more with the neighbours. Use it to compare two builds
# of the query path; use the criterion times and benches/qps.sh for what they cost in time.
#
#   bash benches/instructions.sh            # every respond case
#   bash benches/instructions.sh static     # the cases whose name contains "static"
#
# Each case runs for 2 s under callgrind (about 50 times slower, so some 60,000 calls);
# the count is the inclusive cost of `Responder::respond` over its calls, so the set-up
# of the bench (the synthetic GeoIP database, the snapshot) is not in it. Installs
# valgrind from Debian's packages when missing.
set -euo pipefail
filter=${1:-respond/}
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind > /dev/null || { apt-get update -qq && apt-get install -y -qq valgrind > /dev/null; }
cd "$repo"
bin=$(cargo bench --bench answer --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "answer" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases=$("$bin" --bench --list 2>/dev/null | sed -n 's/: benchmark$//p' | grep '^respond/' | grep -F -- "$filter" || true)
[ -n "$cases" ] || { echo "no respond case matches $filter" >&2; exit 1; }
printf '%-60s %12s %10s\n' case instructions calls
while IFS= read -r case; do
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" --bench --exact "$case" \
        --profile-time 2 > /dev/null 2>&1
    python3 - "$work/out" "$case" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
ids = set()
for l in lines:
    m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", l)
    if m and m.group(2) and "Responder::respond" in m.group(2):
        ids.add(m.group(1))
calls = cost = 0
for i, l in enumerate(lines):
    m = re.match(r"^cfn=\((\d+)\)", l)
    if m and m.group(1) in ids and i + 2 < len(lines):
        c = re.match(r"^calls=(\d+)", lines[i + 1])
        if c:
            calls += int(c.group(1))
            cost += int(lines[i + 2].split()[1])
print(f"{sys.argv[2]:<60} {cost / max(calls, 1):>12.0f} {calls:>10}")
EOF
done <<< "$cases"
