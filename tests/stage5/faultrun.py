# faultrun.py - stage 5 clusters under faults, for the fault suites: a
# RaftCluster whose peer links run through the fault proxy (mesh=True) and
# which records every fault the test injects (partition, heal, delay, kill,
# stop, restart, a note) in timeline.py's event format; FaultCase, whose
# failing tests keep the nodes' logs, those events and the timeline drawn
# from them in an artifacts directory and print where; and the deadline
# helpers (secs).
#
# Timing. raftcluster.SCALE stretches the servers' own intervals under
# valgrind (x4). Deadlines we merely wait for scale further with secs():
# valgrind makes servers 20-50x slower, and KV_DEADLINE_SCALE (CMake) lets a
# lab build shorten them. Bounds we *promise* (a new leader within N s) are
# asserted only outside valgrind, where they mean something; they are
# printed everywhere.
import json
import os
import shutil
import subprocess
import sys
import time

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftcluster import SCALE, RaftCluster  # noqa: E402

DEADLINE_SCALE = (25.0 if kvtest.UNDER_VALGRIND else 1.0) * float(os.environ.get("KV_DEADLINE_SCALE") or 1)
TIMELINE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                                         "timeline.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def secs(s):
    """A deadline of s seconds in the sanitizer build, scaled under valgrind."""
    return s * DEADLINE_SCALE


def now_ms():
    # The servers stamp their log lines with CLOCK_REALTIME: so does this.
    return round(time.time() * 1000.0, 1)


class FaultCluster(RaftCluster):
    """A RaftCluster behind a ProxyMesh whose fault and process actions are
    recorded (self.events) for the timeline. Use its methods, not
    self.partition's or a node's, so that the picture shows them."""

    def __init__(self, **kw):
        kw.setdefault("mesh", True)
        super().__init__(**kw)
        self.events = []
        self.down = set()  # directed links (src, dst) down, as recorded

    def record(self, kind, node=None, t=None, **fields):
        self.events.append(dict(t=now_ms() if t is None else t, node=node, kind=kind, **fields))

    def note(self, text, node=None):
        self.record("note", node, text=text)

    # -- links --

    def _links(self, change, *args):
        """Applies a Partition change and records the links it cut, all at
        the instant before the change (one change, one instant: no
        half-made partition in the picture)."""
        t = now_ms()
        change(*args)
        now = set(self.partition.down)
        by_src = {}
        for a, b in sorted(now - self.down):
            by_src.setdefault(a, []).append(b)
        for a, to in by_src.items():
            self.record("partition", a, t=t, to=to, both=False)
        self.down = now

    def isolate(self, i):
        self._links(self.partition.isolate, i)

    def split(self, *groups):
        self._links(self.partition.split, *groups)

    def cut(self, a, b):
        self._links(self.partition.cut, a, b)

    def block(self, src, dst):
        self._links(self.partition.block, src, dst)

    def heal(self):
        t = now_ms()
        self.partition.heal()
        self.down = set()
        self.record("heal", t=t)

    def delay(self, ms, src=None, dst=None):
        self.partition.delay(ms, src, dst)
        self.note("delay %d ms on %s" % (ms, "every link" if src is None and dst is None else
                                         "n%s \u2192 n%s" % (src or "*", dst or "*")))

    # -- processes --

    def kill9(self, i):
        self.record("crash", i, how="kill -9")
        self.nodes[i].kill9()

    def stop(self, i):
        self.record("crash", i, how="stopped")
        self.nodes[i].stop()

    def restart(self, i):
        self.nodes[i].start()
        self.record("restart", i)

    # -- questions --

    def info(self, i):
        return self.nodes[i].info()

    def term(self, i):
        return int(self.info(i)["raft_term"])

    def leader_seen_by(self, i):
        return int(self.info(i)["raft_leader_id"])

    def wait_leader_among(self, ids, timeout, message=None):
        """The leader that every node of ids (a side of a partition) follows,
        in one term; the others are not asked."""
        def one():
            roles = {i: self.role(i) for i in ids}
            leaders = [i for i, r in roles.items() if r["role"] == "leader"]
            if len(leaders) == 1 and all(r["leader"] == leaders[0] and r["term"] == roles[leaders[0]]["term"]
                                         for r in roles.values()):
                return leaders[0]
            return None
        return kvtest.wait_for(one, timeout=timeout, interval=0.02,
                               message=message or "one leader followed by nodes %s" % sorted(ids))

    # -- the picture --

    def write_artifacts(self, directory, title):
        """Copies every node's log, writes the harness's events and draws
        the timeline; returns the HTML's path (None if drawing failed, with
        the reason in timeline.err)."""
        os.makedirs(directory, exist_ok=True)
        logs = []
        for i, s in self.nodes.items():
            dst = os.path.join(directory, "node%d.log" % i)
            if os.path.exists(s.log_path):
                shutil.copyfile(s.log_path, dst)
                logs.append("--log=%d=%s" % (i, dst))
        events = os.path.join(directory, "harness-events.jsonl")
        with open(events, "w", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "meta", "scenario": title, "nodes": sorted(self.nodes)}) + "\n")
            for e in self.events:
                f.write(json.dumps(e) + "\n")
        html = os.path.join(directory, "timeline.html")
        p = subprocess.run([PYTHON, TIMELINE, events] + logs + ["-o", html, "--title", "Raft timeline: " + title,
                            "--save-events", os.path.join(directory, "timeline.jsonl")],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            with open(os.path.join(directory, "timeline.err"), "w") as f:
                f.write(p.stdout + p.stderr)
            return None
        return html


def artifacts_root():
    return os.environ.get("KV_ARTIFACTS_DIR") or os.path.join(os.getcwd(), "artifacts")


class FaultCase(kvtest.ServerTestCase):
    """A test that builds its cluster with self.cluster(): when the test
    fails, the nodes' logs, the harness's events and a timeline go to
    artifacts/<test>-<time>/ (KV_ARTIFACTS_DIR overrides artifacts/), and the
    timeline's path is printed."""

    def cluster(self, **kw):
        c = FaultCluster(**kw)
        self.addCleanup(c.close)
        self.addCleanup(self._keep_if_failed, c)  # cleanups run last in, first out: before close
        c.start()
        return c

    def _failed(self):
        # Cleanups run after the test's failure is on the result (each
        # cleanup has a fresh outcome.success, so ask the result).
        result = getattr(getattr(self, "_outcome", None), "result", None)
        return any(t is self for t, _ in getattr(result, "failures", []) + getattr(result, "errors", []))

    def _keep_if_failed(self, c):
        if not self._failed():
            return
        name = self.id().rsplit(".", 2)
        name = "%s.%s" % (name[-2], name[-1]) if len(name) >= 2 else self.id()
        d = os.path.join(artifacts_root(), "%s-%s" % (name, time.strftime("%Y%m%dT%H%M%S")))
        html = c.write_artifacts(d, name)
        print("\nlogs: %s" % d, file=sys.stderr)
        print("timeline: %s" % (html or "(not drawn: see %s/timeline.err)" % d), file=sys.stderr)

    # A new leader within one randomized timeout [E, 2E), maybe a split vote
    # and a retry: the bound we promise is 4E + 2 s (test_cluster.py's).
    def election_bound(self, c):
        return (4 * c.election_ms + 2000 * SCALE) / 1000.0

    def assertWithin(self, took, bound, what):
        print("%s: %.3f s (bound %.1f s%s)" % (what, took, bound, ", not asserted under valgrind"
                                               if kvtest.UNDER_VALGRIND else ""), file=sys.stderr)
        if not kvtest.UNDER_VALGRIND:
            self.assertLess(took, bound, what)
