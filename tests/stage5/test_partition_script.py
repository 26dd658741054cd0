# test_partition_script.py - scripts/partition-stage5.py (make
# partition-stage5), the learner's partition by hand: fed the commands of
# notes/05-raft.md 5.15.4 on stdin, it shows the leader, cuts it off, shows
# the new one accept a write the old one refuses, heals, and draws the
# timeline. Free ports, so it runs next to the other suites.
import os
import re
import subprocess
import sys
import tempfile
import unittest

import kvtest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.normpath(os.path.join(HERE, "..", "..", "scripts", "partition-stage5.py"))
sys.path.insert(0, HERE)
from faultrun import PYTHON, secs  # noqa: E402


def run(commands, *args):
    p = subprocess.run([PYTHON, SCRIPT, "--bin", os.path.dirname(kvtest.SERVER_BIN), "--free-ports",
                        "--election-ms", "500"] + list(args),
                       input="".join(c + "\n" for c in commands), capture_output=True, text=True,
                       timeout=secs(120))
    return p


class PartitionScript(unittest.TestCase):
    def setUp(self):
        if kvtest.UNDER_VALGRIND:
            # the script starts the binary it is given: under valgrind, the
            # wrapper, whose slowness its own waits are not scaled for
            self.skipTest("the script's waits are not scaled for valgrind")

    def test_isolate_the_leader_by_hand(self):
        with tempfile.TemporaryDirectory() as d:
            p = run(["wait", "isolate leader", "wait", "write k v", "status", "heal", "wait", "get k",
                     "timeline " + d, "quit"])
            out = p.stdout
            self.assertEqual(p.returncode, 0, out + p.stderr)
            first = re.findall(r"^leader: node (\d) in term (\d+) \(followed by nodes 1,2,3\)$", out, re.M)
            self.assertEqual(len(first), 2, out)
            old = first[0][0]
            self.assertIn("node %s isolated" % old, out)
            side = re.search(r"^leader: node (\d) in term (\d+) \(followed by nodes (\d),(\d)\)$", out, re.M)
            self.assertIsNotNone(side, out)
            new = side.group(1)
            self.assertNotEqual(new, old)
            self.assertNotIn(old, side.group(3, 4))
            self.assertIn("write k v on node %s: OK" % new, out)
            # status: the cut-off node is still in its old term (pre-vote);
            # it may or may not have stepped down yet
            self.assertRegex(out, r"node %s  port \d+  \S+\s+term %s " % (old, first[0][1]))
            self.assertRegex(out, r"cut links: (\d->\d, ){3}\d->\d")
            self.assertIn("healed", out)
            self.assertEqual(first[1][0], new)  # after the heal, everyone follows the new leader
            self.assertIn('get k on node %s: "v"' % new, out)
            self.assertIn("timeline: %s/timeline.html" % d, out)
            self.assertTrue(os.path.exists(os.path.join(d, "timeline.html")))

    def test_bad_commands_are_named_and_the_shell_goes_on(self):
        p = run(["isolate 9", "frobnicate", "wait", "status", "quit"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("error: no node '9' (1, 2, 3 or leader)", p.stdout)
        self.assertIn("?? frobnicate (help lists the commands)", p.stdout)
        self.assertIn("cut links: none", p.stdout)

    def test_no_majority_no_leader(self):
        p = run(["wait", "kill 1", "kill 2", "wait", "quit"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("no side holds a majority of the nodes: no leader can be elected", p.stdout)


if __name__ == "__main__":
    kvtest.main()
