# test_linearizable.py - stage 5 under faults, as the linearizability checker
# sees it (jepsen.py): seeded runs of a three-node cluster behind a fault
# proxy mesh, concurrent clients, kill -9 and restarts, partitions, and at the
# end a history every answer of which must fit one order. And the other
# side: the same pipeline must say NOT linearizable, and write its HTML
# report, when the answers are wrong - a stale read injected into a real
# recorded history, and real stale reads from followers serving reads from
# their own applied state (--follower-read-staleness-ms, not linearizable by
# design) behind a slow link.
#
# Runs are short (CI); make jepsen-stage5 RUNS=N runs longer ones. Under
# valgrind the servers run 20-50x slower and a fault run would only measure
# that: skipped there (ASan and UBSan already watch these runs).
import os
import sys
import unittest

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jepsen  # noqa: E402

DURATION = 12.0


def out_dir(name):
    return os.path.join(jepsen.default_out_dir(), name)


class Schedule(unittest.TestCase):
    def test_the_schedule_is_a_function_of_the_seed(self):
        a = [f.as_tuple() for f in jepsen.make_schedule(7, 60, jepsen.MIXES["mixed"])]
        b = [f.as_tuple() for f in jepsen.make_schedule(7, 60, jepsen.MIXES["mixed"])]
        c = [f.as_tuple() for f in jepsen.make_schedule(8, 60, jepsen.MIXES["mixed"])]
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertGreater(len({f[1] for f in a}), 3, "a long mixed run uses several kinds of fault")
        # One fault at a time, all of them over before the run's healed tail.
        for prev, nxt in zip(a, a[1:]):
            self.assertLess(prev[0] + prev[2], nxt[0])
        self.assertLessEqual(a[-1][0] + a[-1][2], 60 - 1.5)
        self.assertEqual(jepsen.make_schedule(7, 60, ()), [])


@unittest.skipIf(kvtest.UNDER_VALGRIND, "fault runs under valgrind would only measure valgrind")
class FaultRuns(unittest.TestCase):
    def run_faults(self, seed, mix, **kw):
        rr = jepsen.Run(seed, duration=kw.pop("duration", DURATION), mix=mix,
                        out_dir=out_dir("ctest-%s-seed%d" % (mix, seed)), **kw).execute()
        print(jepsen.describe(rr), flush=True)
        return rr

    def assertLinearizable(self, rr):
        self.assertEqual(rr.verdict, "linearizable", jepsen.describe(rr))
        self.assertFalse(rr.unexpected, "replies the driver does not understand")
        self.assertFalse(rr.client_errors)
        self.assertGreaterEqual(len(rr.faults), 3, "too few faults for the run to mean much")
        self.assertGreater(rr.ok, 500, "too few completed operations for the run to mean much")
        # Every key the clients used was read back after the heal.
        finals = [o for o in rr.history if o["client"] == "final"]
        self.assertEqual(len(finals), len({o["key"] for o in rr.history if o["client"] != "final"}))

    def test_kills_and_restarts(self):
        rr = self.run_faults(11, "kill")
        self.assertLinearizable(rr)
        # The clients saw the kills: connections refused or cut.
        self.assertGreater(rr.stats.get("refused", 0) + rr.stats.get("unknown", 0)
                           + rr.stats.get("read-lost", 0), 0, jepsen.describe(rr))
        self.stale_read_is_caught(rr)

    def stale_read_is_caught(self, rr):
        """The real history with one stale read added must fail, with the
        HTML report written and the injected read named as the culprit."""
        doctored = jepsen.inject_stale_read(rr.history)
        self.assertIsNotNone(doctored, "no two sequential SETs of one key in %d operations" % rr.ops)
        where = out_dir("ctest-injected-stale-read")
        os.makedirs(where, exist_ok=True)
        result, html = jepsen.judge(doctored, where, 60, "A real history with a stale read injected")
        self.assertEqual(result.verdict, "fail", result.summary())
        bad = result.failing()
        self.assertEqual(len(bad), 1, result.summary())
        self.assertEqual(bad[0].blocker.client, "stale-reader", result.summary())
        self.assertTrue(html and os.path.getsize(html) > 1000, html)
        with open(html, encoding="utf-8") as f:
            page = f.read()
        self.assertIn("NOT linearizable", page)
        self.assertIn("stale-reader", page)
        print("injected stale read rejected; report: %s" % html, flush=True)

    def test_partitions(self):
        # Seed 24: slow-follower, one-way, isolate-leader, partial, isolate-follower.
        rr = self.run_faults(24, "partition")
        self.assertLinearizable(rr)
        self.assertIn("isolate-leader", rr.faults)
        # The isolated leader turned clients away (NOTLEADER or TRYAGAIN).
        self.assertGreater(rr.stats.get("notleader", 0) + rr.stats.get("tryagain", 0), 0, jepsen.describe(rr))


def supports_follower_reads(binary):
    p = kvtest.run_binary(["--help"], binary=binary)
    return "--follower-read-staleness-ms" in p.stdout + p.stderr


@unittest.skipIf(kvtest.UNDER_VALGRIND, "fault runs under valgrind would only measure valgrind")
class BrokenOnPurpose(unittest.TestCase):
    def test_follower_reads_behind_a_slow_link_are_caught(self):
        # Followers answer GET from what they have applied, which is as old
        # as the last heartbeat they heard; with the leader's messages to
        # one follower delayed 300 ms, a client reads there a value that a
        # SET acknowledged before the read began has already replaced.
        if not supports_follower_reads(kvtest.SERVER_BIN):
            self.skipTest("this stage5-raft has no --follower-read-staleness-ms")
        rr = jepsen.Run(21, duration=8.0, mix="slow", follower_reads=True,
                        out_dir=out_dir("ctest-follower-reads-seed21")).execute()
        print(jepsen.describe(rr), flush=True)
        self.assertEqual(rr.verdict, "NOT linearizable", jepsen.describe(rr))
        self.assertTrue(rr.html and os.path.exists(rr.html))
        # What went wrong is a read (the writes all go through the leader).
        self.assertTrue(any(kr.blocker.op == "get" for kr in rr.checker.failing()), rr.checker.summary())
        self.assertTrue(any(os.path.exists(os.path.join(rr.out_dir, "node%d.log" % i)) for i in (1, 2, 3)),
                        "the nodes' logs are kept next to a failing run's report")


if __name__ == "__main__":
    kvtest.main()
