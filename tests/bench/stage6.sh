#!/usr/bin/env bash
# stage6.sh - benchmark: what snapshots cost the stage 6 server (issue 12,
# item 7), all on loopback, release build, --fsync always for the clusters.
#
#   1. Writes while snapshots are taken, against none: three three-node stage 6
#      clusters side by side, one with --snapshot-entries 0 (never), one with
#      a small threshold (BENCH_SNAP_ENTRIES, default 5000) so that, over a
#      store preloaded with BENCH_STORE_KEYS keys (default 200,000, so the fork
#      copies a real heap and the child writes tens of MB), a snapshot is being
#      written all the time the load runs (--snapshot-bytes 0 in all), at the
#      default --snapshot-rate; the third as the second with --snapshot-rate 0
#      (unlimited), to show what the rate limit buys. The load is raft_bench
#      put at 50 clients (as stage5.sh). Target: p99 with snapshots (the
#      default rate) at most 2x p99 without. The snapshots taken during each
#      round (raft_snapshots_taken from INFO raft, summed over the three
#      nodes) are printed, with the share of the round a writer ran
#      (raft_snapshot_writing_ms_total, averaged over the nodes): at the
#      default rate a snapshot outlasts a round, so the count is often 0.
#   2. Restart time with BENCH_RESTART_KEYS keys (default 1,000,000): a
#      one-node stage 6 loaded and snapshotted (SNAPSHOT, one more write and
#      SNAPSHOT again, so the log before the first is deleted as in steady
#      state) against redis-server loaded with the same SETs and SAVEd (RDB).
#      Each is stopped and started again; the time from the start of the
#      process to the first correct answer to a GET of the last key loaded
#      (which both give only once the data is loaded). Median of
#      BENCH_RESTART_TRIALS (default 3), alternating. Target: no slower.
#   3. Stage 5's comparison with etcd 3.4 (50-client puts, lib.sh's cluster
#      functions, shared with stage5.sh) repeated on a fresh stage 6 cluster
#      with snapshots on (BENCH_SNAP_ENTRIES).
#
# Rounds alternate the systems (and swap which goes first every round); the
# median round is reported with its p50/p99 and the spread of ops/s.
# Exits non-zero only when something failed to run, never because of a ratio.
#
# Environment: BENCH_REQUESTS (puts a round, default 20000), BENCH_ROUNDS
# (default 5), BENCH_STORE_KEYS, BENCH_SNAP_ENTRIES, BENCH_RESTART_KEYS,
# BENCH_RESTART_TRIALS, BENCH_NO_BUILD=1, STAGE6_BIN, RAFT_BENCH, ETCDPUT.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${BENCH_REQUESTS:-20000}"
ROUNDS="${BENCH_ROUNDS:-5}"
STORE_KEYS="${BENCH_STORE_KEYS:-200000}"
SNAP_ENTRIES="${BENCH_SNAP_ENTRIES:-5000}"
RESTART_KEYS="${BENCH_RESTART_KEYS:-1000000}"
RESTART_TRIALS="${BENCH_RESTART_TRIALS:-3}"
STAGE6_BIN="${STAGE6_BIN:-$BENCH_BUILD/bin/stage6-snapshots}"
RAFT_BENCH="${RAFT_BENCH:-$BENCH_BUILD/bin/raft_bench}"
ETCDPUT="${ETCDPUT:-$BENCH_BUILD/bin/etcdput}"
ETCD_PACKAGES="etcd-server golang-go golang-etcd-server-dev"
KEY_SIZE=8
VAL_SIZE=256
# shellcheck disable=SC2034 # read by lib.sh's start_ours_node
OURS_BIN="$STAGE6_BIN"

bench_init
EXTRA_PACKAGES="$ETCD_PACKAGES" "$BENCH_ROOT/scripts/deps.sh" ||
    bench_die "the etcd benchmark needs: $ETCD_PACKAGES (see above)"
bench_need cmake redis-cli redis-server etcd go awk sort split
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    bench_build_release stage6-snapshots raft_bench
fi
[[ -x "$STAGE6_BIN" && -x "$RAFT_BENCH" ]] || bench_die "$STAGE6_BIN or $RAFT_BENCH not found (make release)"
bench_build_etcdput

# info_sum FIELD PORTS...: an INFO raft field summed over the nodes.
info_sum() {
    local field="$1" port sum=0 v
    shift
    for port in "$@"; do
        v="$(redis-cli -h 127.0.0.1 -p "$port" info raft 2>/dev/null | tr -d '\r' |
            awk -F: -v f="$field" '$1 == f { print $2 }')"
        [[ "$v" =~ ^[0-9]+$ ]] || bench_die "no $field in INFO raft on port $port"
        sum=$((sum + v))
    done
    echo "$sum"
}
snaps_taken() { info_sum raft_snapshots_taken "$@"; }

# use_cluster NAME: points lib.sh's OURS_PORTS/OURS_PIDS at cluster NAME
# (off or on), whose arrays were saved by start_cluster.
use_cluster() {
    local p="${1^^}_PORTS[@]" q="${1^^}_PIDS[@]"
    # shellcheck disable=SC2034 # lib.sh's
    OURS_PORTS=("${!p}") OURS_PIDS=("${!q}")
}

# start_cluster NAME SNAPSHOT_ENTRIES [FLAGS]: the size threshold off in all
# (its default, 64m, would snapshot the "without" cluster too).
start_cluster() {
    OURS_DIR="$BENCH_TMP/$1" OURS_EXTRA_ARGS="--snapshot-entries $2 --snapshot-bytes 0${3:+ $3}" start_ours
    eval "${1^^}_PORTS=(\"\${OURS_PORTS[@]}\") ${1^^}_PIDS=(\"\${OURS_PIDS[@]}\")"
}

# --- 1. writes while snapshots are taken ---------------------------------------------

bench_log "part 1: three 3-node stage 6 clusters (--fsync always), --snapshot-entries 0, $SNAP_ENTRIES and" \
    "$SNAP_ENTRIES --snapshot-rate 0"
start_cluster off 0
start_cluster on "$SNAP_ENTRIES"
start_cluster fast "$SNAP_ENTRIES" "--snapshot-rate 0"
for c in off on fast; do
    use_cluster "$c"
    wait_for "a leader in the $c cluster" 60 ours_ready
    bench_log "preloading $STORE_KEYS keys into the $c cluster"
    put_run ours 100 "$STORE_KEYS"
    mv "$BENCH_TMP/put-ours-100" "$BENCH_TMP/preload-$c"
done
for ((round = 0; round < ROUNDS; round++)); do
    if ((round % 2 == 0)); then order="off on fast"; else order="fast on off"; fi
    for c in $order; do
        use_cluster "$c"
        before="$(snaps_taken "${OURS_PORTS[@]}")"
        busy0="$(info_sum raft_snapshot_writing_ms_total "${OURS_PORTS[@]}")"
        t0="$(date +%s%N)"
        put_run ours 50 "$REQUESTS"
        t1="$(date +%s%N)"
        busy1="$(info_sum raft_snapshot_writing_ms_total "${OURS_PORTS[@]}")"
        after="$(snaps_taken "${OURS_PORTS[@]}")"
        tail -1 "$BENCH_TMP/put-ours-50" >>"$BENCH_TMP/put-$c"
        rm -f "$BENCH_TMP/put-ours-50"
        # How much of the round a writer ran, averaged over the three nodes.
        busy=$(((busy1 - busy0) * 100000000 / ((t1 - t0) * 3)))
        echo "$((after - before)) ($((busy > 100 ? 100 : busy))%)" >>"$BENCH_TMP/snaps-$c"
    done
    bench_log "round $((round + 1))/$ROUNDS: without $(tail -1 "$BENCH_TMP/put-off"), with" \
        "$(tail -1 "$BENCH_TMP/put-on"), unlimited $(tail -1 "$BENCH_TMP/put-fast") (ops/s p50 p99 ms)," \
        "$(tail -1 "$BENCH_TMP/snaps-on") and $(tail -1 "$BENCH_TMP/snaps-fast") snapshots taken"
done
read -r off_ops off_p50 off_p99 off_spread <<<"$(median_run "$BENCH_TMP/put-off")"
read -r on_ops on_p50 on_p99 on_spread <<<"$(median_run "$BENCH_TMP/put-on")"
read -r fast_ops fast_p50 fast_p99 fast_spread <<<"$(median_run "$BENCH_TMP/put-fast")"
on_snaps="$(paste -sd, "$BENCH_TMP/snaps-on" | sed 's/,/, /g')"
fast_snaps="$(paste -sd, "$BENCH_TMP/snaps-fast" | sed 's/,/, /g')"
off_snaps="$(paste -sd, "$BENCH_TMP/snaps-off" | sed 's/,/, /g')"
use_cluster on
snap_bytes="$(redis-cli -h 127.0.0.1 -p "$(ours_leader_port)" info raft | tr -d '\r' |
    awk -F: '$1 == "raft_snapshot_bytes" { b = $2 } $1 == "raft_snapshot_duration_ms" { d = $2 }
             $1 == "latest_fork_usec" { f = $2 } END { print b, d, f }')"
for pid in "${OFF_PIDS[@]}" "${ON_PIDS[@]}" "${FAST_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${OFF_PIDS[@]}" "${ON_PIDS[@]}" "${FAST_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
rm -rf "$BENCH_TMP/off" "$BENCH_TMP/on" "$BENCH_TMP/fast"

# --- 2. restart with RESTART_KEYS keys ------------------------------------------------

# The same SETs for both: key:0000000.. with one of 1000 random 256-letter
# values (random so that Redis's per-string LZF compression of the RDB gains
# nothing our snapshot does not), as RESP, cut into 20 files loaded in
# parallel (ours applies one write per connection at a time; parallel
# connections let Raft batch them). The last key's value goes to a file.
bench_log "part 2: generating $RESTART_KEYS SETs"
mkdir -p "$BENCH_TMP/sets"
awk -v n="$RESTART_KEYS" -v vs="$VAL_SIZE" -v last="$BENCH_TMP/last-value" 'BEGIN {
    srand(6)
    for (j = 0; j < 1000; j++) {
        v = ""
        for (c = 0; c < vs; c++) v = v sprintf("%c", 97 + int(rand() * 26))
        pool[j] = v
    }
    for (i = 0; i < n; i++) {
        k = sprintf("key:%07d", i); v = pool[i % 1000]
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
    print v >last }' >"$BENCH_TMP/sets/all"
lines_per=$(((RESTART_KEYS + 19) / 20 * 7))
split -l "$lines_per" "$BENCH_TMP/sets/all" "$BENCH_TMP/sets/part."
rm -f "$BENCH_TMP/sets/all"
last_key="$(printf 'key:%07d' $((RESTART_KEYS - 1)))"
last_val="$(cat "$BENCH_TMP/last-value")"

# load PORT: every SET file through redis-cli --pipe, in parallel.
load() {
    local port="$1" f pids=() pid
    for f in "$BENCH_TMP"/sets/part.*; do
        redis-cli -h 127.0.0.1 -p "$port" --pipe <"$f" >"${f/part./out.}" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || bench_die "redis-cli --pipe into port $port failed"; done
    if grep -L "errors: 0," "$BENCH_TMP"/sets/out.* | grep -q .; then
        cat "$BENCH_TMP"/sets/out.* >&2
        bench_die "errors while loading port $port"
    fi
}

OURS1_PORT="$(bench_free_port)"
REDIS_PORT="$(bench_free_port)"
# --snapshot-rate 0: nothing else runs while it loads, so its SNAPSHOTs may
# take the machine.
OURS1_ARGS=(--port "$OURS1_PORT" --bind 127.0.0.1 --data-dir "$BENCH_TMP/one/data" --fsync no
    --snapshot-entries 0 --snapshot-bytes 0 --snapshot-rate 0 --log-level warn)
REDIS_ARGS=(--port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
    --dir "$BENCH_TMP/redis" --dbfilename dump.rdb --logfile '')
mkdir -p "$BENCH_TMP/one" "$BENCH_TMP/redis"

bench_start ours1 "$STAGE6_BIN" "${OURS1_ARGS[@]}"
ours1_pid=$BENCH_LAST_PID
bench_wait_ping ours1 "$OURS1_PORT" "$ours1_pid" 30
bench_start redis "redis-server" "${REDIS_ARGS[@]}"
redis_pid=$BENCH_LAST_PID
bench_wait_ping redis "$REDIS_PORT" "$redis_pid" 30
t0=$SECONDS
load "$OURS1_PORT"
bench_log "loaded $RESTART_KEYS keys into stage 6 (one node, --fsync no) in $((SECONDS - t0)) s"
t0=$SECONDS
load "$REDIS_PORT"
bench_log "loaded $RESTART_KEYS keys into redis-server in $((SECONDS - t0)) s"
for port in "$OURS1_PORT" "$REDIS_PORT"; do
    n="$(redis-cli -h 127.0.0.1 -p "$port" dbsize | tr -d '\r')"
    [[ "$n" == "$RESTART_KEYS" ]] || bench_die "port $port holds $n keys, not $RESTART_KEYS"
done
r="$(redis-cli -h 127.0.0.1 -p "$OURS1_PORT" snapshot | tr -d '\r')"
[[ "$r" == OK ]] || bench_die "SNAPSHOT answered: $r"
redis-cli -h 127.0.0.1 -p "$OURS1_PORT" set bench:marker 1 >/dev/null
r="$(redis-cli -h 127.0.0.1 -p "$OURS1_PORT" snapshot | tr -d '\r')"
[[ "$r" == OK ]] || bench_die "SNAPSHOT answered: $r"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" set bench:marker 1 >/dev/null
r="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" save | tr -d '\r')"
[[ "$r" == OK ]] || bench_die "redis SAVE answered: $r"
ours_snap_bytes="$(redis-cli -h 127.0.0.1 -p "$OURS1_PORT" info raft | tr -d '\r' |
    awk -F: '$1 == "raft_snapshot_bytes" { print $2 }')"
rdb_bytes="$(stat -c %s "$BENCH_TMP/redis/dump.rdb")"
kill -TERM "$ours1_pid" "$redis_pid"
wait "$ours1_pid" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
ours_dir_bytes="$(du -sb "$BENCH_TMP/one/data" | cut -f1)"

# restart_once NAME PORT CMD...: starts CMD, polls GET last_key until it
# answers the value loaded (or the process dies, or 120 s pass), appends the
# seconds to $BENCH_TMP/restart-NAME, stops the process.
restart_once() {
    local name="$1" port="$2" start pid v end
    shift 2
    start="$(date +%s.%N)"
    bench_start "$name-restart" "$@"
    pid=$BENCH_LAST_PID
    while :; do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$BENCH_TMP/$name-restart.log" >&2; bench_die "$name exited while restarting"; }
        v="$(redis-cli -h 127.0.0.1 -p "$port" get "$last_key" 2>/dev/null | tr -d '\r' || true)"
        [[ "$v" == "$last_val" ]] && break
        awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - s > 120) }' && bench_die "$name did not answer within 120 s"
        sleep 0.01
    done
    end="$(date +%s.%N)"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >>"$BENCH_TMP/restart-$name"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}

for ((trial = 0; trial < RESTART_TRIALS; trial++)); do
    if ((trial % 2 == 0)); then order="redis ours"; else order="ours redis"; fi
    for sys in $order; do
        if [[ $sys == ours ]]; then
            restart_once ours "$OURS1_PORT" "$STAGE6_BIN" "${OURS1_ARGS[@]}"
        else
            restart_once redis "$REDIS_PORT" redis-server "${REDIS_ARGS[@]}"
        fi
    done
    bench_log "restart trial $((trial + 1))/$RESTART_TRIALS: redis $(tail -1 "$BENCH_TMP/restart-redis") s," \
        "ours $(tail -1 "$BENCH_TMP/restart-ours") s"
done
read -r rr_med rr_min rr_max <<<"$(median_min_max "$BENCH_TMP/restart-redis")"
read -r ro_med ro_min ro_max <<<"$(median_min_max "$BENCH_TMP/restart-ours")"
rm -rf "$BENCH_TMP/one" "$BENCH_TMP/redis" "$BENCH_TMP/sets"

# --- 3. stage 5's etcd comparison with snapshots on ---------------------------------

bench_log "part 3: 3-node stage 6 (--snapshot-entries $SNAP_ENTRIES) and etcd $(etcd --version |
    awk '/etcd Version/ { print $3 }') (3 members)"
OURS_DIR="$BENCH_TMP/ours" OURS_EXTRA_ARGS="--snapshot-entries $SNAP_ENTRIES" start_ours
start_etcd
wait_for "a leader in our cluster" 60 ours_ready
wait_for "a leader in the etcd cluster" 60 etcd_ready
snaps0="$(snaps_taken "${OURS_PORTS[@]}")"
for ((round = 0; round < ROUNDS; round++)); do
    if ((round % 2 == 0)); then order="etcd ours"; else order="ours etcd"; fi
    for sys in $order; do put_run "$sys" 50 "$REQUESTS"; done
    bench_log "etcd round $((round + 1))/$ROUNDS: etcd $(tail -1 "$BENCH_TMP/put-etcd-50")," \
        "ours $(tail -1 "$BENCH_TMP/put-ours-50") (ops/s p50 p99 ms)"
done
snaps3=$(($(snaps_taken "${OURS_PORTS[@]}") - snaps0))
read -r e50_ops e50_p50 e50_p99 e50_spread <<<"$(median_run "$BENCH_TMP/put-etcd-50")"
read -r o50_ops o50_p50 o50_p99 o50_spread <<<"$(median_run "$BENCH_TMP/put-ours-50")"

# --- the tables ----------------------------------------------------------------------

verdict() { awk "BEGIN { print ($1) ? \"met\" : \"MISSED\" }"; }
commit="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$BENCH_ROOT" diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
echo
echo "stage 6 ($(basename "$STAGE6_BIN") at $commit, release build); loopback, filesystem" \
    "$(df -T "$BENCH_TMP" | awk 'NR == 2 { print $2 }'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "1. puts at 50 clients to the leader of a 3-node cluster (--fsync always), ${KEY_SIZE}-byte random keys," \
    "${VAL_SIZE}-byte values, over $STORE_KEYS preloaded keys; median of $ROUNDS alternating rounds of $REQUESTS"
printf '%-30s | %10s | %16s | %7s | %s\n' measure "ops/s" "p50/p99 ms" spread "each round: snapshots taken (3 nodes) (share of it a writer ran)"
printf '%s\n' "-------------------------------+------------+------------------+---------+-----------------------------------------------------------------"
printf '%-30s | %10s | %16s | %7s | %s\n' "--snapshot-entries 0" "$off_ops" "$off_p50/$off_p99" "$off_spread%" "$off_snaps"
printf '%-30s | %10s | %16s | %7s | %s\n' "--snapshot-entries $SNAP_ENTRIES" "$on_ops" "$on_p50/$on_p99" "$on_spread%" "$on_snaps"
printf '%-30s | %10s | %16s | %7s | %s\n' "  and --snapshot-rate 0" "$fast_ops" "$fast_p50/$fast_p99" "$fast_spread%" "$fast_snaps"
default_rate="$("$STAGE6_BIN" --help | sed -n 's/.*--snapshot-rate .*(default \([^)]*\)).*/\1/p')"
echo "p99 with / without: $(bench_ratio "$off_p99" "$on_p99") at the default --snapshot-rate ($default_rate) (target at most 2x:" \
    "$(verdict "$on_p99 <= 2 * $off_p99")), $(bench_ratio "$off_p99" "$fast_p99") unlimited;" \
    "the leader's last snapshot: $(cut -d' ' -f1 <<<"$snap_bytes") bytes, written in $(cut -d' ' -f2 <<<"$snap_bytes") ms, its fork() held the loop $(cut -d' ' -f3 <<<"$snap_bytes") us"
echo
echo "2. restart with $RESTART_KEYS keys (${VAL_SIZE}-byte values): process start to the first correct GET of the last key;" \
    "median of $RESTART_TRIALS alternating"
printf '%-44s | %9s | %15s | %s\n' system "median s" "min/max s" "on disk"
printf '%s\n' "---------------------------------------------+-----------+-----------------+---------"
printf '%-44s | %9s | %15s | %s\n' "redis-server $(redis-server --version | awk '{ print $3 }' | cut -d= -f2), RDB" "$rr_med" "$rr_min/$rr_max" "RDB $rdb_bytes bytes"
printf '%-44s | %9s | %15s | %s\n' "stage 6, one node, snapshot + 1 log entry" "$ro_med" "$ro_min/$ro_max" \
    "snapshot $ours_snap_bytes bytes, data dir $ours_dir_bytes"
echo "ours / redis: $(bench_ratio "$rr_med" "$ro_med") (target no slower: $(verdict "$ro_med <= $rr_med"))"
echo
echo "3. stage 5's etcd comparison, stage 6 with --snapshot-entries $SNAP_ENTRIES ($snaps3 snapshots taken over the" \
    "rounds, 3 nodes); puts at 50 clients, median of $ROUNDS alternating rounds of $REQUESTS"
printf '%-20s | %12s | %12s | %6s | %16s | %16s | %9s | %s\n' measure "etcd ops/s" "ours ops/s" ratio \
    "etcd p50/p99 ms" "ours p50/p99 ms" "spread e/o" "target (stage 5's)"
printf '%s\n' "---------------------+--------------+--------------+--------+------------------+------------------+-----------+-------"
printf '%-20s | %12s | %12s | %6s | %16s | %16s | %9s | %s\n' "put, 50 clients" "$e50_ops" "$o50_ops" \
    "$(bench_ratio "$e50_ops" "$o50_ops")" "$e50_p50/$e50_p99" "$o50_p50/$o50_p99" "$e50_spread%/$o50_spread%" \
    ">= 3x etcd: $(verdict "$o50_ops >= 3 * $e50_ops"); p99 no worse: $(verdict "$o50_p99 <= $e50_p99")"
