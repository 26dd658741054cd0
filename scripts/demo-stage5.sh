#!/usr/bin/env bash
# Stage 5 part of `make demo`: a failover. Three Raft nodes on unused ports
# elect a leader; a write on it is answered once a majority holds it; a
# follower answers NOTLEADER; the leader is killed with kill -9 and another
# takes over by itself, with the acknowledged write; the old leader restarts
# and rejoins as a follower; all three hold the same DIGEST. Called by
# scripts/demo.sh with BIN and WORK set; stops everything it started,
# whatever happens.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
server="$BIN/stage5-raft"
PIDS5=("" "" "")
stop_all() {
  for p in "${PIDS5[@]}"; do if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null || true; fi; done
}
trap stop_all EXIT

# free_port: as in demo-stage4.sh, a port nothing listens on, not picked twice.
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

port=() peer=()
for i in 0 1 2; do
  port+=("$(free_port)")
  peer+=("$(free_port)")
done
spec="1=127.0.0.1:${port[0]}:${peer[0]},2=127.0.0.1:${port[1]}:${peer[1]},3=127.0.0.1:${port[2]}:${peer[2]}"
ETO=500 # election timeout (ms): short, so the demo's failover is quick

start_node() { # start_node SLOT: node SLOT+1, in the background
  local i=$1
  "$server" --id $((i + 1)) --cluster "$spec" --election-timeout-ms $ETO \
    --data-dir "$WORK/stage5-node$((i + 1))" >>"$WORK/stage5-node$((i + 1)).log" 2>&1 &
  PIDS5[i]=$!
}
role_of() { redis-cli -p "$1" ROLE 2>/dev/null | tr -d '\r' | head -1; }
# leader_among SLOT...: sets $leader to the slot of the one that leads.
leader_among() {
  leader=""
  for i in "$@"; do
    if [ "$(role_of "${port[$i]}")" = leader ]; then leader=$i; fi
  done
  [ -n "$leader" ]
}
applied_on() { redis-cli -p "$1" ROLE 2>/dev/null | tr -d '\r' | sed -n 5p; }
caught_up() { # caught_up SLOT: its applied index equals the leader's
  [ "$(applied_on "${port[$1]}")" = "$(applied_on "${port[$leader]}")" ]
}

say "Stage 5: three Raft nodes (client ports ${port[*]}), election timeout $ETO ms"
printf '$ stage5-raft --id N --cluster %s --election-timeout-ms %s --data-dir ...   (N = 1, 2, 3)\n' "$spec" $ETO
for i in 0 1 2; do start_node $i; done
for i in 0 1 2; do wait_port "${port[$i]}"; done
until_true 15 leader_among 0 1 2
follower=$(((leader + 1) % 3))
echo "node $((leader + 1)) won the election"
run redis-cli -p "${port[$leader]}" ROLE

say "A write on the leader is answered once a majority holds it; a follower names the leader"
run redis-cli -p "${port[$leader]}" SET greeting hello
run redis-cli -p "${port[$follower]}" SET x 1
printf '$ redis-cli -p %s INFO | grep -E "raft_(role|term|commit_index|peer)"\n' "${port[$leader]}"
redis-cli -p "${port[$leader]}" INFO | tr -d '\r' | grep -E '^raft_(role|term|commit_index|peer)' || true

say "kill -9 the leader (node $((leader + 1))): the others elect a new one by themselves"
old=$leader
printf '$ kill -9 %s\n' "${PIDS5[$old]}"
t0=$(date +%s%N)
kill -9 "${PIDS5[$old]}"
wait "${PIDS5[$old]}" 2>/dev/null || true
PIDS5[old]=""
others=()
for i in 0 1 2; do if [ "$i" -ne "$old" ]; then others+=("$i"); fi; done
until_true 15 leader_among "${others[@]}"
t1=$(date +%s%N)
echo "node $((leader + 1)) leads after $(((t1 - t0) / 1000000)) ms"
run redis-cli -p "${port[$leader]}" ROLE
run redis-cli -p "${port[$leader]}" GET greeting
run redis-cli -p "${port[$leader]}" SET after failover

say "Restart node $((old + 1)) with its data: it rejoins as a follower and catches up"
start_node "$old"
wait_port "${port[$old]}"
until_true 15 caught_up "$old"
run redis-cli -p "${port[$old]}" ROLE
for i in 0 1 2; do run redis-cli -p "${port[$i]}" DIGEST; done
printf '$ grep -E "restored|leader in term|follower in term" node%s.log\n' $((old + 1))
grep -aE 'restored|leader in term|follower in term' "$WORK/stage5-node$((old + 1)).log" | sed 's/^[^ ]* //' || true

say "Stopping the three nodes"
for i in 0 1 2; do
  pid=${PIDS5[$i]}
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  PIDS5[i]=""
  echo "node $((i + 1)) exited with code $rc"
  [ "$rc" -eq 0 ] || exit 1
done
