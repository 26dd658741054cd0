# test_kvcli_cluster.py - kvcli-stage5 against three real stage5-raft nodes:
# it follows NOTLEADER (and says so, in stage 4's "-> Redirected to" style),
# and its writes go out under an exactly-once session, so an INCR whose reply
# is lost (a fault proxy holds it, then resets the connection) is retried
# and applied once, on the same leader or, after kill -9, on the new one
# (-c names the other nodes). With --no-session the same loss leaves the
# write applied and the user told only that the connection dropped.
import os
import select
import subprocess
import sys
import time

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftcluster import SCALE, RaftCluster  # noqa: E402

KVCLI = os.path.join(kvtest.BIN_DIR, "kvcli-stage5")


class Kvcli:
    """kvcli reading commands from a pipe, one per line; its replies are
    read line by line as they come."""

    def __init__(self, test, *args):
        self.proc = subprocess.Popen([KVCLI] + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=kvtest.sanitizer_env())
        test.addCleanup(self.close)
        self.buf = b""

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("kvcli printed no line within %.1f s (got %r)" % (timeout, self.buf))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError("kvcli exited (got %r)" % self.buf)
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def finish(self):
        """Closes stdin; returns (exit status, stderr text)."""
        self.proc.stdin.close()
        err = self.proc.stderr.read().decode()
        return self.proc.wait(timeout=30), err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class KvcliClusterTest(kvtest.ServerTestCase):
    def setUp(self):
        self.c = RaftCluster()
        self.addCleanup(self.c.close)
        self.c.start()
        self.lead = self.c.wait_leader((4 * self.c.election_ms + 2000 * SCALE) / 1000.0)

    def run_kvcli(self, *args):
        p = subprocess.run([KVCLI] + list(args), capture_output=True, timeout=60, env=kvtest.sanitizer_env())
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def proxy_to_leader(self):
        p = kvtest.FaultProxy(("127.0.0.1", self.c.client_port[self.lead]))
        self.addCleanup(p.close)
        return p

    def wait_held_reply(self, proxy):
        kvtest.wait_for(lambda: proxy.stats()["held_s2c"] > 0, timeout=10 * SCALE,
                        message="the INCR's reply to reach the proxy")

    def test_follows_notleader_for_writes_and_reads(self):
        follower = next(i for i in self.c.nodes if i != self.lead)
        where = "127.0.0.1:%d" % self.c.client_port[self.lead]
        rc, out, err = self.run_kvcli("-p", str(self.c.client_port[follower]), "incr", "n")
        self.assertEqual((rc, out), (0, "1\n"), err)
        self.assertIn("-> Redirected to %s" % where, err)
        rc, out, err = self.run_kvcli("-p", str(self.c.client_port[follower]), "get", "n")
        self.assertEqual((rc, out), (0, "1\n"), err)
        self.assertIn("-> Redirected to %s" % where, err)

    def test_lost_reply_retried_once(self):
        proxy = self.proxy_to_leader()
        cli = Kvcli(self, "-p", str(proxy.port), "--timeout", str(5000 * SCALE))
        cli.send("set warm x")  # opens the session (seq 1)
        self.assertEqual(cli.read_line(10 * SCALE), "OK")
        proxy.one_way(kvtest.C2S)
        cli.send("incr n")
        self.wait_held_reply(proxy)
        self.assertEqual(self.c.command(self.lead, "GET", "n"), b"1")  # applied; kvcli has not heard
        proxy.cut("drop")
        proxy.heal()
        self.assertEqual(cli.read_line(10 * SCALE), "1")  # the first reply, from the session table
        cli.send("incr n")
        self.assertEqual(cli.read_line(10 * SCALE), "2")
        rc, err = cli.finish()
        self.assertEqual(rc, 0, err)
        self.assertIn("-> Retried 127.0.0.1:%d after" % proxy.port, err)
        self.assertEqual(self.c.command(self.lead, "GET", "n"), b"2")
        self.assertEqual(self.c.nodes[self.lead].info()["raft_session_retries_answered"], "1")

    def test_exactly_once_across_a_failover(self):
        proxy = self.proxy_to_leader()
        others = ",".join("127.0.0.1:%d" % self.c.client_port[i] for i in self.c.nodes if i != self.lead)
        cli = Kvcli(self, "-p", str(proxy.port), "-c", others, "--timeout", str(5000 * SCALE),
                    "--retry-ms", str(20000 * SCALE))
        cli.send("set warm x")
        self.assertEqual(cli.read_line(10 * SCALE), "OK")
        proxy.one_way(kvtest.C2S)
        cli.send("incr n")
        self.wait_held_reply(proxy)

        def everywhere():
            lists = [self.c.command(i, "SESSION", "LIST") for i in self.c.nodes]
            return all(len(x) == 1 and x[0][1] == 2 for x in lists)
        kvtest.wait_for(everywhere, timeout=10 * SCALE, message="every node to apply the INCR")
        self.c.nodes[self.lead].kill9()
        proxy.close()  # the old leader's address is gone: connections are refused
        self.assertEqual(cli.read_line(30 * SCALE), "1")  # answered by the new leader's table
        new = self.c.wait_leader((4 * self.c.election_ms + 2000 * SCALE) / 1000.0)
        self.assertEqual(self.c.command(new, "GET", "n"), b"1")
        self.assertEqual(self.c.nodes[new].info()["raft_session_retries_answered"], "1")
        cli.send("incr n")
        self.assertEqual(cli.read_line(10 * SCALE), "2")
        rc, err = cli.finish()
        self.assertEqual(rc, 0, err)
        self.assertIn("-> Retried", err)
        self.assertIn("-> Redirected to 127.0.0.1:%d" % self.c.client_port[new], err)

    def test_without_a_session_the_loss_is_the_users_problem(self):
        proxy = self.proxy_to_leader()
        cli = Kvcli(self, "-p", str(proxy.port), "--no-session", "--timeout", str(5000 * SCALE))
        proxy.one_way(kvtest.C2S)
        cli.send("incr n")
        self.wait_held_reply(proxy)
        proxy.cut("drop")
        proxy.heal()
        rc, err = cli.finish()
        self.assertEqual(rc, 1)
        self.assertIn("(error)", err)
        self.assertNotIn("-> Retried", err)
        # It applied although kvcli reported an error; retrying by hand would apply it twice.
        self.assertEqual(self.c.command(self.lead, "GET", "n"), b"1")
        self.assertEqual(self.c.nodes[self.lead].info()["raft_sessions"], "0")


if __name__ == "__main__":
    kvtest.main()
