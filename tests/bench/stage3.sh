#!/usr/bin/env bash
# stage3.sh - benchmark: our C client library against hiredis's synchronous
# API, same server (stage3-client, release build, --fsync no so the disk does
# not dominate), same workload: BENCH_REQUESTS SETs then as many GETs on one
# connection, without pipelining and with batches of 100. Runs alternate
# and swap order every round; the best of BENCH_ROUNDS (default 5) is reported.
# Exits non-zero only when something failed to run, never because of a ratio.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_REQUESTS:-100000}"
ROUNDS="${BENCH_ROUNDS:-5}"
STAGE3_BIN="${STAGE3_BIN:-$BENCH_BUILD/bin/stage3-client}"
CLIENT_BENCH="${CLIENT_BENCH:-$BENCH_BUILD/bin/client_bench}"

bench_init
bench_need cmake awk redis-cli
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    bench_build_release stage3-client client_bench
fi
[[ -x "$STAGE3_BIN" && -x "$CLIENT_BENCH" ]] || bench_die "release binaries not found"

port="$(bench_free_port)"
bench_start stage3 "$STAGE3_BIN" --port "$port" --fsync no --data-dir "$BENCH_TMP/data" --log-level warn
bench_wait_ping stage3 "$port" "$BENCH_LAST_PID"

best() { printf '%s\n' "$@" | sort -n | tail -1; }
echo
echo "kvclient vs hiredis $(pkg-config --modversion hiredis 2>/dev/null || echo '?'): $REQUESTS SET + $REQUESTS GET," \
    "one connection, stage3-client --fsync no, best of $ROUNDS"
printf '%-10s | %14s | %14s | %6s\n' pipeline "hiredis ops/s" "kvclient ops/s" ratio
printf '%s\n' "-----------+----------------+----------------+-------"
for batch in 1 100; do
    ours=() theirs=()
    for ((r = 0; r < ROUNDS; r++)); do
        if ((r % 2 == 0)); then
            ours+=("$("$CLIENT_BENCH" "$port" ours "$REQUESTS" "$batch" | awk '{ print $3 }')")
            theirs+=("$("$CLIENT_BENCH" "$port" hiredis "$REQUESTS" "$batch" | awk '{ print $3 }')")
        else
            theirs+=("$("$CLIENT_BENCH" "$port" hiredis "$REQUESTS" "$batch" | awk '{ print $3 }')")
            ours+=("$("$CLIENT_BENCH" "$port" ours "$REQUESTS" "$batch" | awk '{ print $3 }')")
        fi
    done
    o=$(best "${ours[@]}")
    t=$(best "${theirs[@]}")
    label="none"
    [[ $batch != 1 ]] && label="$batch"
    printf '%-10s | %14s | %14s | %6s\n' "$label" "$t" "$o" "$(bench_ratio "$t" "$o")"
done
