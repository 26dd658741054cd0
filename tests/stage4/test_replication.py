# test_replication.py - leader and followers as real processes on loopback:
# streaming, a restarted follower's catch-up, the full copy after the leader
# compacted past a follower, an old leader with divergent writes rejoining,
# promotion without a full copy for the other followers, READONLY and
# kvcli's redirect, and ROLE/INFO as a user reads them. Every test that
# writes ends with every node's DIGEST equal to the leader's.
import os
import re
import subprocess

import kvtest

from cluster import ClusterCase, secs

KVCLI = os.path.join(kvtest.BIN_DIR, "kvcli-stage4")


def counters(node):
    i = node.info()
    return {k: int(i[k]) for k in ("full_copies_sent", "continuations_sent", "full_copies_received")}


def kv(prefix, n, pad=0):
    """n pairs prefix:i -> prefix-i, values padded with pad x's."""
    return [("%s:%d" % (prefix, i), "%s-%d" % (prefix, i) + "x" * pad) for i in range(n)]


class Streaming(ClusterCase):
    def test_writes_on_the_leader_appear_on_every_follower(self):
        leader = self.node("leader")
        fs = [self.node("f%d" % i, replicaof=leader) for i in (1, 2)]
        self.wait_acked(leader, 2, index=0)
        self.write(leader, kv("a", 300))
        with leader.connect() as c:
            self.assertEqual(c.command("DEL", "a:7"), 1)
        for f in fs:
            kvtest.wait_for(lambda: f.cmd("GET", "a:299") == b"a-299", timeout=secs(20),
                            message="a:299 on %s" % f.name)
        self.assert_converged(leader, fs)
        for f in fs:
            self.assertIsNone(f.cmd("GET", "a:7"))
            self.assertEqual(f.cmd("DIGEST").split()[1], b"keys=299")
        # The leader's INFO shows both caught up, with no lag left.
        last = leader.log_index()
        for f in self.wait_acked(leader, 2):
            self.assertEqual((int(f["acked_index"]), int(f["lag_records"])), (last, 0))


class CatchUp(ClusterCase):
    def test_restarted_follower_continues_from_its_log(self):
        leader = self.node("leader")
        f = self.node("f", replicaof=leader)
        self.write(leader, kv("before", 50))
        self.wait_acked(leader, 1)
        self.assertEqual(f.stop(), 0)
        self.write(leader, kv("missed", 50))
        with leader.connect() as c:
            self.assertEqual(c.command("DEL", "before:0"), 1)
        self.assertFalse(f.running())
        before = counters(leader)
        f.start()
        self.assert_converged(leader, [f])
        after = counters(leader)
        self.assertEqual(after["continuations_sent"], before["continuations_sent"] + 1)
        self.assertEqual(after["full_copies_sent"], before["full_copies_sent"])
        self.assertEqual(counters(f)["full_copies_received"], 0)
        self.assertIn("after index 50", f.log())
        self.assertEqual(f.cmd("GET", "missed:49"), b"missed-49")


class FullCopyAfterCompaction(ClusterCase):
    def test_follower_behind_the_base_gets_a_full_copy(self):
        leader = self.node("leader", args=["--wal-segment-bytes", "4096"])
        f = self.node("f", replicaof=leader)
        self.write(leader, kv("old", 40))
        self.wait_acked(leader, 1)
        f_index = f.log_index()
        self.assertEqual(f.stop(), 0)
        self.write(leader, kv("new", 40, pad=200))
        with leader.connect() as c:
            self.assertEqual(c.command("DEL", "old:1"), 1)
            self.assertEqual(c.command("COMPACT"), "Background compaction started")
        kvtest.wait_for(lambda: leader.info()["compactions_done"] == "1"
                        and leader.info()["compaction_in_progress"] == "0",
                        timeout=secs(20), message="the leader's compaction")
        self.write(leader, kv("after", 5))  # and a tail after the base
        self.assertGreater(leader.log_index(), f_index)
        before = counters(leader)
        f.start()
        self.assert_converged(leader, [f])
        after = counters(leader)
        self.assertEqual(after["full_copies_sent"], before["full_copies_sent"] + 1)
        self.assertEqual(after["continuations_sent"], before["continuations_sent"])
        self.assertEqual(counters(f)["full_copies_received"], 1)
        self.assertIsNone(f.cmd("GET", "old:1"))
        self.assertRegex(f.log(), r"full copy installed: \d+ keys as of index \d+")


class DivergentOldLeader(ClusterCase):
    def test_old_leader_rejoins_and_loses_its_divergent_write(self):
        old = self.node("old")
        new = self.node("new", replicaof=old)
        self.write(old, kv("common", 20))
        self.wait_acked(old, 1)
        # A follower never busy-polls (replication.c, repl_follow); its role decides, not the flag.
        self.assertEqual((old.info()["busy_poll_us"], new.info()["busy_poll_us"]), ("100", "0"))
        self.assertEqual(new.cmd("REPLICAOF", "NO", "ONE"), "OK")
        self.wait_role(new, "leader")
        self.assertEqual(new.info()["busy_poll_us"], "100")
        # Both are leaders now: each takes a write the other never sees.
        self.assertEqual(old.cmd("SET", "divergent", "only-on-old"), "OK")
        self.assertEqual(new.cmd("SET", "fresh", "on-new"), "OK")
        self.assertEqual(old.info()["role"], "leader")
        before = counters(new)
        self.assertEqual(old.cmd("REPLICAOF", "127.0.0.1", str(new.peer_port)), "OK")
        self.assertEqual(old.info()["busy_poll_us"], "0")
        self.assert_converged(new, [old])
        self.assertIsNone(old.cmd("GET", "divergent"))
        self.assertEqual(old.cmd("GET", "fresh"), b"on-new")
        self.assertEqual(counters(new)["full_copies_sent"], before["full_copies_sent"] + 1)
        self.assertEqual(counters(old)["full_copies_received"], 1)
        self.assertIn("needs a full copy", new.log())
        # and it now refuses writes, naming the new leader
        reply = old.cmd("SET", "k", "v")
        self.assertIsInstance(reply, kvtest.RespError)
        self.assertIn("leader=127.0.0.1:%d" % new.port, reply.text)


class Promotion(ClusterCase):
    def test_other_follower_continues_from_the_promoted_one(self):
        leader = self.node("leader")
        a = self.node("a", replicaof=leader)
        b = self.node("b", replicaof=leader)
        self.write(leader, kv("x", 30))
        self.wait_acked(leader, 2)
        self.assertEqual(leader.stop(), 0)  # the leader is gone for good
        old_id = a.info()["log_id"]
        self.assertEqual(a.cmd("REPLICAOF", "NO", "ONE"), "OK")
        ia = a.info()
        self.assertEqual((ia["role"], ia["log_id2"], ia["log_id2_end_index"]), ("leader", old_id, "30"))
        self.assertNotEqual(ia["log_id"], old_id)
        self.assertEqual(b.cmd("REPLICAOF", "127.0.0.1", str(a.peer_port)), "OK")
        self.wait_acked(a, 1)
        c = counters(a)
        self.assertEqual((c["continuations_sent"], c["full_copies_sent"]), (1, 0))
        self.write(a, kv("y", 30))
        self.assert_converged(a, [b])
        self.assertEqual(b.cmd("GET", "y:29"), b"y-29")
        self.assertEqual(counters(b)["full_copies_received"], 0)
        self.assertEqual(b.info()["log_id"], a.info()["log_id"])


class ReadOnly(ClusterCase):
    def test_follower_refuses_writes_and_kvcli_follows_the_redirect(self):
        leader = self.node("leader")
        f = self.node("f", replicaof=leader)
        self.wait_role(f, "follower", link="up")
        reply = f.cmd("SET", "k", "v")
        self.assertEqual(reply, kvtest.RespError(
            "READONLY You can't write against a read only replica. leader=127.0.0.1:%d" % leader.port))
        self.assertError(f.cmd("DEL", "k"), "READONLY")
        p = subprocess.run([KVCLI, "-p", str(f.port), "set", "k", "via-redirect"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=secs(20), env=kvtest.sanitizer_env())
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        kvtest.assert_no_sanitizer_reports(out, "kvcli")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("-> Redirected to 127.0.0.1:%d" % leader.port, out)
        self.assertIn("OK", p.stdout.decode())
        self.assertEqual(leader.cmd("GET", "k"), b"via-redirect")
        self.assert_converged(leader, [f])
        self.assertEqual(f.cmd("GET", "k"), b"via-redirect")


class RoleAndInfo(ClusterCase):
    def test_role_and_info_replication_fields(self):
        leader = self.node("leader")
        f = self.node("f", replicaof=leader)
        self.write(leader, kv("r", 10))
        self.assert_converged(leader, [f])
        self.wait_acked(leader, 1)
        last = leader.log_index()
        self.assertEqual(leader.cmd("ROLE"), [b"leader", last, [[b"127.0.0.1", str(f.port).encode(),
                                                                   str(last).encode()]]])
        kvtest.wait_for(lambda: f.cmd("ROLE") == [b"follower", b"127.0.0.1", leader.peer_port, b"connected", last],
                        timeout=secs(10), message="the follower's ROLE")
        li, fi = leader.info(), f.info()
        self.assertEqual(li["role"], "leader")
        self.assertEqual(li["connected_followers"], "1")
        self.assertRegex(li["log_id"], r"^[0-9a-f]{40}$")
        self.assertEqual(li["log_index"], str(last))
        self.assertRegex(li["follower0"], r"^addr=127\.0\.0\.1:%d,peer=127\.0\.0\.1:\d+,state=streaming,"
                         r"acked_index=%d,lag_records=0,lag_ms=\d+$" % (f.port, last))
        self.assertEqual(fi["role"], "follower")
        self.assertEqual((fi["leader_host"], fi["leader_port"], fi["leader_client_addr"]),
                         ("127.0.0.1", str(leader.peer_port), "127.0.0.1:%d" % leader.port))
        self.assertEqual((fi["leader_link_status"], fi["leader_sync_in_progress"]), ("up", "0"))
        self.assertLessEqual(int(fi["leader_last_io_seconds_ago"]), secs(2))
        self.assertEqual((fi["log_id"], fi["log_index"]), (li["log_id"], str(last)))
        self.assertEqual(fi["connected_followers"], "0")
        for k in ("min_followers_to_write", "min_followers_max_lag", "full_copies_sent", "continuations_sent",
                  "full_copies_received", "refused_peers", "log_id2", "log_id2_end_index"):
            self.assertIn(k, li)
            self.assertIn(k, fi)
        # The leader gone: the follower's link goes down, and says since when.
        self.assertEqual(leader.stop(), 0)
        self.wait_role(f, "follower", link="down")
        self.assertIn("leader_link_down_since_seconds", f.info())
        self.assertIn(f.cmd("ROLE")[3], (b"connect", b"handshake"))
        self.assertTrue(re.match(rb"^[0-9a-f]{32} keys=10$", f.digest()), f.digest())


if __name__ == "__main__":
    kvtest.main()
