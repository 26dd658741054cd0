# test_snapshots.py - stage 6 snapshots as a user sees them, on a one-node
# server: SNAPSHOT then a restart keeps every key and the session table (a
# retried write is still answered from it); clients are served while the
# forked child writes, and a second SNAPSHOT meanwhile is refused;
# automatic snapshots by --snapshot-entries delete the log they cover and
# keep two snapshots; a damaged newest snapshot (flipped byte, cut file) is
# refused with its file and offset named and the previous one is used; and
# a crash at each point of taking a snapshot restarts with every
# acknowledged write (KV_TEST_CRASH_AT makes the server kill itself there).
# --snapshot-rate holds the writer to its bytes a second, and INFO counts
# the time writers ran.
import glob
import os

import kvtest

SLOW = 25 if kvtest.UNDER_VALGRIND else 1


def info(c):
    return kvtest.parse_info(c.command("INFO").decode())


def snap_files(srv, pattern="*.snap"):
    return sorted(glob.glob(os.path.join(srv.tmp, "data", "snap", pattern)))


def write_batch(c, keys, tag):
    """SET each key to key-tag, pipelined; every reply must be OK."""
    c.send(b"".join(kvtest.encode_command("SET", k, "%s-%s" % (k, tag)) for k in keys))
    replies = c.read_replies(len(keys), timeout=30 * SLOW)
    assert all(r == "OK" for r in replies), replies[:5]
    return {k: ("%s-%s" % (k, tag)).encode() for k in keys}


class Snapshots(kvtest.ServerTestCase):

    def start(self, *flags, env=None):
        extra = {} if env is None else dict(os.environ, **env)
        return self.start_server(["--data-dir", "{tmp}/data"] + list(flags), env=extra or None)

    def check_data(self, srv, expected):
        c = srv.connect()
        for k, v in expected.items():
            self.assertEqual(c.command("GET", k), v, k)
        self.assertEqual(c.command("DBSIZE"), len(expected))
        c.close()

    def test_snapshot_then_restart_keeps_data_and_sessions(self):
        srv = self.start("--snapshot-entries", "0")
        c = srv.connect()
        expected = write_batch(c, ["k%d" % i for i in range(200)], "a")
        sid = c.command("SESSION", "OPEN")
        self.assertEqual(c.command("SEQ", sid, 1, "INCR", "counter"), 1)
        expected["counter"] = b"1"
        self.assertEqual(info(c)["latest_fork_usec"], "0")
        self.assertEqual(c.command("SNAPSHOT"), "OK")
        i = info(c)
        self.assertGreater(int(i["latest_fork_usec"]), 0)  # fork() always takes microseconds
        self.assertRegex(srv.log(), r"snapshot started \(child pid \d+, fork %s us\)" % i["latest_fork_usec"])
        self.assertGreater(int(i["raft_snapshot_index"]), 200)
        self.assertEqual(int(i["raft_snapshots_taken"]), 1)
        self.assertEqual(i["raft_snapshot_in_progress"], "0")
        files = snap_files(srv)
        self.assertEqual(len(files), 1, files)
        self.assertEqual(int(i["raft_snapshot_bytes"]), os.path.getsize(files[0]))
        self.assertEqual(c.command("SNAPSHOT"), "Nothing new to snapshot")
        expected.update(write_batch(c, ["k%d" % i for i in range(50)], "b"))  # after the snapshot: in the log
        digest = c.command("DIGEST")
        c.close()
        self.assertEqual(srv.stop(), 0)
        srv.start()
        self.assertIn("loaded snapshot", srv.log())
        self.check_data(srv, expected)  # GET waits for the log after the snapshot to apply again; DIGEST does not
        c = srv.connect()
        self.assertEqual(c.command("DIGEST"), digest)
        # The session survived in the snapshot: the retry is answered from it, not applied again.
        self.assertEqual(c.command("SEQ", sid, 1, "INCR", "counter"), 1)
        self.assertEqual(c.command("GET", "counter"), b"1")
        self.assertEqual(c.command("SEQ", sid, 2, "INCR", "counter"), 2)

    def test_log_lost_behind_snapshot_restarts_after_it(self):
        """A snapshot newer than the log's end (the log's tail lost, as
        --fsync no can lose it in a power cut, the snapshot fsynced): the
        log starts over after the snapshot and nothing the snapshot holds
        is lost."""
        srv = self.start("--snapshot-entries", "0", "--fsync", "no")
        c = srv.connect()
        expected = write_batch(c, ["k%d" % i for i in range(100)], "a")
        self.assertEqual(c.command("SNAPSHOT"), "OK")
        index = int(info(c)["raft_snapshot_index"])
        c.close()
        self.assertEqual(srv.stop(), 0)
        wal = os.path.join(srv.tmp, "data", "wal")
        for name in os.listdir(wal):
            os.unlink(os.path.join(wal, name))
        srv.start()
        self.assertIn("WAL: emptied; the next record is %d" % (index + 1), srv.log())
        c = srv.connect()
        self.assertEqual(c.command("SET", "new", "1"), "OK")
        expected["new"] = b"1"
        self.check_data(srv, expected)
        c.close()
        self.assertEqual(srv.stop(), 0)
        srv.start()
        self.check_data(srv, expected)

    def test_clients_served_while_snapshot_runs_and_second_is_refused(self):
        srv = self.start("--snapshot-entries", "0", env={"KV_TEST_SNAPSHOT_SLOW_MS": "1500"})
        c = srv.connect()
        expected = write_batch(c, ["k%d" % i for i in range(100)], "a")
        waiting = srv.connect()
        waiting.send_command("SNAPSHOT")
        kvtest.wait_for(lambda: info(c)["raft_snapshot_in_progress"] == "1", timeout=10 * SLOW,
                        message="a snapshot in progress")
        self.assertError(c.command("SNAPSHOT"), "ERR a snapshot is already being written")
        # The child writes; the parent keeps serving reads and writes.
        expected.update(write_batch(c, ["during%d" % i for i in range(20)], "x"))
        self.assertEqual(info(c)["raft_snapshot_in_progress"], "1")
        self.assertEqual(waiting.read_reply(timeout=30 * SLOW), "OK")
        self.check_data(srv, expected)

    def test_snapshot_rate_is_kept_and_writing_time_counted(self):
        rate = 40000
        srv = self.start("--snapshot-entries", "0", "--snapshot-rate", str(rate))
        c = srv.connect()
        keys = ["k%d" % i for i in range(100)]
        c.send(b"".join(kvtest.encode_command("SET", k, "v" * 1000) for k in keys))
        self.assertEqual(c.read_replies(len(keys), timeout=30 * SLOW), ["OK"] * len(keys))
        self.assertEqual(info(c)["raft_snapshot_writing_ms_total"], "0")
        waiting = srv.connect()
        waiting.send_command("SNAPSHOT")
        kvtest.wait_for(lambda: int(info(c)["raft_snapshot_writing_ms_total"]) > 0, timeout=10 * SLOW,
                        message="a writer's time counted while it runs")
        self.assertEqual(info(c)["raft_snapshot_in_progress"], "1")
        self.assertEqual(waiting.read_reply(timeout=60 * SLOW), "OK")
        i = info(c)
        size = int(i["raft_snapshot_bytes"])
        self.assertGreater(size, 100 * 1000)
        # About 100 KB at 40 KB a second: no sooner than the rate allows.
        self.assertGreaterEqual(int(i["raft_snapshot_duration_ms"]), size * 1000 // rate)
        self.assertGreaterEqual(int(i["raft_snapshot_writing_ms_total"]), int(i["raft_snapshot_duration_ms"]))

    def test_automatic_snapshots_delete_covered_log_and_keep_two(self):
        srv = self.start("--snapshot-entries", "150", "--wal-segment-bytes", "4096")
        c = srv.connect()
        keys = ["k%d" % i for i in range(50)]
        expected = {}
        for r in range(30):  # 1500 writes over 50 keys
            expected.update(write_batch(c, keys, r))
        kvtest.wait_for(lambda: int(info(c)["raft_snapshots_taken"]) >= 4, timeout=20 * SLOW,
                        message="four automatic snapshots")
        i = info(c)
        self.assertGreater(int(i["wal_first_index"]), 1)
        self.assertIn("taking one", srv.log())
        self.assertIn("WAL: deleted", srv.log())
        kvtest.wait_for(lambda: len(snap_files(srv)) == 2 and info(c)["raft_snapshot_in_progress"] == "0",
                        timeout=10 * SLOW, message="two snapshots kept")
        # The log kept starts at or before the older kept snapshot's next entry.
        older = min(int(os.path.basename(f)[5:21], 16) for f in snap_files(srv))
        self.assertLessEqual(int(info(c)["wal_first_index"]), older + 1)
        digest = c.command("DIGEST")
        c.close()
        self.assertEqual(srv.stop(), 0)
        srv.start()
        self.check_data(srv, expected)
        c = srv.connect()
        self.assertEqual(c.command("DIGEST"), digest)

    def damaged_newest_falls_back(self, damage):
        srv = self.start("--snapshot-entries", "0", "--wal-segment-bytes", "4096")
        c = srv.connect()
        keys = ["k%d" % i for i in range(40)]
        expected = {}
        for r in range(3):
            expected.update(write_batch(c, keys, r))
            self.assertEqual(c.command("SNAPSHOT"), "OK")
        expected.update(write_batch(c, keys, "last"))
        c.close()
        self.assertEqual(srv.stop(), 0)
        files = snap_files(srv)
        self.assertEqual(len(files), 2, files)
        newest = files[-1]
        damage(newest)
        srv.start()
        log = srv.log()
        self.assertIn("refusing snapshot %s: offset" % newest, log)
        self.assertIn("loaded snapshot %s" % files[0], log)
        self.assertTrue(os.path.exists(newest + ".corrupt"))
        self.check_data(srv, expected)
        return srv

    def test_flipped_byte_in_newest_snapshot_uses_previous(self):
        def flip(path):
            with open(path, "r+b") as f:
                data = bytearray(f.read())
                data[len(data) // 2] ^= 0x40
                f.seek(0)
                f.write(data)
        self.damaged_newest_falls_back(flip)

    def test_torn_newest_snapshot_uses_previous(self):
        def cut(path):
            os.truncate(path, os.path.getsize(path) - 7)
        self.damaged_newest_falls_back(cut)

    def check_after_crash(self, srv, acked, maybe):
        """Every acknowledged write is there; a write of the batch the crash
        interrupted may or may not be."""
        c = srv.connect()
        for k, v in acked.items():
            got = c.command("GET", k)
            self.assertIn(got, (v, maybe.get(k, v)), k)
        self.assertEqual(c.command("DBSIZE"), len(acked))
        c.close()

    def test_crash_points_lose_nothing_acknowledged(self):
        points = ["snapshot-child", "snapshot-before-rename", "snapshot-after-rename", "snapshot-before-compact",
                  "snapshot-mid-compact"]
        for point in points:
            with self.subTest(point=point):
                srv = self.start("--snapshot-entries", "0", "--wal-segment-bytes", "4096",
                                 env={"KV_TEST_CRASH_AT": point})
                c = srv.connect()
                keys = ["k%d" % i for i in range(60)]
                acked, maybe = {}, {}
                crashed = False
                for r in range(12):
                    batch = {k: ("%s-%d" % (k, r)).encode() for k in keys}
                    try:
                        write_batch(c, keys, r)
                        acked.update(batch)
                        reply = c.command("SNAPSHOT", timeout=30 * SLOW)
                    except (OSError, kvtest.ConnectionClosed):
                        crashed, maybe = True, batch
                        break
                    if point == "snapshot-child":
                        self.assertError(reply, "ERR snapshot failed: the writer was killed by signal 9")
                        self.assertEqual(int(info(c)["raft_snapshots_failed"]), 1)
                        self.assertEqual(snap_files(srv, "*.tmp"), [])
                        crashed = True
                        srv.kill9()
                        break
                    self.assertEqual(reply, "OK")
                self.assertTrue(crashed, "the crash point %s was never reached" % point)
                c.close()
                if srv.running():
                    self.assertEqual(srv.wait(), -9)
                self.assertIn("KV_TEST_CRASH_AT=%s" % point, srv.log())
                srv.env = None
                srv.start()
                self.check_after_crash(srv, acked, maybe)
                self.assertEqual(snap_files(srv, "*.tmp"), [])
                # And it goes on: another snapshot and restart.
                c = srv.connect()
                acked = write_batch(c, keys, "after")
                self.assertEqual(c.command("SNAPSHOT"), "OK")
                c.close()
                self.assertEqual(srv.stop(), 0)
                srv.start()
                self.check_data(srv, acked)
                srv.close()


if __name__ == "__main__":
    kvtest.main()
