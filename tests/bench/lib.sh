# lib.sh - shared functions for the benchmark scripts in tests/bench/ (sourced, not run).
# shellcheck shell=bash
#
# Gives every bench script the same way to: find the repository, build the
# release binaries, pick free loopback ports, start servers in the background
# and always stop them, wait for a server to answer PING, run redis-benchmark
# and read its --csv output, and print the comparison table.
#
# A script using it: set -euo pipefail, source this file, call bench_init once
# (it installs the EXIT trap that stops every process started through
# bench_start), then use the functions below.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_BUILD="${BENCH_BUILD:-$BENCH_ROOT/build-release}"
BENCH_PIDS=()
BENCH_CHILD=""
BENCH_TMP=""

bench_log() { printf '%s\n' "bench: $*" >&2; }
bench_die() {
    bench_log "error: $*"
    exit 1
}

# Stops every process started with bench_start (TERM, then KILL after 5 s) and
# removes the temp dir. Runs on every exit path through the EXIT trap.
bench_cleanup() {
    local pid i
    if [[ -n "$BENCH_CHILD" ]]; then
        kill -TERM "$BENCH_CHILD" 2>/dev/null || true
        wait "$BENCH_CHILD" 2>/dev/null || true
        BENCH_CHILD=""
    fi
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

bench_init() {
    BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kvbench.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_exec OUTFILE CMD [ARGS...]: runs CMD to completion with its output in
# OUTFILE and returns its status. The child runs in the background and the
# shell waits for it, so a TERM or INT to the script is handled at once (bash
# defers traps while a foreground child runs) and cleanup stops the child.
bench_exec() {
    local out="$1" rc=0
    shift
    "$@" >"$out" 2>&1 &
    BENCH_CHILD=$!
    wait "$BENCH_CHILD" || rc=$?
    BENCH_CHILD=""
    return "$rc"
}

bench_need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || bench_die "$tool not found (make deps installs it)"
    done
}

# Configures and builds the release tree (binaries in $BENCH_BUILD/bin).
# Arguments: the targets to build (default: everything).
bench_build_release() {
    bench_log "building release binaries in $BENCH_BUILD"
    bench_exec "$BENCH_TMP/cmake-configure.log" cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=Release ||
        { cat "$BENCH_TMP/cmake-configure.log" >&2; bench_die "cmake configure failed"; }
    local targets=()
    local t
    for t in "$@"; do targets+=(--target "$t"); done
    bench_exec "$BENCH_TMP/cmake-build.log" cmake --build "$BENCH_BUILD" -j "$(nproc 2>/dev/null || echo 2)" "${targets[@]}" ||
        { tail -50 "$BENCH_TMP/cmake-build.log" >&2; bench_die "build failed"; }
}

# Prints a TCP port on 127.0.0.1 that nothing listens on now, and that no
# earlier call in this run has handed out. It is taken from below the
# kernel's ephemeral range: a port in that range can be in use as the local
# end of some client's connection (redis-benchmark opens 50), which a
# connect test cannot see and which makes the server's bind fail.
BENCH_USED_PORTS=" "
bench_free_port() {
    local port tries low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 11000)) || low=32768
    for ((tries = 0; tries < 200; tries++)); do
        port=$((10000 + RANDOM % (low - 10000)))
        [[ "$BENCH_USED_PORTS" == *" $port "* ]] && continue
        # A successful connect means something is listening there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            BENCH_USED_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    bench_die "no free port found"
}

# bench_start NAME CMD [ARGS...]: runs CMD in the background, output to
# $BENCH_TMP/NAME.log, remembered for cleanup. Sets BENCH_LAST_PID.
bench_start() {
    local name="$1"
    shift
    "$@" >"$BENCH_TMP/$name.log" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# bench_wait_ping NAME PORT PID [TIMEOUT_S]: polls PING until the server
# answers PONG, the process dies, or the deadline passes.
bench_wait_ping() {
    local name="$1" port="$2" pid="$3" timeout="${4:-15}"
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$BENCH_TMP/$name.log" >&2 || true
            bench_die "$name exited before answering on port $port"
        fi
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == "PONG" ]]; then
            return 0
        fi
        sleep 0.05
    done
    tail -20 "$BENCH_TMP/$name.log" >&2 || true
    bench_die "$name did not answer PING on port $port within ${timeout}s"
}

# bench_redis_server PORT: starts a redis-server with no persistence on
# 127.0.0.1:PORT and waits for it. Sets BENCH_LAST_PID.
bench_redis_server() {
    local port="$1"
    mkdir -p "$BENCH_TMP/redis-$port"
    bench_start "redis-$port" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$BENCH_TMP/redis-$port" --logfile ''
    bench_wait_ping "redis-$port" "$port" "$BENCH_LAST_PID"
}

# bench_run PORT TEST REQUESTS CLIENTS PIPELINE: runs one redis-benchmark test
# and sets BENCH_RESULT to "ops p50 p99" (ops/s, milliseconds) read from its
# --csv output, whose columns (redis-benchmark 7) are:
#   "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
# (A variable, not stdout: a command substitution would run it in a subshell
# where signals wait for redis-benchmark to finish.)
bench_run() {
    local port="$1" test="$2" requests="$3" clients="$4" pipeline="$5"
    local out="$BENCH_TMP/benchmark.out"
    bench_exec "$out" redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -n "$requests" -c "$clients" -P "$pipeline" --csv ||
        { cat "$out" >&2; bench_die "redis-benchmark -t $test failed against port $port"; }
    local line
    line="$(tr -d '\r' <"$out" | grep -i "^\"$test\"," | tail -1 || true)"
    [[ -n "$line" ]] || { cat "$out" >&2; bench_die "no result for $test in redis-benchmark output (port $port)"; }
    BENCH_RESULT="$(printf '%s\n' "$line" | awk -F, '{ gsub(/"/, ""); print $2, $5, $7 }')"
    [[ "$BENCH_RESULT" =~ ^[0-9.]+\ [0-9.]+\ [0-9.]+$ ]] || { cat "$out" >&2; bench_die "unexpected redis-benchmark output for $test (port $port)"; }
}

# bench_best OLD NEW: of two "ops p50 p99" results, the one with more ops/s
# (OLD may be empty).
bench_best() {
    if [[ -z "$1" ]]; then
        echo "$2"
    else
        awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); print (y[1] + 0 > x[1] + 0) ? b : a }'
    fi
}

# bench_ratio A B: B / A with two decimals ("-" when A is 0).
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0) print "-"; else printf "%.2f\n", b / a }'
}

# Table output: bench_table_header THEIRS OURS, then bench_table_row for each
# result. Columns: test | pipeline | their ops/s | our ops/s | ratio | p50/p99.
bench_table_header() {
    local theirs="$1" ours="$2"
    printf '%-6s | %8s | %14s | %14s | %6s | %18s | %18s\n' "test" "pipeline" "$theirs ops/s" "$ours ops/s" \
        "ratio" "$theirs p50/p99 ms" "$ours p50/p99 ms"
    printf '%s\n' "-------+----------+----------------+----------------+--------+--------------------+-------------------"
}

# bench_table_row TEST PIPELINE T_OPS T_P50 T_P99 O_OPS O_P50 O_P99
bench_table_row() {
    printf '%-6s | %8s | %14s | %14s | %6s | %18s | %18s\n' "$1" "$2" "$3" "$6" "$(bench_ratio "$3" "$6")" \
        "$4/$5" "$7/$8"
}

# --- Raft clusters (ours and etcd): shared by stage5.sh and stage6.sh ---------
# A script using these sets OURS_BIN (the server binary), RAFT_BENCH, ETCDPUT,
# KEY_SIZE and VAL_SIZE, and may set OURS_EXTRA_ARGS (more flags for each of
# our nodes) and OURS_DIR (the nodes' directories, default $BENCH_TMP/ours).

# bench_build_etcdput: builds the Go load generator for etcd ($ETCDPUT, from
# tests/bench/etcdput) in GOPATH mode, offline, against Debian's etcd sources,
# when it is missing or older than its source.
bench_build_etcdput() {
    local ETCDPUT_SRC="$BENCH_ROOT/tests/bench/etcdput"
    if [[ ! -x "$ETCDPUT" || "$ETCDPUT_SRC/main.go" -nt "$ETCDPUT" ]]; then
        bench_log "building $ETCDPUT (go, GOPATH mode)"
        mkdir -p "$(dirname "$ETCDPUT")"
        (cd "$ETCDPUT_SRC" && bench_exec "$BENCH_TMP/go-build.log" env GO111MODULE=off GOPATH=/usr/share/gocode \
            GOFLAGS= GOCACHE="$BENCH_BUILD/go-cache" go build -o "$ETCDPUT" .) ||
            { cat "$BENCH_TMP/go-build.log" >&2; bench_die "go build of tests/bench/etcdput failed"; }
    fi
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds or the deadline.
# On a timeout the servers' logs are shown.
wait_for() {
    local what="$1" timeout="$2" log
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            for log in "$BENCH_TMP"/*.log; do
                [[ -s "$log" ]] && { echo "--- $log" >&2; tail -15 "$log" >&2; }
            done
            bench_die "timed out waiting for $what"
        fi
        sleep 0.05
    done
}

# --- the two clusters ----------------------------------------------------------
# OURS_PORTS / ETCD_URLS (client side), *_PIDS, in node order; OURS_ARGS and
# ETCD_ARGS hold each node's command line so a killed node restarts the same.

start_ours_node() { # INDEX
    local i="$1"
    # shellcheck disable=SC2206 # the arguments were stored word by word
    local args=(${OURS_ARGS[$i]})
    bench_start "ours-$i-$SECONDS" "$OURS_BIN" "${args[@]}"
    OURS_PIDS[i]=$BENCH_LAST_PID
}

start_ours() {
    OURS_PORTS=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)")
    local peers=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)") spec="" i
    for i in 0 1 2; do spec+="${spec:+,}$((i + 1))=127.0.0.1:${OURS_PORTS[$i]}:${peers[$i]}"; done
    OURS_ARGS=() OURS_PIDS=()
    for i in 0 1 2; do
        mkdir -p "${OURS_DIR:-$BENCH_TMP/ours}/node$i"
        OURS_ARGS[i]="--id $((i + 1)) --cluster $spec --data-dir ${OURS_DIR:-$BENCH_TMP/ours}/node$i/data --fsync always --log-level warn${OURS_EXTRA_ARGS:+ $OURS_EXTRA_ARGS}"
        start_ours_node "$i"
    done
}

# One node says leader and every node names it (ROLE: role, term, leader id, ...).
ours_ready() {
    local port roles leaders=0 ids=""
    for port in "${OURS_PORTS[@]}"; do
        roles="$(redis-cli -h 127.0.0.1 -p "$port" role 2>/dev/null | tr -d '\r' | head -3 | paste -sd' ')" || return 1
        [[ "$roles" =~ ^(leader|follower)\ [0-9]+\ ([0-9]+)$ ]] || return 1
        [[ ${BASH_REMATCH[1]} == leader ]] && leaders=$((leaders + 1))
        ids+="${BASH_REMATCH[2]} "
    done
    ((leaders == 1)) && [[ "$(tr ' ' '\n' <<<"$ids" | sort -u | grep -c .)" == 1 ]]
}

ours_leader_port() {
    local port
    for port in "${OURS_PORTS[@]}"; do
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" role 2>/dev/null | head -1 | tr -d '\r')" == leader ]]; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

start_etcd_node() { # INDEX
    local i="$1"
    # shellcheck disable=SC2206
    local args=(${ETCD_ARGS[$i]})
    bench_start "etcd-$i-$SECONDS" etcd "${args[@]}"
    ETCD_PIDS[i]=$BENCH_LAST_PID
}

start_etcd() {
    local cports=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)")
    local pports=("$(bench_free_port)" "$(bench_free_port)" "$(bench_free_port)") initial="" i
    for i in 0 1 2; do initial+="${initial:+,}n$i=http://127.0.0.1:${pports[$i]}"; done
    ETCD_URLS=() ETCD_ARGS=() ETCD_PIDS=()
    for i in 0 1 2; do
        ETCD_URLS[i]="http://127.0.0.1:${cports[$i]}"
        mkdir -p "$BENCH_TMP/etcd/node$i"
        # Defaults kept where they matter: heartbeat 100 ms, election timeout
        # 1000 ms (ours too), snapshots every 100,000 entries.
        ETCD_ARGS[i]="--name n$i --data-dir $BENCH_TMP/etcd/node$i/data
            --listen-client-urls ${ETCD_URLS[$i]} --advertise-client-urls ${ETCD_URLS[$i]}
            --listen-peer-urls http://127.0.0.1:${pports[$i]} --initial-advertise-peer-urls http://127.0.0.1:${pports[$i]}
            --initial-cluster $initial --initial-cluster-state new --initial-cluster-token kvbench
            --logger zap --log-level error --log-outputs stderr"
        start_etcd_node "$i"
    done
}

etcd_ready() { "$ETCDPUT" leader -endpoints "$(IFS=,; echo "${ETCD_URLS[*]}")" >/dev/null 2>&1; }

etcd_leader_url() {
    local i
    i="$("$ETCDPUT" leader -endpoints "$(IFS=,; echo "${ETCD_URLS[*]}")" 2>"$BENCH_TMP/leader.err")" ||
        { cat "$BENCH_TMP/leader.err" >&2; return 1; }
    echo "${ETCD_URLS[$i]}"
}

# --- one measurement -------------------------------------------------------------

# put_run SYSTEM CLIENTS N: appends "ops p50 p99" to $BENCH_TMP/put-SYSTEM-CLIENTS.
put_run() {
    local sys="$1" clients="$2" n="$3" out="$BENCH_TMP/put.out" target
    if [[ $sys == ours ]]; then
        target="$(ours_leader_port)" || bench_die "no leader in our cluster"
        bench_exec "$out" "$RAFT_BENCH" put "$target" "$clients" "$n" "$KEY_SIZE" "$VAL_SIZE" ||
            { cat "$out" >&2; bench_die "raft_bench put failed (port $target, $clients clients)"; }
    else
        target="$(etcd_leader_url)" || bench_die "no agreed leader in the etcd cluster"
        bench_exec "$out" "$ETCDPUT" put -endpoint "$target" -clients "$clients" -total "$n" \
            -key-size "$KEY_SIZE" -val-size "$VAL_SIZE" ||
            { cat "$out" >&2; bench_die "etcdput put failed ($target, $clients clients)"; }
    fi
    local line
    line="$(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+$' "$out" | tail -1 || true)"
    [[ -n "$line" ]] || { cat "$out" >&2; bench_die "no result from the $sys load generator"; }
    echo "$line" >>"$BENCH_TMP/put-$sys-$clients"
}

# median_run FILE: of lines "ops p50 p99", the median by ops (the lower of the
# two middle ones for an even count), then its spread: "ops p50 p99 spread%".
median_run() {
    sort -n -k1,1 "$1" | awk '{ l[NR] = $0; o[NR] = $1 } END {
        m = int((NR + 1) / 2); split(l[m], x, " ")
        printf "%s %s %s %.0f\n", x[1], x[2], x[3], (o[m] > 0) ? 100 * (o[NR] - o[1]) / o[m] : 0 }'
}

# median_min_max FILE: "median min max" of one number per line.
median_min_max() {
    sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
