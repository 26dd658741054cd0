#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail

packages=(
  build-essential cmake pkg-config                 # compiler and build
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler # the two libraries every stage links
  libcmocka-dev                                    # unit tests
  libsodium-dev                                    # peer authentication: HMAC-SHA256, random nonces (stage 4)
  valgrind                                         # every test again under memcheck (make test)
  libedit-dev                                      # kvcli line editing (stage 3)
  libhiredis-dev                                   # a C client no one here wrote (stage 3 tests, bench)
  redis-tools redis-server python3-redis           # real clients in tests; redis-server for benchmarks
  netcat-openbsd                                   # the demo talks to the server with nc
  ${EXTRA_PACKAGES:-}
)
# Optional packages, installed on first use by what needs them
# (EXTRA_PACKAGES="..." scripts/deps.sh), so that make test does not carry them:
#   clang libclang-rt-14-dev                       make fuzz
#   etcd-server golang-go golang-etcd-server-dev   make bench (tests/bench/stage5.sh: etcd 3.4
#                                                  to compare with, and tests/bench/etcdput,
#                                                  built offline against its Go client)

missing=()
for p in "${packages[@]}"; do
  [ -n "$p" ] || continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "Installing missing packages: ${missing[*]}"
# A fresh machine's package lists are empty or stale.
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
