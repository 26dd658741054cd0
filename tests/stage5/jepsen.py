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
import collections
import json
import os
import random
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
from raftcluster import SCALE, RaftCluster  # noqa: E402

# Every fault the nemesis knows. "leader" and "follower" are looked up when
# the fault starts.
FAULTS = {
    "kill": "kill -9 a random node, restart it when the fault ends",
    "kill-leader": "kill -9 the leader, restart it when the fault ends",
    "isolate-follower": "a follower cut off from both others (minority partition)",
    "isolate-leader": "the leader cut off from both others (the majority elects another)",
    "split-all": "every node cut off from every other (no majority anywhere)",
    "partial": "two nodes lose each other, the third still reaches both",
    "one-way": "the leader's messages to one follower are held, the follower's still arrive",
    "slow-follower": "the leader's messages to one follower delayed by 300 ms",
}
MIXES = {
    "kill": ("kill", "kill-leader"),
    "partition": ("isolate-follower", "isolate-leader", "split-all", "partial", "one-way", "slow-follower"),
    "mixed": tuple(FAULTS),
    "slow": ("slow-follower",),
    "none": (),
}
SLOW_MS = 300
# How often each operation is picked. APPEND's suffix makes a value no
# integer, so INCR fails (a definite error) until the next SET: APPEND is
# kept rarer than SET to leave INCR something to count.
WEIGHTS = {"get": 4, "set": 3, "incr": 3, "append": 1}

# NOTLEADER on a write: "unknown" (a deposed leader fails pending writes with
# it: they may still commit) or "definite" (the server answers NOTLEADER only
# for writes that can never apply, and TRYAGAIN for a pending write whose
# leader stepped down; notes/05-raft.md 5.9). By default the run asks the
# server: one that keeps the second contract counts its pending writes
# failed that way in INFO (raft_writes_leadership_lost).
CONTRACT_FIELD = "raft_writes_leadership_lost"


class Fault:
    """One step of the schedule: at `at` seconds into the run, start `kind`
    and end it `hold` seconds later; `pick` chooses among candidate nodes."""

    def __init__(self, at, kind, hold, pick):
        self.at, self.kind, self.hold, self.pick = at, kind, hold, pick

    def as_tuple(self):
        return (round(self.at, 3), self.kind, round(self.hold, 3), self.pick)

    def __repr__(self):
        return "Fault(at=%.2f, %s, hold=%.2f, pick=%d)" % (self.at, self.kind, self.hold, self.pick)


def make_schedule(seed, duration, kinds, warmup=1.0, tail=1.5):
    """The faults of a run, from the seed alone: one at a time, each held
    0.6-2.5 s, with 0.4-1.5 s of calm between, none after duration - tail
    (the cluster then runs healed for a while before the clients stop)."""
    rng = random.Random("schedule-%d" % seed)
    out = []
    t = warmup
    kinds = tuple(kinds)
    while kinds:
        kind = rng.choice(kinds)
        hold = rng.uniform(0.6, 2.5)
        pick = rng.randrange(1 << 30)
        if t + hold > duration - tail:
            break
        out.append(Fault(t, kind, hold, pick))
        t += hold + rng.uniform(0.4, 1.5)
    return out


class MeshCluster(RaftCluster):
    """RaftCluster whose peer links go through a ProxyMesh: each node dials
    its peers through the proxy (this node, that peer), and `partition` (a
    kvtest.Partition) cuts, blocks and delays them."""

    def __init__(self, n=3, election_ms=500, heartbeat_ms=50, write_timeout_ms=1000, extra=(), binary=None):
        # Not RaftCluster.__init__: the nodes need per-node --cluster strings.
        self.election_ms = election_ms * SCALE
        self.heartbeat_ms = heartbeat_ms * SCALE
        self.write_timeout_ms = write_timeout_ms * SCALE
        while True:
            ports = []
            while len(ports) < 2 * n:
                p = kvtest.free_port()
                if p not in ports:
                    ports.append(p)
            self.client_port = {i: ports[2 * (i - 1)] for i in range(1, n + 1)}
            self.peer_port = {i: ports[2 * (i - 1) + 1] for i in range(1, n + 1)}
            self.mesh = kvtest.ProxyMesh({i: ("127.0.0.1", self.peer_port[i]) for i in range(1, n + 1)})
            # The proxies listen on ports the kernel picks, which may be one
            # of the (still unbound) ports chosen for the nodes.
            if not {p.port for p in self.mesh.proxies.values()} & set(ports):
                break
            self.mesh.close()
        self.partition = kvtest.Partition(self.mesh)
        self.nodes = {}
        for i in range(1, n + 1):
            args = ["--id", str(i), "--cluster", self.mesh.cluster_arg(i, self.client_port),
                    "--data-dir", "{tmp}/data",
                    "--election-timeout-ms", str(self.election_ms), "--heartbeat-ms", str(self.heartbeat_ms),
                    "--write-timeout-ms", str(self.write_timeout_ms)] + list(extra)
            self.nodes[i] = kvtest.Server(args, port=self.client_port[i], binary=binary)

    def close(self):
        try:
            super().close()
        finally:
            self.mesh.close()

    def heal_all(self):
        """Every link up and undelayed, every node running."""
        self.partition.heal()
        self.partition.delay(0)
        for s in self.nodes.values():
            if not s.running():
                s.start()

    def current_leader(self):
        """The node that says it leads in the highest term, or None."""
        best = None
        for i in self.running():
            try:
                r = self.role(i)
            except (OSError, kvtest.RespProtocolError):
                continue
            if r["role"] == "leader" and (best is None or r["term"] > best[1]):
                best = (i, r["term"])
        return best[0] if best else None

    def converged(self):
        """Every node has applied everything the leader has in its log, and
        the digests agree. Returns the digest, or None."""
        lead = self.stable_leader()
        if lead is None:
            return None
        last = int(self.nodes[lead].info()["raft_last_index"])
        for i in self.nodes:
            r = self.role(i)
            if r["commit"] != last or r["applied"] != last:
                return None
        d = set(self.digests().values())
        return d.pop() if len(d) == 1 else None


# ---------------------------------------------------------------- clients

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, what, n=1):
        with self.lock:
            self.c[what] += n


def _text(b):
    return None if b is None else b.decode("utf-8", "surrogateescape")


class Client(threading.Thread):
    """One client: one operation at a time, sent to the node it believes
    leads (reads to a random node with follower_reads), following
    NOTLEADER leader=... hints. A connection whose reply never came is
    closed, never reused: the late reply would be taken for the next one."""

    def __init__(self, run, index):
        super().__init__(name="client-%d" % index, daemon=True)
        self.run_ = run
        self.name_ = "c%d" % index
        self.rng = random.Random("client-%d-%d" % (run.seed, index))
        self.conns = {}
        self.target = run.ports[index % len(run.ports)]
        self.confirmed = False      # target answered ROLE as leader, nothing went wrong since
        self.seq = 0

    def run(self):
        try:
            while not self.run_.stop.is_set():
                self.one_op()
        except BaseException as e:  # pragma: no cover - reported by the run
            self.run_.client_errors.append("%s: %r" % (self.name_, e))
        finally:
            for c in self.conns.values():
                c.close()

    def _conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = kvtest.Conn(port, timeout=self.run_.op_timeout)
            # Dialling a killed node's port from that same port number (the
            # kernel's pick) connects the socket to itself: no server is
            # there, and the node could not bind its port on restart.
            if c.sock.getsockname() == c.sock.getpeername():
                c.close()
                raise ConnectionRefusedError("connected to itself: nothing listens on %d" % port)
            self.conns[port] = c
        return c

    def _drop(self, port):
        c = self.conns.pop(port, None)
        if c is not None:
            c.close()

    def _other_node(self):
        self.target = self.rng.choice([p for p in self.run_.ports if p != self.target])
        self.confirmed = False

    def _set_target(self, port):
        if port != self.target:
            self.target = port
            self.confirmed = False

    def confirm_leader(self):
        """Before a write to a node not yet seen leading: ask it ROLE (local,
        changes nothing). While NOTLEADER on a write counts as unknown, every
        write sent to a follower would add an unknown operation, and the
        checker's search grows exponentially with unknown writes on a key;
        a client that knows where the leader is sends it few. Returns an
        outcome for one_op, or None when the write may go."""
        run = self.run_
        try:
            r = self._conn(self.target).command("ROLE", timeout=run.op_timeout)
        except (OSError, kvtest.RespProtocolError):
            self._drop(self.target)
            return "down"
        if isinstance(r, list) and len(r) >= 3 and r[0] in (b"leader", "leader"):
            self.confirmed = True
            return None
        lead = r[2] if isinstance(r, list) and len(r) >= 3 else 0
        if lead in run.port_of and run.port_of[lead] != self.target:
            self._set_target(run.port_of[lead])
            return "redirect"
        return "no-leader"

    def one_op(self):
        run = self.run_
        start = time.monotonic()
        op = self.rng.choices(run.ops, [WEIGHTS[o] for o in run.ops])[0]
        key = run.key(self.rng.randrange(run.nkeys))
        self.seq += 1
        value = None
        if op == "set":
            value = str(self.rng.randrange(10**8, 10**9))
        elif op == "append":
            value = "%s.%d," % (self.name_, self.seq)
        port = self.target
        outcome = None
        if op == "get":
            if run.follower_reads:
                port = self.rng.choice(run.ports)
        elif run.notleader_writes != "definite" and not self.confirmed:
            outcome = self.confirm_leader()
            port = self.target
        if outcome is None:
            outcome = self.attempt(port, op, key, value)
            if outcome != "ok":
                self.confirmed = False
        if outcome == "down" or outcome == "no-leader":
            self._other_node()
        # A client's think time (it paces the load; nothing waits on it).
        run.stop.wait(max(0.0, start + 1.0 / run.rate - time.monotonic()))

    def attempt(self, port, op, key, value):
        run = self.run_
        try:
            conn = self._conn(port)
        except OSError:
            run.stats.add("refused")
            return "down"           # nothing sent: nothing to record
        args = [op.upper(), key] + ([value] if value is not None else [])
        p = run.recorder.begin(self.name_, op, key, value)
        try:
            conn.send_command(*args)
            reply = conn.read_reply(timeout=run.op_timeout)
        except (OSError, kvtest.RespProtocolError) as e:
            # socket.timeout and ConnectionClosed are OSErrors too.
            self._drop(port)
            if op == "get":
                p.not_sent()        # a read that never answered changed nothing
                run.stats.add("read-lost")
            else:
                p.unknown(type(e).__name__)
                run.stats.add("unknown")
            return "down"
        return self.classify(p, port, op, reply)

    def classify(self, p, port, op, reply):
        run = self.run_
        if isinstance(reply, kvtest.RespError):
            text = reply.text
            if text.startswith("NOTLEADER"):
                run.stats.add("notleader")
                if op == "get" or run.notleader_writes == "definite":
                    p.not_sent()
                else:
                    p.unknown(text)
                    run.stats.add("unknown")
                hint = text.partition("leader=")[2].strip()
                if hint and hint != "unknown":
                    self._set_target(int(hint.rpartition(":")[2]))
                    return "redirect"
                return "no-leader"
            if text.startswith("TRYAGAIN"):
                run.stats.add("tryagain")
                if op == "get":
                    p.not_sent()
                else:
                    p.unknown(text)
                    run.stats.add("unknown")
                return "no-leader"
            if op == "incr" and text.startswith("ERR value is not an integer"):
                p.error(text)
                run.stats.add("error")
                return "ok"
            run.unexpected.append("%s -> -%s" % (op, text))
            p.unknown(text)
            run.stats.add("unknown")
            return "ok"
        expect = {"get": (bytes, type(None)), "set": (str,), "incr": (int,), "append": (int,)}[op]
        if not isinstance(reply, expect) or (op == "set" and reply != "OK"):
            run.unexpected.append("%s -> %r" % (op, reply))
            p.unknown("unexpected reply %r" % (reply,))
            run.stats.add("unknown")
            return "ok"
        p.ok(_text(reply) if op == "get" else reply)
        run.stats.add("ok")
        return "ok"


# ---------------------------------------------------------------- a run

def probe_ops(cluster, timeout):
    """The operations the server knows: INCR and APPEND if it answers them
    (sent once each, to a probe key the workload never touches), else only
    GET and SET."""
    def ask(*cmd):
        lead = cluster.current_leader()
        if lead is None:
            return None
        r = cluster.command(lead, *cmd)
        if isinstance(r, kvtest.RespError) and not r.text.startswith("ERR unknown command"):
            return None         # NOTLEADER / TRYAGAIN: ask again
        return r
    ops = ["get", "set"]
    for op in ("incr", "append"):
        cmd = ("INCR", "jepsen-probe") if op == "incr" else ("APPEND", "jepsen-probe-s", "x")
        r = kvtest.wait_for(lambda: ask(*cmd) or None, timeout=timeout,
                            message="an answer to %s from the leader" % cmd[0])
        if not isinstance(r, kvtest.RespError):
            ops.append(op)
    return ops


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
                 binary=None, keep_logs=False):
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
        extra = ("--follower-read-staleness-ms", str(2000 * SCALE)) if self.follower_reads else ()
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
                p.ok(_text(r))

    # -- the nemesis (main thread: servers must start from it) --

    def nemesis(self, cluster, t0):
        for f in self.schedule:
            self._sleep_until(t0 + f.at)
            self.note("fault", kind=f.kind, hold=round(f.hold, 3), **self.start_fault(cluster, f))
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

    def start_fault(self, cluster, f):
        nodes = sorted(cluster.nodes)
        lead = cluster.current_leader()
        if lead is None:
            lead = nodes[f.pick % len(nodes)]
        followers = [i for i in nodes if i != lead]
        pick = followers[f.pick % len(followers)]
        part = cluster.partition
        if f.kind in ("kill", "kill-leader"):
            victim = nodes[f.pick % len(nodes)] if f.kind == "kill" else lead
            cluster.nodes[victim].kill9()
            self.timeline_event("crash", victim)
            return {"nodes": [victim]}
        if f.kind in ("isolate-follower", "isolate-leader"):
            alone = pick if f.kind == "isolate-follower" else lead
            part.isolate(alone)
            self.timeline_event("partition", alone, to=[i for i in nodes if i != alone], both=True)
            return {"nodes": [alone], "leader": lead}
        if f.kind == "split-all":
            part.split(*({i} for i in nodes))
            for i in nodes:
                self.timeline_event("partition", i, to=[j for j in nodes if j != i], both=True)
            return {"nodes": nodes, "leader": lead}
        if f.kind == "partial":
            a, b = [i for i in nodes if i != nodes[f.pick % len(nodes)]]
            part.cut(a, b)
            self.timeline_event("partition", a, to=[b], both=True)
            return {"nodes": [a, b], "leader": lead}
        if f.kind == "one-way":
            part.block(lead, pick)
            self.timeline_event("partition", lead, to=[pick], both=False)
            return {"nodes": [lead, pick], "leader": lead}
        if f.kind == "slow-follower":
            part.delay(SLOW_MS, src=lead, dst=pick)
            return {"nodes": [lead, pick], "leader": lead, "delay_ms": SLOW_MS}
        raise ValueError("unknown fault %r" % f.kind)

    # -- the verdict --

    def verdict(self, converge_error):
        history = [dict(o) for o in self.recorder.ops()]
        result, html = judge(history, self.out_dir, self.checker_timeout,
                             "Stage 5 fault run, seed %d (%s)" % (self.seed, self.mix))
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
                       client_errors=list(self.client_errors), history=history)
        with open(os.path.join(self.out_dir, "summary.json"), "w") as f:
            json.dump({k: v for k, v in rr.__dict__.items() if k not in ("checker", "history")}, f, indent=1)
        return rr

    def _keep_logs(self, cluster):
        for i, s in cluster.nodes.items():
            try:
                shutil.copyfile(s.log_path, os.path.join(self.out_dir, "node%d.log" % i))
            except OSError:
                pass


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


def default_out_dir():
    """build/jepsen-stage5 next to the build's bin/ directory."""
    return os.path.join(os.path.dirname(os.path.abspath(kvtest.BIN_DIR or ".")), "jepsen-stage5")


def describe(rr):
    """The summary of a run, as printed after it."""
    lines = [rr.line()]
    kinds = collections.Counter(rr.faults)
    lines.append("  operations: %s (NOTLEADER on a write: %s); faults: %s" % (
        "/".join(o.upper() for o in rr.ops_kinds), rr.notleader_writes,
        ", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or "none"))
    lines.append("  client replies: %s; not recorded (refused reads, redirects): %d" % (
        ", ".join("%s=%d" % kv for kv in sorted(rr.stats.items())), rr.not_recorded))
    if rr.unexpected:
        lines.append("  unexpected replies (recorded as unknown): %s" % "; ".join(rr.unexpected[:5]))
    if rr.client_errors:
        lines.append("  client thread errors: %s" % "; ".join(rr.client_errors))
    if rr.converge_error:
        lines.append("  " + rr.converge_error)
    if rr.checker.verdict != "ok":
        lines.append(rr.checker.summary())
    lines.append("  files: %s" % rr.out_dir)
    return "\n".join(lines)
