# test_wait.py - what an acknowledgement promises, as a client sees it:
# WAIT counts the followers holding the connection's last write and gives
# up at its timeout when the link is cut (a kvtest.FaultProxy between the
# follower and the leader's peer port); --min-followers-to-write refuses
# writes with NOREPLICAS while the only follower is frozen (SIGSTOP) and
# accepts them again once it is back (SIGCONT).
import signal
import time

import kvtest

from cluster import ClusterCase, secs

NOREPLICAS = kvtest.RespError("NOREPLICAS Not enough good replicas to write.")


class Wait(ClusterCase):
    def test_wait_counts_followers_and_times_out_on_a_cut_link(self):
        leader = self.node("leader")
        proxy = self.proxy_to(leader)
        f = self.node("f", replicaof=("127.0.0.1", proxy.port))
        self.wait_acked(leader, 1, index=0)
        c = self.connect(leader, timeout=secs(30))
        self.assertEqual(c.command("SET", "a", "1"), "OK")
        self.assertEqual(c.command("WAIT", "1", str(int(secs(10) * 1000))), 1)
        # Asking for more followers than there are waits out the timeout.
        t0 = time.monotonic()
        self.assertEqual(c.command("WAIT", "2", "300"), 1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)

        proxy.cut(mode="blackhole")
        self.assertEqual(c.command("SET", "b", "2"), "OK")
        t0 = time.monotonic()
        self.assertEqual(c.command("WAIT", "1", "500"), 0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.49)
        self.assertLess(elapsed, 0.5 + secs(1.5))
        self.assertIsNone(f.cmd("GET", "b"))

        proxy.heal()  # the held bytes arrive: the same write is now acknowledged
        self.assertEqual(c.command("WAIT", "1", str(int(secs(10) * 1000))), 1)
        self.assert_converged(leader, [f])
        self.assertEqual(f.cmd("GET", "b"), b"2")

    def test_wait_on_a_follower_is_refused(self):
        leader = self.node("leader")
        f = self.node("f", replicaof=leader)
        self.assertError(f.cmd("WAIT", "1", "10"), "ERR WAIT cannot be used on a follower")
        self.assertError(leader.cmd("WAIT", "x", "10"), "ERR numfollowers and timeout")


class MinFollowers(ClusterCase):
    def test_writes_refused_while_the_only_follower_is_frozen(self):
        leader = self.node("leader", args=["--min-followers-to-write", "1", "--min-followers-max-lag", "1"])
        f = self.node("f", replicaof=leader)
        kvtest.wait_for(lambda: leader.cmd("SET", "k", "before") == "OK", timeout=secs(20),
                        message="the leader accepting writes with its follower fresh")
        self.wait_acked(leader, 1)
        f.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: f.running() and f.send_signal(signal.SIGCONT))
        kvtest.wait_for(lambda: leader.cmd("SET", "k", "refused?") == NOREPLICAS, timeout=secs(10),
                        message="NOREPLICAS once the frozen follower is 1 s stale")
        self.assertEqual(leader.cmd("SET", "k", "refused"), NOREPLICAS)
        self.assertEqual(leader.cmd("DEL", "k"), NOREPLICAS)
        self.assertIn(leader.cmd("GET", "k"), (b"before", b"refused?"))  # reads are served
        f.send_signal(signal.SIGCONT)
        kvtest.wait_for(lambda: leader.cmd("SET", "k", "after") == "OK", timeout=secs(20),
                        message="writes accepted again after SIGCONT")
        self.assert_converged(leader, [f])
        self.assertEqual(f.cmd("GET", "k"), b"after")


if __name__ == "__main__":
    kvtest.main()
