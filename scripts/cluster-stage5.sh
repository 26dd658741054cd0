#!/usr/bin/env bash
# make cluster-stage5: a three-node stage 5 Raft cluster on loopback, each
# node with its own data directory, until Ctrl-C stops them all.
# Argument: the bin directory (default build/bin). Environment:
#   CLUSTER_DIR      where data and logs go (kept); default a temp dir removed at exit
#   CLUSTER_KEEP=1   keep the temp dir
#   NODE1_PORT NODE1_PEER_PORT   node 1's client and peer ports (7005, 17005)
#   NODE2_PORT NODE2_PEER_PORT   node 2 (7015, 17015)
#   NODE3_PORT NODE3_PEER_PORT   node 3 (7025, 17025)
#   CLUSTER_ARGS     extra flags for every node (e.g. "--election-timeout-ms 3000")
set -euo pipefail
BIN=${1:-build/bin}
CLUSTER_NAME=cluster-stage5
# shellcheck source=scripts/cluster-lib.sh
. "$(dirname "$0")/cluster-lib.sh"

server="$BIN/stage5-raft"
kvcli="$BIN/kvcli-stage5"
[ -x "$server" ] || cluster_die "$server not found: build first (make build)"
ports=("${NODE1_PORT:-7005}" "${NODE2_PORT:-7015}" "${NODE3_PORT:-7025}")
peer_ports=("${NODE1_PEER_PORT:-17005}" "${NODE2_PEER_PORT:-17015}" "${NODE3_PEER_PORT:-17025}")
read -r -a extra <<<"${CLUSTER_ARGS:-}"

wanted=()
spec=""
for i in 0 1 2; do
  wanted+=("${ports[$i]}" "${peer_ports[$i]}")
  spec="$spec${spec:+,}$((i + 1))=127.0.0.1:${ports[$i]}:${peer_ports[$i]}"
done
cluster_check_ports "${wanted[@]}"
cluster_init

for i in 0 1 2; do
  n=$((i + 1))
  cluster_start_node "node$n" "${ports[$i]}" "$server" --id "$n" --cluster "$spec" \
    --data-dir "$CLUSTER_DIR/node$n/data" ${extra[@]+"${extra[@]}"}
done
cluster_wait_ready 10

echo "Stage 5 Raft cluster on loopback (data and logs in $CLUSTER_DIR):"
echo "  --cluster $spec"
for i in 0 1 2; do
  n=$((i + 1))
  printf '  node%s  client port %s, peer port %s, pid %s\n' "$n" "${ports[$i]}" "${peer_ports[$i]}" \
    "${CLUSTER_PIDS[$i]}"
done
echo
echo "Reach them (an election takes a second or two after start):"
echo "  redis-cli -p ${ports[0]} ROLE                      # leader or follower, term, leader id, commit, applied"
echo "  redis-cli -p ${ports[0]} SET greeting hello        # on a follower: -NOTLEADER leader=HOST:PORT"
echo "  redis-cli -p ${ports[0]} INFO | grep raft_         # the Raft section"
echo "  redis-cli -p ${ports[1]} DIGEST                    # the same on every node once caught up"
echo "  $kvcli -p ${ports[0]} -c 127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}   # interactive: follows the leader, writes exactly-once"
echo "  kill -9 <leader pid>   # another node takes over within a few seconds"
echo "  tail -f $CLUSTER_DIR/node1.log"
echo "Stop them: Ctrl-C here (or kill $$)."
cluster_run
