#!/usr/bin/env bash
# Stage 6 part of `make demo`: snapshots. One stage 6 node takes writes
# over 10 keys; SNAPSHOT writes the state to a file (a forked child); after
# the second one, the log segments behind the first are deleted (the log
# after the previous snapshot is kept as a fallback); a restart loads the
# newest snapshot and replays only the entries after it. Called by scripts/demo.sh with
# BIN and WORK set; stops what it started, whatever happens.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
server="$BIN/stage6-snapshots"
PID6=""
stop_all() { if [ -n "$PID6" ]; then kill -9 "$PID6" 2>/dev/null || true; fi; }
trap stop_all EXIT

# A free port below the ephemeral range, as demo-stage4.sh's free_port says why.
port=""
for _ in $(seq 1 100); do
  p=$((20000 + RANDOM % 12000))
  if ! nc -z 127.0.0.1 "$p" 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
data="$WORK/stage6-data"
log="$WORK/stage6.log"

start() {
  "$server" --port "$port" --data-dir "$data" --snapshot-entries 0 --wal-segment-bytes 4096 >>"$log" 2>&1 &
  PID6=$!
  wait_port "$port"
}

say "Stage 6: a snapshot, the log behind it deleted, a restart from it"
start
writes() { # writes FROM TO
  printf '$ (SETs %d to %d over 10 keys) | redis-cli -p %s\n' "$1" "$2" "$port"
  for i in $(seq "$1" "$2"); do printf 'SET key%d value%d\n' $((i % 10)) "$i"; done | redis-cli -p "$port" >/dev/null
}
writes 1 300
run ls "$data/wal"
run redis-cli -p "$port" SNAPSHOT
writes 301 600
run redis-cli -p "$port" SNAPSHOT
run ls "$data/snap" "$data/wal"
printf '$ redis-cli -p %s INFO raft | grep -E "snapshot_(index|bytes)|log_first"\n' "$port"
redis-cli -p "$port" INFO raft | tr -d '\r' | grep -E '^raft_(snapshot_index|snapshot_bytes|log_first_index):' || true
say "Restart: the newest snapshot is loaded; log entries it covers are skipped, only those after it apply"
kill -TERM "$PID6"
wait "$PID6" || true
PID6=""
start
run redis-cli -p "$port" GET key7
grep -E "loaded snapshot|restored term" "$log" | tail -2 | sed 's/^[^ ]* //'
kill -TERM "$PID6"
wait "$PID6" || true
PID6=""
