#!/usr/bin/python3
# jepsen_stage5.py - `make jepsen-stage5 RUNS=N`: N seeded linearizability
# fault runs against a real three-node stage 5 cluster (tests/stage5/jepsen.py
# does the work), a summary after each run and a table at the end.
# Exit status: 0 every run linearizable, 1 some run was not (or did not
# converge), 2 some run could not be decided (the checker ran out of time).
# A seed replays its run's fault schedule: --seed S --runs 1.
# --stage 6 (make jepsen-stage6) runs stage6-snapshots instead, with tiny
# snapshot thresholds (--snapshot-entries 50 unless --server-flags says
# otherwise) so that snapshots, log truncation and InstallSnapshot happen
# many times a run, and rotates through the membership mix too
# (CLUSTER REMOVE and ADD of a follower, jepsen_nemesis.py).
import argparse
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description="Linearizability fault runs against a stage 5 cluster.")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"),
                    help="the build's bin/ (default build/bin)")
    ap.add_argument("--stage", type=int, choices=(5, 6), default=5,
                    help="5: stage5-raft (default); 6: stage6-snapshots with tiny snapshot thresholds")
    ap.add_argument("--server-flags", help="extra flags for every node, one string (stage 6 default: "
                    "--snapshot-entries 50)")
    ap.add_argument("--runs", type=int, default=5, help="how many runs (default 5)")
    ap.add_argument("--seed", type=int, help="seed of the first run; run i uses seed+i (default: random)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of faults and load per run (default 30)")
    ap.add_argument("--mix", default="rotate",
                    help="faults: kill, partition, mixed, slow, none, membership (stage 6), or rotate "
                         "(kill, partition, mixed in turn, and membership on stage 6; default)")
    ap.add_argument("--clients", type=int, default=5, help="concurrent clients (default 5)")
    ap.add_argument("--rate", type=float, default=50.0, help="operations per second per client, at most (default 50)")
    ap.add_argument("--follower-reads", action="store_true",
                    help="start the nodes with --follower-read-staleness-ms and send reads to any node "
                         "(not linearizable: expect failures)")
    ap.add_argument("--notleader-writes", choices=("unknown", "definite"),
                    help="how to record NOTLEADER on a write (default: ask the server, see jepsen.py)")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the nodes' logs of every run (a failing run keeps them anyway)")
    ap.add_argument("--out", help="where runs leave their files (default BIN_DIR/../jepsen-stageN)")
    args = ap.parse_args()

    server = os.path.join(os.path.abspath(args.bin_dir), "stage5-raft" if args.stage == 5 else "stage6-snapshots")
    flags = args.server_flags if args.server_flags is not None else \
        ("--snapshot-entries 50" if args.stage == 6 else "")
    if not os.access(server, os.X_OK):
        print("no %s: build first (make build)" % server, file=sys.stderr)
        return 2
    # kvtest reads its configuration from the environment when imported.
    os.environ["KV_SERVER_BIN"] = server
    os.environ["KV_BIN_DIR"] = os.path.abspath(args.bin_dir)
    sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "stage5"))
    import jepsen

    if args.follower_reads:
        import subprocess
        usage = subprocess.run([server, "--help"], capture_output=True, text=True, timeout=30)
        if "--follower-read-staleness-ms" not in usage.stdout + usage.stderr:
            print("%s has no --follower-read-staleness-ms" % server, file=sys.stderr)
            return 2
    mixes = ("kill", "partition", "mixed") + (("membership",) if args.stage == 6 else ()) \
        if args.mix == "rotate" else (args.mix,)
    if "membership" in mixes and args.stage != 6:
        ap.error("--mix membership needs --stage 6 (stage 5 has no CLUSTER ADD/REMOVE)")
    if any(m not in jepsen.MIXES for m in mixes):
        ap.error("--mix must be one of rotate, %s" % ", ".join(jepsen.MIXES))
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 20)
    out = args.out or jepsen.default_out_dir("jepsen-stage%d" % args.stage)
    results = []
    for i in range(args.runs):
        seed, mix = first + i, mixes[i % len(mixes)]
        print("--- run %d/%d: seed %d, %s faults, %.0f s%s" % (i + 1, args.runs, seed, mix, args.duration,
                                                             ", flags: " + flags if flags else ""), flush=True)
        run = jepsen.Run(seed, duration=args.duration, mix=mix, clients=args.clients, rate=args.rate,
                         follower_reads=args.follower_reads, notleader_writes=args.notleader_writes,
                         keep_logs=args.keep_logs, server_flags=flags.split(), stage=args.stage,
                         out_dir=os.path.join(out, "seed%d-%s" % (seed, mix)))
        rr = run.execute()
        print(jepsen.describe(rr), flush=True)
        results.append(rr)

    print()
    print("%-8s %-10s %6s %6s %6s %8s %7s  %-18s %s" % ("seed", "mix", "ops", "ok", "error", "unknown",
                                                      "faults", "verdict", "report"))
    for rr in results:
        print("%-8d %-10s %6d %6d %6d %8d %7d  %-18s %s" % (rr.seed, rr.mix, rr.ops, rr.ok, rr.errors, rr.unknown,
                                                           len(rr.faults), rr.verdict, rr.html or "-"))
    bad = [rr for rr in results if rr.verdict in ("NOT linearizable", "not converged")]
    undecided = [rr for rr in results if rr.verdict == "unknown"]
    print("%d runs: %d linearizable, %d not, %d undecided. Replay one: make jepsen-stage%d RUNS=1 SEED=<seed> "
          "MIX=<mix>" % (len(results), len(results) - len(bad) - len(undecided), len(bad), len(undecided), args.stage))
    return 1 if bad else 2 if undecided else 0


if __name__ == "__main__":
    sys.exit(main())
