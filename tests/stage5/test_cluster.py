# test_cluster.py - stage 5 as a user sees it: three real stage5-raft nodes on
# loopback. One leader is elected; writes on it reach every node; followers
# redirect with -NOTLEADER; killing the leader elects another within a stated
# bound and writes go on; a restarted node catches up; a cluster restarted
# after kill -9 keeps every acknowledged write; a leader without a majority
# answers -TRYAGAIN, then steps down. The error contract: -NOTLEADER only for
# a write this node never proposed (certainly not applied); a write pending
# when leadership is lost answers -TRYAGAIN (it may still commit).
import os
import sys
import time

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftcluster import SCALE, RaftCluster  # noqa: E402


class ClusterTest(kvtest.ServerTestCase):
    def cluster(self, **kw):
        c = RaftCluster(**kw)
        self.addCleanup(c.close)
        c.start()
        return c

    # An election takes one randomized timeout in [E, 2E), maybe a retry after
    # a split vote; the bound we promise: a new leader within 4E + 2 s.
    def election_bound(self, c):
        return (4 * c.election_ms + 2000 * SCALE) / 1000.0

    def test_one_leader_and_redirects(self):
        c = self.cluster()
        lead = c.wait_leader(self.election_bound(c))
        roles = [c.role(i)["role"] for i in c.nodes]
        self.assertEqual(roles.count("leader"), 1, roles)
        self.assertEqual(roles.count("follower"), 2, roles)
        where = "leader=127.0.0.1:%d" % c.client_port[lead]
        for i in c.nodes:
            if i == lead:
                continue
            self.assertError(c.command(i, "SET", "k", "v"), "NOTLEADER " + where)
            self.assertError(c.command(i, "GET", "k"), "NOTLEADER " + where)
        info = c.nodes[lead].info()
        self.assertEqual(info["raft_role"], "leader")
        self.assertEqual(info["raft_leader_addr"], "127.0.0.1:%d" % c.client_port[lead])

    def test_writes_reach_every_node(self):
        c = self.cluster()
        lead = c.wait_leader(self.election_bound(c))
        with c.nodes[lead].connect() as conn:
            for k in range(30):
                self.assertEqual(conn.command("SET", "key%d" % k, "value%d" % k), "OK")
            self.assertEqual(conn.command("DEL", "key0", "missing"), 1)
            self.assertEqual(conn.command("GET", "key29"), b"value29")
            self.assertIsNone(conn.command("GET", "key0"))
            self.assertEqual(conn.command("DBSIZE"), 29)
            digest = conn.command("DIGEST")
        self.assertTrue(digest.endswith(b" keys=29"), digest)
        c.wait_same_digest(expect=digest)
        info = c.nodes[lead].info()
        for i in c.nodes:
            if i != lead:
                self.assertIn("link=up", info["raft_peer%d" % i])

    def test_leader_crash_failover_and_rejoin(self):
        c = self.cluster()
        old = c.wait_leader(self.election_bound(c))
        self.assertEqual(c.command(old, "SET", "before", "crash"), "OK")
        old_term = c.role(old)["term"]
        c.nodes[old].kill9()
        t0 = time.monotonic()
        new = c.wait_leader(self.election_bound(c))
        elapsed = time.monotonic() - t0
        self.assertNotEqual(new, old)
        self.assertGreater(c.role(new)["term"], old_term)
        self.assertLess(elapsed, self.election_bound(c))
        self.assertEqual(c.command(new, "GET", "before"), b"crash")
        self.assertEqual(c.command(new, "SET", "after", "crash"), "OK")
        # The old leader comes back as a follower and catches up.
        c.nodes[old].start()
        kvtest.wait_for(lambda: c.role(old) == dict(c.role(old), role="follower", leader=new),
                        timeout=self.election_bound(c), message="the old leader to follow the new one")
        digest = c.command(new, "DIGEST")
        c.wait_same_digest(expect=digest)
        self.assertTrue(digest.endswith(b" keys=2"), digest)

    def test_whole_cluster_crash_keeps_acknowledged_writes(self):
        c = self.cluster()
        lead = c.wait_leader(self.election_bound(c))
        with c.nodes[lead].connect() as conn:
            for k in range(20):
                self.assertEqual(conn.command("SET", "durable%d" % k, "v%d" % k), "OK")
            digest = conn.command("DIGEST")
        for s in c.nodes.values():
            s.kill9()
        c.start()
        lead = c.wait_leader(self.election_bound(c))
        c.wait_same_digest(expect=digest)
        self.assertEqual(c.command(lead, "GET", "durable19"), b"v19")

    def test_no_quorum_tryagain_then_step_down(self):
        # The write timeout is well under the election timeout: a leader that
        # lost its majority notices only after a full election timeout.
        c = self.cluster(election_ms=1500, heartbeat_ms=100, write_timeout_ms=300)
        lead = c.wait_leader(self.election_bound(c))
        self.assertEqual(c.command(lead, "SET", "k", "1"), "OK")
        for i in c.nodes:
            if i != lead:
                c.nodes[i].stop()
        t0 = time.monotonic()
        reply = c.command(lead, "SET", "k", "2", timeout=10 * SCALE)
        took = time.monotonic() - t0
        self.assertError(reply, "TRYAGAIN no quorum")
        self.assertGreaterEqual(took, 0.3 * SCALE * 0.9)
        # Then it steps down (check-quorum) and knows no leader.
        kvtest.wait_for(lambda: c.role(lead)["role"] != "leader", timeout=5 * c.election_ms / 1000.0,
                        message="the leader without a majority to step down")
        self.assertError(c.command(lead, "SET", "k", "3"), "NOTLEADER leader=unknown")

    def test_leadership_lost_while_pending_is_tryagain(self):
        # The write timeout is far above the step-down time (check-quorum:
        # 1-2 election timeouts), so the pending write fails because the
        # leader steps down, not because it timed out. Its entry is in the
        # old leader's log and could commit under a later leader: the
        # client must hear "unknown", never NOTLEADER ("not applied").
        c = self.cluster(election_ms=500, heartbeat_ms=50, write_timeout_ms=60000)
        lead = c.wait_leader(self.election_bound(c))
        self.assertEqual(c.command(lead, "SET", "k", "1"), "OK")
        for i in c.nodes:
            if i != lead:
                c.nodes[i].stop()
        t0 = time.monotonic()
        reply = c.command(lead, "SET", "k", "2", timeout=30 * SCALE)
        self.assertError(reply, "TRYAGAIN leadership lost; the write may still commit")
        self.assertLess(time.monotonic() - t0, 30 * SCALE)
        info = c.nodes[lead].info()
        self.assertEqual(info["raft_writes_leadership_lost"], "1")
        self.assertEqual(info["raft_writes_timed_out"], "0")
        # A write it did not propose: certainly not applied.
        self.assertError(c.command(lead, "SET", "k", "3"), "NOTLEADER leader=unknown")

    def test_uncommitted_entries_are_replaced(self):
        # A leader cut off from its majority still appends what it is sent;
        # those entries never commit. When it comes back under a new leader
        # whose log differs at those indexes, it must cut them off its WAL
        # (on disk: a second crash must not bring them back) and take the
        # new leader's entries.
        # Small segments: the uncommitted entries span several, so the cut
        # removes whole segment files and shortens an earlier one.
        c = self.cluster(election_ms=1500, heartbeat_ms=100, write_timeout_ms=300,
                         extra=("--wal-segment-bytes", "4096"))
        old = c.wait_leader(self.election_bound(c))
        self.assertEqual(c.command(old, "SET", "committed", "yes"), "OK")
        others = [i for i in c.nodes if i != old]
        for i in others:
            c.nodes[i].stop()
        # Two waves of writes, one per connection so that a wave is proposed
        # at once (a connection waits for its write before running the next);
        # the log rotates after each wave.
        for wave in range(2):
            conns = [c.nodes[old].connect() for _ in range(6)]
            for k, conn in enumerate(conns):
                self.addCleanup(conn.close)
                conn.send_command("SET", "lost%d" % (6 * wave + k), "x" * 1000)
            for conn in conns:
                self.assertError(conn.read_reply(timeout=10 * SCALE), "TRYAGAIN")
        self.assertGreaterEqual(int(c.nodes[old].info()["wal_segments"]), 3)
        self.assertGreater(c.role(old)["applied"], 0)
        last_before = int(c.nodes[old].info()["raft_last_index"])
        c.nodes[old].kill9()
        for i in others:
            c.nodes[i].start()
        new = c.wait_leader(self.election_bound(c))
        self.assertIn(new, others)
        for k in range(3):
            self.assertEqual(c.command(new, "SET", "new%d" % k, "v"), "OK")
        c.nodes[old].start()
        digest = c.command(new, "DIGEST")
        c.wait_same_digest(expect=digest)
        for k in range(12):
            self.assertIsNone(c.command(new, "GET", "lost%d" % k))
        info = c.nodes[old].info()
        self.assertGreaterEqual(int(info["raft_truncations"]), 1)
        # Its log is now the new leader's: shorter than the one it had.
        new_last = int(c.nodes[new].info()["raft_last_index"])
        self.assertEqual(int(info["raft_last_index"]), new_last)
        self.assertLess(new_last, last_before)
        # The cut is on disk: a crash and restart give the same data.
        c.nodes[old].kill9()
        c.nodes[old].start()
        c.wait_same_digest(expect=digest)

if __name__ == "__main__":
    kvtest.main()
