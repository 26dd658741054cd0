# test_flags.py - the command line as a user meets it: --help and --version
# answer on stdout and exit 0; a mistake gets one clear line on stderr and
# exit code 2 (and no server); the documented flags change what they say.
import kvtest
from kvtest import RespError, encode_command

FLAGS = ("--port", "--bind", "--max-clients", "--max-request-bytes", "--log-level", "--busy-poll-us")


class Flags(kvtest.ServerTestCase):

    def test_help(self):
        p = kvtest.run_binary(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("usage", p.stdout.lower())
        for flag in FLAGS + ("--help", "--version"):
            self.assertIn(flag, p.stdout, "--help does not mention %s" % flag)

    def test_version(self):
        p = kvtest.run_binary(["--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"[0-9]+\.[0-9]+", "--version should print a version number")

    def test_bad_flags_exit_2_with_one_line(self):
        cases = [
            (["--port", "99999"], "port"),
            (["--port", "0"], "port"),
            (["--port", "abc"], "port"),
            (["--port"], "port"),
            (["--log-level", "loud"], "log-level"),
            (["--max-clients", "-1"], "max-clients"),
            (["--max-clients", "many"], "max-clients"),
            (["--max-request-bytes", "12x"], "max-request-bytes"),
            (["--max-request-bytes", "-5"], "max-request-bytes"),
            (["--no-such-flag"], "no-such-flag"),
            (["stray-positional"], "stray-positional"),
        ]
        for args, mention in cases:
            with self.subTest(args=args):
                p = kvtest.run_binary(args)
                self.assertEqual(p.returncode, 2, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
                lines = [l for l in p.stderr.splitlines() if l.strip()]
                self.assertEqual(len(lines), 1, "want one line on stderr, got %r" % p.stderr)
                self.assertIn(mention, lines[0], "the message should name what is wrong")
                self.assertEqual(p.stdout, "")

    def test_size_suffix(self):
        # "1k" means 1024 bytes: a request of exactly 1024 bytes passes, 1025 fails.
        srv = self.start_server(["--max-request-bytes", "1k"])
        c = self.connect(srv)

        def set_of(total):
            for n in range(total, 0, -1):
                req = encode_command("SET", "fl:k", b"v" * n)
                if len(req) == total:
                    return req
            raise ValueError(total)

        c.send(set_of(1024))
        self.assertEqual(c.read_reply(), "OK")
        c.send(set_of(1025))
        self.assertError(c.read_reply(), "ERR Protocol error:")
        c.expect_closed()

    def test_max_clients(self):
        srv = self.start_server(["--max-clients", "1"])
        # The readiness probe may still hold the only slot: poll for admission.
        def admitted():
            c = srv.connect()
            if c.command("PING") == "PONG":
                return c
            c.close()
            return None
        only = kvtest.wait_for(admitted, message="one client to be admitted")
        self.addCleanup(only.close)
        second = self.connect(srv)
        self.assertEqual(second.read_reply(), RespError("ERR max number of clients reached"))
        second.expect_closed()
        self.assertEqual(only.command("PING"), "PONG")

    def test_log_level_error_is_quiet(self):
        # At "error" a clean start, some traffic and a clean stop log nothing.
        srv = kvtest.Server(["--log-level", "error"])
        self.addCleanup(srv.close)
        srv.start()
        with srv.connect() as c:
            self.assertEqual(c.command("SET", "a", "b"), "OK")
        self.assertEqual(srv.stop(), 0)
        lines = [l for l in srv.log().splitlines() if not l.startswith("=== kvtest:")]
        self.assertEqual(lines, [])

    def test_log_level_debug_says_more_than_info(self):
        logs = {}
        for level in ("info", "debug"):
            srv = kvtest.Server(["--log-level", level])
            self.addCleanup(srv.close)
            srv.start()
            with srv.connect() as c:
                self.assertEqual(c.command("PING"), "PONG")
            self.assertEqual(srv.stop(), 0)
            logs[level] = srv.log().splitlines()
        self.assertGreater(len(logs["debug"]), len(logs["info"]), "debug:\n%s" % "\n".join(logs["debug"]))

    def test_default_port_and_bind(self):
        port = kvtest.default_port()
        if port is None or not kvtest.port_is_free(port):
            self.skipTest("default port %s is not free here" % port)
        # No --port, no --bind: the stage's own port on loopback.
        srv = kvtest.Server(port=port, port_flag=False, bind=None)
        self.addCleanup(srv.close)
        try:
            srv.start()
        except AssertionError:
            if "in use" in srv.log().lower():
                self.skipTest("default port %d taken meanwhile" % port)
            raise
        with kvtest.Conn(port, host="127.0.0.1") as c:
            self.assertEqual(c.command("PING"), "PONG")


if __name__ == "__main__":
    kvtest.main()
