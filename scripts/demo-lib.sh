# demo-lib.sh - helpers shared by the demo scripts (sourced, not run).

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || true; }

# wait_port PORT: poll until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  for _ in $(seq 1 200); do
    if nc -z 127.0.0.1 "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  return 1
}
