# test_recovery_files.py - what recovery does with damaged files, as an
# operator would see it: a last segment cut at random offsets restarts with
# exactly a prefix of the history ("torn" logged when the cut leaves part of
# a record; a cut in the preallocated zeros after the data loses nothing);
# a flipped byte in an earlier segment refuses to start (exit 1, file and
# offset named) and leaves every file untouched.
import os
import random
import shutil

import kvtest
import walfiles

HISTORY = 300
# Cuts through the last segment's records. Under valgrind every restart costs
# half a second, and the same code paths are covered by a sample.
CUTS = 20 if kvtest.UNDER_VALGRIND else 200


def dir_bytes(data_dir):
    out = {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            if name == "LOCK":
                continue
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, data_dir)] = f.read()
    return out


class DamagedFiles(kvtest.ServerTestCase):

    def write_history(self):
        """SET h<i> v<i> for i in 1..HISTORY through small segments, then a
        graceful stop. Returns (server, data dir)."""
        # After the suite's flags (a later stage's --peer-port 0): these win.
        srv = self.start_server(["--data-dir", "{tmp}/data", "--wal-segment-bytes", "4096"])
        c = srv.connect()
        for i in range(1, HISTORY + 1):
            self.assertEqual(c.command("SET", "h%d" % i, "v%d" % i), "OK")
        c.close()
        self.assertEqual(srv.stop(), 0)
        data = os.path.join(srv.tmp, "data")
        self.assertGreaterEqual(len(walfiles.segments(data)), 2)
        # A clean stop trims the preallocated zeros: files hold just records.
        for seg in walfiles.segments(data):
            self.assertEqual(os.path.getsize(seg), walfiles.data_end(seg), seg)
        return srv, data

    def keys_present(self, srv):
        c = srv.connect()
        present = [i for i in range(1, HISTORY + 1) if c.command("GET", "h%d" % i) is not None]
        c.close()
        return present

    def test_torn_tail_at_200_offsets(self):
        srv, data = self.write_history()
        segs = walfiles.segments(data)
        last = segs[-1]
        # Records in earlier segments are always kept.
        before = sum(len(walfiles.record_ends(s)) for s in segs[:-1])
        ends = walfiles.record_ends(last)
        # As kill -9 would leave it: records, then preallocated zeros.
        with open(last, "ab") as f:
            f.write(bytes(4096))
        size = os.path.getsize(last)
        with open(last, "rb") as f:
            content = f.read()
        pristine = os.path.join(srv.tmp, "pristine")
        shutil.copytree(data, pristine)
        rnd = random.Random(7)
        data_end = walfiles.data_end(last)
        # CUTS cuts through the records, and a few in the zeros after them.
        offsets = sorted(rnd.sample(range(data_end), min(CUTS, data_end)) + rnd.sample(range(data_end, size), 10))
        self.assertEqual(len(offsets), CUTS + 10)
        for cut in offsets:
            shutil.rmtree(data)
            shutil.copytree(pristine, data)
            with open(last, "r+b") as f:
                f.truncate(cut)
            mark = len(srv.log())
            srv.start()
            kept = before + sum(1 for e in ends if e <= cut)
            self.assertEqual(self.keys_present(srv), list(range(1, kept + 1)), "cut at %d" % cut)
            log = srv.log()[mark:]
            boundary = max([e for e in ends if e <= cut], default=0)
            # Part of a record survives the cut. (Leftover zero bytes are
            # indistinguishable from preallocated space: nothing to report.)
            mid_record = any(content[boundary:cut])
            self.assertEqual("torn write" in log, mid_record, "cut at %d:\n%s" % (cut, log))
            if mid_record:
                self.assertIn("offset %d" % boundary, log)
            self.assertEqual(srv.stop(), 0)

    def test_flipped_byte_in_earlier_segment_refuses_to_start(self):
        srv, data = self.write_history()
        first = walfiles.segments(data)[0]
        for where, offset in (("payload", 20), ("length field", 1)):
            with self.subTest(where=where):
                with open(first, "r+b") as f:
                    f.seek(offset)
                    b = f.read(1)
                    f.seek(offset)
                    f.write(bytes([b[0] ^ 0x5A]))
                before = dir_bytes(data)
                mark = len(srv.log())
                with self.assertRaises(AssertionError):
                    srv.start(timeout=10)
                self.assertEqual(srv.returncode, 1)
                log = srv.log()[mark:]
                self.assertIn("corrupt WAL", log)
                self.assertIn(os.path.basename(first), log)
                self.assertIn("offset 0", log)  # the first record holds the damaged byte
                self.assertEqual(dir_bytes(data), before, "a refused start must not modify anything")
                with open(first, "r+b") as f:  # undo, for the next case
                    f.seek(offset)
                    f.write(b)

    def test_flipped_byte_in_last_record_is_a_torn_tail(self):
        srv, data = self.write_history()
        last = walfiles.segments(data)[-1]
        ends = walfiles.record_ends(last)
        with open(last, "r+b") as f:
            f.seek(ends[-1] - 2)
            b = f.read(1)
            f.seek(ends[-1] - 2)
            f.write(bytes([b[0] ^ 0xFF]))
        srv.start()
        self.assertEqual(self.keys_present(srv), list(range(1, HISTORY)))  # only the last record lost
        self.assertIn("torn write", srv.log())


if __name__ == "__main__":
    kvtest.main()
