# test_install_faults.py - InstallSnapshot interrupted, between real
# stage6-snapshots processes behind fault proxies (stage 5's faultrun.py):
# a follower stopped while the cluster compacts its log past it restarts
# and is sent a snapshot of about 2 MiB, slowed by a delay on the leader's
# link to it so that the transfer lasts a few seconds; the test waits for
# the transfer to be under way (INFO raft_snapshot_receiving and
# raft_snapshot_sending, polled) and then
#   - kills -9 the leader: the follower ends with the new leader's snapshot
#     (one install, not the old leader's half) and its log, same DIGEST,
#     every acknowledged write present; and, when the new leader still has
#     the log (it never snapshots), the follower is caught up by appends and
#     deletes the half-received file instead of keeping it open;
#   - kills -9 the follower: its half-received file is on disk but never
#     used; restarted cut off, it removes the file and serves its own old
#     snapshot; healed, it is sent the snapshot again and catches up;
#   - blocks the leader's link to the follower, no node dying and no term
#     changing: after 10 s without a chunk the follower drops the half file
#     (the sender will not finish it); healed, the held chunks of the
#     dropped transfer change nothing and a new transfer catches it up.
import os
import sys
import unittest

import kvtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stage5"))
from faultrun import FaultCase, secs  # noqa: E402

KEYS = 2000
VALUE = "v" * 1000  # 2,000 keys of 1,000 bytes: a snapshot of about 2 MiB, 32 chunks
DELAY_MS = 300  # on the leader's link to the follower: 4 chunks in flight per 300 ms


def info(c, i):
    return c.nodes[i].info()


def set_many(test, c, node, keys, value, acked):
    """Pipelined SETs on node, each of which must be acknowledged."""
    with c.nodes[node].connect(timeout=secs(60)) as conn:
        for start in range(0, len(keys), 500):
            batch = keys[start:start + 500]
            conn.send(b"".join(kvtest.encode_command("SET", k, value) for k in batch))
            replies = conn.read_replies(len(batch), timeout=secs(60))
            test.assertEqual(replies, ["OK"] * len(batch))
            acked.update((k, value) for k in batch)


def check_acked(test, c, node, acked):
    """Every acknowledged write is on node (a leader: followers redirect
    reads), with its value."""
    keys = sorted(acked)
    with c.nodes[node].connect(timeout=secs(60)) as conn:
        conn.send(b"".join(kvtest.encode_command("GET", k) for k in keys))
        got = conn.read_replies(len(keys), timeout=secs(60))
    lost = [k for k, v in zip(keys, got) if v != acked[k].encode()]
    test.assertEqual(lost, [], "acknowledged writes lost or changed on node %d" % node)


def snap_files(c, i):
    return sorted(os.listdir(os.path.join(c.nodes[i].tmp, "data", "snap")))


@unittest.skipIf(kvtest.UNDER_VALGRIND, "2,000 writes of 1 KB and a 2 MiB transfer on valgrind take minutes; "
                 "ASan runs it")
class InterruptedInstall(FaultCase):

    def behind_the_log(self, c, lead, behind, acked, compacting=None):
        """Stops behind, writes until the log of every other node (or of
        those in compacting) starts after behind's last entry, restarts
        behind with the leader's link to it delayed, and returns once the
        snapshot transfer to it is under way."""
        last = int(info(c, behind)["raft_last_index"])
        c.stop(behind)
        set_many(self, c, lead, ["k%d" % i for i in range(KEYS)], VALUE, acked)
        for i in compacting or c.running():
            kvtest.wait_for(lambda: int(info(c, i)["raft_log_first_index"]) > last + 1, timeout=secs(20),
                            message="node %d to compact its log past entry %d" % (i, last))
        c.delay(DELAY_MS, src=lead, dst=behind)
        c.restart(behind)

        def under_way():
            f, l = info(c, behind), info(c, lead)
            if f["raft_snapshot_receiving"] != "1" or l["raft_snapshot_sending"] != "1":
                return None
            got = int(f["raft_snapshot_receiving_bytes"])
            return got if 0 < got < int(l["raft_snapshot_bytes"]) else None
        got = kvtest.wait_for(under_way, timeout=secs(20), interval=0.02,
                              message="a snapshot transfer from node %d to node %d under way" % (lead, behind))
        c.note("transfer under way: %d bytes received" % got, behind)
        self.assertEqual(info(c, behind)["raft_snapshots_received"], "0")
        return got

    def settled(self):
        """A cluster snapshotting every 300 entries, its leader, the two
        followers, and the acknowledged writes (a first few, on every node)."""
        c = self.cluster(extra=["--snapshot-entries", "300"])
        lead = c.wait_leader(self.election_bound(c))
        acked = {}
        set_many(self, c, lead, ["early%d" % i for i in range(20)], "e", acked)
        c.wait_same_digest()
        return c, lead, [i for i in c.nodes if i != lead], acked

    def test_leader_killed_mid_transfer(self):
        c, lead, (behind, other), acked = self.settled()
        self.behind_the_log(c, lead, behind, acked)
        c.kill9(lead)
        # The other follower, whose log is complete, wins; the one behind
        # cannot (its log is older). An election takes what the timeouts say
        # whatever the code under test, so its bound is not shortened by
        # secs() (a lab build's KV_DEADLINE_SCALE of 0.25 made a correct
        # solution fail here).
        new = c.wait_leader_among([behind, other], timeout=self.election_bound(c))
        self.assertEqual(new, other)
        digest = c.wait_same_digest(timeout=30)
        # One install, from the new leader: the old leader's half transfer
        # was dropped, not installed.
        f = info(c, behind)
        self.assertEqual(f["raft_snapshots_received"], "1")
        self.assertEqual(f["raft_snapshot_receiving"], "0")
        self.assertIn("node %d: node %d is behind the log's first entry: sending it snapshot" % (new, behind),
                      c.nodes[new].log())
        self.assertIn("sent to node %d" % behind, c.nodes[new].log())
        self.assertNotIn("sent to node %d" % behind, c.nodes[lead].log())
        name = "snap-%016x-%016x.snap" % (int(f["raft_snapshot_index"]), int(f["raft_snapshot_term"]))
        self.assertEqual(snap_files(c, behind), [name])
        self.assertIn(name, snap_files(c, new))
        self.assertGreater(int(f["raft_snapshot_index"]), 20)
        self.assertEqual(f["raft_log_first_index"], str(int(f["raft_snapshot_index"]) + 1))
        check_acked(self, c, new, acked)
        # Then the log: writes after the install reach it by appends.
        set_many(self, c, new, ["after%d" % i for i in range(50)], "a", acked)
        self.assertNotEqual(c.wait_same_digest(timeout=20), digest)
        self.assertEqual(info(c, behind)["raft_snapshots_received"], "1")
        # The old leader comes back and follows: the three agree.
        c.delay(0)
        c.restart(lead)
        self.assertEqual(c.wait_leader(self.election_bound(c)), new)
        c.wait_same_digest(timeout=30)

    def test_leader_killed_mid_transfer_new_leader_has_the_log(self):
        # Node 3 never snapshots, so it keeps the whole log, and its long
        # election timeout keeps it from leading first.
        c = self.cluster(extra=["--snapshot-entries", "300"],
                         node_extra={3: ["--snapshot-entries", "0", "--election-timeout-ms", "1500"]})
        lead = c.wait_leader(self.election_bound(c))
        self.assertNotEqual(lead, 3, "node 3's election timeout is three times the others'")
        behind, other = [i for i in (1, 2) if i != lead][0], 3
        acked = {}
        set_many(self, c, lead, ["early%d" % i for i in range(20)], "e", acked)
        c.wait_same_digest()
        self.behind_the_log(c, lead, behind, acked, compacting=[lead])
        self.assertEqual(info(c, other)["raft_log_first_index"], "1")
        c.kill9(lead)
        new = c.wait_leader_among([behind, other], timeout=self.election_bound(c) + 3)
        self.assertEqual(new, other)
        # Caught up by appends: no snapshot installed, and the half file of
        # the old leader's transfer is dropped (not kept open until some
        # later transfer or restart).
        c.wait_same_digest(timeout=30)
        kvtest.wait_for(lambda: info(c, behind)["raft_snapshot_receiving"] == "0"
                        and "recv.tmp" not in snap_files(c, behind), timeout=secs(5),
                        message="node %d to drop the half-received snapshot" % behind)
        self.assertEqual(info(c, behind)["raft_snapshots_received"], "0")
        self.assertIn("failed: a newer term began", c.nodes[behind].log())
        check_acked(self, c, new, acked)
        set_many(self, c, new, ["after%d" % i for i in range(50)], "a", acked)
        c.delay(0)
        c.restart(lead)
        self.assertEqual(c.wait_leader(self.election_bound(c)), new)
        c.wait_same_digest(timeout=30)

    def test_follower_killed_mid_install(self):
        c, lead, (behind, _), acked = self.settled()
        # A snapshot of its own, so that "old data" is something to check.
        self.assertEqual(c.command(behind, "SNAPSHOT"), "OK")
        old_digest = c.command(behind, "DIGEST")
        old_index = info(c, behind)["raft_snapshot_index"]
        before = snap_files(c, behind)
        self.behind_the_log(c, lead, behind, acked)
        c.kill9(behind)
        # On disk: the half-received file, and no new snapshot.
        files = snap_files(c, behind)
        self.assertIn("recv.tmp", files)
        self.assertEqual([x for x in files if x != "recv.tmp"], before)
        self.assertLess(os.path.getsize(os.path.join(c.nodes[behind].tmp, "data", "snap", "recv.tmp")),
                        int(info(c, lead)["raft_snapshot_bytes"]))
        # Restarted cut off: the half file is removed, never loaded; the
        # node serves its own old snapshot.
        c.isolate(behind)
        c.restart(behind)
        self.assertIn("recv.tmp, left by a snapshot that did not finish", c.nodes[behind].log())
        self.assertNotIn("recv.tmp", snap_files(c, behind))
        f = info(c, behind)
        self.assertEqual((f["raft_snapshot_index"], f["raft_snapshots_received"], f["raft_snapshot_receiving"]),
                         (old_index, "0", "0"))
        self.assertEqual(c.command(behind, "DIGEST"), old_digest)
        # Healed (and undelayed): sent the snapshot again, it catches up.
        c.delay(0)
        c.heal()
        digest = c.wait_same_digest(timeout=30)
        f = info(c, behind)
        self.assertEqual(f["raft_snapshots_received"], "1")
        self.assertGreater(int(f["raft_snapshot_index"]), int(old_index))
        self.assertNotIn("recv.tmp", snap_files(c, behind))
        # Same DIGEST as the leader, which holds every acknowledged write.
        self.assertEqual(c.command(behind, "DIGEST"), digest)
        check_acked(self, c, lead, acked)

    def test_stalled_transfer_dropped_without_a_newer_term(self):
        c, lead, (behind, _), acked = self.settled()
        self.behind_the_log(c, lead, behind, acked)
        term = c.term(lead)
        c.block(lead, behind)
        # The follower's stall timer is 10 s; the sender's is as long, and
        # pre-votes keep the term: only the timer can end the transfer. The
        # timer's 10 s are not the code's speed, so secs() (shortened in a
        # lab build) scales only the margin.
        kvtest.wait_for(lambda: info(c, behind)["raft_snapshot_receiving"] == "0"
                        and "recv.tmp" not in snap_files(c, behind), timeout=12 + secs(10),
                        message="node %d to drop a transfer that stalled" % behind)
        self.assertIn("failed: no chunk for a while", c.nodes[behind].log())
        self.assertEqual((c.term(lead), c.term(behind)), (term, term))
        self.assertEqual(info(c, behind)["raft_snapshots_received"], "0")
        c.delay(0)
        c.heal()
        digest = c.wait_same_digest(timeout=30)
        f = info(c, behind)
        self.assertEqual((f["raft_snapshots_received"], f["raft_snapshot_receiving"]), ("1", "0"))
        self.assertNotIn("recv.tmp", snap_files(c, behind))
        self.assertEqual(c.command(behind, "DIGEST"), digest)
        check_acked(self, c, lead, acked)


if __name__ == "__main__":
    kvtest.main()
