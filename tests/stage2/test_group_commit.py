# test_group_commit.py - with --fsync always, concurrent writers share
# fdatasyncs (group commit): every write is acknowledged, only after an
# fdatasync covered it, and there are fewer fdatasyncs than writes.
import threading

import kvtest

WRITERS = 10
WRITES_EACH = 10 if kvtest.UNDER_VALGRIND else 40
# Each reply must come within this long: a server that never syncs (the lab
# stub) never acknowledges, and the test fails here rather than hanging.
REPLY_TIMEOUT = 60 if kvtest.UNDER_VALGRIND else 5


def info(conn):
    return kvtest.parse_info(conn.command("INFO").decode())


class GroupCommit(kvtest.ServerTestCase):

    def test_concurrent_writes_share_fdatasyncs(self):
        srv = self.start_server(["--fsync", "always"])
        c = srv.connect()
        before = int(info(c)["fsyncs"])
        errors = []
        start = threading.Barrier(WRITERS)

        def writer(w):
            try:
                with srv.connect(timeout=REPLY_TIMEOUT) as wc:
                    start.wait()
                    for i in range(WRITES_EACH):
                        reply = wc.command("SET", "w%d:%d" % (w, i), "v")
                        if reply != "OK":
                            errors.append("writer %d: %r" % (w, reply))
                            return
            except Exception as e:  # a timeout: the write was never acknowledged
                errors.append("writer %d: %s: %s" % (w, type(e).__name__, e))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [], "every write must be acknowledged")
        writes = WRITERS * WRITES_EACH
        fsyncs = int(info(c)["fsyncs"]) - before
        # Acknowledged under always means synced: at least one fdatasync ran.
        self.assertGreaterEqual(fsyncs, 1)
        # Group commit: writes that arrive while an fdatasync runs share the next one.
        self.assertLess(fsyncs, writes, "%d fdatasyncs for %d concurrent writes: no group commit" % (fsyncs, writes))
        self.assertEqual(c.command("DBSIZE"), writes)


if __name__ == "__main__":
    kvtest.main()
