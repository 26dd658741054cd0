#!/usr/bin/env bash
# Stage 4 part of `make demo`: a leader and a follower on unused ports. A
# write on the leader appears on the follower, the follower refuses writes
# (redis-cli shows READONLY, kvcli follows it), both hold the same DIGEST,
# then the follower is promoted and takes writes. Called by scripts/demo.sh
# with BIN and WORK set; stops everything it started, whatever happens.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
server="$BIN/stage4-replication"
kvcli="$BIN/kvcli-stage4"
PIDS4=()
stop_all() {
  for p in "${PIDS4[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
}
trap stop_all EXIT

# free_port: a port in 20000-31999 nothing listens on and this script has not
# picked yet. Below Linux's ephemeral range (32768-60999), where outgoing
# connections take their local ports: on a busy machine a port there that
# nothing listens on can be some connection's local port, and the server's
# bind then fails. (Another program could still take it: the server then
# fails to start and the demo says so.)
TAKEN=" "
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    case "$TAKEN" in *" $p "*) continue ;; esac
    if ! nc -z 127.0.0.1 "$p" 2>/dev/null; then
      TAKEN="$TAKEN$p "
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# until_true SECONDS CMD...: poll CMD every 50 ms until it succeeds.
until_true() {
  local deadline=$(($(date +%s) + $1))
  shift
  while ! "$@"; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "timed out waiting for: $*" >&2
      return 1
    fi
    sleep 0.05
  done
}
streaming() { redis-cli -p "$fport" ROLE 2>/dev/null | tr -d '\r' | grep -qx connected; }
same_digest() { [ "$(redis-cli -p "$lport" DIGEST)" = "$(redis-cli -p "$fport" DIGEST)" ]; }

lport=$(free_port)
lpeer=$(free_port)
fport=$(free_port)
fpeer=$(free_port)
llog="$WORK/stage4-leader.log"
flog="$WORK/stage4-follower.log"

say "Stage 4: a leader (port $lport, peer port $lpeer) and its follower (port $fport)"
printf '$ stage4-replication --port %s --peer-port %s --data-dir ...\n' "$lport" "$lpeer"
"$server" --port "$lport" --peer-port "$lpeer" --data-dir "$WORK/stage4-leader" >"$llog" 2>&1 &
lpid=$!
PIDS4+=("$lpid")
printf '$ stage4-replication --port %s --peer-port %s --replicaof 127.0.0.1:%s --data-dir ...\n' "$fport" "$fpeer" "$lpeer"
"$server" --port "$fport" --peer-port "$fpeer" --replicaof "127.0.0.1:$lpeer" --data-dir "$WORK/stage4-follower" \
  >"$flog" 2>&1 &
fpid=$!
PIDS4+=("$fpid")
wait_port "$lport"
wait_port "$fport"
until_true 10 streaming

say "A write on the leader; WAIT 1 returns once the follower has it on its disk"
printf '$ printf "SET greeting hello\\nWAIT 1 1000\\n" | redis-cli -p %s\n' "$lport"
printf 'SET greeting hello\nWAIT 1 1000\n' | redis-cli -p "$lport"
run redis-cli -p "$fport" GET greeting
say "The follower refuses writes, naming the leader; kvcli follows the redirect"
run redis-cli -p "$fport" SET counter 1
printf '$ kvcli-stage4 -p %s set counter 1\n' "$fport"
"$kvcli" -p "$fport" set counter 1 2>&1 || echo "(exit code $?)"
run redis-cli -p "$fport" ROLE
say "Both nodes hold the same keyspace (DIGEST: order-independent checksum, key count)"
until_true 10 same_digest
run redis-cli -p "$lport" DIGEST
run redis-cli -p "$fport" DIGEST
say "Promote the follower: REPLICAOF NO ONE starts a new history; it takes writes"
run redis-cli -p "$fport" REPLICAOF NO ONE
run redis-cli -p "$fport" SET after promotion
run redis-cli -p "$fport" ROLE
printf '$ grep -E "history|streaming from|promoted to leader at" follower.log\n'
grep -aE 'history|streaming from|promoted to leader at' "$flog" | sed 's/^[^ ]* //' || true

say "Stopping both nodes"
for pid in "$fpid" "$lpid"; do
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  if [ "$pid" = "$fpid" ]; then name="promoted follower"; else name="old leader"; fi
  echo "$name exited with code $rc"
  [ "$rc" -eq 0 ] || exit 1
done
PIDS4=()
