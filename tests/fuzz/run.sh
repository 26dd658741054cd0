#!/usr/bin/env bash
# run.sh - fuzz the RESP request parser and the peer frame decoder with
# libFuzzer, each for a bounded time (make fuzz).
#
# Configures a separate build tree, build-fuzz/, with clang and -DKV_FUZZ=ON,
# builds the fuzz targets, and runs each over a working copy of its committed
# seed corpus (tests/fuzz/corpus/<name> is only read, never written: inputs
# libFuzzer finds go to build-fuzz/fuzz-corpus/<name> and accumulate across
# runs). Exits non-zero if a fuzzer finds a crash, a leak, a timeout or an
# invariant failure; the reproducer is printed in hex and kept in
# build-fuzz/fuzz-artifacts/<name>/. To keep a reproducer as a regression
# test, copy it into tests/fuzz/corpus/<name>/ under a descriptive name:
# ctest's common.fuzz_corpus_replay (resp) and
# common.fuzz_peer_frame_corpus_replay (peer_frame) then run it on every build.
#
# Environment:
#   FUZZ_SECONDS  how long to fuzz each target (default 60)
#   FUZZ_TARGETS  which targets (default "resp peer_frame")
#   FUZZ_JOBS     parallel fuzzing processes (default 1; >1 uses -fork)
#   FUZZ_BUILD    build directory (default <repo>/build-fuzz)
#   CC            compiler (default clang; must be clang)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-resp peer_frame}"
JOBS="${FUZZ_JOBS:-1}"

[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ && "$SECONDS_TO_RUN" -gt 0 ]] || { echo "run.sh: FUZZ_SECONDS must be a positive integer" >&2; exit 2; }
[[ "$JOBS" =~ ^[0-9]+$ && "$JOBS" -gt 0 ]] || { echo "run.sh: FUZZ_JOBS must be a positive integer" >&2; exit 2; }
for t in $TARGETS; do
    [[ -d "$ROOT/tests/fuzz/corpus/$t" ]] || { echo "run.sh: unknown fuzz target '$t' (no tests/fuzz/corpus/$t)" >&2; exit 2; }
done
command -v "${CC:-clang}" >/dev/null 2>&1 || { echo "run.sh: ${CC:-clang} not found (libFuzzer needs clang; make deps installs it)" >&2; exit 1; }

echo "run.sh: configuring $BUILD (clang, KV_FUZZ=ON)"
CC="${CC:-clang}" cmake -S "$ROOT" -B "$BUILD" -DKV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
for t in $TARGETS; do
    cmake --build "$BUILD" --target "fuzz_$t" -j "$(nproc 2>/dev/null || echo 2)"
done

# fuzz_one NAME: runs build-fuzz/bin/fuzz_NAME; returns non-zero on a finding.
fuzz_one() {
    local name="$1"
    local fuzzer="$BUILD/bin/fuzz_$name"
    local seeds="$ROOT/tests/fuzz/corpus/$name"
    local dict="$ROOT/tests/fuzz/$name.dict"
    local work="$BUILD/fuzz-corpus/$name"
    local artifacts="$BUILD/fuzz-artifacts/$name"
    local log="$BUILD/fuzz-$name.log"
    [[ -x "$fuzzer" ]] || { echo "run.sh: $fuzzer was not built" >&2; return 1; }

    mkdir -p "$work" "$artifacts"
    cp "$seeds"/* "$work"/
    # Artifacts from earlier runs are not this run's findings: keep them aside.
    mkdir -p "$artifacts/previous"
    find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
        -exec mv -f {} "$artifacts/previous/" \;

    local args=(-max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    [[ -f "$dict" ]] && args+=(-dict="$dict")
    if ((JOBS > 1)); then
        args+=(-fork="$JOBS")
    fi

    echo "run.sh: fuzzing $name for ${SECONDS_TO_RUN}s (corpus $work, log $log)"
    local rc
    set +e
    (cd "$BUILD" && "$fuzzer" "${args[@]}" "$work") >"$log" 2>&1
    rc=$?
    set -e

    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::new_units_added)' "$log" || true
    shopt -s nullglob
    local found=("$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*)
    if ((rc != 0 || ${#found[@]} > 0)); then
        echo "run.sh: FUZZER $name FOUND A PROBLEM (exit $rc); report from $log:" >&2
        grep -E 'ERROR|invariant failed|runtime error|SUMMARY|deadly signal' "$log" | head -20 >&2 || true
        local f
        for f in "${found[@]}"; do
            echo "run.sh: reproducer $f ($(wc -c <"$f") bytes), hex:" >&2
            od -An -v -tx1 "$f" | head -40 >&2
            echo "run.sh: replay with: $fuzzer $f" >&2
        done
        ((rc != 0)) || rc=1
        return "$rc"
    fi
    echo "run.sh: no crash in $name in ${SECONDS_TO_RUN}s"
}

status=0
for t in $TARGETS; do
    fuzz_one "$t" || status=$?
done
exit "$status"
