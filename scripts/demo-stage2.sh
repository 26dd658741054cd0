#!/usr/bin/env bash
# Stage 2 part of `make demo`: write keys, kill -9 the server, restart it,
# and show every acknowledged write came back from the write-ahead log.
# Called by scripts/demo.sh with BIN and WORK set.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
port=7002
data="$WORK/stage2-data"
log="$WORK/stage2.log"

say "Stage 2: the same server with a write-ahead log (--fsync always) on port $port"
"$BIN/stage2-wal" --port $port --data-dir "$data" >"$log" 2>&1 &
pid=$!
wait_port $port
run redis-cli -p $port SET account:1 100
run redis-cli -p $port SET account:2 250
run redis-cli -p $port DEL account:2
printf '$ redis-benchmark -p %s -t set -n 2000 -r 500 -q    (2000 more acknowledged writes)\n' $port
redis-benchmark -p $port -t set -n 2000 -r 500 -q 2>/dev/null | tr '\r' '\n' | grep -a "per second" || true
run redis-cli -p $port DBSIZE

say "Crash: kill -9, no chance to flush anything"
printf '$ kill -9 %s\n' "$pid"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
printf '$ ls %s/wal\n' "$data"
ls -l "$data/wal"
echo "(the segment is preallocated: its records, then zeros up to 4 MiB; recovery reads the zeros as the end of the log)"

say "Restart on the same data directory: recovery replays the log"
"$BIN/stage2-wal" --port $port --data-dir "$data" >>"$log" 2>&1 &
pid=$!
wait_port $port
grep -a "replayed" "$log" | tail -1
run redis-cli -p $port GET account:1
run redis-cli -p $port GET account:2
run redis-cli -p $port DBSIZE

say "Compaction rewrites the log as just the live keys"
run redis-cli -p $port COMPACT
for _ in $(seq 1 100); do
  redis-cli -p $port INFO | tr -d '\r' | grep -q '^compactions_done:1' && break
  sleep 0.05
done
redis-cli -p $port INFO | tr -d '\r' | grep -E '^(fsync|wal_bytes|wal_segments|compactions_done|records_replayed_at_start):' || true
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
echo "stage2-wal exited with code $rc"
echo "--- server log ---"
cat "$log"
