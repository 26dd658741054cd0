# test_full_copy_crash.py - kill -9 of a follower in the middle of a full
# copy: restarted, it holds its old data or the new, never a mix, and no
# staging directory; then it converges. A BudgetRelay lets exactly 64 KiB of
# the leader's >1 MB copy through, so the follower is caught midway at a
# known byte, not at a moment. The restart points it at a closed port so
# that its state is inspected before it reconnects.
import os
import shutil

import kvtest

from cluster import BudgetRelay, ClusterCase, secs

BUDGET = 64 << 10


class FullCopyCrash(ClusterCase):
    def test_follower_killed_during_a_full_copy_keeps_old_data(self):
        leader = self.node("leader", args=["--wal-segment-bytes", "65536"])
        f = self.node("f", replicaof=leader)
        self.write(leader, [("old:%d" % i, "old-%d" % i) for i in range(20)])
        self.assert_converged(leader, [f])
        old = f.digest()
        self.assertEqual(f.stop(), 0)

        # Past the follower's index and compacted: it will need a full copy.
        big = [("new:%d" % i, ("new-%d-" % i) + "v" * 10000) for i in range(120)]
        self.write(leader, big)
        self.assertEqual(leader.cmd("COMPACT"), "Background compaction started")
        kvtest.wait_for(lambda: leader.info()["compactions_done"] == "1"
                        and leader.info()["compaction_in_progress"] == "0",
                        timeout=secs(30), message="the leader's compaction")
        new = leader.digest()
        self.assertGreater(sum(len(v) for _, v in big), 10 * BUDGET)

        relay = BudgetRelay(leader.peer_addr, BUDGET)
        self.addCleanup(relay.close)
        f.replicaof = ("127.0.0.1", relay.port)
        f.start()
        kvtest.wait_for(lambda: f.info()["leader_sync_in_progress"] == "1" and relay.forwarded == BUDGET,
                        timeout=secs(20), message="the follower stuck midway through the copy")
        self.assertEqual(f.digest(), old)  # the old data keeps serving reads meanwhile
        f.kill9()
        relay.close()

        # As if the crash had come while the copy was being written out: a
        # staging directory holding the leader's whole log.
        staging = os.path.join(f.data_dir, "wal.incoming")
        shutil.copytree(os.path.join(leader.data_dir, "wal"), staging, dirs_exist_ok=True)

        f.replicaof = ("127.0.0.1", self.closed_port())
        f.start()
        got = f.digest()
        self.assertIn(got, (old, new), "a mix of the old data and the new")
        self.assertEqual(got, old, "64 KiB of the copy cannot have installed it")
        self.assertFalse(os.path.exists(staging), "wal.incoming left after restart")
        self.assertEqual((f.info()["role"], f.info()["leader_link_status"]), ("follower", "down"))

        self.assertEqual(f.cmd("REPLICAOF", "127.0.0.1", str(leader.peer_port)), "OK")
        self.assert_converged(leader, [f])
        self.assertEqual(int(f.info()["full_copies_received"]), 1)
        self.assertFalse(os.path.exists(staging))


if __name__ == "__main__":
    kvtest.main()
