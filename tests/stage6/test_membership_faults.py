# test_membership_faults.py - membership change during partitions, between
# real stage6-snapshots processes behind fault proxies (stage 5's
# faultrun.py):
#   - CLUSTER ADD of a fourth node while a follower is cut off: it commits
#     with the leader and the other follower, the new node catches up by
#     snapshot (the log behind it is compacted) and becomes a voter; the
#     cut follower, healed, learns the new configuration; four equal
#     DIGESTs, the same CLUSTER NODES everywhere;
#   - a leader cut off from both followers is asked to CLUSTER REMOVE: the
#     client gets TRYAGAIN or NOTLEADER within the election bound, never
#     OK; the majority elects and makes its own change; healed, the old
#     leader's uncommitted change is gone everywhere;
#   - CLUSTER REMOVE of a follower that is cut off commits; healed, the
#     removed node tries to reach the members and disturbs nobody: no term change,
#     the same leader, writes acknowledged, and it is in no CLUSTER NODES.
# The new node's links to the members go through proxies of its own, so a
# cut follower is cut off from it too.
import os
import sys
import time

import kvtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stage5"))
from faultrun import FaultCase, secs  # noqa: E402

ADDED = "node %d added as a learner; it becomes a voter once it has caught up"


def members(c, i):
    """CLUSTER NODES on node i as {id: (voter|learner, is the leader)};
    addresses left out: behind the proxies each node dials its own."""
    out = {}
    for line in c.command(i, "CLUSTER", "NODES").decode().splitlines():
        f = line.split()
        out[int(f[0])] = (f[2], "leader" in f[3:])
    return out


def set_many(test, c, node, prefix, n, acked):
    """n pipelined SETs on node, each of which must be acknowledged."""
    keys = ["%s%d" % (prefix, k) for k in range(n)]
    with c.nodes[node].connect(timeout=secs(30)) as conn:
        conn.send(b"".join(kvtest.encode_command("SET", k, "v-" + k) for k in keys))
        test.assertEqual(conn.read_replies(n, timeout=secs(30)), ["OK"] * n)
    acked.update((k, "v-" + k) for k in keys)


def check_acked(test, c, leader, acked):
    keys = sorted(acked)
    with c.nodes[leader].connect(timeout=secs(30)) as conn:
        conn.send(b"".join(kvtest.encode_command("GET", k) for k in keys))
        got = conn.read_replies(len(keys), timeout=secs(30))
    test.assertEqual([k for k, v in zip(keys, got) if v != acked[k].encode()], [], "acknowledged writes lost")


def start_joiner(test, c, i):
    """Starts node i with --join, its links to each member through a proxy
    of its own; returns (its address HOST:CPORT:PPORT, {member: proxy})."""
    proxies = {}
    for n in sorted(c.nodes):
        proxies[n] = kvtest.FaultProxy(("127.0.0.1", c.peer_port[n]), name="proxy %d->%d" % (i, n))
        test.addCleanup(proxies[n].close)
    cport = kvtest.free_port()
    pport = kvtest.free_port()
    while pport == cport:
        pport = kvtest.free_port()
    addr = "127.0.0.1:%d:%d" % (cport, pport)
    spec = ",".join("%d=127.0.0.1:%d:%d" % (n, c.client_port[n], p.port) for n, p in sorted(proxies.items()))
    args = ["--id", str(i), "--cluster", spec + ",%d=%s" % (i, addr), "--join", "--data-dir", "{tmp}/data",
            "--election-timeout-ms", str(c.election_ms), "--heartbeat-ms", str(c.heartbeat_ms),
            "--write-timeout-ms", str(c.write_timeout_ms)] + list(c.extra)
    c.nodes[i] = kvtest.Server(args, port=cport)
    c.client_port[i], c.peer_port[i] = cport, pport
    c.restart(i)
    return addr, proxies


class ChangesDuringPartitions(FaultCase):

    def cluster(self, extra=(), **kw):
        c = super().cluster(extra=extra, **kw)
        c.extra = list(extra)
        return c

    def test_add_a_node_while_a_follower_is_cut_off(self):
        c = self.cluster(extra=["--snapshot-entries", "50"])
        lead = c.wait_leader(self.election_bound(c))
        cut, other = [i for i in c.nodes if i != lead]
        acked = {}
        set_many(self, c, lead, "early", 20, acked)
        c.wait_same_digest()
        c.isolate(cut)
        # The majority goes on, and compacts the log behind a snapshot: the
        # new node will need the snapshot.
        set_many(self, c, lead, "cut", 200, acked)
        kvtest.wait_for(lambda: int(c.info(lead)["raft_log_first_index"]) > 1, timeout=secs(10),
                        message="the leader to compact its log")
        addr, proxies = start_joiner(self, c, 4)
        proxies[cut].cut()  # the new node cannot reach the cut follower either
        self.assertEqual(c.command(lead, "CLUSTER", "ADD", "4=" + addr, timeout=secs(30)), ADDED % 4)
        kvtest.wait_for(lambda: members(c, lead).get(4, ("",))[0] == "voter", timeout=secs(20),
                        message="node 4 promoted to voter")
        self.assertIn("received snapshot", c.nodes[4].log())
        # Four voters, one cut off: the leader, the other follower and the
        # new node are a majority.
        set_many(self, c, lead, "four", 50, acked)
        self.assertEqual(sorted(members(c, cut)), [1, 2, 3], "the cut-off follower heard of the change")
        c.heal()
        proxies[cut].heal()
        expect = {i: ("voter", i == lead) for i in (1, 2, 3, 4)}
        for i in c.nodes:
            kvtest.wait_for(lambda: members(c, i) == expect, timeout=secs(20),
                            message="node %d to list %s" % (i, expect))
        digest = c.wait_same_digest(timeout=30)
        self.assertEqual(set(c.digests().values()), {digest})
        self.assertEqual(c.stable_leader(), lead)
        check_acked(self, c, lead, acked)
        # The healed follower was behind the leader's first entry: a snapshot.
        self.assertIn("received snapshot", c.nodes[cut].log())

    def test_isolated_leader_change_fails_and_is_undone(self):
        c = self.cluster()
        old = c.wait_leader(self.election_bound(c))
        a, b = [i for i in c.nodes if i != old]
        acked = {}
        set_many(self, c, old, "before", 5, acked)
        conn = c.nodes[old].connect(timeout=secs(30))
        self.addCleanup(conn.close)
        t0 = time.monotonic()
        c.isolate(old)
        conn.send_command("CLUSTER", "REMOVE", str(a))
        reply = conn.read_reply(timeout=secs(30))
        self.assertWithin(time.monotonic() - t0, self.election_bound(c), "isolated leader -> CLUSTER REMOVE answered")
        self.assertIsInstance(reply, kvtest.RespError, "a cut-off leader answered %r" % (reply,))
        self.assertTrue(reply.text.startswith(("NOTLEADER", "TRYAGAIN")), reply.text)
        self.assertError(c.command(old, "CLUSTER", "ADD", "6=127.0.0.1:1:2"), "NOTLEADER leader=unknown")
        # The majority elects a leader and makes a change of its own (a
        # learner that never answers: it stays a learner).
        new = c.wait_leader_among([a, b], timeout=self.election_bound(c))  # not secs(): see test_install_faults.py
        set_many(self, c, new, "after", 5, acked)  # an entry of its term committed: changes allowed
        self.assertEqual(c.command(new, "CLUSTER", "ADD", "5=127.0.0.1:1:2", timeout=secs(30)), ADDED % 5)
        # Cut off, the old leader still holds its own uncommitted change.
        self.assertNotIn(a, members(c, old))
        c.heal()
        kvtest.wait_for(lambda: c.role(old) == dict(c.role(old), role="follower", leader=new), timeout=secs(10),
                        message="the old leader to follow node %d" % new)
        expect = {1: ("voter", new == 1), 2: ("voter", new == 2), 3: ("voter", new == 3), 5: ("learner", False)}
        for i in c.nodes:
            kvtest.wait_for(lambda: members(c, i) == expect, timeout=secs(10),
                            message="node %d to list %s" % (i, expect))
        self.assertGreaterEqual(int(c.info(old)["raft_truncations"]), 1, "the uncommitted removal was not cut")
        kvtest.wait_for(lambda: c.info(old)["raft_last_index"] == c.info(new)["raft_last_index"], timeout=secs(10),
                        message="the old leader's log to match the new leader's")
        c.wait_same_digest(timeout=10)
        check_acked(self, c, new, acked)
        # The configuration is the majority's for good: a write still needs
        # only the three voters, and a restart of the old leader keeps it.
        c.stop(old)
        c.restart(old)
        kvtest.wait_for(lambda: members(c, old) == expect, timeout=secs(10), message="the restarted old leader's list")

    def test_remove_a_cut_off_follower(self):
        c = self.cluster()
        lead = c.wait_leader(self.election_bound(c))
        gone, stay = [i for i in c.nodes if i != lead]
        acked = {}
        set_many(self, c, lead, "before", 5, acked)
        term = c.term(lead)
        c.isolate(gone)
        self.assertEqual(c.command(lead, "CLUSTER", "REMOVE", str(gone), timeout=secs(30)), "node %d removed" % gone)
        set_many(self, c, lead, "two", 5, acked)
        # Cut off, it does not know it was removed: its timer fires and it
        # asks for (pre-)votes.
        pre = "candidate in term"  # pre-candidate (or, without pre-vote, candidate)
        kvtest.wait_for(lambda: pre in c.nodes[gone].log(), timeout=self.election_bound(c),
                        message="node %d to campaign" % gone)
        c.heal()
        refused = "node id %d is not a member this node knows of" % gone
        healed_at = {i: c.nodes[i].log().count(refused) for i in (lead, stay)}
        # Healed, for five election timeouts: it keeps trying, and nobody's
        # term moves, the leader stays, every write is acknowledged.
        end = time.monotonic() + 5 * c.election_ms / 1000.0
        n = 0
        while time.monotonic() < end:
            set_many(self, c, lead, "healed%d-" % n, 1, acked)
            n += 1
            for i in (lead, stay):
                r = c.role(i)
                self.assertEqual((r["term"], r["leader"]), (term, lead), "node %d" % i)
        # It did try: the members turned its links away.
        for i in (lead, stay):
            self.assertGreater(c.nodes[i].log().count(refused), healed_at[i], "node %d never heard node %d" % (i, gone))
        self.assertEqual(c.role(lead)["role"], "leader")
        self.assertEqual(c.term(gone), term, "pre-vote: the removed node's own term stays")
        expect = {lead: ("voter", True), stay: ("voter", False)}
        self.assertEqual(members(c, lead), expect)
        self.assertEqual(members(c, stay), expect)
        check_acked(self, c, lead, acked)
        kvtest.wait_for(lambda: c.command(lead, "DIGEST") == c.command(stay, "DIGEST"), timeout=secs(10),
                        message="the two members to hold the same data")


if __name__ == "__main__":
    kvtest.main()
