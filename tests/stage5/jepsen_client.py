# jepsen_client.py - the clients of a fault run (jepsen.py): threads doing
# one GET/SET/INCR/APPEND at a time against the node they believe leads,
# each operation recorded with the history recorder as the reply allows:
# ok or error when the answer is definite, unknown when the operation may or
# may not have taken effect, not at all when it certainly did not (see
# jepsen.py's header for the rules).
import collections
import random
import threading
import time

import kvtest

# How often each operation is picked. APPEND's suffix makes a value no
# integer, so INCR fails (a definite error) until the next SET: APPEND is
# kept rarer than SET to leave INCR something to count.
WEIGHTS = {"get": 4, "set": 3, "incr": 3, "append": 1}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, what, n=1):
        with self.lock:
            self.c[what] += n


def as_str(b):
    return None if b is None else b.decode("utf-8", "surrogateescape")


class Client(threading.Thread):
    """One client: one operation at a time, sent to the node it believes
    leads (reads to a random node with follower_reads), following
    NOTLEADER leader=... hints. A connection whose reply never came is
    closed, never reused: the late reply would be taken for the next one."""

    def __init__(self, run, index):
        super().__init__(name="client-%d" % index, daemon=True)
        self.run_ = run
        self.name_ = "c%d" % index
        self.rng = random.Random("client-%d-%d" % (run.seed, index))
        self.conns = {}
        self.target = run.ports[index % len(run.ports)]
        self.confirmed = False      # target answered ROLE as leader, nothing went wrong since
        self.seq = 0

    def run(self):
        try:
            while not self.run_.stop.is_set():
                self.one_op()
        except BaseException as e:  # pragma: no cover - reported by the run
            self.run_.client_errors.append("%s: %r" % (self.name_, e))
        finally:
            for c in self.conns.values():
                c.close()

    def _conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = kvtest.Conn(port, timeout=self.run_.op_timeout)
            # Dialling a killed node's port from that same port number (the
            # kernel's pick) connects the socket to itself: no server is
            # there, and the node could not bind its port on restart.
            if c.sock.getsockname() == c.sock.getpeername():
                c.close()
                raise ConnectionRefusedError("connected to itself: nothing listens on %d" % port)
            self.conns[port] = c
        return c

    def _drop(self, port):
        c = self.conns.pop(port, None)
        if c is not None:
            c.close()

    def _other_node(self):
        self.target = self.rng.choice([p for p in self.run_.ports if p != self.target])
        self.confirmed = False

    def _set_target(self, port):
        if port != self.target:
            self.target = port
            self.confirmed = False

    def confirm_leader(self):
        """Before a write to a node not yet seen leading: ask it ROLE (local,
        changes nothing). While NOTLEADER on a write counts as unknown, every
        write sent to a follower would add an unknown operation, and the
        checker's search grows exponentially with unknown writes on a key;
        a client that knows where the leader is sends it few. Returns an
        outcome for one_op, or None when the write may go."""
        run = self.run_
        try:
            r = self._conn(self.target).command("ROLE", timeout=run.op_timeout)
        except (OSError, kvtest.RespProtocolError):
            self._drop(self.target)
            return "down"
        if isinstance(r, list) and len(r) >= 3 and r[0] in (b"leader", "leader"):
            self.confirmed = True
            return None
        lead = r[2] if isinstance(r, list) and len(r) >= 3 else 0
        if lead in run.port_of and run.port_of[lead] != self.target:
            self._set_target(run.port_of[lead])
            return "redirect"
        return "no-leader"

    def one_op(self):
        run = self.run_
        start = time.monotonic()
        op = self.rng.choices(run.ops, [WEIGHTS[o] for o in run.ops])[0]
        key = run.key(self.rng.randrange(run.nkeys))
        self.seq += 1
        value = None
        if op == "set":
            value = str(self.rng.randrange(10**8, 10**9))
        elif op == "append":
            value = "%s.%d," % (self.name_, self.seq)
        port = self.target
        outcome = None
        if op == "get":
            if run.follower_reads:
                port = self.rng.choice(run.ports)
        elif run.notleader_writes != "definite" and not self.confirmed:
            outcome = self.confirm_leader()
            port = self.target
        if outcome is None:
            outcome = self.attempt(port, op, key, value)
            if outcome != "ok":
                self.confirmed = False
        if outcome == "down" or outcome == "no-leader":
            self._other_node()
        # A client's think time (it paces the load; nothing waits on it).
        run.stop.wait(max(0.0, start + 1.0 / run.rate - time.monotonic()))

    def attempt(self, port, op, key, value):
        run = self.run_
        try:
            conn = self._conn(port)
        except OSError:
            run.stats.add("refused")
            return "down"           # nothing sent: nothing to record
        args = [op.upper(), key] + ([value] if value is not None else [])
        p = run.recorder.begin(self.name_, op, key, value)
        try:
            conn.send_command(*args)
            reply = conn.read_reply(timeout=run.op_timeout)
        except (OSError, kvtest.RespProtocolError) as e:
            # socket.timeout and ConnectionClosed are OSErrors too.
            self._drop(port)
            if op == "get":
                p.not_sent()        # a read that never answered changed nothing
                run.stats.add("read-lost")
            else:
                p.unknown(type(e).__name__)
                run.stats.add("unknown")
            return "down"
        return self.classify(p, port, op, reply)

    def classify(self, p, port, op, reply):
        run = self.run_
        if isinstance(reply, kvtest.RespError):
            text = reply.text
            if text.startswith("NOTLEADER"):
                run.stats.add("notleader")
                if op == "get" or run.notleader_writes == "definite":
                    p.not_sent()
                else:
                    p.unknown(text)
                    run.stats.add("unknown")
                hint = text.partition("leader=")[2].strip()
                if hint and hint != "unknown":
                    self._set_target(int(hint.rpartition(":")[2]))
                    return "redirect"
                return "no-leader"
            if text.startswith("TRYAGAIN"):
                run.stats.add("tryagain")
                if op == "get":
                    p.not_sent()
                else:
                    p.unknown(text)
                    run.stats.add("unknown")
                return "no-leader"
            if op == "incr" and text.startswith("ERR value is not an integer"):
                p.error(text)
                run.stats.add("error")
                return "ok"
            run.unexpected.append("%s -> -%s" % (op, text))
            p.unknown(text)
            run.stats.add("unknown")
            return "ok"
        expect = {"get": (bytes, type(None)), "set": (str,), "incr": (int,), "append": (int,)}[op]
        if not isinstance(reply, expect) or (op == "set" and reply != "OK"):
            run.unexpected.append("%s -> %r" % (op, reply))
            p.unknown("unexpected reply %r" % (reply,))
            run.stats.add("unknown")
            return "ok"
        p.ok(as_str(reply) if op == "get" else reply)
        run.stats.add("ok")
        return "ok"


def probe_ops(cluster, timeout):
    """The operations the server knows: INCR and APPEND if it answers them
    (sent once each, to a probe key the workload never touches), else only
    GET and SET."""
    def ask(*cmd):
        lead = cluster.current_leader()
        if lead is None:
            return None
        r = cluster.command(lead, *cmd)
        if isinstance(r, kvtest.RespError) and not r.text.startswith("ERR unknown command"):
            return None         # NOTLEADER / TRYAGAIN: ask again
        return r
    ops = ["get", "set"]
    for op in ("incr", "append"):
        cmd = ("INCR", "jepsen-probe") if op == "incr" else ("APPEND", "jepsen-probe-s", "x")
        r = kvtest.wait_for(lambda: ask(*cmd) or None, timeout=timeout,
                            message="an answer to %s from the leader" % cmd[0])
        if not isinstance(r, kvtest.RespError):
            ops.append(op)
    return ops
