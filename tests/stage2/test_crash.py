# test_crash.py - the promise of stage 2: with --fsync always, every write a
# client saw acknowledged survives kill -9, and nothing unacknowledged that
# was never sent appears. Concurrent writers, 20 rounds, a random kill each.
import random
import threading
import time

import os

import kvtest
import walfiles

ROUNDS = 20
WRITERS = 8


class Writer(threading.Thread):
    """Writes its own keys sequentially; remembers the last acknowledged
    value of each key and the one value in flight (sent, not yet acked)."""

    def __init__(self, port, wid, rnd):
        super().__init__(daemon=True)
        self.port, self.wid, self.rnd = port, wid, rnd
        self.acked = {}       # key -> value (None: acknowledged delete)
        self.inflight = None  # (key, value) sent but not acknowledged
        self.ops = 0
        self.stop = False

    def run(self):
        try:
            c = kvtest.Conn(self.port, timeout=5)
        except OSError:
            return
        n = 0
        try:
            while not self.stop:
                key = "w%d:k%d" % (self.wid, self.rnd.randrange(20))
                n += 1
                if self.rnd.random() < 0.1:
                    self.inflight = (key, None)
                    c.send_command("DEL", key)
                else:
                    value = "w%d-%d" % (self.wid, n)
                    self.inflight = (key, value)
                    c.send_command("SET", key, value)
                reply = c.read_reply()
                if isinstance(reply, kvtest.RespError):
                    raise AssertionError("unexpected error reply %r" % reply)
                self.acked[self.inflight[0]] = self.inflight[1]
                self.inflight = None
                self.ops += 1
        except (OSError, kvtest.ConnectionClosed, kvtest.RespProtocolError):
            return  # the server was killed under us: expected
        finally:
            c.close()


class CrashRecovery(kvtest.ServerTestCase):

    def test_kill9_loses_no_acknowledged_write(self):
        rnd = random.Random(20261122)
        srv = self.start_server(["--fsync", "always"])
        # Every writer's acknowledged state carries across rounds: a key's
        # truth is the last acknowledged value ever, whatever round it was in.
        truth = {}
        total_ops = 0
        for round_no in range(ROUNDS):
            writers = [Writer(srv.port, w, random.Random(rnd.random())) for w in range(WRITERS)]
            for w in writers:
                w.acked = {k: v for k, v in truth.items() if k.startswith("w%d:" % w.wid)}
                w.start()
            # Kill after a random number of acknowledged writes (polled, not slept).
            target = rnd.randrange(20, 400)
            kvtest.wait_for(lambda: sum(w.ops for w in writers) >= target, timeout=30,
                            message="%d acknowledged writes" % target)
            srv.kill9()
            for w in writers:
                w.stop = True
                w.join(10)
            # The crash left the last segment preallocated (records, then
            # zeros): recovery must read the zeros as the end of the log.
            last = walfiles.segments(os.path.join(srv.tmp, "data"))[-1]
            self.assertGreater(os.path.getsize(last), walfiles.data_end(last))
            srv.start()
            c = srv.connect()
            for w in writers:
                for key in {"w%d:k%d" % (w.wid, i) for i in range(20)}:
                    got = c.command("GET", key)
                    got = got.decode() if got is not None else None
                    allowed = {w.acked.get(key)}
                    if w.inflight and w.inflight[0] == key:
                        allowed.add(w.inflight[1])  # may or may not have made it
                    self.assertIn(got, allowed, "round %d: %s is %r, acknowledged %r, in flight %r"
                                  % (round_no, key, got, w.acked.get(key), w.inflight))
                    truth[key] = got
                total_ops += w.ops
            # Nothing outside the writers' key space exists.
            self.assertEqual(c.command("DBSIZE"), sum(1 for v in truth.values() if v is not None))
            c.close()
        self.assertGreater(total_ops, ROUNDS * 20)
        self.assertIn("replayed", srv.log())


if __name__ == "__main__":
    kvtest.main()
