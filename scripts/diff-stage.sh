#!/usr/bin/env bash
# diff-stage.sh N - stage N's lesson as a patch (make diff-stageN): first the
# stage's LESSON (the files it changes and why, in reading order), then the
# --stat summary, then the diff against stage N-1. LESSON itself is left out
# of the diff: it was just printed whole.
set -euo pipefail

stages=(stage1-single-node stage2-wal stage3-client stage4-replication stage5-raft stage6-snapshots)
n=${1:?usage: diff-stage.sh N (2..6)}
case "$n" in [2-6]) ;; *) echo "diff-stage.sh: N must be 2..6, not '$n'" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
prev=${stages[$((n - 2))]}
cur=${stages[$((n - 1))]}
if [ ! -d "$root/$cur" ]; then
  echo "stage $n ($cur) is not built yet"
  exit 0
fi

if [ -f "$root/$cur/LESSON" ]; then
  echo "==> $cur/LESSON"
  cat "$root/$cur/LESSON"
else
  echo "==> $cur has no LESSON (make check-copies will say so)"
fi
echo

# Copies without the manifests, so that the diff shows only code; diffed
# from inside the scratch directory so that paths read as stageN-dir/file.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for s in "$prev" "$cur"; do
  cp -R "$root/$s" "$scratch/$s"
  rm -f "$scratch/$s/LESSON"
done
cd "$scratch"
# git diff --no-index exits 1 when the trees differ, which is the point
# here, and 141 (SIGPIPE) when a pager or `head` stops reading early.
for stat in --stat ""; do
  rc=0
  git diff --no-index $stat "$prev" "$cur" || rc=$?
  case $rc in 0 | 1 | 141) ;; *) exit "$rc" ;; esac
done
