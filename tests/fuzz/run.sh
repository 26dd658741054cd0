#!/usr/bin/env bash
# run.sh - fuzz the RESP request parser with libFuzzer for a bounded time (make fuzz).
#
# Configures a separate build tree, build-fuzz/, with clang and -DKV_FUZZ=ON,
# builds the fuzz_resp target, and runs it over a working copy of the
# committed seed corpus (tests/fuzz/corpus/resp is only read, never written:
# inputs libFuzzer finds go to build-fuzz/fuzz-corpus/resp and accumulate
# across runs). Exits non-zero if the fuzzer finds a crash, a leak, a
# timeout or an invariant failure; the reproducer is printed in hex and kept
# in build-fuzz/fuzz-artifacts/. To keep a reproducer as a regression test,
# copy it into tests/fuzz/corpus/resp/ under a descriptive name: ctest's
# common.fuzz_corpus_replay then runs it on every build.
#
# Environment:
#   FUZZ_SECONDS  how long to fuzz (default 60)
#   FUZZ_JOBS     parallel fuzzing processes (default 1; >1 uses -fork)
#   FUZZ_BUILD    build directory (default <repo>/build-fuzz)
#   CC            compiler (default clang; must be clang)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
SEEDS="$ROOT/tests/fuzz/corpus/resp"
DICT="$ROOT/tests/fuzz/resp.dict"
WORK_CORPUS="$BUILD/fuzz-corpus/resp"
ARTIFACTS="$BUILD/fuzz-artifacts"
LOG="$BUILD/fuzz-resp.log"

[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ && "$SECONDS_TO_RUN" -gt 0 ]] || { echo "run.sh: FUZZ_SECONDS must be a positive integer" >&2; exit 2; }
[[ "$JOBS" =~ ^[0-9]+$ && "$JOBS" -gt 0 ]] || { echo "run.sh: FUZZ_JOBS must be a positive integer" >&2; exit 2; }
command -v "${CC:-clang}" >/dev/null 2>&1 || { echo "run.sh: ${CC:-clang} not found (libFuzzer needs clang; make deps installs it)" >&2; exit 1; }

echo "run.sh: configuring $BUILD (clang, KV_FUZZ=ON)"
CC="${CC:-clang}" cmake -S "$ROOT" -B "$BUILD" -DKV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target fuzz_resp -j "$(nproc 2>/dev/null || echo 2)"
FUZZER="$BUILD/bin/fuzz_resp"
[[ -x "$FUZZER" ]] || { echo "run.sh: $FUZZER was not built" >&2; exit 1; }

mkdir -p "$WORK_CORPUS" "$ARTIFACTS"
cp "$SEEDS"/* "$WORK_CORPUS"/
# Artifacts from earlier runs are not this run's findings: keep them aside.
mkdir -p "$ARTIFACTS/previous"
find "$ARTIFACTS" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
    -exec mv -f {} "$ARTIFACTS/previous/" \;

args=(-max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -dict="$DICT" -artifact_prefix="$ARTIFACTS/")
if ((JOBS > 1)); then
    args+=(-fork="$JOBS")
fi

echo "run.sh: fuzzing for ${SECONDS_TO_RUN}s (corpus $WORK_CORPUS, log $LOG)"
set +e
(cd "$BUILD" && "$FUZZER" "${args[@]}" "$WORK_CORPUS") >"$LOG" 2>&1
rc=$?
set -e

grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::new_units_added)' "$LOG" || true
shopt -s nullglob
found=("$ARTIFACTS"/crash-* "$ARTIFACTS"/leak-* "$ARTIFACTS"/timeout-* "$ARTIFACTS"/oom-*)
if ((rc != 0 || ${#found[@]} > 0)); then
    echo "run.sh: FUZZER FOUND A PROBLEM (exit $rc); report from $LOG:" >&2
    grep -E 'ERROR|invariant failed|runtime error|SUMMARY|deadly signal' "$LOG" | head -20 >&2 || true
    for f in "${found[@]}"; do
        echo "run.sh: reproducer $f ($(wc -c <"$f") bytes), hex:" >&2
        od -An -v -tx1 "$f" | head -40 >&2
        echo "run.sh: replay with: $FUZZER $f" >&2
    done
    ((rc != 0)) || rc=1
    exit "$rc"
fi
echo "run.sh: no crash in ${SECONDS_TO_RUN}s"
