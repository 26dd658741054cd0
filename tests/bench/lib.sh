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
