# shellcheck shell=bash
# cluster-lib.sh - run a few server nodes on loopback by hand (sourced by
# scripts/cluster-stageN.sh, not run): refuse ports that are taken, start
# each node with its own log, wait until it serves, and on Ctrl-C (or
# SIGTERM) stop every node, wait for each, and exit 0.
#
# A script sets CLUSTER_NAME, calls cluster_init, cluster_check_ports,
# cluster_start_node for each node, cluster_wait_ready, prints how to reach
# the nodes, then calls cluster_run (which returns only by exiting).

# Nodes started, in order: name, pid, client port.
CLUSTER_NAMES=()
CLUSTER_PIDS=()
CLUSTER_PORTS=()
CLUSTER_STOPPING=0
CLUSTER_TMP=0

cluster_say() { printf '%s\n' "$*"; }
cluster_die() { printf '%s: %s\n' "${CLUSTER_NAME:-cluster}" "$*" >&2; exit 1; }

# cluster_init: CLUSTER_DIR is the given directory (kept, so a restart with
# the same one finds its data), or a fresh temp dir removed at the end unless
# CLUSTER_KEEP=1.
cluster_init() {
  if [ -n "${CLUSTER_DIR:-}" ]; then
    mkdir -p "$CLUSTER_DIR" || cluster_die "cannot create CLUSTER_DIR=$CLUSTER_DIR"
  else
    CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kv-${CLUSTER_NAME}.XXXXXX") || cluster_die "cannot create a temp dir"
    CLUSTER_TMP=1
  fi
  CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
  # Whatever ends the script (an error under set -e included) stops the nodes.
  trap cluster_on_exit EXIT
  trap cluster_on_signal INT TERM
}

# cluster_port_taken PORT: something accepts connections on 127.0.0.1:PORT.
cluster_port_taken() { nc -z 127.0.0.1 "$1" 2>/dev/null; }

# cluster_check_ports PORT...: every port a number, none repeated, none taken.
cluster_check_ports() {
  local p seen=" "
  for p in "$@"; do
    case "$p" in
      '' | *[!0-9]*) cluster_die "port '$p' is not a number" ;;
    esac
    if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then cluster_die "port $p is out of range"; fi
    case "$seen" in
      *" $p "*) cluster_die "port $p is given twice" ;;
    esac
    seen="$seen$p "
    if cluster_port_taken "$p"; then
      cluster_die "port $p is taken (something listens on 127.0.0.1:$p); stop it, or choose other ports (see the variables at the top of $0)"
    fi
  done
}

# cluster_start_node NAME PORT COMMAND...: start a node in the background,
# its output in $CLUSTER_DIR/NAME.log.
cluster_start_node() {
  local name=$1 port=$2
  shift 2
  printf '$ %s\n' "$*" >"$CLUSTER_DIR/$name.log"
  # A session of its own, so Ctrl-C reaches only this script, which then
  # sends each node one SIGTERM. (Our servers stop listening for signals
  # once a shutdown starts, so a node hit by the terminal's SIGINT and then
  # by our SIGTERM would die of the second.) setsid does not fork here: a
  # background job of a script is not a process group leader, so $! is the
  # node itself.
  setsid "$@" >>"$CLUSTER_DIR/$name.log" 2>&1 &
  CLUSTER_NAMES+=("$name")
  CLUSTER_PIDS+=("$!")
  CLUSTER_PORTS+=("$port")
}

# cluster_wait_ready [SECONDS]: every node accepts clients on its port; if
# one exits first or the time runs out, show its log and stop everything.
cluster_wait_ready() {
  local limit=${1:-10} i ready deadline
  deadline=$(($(date +%s) + limit))
  for i in "${!CLUSTER_PIDS[@]}"; do
    ready=0
    while [ "$(date +%s)" -le "$deadline" ]; do
      if ! kill -0 "${CLUSTER_PIDS[$i]}" 2>/dev/null; then
        break
      fi
      if cluster_port_taken "${CLUSTER_PORTS[$i]}"; then
        ready=1
        break
      fi
      sleep 0.05
    done
    if [ "$ready" -ne 1 ]; then
      printf '%s: %s did not start serving on port %s; the end of %s:\n' "$CLUSTER_NAME" "${CLUSTER_NAMES[$i]}" \
        "${CLUSTER_PORTS[$i]}" "$CLUSTER_DIR/${CLUSTER_NAMES[$i]}.log" >&2
      tail -n 15 "$CLUSTER_DIR/${CLUSTER_NAMES[$i]}.log" >&2
      exit 1
    fi
  done
}

# cluster_stop: SIGTERM to every node still running, then wait for each
# (SIGKILL after 10 s), reporting how each ended.
cluster_stop() {
  local i pid rc t
  for pid in "${CLUSTER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for i in "${!CLUSTER_PIDS[@]}"; do
    pid=${CLUSTER_PIDS[$i]}
    for t in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      [ "$t" -lt 200 ] || { echo "${CLUSTER_NAMES[$i]} did not stop within 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
      sleep 0.05
    done
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    echo "${CLUSTER_NAMES[$i]} (pid $pid) exited with code $rc"
  done
  CLUSTER_PIDS=()
}

cluster_on_signal() {
  [ "$CLUSTER_STOPPING" -eq 0 ] || return 0
  CLUSTER_STOPPING=1
  echo
  echo "Stopping the cluster..."
  cluster_stop
  exit 0
}

cluster_on_exit() {
  local rc=$?
  trap - INT TERM
  if [ "${#CLUSTER_PIDS[@]}" -gt 0 ]; then
    cluster_stop
  fi
  if [ "$CLUSTER_TMP" -eq 1 ] && [ "${CLUSTER_KEEP:-0}" != 1 ]; then
    rm -rf "$CLUSTER_DIR"
  elif [ -n "${CLUSTER_DIR:-}" ]; then
    echo "Data and logs kept in $CLUSTER_DIR"
  fi
  exit "$rc"
}

# cluster_run: wait until Ctrl-C (the trap stops everything and exits 0). A
# node that exits on its own is reported with the end of its log; the others
# keep running; when none is left, exit 1.
cluster_run() {
  local i pid alive
  while :; do
    alive=0
    for i in "${!CLUSTER_PIDS[@]}"; do
      pid=${CLUSTER_PIDS[$i]}
      [ -n "$pid" ] || continue
      if kill -0 "$pid" 2>/dev/null; then
        alive=1
        continue
      fi
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      printf '%s (pid %s) exited by itself with code %s; the end of its log:\n' "${CLUSTER_NAMES[$i]}" "$pid" "$rc" >&2
      tail -n 15 "$CLUSTER_DIR/${CLUSTER_NAMES[$i]}.log" >&2
      unset "CLUSTER_PIDS[$i]"
    done
    if [ "$alive" -eq 0 ]; then
      echo "every node has exited" >&2
      exit 1
    fi
    # Returns when a node exits, or at once when a trapped signal arrives.
    wait -n || true
  done
}
