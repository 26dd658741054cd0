#!/usr/bin/python3
"""partition-stage5.py - a three-node stage 5 cluster whose peer links run
through fault proxies you control, to watch partitions by hand
(notes/05-raft.md 5.15.4). make partition-stage5 runs it.

    scripts/partition-stage5.py [--bin build/bin] [--election-ms 1000]
        [--free-ports]

Clients reach node 1, 2, 3 on 7005, 7015, 7025 (redis-cli -p 7005, or
kvcli-stage5); each node's peers reach it through a proxy the script runs
(--free-ports: any free ports, printed). Commands, one per line ("leader"
may stand for the id of the node that leads now):

    status            each node's role, term, leader, commit index; the cut links
    isolate N         N loses every other node
    split 1,2 3       nodes reach each other only within a group
    cut A B           A and B lose each other (both ways)
    block A B         A's messages no longer reach B (B's still reach A)
    delay MS [A B]    delay A's messages to B (without A B: every link); 0 removes it
    heal              every link works again (delays stay until delay 0)
    kill N            kill -9; stop N: SIGTERM; start N: start it again
    wait              until the side holding a majority has one leader it follows
    write KEY VALUE   SET on that leader, and the reply; get KEY: GET there
    timeline [DIR]    copy the logs and draw what happened so far (default
                      ./partition-run); prints the page's path
    help, quit

Uses the test harness (tests/harness, tests/stage5/faultrun.py): nodes
run from temp dirs that are removed on quit (KV_KEEP_TMP=1 keeps them)."""
import argparse
import os
import shlex
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
sys.dont_write_bytecode = True
PORTS = [7005, 17005, 7015, 17015, 7025, 17025]


def say(*a):
    print(*a, flush=True)


def shown(reply):
    """A reply as redis-cli prints it."""
    if reply is None:
        return "(nil)"
    if isinstance(reply, bytes):
        return '"%s"' % reply.decode("utf-8", "replace")
    if isinstance(reply, Exception):
        return "(error) %s" % reply
    return str(reply)


class Shell:
    def __init__(self, c):
        self.c = c

    def node(self, word):
        if word == "leader":
            roles = {i: self.c.role(i) for i in self.c.running()}
            leaders = sorted((r["term"], i) for i, r in roles.items() if r["role"] == "leader")
            if not leaders:
                raise ValueError("no node leads now")
            return leaders[-1][1]
        if not word.isdigit() or int(word) not in self.c.nodes:
            raise ValueError("no node %r (1, 2, 3 or leader)" % word)
        return int(word)

    def majority_side(self):
        up = self.c.running()
        down = self.c.partition.down
        sides = []
        for i in up:
            for s in sides:
                if all((i, j) not in down and (j, i) not in down for j in s):
                    s.append(i)
                    break
            else:
                sides.append([i])
        big = [s for s in sides if len(s) > len(self.c.nodes) // 2]
        return big[0] if big else None

    def run(self, line):
        words = shlex.split(line)
        if not words:
            return True
        cmd, args = words[0].lower(), words[1:]
        c = self.c
        if cmd in ("quit", "exit"):
            return False
        if cmd == "help":
            say(__doc__.split("Commands, one per line")[1].split("Uses the test harness")[0].rstrip())
        elif cmd == "status":
            for i in sorted(c.nodes):
                if not c.nodes[i].running():
                    say("node %d  port %d  down" % (i, c.client_port[i]))
                    continue
                r = c.role(i)
                say("node %d  port %d  %-9s term %-3d leader %s  commit %d"
                    % (i, c.client_port[i], r["role"], r["term"], r["leader"] or "unknown", r["commit"]))
            down = sorted(c.partition.down)
            say("cut links: %s" % (", ".join("%d->%d" % l for l in down) if down else "none"))
        elif cmd == "isolate" and len(args) == 1:
            n = self.node(args[0])
            c.isolate(n)
            say("node %d isolated" % n)
        elif cmd == "split" and len(args) >= 2:
            groups = [{self.node(w) for w in g.split(",")} for g in args]
            c.split(*groups)
            say("split: %s" % " | ".join(",".join(map(str, sorted(g))) for g in groups))
        elif cmd in ("cut", "block") and len(args) == 2:
            a, b = self.node(args[0]), self.node(args[1])
            getattr(c, cmd)(a, b)
            say("%d %s %d cut" % (a, "<->" if cmd == "cut" else "->", b))
        elif cmd == "delay" and len(args) in (1, 3):
            ms = int(args[0])
            a, b = (self.node(args[1]), self.node(args[2])) if len(args) == 3 else (None, None)
            c.delay(ms, a, b)
            say("delay %d ms on %s" % (ms, "every link" if a is None else "%d->%d" % (a, b)))
        elif cmd == "heal" and not args:
            c.heal()
            say("healed")
        elif cmd in ("kill", "stop", "start") and len(args) == 1:
            n = self.node(args[0])
            {"kill": c.kill9, "stop": c.stop, "start": c.restart}[cmd](n)
            say("node %d %s" % (n, {"kill": "killed (kill -9)", "stop": "stopped", "start": "started"}[cmd]))
        elif cmd == "wait" and not args:
            side = self.majority_side()
            if side is None:
                say("no side holds a majority of the nodes: no leader can be elected")
            else:
                lead = c.wait_leader_among(side, timeout=10 + 4 * c.election_ms / 1000.0)
                say("leader: node %d in term %d (followed by nodes %s)"
                    % (lead, c.role(lead)["term"], ",".join(map(str, sorted(side)))))
        elif cmd in ("write", "get") and len(args) == (2 if cmd == "write" else 1):
            n = self.node("leader")
            reply = c.command(n, "SET" if cmd == "write" else "GET", *args, timeout=30)
            say("%s on node %d: %s" % (" ".join([cmd] + args), n, shown(reply)))
        elif cmd == "timeline" and len(args) <= 1:
            d = os.path.abspath(args[0] if args else "partition-run")
            page = c.write_artifacts(d, "by hand")
            say("timeline: %s" % (page or "not drawn: see %s/timeline.err" % d))
        else:
            say("?? %s (help lists the commands)" % line.strip())
        return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--election-ms", type=int, default=1000)
    ap.add_argument("--free-ports", action="store_true", help="not 7005/7015/7025 (and 17005...)")
    a = ap.parse_args(argv)
    server = os.path.join(a.bin, "stage5-raft")
    if not os.access(server, os.X_OK):
        print("partition-stage5: %s not found: build first (make build)" % server, file=sys.stderr)
        return 2
    os.environ["KV_SERVER_BIN"] = server
    sys.path[:0] = [os.path.join(ROOT, "tests", "harness"), os.path.join(ROOT, "tests", "stage5")]
    import kvtest
    from faultrun import FaultCluster
    ports = None
    if not a.free_ports:
        busy = [p for p in PORTS if not kvtest.port_is_free(p)]
        if busy:
            print("partition-stage5: ports %s are in use (--free-ports picks others)" % busy, file=sys.stderr)
            return 2
        ports = PORTS
    c = FaultCluster(election_ms=a.election_ms, heartbeat_ms=max(a.election_ms // 10, 10), ports=ports)
    try:
        c.start()
        say("three stage 5 nodes, peer links through fault proxies:")
        for i in sorted(c.nodes):
            say("  node %d: redis-cli -p %d   (log: %s)" % (i, c.client_port[i], c.nodes[i].log_path))
        say("type help for the commands")
        sh = Shell(c)
        while True:
            if sys.stdin.isatty():
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            try:
                if not sh.run(line):
                    break
            except (ValueError, AssertionError, OSError, kvtest.RespProtocolError) as e:
                say("error: %s" % e)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
