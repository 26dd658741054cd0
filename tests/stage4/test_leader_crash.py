# test_leader_crash.py - what a leader crash loses, deterministically (the
# follower's link is held by a kvtest.FaultProxy, not raced with a sleep):
# under asynchronous replication a write the leader acknowledged but never
# shipped is gone once the follower is promoted; the same write followed by
# WAIT 1 (which returned 1) survives. The crashed leader then rejoins the
# promoted one as a follower and converges to its data.
import kvtest

from cluster import ClusterCase, secs


class LeaderCrash(ClusterCase):
    def crash_and_promote(self, leader, f):
        self.assertEqual(leader.kill9(), -9)
        self.assertEqual(f.cmd("REPLICAOF", "NO", "ONE"), "OK")
        self.assertEqual(f.info()["role"], "leader")

    def rejoin(self, old, new):
        """The crashed leader restarts as a follower of the promoted node."""
        old.replicaof = new.peer_addr
        old.start()
        self.assert_converged(new, [old])

    def test_acknowledged_write_not_shipped_is_lost(self):
        leader = self.node("leader")
        proxy = self.proxy_to(leader)
        f = self.node("f", replicaof=("127.0.0.1", proxy.port))
        self.write(leader, [("base", "1")])
        self.wait_acked(leader, 1)
        proxy.cut(mode="blackhole")
        self.assertEqual(leader.cmd("SET", "k", "v"), "OK")  # acknowledged to the client
        last = leader.log_index()
        [entry] = leader.followers()
        self.assertLess(int(entry["acked_index"]), last, "the follower acked the write through a cut link")
        self.crash_and_promote(leader, f)
        self.assertIsNone(f.cmd("GET", "k"))  # lost
        self.assertEqual(f.cmd("GET", "base"), b"1")
        self.rejoin(leader, f)
        self.assertIsNone(leader.cmd("GET", "k"))  # the old leader's copy is gone too

    def test_write_acknowledged_by_wait_survives(self):
        leader = self.node("leader")
        proxy = self.proxy_to(leader)
        f = self.node("f", replicaof=("127.0.0.1", proxy.port))
        self.write(leader, [("base", "1")])
        self.wait_acked(leader, 1)
        # Records take 200 ms to reach the follower: a WAIT that returned
        # before the follower's ack would leave the write behind the cut.
        proxy.delay(200, direction=kvtest.S2C)
        with leader.connect(timeout=secs(30)) as c:
            self.assertEqual(c.command("SET", "k", "v"), "OK")
            self.assertEqual(c.command("WAIT", "1", str(int(secs(10) * 1000))), 1)
        proxy.cut(mode="blackhole")  # nothing more crosses: only what WAIT promised
        self.crash_and_promote(leader, f)
        self.assertEqual(f.cmd("GET", "k"), b"v")
        self.rejoin(leader, f)
        self.assertEqual(leader.cmd("GET", "k"), b"v")


if __name__ == "__main__":
    kvtest.main()
