# test_faultproxy.py - the fault proxy (kvtest.FaultProxy) and Partition
# against plain echo servers: what a test that cuts, delays or makes one-way
# a link between real servers relies on. No server of the workbook runs here.
import os
import random
import socket
import sys
import threading
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402
from kvtest import C2S, S2C, FaultProxy, Partition, ProxyMesh, wait_for  # noqa: E402

TIMEOUT = 10.0


class EchoServer:
    """A threaded echo server on a free loopback port. It sends `greeting`
    on every new connection, then echoes; it counts connections accepted and
    closed and keeps every byte it received."""

    def __init__(self, greeting=b""):
        self.greeting = greeting
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.address = self.sock.getsockname()
        self.lock = threading.Lock()
        self.accepted = 0
        self.closed = 0
        self.received = bytearray()
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.greeting:
                c.sendall(self.greeting)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.received += data
                c.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.closed += 1
            c.close()

    def got(self):
        with self.lock:
            return bytes(self.received)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(TIMEOUT)


def recv_exactly(sock, n, timeout=TIMEOUT):
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise AssertionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += data
    return bytes(buf)


def pending(sock):
    """Bytes already arrived on sock, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def closed_by_peer(sock, timeout=TIMEOUT):
    """Wait until the peer closed or reset the connection: True then."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True


def refused(address):
    """True when a new connection to address is refused or reset: the reset
    may arrive before connect() returns, or after."""
    try:
        s = socket.create_connection(address, timeout=TIMEOUT)
    except (ConnectionResetError, ConnectionRefusedError):
        return True
    with s:
        return closed_by_peer(s)


class ProxyTestCase(unittest.TestCase):
    def echo(self, **kw):
        srv = EchoServer(**kw)
        self.addCleanup(srv.close)
        return srv

    def proxy(self, target):
        p = FaultProxy(target)
        self.addCleanup(p.close)
        return p

    def connect(self, proxy):
        s = socket.create_connection(proxy.address, timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(s.close)
        return s

    def roundtrip(self, s, data):
        s.sendall(data)
        self.assertEqual(recv_exactly(s, len(data)), data)

    def wait_stat(self, proxy, key, pred, message=None):
        return wait_for(lambda: pred(proxy.stats()[key]), timeout=TIMEOUT,
                        message=message or "%s stat %s" % (proxy, key))


class TestForwarding(ProxyTestCase):
    def test_bytes_pass_both_ways_and_are_counted(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        self.roundtrip(s, b"hello\n")
        # 8 MiB each way at once: partial writes and the hold limit (4 MiB)
        # are both exercised, and nothing may be lost or reordered.
        payload = random.Random(1).randbytes(8 << 20)
        t = threading.Thread(target=s.sendall, args=(payload,))
        t.start()
        got = recv_exactly(s, len(payload), timeout=60)
        t.join()
        self.assertTrue(got == payload, "echoed payload differs")
        st = p.stats()
        self.assertEqual(st["forwarded_c2s"], 6 + len(payload))
        self.assertEqual(st["forwarded_s2c"], 6 + len(payload))
        self.assertEqual((st["accepted"], st["active"], st["held_c2s"], st["held_s2c"]), (1, 1, 0, 0))

    def test_half_close_passes_through(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(TIMEOUT)
        got = b""
        while True:
            data = s.recv(100)
            if not data:
                break
            got += data
        self.assertEqual(got, b"last words")  # the echo server saw EOF and closed after echoing
        self.wait_stat(p, "active", lambda n: n == 0)

    def test_many_concurrent_connections(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        rng = random.Random(2)
        conns = [self.connect(p) for _ in range(64)]
        payloads = [rng.randbytes(rng.randint(1, 200000)) for _ in conns]
        senders = [threading.Thread(target=c.sendall, args=(d,)) for c, d in zip(conns, payloads)]
        for t in senders:
            t.start()
        for c, d in zip(conns, payloads):
            self.assertTrue(recv_exactly(c, len(d), timeout=60) == d)
        for t in senders:
            t.join()
        st = p.stats()
        # accepted may count a stray probe from another test (port scans for a
        # free port connect to it); active is ours alone.
        self.assertGreaterEqual(st["accepted"], 64)
        self.assertEqual(st["active"], 64)
        self.assertEqual(st["forwarded_c2s"], sum(map(len, payloads)))
        for c in conns:
            c.close()
        self.wait_stat(p, "active", lambda n: n == 0)
        wait_for(lambda: srv.closed == 64, timeout=TIMEOUT, message="echo server saw every close")

    def test_target_down_resets_the_client(self):
        port = kvtest.free_port()  # nothing listens there
        p = self.proxy(("127.0.0.1", port))
        self.assertTrue(refused(p.address))
        self.wait_stat(p, "connect_failures", lambda n: n == 1)


class TestCut(ProxyTestCase):
    def test_drop_resets_connections_and_refuses_new_ones_until_heal(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        self.roundtrip(s, b"before")
        p.cut(mode="drop")
        self.assertEqual(p.state, "drop")
        self.assertTrue(closed_by_peer(s))
        wait_for(lambda: srv.closed == 1, timeout=TIMEOUT, message="server side of the link reset")
        self.assertTrue(refused(p.address))  # the kernel completes the handshake; the proxy resets it
        st = p.stats()
        self.assertEqual((st["accepted"], st["refused"], st["active"]), (2, 1, 0))
        self.assertEqual(srv.accepted, 1)  # the refused one never reached the server
        p.heal()
        self.assertEqual(p.state, "up")
        self.roundtrip(self.connect(p), b"after")

    def test_blackhole_holds_bytes_and_heal_delivers_them(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        self.roundtrip(s, b"before")
        p.cut()
        self.assertEqual(p.state, "blackhole")
        s.sendall(b"held")
        self.wait_stat(p, "held_c2s", lambda n: n == 4)
        self.assertEqual(srv.got(), b"before")  # nothing crossed
        self.assertEqual(pending(s), b"")
        # A new connection is accepted but goes nowhere: the server never sees it.
        s2 = self.connect(p)
        self.wait_stat(p, "deferred", lambda n: n == 1)
        s2.sendall(b"queued")
        self.wait_stat(p, "held_c2s", lambda n: n == 10)
        self.assertEqual(srv.accepted, 1)
        self.assertEqual(p.stats()["active"], 2)  # the held connection was not closed
        p.heal()
        self.assertEqual(recv_exactly(s, 4), b"held")
        self.assertEqual(recv_exactly(s2, 6), b"queued")
        self.assertEqual(srv.accepted, 2)
        self.roundtrip(s, b"after")

    def test_blackhole_holds_the_servers_bytes_too(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        p.one_way(C2S)  # the echo of "ping" will be held in the proxy
        s.sendall(b"ping")
        wait_for(lambda: srv.got() == b"ping", timeout=TIMEOUT, message="server got ping")
        self.wait_stat(p, "held_s2c", lambda n: n == 4)
        p.cut()
        s.sendall(b"more")
        self.wait_stat(p, "held_c2s", lambda n: n == 4)
        self.assertEqual(srv.got(), b"ping")
        self.assertEqual(pending(s), b"")
        p.heal()
        self.assertEqual(recv_exactly(s, 8), b"pingmore")

    def test_a_close_during_blackhole_arrives_after_the_held_bytes(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        self.roundtrip(s, b"hi")
        p.cut()
        s.sendall(b"bye")
        s.shutdown(socket.SHUT_WR)
        self.wait_stat(p, "held_c2s", lambda n: n == 3)
        self.assertEqual(srv.closed, 0)  # the FIN is held with the bytes
        p.heal()
        self.assertEqual(recv_exactly(s, 3), b"bye")
        self.assertEqual(s.recv(10), b"")  # the server saw EOF after "bye" and closed
        self.assertEqual(srv.got(), b"hibye")

    def test_a_long_blackhole_blocks_the_sender_and_loses_nothing(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        p.cut()
        # More than the proxy holds (HOLD_LIMIT) plus what the kernel buffers.
        payload = random.Random(3).randbytes(32 << 20)
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        self.wait_stat(p, "held_c2s", lambda n: n >= kvtest.faultproxy.HOLD_LIMIT)
        self.assertLessEqual(p.stats()["held_c2s"], kvtest.faultproxy.HOLD_LIMIT + kvtest.faultproxy.CHUNK)
        self.assertTrue(sender.is_alive(), "the sender finished: nothing pushed back")
        self.assertEqual(srv.got(), b"")
        p.heal()
        got = recv_exactly(s, len(payload), timeout=60)
        sender.join(TIMEOUT)
        self.assertTrue(got == payload, "payload damaged across the blackhole")

    def test_cut_rejects_an_unknown_mode(self):
        p = self.proxy(self.echo().address)
        with self.assertRaises(ValueError):
            p.cut(mode="sever")
        self.assertEqual(p.state, "up")


class TestOneWay(ProxyTestCase):
    def test_client_to_server_only(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        p.one_way(C2S)
        self.assertEqual(p.state, "one_way:c2s")
        s = self.connect(p)
        s.sendall(b"to server")
        wait_for(lambda: srv.got() == b"to server", timeout=TIMEOUT, message="server got the bytes")
        self.wait_stat(p, "held_s2c", lambda n: n == 9)  # the echo is held
        self.assertEqual(pending(s), b"")
        p.heal()
        self.assertEqual(recv_exactly(s, 9), b"to server")

    def test_server_to_client_only(self):
        srv = self.echo(greeting=b"hello from server")
        p = self.proxy(srv.address)
        p.one_way(S2C)
        s = self.connect(p)
        self.assertEqual(recv_exactly(s, 17), b"hello from server")
        s.sendall(b"unheard")
        self.wait_stat(p, "held_c2s", lambda n: n == 7)
        self.assertEqual(srv.got(), b"")
        p.heal()
        self.assertEqual(recv_exactly(s, 7), b"unheard")
        self.assertEqual(srv.got(), b"unheard")

    def test_direction_is_checked(self):
        p = self.proxy(self.echo().address)
        with self.assertRaises(ValueError):
            p.one_way("up")


class TestDelay(ProxyTestCase):
    def rtt(self, s, data=b"x"):
        t0 = time.monotonic()
        self.roundtrip(s, data)
        return time.monotonic() - t0

    def test_delay_is_applied_per_chunk_each_way(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        self.rtt(s)  # connection set up
        p.delay(150)
        # 150 ms out and 150 ms back: never less, and within a generous
        # tolerance for a loaded 2-core machine.
        rtt = self.rtt(s)
        self.assertGreaterEqual(rtt, 0.300)
        self.assertLess(rtt, 0.300 + 1.0)
        p.delay(150, direction=S2C)
        p.delay(0, direction=C2S)
        rtt = self.rtt(s)
        self.assertGreaterEqual(rtt, 0.150)
        self.assertLess(rtt, 0.150 + 1.0)
        p.delay(0)
        self.assertLess(self.rtt(s), 0.150)

    def test_order_is_kept_when_the_delay_drops(self):
        srv = self.echo()
        p = self.proxy(srv.address)
        s = self.connect(p)
        p.delay(400, direction=C2S)
        t0 = time.monotonic()
        s.sendall(b"first ")
        self.wait_stat(p, "held_c2s", lambda n: n == 6)  # read by the proxy under the 400 ms delay
        p.delay(0, direction=C2S)
        s.sendall(b"second")
        self.assertEqual(recv_exactly(s, 12), b"first second")
        self.assertGreaterEqual(time.monotonic() - t0, 0.400)

    def test_negative_delay_is_refused(self):
        p = self.proxy(self.echo().address)
        with self.assertRaises(ValueError):
            p.delay(-1)


class TestClose(ProxyTestCase):
    def test_close_resets_connections_and_releases_the_port(self):
        srv = self.echo()
        p = FaultProxy(srv.address)
        s = self.connect(p)
        self.roundtrip(s, b"x")
        port = p.port
        p.close()
        self.assertTrue(closed_by_peer(s))
        self.assertFalse(kvtest.accepts_connections(port))
        self.assertTrue(kvtest.port_is_free(port, reuse_addr=True))
        again = FaultProxy(srv.address, listen_port=port)  # a proxy re-created on the same port
        self.addCleanup(again.close)
        self.roundtrip(self.connect(again), b"y")
        with self.assertRaises(RuntimeError):
            p.cut()
        self.assertEqual(p.stats()["forwarded_c2s"], 1)  # the last counters stay readable
        p.close()  # twice is fine


class FakeNode:
    """A cluster node reduced to its peer port: an echo server that greets
    each peer connection with its name."""

    def __init__(self, name):
        self.name = name
        self.greeting = b"I am %s;" % name.encode()
        self.server = EchoServer(greeting=self.greeting)


class TestPartition(unittest.TestCase):
    def setUp(self):
        self.nodes = {n: FakeNode(str(n)) for n in (1, 2, 3)}
        for node in self.nodes.values():
            self.addCleanup(node.server.close)
        self.mesh = ProxyMesh({n: node.server.address for n, node in self.nodes.items()})
        self.addCleanup(self.mesh.close)
        self.part = Partition(self.mesh)

    def states(self):
        return {pair: p.state for pair, p in self.mesh.proxies.items()}

    def probe(self, dialler, listener):
        """Dial listener through the mesh as dialler would and report
        (dialler reaches listener, listener reaches dialler), each decided
        by the bytes arriving or being seen held in the proxy."""
        p = self.mesh.proxy(dialler, listener)
        node = self.nodes[listener]
        before = p.stats()
        token = b"token from %d #%d;" % (dialler, before["accepted"])
        s = socket.create_connection(p.address, timeout=TIMEOUT)
        with s:
            s.sendall(token)

            def outcome_c2s():
                if token in node.server.got():
                    return "reached"
                if p.stats()["held_c2s"] >= before["held_c2s"] + len(token):
                    return "held"
                return None

            def outcome_s2c():
                st = p.stats()
                if st["deferred"] > before["deferred"]:
                    return "held"  # not even connected: nothing the listener sends can arrive
                if st["held_s2c"] >= before["held_s2c"] + len(node.greeting):
                    return "held"
                if st["forwarded_s2c"] >= before["forwarded_s2c"] + len(node.greeting):
                    return "reached"
                return None

            c2s = wait_for(outcome_c2s, timeout=TIMEOUT, message="token %r decided" % token)
            s2c = wait_for(outcome_s2c, timeout=TIMEOUT, message="greeting of %d decided" % listener)
            if s2c == "reached":
                self.assertEqual(recv_exactly(s, len(node.greeting)), node.greeting)
            else:
                self.assertEqual(pending(s), b"")
        return c2s == "reached", s2c == "reached"

    def reach_matrix(self):
        """{(src, dst): src reaches dst}, measured both ways a link is used:
        src dialling dst, and dst dialling src."""
        out = {}
        for a in self.nodes:
            for b in self.nodes:
                if a != b:
                    ab, ba = self.probe(a, b)
                    out.setdefault((a, b), []).append(ab)
                    out.setdefault((b, a), []).append(ba)
        for link, seen in out.items():
            self.assertEqual(len(set(seen)), 1, "link %r reachable one way of dialling only: %r" % (link, seen))
        return {link: seen[0] for link, seen in out.items()}

    def expect(self, down):
        return {(a, b): (a, b) not in down for a in self.nodes for b in self.nodes if a != b}

    def test_all_links_up(self):
        self.assertEqual(self.reach_matrix(), self.expect(set()))

    def test_symmetric_split(self):
        self.part.split({1, 2}, {3})
        self.assertEqual(self.states(), {(1, 2): "up", (2, 1): "up", (1, 3): "blackhole", (3, 1): "blackhole",
                                         (2, 3): "blackhole", (3, 2): "blackhole"})
        self.assertEqual(self.reach_matrix(), self.expect({(1, 3), (3, 1), (2, 3), (3, 2)}))
        self.part.heal()
        self.assertEqual(set(self.states().values()), {"up"})
        self.assertEqual(self.reach_matrix(), self.expect(set()))

    def test_asymmetric(self):
        self.part.block(3, 1)  # 1 reaches 3; 3 does not reach 1
        self.assertEqual(self.states(), {(1, 2): "up", (2, 1): "up", (1, 3): "one_way:c2s", (3, 1): "one_way:s2c",
                                         (2, 3): "up", (3, 2): "up"})
        self.assertEqual(self.reach_matrix(), self.expect({(3, 1)}))

    def test_partial(self):
        self.part.cut(1, 3)  # 1-2 and 2-3 stay up
        self.assertEqual(self.reach_matrix(), self.expect({(1, 3), (3, 1)}))
        self.assertFalse(self.part.reaches(1, 3))
        self.assertTrue(self.part.reaches(1, 2))

    def test_isolate_with_drop_mode(self):
        part = Partition(self.mesh, mode="drop")
        part.isolate(2)
        self.assertEqual(self.states(), {(1, 2): "drop", (2, 1): "drop", (1, 3): "up", (3, 1): "up",
                                         (2, 3): "drop", (3, 2): "drop"})
        part.heal()
        self.assertEqual(self.reach_matrix(), self.expect(set()))

    def test_split_must_cover_every_node_once(self):
        with self.assertRaises(ValueError):
            self.part.split({1}, {2})
        with self.assertRaises(ValueError):
            self.part.split({1, 2}, {2, 3})
        self.assertEqual(self.part.down, frozenset())

    def test_delay_between_two_nodes(self):
        self.part.delay(200, src=1, dst=2)
        self.assertEqual(self.mesh.proxy(1, 2)._delay, {C2S: 0.2, S2C: 0.0})
        self.assertEqual(self.mesh.proxy(2, 1)._delay, {C2S: 0.0, S2C: 0.2})
        self.assertEqual(self.mesh.proxy(1, 3)._delay, {C2S: 0.0, S2C: 0.0})

    def test_cluster_arg(self):
        client_ports = {1: 7105, 2: 7205, 3: 7305}
        arg = self.mesh.cluster_arg(2, client_ports)
        own = self.nodes[2].server.address[1]
        self.assertEqual(arg, "1=127.0.0.1:7105:%d,2=127.0.0.1:7205:%d,3=127.0.0.1:7305:%d"
                         % (self.mesh.proxy(2, 1).port, own, self.mesh.proxy(2, 3).port))


class TestMeshAvoidsNodePorts(unittest.TestCase):
    def test_a_proxy_never_takes_a_port_chosen_for_a_node(self):
        # The kernel picks each proxy's port, and it may pick one chosen for
        # a node that has not bound it yet (a flake seen in stage5.faults: a
        # node could not listen, its client port led to a proxy). Here the
        # "kernel" offers a peer port, then a client port, then free ones.
        offered = iter([5002, 6001, 7001, 6002, 7002])
        made = []

        class Offered:
            def __init__(self, target, listen_host, name):
                self.port, self.closed = next(offered), False
                made.append(self)

            def close(self):
                self.closed = True

        with mock.patch.object(kvtest.faultproxy, "FaultProxy", Offered):
            mesh = ProxyMesh({1: ("127.0.0.1", 5001), 2: ("127.0.0.1", 5002)}, avoid=[6001, 6002])
        self.assertEqual((mesh.proxy(1, 2).port, mesh.proxy(2, 1).port), (7001, 7002))
        self.assertEqual([(p.port, p.closed) for p in made],
                         [(5002, True), (6001, True), (7001, False), (6002, True), (7002, False)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
