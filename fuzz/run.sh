#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each and prints executions and
# executions/s per target. New inputs go to a scratch corpus, so the committed seeds stay small.
#   bash fuzz/run.sh [SECONDS] [TARGET...]        (default 60 s, all targets)
#   FUZZ_DEV=1 bash fuzz/run.sh 5                 (unoptimised build: compiles in half the time,
#                                                 runs slower; what .ci/run's smoke uses)
# Needs `cargo install cargo-fuzz`; builds with the stable toolchain (RUSTC_BOOTSTRAP, no
# sanitizer), so a crash is a panic or failed assertion, which is what the targets check.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
scratch=${FUZZ_SCRATCH:-$(mktemp -d)}
export RUSTC_BOOTSTRAP=1
# The committed lock must already be current, so that a run never rewrites a tracked file.
if ! cargo metadata --locked --format-version 1 >/dev/null; then
    echo "fuzz/Cargo.lock is out of date: run 'cargo update -w' in fuzz/ and commit it" >&2
    exit 1
fi
profile=()
[ "${FUZZ_DEV:-0}" = 1 ] && profile=(--dev)
cargo fuzz build -s none "${profile[@]}"
failed=0
printf '%-12s %8s %14s %10s %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    if cargo fuzz run -s none "${profile[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-12s %8s %14s %10s %s\n' "$t" "$seconds" "${runs:-?}" "${rate:-?}" "$result"
done
exit $failed
