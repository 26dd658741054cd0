# jepsen_nemesis.py - the faults of a fault run (jepsen.py): what each one
# does to a MeshCluster, the mixes a run draws from, and the schedule, drawn
# from the seed alone before the run starts so that a seed replays the same
# faults at the same moments. Faults aimed at "the leader" are resolved
# against whoever leads when they start, which no seed can fix.
import os
import random
import shutil
import time

import kvtest


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
# Stage 6 only (membership change): kept out of FAULTS so that stage 5's
# "mixed" stays what it was.
STAGE6_FAULTS = {
    "remove-add": "CLUSTER REMOVE a follower, stop it, wipe its data, restart it with --join, CLUSTER ADD it back",
}
MIXES = {
    "kill": ("kill", "kill-leader"),
    "partition": ("isolate-follower", "isolate-leader", "split-all", "partial", "one-way", "slow-follower"),
    "mixed": tuple(FAULTS),
    "slow": ("slow-follower",),
    "none": (),
    # Stage 6: membership changes between kills and partitions.
    "membership": ("remove-add", "kill", "kill-leader", "isolate-follower", "isolate-leader"),
}
SLOW_MS = 300


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


def start_fault(cluster, f, event):
    """Starts fault f on a MeshCluster (it ends with cluster.heal_all()).
    event(kind, node, **fields) is told each change in the timeline's event
    format. Returns what was done, for the run's nemesis.jsonl."""
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
        event("crash", victim)
        return {"nodes": [victim]}
    if f.kind in ("isolate-follower", "isolate-leader"):
        alone = pick if f.kind == "isolate-follower" else lead
        part.isolate(alone)
        event("partition", alone, to=[i for i in nodes if i != alone], both=True)
        return {"nodes": [alone], "leader": lead}
    if f.kind == "split-all":
        part.split(*({i} for i in nodes))
        for i in nodes:
            event("partition", i, to=[j for j in nodes if j != i], both=True)
        return {"nodes": nodes, "leader": lead}
    if f.kind == "partial":
        a, b = [i for i in nodes if i != nodes[f.pick % len(nodes)]]
        part.cut(a, b)
        event("partition", a, to=[b], both=True)
        return {"nodes": [a, b], "leader": lead}
    if f.kind == "one-way":
        part.block(lead, pick)
        event("partition", lead, to=[pick], both=False)
        return {"nodes": [lead, pick], "leader": lead}
    if f.kind == "slow-follower":
        part.delay(SLOW_MS, src=lead, dst=pick)
        return {"nodes": [lead, pick], "leader": lead, "delay_ms": SLOW_MS}
    if f.kind == "remove-add":
        return remove_and_add(cluster, lead, pick, event)
    raise ValueError("unknown fault %r" % f.kind)


def _change(cluster, what, expect, deadline):
    """Sends CLUSTER <what> to whoever leads until it answers `expect`;
    a change still pending, a new leader or NOTLEADER is retried until the
    deadline. Returns the last reply."""
    reply = None
    while time.monotonic() < deadline:
        lead = cluster.current_leader()
        if lead is not None:
            try:
                reply = cluster.command(lead, "CLUSTER", *what, timeout=max(0.1, deadline - time.monotonic()))
            except (OSError, kvtest.RespProtocolError) as e:
                reply = "%s" % e
            if reply == expect:
                return reply
        time.sleep(0.05)
    return reply


def remove_and_add(cluster, lead, victim, event):
    """The membership fault, done before the hold starts: follower `victim`
    is removed, stopped and wiped, restarted as a joining node and added
    back; it catches up by InstallSnapshot when the leader's log no longer
    starts at 1. Its address in the CLUSTER ADD goes through the mesh
    proxy from the leader, so every node reaches it through that proxy
    from then on (isolating it still cuts its incoming links; partial cuts
    aimed at other links to it no longer apply)."""
    deadline = time.monotonic() + 20 * (4 if kvtest.UNDER_VALGRIND else 1)
    r = _change(cluster, ("REMOVE", str(victim)), "node %d removed" % victim, deadline)
    if r != "node %d removed" % victim:
        return {"nodes": [victim], "leader": lead, "skipped": "REMOVE answered %r" % (r,)}
    node = cluster.nodes[victim]
    node.kill9()
    event("crash", victim)
    shutil.rmtree(os.path.join(node.tmp, "data"), ignore_errors=True)
    base = list(node.args)
    node.args = base + ["--join"]
    node.start()
    event("restart", victim)
    addr = "127.0.0.1:%d:%d" % (cluster.client_port[victim], cluster.mesh.proxies[(lead, victim)].port)
    expect = "node %d added as a learner; it becomes a voter once it has caught up" % victim
    r = _change(cluster, ("ADD", "%d=%s" % (victim, addr)), expect, deadline)
    if r != expect:
        # Left joining: convergence fails and the run says so.
        return {"nodes": [victim], "leader": lead, "error": "ADD answered %r" % (r,)}
    # Once the node knows it is a member (its configuration is on its disk)
    # a restart needs no --join.
    def knows_itself():
        try:
            out = cluster.command(victim, "CLUSTER", "NODES").decode()
        except (OSError, kvtest.RespProtocolError, AttributeError):
            return False
        return any(line.split()[0] == str(victim) and "myself" in line for line in out.splitlines())
    try:
        kvtest.wait_for(knows_itself, timeout=max(1.0, deadline - time.monotonic()), interval=0.05,
                        message="node %d to apply its own addition" % victim)
    except AssertionError as e:
        return {"nodes": [victim], "leader": lead, "error": str(e)}
    node.args = base
    return {"nodes": [victim], "leader": lead, "added_as": addr}
