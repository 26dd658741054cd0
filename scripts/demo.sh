#!/usr/bin/env bash
# The demo `make demo` runs: starts each stage that exists, drives it by hand
# the way the README shows, and stops it cleanly. Stage 1 is here; stages 2-6
# are scripts/demo-stageN.sh (stage 4: a leader, a follower, a promotion;
# stage 5: a Raft failover).
# Argument: the bin directory.
set -euo pipefail
BIN=${1:-build/bin}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"

# stop PID NAME: SIGTERM, then report the exit code the way a user would see it.
stop() {
  kill -TERM "$1"
  local rc=0
  wait "$1" || rc=$?
  echo "$2 exited with code $rc"
}

demo_stage1() {
  local port=7001 log="$WORK/stage1.log"
  say "Stage 1: in-memory server on port $port"
  "$BIN/stage1-single-node" --port $port >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port $port
  say "Typing inline commands with nc, as a person would"
  printf 'PING\r\nSET greeting "hello world"\r\nGET greeting\r\nNOSUCH x\r\nQUIT\r\n' >"$WORK/inline.txt"
  printf '$ nc 127.0.0.1 %s   (typing: PING / SET greeting "hello world" / GET greeting / NOSUCH x / QUIT)\n' $port
  nc -q 2 127.0.0.1 $port <"$WORK/inline.txt" || true
  say "The same server from redis-cli (multibulk requests)"
  run redis-cli -p $port SET user:1 alice
  run redis-cli -p $port GET user:1
  run redis-cli -p $port EXISTS user:1 user:2
  run redis-cli -p $port DEL user:1 user:2
  run redis-cli -p $port GET user:1
  run redis-cli -p $port DBSIZE
  run redis-cli -p $port SET onlykey
  printf '$ redis-cli -p %s INFO | grep -E "stage|keys|connected_clients|total_commands"\n' $port
  redis-cli -p $port INFO | tr -d '\r' | grep -E '^(stage|keys|connected_clients|total_commands_processed):' || true
  say "Graceful shutdown with SIGTERM"
  stop "$pid" stage1-single-node
  PIDS=()
  echo "--- server log ---"
  cat "$log"
}

demo_stage1
for extra in scripts/demo-stage[2-6].sh; do
  if [ -f "$extra" ]; then BIN="$BIN" WORK="$WORK" bash "$extra"; fi
done
say "Demo finished"
