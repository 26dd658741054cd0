# test_hardening.py - stage 3's defences against misbehaving clients, as a
# user sees them: an idle client is closed after --timeout, a client that
# never reads its replies is dropped at --max-output-bytes while others carry
# on, an over-size request is refused with a message naming the limit, and a
# slow reader still receives a large reply intact (partial writes).
import socket
import time

import kvtest
from kvtest import encode_command


class IdleTimeout(kvtest.ServerTestCase):
    server_args = ["--timeout", "1"]

    def test_idle_client_is_closed(self):
        idle = self.connect()
        self.assertEqual(idle.command("PING"), "PONG")
        started = time.monotonic()
        idle.expect_closed(timeout=5.0)
        waited = time.monotonic() - started
        # Not before the timeout, and not long after it (sweep runs every second).
        self.assertGreaterEqual(waited, 0.9)
        self.assertLess(waited, 3.5)
        kvtest.wait_for(lambda: "idle for" in self.server.log(), message="idle log line")
        info = kvtest.parse_info(self.connect().command("INFO").decode())
        self.assertGreaterEqual(int(info["idle_closes"]), 1)

    def test_active_client_is_kept(self):
        busy = self.connect()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            self.assertEqual(busy.command("PING"), "PONG")
            time.sleep(0.2)  # pacing the client's own activity, not synchronisation
        self.assertEqual(busy.command("SET", "still", "here"), "OK")


class NoTimeoutByDefault(kvtest.ServerTestCase):

    def test_default_is_off(self):
        info = kvtest.parse_info(self.connect().command("INFO").decode())
        self.assertEqual(info["timeout"], "0")


class OutputLimit(kvtest.ServerTestCase):
    server_args = ["--max-output-bytes", "256k"]

    def test_client_that_never_reads_is_dropped(self):
        value = b"x" * (100 * 1024)
        setter = self.connect()
        self.assertEqual(setter.command("SET", "big", value), "OK")
        # A small receive buffer so the kernel cannot absorb everything for us.
        hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(("127.0.0.1", self.server.port))
        self.addCleanup(hog.close)
        hog.sendall(encode_command("GET", "big") * 400)  # 40 MB of replies requested
        kvtest.wait_for(lambda: "over --max-output-bytes" in self.server.log(), timeout=10,
                        message="output limit log line")
        info = kvtest.parse_info(setter.command("INFO").decode())
        self.assertGreaterEqual(int(info["output_limit_closes"]), 1)
        # Everyone else is fine, and the hog's connection is gone.
        self.assertStillServes()
        self.assertEqual(len(setter.command("GET", "big")), len(value))

        def hog_closed():
            hog.settimeout(1.0)
            try:
                while True:
                    data = hog.recv(1 << 20)
                    if not data:
                        return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False
        kvtest.wait_for(hog_closed, timeout=10, message="hog connection closed")

    def test_pipelining_client_that_reads_is_not_dropped(self):
        # Replies far beyond the limit in total, but read as they come.
        c = self.connect()
        self.assertEqual(c.command("SET", "v", b"y" * 10000), "OK")
        c.send(encode_command("GET", "v") * 200)  # 2 MB of replies
        replies = c.read_replies(200, timeout=20)
        self.assertTrue(all(len(r) == 10000 for r in replies))


class PartialWrites(kvtest.ServerTestCase):

    def test_slow_reader_gets_large_value_intact(self):
        value = bytes(range(256)) * (4 * 4096)  # 4 MiB, every byte value
        c = self.connect()
        self.assertEqual(c.command("SET", "blob", value), "OK")
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        slow.connect(("127.0.0.1", self.server.port))
        self.addCleanup(slow.close)
        slow.sendall(encode_command("GET", "blob") + encode_command("PING"))
        header = b"$%d\r\n" % len(value)
        want = header + value + b"\r\n+PONG\r\n"
        got = bytearray()
        slow.settimeout(10)
        while len(got) < len(want):
            chunk = slow.recv(3000)  # small reads force the server into partial writes
            if not chunk:
                break
            got += chunk
        self.assertEqual(bytes(got), want)


class RequestLimitMessage(kvtest.ServerTestCase):
    server_args = ["--max-request-bytes", "1k"]

    def test_over_size_request_names_the_limit(self):
        c = self.connect()
        c.send(encode_command("SET", "k", b"z" * 2000))
        reply = c.read_reply()
        self.assertIsInstance(reply, kvtest.RespError)
        self.assertEqual(reply.text, "ERR Protocol error: request larger than the limit of 1024 bytes")
        c.expect_closed()
        self.assertIn("request larger than the limit of 1024 bytes", self.server.log())


if __name__ == "__main__":
    kvtest.main()
