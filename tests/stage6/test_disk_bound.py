# test_disk_bound.py - the disk and restart figures: an endless
# write load over a fixed key set keeps the data directory under a stated
# size when snapshots truncate the log, and grows without them; restart
# time with and without snapshots is printed. Scaled down by default (ctest:
# 20,000 writes over 500 keys); the 1,000,000 writes over 10,000
# keys with KV_DISK_WRITES=1000000 KV_DISK_KEYS=10000 (make disk-bound-stage6).
import os
import time
import unittest

import kvtest

WRITES = int(os.environ.get("KV_DISK_WRITES") or 20000)
KEYS = int(os.environ.get("KV_DISK_KEYS") or 500)
BATCH = 1000
SNAP_ENTRIES = max(WRITES // 20, 100)
SEGMENT = 64 * 1024 if WRITES < 200000 else 1024 * 1024
# At most 100 bytes per log record or snapshot key for these keys and
# values; the log kept is at most two snapshot intervals (the newest and
# the fallback) plus the core's margin, in whole segments, plus two
# snapshots (and a third being written).
BOUND = 2 * SNAP_ENTRIES * 100 + 128 * 100 + 2 * SEGMENT + 3 * KEYS * 100


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except FileNotFoundError:
                pass  # a segment deleted while we walked
    return total


@unittest.skipIf(kvtest.UNDER_VALGRIND, "a load test under valgrind would only measure valgrind")
class DiskBound(kvtest.ServerTestCase):

    def load(self, snapshots):
        # --fsync no: the figures are about files, not durability (a graceful
        # stop syncs everything), and a per-batch fdatasync would dominate.
        flags = ["--data-dir", "{tmp}/data", "--fsync", "no", "--wal-segment-bytes", str(SEGMENT), "--snapshot-bytes", "0",
                 "--snapshot-entries", str(SNAP_ENTRIES if snapshots else 0)]
        srv = self.start_server(flags)
        data = os.path.join(srv.tmp, "data")
        c = srv.connect()
        peak = 0
        for start in range(0, WRITES, BATCH):
            n = min(BATCH, WRITES - start)
            c.send(b"".join(kvtest.encode_command("SET", "key%06d" % ((start + i) % KEYS), "value-%09d" % (start + i))
                            for i in range(n)))
            replies = c.read_replies(n, timeout=120)
            self.assertTrue(all(r == "OK" for r in replies), replies[:3])
            peak = max(peak, dir_bytes(data))
        last_key = "key%06d" % ((WRITES - 1) % KEYS)
        i = kvtest.parse_info(c.command("INFO").decode())
        c.close()
        self.assertEqual(srv.stop(), 0)
        t0 = time.monotonic()
        srv.start()
        c = srv.connect()
        self.assertEqual(c.command("GET", last_key), ("value-%09d" % (WRITES - 1)).encode())  # waits for replay
        restart = time.monotonic() - t0
        after = kvtest.parse_info(c.command("INFO").decode())
        self.assertEqual(c.command("DBSIZE"), KEYS)
        c.close()
        srv.close()
        return peak, restart, int(after["records_replayed_at_start"]), i

    def test_disk_stays_bounded_with_snapshots(self):
        peak_s, restart_s, replayed_s, info_s = self.load(True)
        peak_n, restart_n, replayed_n, _ = self.load(False)
        print("\n%d writes over %d keys, snapshot every %d entries, %d-byte segments:" %
              (WRITES, KEYS, SNAP_ENTRIES, SEGMENT))
        print("  with snapshots:    data dir peak %9d bytes (bound %d), restart %.3f s, %d log records read, "
              "%s snapshots" % (peak_s, BOUND, restart_s, replayed_s, info_s["raft_snapshots_taken"]))
        print("  without snapshots: data dir peak %9d bytes, restart %.3f s, %d log records read" %
              (peak_n, restart_n, replayed_n))
        self.assertLess(peak_s, BOUND)
        self.assertGreater(peak_n, BOUND, "the load is too small to show the bound means anything")
        self.assertLess(replayed_s, 3 * SNAP_ENTRIES + 1000)
        self.assertGreaterEqual(replayed_n, WRITES)


if __name__ == "__main__":
    kvtest.main()
