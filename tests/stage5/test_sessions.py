# test_sessions.py - INCR, APPEND and exactly-once sessions as a client sees
# them, against real stage5-raft processes. A fault proxy between a client
# and the leader holds the reply direction, which makes "the write applied
# but the reply was lost, so the client retries" happen on purpose: with a
# session the retry gets the first reply and the write applies once; without
# one (a plain redis-cli write) it applies twice: at-least-once.
import os
import sys

import kvtest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raftcluster import SCALE, RaftCluster  # noqa: E402


def session_list(c, i):
    return [tuple(s) for s in c.command(i, "SESSION", "LIST")]


class OneNodeTest(kvtest.ServerTestCase):
    """A node started without --cluster is a one-node cluster: the state
    machine's answers without the network."""

    server_args = ["--data-dir", "{tmp}/data", "--max-sessions", "3"]

    def test_incr_as_redis(self):
        c = self.connect()
        self.assertEqual(c.command("INCR", "n"), 1)
        self.assertEqual(c.command("INCR", "n"), 2)
        self.assertEqual(c.command("GET", "n"), b"2")
        for bad in (b"abc", b" 1", b"+1", b"007", b"-0", b"", b"99999999999999999999", b"1.5"):
            self.assertEqual(c.command("SET", "bad", bad), "OK")
            self.assertError(c.command("INCR", "bad"), "ERR value is not an integer or out of range")
            self.assertEqual(c.command("GET", "bad"), bad)  # an error changes nothing
        self.assertEqual(c.command("SET", "min", "-9223372036854775808"), "OK")
        self.assertEqual(c.command("INCR", "min"), -9223372036854775807)
        self.assertEqual(c.command("SET", "max", "9223372036854775807"), "OK")
        self.assertError(c.command("INCR", "max"), "ERR increment or decrement would overflow")
        self.assertEqual(c.command("GET", "max"), b"9223372036854775807")
        self.assertError(c.command("INCR"), "ERR wrong number of arguments for 'incr' command")

    def test_append_returns_the_new_length(self):
        c = self.connect()
        self.assertEqual(c.command("APPEND", "a", "hello"), 5)
        self.assertEqual(c.command("APPEND", "a", " world"), 11)
        self.assertEqual(c.command("APPEND", "a", ""), 11)
        self.assertEqual(c.command("GET", "a"), b"hello world")
        self.assertEqual(c.command("APPEND", "num", "4"), 1)
        self.assertEqual(c.command("APPEND", "num", "2"), 2)
        self.assertEqual(c.command("INCR", "num"), 43)
        self.assertError(c.command("APPEND", "a"), "ERR wrong number of arguments for 'append' command")

    def test_session_answers_a_retry_from_the_table(self):
        c = self.connect()
        sid = c.command("SESSION", "OPEN")
        self.assertIsInstance(sid, int)
        self.assertGreater(sid, 0)
        self.assertEqual(c.command("SEQ", sid, 1, "INCR", "s"), 1)
        self.assertEqual(c.command("SEQ", sid, 1, "INCR", "s"), 1)  # the retry: first reply, not applied
        self.assertEqual(c.command("GET", "s"), b"1")
        self.assertEqual(c.command("SEQ", sid, 2, "APPEND", "s", "0"), 2)
        self.assertError(c.command("SEQ", sid, 1, "INCR", "s"),
                         "SESSIONSTALE seq 1 of session %d is below its last applied seq 2" % sid)
        self.assertEqual(c.command("GET", "s"), b"10")
        # An error reply is a reply: a retry gets it again, nothing applies.
        self.assertEqual(c.command("SET", "word", "x"), "OK")
        self.assertError(c.command("SEQ", sid, 3, "INCR", "word"), "ERR value is not an integer")
        self.assertEqual(c.command("SET", "word", "5"), "OK")
        self.assertError(c.command("SEQ", sid, 3, "INCR", "word"), "ERR value is not an integer")
        self.assertEqual(c.command("GET", "word"), b"5")
        # Gaps are allowed: a client may give up on a seq.
        self.assertEqual(c.command("SEQ", sid, 10, "SET", "t", "v"), "OK")
        self.assertEqual(c.command("SEQ", sid, 10, "DEL", "t"), "OK")  # same seq: the first reply
        self.assertEqual(c.command("GET", "t"), b"v")
        self.assertError(c.command("SEQ", 999999, 1, "INCR", "s"), "SESSIONEXPIRED session 999999 is unknown")
        self.assertError(c.command("SEQ", sid, 11, "GET", "s"), "ERR SEQ tags a write")
        self.assertError(c.command("SEQ", sid, 0, "INCR", "s"), "ERR SEQ wants a session id and a sequence")
        self.assertError(c.command("SEQ", "x", 1, "INCR", "s"), "ERR SEQ wants a session id and a sequence")
        self.assertError(c.command("SEQ", sid, 11, "SET", "k"), "ERR wrong number of arguments for 'set'")
        self.assertError(c.command("SESSION", "CLOSE"), "ERR unknown SESSION subcommand")
        info = self.server.info()
        self.assertEqual(info["raft_session_retries_answered"], "3")
        self.assertEqual(info["raft_session_stale"], "1")
        self.assertEqual(info["raft_session_unknown"], "1")
        self.assertEqual(info["raft_max_sessions"], "3")


class ClusterSessionsTest(kvtest.ServerTestCase):
    def cluster(self, **kw):
        c = RaftCluster(**kw)
        self.addCleanup(c.close)
        c.start()
        return c

    def bound(self, c):
        return (4 * c.election_ms + 2000 * SCALE) / 1000.0

    def proxy_to(self, c, i):
        """A proxy in front of node i's client port."""
        p = kvtest.FaultProxy(("127.0.0.1", c.client_port[i]))
        self.addCleanup(p.close)
        return p

    def send_reply_held(self, proxy, *command):
        """Sends command through the proxy with the reply direction held."""
        proxy.one_way(kvtest.C2S)
        conn = kvtest.Conn(proxy.port)
        self.addCleanup(conn.close)
        conn.send_command(*command)
        return conn

    def drop_held_reply(self, proxy):
        """Once the reply sits in the proxy, resets the client's connection:
        the command was applied, and its reply is lost."""
        kvtest.wait_for(lambda: proxy.stats()["held_s2c"] > 0, timeout=10 * SCALE,
                        message="the server's reply to reach the proxy")
        proxy.cut("drop")
        proxy.heal()

    def test_lost_reply_retried_with_a_session_applies_once(self):
        c = self.cluster()
        lead = c.wait_leader(self.bound(c))
        proxy = self.proxy_to(c, lead)
        sid = c.command(lead, "SESSION", "OPEN")
        self.send_reply_held(proxy, "SEQ", sid, 1, "INCR", "n")
        self.drop_held_reply(proxy)
        self.assertEqual(c.command(lead, "GET", "n"), b"1")  # applied, though the client never heard
        # The client retries (here through the proxy again, on a new connection).
        with kvtest.Conn(proxy.port) as conn:
            self.assertEqual(conn.command("SEQ", sid, 1, "INCR", "n"), 1)
        self.assertEqual(c.command(lead, "GET", "n"), b"1")
        self.assertEqual(c.nodes[lead].info()["raft_session_retries_answered"], "1")
        c.wait_same_digest(expect=c.command(lead, "DIGEST"))

    def test_lost_reply_retried_without_a_session_applies_twice(self):
        # What redis-cli gets: at-least-once. The chapter says so.
        c = self.cluster()
        lead = c.wait_leader(self.bound(c))
        proxy = self.proxy_to(c, lead)
        self.send_reply_held(proxy, "INCR", "n")
        self.drop_held_reply(proxy)
        self.assertEqual(c.command(lead, "GET", "n"), b"1")
        with kvtest.Conn(proxy.port) as conn:
            self.assertEqual(conn.command("INCR", "n"), 2)
        self.assertEqual(c.command(lead, "GET", "n"), b"2")

    def test_exactly_once_across_a_failover(self):
        c = self.cluster()
        lead = c.wait_leader(self.bound(c))
        proxy = self.proxy_to(c, lead)
        sid = c.command(lead, "SESSION", "OPEN")
        self.assertEqual(c.command(lead, "SEQ", sid, 1, "SET", "n", "10"), "OK")
        self.send_reply_held(proxy, "SEQ", sid, 2, "INCR", "n")
        self.drop_held_reply(proxy)
        # Replicated and applied everywhere: every node's table has seq 2.
        kvtest.wait_for(lambda: all(session_list(c, i) and session_list(c, i)[0][1] == 2 for i in c.nodes),
                        timeout=10 * SCALE, message="every node to apply the INCR")
        c.nodes[lead].kill9()
        new = c.wait_leader(self.bound(c))
        self.assertNotEqual(new, lead)
        # The client, its reply lost with the old leader, retries on the new one.
        self.assertEqual(c.command(new, "SEQ", sid, 2, "INCR", "n"), 11)
        self.assertEqual(c.command(new, "GET", "n"), b"11")
        self.assertEqual(c.nodes[new].info()["raft_session_retries_answered"], "1")
        self.assertEqual(c.command(new, "SEQ", sid, 3, "INCR", "n"), 12)
        c.nodes[lead].start()
        c.wait_same_digest(expect=c.command(new, "DIGEST"))

    def test_expiry_is_deterministic(self):
        c = self.cluster(extra=("--max-sessions", "3"))
        lead = c.wait_leader(self.bound(c))
        # The limit travels in the log (each SESSION OPEN entry carries the
        # leader's): followers restarted with another flag still evict alike.
        for i in c.nodes:
            if i != lead:
                srv = c.nodes[i]
                srv.stop()
                srv.args[srv.args.index("--max-sessions") + 1] = "50"
                srv.start()
                kvtest.wait_for(lambda: c.role(i)["leader"] == lead, timeout=self.bound(c),
                                message="node %d to follow the leader again" % i)
        with c.nodes[lead].connect() as conn:
            a = conn.command("SESSION", "OPEN")
            b = conn.command("SESSION", "OPEN")
            d = conn.command("SESSION", "OPEN")
            # Use a after b: b is now the least recently used (by log index).
            self.assertEqual(conn.command("SEQ", a, 1, "INCR", "x"), 1)
            self.assertEqual(conn.command("SEQ", d, 1, "INCR", "x"), 2)
            e = conn.command("SESSION", "OPEN")  # the table is full: b goes
            self.assertError(conn.command("SEQ", b, 1, "INCR", "x"), "SESSIONEXPIRED session %d" % b)
            self.assertEqual(conn.command("SEQ", a, 2, "INCR", "x"), 3)
            f = conn.command("SESSION", "OPEN")  # now d is the oldest in use
            self.assertError(conn.command("SEQ", d, 2, "INCR", "x"), "SESSIONEXPIRED session %d" % d)
        want = session_list(c, lead)
        self.assertEqual([s[0] for s in want], [a, e, f])
        self.assertEqual(want[0][1], 2)
        # Every node holds the same table once it has applied as far.
        kvtest.wait_for(lambda: all(session_list(c, i) == want for i in c.nodes), timeout=10 * SCALE,
                        message="every node's session table to equal the leader's %r" % (want,))
        for i in c.nodes:
            self.assertEqual(c.nodes[i].info()["raft_sessions_expired"], "2")
        # A node restarted from its log rebuilds the same table.
        other = next(i for i in c.nodes if i != lead)
        c.nodes[other].kill9()
        c.nodes[other].start()
        kvtest.wait_for(lambda: session_list(c, other) == want, timeout=10 * SCALE,
                        message="the restarted node's table to be rebuilt")
        c.wait_same_digest(expect=c.command(lead, "DIGEST"))


if __name__ == "__main__":
    kvtest.main()
