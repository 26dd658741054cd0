#!/usr/bin/env bash
# make cluster-stage4: a stage 4 leader and two followers on loopback, each
# with its own data directory, until Ctrl-C stops them all.
# Argument: the bin directory (default build/bin). Environment:
#   CLUSTER_DIR      where data and logs go (kept); default a temp dir removed at exit
#   CLUSTER_KEEP=1   keep the temp dir
#   CLUSTER_FOLLOWERS  how many followers, 0..2 (default 2)
#   NODE1_PORT NODE1_PEER_PORT   the leader's client and peer ports (7004, 17004)
#   NODE2_PORT NODE2_PEER_PORT   follower 1 (7014, 17014)
#   NODE3_PORT NODE3_PEER_PORT   follower 2 (7024, 17024)
#   CLUSTER_ARGS     extra flags for every node (e.g. "--fsync no")
set -euo pipefail
BIN=${1:-build/bin}
CLUSTER_NAME=cluster-stage4
# shellcheck source=scripts/cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

server="$BIN/stage4-replication"
kvcli="$BIN/kvcli-stage4"
[ -x "$server" ] || cluster_die "$server not found: build first (make build)"
followers=${CLUSTER_FOLLOWERS:-2}
case "$followers" in
  0 | 1 | 2) ;;
  *) cluster_die "CLUSTER_FOLLOWERS must be 0, 1 or 2" ;;
esac
nodes=$((followers + 1))
ports=("${NODE1_PORT:-7004}" "${NODE2_PORT:-7014}" "${NODE3_PORT:-7024}")
peer_ports=("${NODE1_PEER_PORT:-17004}" "${NODE2_PEER_PORT:-17014}" "${NODE3_PEER_PORT:-17024}")
read -r -a extra <<<"${CLUSTER_ARGS:-}"

wanted=()
for ((i = 0; i < nodes; i++)); do wanted+=("${ports[$i]}" "${peer_ports[$i]}"); done
cluster_check_ports "${wanted[@]}"
cluster_init

for ((i = 0; i < nodes; i++)); do
  n=$((i + 1))
  args=(--port "${ports[$i]}" --peer-port "${peer_ports[$i]}" --data-dir "$CLUSTER_DIR/node$n/data")
  if [ "$i" -gt 0 ]; then
    args+=(--replicaof "127.0.0.1:${peer_ports[0]}")
  fi
  cluster_start_node "node$n" "${ports[$i]}" "$server" "${args[@]}" ${extra[@]+"${extra[@]}"}
done
cluster_wait_ready 10

echo "Stage 4 cluster on loopback (data and logs in $CLUSTER_DIR):"
for ((i = 0; i < nodes; i++)); do
  n=$((i + 1))
  role=leader
  [ "$i" -eq 0 ] || role="follower of 127.0.0.1:${peer_ports[0]}"
  printf '  node%s  %-34s client port %s, peer port %s, pid %s\n' "$n" "$role" "${ports[$i]}" "${peer_ports[$i]}" \
    "${CLUSTER_PIDS[$i]}"
done
echo
echo "Reach them:"
echo "  redis-cli -p ${ports[0]} SET greeting hello        # write on the leader"
if [ "$nodes" -gt 1 ]; then
  echo "  redis-cli -p ${ports[1]} GET greeting              # read it from a follower"
  echo "  redis-cli -p ${ports[1]} SET x 1                   # a follower refuses writes (READONLY)"
  echo "  $kvcli -p ${ports[1]} set x 1       # kvcli follows the redirect to the leader"
fi
echo "  $kvcli -p ${ports[0]}               # interactive"
echo "  redis-cli -p ${ports[0]} INFO replication; redis-cli -p ${ports[0]} DIGEST"
echo "  tail -f $CLUSTER_DIR/node1.log"
echo "Stop them: Ctrl-C here (or kill $$)."
cluster_run
