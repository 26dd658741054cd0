# test_linearizable.py - stage 6 under faults, as the linearizability
# checker sees it: stage 5's fault runs (tests/stage5/jepsen.py, imported,
# not copied) against three stage6-snapshots nodes that snapshot every 50
# entries, so that snapshots, log truncation and InstallSnapshot (a node
# killed, isolated, or removed, wiped and added back, returning behind the
# leader's first entry) happen many times in one run. The membership mix
# kills, partitions, and removes a follower and adds it back (CLUSTER
# REMOVE, wipe, --join, CLUSTER ADD). The history must still fit one order,
# and the same history with a stale read injected must not.
#
# Short (CI); make jepsen-stage6 RUNS=N runs longer ones. Skipped under
# valgrind, as stage5.linearizable is.
import os
import sys
import unittest

import kvtest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stage5"))
import jepsen  # noqa: E402

FLAGS = ("--snapshot-entries", "50")


@unittest.skipIf(kvtest.UNDER_VALGRIND, "fault runs under valgrind would only measure valgrind")
class SnapshotHeavyFaultRun(unittest.TestCase):
    def test_kills_partitions_and_membership_with_tiny_snapshots(self):
        # Seed 5 of the membership mix: isolate-leader, kill, kill-leader and
        # two remove-adds.
        rr = jepsen.Run(5, duration=12.0, mix="membership", server_flags=FLAGS, stage=6,
                        out_dir=os.path.join(jepsen.default_out_dir("jepsen-stage6"), "ctest-membership-seed5")
                        ).execute()
        print(jepsen.describe(rr), flush=True)
        self.assertEqual(rr.verdict, "linearizable", jepsen.describe(rr))
        self.assertFalse(rr.unexpected, "replies the driver does not understand")
        self.assertFalse(rr.client_errors)
        self.assertFalse(rr.fault_problems, "membership changes the nemesis could not make")
        self.assertGreaterEqual(len(rr.faults), 3, "too few faults for the run to mean much")
        self.assertIn("remove-add", rr.faults)
        self.assertTrue({"kill", "kill-leader"} & set(rr.faults), rr.faults)
        self.assertTrue({"isolate-follower", "isolate-leader"} & set(rr.faults), rr.faults)
        self.assertGreater(rr.ok, 500, "too few completed operations for the run to mean much")
        # Snapshots were taken on every node, and at least one node caught
        # up by installing one.
        self.assertIsNotNone(rr.snapshots)
        self.assertTrue(all(v["taken"] > 0 for v in rr.snapshots["per_node"].values()), rr.snapshots)
        self.assertGreaterEqual(rr.snapshots["installed"], 1, rr.snapshots)
        finals = [o for o in rr.history if o["client"] == "final"]
        self.assertEqual(len(finals), len({o["key"] for o in rr.history if o["client"] != "final"}))
        # The checker still rejects this history with one stale read in it.
        doctored = jepsen.inject_stale_read(rr.history)
        self.assertIsNotNone(doctored)
        where = os.path.join(rr.out_dir, "injected-stale-read")
        os.makedirs(where, exist_ok=True)
        result, html = jepsen.judge(doctored, where, 60, "Stage 6 history with a stale read injected")
        self.assertEqual(result.verdict, "fail", result.summary())
        self.assertEqual([k.blocker.client for k in result.failing()], ["stale-reader"], result.summary())


if __name__ == "__main__":
    kvtest.main()
