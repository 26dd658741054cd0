# test_errors.py - what a client sees when it gets things wrong or hits a
# limit. Command errors leave the connection usable; protocol violations get
# "-ERR Protocol error: ..." and close that connection only; the request-size
# and client-count limits hold exactly at their boundaries.
import kvtest
from kvtest import RespError, encode_command


class CommandErrors(kvtest.ServerTestCase):

    def test_unknown_command(self):
        c = self.connect()
        self.assertError(c.command("FOO"), "ERR unknown command 'FOO'")
        self.assertError(c.command("foo", "bar", "baz"), "ERR unknown command 'foo'")
        self.assertError(c.inline("FLUSHALL"), "ERR unknown command 'FLUSHALL'")
        self.assertEqual(c.command("PING"), "PONG")

    def test_wrong_arity(self):
        c = self.connect()
        cases = [
            ("GET",), ("GET", "a", "b"), ("SET",), ("SET", "a"), ("DEL",), ("EXISTS",),
            ("ECHO",), ("ECHO", "a", "b"), ("PING", "a", "b"), ("DBSIZE", "x"),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assertError(c.command(*args),
                                 "ERR wrong number of arguments for '%s' command" % args[0].lower())
        # The name in the message is lower-case whatever case was sent.
        self.assertError(c.command("sEt", "k"), "ERR wrong number of arguments for 'set' command")
        # Nothing was written by the failed SETs.
        self.assertIsNone(c.command("GET", "a"))
        self.assertEqual(c.command("PING"), "PONG")


class ProtocolErrors(kvtest.ServerTestCase):

    def violate(self, payload, prefix, replies_before=()):
        """Send payload on a new connection; expect replies_before, then an
        error starting with prefix, then the close. Meanwhile a bystander with
        half a request in flight must be unaffected."""
        bystander = self.connect()
        self.assertEqual(bystander.command("SET", "pe:bystander", "still here"), "OK")
        half = encode_command("GET", "pe:bystander")
        bystander.send(half[:7])

        c = self.connect()
        c.send(payload)
        for want in replies_before:
            self.assertEqual(c.read_reply(), want)
        self.assertError(c.read_reply(), prefix)
        c.expect_closed()

        bystander.send(half[7:])
        self.assertEqual(bystander.read_reply(), b"still here")
        self.assertEqual(bystander.command("PING"), "PONG")
        self.assertStillServes()

    def test_invalid_multibulk_length(self):
        self.violate(b"*abc\r\n", "ERR Protocol error: invalid multibulk length")

    def test_expected_dollar(self):
        self.violate(b"*1\r\nfoo\r\n", "ERR Protocol error: expected '$'")

    def test_invalid_bulk_length(self):
        self.violate(b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length")
        self.violate(b"*2\r\n$3\r\nGET\r\n$x\r\n", "ERR Protocol error: invalid bulk length")

    def test_inline_line_too_long(self):
        # 64 KiB and a bit, no newline: the server must give up, not buffer forever.
        self.violate(b"SET k " + b"x" * (64 * 1024 + 100), "ERR Protocol error: too big inline request")

    def test_unbalanced_quotes(self):
        self.violate(b'SET pe:q "no closing quote\r\n', "ERR Protocol error: unbalanced quotes")
        self.violate(b"SET pe:q 'single\r\n", "ERR Protocol error: unbalanced quotes")
        # Nothing was stored by the rejected request.
        self.assertIsNone(self.connect().command("GET", "pe:q"))

    def test_replies_before_the_violation_are_delivered(self):
        self.violate(b"PING\r\n" + encode_command("ECHO", "first") + b"*abc\r\nPING\r\n",
                     "ERR Protocol error: invalid multibulk length", replies_before=("PONG", b"first"))


def set_request(total, key="rl:k"):
    """SET key <x...> whose multibulk encoding is exactly total bytes."""
    for n in range(total, -1, -1):
        req = encode_command("SET", key, b"x" * n)
        if len(req) == total:
            return req, b"x" * n
    raise ValueError(total)


class RequestSizeLimit(kvtest.ServerTestCase):
    server_args = ["--max-request-bytes", "1024"]

    def test_exactly_at_the_limit_works(self):
        req, value = set_request(1024)
        c = self.connect()
        c.send(req)
        self.assertEqual(c.read_reply(), "OK")
        self.assertEqual(c.command("GET", "rl:k"), value)

    def test_one_byte_over_is_a_protocol_error(self):
        req, _ = set_request(1025, key="rl:over")
        bystander = self.connect()
        c = self.connect()
        c.send(req)
        self.assertError(c.read_reply(), "ERR Protocol error:")
        c.expect_closed()
        self.assertEqual(bystander.command("PING"), "PONG")
        self.assertIsNone(bystander.command("GET", "rl:over"), "the oversized request was executed")

    def test_limit_is_per_request_not_per_read(self):
        # Two requests at the limit in one write: 2048 bytes arrive together,
        # yet each request is within the limit.
        req, value = set_request(1024)
        c = self.connect()
        c.send(req + req + encode_command("GET", "rl:k"))
        self.assertEqual(c.read_replies(3), ["OK", "OK", value])

    def test_announced_size_over_the_limit_fails_at_once(self):
        # The header alone announces a value larger than the limit: the server
        # must refuse without waiting for (and buffering) the payload.
        c = self.connect()
        c.send(b"*3\r\n$3\r\nSET\r\n$4\r\nrl:k\r\n$100000000\r\n")
        self.assertError(c.read_reply(timeout=5), "ERR Protocol error:")
        c.expect_closed()
        self.assertStillServes()


class MaxClients(kvtest.ServerTestCase):

    def test_refused_past_the_limit(self):
        srv = self.start_server(["--max-clients", "3"])
        first = self.connect(srv)
        # Wait until the harness's readiness probe is gone, so exactly one
        # client is connected before we count.
        kvtest.wait_for(lambda: kvtest.parse_info(first.command("INFO"))["connected_clients"] == "1",
                        message="only one client connected")
        clients = [first, self.connect(srv), self.connect(srv)]
        for c in clients:
            self.assertEqual(c.command("PING"), "PONG")

        refused = self.connect(srv)
        self.assertEqual(refused.read_reply(), RespError("ERR max number of clients reached"))
        refused.expect_closed()

        for i, c in enumerate(clients):
            self.assertEqual(c.command("ECHO", "client %d" % i), ("client %d" % i).encode())

        clients.pop().close()

        def new_client_served():
            with srv.connect() as c:
                return c.command("PING") == "PONG"

        # The server notices the close asynchronously; a client refused
        # meanwhile is not a failure, so poll until one gets in.
        kvtest.wait_for(new_client_served, message="a new client to be admitted after one left")
        for c in clients:
            self.assertEqual(c.command("PING"), "PONG")


if __name__ == "__main__":
    kvtest.main()
