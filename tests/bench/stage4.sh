#!/usr/bin/env bash
# stage4.sh - benchmark: a stage 4 leader with two followers against
# redis-server with two replicas (--replicaof), all on loopback, each node in
# its own directory, Redis with --save '' and an append-only file.
#
#   fsync on every write:  --fsync always  vs  appendfsync always (all nodes)
#   no fsync:              --fsync no      vs  appendfsync no     (all nodes)
#
# For each, at 1 and 50 clients (redis-benchmark SET, no pipelining):
#   - ops/s and p50/p99 at the leader;
#   - replication lag under that load: a probe (repl_bench probe) SETs a
#     unique key on the leader every BENCH_PROBE_MS and polls the first
#     follower with GET until it is there; the time from sending the SET to
#     the GET that finds it is one sample. The probe runs during every load
#     run, against both systems alike; samples of all rounds are pooled.
# And on the idle cluster, one connection (repl_bench pairs): sequential SETs,
# then sequential SET + WAIT 1 0 pairs, so the cost of waiting for one
# follower's acknowledgement is the difference.
#
# Rounds alternate the two systems (and swap which goes first every round);
# the median round is reported with its p50/p99, and the spread (max-min over
# the median) of ops/s. Ratios: ops/s ours / redis; lag redis p50 / ours p50;
# above 1 is ours better. Run by `make bench`.
#
# Environment: BENCH_REQUESTS (default 300000 at 50 clients; a tenth at one:
# rounds of a few seconds, since half-second rounds let one scheduling blip
# decide a round on a shared machine),
# BENCH_ROUNDS (default 5), BENCH_PAIRS (default 2000), BENCH_PROBE_MS
# (default 10), BENCH_NO_BUILD=1, STAGE4_BIN, REPL_BENCH.
# Exits non-zero only when something failed to run, never because of a ratio.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_REQUESTS:-300000}"
REQUESTS_ONE=$((REQUESTS / 10))
ROUNDS="${BENCH_ROUNDS:-5}"
PAIRS="${BENCH_PAIRS:-2000}"
PROBE_MS="${BENCH_PROBE_MS:-10}"
STAGE4_BIN="${STAGE4_BIN:-$BENCH_BUILD/bin/stage4-replication}"
REPL_BENCH="${REPL_BENCH:-$BENCH_BUILD/bin/repl_bench}"

bench_init
PROBE_PID=""
# The probe is not a server (bench_start): stop it here, then the rest.
stage4_cleanup() {
    if [[ -n "$PROBE_PID" ]]; then
        kill -TERM "$PROBE_PID" 2>/dev/null || true
        wait "$PROBE_PID" 2>/dev/null || true
    fi
    bench_cleanup
}
trap stage4_cleanup EXIT
bench_need cmake redis-server redis-cli redis-benchmark awk sort
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    bench_build_release stage4-replication repl_bench
fi
[[ -x "$STAGE4_BIN" && -x "$REPL_BENCH" ]] || bench_die "$STAGE4_BIN or $REPL_BENCH not found or not executable"

# info PORT: INFO without carriage returns.
info() { redis-cli -h 127.0.0.1 -p "$1" info 2>/dev/null | tr -d '\r'; }

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds or the deadline.
wait_for() {
    local what="$1" timeout="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || bench_die "timed out waiting for $what"
        sleep 0.05
    done
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 6000); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.01; done
    bench_die "process $1 did not stop"
}

# --- the two clusters ----------------------------------------------------------
# Each sets <SYSTEM>_PORTS (leader first) and <SYSTEM>_PIDS.

redis_node() { # PORT POLICY DIR [replicaof args...]
    local port="$1" policy="$2" dir="$3"
    shift 3
    mkdir -p "$dir"
    bench_start "redis-$port" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync "$policy" --repl-diskless-sync-delay 0 --dir "$dir" --daemonize no --logfile '' "$@"
    bench_wait_ping "redis-$port" "$port" "$BENCH_LAST_PID"
    REDIS_PIDS+=("$BENCH_LAST_PID")
}

# (INFO is read into a variable first: with pipefail, grep -q ending the
# pipe early would fail it.)
redis_ready() { # both replicas online at the leader, links up, no AOF rewrite running
    local port text
    text="$(info "${REDIS_PORTS[0]}")"
    [[ "$(grep -c '^slave[0-9]*:.*state=online' <<<"$text")" == 2 ]] || return 1
    for port in "${REDIS_PORTS[@]}"; do
        text="$(info "$port")"
        if [[ $port != "${REDIS_PORTS[0]}" ]]; then
            grep -q '^master_link_status:up' <<<"$text" || return 1
        fi
        grep -q '^aof_rewrite_in_progress:0' <<<"$text" || return 1
        grep -q '^aof_rewrite_scheduled:0' <<<"$text" || return 1
    done
}

start_redis() { # POLICY
    REDIS_PORTS=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)")
    REDIS_PIDS=()
    redis_node "${REDIS_PORTS[0]}" "$1" "$BENCH_TMP/redis-$1/leader"
    redis_node "${REDIS_PORTS[1]}" "$1" "$BENCH_TMP/redis-$1/replica1" --replicaof 127.0.0.1 "${REDIS_PORTS[0]}"
    redis_node "${REDIS_PORTS[2]}" "$1" "$BENCH_TMP/redis-$1/replica2" --replicaof 127.0.0.1 "${REDIS_PORTS[0]}"
    wait_for "redis replicas online" 60 redis_ready
}

ours_node() { # PORT PEERPORT POLICY DIR [--replicaof HOST:PEERPORT]
    local port="$1" peer="$2" policy="$3" dir="$4"
    shift 4
    bench_start "stage4-$port" "$STAGE4_BIN" --port "$port" --peer-port "$peer" --fsync "$policy" \
        --data-dir "$dir" --log-level info "$@"
    bench_wait_ping "stage4-$port" "$port" "$BENCH_LAST_PID"
    OURS_PIDS+=("$BENCH_LAST_PID")
}

ours_ready() { # two followers streaming at the leader
    local text
    text="$(info "${OURS_PORTS[0]}")"
    [[ "$(grep -c '^follower[0-9]*:.*state=streaming' <<<"$text")" == 2 ]]
}

start_ours() { # POLICY
    OURS_PORTS=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)")
    local peers=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)")
    OURS_PIDS=()
    ours_node "${OURS_PORTS[0]}" "${peers[0]}" "$1" "$BENCH_TMP/stage4-$1/leader"
    ours_node "${OURS_PORTS[1]}" "${peers[1]}" "$1" "$BENCH_TMP/stage4-$1/follower1" --replicaof "127.0.0.1:${peers[0]}"
    ours_node "${OURS_PORTS[2]}" "${peers[2]}" "$1" "$BENCH_TMP/stage4-$1/follower2" --replicaof "127.0.0.1:${peers[0]}"
    wait_for "stage 4 followers streaming" 60 ours_ready
}

# --- one measurement -------------------------------------------------------------

# load_run SYSTEM POLICY CLIENTS N: redis-benchmark SET at the leader with the
# lag probe beside it. Appends "ops p50 p99" to $BENCH_TMP/set-..., the
# probe's samples (us) to $BENCH_TMP/lag-...
load_run() {
    local sys="$1" policy="$2" clients="$3" n="$4" leader follower
    if [[ $sys == redis ]]; then
        leader=${REDIS_PORTS[0]} follower=${REDIS_PORTS[1]}
    else
        leader=${OURS_PORTS[0]} follower=${OURS_PORTS[1]}
    fi
    local tag="$sys-$policy-$clients"
    "$REPL_BENCH" probe "$leader" "$follower" "$PROBE_MS" >>"$BENCH_TMP/lag-$tag" 2>"$BENCH_TMP/probe.err" &
    PROBE_PID=$!
    bench_run "$leader" set "$n" "$clients" 1
    kill -TERM "$PROBE_PID" 2>/dev/null || true
    local rc=0
    wait "$PROBE_PID" || rc=$?
    PROBE_PID=""
    ((rc == 0)) || { cat "$BENCH_TMP/probe.err" >&2; bench_die "lag probe failed against $sys ($policy)"; }
    echo "$BENCH_RESULT" >>"$BENCH_TMP/set-$tag"
}

# pairs_run SYSTEM POLICY: SETs, then SET+WAIT pairs, on one connection.
pairs_run() {
    local sys="$1" policy="$2" leader mode
    if [[ $sys == redis ]]; then leader=${REDIS_PORTS[0]}; else leader=${OURS_PORTS[0]}; fi
    for mode in set setwait; do
        bench_exec "$BENCH_TMP/pairs.out" "$REPL_BENCH" pairs "$leader" "$PAIRS" "$mode" ||
            { cat "$BENCH_TMP/pairs.out" >&2; bench_die "repl_bench pairs $mode failed against $sys ($policy)"; }
        cat "$BENCH_TMP/pairs.out" >>"$BENCH_TMP/$mode-$sys-$policy-pairs"
    done
}

# median_run FILE: of lines "ops p50 p99", the median by ops (the lower of the
# two middle ones for an even count), then its spread: "ops p50 p99 spread%".
median_run() {
    sort -n -k1,1 "$1" | awk '{ l[NR] = $0; o[NR] = $1 } END {
        m = int((NR + 1) / 2); split(l[m], x, " ")
        printf "%s %s %s %.0f\n", x[1], x[2], x[3], (o[m] > 0) ? 100 * (o[NR] - o[1]) / o[m] : 0 }'
}

# lag_pct FILE: "p50 p99 count" of the samples (us in, ms out; nearest rank).
lag_pct() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - 0"; exit }
        r50 = int((NR * 50 + 99) / 100); r99 = int((NR * 99 + 99) / 100)
        printf "%.3f %.3f %d\n", v[r50] / 1000, v[r99] / 1000, NR }'
}

# --- the run ---------------------------------------------------------------------

rows=()
row() { rows+=("$(printf '%-6s | %-22s | %14s | %14s | %6s | %16s | %16s | %9s' "$@")"); }

for policy in always no; do
    bench_log "fsync $policy: starting redis (leader + 2 replicas) and stage 4 (leader + 2 followers)"
    start_redis "$policy"
    start_ours "$policy"
    for clients in 1 50; do
        n=$REQUESTS
        [[ $clients == 1 ]] && n=$REQUESTS_ONE
        for ((round = 0; round < ROUNDS; round++)); do
            if ((round % 2 == 0)); then order="redis ours"; else order="ours redis"; fi
            for sys in $order; do load_run "$sys" "$policy" "$clients" "$n"; done
        done
        read -r r_ops r_p50 r_p99 r_spread <<<"$(median_run "$BENCH_TMP/set-redis-$policy-$clients")"
        read -r o_ops o_p50 o_p99 o_spread <<<"$(median_run "$BENCH_TMP/set-ours-$policy-$clients")"
        row "$policy" "SET, $clients client$([[ $clients == 1 ]] || echo s)" "$r_ops" "$o_ops" "$(bench_ratio "$r_ops" "$o_ops")" \
            "$r_p50/$r_p99" "$o_p50/$o_p99" "$r_spread%/$o_spread%"
        read -r rl50 rl99 rln <<<"$(lag_pct "$BENCH_TMP/lag-redis-$policy-$clients")"
        read -r ol50 ol99 oln <<<"$(lag_pct "$BENCH_TMP/lag-ours-$policy-$clients")"
        row "$policy" "lag under $clients client$([[ $clients == 1 ]] || echo s)" "($rln samples)" "($oln samples)" "$(bench_ratio "$ol50" "$rl50")" \
            "$rl50/$rl99" "$ol50/$ol99" "-"
        bench_log "fsync $policy, $clients clients: redis $r_ops ops/s lag p50 $rl50 ms; stage4 $o_ops ops/s lag p50 $ol50 ms"
    done
    for ((round = 0; round < ROUNDS; round++)); do
        if ((round % 2 == 0)); then order="redis ours"; else order="ours redis"; fi
        for sys in $order; do pairs_run "$sys" "$policy"; done
    done
    for mode in set setwait; do
        read -r r_ops r_p50 r_p99 r_spread <<<"$(median_run "$BENCH_TMP/$mode-redis-$policy-pairs")"
        read -r o_ops o_p50 o_p99 o_spread <<<"$(median_run "$BENCH_TMP/$mode-ours-$policy-pairs")"
        label="SET alone, 1 conn"
        [[ $mode == setwait ]] && label="SET+WAIT 1 0, 1 conn"
        row "$policy" "$label" "$r_ops" "$o_ops" "$(bench_ratio "$r_ops" "$o_ops")" "$r_p50/$r_p99" "$o_p50/$o_p99" \
            "$r_spread%/$o_spread%"
    done
    bench_log "fsync $policy: done; stopping both clusters"
    for pid in "${REDIS_PIDS[@]}" "${OURS_PIDS[@]}"; do stop_pid "$pid"; done
done

commit="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$BENCH_ROOT" diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
echo
echo "stage 4 (leader + 2 followers, $(basename "$STAGE4_BIN") at $commit, release build) vs" \
    "redis-server $(redis-server --version | awk '{ print $3 }' | sed 's/^v=//') (leader + 2 replicas, AOF);"
echo "loopback, filesystem $(df -T "$BENCH_TMP" | awk 'NR == 2 { print $2 }'), $(nproc) cores;" \
    "median of $ROUNDS alternating rounds; SET: $REQUESTS_ONE requests at 1 client, $REQUESTS at 50;" \
    "pairs: $PAIRS per round"
printf '%-6s | %-22s | %14s | %14s | %6s | %16s | %16s | %9s\n' fsync measure "redis ops/s" "stage4 ops/s" ratio \
    "redis p50/p99 ms" "stage4 p50/p99" "spread r/s"
printf '%s\n' "-------+------------------------+----------------+----------------+--------+------------------+------------------+----------"
printf '%s\n' "${rows[@]}"
echo
echo "ratio: ops/s stage4 / redis; lag rows: redis p50 / stage4 p50. Above 1: stage 4 better."
echo "lag: from sending a SET to the leader to the GET on a follower that finds it, sampled every" \
    "${PROBE_MS} ms during the SET load above it (all rounds pooled). spread: (max - min) / median ops/s."
