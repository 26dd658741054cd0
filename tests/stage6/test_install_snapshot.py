# test_install_snapshot.py - InstallSnapshot between real stage6-snapshots
# processes: a follower stopped while the leader snapshots and deletes the
# log past it is caught up by the snapshot, streamed in chunks over the
# peer port, after it restarts (same DIGEST, its log restarting after the
# snapshot), also after being killed at the end of a first install; and it
# then survives its own restart from the installed snapshot. A snapshot larger than the transfer window (4 chunks of 64 KiB)
# makes the flow control do its work.
import os
import sys
import unittest

import kvtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stage5"))
from raftcluster import SCALE, RaftCluster  # noqa: E402


def info(cluster, i):
    return kvtest.parse_info(cluster.command(i, "INFO").decode())


@unittest.skipIf(kvtest.UNDER_VALGRIND, "8,000 writes on three valgrind nodes take minutes; ASan runs it")
class InstallSnapshot(kvtest.ServerTestCase):

    def test_stopped_follower_catches_up_by_snapshot(self):
        c = RaftCluster(extra=["--snapshot-entries", "300", "--wal-segment-bytes", "16384"])
        self.addCleanup(c.close)
        c.start()
        lead = c.wait_leader(10 * SCALE)
        behind = [i for i in c.nodes if i != lead][0]
        conn = c.nodes[lead].connect()
        self.addCleanup(conn.close)
        value = "v" * 300  # 2,000 keys of 300 bytes: a snapshot of about 650 KiB
        for start in range(0, 2000, 500):
            conn.send(b"".join(kvtest.encode_command("SET", "k%d" % i, value) for i in range(start, start + 500)))
            self.assertTrue(all(r == "OK" for r in conn.read_replies(500, timeout=60 * SCALE)))
        c.wait_same_digest()
        c.nodes[behind].stop()
        # Overwrite every key (so the log moves on) until the leader has
        # deleted the entries the stopped node would need.
        for r in range(3):
            conn.send(b"".join(kvtest.encode_command("SET", "k%d" % i, "%s-%d" % (value, r)) for i in range(2000)))
            self.assertTrue(all(x == "OK" for x in conn.read_replies(2000, timeout=60 * SCALE)))
        before = info(c, lead)
        self.assertGreater(int(before["raft_log_first_index"]), 2100)
        # Killed at the end of its first install (the whole file received,
        # not yet renamed): the restart removes the partial file and the
        # leader sends the snapshot again.
        c.nodes[behind].env = dict(os.environ, KV_TEST_CRASH_AT="install-before-rename")
        c.nodes[behind].start()
        self.assertEqual(c.nodes[behind].wait(timeout=30 * SCALE), -9)
        self.assertIn("KV_TEST_CRASH_AT=install-before-rename", c.nodes[behind].log())
        c.nodes[behind].env = None
        c.nodes[behind].start()
        digest = c.wait_same_digest(timeout=30)
        self.assertIn("left by a snapshot that did not finish", c.nodes[behind].log())
        self.assertIn("sending it snapshot", c.nodes[lead].log())
        self.assertIn("sent to node %d" % behind, c.nodes[lead].log())
        self.assertIn("received snapshot", c.nodes[behind].log())
        self.assertIn("installed snapshot", c.nodes[behind].log())
        i = info(c, behind)
        self.assertEqual(i["raft_snapshots_received"], "1")
        self.assertGreaterEqual(int(info(c, lead)["raft_snapshots_sent"]), 1)
        self.assertGreater(int(i["raft_snapshot_index"]), 2100)
        self.assertGreater(int(i["wal_first_index"]), 2100)
        # Writes after the install reach it by appends; it restarts from
        # the installed snapshot.
        self.assertEqual(conn.command("SET", "after", "install"), "OK")
        c.wait_same_digest()
        c.nodes[behind].stop()
        c.nodes[behind].start()
        self.assertIn("loaded snapshot", c.nodes[behind].log())
        self.assertNotEqual(c.wait_same_digest(timeout=30), digest)  # "after" was written since
        self.assertEqual(c.command(lead, "GET", "k1999"), ("%s-2" % value).encode())
        if os.environ.get("KV_SHOW_LOGS"):
            for n in (lead, behind):
                print("\n".join(x for x in c.nodes[n].log().splitlines() if "snapshot" in x or "WAL" in x))


if __name__ == "__main__":
    kvtest.main()
