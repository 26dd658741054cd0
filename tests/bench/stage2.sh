#!/usr/bin/env bash
# stage2.sh - benchmark: stage 2 (write-ahead log) against redis-server with
# its append-only file, side by side on the same filesystem.
#
#   1. --fsync always   vs  appendfsync always    SET, 1 and 50 clients
#   2. --fsync everysec vs  appendfsync everysec  SET, 1 and 50 clients
#   3. restart time with 1,000,000 keys of 100-byte values: each server loads
#      the same data, stops cleanly, and is timed from exec until DBSIZE
#      answers 1000000 (Redis replays its AOF; aof-use-rdb-preamble no).
# Prints ops/s, p50/p99 and ratios (stage2 / redis; for restart, redis / stage2,
# so above 1 always means stage 2 is better). Run by `make bench`.
#
# Environment: BENCH_REQUESTS (default 100000 for 50 clients; a tenth for one
# client), BENCH_ROUNDS (default 3: each pair is run that many times, in
# alternation, and the best run of each server is reported), BENCH_KEYS
# (default 1000000), BENCH_NO_BUILD=1, STAGE2_BIN.
# Exits non-zero only when something failed to run, never because of a ratio.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_REQUESTS:-100000}"
REQUESTS_ONE=$((REQUESTS / 10))
KEYS="${BENCH_KEYS:-1000000}"
ROUNDS="${BENCH_ROUNDS:-3}"
STAGE2_BIN="${STAGE2_BIN:-$BENCH_BUILD/bin/stage2-wal}"

bench_init
bench_need cmake redis-server redis-cli redis-benchmark awk
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    bench_build_release stage2-wal
fi
[[ -x "$STAGE2_BIN" ]] || bench_die "$STAGE2_BIN not found or not executable"

now_ms() { date +%s%3N; }

# redis_aof PORT POLICY DIR: redis-server with an append-only file in DIR.
redis_aof() {
    mkdir -p "$3"
    bench_start "redis-$1" redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync "$2" --aof-use-rdb-preamble no --dir "$3" --daemonize no --logfile ''
    bench_wait_ping "redis-$1" "$1" "$BENCH_LAST_PID"
}

# ours PORT POLICY DIR
ours() {
    bench_start "stage2-$1" "$STAGE2_BIN" --port "$1" --fsync "$2" --data-dir "$3" --log-level info
    bench_wait_ping "stage2-$1" "$1" "$BENCH_LAST_PID"
}

# stop_pid PID: graceful stop, wait for exit.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 6000); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.01; done
    bench_die "process $1 did not stop"
}

rows=()
for policy in always everysec; do
    rp="$(bench_free_port)"
    op="$(bench_free_port)"
    redis_aof "$rp" "$policy" "$BENCH_TMP/redis-$policy"
    rpid=$BENCH_LAST_PID
    ours "$op" "$policy" "$BENCH_TMP/stage2-$policy"
    opid=$BENCH_LAST_PID
    for clients in 1 50; do
        n=$REQUESTS
        [[ $clients == 1 ]] && n=$REQUESTS_ONE
        r="" o=""
        for ((round = 0; round < ROUNDS; round++)); do
            bench_run "$rp" set "$n" "$clients" 1
            r="$(bench_best "$r" "$BENCH_RESULT")"
            bench_run "$op" set "$n" "$clients" 1
            o="$(bench_best "$o" "$BENCH_RESULT")"
        done
        read -r r_ops r_p50 r_p99 <<<"$r"
        read -r o_ops o_p50 o_p99 <<<"$o"
        rows+=("$policy $clients $n $r_ops $r_p50 $r_p99 $o_ops $o_p50 $o_p99")
        bench_log "fsync $policy, $clients clients: redis $r_ops ops/s, stage2 $o_ops ops/s"
    done
    stop_pid "$rpid"
    stop_pid "$opid"
done

# --- restart time -------------------------------------------------------------
bench_log "generating $KEYS SET commands with 100-byte values"
value="$(printf 'v%.0s' $(seq 1 100))"
awk -v n="$KEYS" -v v="$value" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = sprintf("key:%07d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
}' >"$BENCH_TMP/load.resp"

load_into() { # PORT
    redis-cli -p "$1" --pipe <"$BENCH_TMP/load.resp" >"$BENCH_TMP/pipe-$1.out" 2>&1 ||
        { cat "$BENCH_TMP/pipe-$1.out" >&2; bench_die "loading data into port $1 failed"; }
}

# time_until_loaded PORT PID: ms from now until DBSIZE == KEYS.
wait_loaded() {
    local port="$1" pid="$2"
    for _ in $(seq 1 30000); do
        kill -0 "$pid" 2>/dev/null || bench_die "server on $port exited while loading"
        [[ "$(redis-cli -p "$port" dbsize 2>/dev/null)" == "$KEYS" ]] && return 0
        sleep 0.005
    done
    bench_die "server on $port did not load $KEYS keys in time"
}

rp="$(bench_free_port)"
op="$(bench_free_port)"
redis_aof "$rp" everysec "$BENCH_TMP/redis-restart"
rpid=$BENCH_LAST_PID
ours "$op" everysec "$BENCH_TMP/stage2-restart"
opid=$BENCH_LAST_PID
load_into "$rp"
load_into "$op"
aof_bytes=$(du -sb "$BENCH_TMP/redis-restart" | awk '{ print $1 }')
# Records only: the last segment's preallocated zeros are not log data.
wal_bytes=$(redis-cli -p "$op" info | tr -d '\r' | awk -F: '$1 == "wal_bytes" { print $2 }')
stop_pid "$rpid"
stop_pid "$opid"

r_times=() o_times=()
for round in 1 2 3; do
    t0=$(now_ms)
    bench_start "redis-restart-$round" redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync everysec --aof-use-rdb-preamble no --dir "$BENCH_TMP/redis-restart" --daemonize no --logfile ''
    pid=$BENCH_LAST_PID
    wait_loaded "$rp" "$pid"
    r_times+=($(($(now_ms) - t0)))
    stop_pid "$pid"
    t0=$(now_ms)
    bench_start "stage2-restart-$round" "$STAGE2_BIN" --port "$op" --fsync everysec \
        --data-dir "$BENCH_TMP/stage2-restart" --log-level info
    pid=$BENCH_LAST_PID
    wait_loaded "$op" "$pid"
    o_times+=($(($(now_ms) - t0)))
    stop_pid "$pid"
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
r_med=$(median "${r_times[@]}")
o_med=$(median "${o_times[@]}")
replayed="$(grep -a "replayed" "$BENCH_TMP/stage2-restart-3.log" | tail -1 | sed 's/.*INFO  //')"

echo
echo "stage 2 vs redis-server $(redis-server --version | awk '{ print $3 }' | sed 's/^v=//') with AOF;" \
    "filesystem: $(df -T "$BENCH_TMP" | awk 'NR == 2 { print $2 }'), loopback"
printf '%-9s | %7s | %8s | %12s | %12s | %6s | %16s | %16s\n' fsync clients requests "redis ops/s" "stage2 ops/s" \
    ratio "redis p50/p99" "stage2 p50/p99"
printf '%s\n' "----------+---------+----------+--------------+--------------+--------+------------------+-----------------"
for row in "${rows[@]}"; do
    read -r pol cl n r_ops r_p50 r_p99 o_ops o_p50 o_p99 <<<"$row"
    printf '%-9s | %7s | %8s | %12s | %12s | %6s | %16s | %16s\n' "$pol" "$cl" "$n" "$r_ops" "$o_ops" \
        "$(bench_ratio "$r_ops" "$o_ops")" "$r_p50/$r_p99" "$o_p50/$o_p99"
done
echo
echo "restart with $KEYS keys of 100-byte values (median of 3, from exec until DBSIZE = $KEYS):"
printf '  redis-server AOF replay : %6d ms   (%s bytes on disk)\n' "$r_med" "$aof_bytes"
printf '  stage2 WAL replay       : %6d ms   (%s bytes on disk)\n' "$o_med" "$wal_bytes"
printf '  ratio (redis / stage2)  : %s   (above 1: stage 2 restarts faster)\n' "$(bench_ratio "$o_med" "$r_med")"
echo "  stage 2 log: $replayed"
