# jepsen.py - linearizability fault runs against a real stage 5 cluster:
# three stage5-raft processes whose peer links go through a fault proxy
# mesh, concurrent clients doing GET/SET/INCR/APPEND over a few keys, a
# seeded nemesis that kills, restarts, partitions and heals, and at the end
# the linearizability checker (tests/harness/linearizability.py) on the
# recorded history. Used by tests/stage5/test_linearizable.py (ctest) and
# scripts/jepsen_stage5.py (make jepsen-stage5).
#
# What is recorded, and why. A client operation is recorded as ok or error
# only when the reply is definite: the value a GET saw, SET's OK, INCR's
# integer, APPEND's length, INCR's "not an integer" error (the model's own
# error). Everything that leaves the outcome open is unknown: a timeout, a
# dropped connection, TRYAGAIN (the write may still commit) and, until the
# server promises otherwise, NOTLEADER on a write (a deposed leader fails its
# pending writes with it, and they may commit under the next leader). A read
# refused with NOTLEADER or TRYAGAIN changed nothing and is not recorded.
#
# The fault schedule (which fault, when, for how long) is drawn from the seed
# before the run starts, so a seed replays the same schedule. Faults aimed at
# "the leader" are resolved against whoever leads at that moment, which the
# seed cannot fix.
#
# This file runs one fault run and judges it; the parts: meshcluster.py (the
# cluster behind the proxy mesh), jepsen_client.py (the clients and how they
# record), jepsen_nemesis.py (the faults and the schedule).
import collections
import json
import os
import re
import shutil
import sys
import threading
import time

import kvtest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
import linearizability  # noqa: E402
from history_recorder import HistoryRecorder  # noqa: E402
from linearizability_html import write_html  # noqa: E402
from jepsen_client import Client, Stats, as_str, probe_ops  # noqa: E402
from jepsen_nemesis import MIXES, make_schedule, start_fault  # noqa: E402,F401 (MIXES, make_schedule: for users)
from meshcluster import MeshCluster  # noqa: E402
from raftcluster import SCALE  # noqa: E402

# NOTLEADER on a write: "unknown" (a deposed leader fails pending writes with
# it: they may still commit) or "definite" (the server answers NOTLEADER only
# for writes that can never apply, and TRYAGAIN for a pending write whose
# leader stepped down; notes/05-raft.md 5.9). By default the run asks the
# server: one that keeps the second contract counts its pending writes
# failed that way in INFO (raft_writes_leadership_lost).
CONTRACT_FIELD = "raft_writes_leadership_lost"


class RunResult:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def line(self):
        return ("seed=%d mix=%s %.1fs ops=%d ok=%d error=%d unknown=%d faults=%d verdict=%s%s"
                % (self.seed, self.mix, self.duration, self.ops, self.ok, self.errors, self.unknown,
                   len(self.faults), self.verdict,
                   "" if not self.html else "  report: %s" % self.html))


class Run:
    """One fault run. Call execute(); it returns a RunResult and leaves in
    out_dir: history.jsonl (the checker's input), nemesis.jsonl (faults and
    heals, on the history's clock), faults.timeline.jsonl (the same for
    scripts/timeline.py), summary.json, and on a failure (or with
    keep_logs) report.html and the nodes' logs."""

    def __init__(self, seed, duration=12.0, mix="mixed", clients=5, keys=3, key_period=2.0, rate=50.0,
                 out_dir=None, follower_reads=False, notleader_writes=None, op_timeout=3.0, checker_timeout=60.0,
                 binary=None, keep_logs=False, server_flags=(), stage=5):
        if mix not in MIXES:
            raise ValueError("mix must be one of %s" % ", ".join(MIXES))
        self.seed, self.duration, self.mix = seed, duration, mix
        self.nclients = clients
        self.nkeys, self.key_period, self.rate = keys, key_period, rate
        self.keys = []          # every key used so far, for the final reads
        self.t0 = None
        self.out_dir = out_dir
        self.follower_reads = follower_reads
        self.notleader_writes = notleader_writes    # None: ask the server (execute)
        self.op_timeout = op_timeout * SCALE
        self.checker_timeout = checker_timeout
        self.binary = binary
        self.keep_logs = keep_logs
        self.server_flags = tuple(server_flags)   # e.g. stage 6's --snapshot-entries 50
        self.stage = stage
        self.recorder = None
        self.schedule = make_schedule(seed, duration, MIXES[mix])
        self.stop = threading.Event()
        self.stats = Stats()
        self.unexpected = []
        self.client_errors = []
        self.events = []
        self._events_file = None
        self._timeline_file = None
        self._key_set = set()
        self._key_lock = threading.Lock()

    def key(self, i):
        """Key i of the current generation. Every key_period seconds the
        clients move on to fresh keys: the checker's cost grows fast with
        the length of one key's history (and with the unknown writes in
        it), and linearly with the number of keys."""
        gen = int((time.monotonic() - self.t0) / self.key_period) if self.t0 else 0
        k = "g%d.k%d" % (gen, i)
        if k not in self._key_set:
            with self._key_lock:
                if k not in self._key_set:
                    self._key_set.add(k)
                    self.keys.append(k)
        return k

    def note(self, event, **detail):
        e = dict(detail, time=time.monotonic_ns(), event=event)
        self.events.append(e)
        if self._events_file:
            self._events_file.write(json.dumps(e) + "\n")
            self._events_file.flush()

    def timeline_event(self, kind, node=None, **fields):
        """The nemesis's faults in scripts/timeline.py's event format (epoch
        milliseconds, the servers' log clock), so that a run can be drawn
        with its nodes' logs: make timeline LOGS="node1.log ..." RUN=faults.timeline.jsonl"""
        if self._timeline_file:
            e = dict(fields, t=round(time.time() * 1000, 3), node=node, kind=kind)
            self._timeline_file.write(json.dumps(e) + "\n")
            self._timeline_file.flush()

    def execute(self):
        os.makedirs(self.out_dir, exist_ok=True)
        for name in ("report.html", "history.jsonl", "nemesis.jsonl", "summary.json", "faults.timeline.jsonl",
                     "node1.log", "node2.log", "node3.log"):
            if os.path.exists(os.path.join(self.out_dir, name)):
                os.unlink(os.path.join(self.out_dir, name))
        extra = self.server_flags + (("--follower-read-staleness-ms", str(2000 * SCALE)) if self.follower_reads
                                     else ())
        self._events_file = open(os.path.join(self.out_dir, "nemesis.jsonl"), "w")
        self._timeline_file = open(os.path.join(self.out_dir, "faults.timeline.jsonl"), "w")
        converge_error = None
        for attempt in range(3):
            cluster = MeshCluster(extra=extra, binary=self.binary)
            try:
                cluster.start()
                break
            except AssertionError as e:
                # A port chosen free was taken by another process before the
                # node bound it: start over on other ports.
                cluster.close()
                if "in use" not in str(e) or attempt == 2:
                    self._events_file.close()
                    self._timeline_file.close()
                    raise
        self.cluster = cluster
        try:
            self.ports = [cluster.client_port[i] for i in sorted(cluster.nodes)]
            self.port_of = dict(cluster.client_port)
            bound = (4 * cluster.election_ms + 2000 * SCALE) / 1000.0
            cluster.wait_leader(bound)
            self.ops = probe_ops(cluster, bound)
            if self.notleader_writes is None:
                info = cluster.nodes[cluster.current_leader() or 1].info()
                self.notleader_writes = "definite" if CONTRACT_FIELD in info else "unknown"
            self.note("start", ops=self.ops, seed=self.seed, mix=self.mix, notleader_writes=self.notleader_writes)
            recorder = HistoryRecorder(os.path.join(self.out_dir, "history.jsonl"))
            self.recorder = recorder
            clients = [Client(self, i) for i in range(self.nclients)]
            t0 = self.t0 = time.monotonic()
            for c in clients:
                c.start()
            try:
                self.nemesis(cluster, t0)
            finally:
                self.stop.set()
                for c in clients:
                    c.join(self.op_timeout + 10)
                self.note("clients-stopped")
            cluster.heal_all()
            try:
                digest = kvtest.wait_for(cluster.converged, timeout=20 * SCALE, interval=0.05,
                                         message="every node to apply the whole log and agree on DIGEST")
                self.note("converged", digest=digest.decode() if isinstance(digest, bytes) else str(digest))
                self.final_reads(cluster)
            except AssertionError as e:
                converge_error = str(e)
            recorder.close()
            self.snapshots = count_snapshots(cluster)
            # Checked before the nodes stop: a failing run keeps their logs.
            return self.verdict(converge_error)
        except BaseException:
            self._keep_logs(cluster)
            if self.recorder:
                self.recorder.close()
            raise
        finally:
            try:
                cluster.close()
            finally:
                self._events_file.close()
                self._events_file = None
                self._timeline_file.close()
                self._timeline_file = None

    def final_reads(self, cluster):
        """After healing: one linearizable read per key on the leader, so the
        history ends with what the cluster agreed on."""
        lead = cluster.current_leader()
        with cluster.nodes[lead].connect() as conn:
            for k in self.keys:
                p = self.recorder.begin("final", "get", k)
                r = conn.command("GET", k)
                if isinstance(r, kvtest.RespError):
                    p.not_sent()
                    raise AssertionError("final GET %s on the leader: -%s" % (k, r.text))
                p.ok(as_str(r))

    # -- the nemesis (main thread: servers must start from it) --

    def nemesis(self, cluster, t0):
        for f in self.schedule:
            self._sleep_until(t0 + f.at)
            self.note("fault", kind=f.kind, hold=round(f.hold, 3), **start_fault(cluster, f, self.timeline_event))
            self._sleep_until(t0 + f.at + f.hold)
            down = [i for i in sorted(cluster.nodes) if not cluster.nodes[i].running()]
            cluster.heal_all()
            for i in down:
                self.timeline_event("restart", i)
            self.timeline_event("heal")
            self.note("heal", kind=f.kind)
        self._sleep_until(t0 + self.duration)

    def _sleep_until(self, t):
        # The nemesis's clock: faults start on schedule, not on a condition.
        left = t - time.monotonic()
        if left > 0:
            time.sleep(left)

    # -- the verdict --

    def verdict(self, converge_error):
        history = [dict(o) for o in self.recorder.ops()]
        result, html = judge(history, self.out_dir, self.checker_timeout,
                             "Stage %d fault run, seed %d (%s)" % (self.stage, self.seed, self.mix))
        faults = [e for e in self.events if e["event"] == "fault"]
        verdict = VERDICTS[result.verdict]
        if converge_error:
            verdict = "not converged"
        if result.verdict != "ok" or converge_error or self.keep_logs:
            self._keep_logs(self.cluster)
        rr = RunResult(seed=self.seed, mix=self.mix, duration=self.duration, ops=len(history),
                       ok=sum(1 for o in history if o["status"] == "ok"),
                       errors=sum(1 for o in history if o["status"] == "error"),
                       unknown=sum(1 for o in history if o["status"] == "unknown"),
                       not_recorded=self.recorder.not_sent_count, stats=dict(self.stats.c),
                       faults=[e["kind"] for e in faults], verdict=verdict, checker=result,
                       converge_error=converge_error, html=html, out_dir=self.out_dir,
                       ops_kinds=self.ops, notleader_writes=self.notleader_writes,
                       unexpected=list(self.unexpected),
                       client_errors=list(self.client_errors), history=history,
                       snapshots=getattr(self, "snapshots", None),
                       fault_problems=["%s: %s" % (e["kind"], e.get("skipped") or e.get("error"))
                                       for e in faults if e.get("skipped") or e.get("error")])
        with open(os.path.join(self.out_dir, "summary.json"), "w") as f:
            json.dump({k: v for k, v in rr.__dict__.items() if k not in ("checker", "history")}, f, indent=1)
        return rr

    def _keep_logs(self, cluster):
        for i, s in cluster.nodes.items():
            try:
                shutil.copyfile(s.log_path, os.path.join(self.out_dir, "node%d.log" % i))
            except OSError:
                pass


def count_snapshots(cluster):
    """Snapshots taken and installed over the whole run, from the nodes'
    logs (kept across restarts; INFO's raft_snapshots_taken and
    raft_snapshots_received start again at 0 in each process, so a kill
    would lose them). None when the server logs no snapshots (stage 5)."""
    taken = installed = 0
    per_node = {}
    for i, s in sorted(cluster.nodes.items()):
        try:
            text = s.log()
        except OSError:
            continue
        t = len(re.findall(r"snapshot at index \d+ \(term \d+\) done in", text))
        n = text.count(": installed snapshot ")
        per_node[i] = {"taken": t, "installed": n}
        taken, installed = taken + t, installed + n
    if not taken and not installed and "snapshot" not in " ".join(cluster.nodes[1].args):
        return None
    return {"taken": taken, "installed": installed, "per_node": per_node}


VERDICTS = {"ok": "linearizable", "fail": "NOT linearizable", "unknown": "unknown"}


def judge(history, out_dir, timeout, title):
    """Checks a history (list of dicts); unless it is linearizable, writes
    out_dir/report.html. Returns (checker Result, HTML path or None)."""
    result = linearizability.check(history, timeout=timeout)
    html = None
    if result.verdict != "ok":
        html = os.path.join(out_dir, "report.html")
        write_html(result, html, title=title)
    return result, html


def inject_stale_read(history):
    """A copy of a real history with one stale read added: a GET that
    starts after two SETs of the key have completed one after the other,
    and returns the older value, as a node serving reads from a lagging
    copy of the data would. None if the history has no such pair."""
    by_key = {}
    for o in history:
        if o["op"] == "set" and o["status"] == "ok":
            by_key.setdefault(o["key"], []).append(o)
    for key in sorted(by_key):
        sets = sorted(by_key[key], key=lambda o: o["call"])
        for old in sets:
            newer = [n for n in sets if n["call"] > old["return"] and n["value"] != old["value"]]
            if not newer:
                continue
            new = newer[0]
            stale = {"client": "stale-reader", "op": "get", "key": key, "call": new["return"] + 1,
                     "return": new["return"] + 2, "output": old["value"], "status": "ok",
                     "note": "injected: reads %s, overwritten before it was called" % old["value"]}
            return [dict(o) for o in history] + [stale]
    return None


def default_out_dir(name="jepsen-stage5"):
    """build/jepsen-stage5 (or `name`) next to the build's bin/ directory."""
    return os.path.join(os.path.dirname(os.path.abspath(kvtest.BIN_DIR or ".")), name)


def describe(rr):
    """The summary of a run, as printed after it."""
    lines = [rr.line()]
    kinds = collections.Counter(rr.faults)
    lines.append("  operations: %s (NOTLEADER on a write: %s); faults: %s" % (
        "/".join(o.upper() for o in rr.ops_kinds), rr.notleader_writes,
        ", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or "none"))
    lines.append("  client replies: %s; not recorded (refused reads, redirects): %d" % (
        ", ".join("%s=%d" % kv for kv in sorted(rr.stats.items())), rr.not_recorded))
    if rr.snapshots is not None:
        lines.append("  snapshots: %d taken, %d installed by InstallSnapshot (%s)" % (
            rr.snapshots["taken"], rr.snapshots["installed"],
            ", ".join("node %d: %d/%d" % (i, v["taken"], v["installed"])
                      for i, v in sorted(rr.snapshots["per_node"].items()))))
    if rr.fault_problems:
        lines.append("  faults not carried out: %s" % "; ".join(rr.fault_problems))
    if rr.unexpected:
        lines.append("  unexpected replies (recorded as unknown): %s" % "; ".join(rr.unexpected[:5]))
    if rr.client_errors:
        lines.append("  client thread errors: %s" % "; ".join(rr.client_errors))
    if rr.converge_error:
        lines.append("  " + rr.converge_error)
    if rr.checker.verdict != "ok":
        # The first failing keys in full; every key is in the report.
        res = rr.checker
        bad = res.failing()
        undecided = [k for k in res.keys.values() if k.verdict == "unknown"]
        lines.append(res.summary().split("\n")[0])
        lines += [k.explain() for k in bad[:2]]
        if len(bad) > 2:
            lines.append("... and %d more keys not linearizable" % (len(bad) - 2))
        if undecided:
            lines.append("%d keys undecided (the search ran out of time)" % len(undecided))
    lines.append("  files: %s" % rr.out_dir)
    return "\n".join(lines)
