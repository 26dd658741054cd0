#!/usr/bin/python3
"""lab.py - the labs: generate a stage with its tasks stubbed, grade it, and
check that the grading is honest.

Lesson code marks what a learner writes:
    /* LAB task-name: one-line hint */
    ...solution...
    /* END LAB */
Each stage lists its tasks in stageN-*/LAB (format in stage1-single-node/LAB):
the tests that grade each one and the stub that replaces its regions.

  lab.py lint                          markers and LAB files of every stage
  lab.py generate N [--force]          labs/<stage>/ for a learner (all tasks stubbed)
  lab.py test N [--task T]             build labs/<stage>/ in build-lab/<stage>/, grade it
  lab.py check N --build-root DIR      the honest-grading check (ctest label labs)
N is a stage number or directory name. --root points at another checkout
(the checker's own test uses a doctored copy)."""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

STAGES = ["stage1-single-node", "stage2-wal", "stage3-client", "stage4-replication", "stage5-raft",
          "stage6-snapshots"]
START = re.compile(r"^(\s*)/\* LAB ([a-z0-9][a-z0-9-]*): (\S.*?) \*/\s*$")
END = re.compile(r"^\s*/\* END LAB \*/\s*$")
LOOSE = re.compile(r"/\*\s*(END\s+)?LAB\b")
SOURCE_EXT = (".c", ".h")


class LabError(Exception):
    pass


# ---------------------------------------------------------------------------
# LAB files


class Task:
    def __init__(self, name, title, stage, line):
        self.name, self.title, self.stage, self.line = name, title, stage, line
        self.tests = []      # whole-name regexes
        self.includes = []
        self.stubs = [[]]    # one list of lines per region ("region" starts the next)
        self.explicit_regions = False

    def stub_for(self, i, nregions):
        if not self.explicit_regions:
            return self.stubs[0]
        if len(self.stubs) != nregions or not all(self.stubs):
            raise LabError("%s: task %s: %d stub regions in LAB but %d marked regions in the code"
                           % (self.line, self.name, len(self.stubs), nregions))
        return self.stubs[i]


def read_lab(root, stage):
    path = os.path.join(root, stage, "LAB")
    if not os.path.exists(path):
        return []
    tasks, task = [], None
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = "%s/LAB:%d" % (stage, n)
            m = re.match(r"^task ([a-z0-9][a-z0-9-]*):\s*(.+)$", line)
            if m:
                task = Task(m.group(1), m.group(2).strip(), stage, where)
                tasks.append(task)
                continue
            if task is None:
                raise LabError("%s: expected 'task NAME: title' first" % where)
            word, _, rest = line.strip().partition(" ")
            if word == "tests":
                task.tests += rest.split()
            elif word == "include":
                task.includes.append(rest.strip())
            elif word == "region":
                if task.explicit_regions:
                    task.stubs.append([])
                elif task.stubs[0]:
                    raise LabError("%s: stub lines before the task's first 'region'" % where)
                task.explicit_regions = True
            elif word == "stub":
                # Keep the stub's own indentation after "stub" and its separating spaces.
                task.stubs[-1].append(re.sub(r"^\s*stub ?\s?", "", raw.rstrip("\n"), count=1))
            else:
                raise LabError("%s: unknown line %r" % (where, line.strip()))
    for t in tasks:
        if not t.tests:
            raise LabError("%s: task %s has no grading test (a 'tests' line)" % (t.line, t.name))
        if not any(t.stubs):
            raise LabError("%s: task %s has no stub" % (t.line, t.name))
    return tasks


def all_tasks(root):
    tasks = {}
    for stage in STAGES:
        for t in read_lab(root, stage):
            if t.name in tasks:
                raise LabError("task %s is listed by both %s and %s" % (t.name, tasks[t.name].stage, stage))
            tasks[t.name] = t
    return tasks


# ---------------------------------------------------------------------------
# markers


class Region:
    def __init__(self, path, task, hint, start, end, indent):
        self.path, self.task, self.hint = path, task, hint
        self.start, self.end, self.indent = start, end, indent  # line indexes of the two markers


def only_comments(lines):
    text = "\n".join(lines)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return not text.strip()


def scan_file(path, rel):
    with open(path) as f:
        lines = f.read().split("\n")
    regions, open_at = [], None
    for i, line in enumerate(lines):
        m, e = START.match(line), END.match(line)
        where = "%s:%d" % (rel, i + 1)
        if m:
            if open_at is not None:
                raise LabError("%s: LAB marker inside the region opened at line %d" % (where, open_at[0] + 1))
            open_at = (i, m.group(2), m.group(3), m.group(1))
        elif e:
            if open_at is None:
                raise LabError("%s: END LAB without a LAB marker" % where)
            start, task, hint, indent = open_at
            if only_comments(lines[start + 1:i]):
                raise LabError("%s: the region of task %s removes nothing (no code between its markers)"
                               % (rel + ":%d" % (start + 1), task))
            regions.append(Region(rel, task, hint, start, i, indent))
            open_at = None
        elif LOOSE.search(line):
            raise LabError("%s: malformed LAB marker (want '/* LAB name: hint */' or '/* END LAB */' "
                           "alone on a line): %s" % (where, line.strip()))
    if open_at is not None:
        raise LabError("%s:%d: LAB marker never closed by /* END LAB */" % (rel, open_at[0] + 1))
    return lines, regions


def source_files(root, top):
    out = []
    base = os.path.join(root, top)
    for d, dirs, files in os.walk(base):
        dirs.sort()
        for fn in sorted(files):
            if fn.endswith(SOURCE_EXT):
                full = os.path.join(d, fn)
                out.append((full, os.path.relpath(full, root)))
    return out


def existing_stages(root):
    return [s for s in STAGES if os.path.exists(os.path.join(root, s, "CMakeLists.txt"))]


def lint(root):
    """Every marker well formed and names a listed task; every listed task
    has a region in its stage (or common/). Returns (tasks, regions by file)."""
    tasks = all_tasks(root)
    regions = {}
    for top in ["common"] + existing_stages(root):
        for full, rel in source_files(root, top):
            _, rs = scan_file(full, rel)
            for r in rs:
                if r.task not in tasks:
                    raise LabError("%s:%d: marker names task %s, which no stage's LAB lists"
                                   % (rel, r.start + 1, r.task))
            if rs:
                regions[rel] = rs
    for t in tasks.values():
        own = [r for rel, rs in regions.items() for r in rs
               if r.task == t.name and (rel.startswith(t.stage + "/") or rel.startswith("common/"))]
        if not own:
            raise LabError("%s: task %s has no marked region in %s/ or common/" % (t.line, t.name, t.stage))
        t.stub_for(0, len(own))  # region/stub count agreement
    return tasks, regions


# ---------------------------------------------------------------------------
# generating a lab tree


def stage_dir(arg):
    if arg in STAGES:
        return arg
    if arg.isdigit() and 1 <= int(arg) <= len(STAGES):
        return STAGES[int(arg) - 1]
    raise LabError("no stage %r (use 1..%d or a directory name)" % (arg, len(STAGES)))


def stubbed_text(lines, regions, tasks, stub_tasks, counters, total):
    """The file with the regions of stub_tasks replaced by their stubs."""
    out, i = [], 0
    includes = []
    for r in regions:
        if r.task not in stub_tasks:
            continue
        t = tasks[r.task]
        stub = t.stub_for(counters[r.task], total[r.task])
        counters[r.task] += 1
        out += lines[i:r.start + 1]
        out.append("%s/* The stub below stands in for your code: it fails on purpose, naming the task. */"
                   % r.indent)
        out += [r.indent + s for s in stub]
        out.append(lines[r.end])
        i = r.end + 1
        includes += [inc for inc in t.includes if inc not in includes]
    out += lines[i:]
    for inc in includes:
        line = "#include %s" % inc
        if line in out:
            continue
        last = max((k for k, l in enumerate(out) if l.startswith("#include ")), default=-1)
        out.insert(last + 1, line)
    return "\n".join(out)


def write_if_changed(path, text):
    """Rewrites only changed files, so an incremental build recompiles only them."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return True


def build_tree(root, stage, out, stub_tasks):
    """Writes out/ = stage/ (+ out/common/ when a stubbed task lives in
    common/), with the regions of stub_tasks stubbed. Returns the stubbed
    files (paths under out)."""
    tasks, regions = lint(root)
    total = {}
    for rel, rs in regions.items():
        if not (rel.startswith(stage + "/") or rel.startswith("common/")):
            continue
        for r in rs:
            total[r.task] = total.get(r.task, 0) + (1 if r.task in stub_tasks else 0)
    # The tree's shape depends on the stage, not on which tasks are stubbed,
    # so that the check's incremental builds reuse one build directory.
    own = {t.name for t in tasks.values() if t.stage == stage}
    in_common = any(r.task in own for rel, rs in regions.items() if rel.startswith("common/") for r in rs)
    counters = {t: 0 for t in stub_tasks}
    stubbed, wanted = [], set()
    tops = [(stage, out)] + ([("common", os.path.join(out, "common"))] if in_common else [])
    for top, dest in tops:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            dirs.sort()
            for fn in sorted(files):
                src = os.path.join(d, fn)
                rel = os.path.relpath(src, root)
                target = os.path.join(dest, os.path.relpath(src, base))
                wanted.add(os.path.abspath(target))
                if fn.endswith(SOURCE_EXT) and any(r.task in stub_tasks for r in regions.get(rel, [])):
                    lines, rs = scan_file(src, rel)
                    write_if_changed(target, stubbed_text(lines, rs, tasks, stub_tasks, counters, total))
                    stubbed.append(target)
                else:
                    with open(src, "rb") as f:
                        data = f.read()
                    try:
                        with open(target, "rb") as f:
                            same = f.read() == data
                    except FileNotFoundError:
                        same = False
                    if not same:
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        shutil.copyfile(src, target)  # a new mtime: make must see the change
    for d, dirs, files in os.walk(out):
        for fn in files:
            if os.path.abspath(os.path.join(d, fn)) not in wanted:
                raise LabError("%s is not in %s: a tree from another checkout or stage?" % (os.path.join(d, fn), stage))
    return stubbed


def cmd_generate(root, stage, force):
    tasks = read_lab(root, stage)
    if not tasks:
        raise LabError("%s has no lab tasks yet (no %s/LAB)" % (stage, stage))
    out = os.path.join(root, "labs", stage)
    if os.path.exists(out):
        if not force:
            raise LabError("%s exists and may hold your work; nothing was overwritten.\n"
                           "  make lab-test-stage%d          grade it\n"
                           "  make lab-reset-stage%d         start over (your copy is kept in labs/.old/)"
                           % (os.path.relpath(out, root), STAGES.index(stage) + 1, STAGES.index(stage) + 1))
        keep = os.path.join(root, "labs", ".old", "%s-%s" % (stage, time.strftime("%Y%m%d-%H%M%S")))
        os.makedirs(os.path.dirname(keep), exist_ok=True)
        shutil.move(out, keep)
        print("your previous lab is kept in %s" % os.path.relpath(keep, root))
    stubbed = build_tree(root, stage, out, {t.name for t in tasks})
    n = STAGES.index(stage) + 1
    print("lab for %s written to %s (edit the files there)" % (stage, os.path.relpath(out, root)))
    print("tasks, in order:")
    for t in tasks:
        files = sorted({os.path.relpath(p, root) for p in stubbed if grep_task(p, t.name)})
        print("  %-20s %s\n  %-20s in %s" % (t.name, t.title, "", ", ".join(files)))
    print("grade it: make lab-test-stage%d [TASK=name]" % n)


def grep_task(path, name):
    with open(path) as f:
        return ("/* LAB %s:" % name) in f.read()


# ---------------------------------------------------------------------------
# building and grading


def run(cmd, cwd=None, quiet=False, timeout=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if not quiet:
        sys.stdout.write(p.stdout)
    return p


def configured_for(build):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", f.read(), re.M)
            return m.group(1) if m else None
    except FileNotFoundError:
        return None


CC = []  # -DCMAKE_C_COMPILER=... when the check is told which compiler the outer build uses


def configure_and_build(root, stage, lab, build, jobs, extra=()):
    home = configured_for(build)
    if home and os.path.realpath(home) != os.path.realpath(root):
        shutil.rmtree(build)  # configured for another checkout: start afresh
        home = None
    if not home:
        cmd = ["cmake", "-S", root, "-B", build, "-DKV_SANITIZE=ON", "-DKV_LAB_DIR=" + os.path.abspath(lab),
               "-DKV_LAB_STAGE=" + stage, "-DKV_TEST_TIMEOUT=60", "-DKV_DEADLINE_SCALE=0.25", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"] + CC + list(extra)
        p = run(cmd, quiet=True)
        if p.returncode != 0:
            sys.stdout.write(p.stdout)
            raise LabError("configuring the lab build failed")
    p = run(["cmake", "--build", build, "-j%d" % jobs], quiet=True)
    if p.returncode != 0:
        errors = [l for l in p.stdout.splitlines() if "error" in l or "Error" in l]
        sys.stdout.write("\n".join(errors[:40]) + "\n")
        raise LabError("the lab does not compile (build dir %s)" % build)


RESULT = re.compile(r"Test\s+#\d+: (\S+) \.+\s*(\*\*\*)?(Passed|Failed|Timeout|Not Run|Exception\S*|\w+)")


def ctest(build, regexes=None, label=None, jobs=2, quiet=True):
    """Runs tests in the lab build; returns {name: passed?}."""
    cmd = ["ctest", "-j%d" % jobs]
    if label:
        cmd += ["-L", label]
    if regexes is not None:
        cmd += ["-R", "^(%s)$" % "|".join(regexes)]
    p = run(cmd, cwd=build, quiet=quiet)
    results = {}
    for m in RESULT.finditer(p.stdout):
        results[m.group(1)] = m.group(3) == "Passed"
    return results, p.stdout


def test_names(build):
    p = run(["ctest", "-N"], cwd=build, quiet=True)
    return re.findall(r"Test\s+#\d+: (\S+)", p.stdout)


def grading_tests(task, names):
    out = []
    for rx in task.tests:
        hits = [n for n in names if re.fullmatch(rx, n)]
        if not hits:
            raise LabError("%s: task %s: grading test %r matches no test of the lab build" % (task.line, task.name, rx))
        out += [h for h in hits if h not in out]
    return out


def cmd_test(root, stage, task_name, jobs):
    tasks = read_lab(root, stage)
    lab = os.path.join(root, "labs", stage)
    n = STAGES.index(stage) + 1
    if not os.path.exists(lab):
        raise LabError("no lab yet: make lab-stage%d first" % n)
    if task_name and task_name not in [t.name for t in tasks]:
        raise LabError("stage %d has no task %s (tasks: %s)" % (n, task_name, ", ".join(t.name for t in tasks)))
    build = os.path.join(root, "build-lab", stage)
    print("building %s in %s" % (os.path.relpath(lab, root), os.path.relpath(build, root)))
    configure_and_build(root, stage, lab, build, jobs)
    names = test_names(build)
    chosen = [t for t in tasks if not task_name or t.name == task_name]
    if task_name:
        results, _ = ctest(build, regexes=grading_tests(chosen[0], names), jobs=jobs, quiet=False)
    else:
        results, _ = ctest(build, label="^stage%d$" % n, jobs=jobs, quiet=False)
    print("\nlab %s, task by task:" % stage)
    ok = True
    for t in tasks:
        if t not in chosen:
            continue
        graded = grading_tests(t, names)
        failed = [g for g in graded if not results.get(g, False)]
        ok = ok and not failed
        print("  %-4s %-20s %s" % ("PASS" if not failed else "FAIL", t.name,
                                  "(%d test%s)" % (len(graded), "" if len(graded) == 1 else "s") if not failed else "failing: " + " ".join(failed)))
    if not task_name:
        graded = {g for t in tasks for g in grading_tests(t, names)}
        others = [k for k, v in results.items() if k not in graded and not v]
        if others:
            ok = False
            print("  FAIL other stage %d tests (they need every task): %s" % (n, " ".join(sorted(others))))
    if not ok:
        print("details: cd %s && ctest -R '^name$' --output-on-failure" % os.path.relpath(build, root))
    return 0 if ok else 1


def clang_check(build, files):
    """Compiles the stubbed files with clang too (syntax and warnings, the
    same flags as the build), using the build's compile commands."""
    clang = shutil.which("clang")
    if not clang:
        return "clang not installed: stubs compiled with gcc only"
    with open(os.path.join(build, "compile_commands.json")) as f:
        db = {os.path.realpath(e["file"]): e for e in json.load(f)}
    for path in files:
        if not path.endswith(".c"):
            continue
        e = db.get(os.path.realpath(path))
        if not e:
            raise LabError("no compile command for %s" % path)
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        args = [clang] + args[1:]
        if "-o" in args:
            k = args.index("-o")
            del args[k:k + 2]
        args.append("-fsyntax-only")
        p = run(args, cwd=e["directory"], quiet=True)
        if p.returncode != 0:
            sys.stdout.write(p.stdout)
            raise LabError("the stub in %s does not compile with clang" % path)
    return "stubs compiled with clang too"


def cmd_check(root, stage, build_root, jobs, only_task=None):
    """The honest-grading check for one stage: the learner's lab (every task
    stubbed) compiles under gcc and clang; then, one task stubbed at a time,
    each of its grading tests fails. That they pass on the real stage is the
    normal suite's job."""
    t0 = time.monotonic()
    tasks, _ = lint(root)
    mine = [t for t in tasks.values() if t.stage == stage]
    if not mine:
        print("%s: no lab tasks" % stage)
        return 0
    src = os.path.join(build_root, stage, "src")
    build = os.path.join(build_root, stage, "build")
    stubbed = build_tree(root, stage, src, {t.name for t in mine})
    configure_and_build(root, stage, src, build, jobs)
    print("%s: the lab (all %d tasks stubbed) compiles; %s" % (stage, len(mine), clang_check(build, stubbed)))
    names = test_names(build)
    failures = []
    for t in mine:
        if only_task and t.name != only_task:
            continue
        graded = grading_tests(t, names)
        t1 = time.monotonic()
        build_tree(root, stage, src, {t.name})
        configure_and_build(root, stage, src, build, jobs)
        results, out = ctest(build, regexes=graded, jobs=jobs)
        passing = [g for g in graded if results.get(g) is not False]
        if passing:
            failures.append("task %s: %s pass%s on the stub, so %s not grade it"
                            % (t.name, " ".join(passing), "es" if len(passing) == 1 else "",
                               "it does" if len(passing) == 1 else "they do"))
            print("FAIL %s: %s" % (t.name, failures[-1]))
        else:
            print("ok   %s: all %d grading tests fail on the stub (%s; %.0f s)"
                  % (t.name, len(graded), " ".join(graded), time.monotonic() - t1))
    # In order: a learner who has done tasks 1..k (the later ones still
    # stubbed) must see task k pass; a test that also needs a later task
    # belongs to that task's grading, not to k's.
    for k, t in enumerate(mine[:-1]):
        if only_task and t.name != only_task:
            continue
        later = [u.name for u in mine[k + 1:]]
        graded = grading_tests(t, names)
        t1 = time.monotonic()
        build_tree(root, stage, src, set(later))
        configure_and_build(root, stage, src, build, jobs)
        results, out = ctest(build, regexes=graded, jobs=jobs)
        failing = [g for g in graded if not results.get(g)]
        if failing:
            failures.append("task %s: %s fail%s with %s done and only later tasks (%s) stubbed, so a learner "
                            "working in order cannot pass it" % (t.name, " ".join(failing),
                                                                 "s" if len(failing) == 1 else "", t.name,
                                                                 " ".join(later)))
            print("FAIL %s: %s" % (t.name, failures[-1]))
        else:
            print("ok   %s: its tests pass with the later tasks still stubbed (%.0f s)"
                  % (t.name, time.monotonic() - t1))
    print("%s: %.0f s" % (stage, time.monotonic() - t0))
    if failures:
        raise LabError("dishonest grading in %s:\n  %s" % (stage, "\n  ".join(failures)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["lint", "generate", "test", "check"])
    ap.add_argument("stage", nargs="?")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--force", action="store_true", help="generate: replace an existing lab (kept in labs/.old/)")
    ap.add_argument("--task", help="test/check: only this task")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--build-root", help="check: where the check's lab trees and builds go")
    ap.add_argument("--cc", help="C compiler for the lab build (default: CMake's choice)")
    a = ap.parse_args()
    if a.cc:
        CC.append("-DCMAKE_C_COMPILER=" + a.cc)
    root = os.path.abspath(a.root)
    try:
        if a.command == "lint":
            tasks, regions = lint(root)
            print("labs: %d tasks, %d marked regions, all well formed"
                  % (len(tasks), sum(len(r) for r in regions.values())))
            return 0
        if not a.stage:
            raise LabError("which stage?")
        stage = stage_dir(a.stage)
        if a.command == "generate":
            cmd_generate(root, stage, a.force)
            return 0
        if a.command == "test":
            return cmd_test(root, stage, a.task, a.jobs)
        if not a.build_root:
            raise LabError("check needs --build-root")
        return cmd_check(root, stage, os.path.abspath(a.build_root), a.jobs, a.task)
    except LabError as e:
        print("lab: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
