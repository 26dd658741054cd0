#!/usr/bin/env bash
# stage1.sh - benchmark: stage 1 (in-memory, single node) against redis-server, side by side.
#
# Builds the release binaries, starts redis-server (no persistence) and
# stage1-single-node on free loopback ports, and runs redis-benchmark SET and
# GET without and with pipelining against each, alternating between the two
# servers so that neither gets a warmer or quieter machine. Prints ops/s,
# p50/p99 latency and the ratio (stage1 / redis). Run by `make bench`.
#
# Environment:
#   BENCH_REQUESTS  requests per redis-benchmark run (default 200000)
#   BENCH_CLIENTS   parallel connections (default 50)
#   BENCH_ROUNDS    how many times each pair is measured; the best run of each
#                   server is reported (default 3: a -P 16 run lasts a fraction
#                   of a second, and one run swings 10-20% on a shared machine)
#   BENCH_NO_BUILD  set to 1 to use the existing build-release binaries
#   STAGE1_BIN      server binary to compare (default build-release/bin/stage1-single-node)
#   STAGE1_ARGS     extra flags for it, e.g. "--busy-poll-us 0" (default none)
# Exits non-zero only when something failed to run, never because of a ratio.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_REQUESTS:-200000}"
CLIENTS="${BENCH_CLIENTS:-50}"
ROUNDS="${BENCH_ROUNDS:-3}"
STAGE1_BIN="${STAGE1_BIN:-$BENCH_BUILD/bin/stage1-single-node}"

bench_init
bench_need cmake redis-server redis-cli redis-benchmark awk
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    bench_build_release stage1-single-node
fi
[[ -x "$STAGE1_BIN" ]] || bench_die "$STAGE1_BIN not found or not executable"

redis_port="$(bench_free_port)"
ours_port="$(bench_free_port)"
bench_redis_server "$redis_port"
# shellcheck disable=SC2086 # STAGE1_ARGS is a list of flags
bench_start stage1 "$STAGE1_BIN" --port "$ours_port" --log-level warn ${STAGE1_ARGS:-}
bench_wait_ping stage1 "$ours_port" "$BENCH_LAST_PID"
bench_log "redis-server on $redis_port, stage1-single-node on $ours_port;" \
    "$REQUESTS requests, $CLIENTS clients, $ROUNDS round(s)${STAGE1_ARGS:+, stage1 flags: $STAGE1_ARGS}"

rows=()
for pipeline in 1 16; do
    for test in set get; do
        r_best="" o_best=""
        for ((round = 0; round < ROUNDS; round++)); do
            bench_run "$redis_port" "$test" "$REQUESTS" "$CLIENTS" "$pipeline"
            r="$BENCH_RESULT"
            bench_run "$ours_port" "$test" "$REQUESTS" "$CLIENTS" "$pipeline"
            o="$BENCH_RESULT"
            r_best="$(bench_best "$r_best" "$r")"
            o_best="$(bench_best "$o_best" "$o")"
        done
        read -r r_ops r_p50 r_p99 <<<"$r_best"
        read -r o_ops o_p50 o_p99 <<<"$o_best"
        rows+=("$test $pipeline $r_ops $r_p50 $r_p99 $o_ops $o_p50 $o_p99")
        bench_log "$test -P $pipeline: redis $r_ops ops/s, stage1 $o_ops ops/s"
    done
done

# Both servers must still be up: a crash during the run is a failure.
for pid in "${BENCH_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || bench_die "a server exited during the benchmark (logs in $BENCH_TMP)"
done

echo
echo "stage 1 vs redis-server $(redis-server --version | awk '{ print $3 }' | sed 's/^v=//'):" \
    "$REQUESTS requests, $CLIENTS clients, loopback${STAGE1_ARGS:+, stage1 flags: $STAGE1_ARGS}"
bench_table_header redis stage1
sum_ratio=0
for row in "${rows[@]}"; do
    # shellcheck disable=SC2086
    bench_table_row $row
    read -r _ _ r_ops _ _ o_ops _ _ <<<"$row"
    sum_ratio="$(awk -v s="$sum_ratio" -v a="$r_ops" -v b="$o_ops" 'BEGIN { printf "%.6f", s + (a > 0 ? b / a : 0) }')"
done
echo "stage1 throughput is $(awk -v s="$sum_ratio" -v n="${#rows[@]}" 'BEGIN { printf "%.2f", s / n }')x redis-server on average over ${#rows[@]} tests (ratio = stage1 / redis)"
