#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 60), one after another, with
# one job, then prints the executions of each. Exits non-zero when a target fails (a crash,
# a failed invariant, a leak, or one input running over 10 s); the input is then in
# fuzz/artifacts/TARGET/.
#
#   bash fuzz/run.sh [SECONDS]
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets it take the nightly flags cargo-fuzz
# passes (-Zsanitizer=address). Seeds come from fuzz/corpus/TARGET, and the TOML targets
# use the dictionary fuzz/corpus/TARGET.dict (regenerate both with `cargo run --example
# fuzz_seeds`); what the fuzzer adds goes to fuzz/target/corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null 2>&1; then
    echo "run.sh: a C++ compiler is needed to build libFuzzer (apt-get install g++)" >&2
    exit 2
fi

cargo fuzz build
targets=$(cargo fuzz list)

failed=()
summary=()
for t in $targets; do
    work=target/corpus/$t
    log=target/run-$t.log
    mkdir -p "$work" "corpus/$t"
    echo "== $t: ${secs}s"
    status=ok
    dict=()
    if [ -f "corpus/$t.dict" ]; then
        dict=(-dict="corpus/$t.dict")
    fi
    if ! cargo fuzz run "$t" "$work" "corpus/$t" -- "${dict[@]}" \
        -max_total_time="$secs" -timeout=10 -jobs=1 -workers=1 -print_final_stats=1 >"$log" 2>&1; then
        status=FAILED
        failed+=("$t")
        tail -n 60 "$log"
    fi
    rm -f fuzz-*.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    summary+=("$(printf '%-14s %-7s %10s executions (%s/s)' "$t" "$status" "${execs:-?}" "${rate:-?}")")
done

echo
echo "target         status  executions in ${secs}s each"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/target/run-*.log)" >&2
    exit 1
fi
