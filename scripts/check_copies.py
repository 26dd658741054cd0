#!/usr/bin/python3
# check_copies.py - the drift guard: every stage is a copy of the previous one,
# and may differ from it only where its lesson says so.
#
# For each stage N >= 2 that has begun (its directory holds a CMakeLists.txt
# or a LESSON; a directory with neither, such as a Raft core growing before
# its stage is copied, is work in progress), every file is compared, by
# relative path, with the same path in stage N-1. The stage's LESSON file
# (stageN-dir/LESSON) lists, one line each, "path: one-line reason" for every
# file the lesson changes, adds or removes; every other shared file must be
# byte-identical. So a fix made in one stage's copy and forgotten in the
# others fails here, instead of resting on memory. LESSON doubles as the
# learner's map of the diff (make diff-stageN prints it first).
#
# Run by `make check-copies` and by ctest (checks.copies). Exit status 0 when
# clean (one summary line), 1 with one line per problem, 2 on bad usage.
import argparse
import os
import sys

STAGES = ["stage1-single-node", "stage2-wal", "stage3-client",
          "stage4-replication", "stage5-raft", "stage6-snapshots"]
MANIFEST = "LESSON"
# Stage metadata, each stage's own by nature: the manifest, and the lab
# tasks (scripts/lab.py), which name only the tasks that stage introduces.
METADATA = (MANIFEST, "LAB")

FIX_SHARED = "fix the copy in every stage that carries it, or list it in LESSON with a reason"


def ignored(name):
    """Files no one authored (byte code, editor droppings, hidden files):
    they are not part of a stage, so they are neither compared nor listed."""
    return (name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", "~")))


def stage_files(root, stage):
    """Relative paths ('/'-separated) of every file under root/stage, except
    the manifest at its top and ignored names."""
    top = os.path.join(root, stage)
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not ignored(d)]
        rel_dir = os.path.relpath(dirpath, top)
        for name in filenames:
            if ignored(name):
                continue
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            rel = rel.replace(os.sep, "/")
            if rel not in METADATA:
                found.add(rel)
    return found


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def read_manifest(path, shown, problems):
    """LESSON's entries as {relative path: (line number, reason)}. Lines are
    "path: reason"; '#' comment lines and blank lines are skipped."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = "%s:%d" % (shown, lineno)
            name, sep, reason = line.partition(":")
            name, reason = name.strip(), reason.strip()
            if not sep or not reason:
                problems.append("%s: entry %r has no reason: write 'path: one-line reason'" % (where, line))
                continue
            norm = os.path.normpath(name).replace(os.sep, "/")
            if os.path.isabs(name) or norm.startswith("../") or norm == "..":
                problems.append("%s: %r is not a path inside the stage: use a path relative to the stage directory"
                                % (where, name))
                continue
            if norm == MANIFEST:
                problems.append("%s: LESSON itself is never compared: remove this entry" % where)
                continue
            if norm in entries:
                problems.append("%s: %s is already listed on line %d: keep one entry"
                                % (where, norm, entries[norm][0]))
                continue
            entries[norm] = (lineno, reason)
    return entries


def check_stage(root, prev, stage, problems):
    """Compares stage with prev, appending one line per problem. Returns
    (files identical, entries listed) for the summary."""
    manifest = os.path.join(root, stage, MANIFEST)
    shown_manifest = "%s/%s" % (stage, MANIFEST)
    if not os.path.isfile(manifest):
        problems.append("%s is missing: every stage after the first lists, one 'path: reason' a line, "
                        "the files its lesson changes, adds or removes against %s" % (shown_manifest, prev))
        listed = {}
    else:
        listed = read_manifest(manifest, shown_manifest, problems)

    old = stage_files(root, prev)
    new = stage_files(root, stage)
    identical = 0
    for rel in sorted(old | new):
        a, b = "%s/%s" % (prev, rel), "%s/%s" % (stage, rel)
        in_old, in_new = rel in old, rel in new
        if in_old and in_new:
            if same_bytes(os.path.join(root, a), os.path.join(root, b)):
                identical += 1
                if rel in listed:
                    problems.append("%s:%d: %s is byte-identical to %s: remove the stale entry from LESSON"
                                    % (shown_manifest, listed[rel][0], b, a))
            elif rel not in listed:
                problems.append("%s differs from %s and is not listed in %s: %s"
                                % (b, a, shown_manifest, FIX_SHARED))
        elif in_new and rel not in listed:
            problems.append("%s is new (there is no %s) and not listed in %s: list it with a reason, or remove it"
                            % (b, a, shown_manifest))
        elif in_old and rel not in listed:
            problems.append("%s is gone (%s exists) and not listed in %s: list the removal with a reason, "
                            "or copy the file forward" % (b, a, shown_manifest))

    for rel, (lineno, _) in sorted(listed.items()):
        if rel in old or rel in new:
            continue
        a, b = "%s/%s" % (prev, rel), "%s/%s" % (stage, rel)
        if os.path.isdir(os.path.join(root, b)) or os.path.isdir(os.path.join(root, a)):
            problems.append("%s:%d: %s is a directory: list its files one by one" % (shown_manifest, lineno, rel))
        else:
            problems.append("%s:%d: neither %s nor %s exists: fix the path or remove the entry"
                            % (shown_manifest, lineno, a, b))
    return identical, len(listed)


def check(root):
    """All problems found under root, and the summary line for a clean run."""
    problems = []
    checked = []
    identical = listed = 0
    for i in range(1, len(STAGES)):
        prev, stage = STAGES[i - 1], STAGES[i]
        top = os.path.join(root, stage)
        if not (os.path.isfile(os.path.join(top, "CMakeLists.txt")) or os.path.isfile(os.path.join(top, MANIFEST))):
            continue
        if not os.path.isdir(os.path.join(root, prev)):
            problems.append("%s exists but %s, the stage it is copied from, does not: restore %s"
                            % (stage, prev, prev))
            continue
        same, entries = check_stage(root, prev, stage, problems)
        identical += same
        listed += entries
        checked.append("%s against %s" % (stage, prev))
    summary = ("check-copies: ok: %d stage(s) checked (%s); %d shared files identical, %d entries in LESSON files"
               % (len(checked), "; ".join(checked) or "no stage after the first exists", identical, listed))
    return problems, summary


def main(argv=None):
    default_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description="Check that each stage differs from the previous one only in the "
                                             "files its LESSON lists.")
    ap.add_argument("--root", default=default_root, help="the workbook's top directory (default: this repository)")
    args = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(args.root, STAGES[0])):
        print("check-copies: %s has no %s directory: is --root the workbook's top directory?"
              % (args.root, STAGES[0]), file=sys.stderr)
        return 2
    problems, summary = check(args.root)
    for p in problems:
        print(p)
    if problems:
        print("check-copies: %d problem(s); see above" % len(problems))
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
