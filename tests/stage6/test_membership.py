# test_membership.py - membership change between real stage6-snapshots
# processes (cluster.c over raft/membership.c): a fourth node started with
# --join is added by hand with CLUSTER ADD, catches up (same DIGEST) and
# is promoted to voter (CLUSTER NODES); a follower is removed and the
# others keep committing; the leader removes itself and another takes
# over; a dead node is replaced by a fresh one. Also the errors: not the
# leader, bad syntax, a change already pending, a joining node that stays
# silent until it is added, and restarts that remember the configuration
# and the addresses (from the log and from a snapshot).
import os
import sys
import unittest

import kvtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stage5"))
from raftcluster import SCALE, RaftCluster  # noqa: E402


def nodes(c, i):
    """CLUSTER NODES on node i: {id: (address, voter|learner, flags)}."""
    out = {}
    for line in c.command(i, "CLUSTER", "NODES").decode().splitlines():
        f = line.split()
        out[int(f[0])] = (f[1], f[2], f[3:])
    return out


def start_joiner(c, i):
    """Starts node i with --join and the members' string plus its own
    entry, as the chapter shows; returns its address HOST:CPORT:PPORT."""
    cport, pport = kvtest.free_port(), kvtest.free_port()
    addr = "127.0.0.1:%d:%d" % (cport, pport)
    spec = c.spec + ",%d=%s" % (i, addr)
    args = ["--id", str(i), "--cluster", spec, "--join", "--data-dir", "{tmp}/data",
            "--election-timeout-ms", str(c.election_ms), "--heartbeat-ms", str(c.heartbeat_ms),
            "--write-timeout-ms", str(c.write_timeout_ms)]
    c.nodes[i] = kvtest.Server(args, port=cport)
    c.client_port[i], c.peer_port[i] = cport, pport
    c.nodes[i].start()
    return addr


def write_some(test, c, lead, prefix, n=50):
    with c.nodes[lead].connect() as conn:
        conn.send(b"".join(kvtest.encode_command("SET", "%s%d" % (prefix, k), "v%d" % k) for k in range(n)))
        test.assertTrue(all(r == "OK" for r in conn.read_replies(n, timeout=30 * SCALE)))


def add(test, c, lead, i, addr):
    reply = c.command(lead, "CLUSTER", "ADD", "%d=%s" % (i, addr), timeout=30 * SCALE)
    test.assertEqual(reply, "node %d added as a learner; it becomes a voter once it has caught up" % i)


def wait_voter(c, lead, i):
    return kvtest.wait_for(lambda: nodes(c, lead).get(i, (None, None))[1] == "voter", timeout=20 * SCALE,
                           message="node %d promoted to voter" % i)


class Membership(kvtest.ServerTestCase):

    def test_add_a_fourth_node_by_hand(self):
        c = RaftCluster()
        self.addCleanup(c.close)
        c.start()
        lead = c.wait_leader(10 * SCALE)
        write_some(self, c, lead, "before")
        addr = start_joiner(c, 4)
        # Not yet added: it stays silent (no leader known, no election), and
        # the cluster does not list it.
        self.assertNotIn(4, nodes(c, lead))
        self.assertEqual(c.role(4)["role"], "follower")
        self.assertError(c.command(4, "SET", "x", "y"), "NOTLEADER leader=unknown")
        add(self, c, lead, 4, addr)
        wait_voter(c, lead, 4)
        self.assertIn("learner 4 has caught up: promoting it to voter", c.nodes[lead].log())
        write_some(self, c, lead, "after")
        digest = c.wait_same_digest(timeout=20)
        self.assertEqual(c.command(4, "DIGEST"), digest)
        # Every node lists the four, with the new one's address and the leader.
        for i in c.nodes:
            n = kvtest.wait_for(lambda: nodes(c, i) if len(nodes(c, i)) == 4 else None, timeout=10 * SCALE,
                                message="node %d lists four members" % i)
            self.assertEqual(n[4][0], addr)
            self.assertEqual(sorted(k for k, v in n.items() if "leader" in v[2]), [lead])
        self.assertRegex(c.command(lead, "CLUSTER", "NODES").decode(), r"(?m)^4 %s voter match=\d+$" % addr)
        # A NOTLEADER from the new node names the leader's client address.
        self.assertError(c.command(4, "SET", "x", "y"), "NOTLEADER leader=127.0.0.1:%d" % c.client_port[lead])
        # The configuration and the addresses survive a restart of every node.
        for s in c.nodes.values():
            s.stop()
        for s in c.nodes.values():
            s.start()
        lead = c.wait_leader(10 * SCALE)
        self.assertEqual(sorted(nodes(c, lead)), [1, 2, 3, 4])
        self.assertEqual(c.wait_same_digest(timeout=20), digest)

    def test_errors(self):
        # A long election timeout: the leader, once alone, must stay leader
        # (check-quorum) while the pending change is tried.
        c = RaftCluster(election_ms=1500)
        self.addCleanup(c.close)
        c.start()
        lead = c.wait_leader(10 * SCALE)
        other = [i for i in c.nodes if i != lead][0]
        self.assertError(c.command(other, "CLUSTER", "ADD", "4=127.0.0.1:1:2"),
                         "NOTLEADER leader=127.0.0.1:%d" % c.client_port[lead])
        self.assertError(c.command(other, "CLUSTER", "REMOVE", "2"), "NOTLEADER")
        for bad in (["ADD", "4"], ["ADD", "x=127.0.0.1:1:2"], ["ADD", "4=127.0.0.1:1"], ["REMOVE", "x"],
                    ["FROB"], ["ADD"]):
            self.assertError(c.command(lead, "CLUSTER", *bad), "ERR syntax")
        self.assertError(c.command(lead, "CLUSTER", "ADD", "%d=127.0.0.1:1:2" % other), "ERR node %d is already" % other)
        self.assertError(c.command(lead, "CLUSTER", "REMOVE", "7"), "ERR node 7 is not a member")
        # A learner that never answers stays a learner: a second change waits.
        self.assertEqual(c.command(lead, "CLUSTER", "ADD", "5=127.0.0.1:1:2", timeout=30 * SCALE),
                         "node 5 added as a learner; it becomes a voter once it has caught up")
        self.assertEqual(nodes(c, lead)[5][1], "learner")
        # With both followers stopped, REMOVE 5 cannot commit: while it
        # waits, another change is refused (and no address entry is left).
        last = c.role(lead)["commit"]
        for i in c.nodes:
            if i != lead:
                c.nodes[i].stop()
        with c.nodes[lead].connect() as a:
            a.send(kvtest.encode_command("CLUSTER", "REMOVE", "5"))
            kvtest.wait_for(lambda: c.command(lead, "INFO", "raft").count(b"raft_last_index:%d" % (last + 1)) == 1,
                            timeout=5 * SCALE, message="the removal appended")
            self.assertError(c.command(lead, "CLUSTER", "ADD", "6=127.0.0.1:3:4"),
                             "ERR a membership change is in progress")
            self.assertEqual(c.role(lead)["role"], "leader")  # still: it was refused for the pending change
            self.assertIn(b"raft_last_index:%d\r\n" % (last + 1), c.command(lead, "INFO", "raft"))
            self.assertIsInstance(a.read_reply(timeout=30 * SCALE), kvtest.RespError)  # no quorum: not applied here


    def test_remove_a_follower_then_the_leader(self):
        c = RaftCluster()
        self.addCleanup(c.close)
        c.start()
        lead = c.wait_leader(10 * SCALE)
        gone = [i for i in c.nodes if i != lead][0]
        self.assertEqual(c.command(lead, "CLUSTER", "REMOVE", str(gone), timeout=30 * SCALE), "node %d removed" % gone)
        # Two voters left: both needed, and both enough.
        c.nodes[gone].stop()
        write_some(self, c, lead, "two")
        self.assertEqual(sorted(nodes(c, lead)), sorted(i for i in c.nodes if i != gone))
        del c.nodes[gone]
        c.wait_same_digest()
        # The leader removes itself: it answers once the change commits, then
        # hands leadership to the other, which takes writes.
        self.assertEqual(c.command(lead, "CLUSTER", "REMOVE", str(lead), timeout=30 * SCALE), "node %d removed" % lead)
        last = [i for i in c.nodes if i != lead][0]
        kvtest.wait_for(lambda: c.role(last)["role"] == "leader", timeout=10 * SCALE, message="the other node leads")
        self.assertEqual(c.command(last, "SET", "alone", "yes"), "OK")
        self.assertEqual(list(nodes(c, last)), [last])
        c.nodes[lead].stop()
        del c.nodes[lead]
        self.assertEqual(c.command(last, "GET", "alone"), b"yes")

    @unittest.skipIf(kvtest.UNDER_VALGRIND, "a snapshot transfer to a new node on valgrind takes minutes; ASan runs it")
    def test_replace_a_dead_node(self):
        c = RaftCluster(extra=["--snapshot-entries", "100"])
        self.addCleanup(c.close)
        c.start()
        lead = c.wait_leader(10 * SCALE)
        dead = [i for i in c.nodes if i != lead][0]
        c.nodes[dead].kill9()
        write_some(self, c, lead, "k", 400)  # the log behind the snapshot goes: the new node needs it
        self.assertEqual(c.command(lead, "CLUSTER", "REMOVE", str(dead), timeout=30 * SCALE), "node %d removed" % dead)
        del c.nodes[dead]
        addr = start_joiner(c, 7)
        add(self, c, lead, 7, addr)
        wait_voter(c, lead, 7)
        digest = c.wait_same_digest(timeout=30)
        self.assertIn("received snapshot", c.nodes[7].log())
        self.assertEqual(c.command(7, "DIGEST"), digest)
        # The new node restarts from the snapshot it was sent: it still
        # knows every member's address and its configuration.
        c.nodes[7].stop()
        c.nodes[7].start()
        self.assertIn("loaded snapshot", c.nodes[7].log())
        c.wait_leader(10 * SCALE)
        self.assertEqual(sorted(nodes(c, 7)), sorted(c.nodes))
        self.assertEqual(c.wait_same_digest(timeout=20), digest)


if __name__ == "__main__":
    kvtest.main()
