#!/usr/bin/env bash
# Stage 3 part of `make demo`: the same store driven by kvcli (one-shot and
# piped), and the server dropping an idle client. Called by scripts/demo.sh
# with BIN and WORK set.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
port=7003
log="$WORK/stage3.log"
kvcli="$BIN/kvcli"

say "Stage 3: the hardened server (--timeout 2) on port $port, driven by kvcli"
"$BIN/stage3-client" --port $port --data-dir "$WORK/stage3-data" --timeout 2 >"$log" 2>&1 &
pid=$!
wait_port $port
cli() { printf '$ kvcli -p %s' "$port"; printf ' %q' "$@"; printf '\n'; "$kvcli" -p $port "$@" || echo "(exit code $?)"; }
cli set greeting "hello world"
cli get greeting
cli put counter 1            # PUT is an alias of SET (from the original plan)
cli delete counter
cli get counter
cli nosuch command
say "Values with spaces and newlines, piped (quoted like redis-cli)"
printf '$ printf %s | kvcli -p %s\n' "'set note \"line 1\\\\nline 2\"\\nget note\\n'" "$port"
printf 'set note "line 1\\nline 2"\nget note\n' | "$kvcli" -p $port
say "An idle client is closed after --timeout"
printf '$ nc 127.0.0.1 7003   (and say nothing)\n'
start=$(date +%s)
nc 127.0.0.1 $port </dev/null >/dev/null 2>&1 & ncpid=$!
# nc exits when the server closes the idle connection.
wait $ncpid || true
echo "nc was disconnected after $(( $(date +%s) - start )) s"
grep -a "idle for" "$log" | tail -1 || true
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
echo "stage3-client exited with code $rc"
