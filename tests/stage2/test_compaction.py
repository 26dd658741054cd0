# test_compaction.py - compaction shrinks the log and changes nothing a
# client can see, by hand (COMPACT) and automatically; kill -9 while it runs
# loses nothing; and every fsync policy survives a graceful restart.
import os

import kvtest


def info(conn):
    return kvtest.parse_info(conn.command("INFO").decode())


class Compaction(kvtest.ServerTestCase):

    def snapshot(self, c, keys):
        return {k: c.command("GET", k) for k in keys}

    def wait_compactions(self, c, n):
        kvtest.wait_for(lambda: int(info(c)["compactions_done"]) >= n and info(c)["compaction_in_progress"] == "0",
                        timeout=30, message="%d compactions" % n)

    def test_compact_by_hand_keeps_data_and_shrinks_log(self):
        srv = self.start_server()
        c = srv.connect()
        keys = ["k%d" % i for i in range(50)]
        for round_no in range(40):  # 2000 records for 50 live keys
            for k in keys:
                c.command("SET", k, "%s-%d" % (k, round_no))
        c.command("DEL", "k0")
        before = self.snapshot(c, keys)
        wal_before = int(info(c)["wal_bytes"])
        reply = c.command("COMPACT")
        self.assertNotIsInstance(reply, kvtest.RespError)
        self.wait_compactions(c, 1)
        self.assertEqual(self.snapshot(c, keys), before)
        wal_after = int(info(c)["wal_bytes"])
        self.assertLess(wal_after, wal_before / 10)
        # Writes after compaction land in the new segment and survive restart.
        c.command("SET", "after", "yes")
        c.close()
        self.assertEqual(srv.stop(), 0)
        srv.start()
        c = srv.connect()
        self.assertEqual(self.snapshot(c, keys), before)
        self.assertEqual(c.command("GET", "after"), b"yes")
        self.assertEqual(c.command("DBSIZE"), 50)
        wal = os.listdir(os.path.join(srv.tmp, "data", "wal"))
        self.assertEqual(len([n for n in wal if n.startswith("base-")]), 1, wal)
        self.assertFalse([n for n in wal if n.endswith(".tmp")], wal)

    def test_nothing_to_compact(self):
        c = self.connect(self.start_server())
        self.assertEqual(c.command("COMPACT"), "Nothing to compact")

    def test_automatic_compaction(self):
        srv = self.start_server(["--compact-min-bytes", "64k"])
        c = srv.connect()
        for i in range(3000):
            c.command("SET", "hot", "value-%d" % i)
        self.wait_compactions(c, 1)
        self.assertIn("compacting", srv.log())
        self.assertEqual(c.command("GET", "hot"), b"value-2999")

    def test_kill9_during_compaction_loses_nothing(self):
        srv = self.start_server(["--fsync", "everysec"])
        c = srv.connect()
        value = "x" * 200
        # Enough data that the child takes a while to write the base.
        for batch in range(20):
            c.send(b"".join(kvtest.encode_command("SET", "key%d" % (batch * 1000 + i), value) for i in range(1000)))
            c.read_replies(1000, timeout=30)
        for kill_no in range(3):
            c.command("COMPACT")
            c.command("SET", "during%d" % kill_no, "1")
            srv.kill9()
            srv.start()
            c = srv.connect()
            self.assertEqual(c.command("DBSIZE"), 20000 + kill_no + 1)
            self.assertEqual(c.command("GET", "key19999"), value.encode())
            self.assertEqual(c.command("GET", "during%d" % kill_no), b"1")
        # And a compaction after all that completes normally.
        c.command("COMPACT")
        self.wait_compactions(c, 1)
        self.assertEqual(c.command("DBSIZE"), 20003)


class Durability(kvtest.ServerTestCase):

    def test_every_policy_survives_graceful_restart(self):
        for policy in ("always", "everysec", "no"):
            with self.subTest(policy=policy):
                srv = self.start_server(["--fsync", policy])
                c = srv.connect()
                self.assertEqual(info(c)["fsync"], policy)
                c.send(b"".join(kvtest.encode_command("SET", "k%d" % i, "v%d" % i) for i in range(2000)))
                c.read_replies(2000)
                c.command("DEL", "k7")
                c.close()
                self.assertEqual(srv.stop(), 0)
                self.assertIn("WAL flushed and synced", srv.log())
                srv.start()
                c = srv.connect()
                self.assertEqual(c.command("DBSIZE"), 1999)
                self.assertIsNone(c.command("GET", "k7"))
                self.assertEqual(c.command("GET", "k1999"), b"v1999")
                self.assertEqual(int(info(c)["records_replayed_at_start"]), 2001)

    def test_second_server_on_same_dir_is_refused(self):
        srv = self.start_server()
        # The suite's own flags too (a later stage's --peer-port 0); the
        # --data-dir given here comes last, so it wins.
        other = kvtest.Server(["--data-dir", os.path.join(srv.tmp, "data")])
        self.addCleanup(other.close)
        with self.assertRaises(AssertionError):
            other.start(timeout=10)
        self.assertEqual(other.returncode, 1)
        self.assertIn("is in use by another process", other.log())
        self.assertStillServes(srv)

    def test_segments_rotate_and_replay(self):
        srv = self.start_server(["--wal-segment-bytes", "4096"])
        c = srv.connect()
        for i in range(500):
            c.command("SET", "r%d" % i, "v" * 20)
        self.assertGreater(int(info(c)["wal_segments"]), 3)
        c.close()
        srv.stop()
        srv.start()
        c = srv.connect()
        self.assertEqual(c.command("DBSIZE"), 500)
        self.assertEqual(int(info(c)["records_replayed_at_start"]), 500)


if __name__ == "__main__":
    kvtest.main()
