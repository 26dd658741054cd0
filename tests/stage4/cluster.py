# cluster.py - stage 4 clusters of real processes on loopback for the
# replication suites: a Node is a kvtest.Server with its own peer port and
# data directory (kept across restarts), started as a leader or as a follower
# of another node; ClusterCase starts them, stops them (sanitizer logs are
# checked by kvtest on every stop) and waits, with deadlines, for what a user
# would poll: a follower's acked index on the leader, its DIGEST.
#
# Deadlines are scaled under valgrind (KV_UNDER_VALGRIND), where servers run
# 20-50x slower; nothing here sleeps to synchronise.
import os
import signal
import socket
import threading

import kvtest

# Valgrind slows servers 20-50x; KV_DEADLINE_SCALE (set by CMake, lower in
# lab builds) scales on top.
SCALE = (25.0 if kvtest.UNDER_VALGRIND else 1.0) * float(os.environ.get("KV_DEADLINE_SCALE") or 1)


def secs(s):
    """A deadline of s seconds in the sanitizer build, scaled under valgrind."""
    return s * SCALE


class Node(kvtest.Server):
    """One stage 4 node: client port (kvtest's), peer port, data directory
    in its temp dir. replicaof is ("127.0.0.1", peer port) or None."""

    def __init__(self, name, replicaof=None, args=()):
        self.name = name
        self.peer_port = kvtest.free_port()
        self.replicaof = replicaof
        super().__init__(["--data-dir", "{tmp}/data"] + list(args))

    @property
    def data_dir(self):
        return os.path.join(self.tmp, "data")

    @property
    def peer_addr(self):
        return ("127.0.0.1", self.peer_port)

    def command_line(self):
        cmd = super().command_line() + ["--peer-port", str(self.peer_port)]
        if self.replicaof is not None:
            cmd += ["--replicaof", "%s:%d" % tuple(self.replicaof)]
        return cmd

    def start(self, timeout=None):
        timeout = timeout or secs(10)
        try:
            return super().start(timeout)
        except AssertionError:
            # Lost the peer port to another process between free_port() and
            # the bind: a node that never ran may take another one.
            if "in use" not in self.log().lower() or os.path.exists(self.data_dir):
                raise
            self.peer_port = kvtest.free_port()
            return super().start(timeout)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        return super().stop(sig, timeout or secs(10))

    # -- what a client sees --

    def cmd(self, *args, timeout=None):
        with self.connect(timeout=secs(10)) as c:
            return c.command(*args, timeout=timeout)

    def digest(self):
        return self.cmd("DIGEST")

    def log_index(self):
        return int(self.info()["log_index"])

    def followers(self):
        """The leader's INFO followerN lines, as dicts (addr, peer, state,
        acked_index, lag_records, lag_ms)."""
        out = []
        for k, v in sorted(self.info().items()):
            if k.startswith("follower") and k[8:].isdigit():
                out.append(dict(f.split("=", 1) for f in v.split(",")))
        return out

    def __repr__(self):
        return "<%s client %d peer %d>" % (self.name, self.port, self.peer_port)


class BudgetRelay:
    """A one-connection relay whose leader-to-follower direction forwards
    only `budget` bytes, then holds the rest: a follower behind it stops at
    a known byte of the stream, whatever the timing (kvtest.FaultProxy cuts
    at a moment, not at a byte). The other direction flows freely."""

    def __init__(self, target, budget):
        self.target = target
        self.budget = budget
        self.forwarded = 0
        self.cond = threading.Condition()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
        except OSError:
            return
        self.socks += [client, server]
        threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
        self._pump(server, client, True)

    def _pump(self, src, dst, limited):
        try:
            while True:
                with self.cond:
                    while limited and self.forwarded >= self.budget and not self.closed:
                        self.cond.wait()
                    if self.closed:
                        return
                    room = self.budget - self.forwarded if limited else 65536
                data = src.recv(min(room, 65536))
                if not data:
                    return
                dst.sendall(data)
                if limited:
                    with self.cond:
                        self.forwarded += len(data)
        except OSError:
            return

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for s in self.socks + [self.listener]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class ClusterCase(kvtest.ServerTestCase):
    """Base class of the replication suites: nodes and proxies that clean up
    after themselves, and the waits every test ends with."""

    def node(self, name, replicaof=None, args=(), start=True):
        """A node; replicaof is a Node (follow its peer port), an address
        (host, port), or None for a leader."""
        if isinstance(replicaof, Node):
            replicaof = replicaof.peer_addr
        n = Node(name, replicaof, args)
        self.addCleanup(n.close)
        return n.start() if start else n

    def closed_port(self):
        """A loopback port bound by the test and never listening: a follower
        pointed there is refused at every attempt and reaches no leader, and
        no other process can take the port meanwhile."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

    def proxy_to(self, node):
        """A kvtest.FaultProxy in front of node's peer port."""
        p = kvtest.FaultProxy(node.peer_addr, name="proxy->%s" % node.name)
        self.addCleanup(p.close)
        return p

    def write(self, node, pairs):
        """SET every (key, value), pipelined; each must be acknowledged."""
        pairs = list(pairs)
        with node.connect(timeout=secs(10)) as c:
            for i in range(0, len(pairs), 200):
                batch = pairs[i:i + 200]
                for k, v in batch:
                    c.send_command("SET", k, v)
                for (k, _), r in zip(batch, c.read_replies(len(batch), timeout=secs(10))):
                    self.assertEqual(r, "OK", "SET %s on %s" % (k, node.name))

    def wait_acked(self, leader, count, index=None, timeout=20):
        """Until `count` followers are streaming on the leader with acked
        index >= index (default: the leader's last index). Returns them."""
        index = leader.log_index() if index is None else index

        def acked():
            fs = [f for f in leader.followers()
                  if f["state"] == "streaming" and int(f["acked_index"]) >= index]
            return fs if len(fs) >= count else None
        return kvtest.wait_for(acked, timeout=secs(timeout),
                               message="%d follower(s) of %s acked index %d" % (count, leader.name, index))

    def wait_role(self, node, role, link=None, timeout=20):
        """Until INFO says role (and, for a follower, leader_link_status)."""
        def ok():
            i = node.info()
            return i["role"] == role and (link is None or i.get("leader_link_status") == link)
        kvtest.wait_for(ok, timeout=secs(timeout), message="%s role:%s link:%s" % (node.name, role, link))

    def assert_converged(self, leader, followers, timeout=30):
        """After the load stops: every follower catches up to the leader's
        last index and its DIGEST equals the leader's."""
        want_index = leader.log_index()
        want = leader.digest()

        def caught_up():
            return all(f.log_index() == want_index and f.digest() == want for f in followers)
        try:
            kvtest.wait_for(caught_up, timeout=secs(timeout), message="followers converged")
        except AssertionError:
            for f in followers:  # say which node differs, and how
                self.assertEqual((f.name, f.log_index(), f.digest()), (f.name, want_index, want),
                                 "%s did not converge on %s" % (f.name, leader.name))
            raise
        for f in followers:
            self.assertEqual(f.digest(), want)
        return want
