# test_real_timeline.py - the timeline of a real run (issue 11 item 9):
# scripts/timeline.py draws three stage5-raft processes' own logs plus the
# faults the harness recorded, and shows what happened: who led which term,
# the election after the leader was cut off, the partition on the right
# column, the heal, commits, a crash and a restart. And a failing fault test
# leaves its logs and that picture behind and prints where.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import kvtest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "sim"))
from faultrun import PYTHON, FaultCase, secs  # noqa: E402
from test_timeline import Page  # noqa: E402  (the sim timeline test's reader of the page)


class RealRunTimeline(FaultCase):
    def test_timeline_of_a_failover_under_partition(self):
        c = self.cluster()
        old = c.wait_leader(self.election_bound(c))
        for k in range(5):
            self.assertEqual(c.command(old, "SET", "k%d" % k, "v"), "OK")
        old_term = c.term(old)
        others = [i for i in c.nodes if i != old]
        c.isolate(old)
        new = c.wait_leader_among(others, timeout=secs(self.election_bound(c)))
        self.assertEqual(c.command(new, "SET", "after", "v"), "OK")
        kvtest.wait_for(lambda: c.role(old)["role"] != "leader", timeout=secs(5), message="step down")
        # Cut off and no longer leading, it asks for pre-votes (its term
        # stays): wait for that round before healing, or the heal may come
        # first and the picture has no pre-vote of the cut-off node to show.
        pre = "node %d: pre-candidate in term %d" % (old, old_term)
        kvtest.wait_for(lambda: pre in c.nodes[old].log(), timeout=secs(5) + self.election_bound(c),
                        message="node %d to start a pre-vote round" % old)
        self.assertEqual(c.term(old), old_term)
        c.heal()
        c.wait_same_digest(timeout=secs(10))
        f = [i for i in others if i != new][0]
        c.kill9(f)
        c.restart(f)
        c.wait_same_digest(timeout=secs(10))
        new_term = c.term(new)

        d = tempfile.mkdtemp(prefix="kvtest-timeline-")
        if not os.environ.get("KV_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, d, True)
        page_path = c.write_artifacts(d, "isolate leader")
        self.assertIsNotNone(page_path, open(os.path.join(d, "timeline.err")).read()
                             if os.path.exists(os.path.join(d, "timeline.err")) else "")
        with open(page_path, encoding="utf-8") as fh:
            html = fh.read()
        page = Page(html)

        # The events read from the logs: roles, elections, votes, commits;
        # and the harness's partition, heal, crash and restart.
        with open(os.path.join(d, "timeline.jsonl"), encoding="utf-8") as fh:
            events = [json.loads(line) for line in fh]
        self.assertEqual(events[0]["kind"], "meta")
        self.assertEqual(events[0]["nodes"], [1, 2, 3])
        self.assertEqual(events[0]["election"], c.election_ms)
        kinds = {e["kind"] for e in events}
        for k in ("role", "elect", "vote", "commit", "partition", "heal", "crash", "restart"):
            self.assertIn(k, kinds)
        ts = [e["t"] for e in events[1:]]
        self.assertEqual(ts, sorted(ts))
        self.assertGreaterEqual(ts[0], 0)
        leaders = {(e["node"], e["term"]) for e in events if e["kind"] == "role" and e["role"] == "leader"}
        self.assertIn((old, old_term), leaders)
        self.assertIn((new, new_term), leaders)
        grants = [e for e in events if e["kind"] == "vote" and e["granted"] and not e["pre"]
                  and e["for"] == new and e["term"] == new_term]
        self.assertTrue(grants, "no vote for the new leader in its term")
        # Pre-vote: the cut-off leader asked for the term after its own (its
        # pre-vote that won the first election proposed old_term itself).
        self.assertTrue([e for e in events if e["kind"] == "elect" and e["node"] == old and e["pre"]
                         and e["term"] == old_term + 1], [e for e in events if e["kind"] == "elect"])

        # The picture: a column per node; leader bands in both terms on the
        # right columns; the cut-off leader's column hatched; commits; the
        # crash and restart labelled.
        cols = page.by_class("node-col", "g")
        self.assertEqual([e[1]["data-node"] for e in cols], ["1", "2", "3"])
        bands = [(e[1]["class"].split()[1], e[1]["data-term"], float(e[1]["x"]))
                 for e in page.by_class("band", "rect")]
        xs = sorted({b[2] for b in bands})
        self.assertEqual(len(xs), 3)
        x = {i: xs[i - 1] for i in c.nodes}
        self.assertIn(("role-leader", str(old_term), x[old]), bands)
        self.assertIn(("role-leader", str(new_term), x[new]), bands)
        self.assertIn(("role-crashed", str(new_term), x[f]), bands)
        self.assertIn("n%d isolated" % old, html)
        parts = page.by_class("partition", "rect")
        self.assertTrue(parts)
        for r in parts:  # only the cut-off node's column is hatched
            self.assertLess(float(r[1]["x"]), x[old])
            self.assertGreater(float(r[1]["x"]) + float(r[1]["width"]), x[old])
        self.assertIn("network healed", html)
        self.assertTrue(page.by_class("commit", "line"))
        self.assertTrue(page.by_class("granted", "g"))
        labels = [page.text(e) for e in page.by_class("crash", "text")]
        self.assertTrue([t for t in labels if t.startswith("\u2716 kill -9")], labels)
        self.assertTrue(page.by_class("restart", "text"))
        self.assertIn("No violation recorded", html)


FAILING = textwrap.dedent("""
    import sys
    sys.path.insert(0, %r)
    import kvtest
    from faultrun import FaultCase

    class Fails(FaultCase):
        def test_fails_on_purpose(self):
            c = self.cluster()
            lead = c.wait_leader(self.election_bound(c))
            c.isolate(lead)
            self.assertEqual(c.role(lead)["role"], "follower", "failing on purpose")

    if __name__ == "__main__":
        kvtest.main()
""")


class FailingRunLeavesArtifacts(unittest.TestCase):
    def test_a_failing_fault_test_prints_its_timeline(self):
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "failing.py")
            with open(script, "w") as fh:
                fh.write(FAILING % HERE)
            arts = os.path.join(d, "arts")
            p = subprocess.run([PYTHON, script], env=dict(os.environ, KV_ARTIFACTS_DIR=arts),
                               capture_output=True, text=True, timeout=secs(120))
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("failing on purpose", p.stderr)
            lines = [ln for ln in p.stderr.splitlines() if ln.startswith("timeline: ")]
            self.assertEqual(len(lines), 1, p.stderr)
            page = lines[0][len("timeline: "):]
            self.assertTrue(page.startswith(arts + os.sep), page)
            self.assertTrue(os.path.exists(page), p.stderr)
            run_dir = os.path.dirname(page)
            self.assertTrue(os.path.basename(run_dir).startswith("Fails.test_fails_on_purpose-"))
            for name in ("node1.log", "node2.log", "node3.log", "harness-events.jsonl", "timeline.jsonl"):
                self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)
            with open(page, encoding="utf-8") as fh:
                doc = Page(fh.read())
            self.assertEqual(len(doc.by_class("node-col", "g")), 3)
            self.assertTrue(doc.by_class("partition", "rect"))


if __name__ == "__main__":
    kvtest.main()
