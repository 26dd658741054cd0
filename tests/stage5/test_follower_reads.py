# test_follower_reads.py - bounded-staleness reads on followers
# (--follower-read-staleness-ms N), as a user sees them: with the flag a
# follower answers GET itself while it hears from the leader and has applied
# what the leader committed; once the leader has been silent for longer than
# N ms the follower refuses with -NOTLEADER (the client goes to the leader);
# without the flag every read goes to the leader. INFO raft counts which
# path served how many reads.
import os
import signal
import sys

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftcluster import SCALE, RaftCluster  # noqa: E402


class FollowerReadTest(kvtest.ServerTestCase):
    def cluster(self, **kw):
        c = RaftCluster(**kw)
        self.addCleanup(c.close)
        c.start()
        return c

    def bound(self, c):
        return (4 * c.election_ms + 2000 * SCALE) / 1000.0

    def freeze(self, srv):
        """SIGSTOP srv; the SIGCONT is queued for cleanup so a failing test
        never leaves a stopped process behind."""
        srv.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: srv.running() and srv.send_signal(signal.SIGCONT))

    def test_follower_serves_reads_within_the_bound(self):
        staleness = 400 * SCALE
        # A long election timeout: after the leader freezes, the follower
        # should refuse (past 400 ms) well before anyone campaigns (3 s).
        c = self.cluster(election_ms=3000, heartbeat_ms=50,
                         extra=("--follower-read-staleness-ms", str(staleness)))
        lead = c.wait_leader(self.bound(c))
        f = next(i for i in c.nodes if i != lead)
        self.assertEqual(c.command(lead, "SET", "k", "v1"), "OK")
        # The follower applies the write a heartbeat later and then serves it.
        kvtest.wait_for(lambda: c.command(f, "GET", "k") == b"v1", timeout=5 * SCALE,
                        message="the follower to serve the committed value")
        self.assertEqual(c.command(f, "EXISTS", "k", "nope"), 1)
        self.assertEqual(c.command(f, "DBSIZE"), 1)
        info = c.nodes[f].info()
        self.assertEqual(info["raft_role"], "follower")
        self.assertEqual(int(info["raft_follower_read_staleness_ms"]), staleness)
        self.assertGreaterEqual(int(info["raft_reads_follower"]), 3)
        self.assertEqual(int(info["raft_reads_leader"]), 0)
        # Writes still go to the leader.
        self.assertError(c.command(f, "SET", "k", "v2"), "NOTLEADER leader=127.0.0.1:%d" % c.client_port[lead])

        # The leader goes silent: once it has not been heard from for longer
        # than the bound, the follower refuses rather than serve stale data.
        refused_before = int(info["raft_reads_follower_refused"])
        self.freeze(c.nodes[lead])

        def refused():
            r = c.command(f, "GET", "k")
            return r if isinstance(r, kvtest.RespError) else None

        reply = kvtest.wait_for(refused, timeout=2.5 * SCALE, message="the follower to refuse a stale read")
        self.assertTrue(reply.text.startswith("NOTLEADER"), reply.text)
        self.assertGreater(int(c.nodes[f].info()["raft_reads_follower_refused"]), refused_before)

    def test_reads_go_to_the_leader_by_default(self):
        c = self.cluster()
        lead = c.wait_leader(self.bound(c))
        self.assertEqual(c.command(lead, "SET", "k", "v"), "OK")
        f = next(i for i in c.nodes if i != lead)
        c.wait_same_digest()
        self.assertError(c.command(f, "GET", "k"), "NOTLEADER leader=127.0.0.1:%d" % c.client_port[lead])
        self.assertEqual(c.command(lead, "GET", "k"), b"v")
        fi, li = c.nodes[f].info(), c.nodes[lead].info()
        self.assertEqual(int(fi["raft_follower_read_staleness_ms"]), 0)
        self.assertEqual(int(fi["raft_reads_follower"]), 0)
        self.assertEqual(int(fi["raft_reads_follower_refused"]), 0)
        self.assertGreaterEqual(int(li["raft_reads_leader"]), 1)


if __name__ == "__main__":
    kvtest.main()
