# test_program_names.py - every program a learner runs names itself as it is
# installed: `X --version` prints "X <version>" and `X --help` starts
# "Usage: X". A stage's copy of the previous stage's main.c keeps the old
# name unless someone changes it (kvcli-stage6 once said kvcli-stage5), and
# the chapters tell people to read --help.
# Usage: test_program_names.py BIN_DIR (programs not built there are skipped;
# at least one must be).
import os
import subprocess
import sys
import unittest

PROGRAMS = ["stage1-single-node", "stage2-wal", "stage3-client", "stage4-replication", "stage5-raft",
            "stage6-snapshots", "kvcli", "kvcli-stage4", "kvcli-stage5", "kvcli-stage6"]
BIN_DIR = None


def first_line(path, flag):
    p = subprocess.run([path, flag], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("%s %s exited %d: %s" % (path, flag, p.returncode, p.stderr))
    return p.stdout.splitlines()[0] if p.stdout else ""


class ProgramNames(unittest.TestCase):
    def test_each_program_names_itself(self):
        found = [name for name in PROGRAMS if os.access(os.path.join(BIN_DIR, name), os.X_OK)]
        self.assertTrue(found, "none of %s in %s" % (PROGRAMS, BIN_DIR))
        for name in found:
            path = os.path.join(BIN_DIR, name)
            with self.subTest(program=name):
                self.assertEqual(first_line(path, "--version").split()[0], name)
                self.assertTrue(first_line(path, "--help").startswith("Usage: %s " % name),
                                first_line(path, "--help"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: test_program_names.py BIN_DIR")
    BIN_DIR = sys.argv.pop(1)
    unittest.main()
