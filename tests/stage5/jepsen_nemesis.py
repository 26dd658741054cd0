# jepsen_nemesis.py - the faults of a fault run (jepsen.py): what each one
# does to a MeshCluster, the mixes a run draws from, and the schedule, drawn
# from the seed alone before the run starts so that a seed replays the same
# faults at the same moments. Faults aimed at "the leader" are resolved
# against whoever leads when they start, which no seed can fix.
import random


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
    raise ValueError("unknown fault %r" % f.kind)
