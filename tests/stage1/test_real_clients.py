# test_real_clients.py - clients nobody here wrote must just work: redis-cli
# (one-shot commands, a session on stdin, -x for binary values, --pipe mass
# insertion), redis-benchmark's handshake, and the python `redis` package.
import shutil
import subprocess

import kvtest

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"


class RedisCli(kvtest.ServerTestCase):

    def cli(self, *args, stdin=b"", timeout=20):
        """Run redis-cli against the server; returns (exit code, stdout bytes).
        Not on a terminal, redis-cli prints raw replies, one per line."""
        p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.server.port)] + list(args),
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def assertCli(self, args, want, stdin=b""):
        rc, out, err = self.cli(*args, stdin=stdin)
        self.assertEqual(rc, 0, "redis-cli %s: stderr %r" % (" ".join(args), err))
        self.assertEqual(out, want, "redis-cli %s" % " ".join(args))

    def test_one_shot_commands(self):
        self.assertCli(["set", "rc:k", "v"], b"OK\n")
        self.assertCli(["get", "rc:k"], b"v\n")
        self.assertCli(["exists", "rc:k", "rc:nope"], b"1\n")
        self.assertCli(["del", "rc:k"], b"1\n")
        self.assertCli(["get", "rc:k"], b"\n")  # nil prints as an empty line
        self.assertCli(["ping"], b"PONG\n")
        self.assertCli(["echo", "hello world"], b"hello world\n")

    def test_info(self):
        self.assertCli(["set", "rc:info", "1"], b"OK\n")
        rc, out, err = self.cli("info")
        self.assertEqual(rc, 0, err)
        text = out.decode()
        self.assertIn("stage:%s" % kvtest.stage_name(), text)
        for field in ("keys:", "connected_clients:", "total_commands_processed:", "used_memory:",
                      "uptime_in_seconds:", "db0:keys="):
            self.assertIn(field, text)

    def test_info_section(self):
        # `redis-cli info keyspace`: only that section, whatever the case.
        self.assertCli(["set", "rc:sec", "1"], b"OK\n")
        rc, out, err = self.cli("info", "KEYSPACE")
        self.assertEqual(rc, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], "# Keyspace")
        self.assertIn("db0:keys=", out.decode())
        self.assertNotIn("# Server", out.decode())
        rc, out, err = self.cli("info", "server", "clients")
        headers = [l for l in out.decode().splitlines() if l.startswith("#")]
        self.assertEqual(headers, ["# Server", "# Clients"])
        rc, out, err = self.cli("info", "nosuchsection")
        self.assertEqual(out.strip(), b"")

    def test_session_on_stdin(self):
        script = b"SET rc:s1 hello\nGET rc:s1\nDEL rc:s1\nGET rc:s1\nEXISTS rc:s1\nPING\nNOSUCH x\nECHO last\n"
        rc, out, err = self.cli(stdin=script)
        self.assertEqual(rc, 0, err)
        # (redis-cli itself adds a blank line after an error.)
        self.assertEqual(out.split(b"\n"),
                         [b"OK", b"hello", b"1", b"", b"0", b"PONG", b"ERR unknown command 'NOSUCH'", b"", b"last", b""])

    def test_binary_value_from_stdin(self):
        value = b"a\x00b\r\nc\xff"
        self.assertCli(["-x", "set", "rc:bin"], b"OK\n", stdin=value)
        # --no-raw shows the value quoted with escapes, so we compare exactly.
        self.assertCli(["--no-raw", "get", "rc:bin"], b'"a\\x00b\\r\\nc\\xff"\n')

    def test_pipe_mass_insertion(self):
        # redis-cli --pipe streams raw protocol and ends with an ECHO marker.
        n = 2000
        payload = b"".join(kvtest.encode_command("SET", "rc:p%d" % i, "v%d" % i) for i in range(n))
        rc, out, err = self.cli("--pipe", stdin=payload)
        self.assertEqual(rc, 0, err)
        self.assertIn(b"errors: 0, replies: %d" % n, out)
        with self.connect() as c:
            self.assertEqual(c.command("GET", "rc:p1999"), b"v1999")

    def test_benchmark_runs(self):
        # redis-benchmark's handshake (CONFIG GET, then pipelines from many
        # connections) must be accepted; its numbers are tests/bench's business.
        p = subprocess.run([REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(self.server.port),
                            "-n", "2000", "-c", "10", "-t", "set,get", "-q"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode(errors="replace")
        self.assertRegex(out, r"SET: [0-9.]+ requests per second")
        self.assertRegex(out, r"GET: [0-9.]+ requests per second")


class PythonRedis(kvtest.ServerTestCase):

    def client(self, srv):
        import redis  # Debian's python3-redis
        r = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=10)
        self.addCleanup(r.close)
        return r

    def test_basic_commands(self):
        import redis
        srv = self.start_server()  # dbsize must start at 0
        r = self.client(srv)
        self.assertTrue(r.ping())
        self.assertEqual(r.dbsize(), 0)
        self.assertTrue(r.set("py:k", "v"))
        self.assertEqual(r.get("py:k"), b"v")
        self.assertTrue(r.set("py:bin", b"\x00\r\n\xff"))
        self.assertEqual(r.get("py:bin"), b"\x00\r\n\xff")
        self.assertIsNone(r.get("py:nope"))
        self.assertEqual(r.exists("py:k", "py:bin", "py:nope"), 2)
        self.assertEqual(r.dbsize(), 2)
        self.assertEqual(r.echo("hi"), b"hi")
        self.assertEqual(r.delete("py:k", "py:nope"), 1)
        self.assertEqual(r.exists("py:k"), 0)
        self.assertEqual(r.dbsize(), 1)
        with self.assertRaises(redis.ResponseError) as cm:
            r.execute_command("NOSUCH")
        self.assertIn("unknown command", str(cm.exception))

    def test_info(self):
        srv = self.start_server()
        r = self.client(srv)
        r.set("py:a", "1")
        r.set("py:b", "2")
        info = r.info()
        self.assertEqual(info["stage"], kvtest.stage_name())
        self.assertEqual(info["keys"], 2)
        self.assertEqual(info["db0"]["keys"], 2)
        self.assertGreaterEqual(info["connected_clients"], 1)
        for field in ("total_commands_processed", "used_memory", "uptime_in_seconds"):
            self.assertIsInstance(info[field], int, field)

    def test_pipeline(self):
        srv = self.start_server()
        r = self.client(srv)
        pipe = r.pipeline(transaction=False)
        for i in range(500):
            pipe.set("py:p%d" % i, i)
        for i in range(0, 500, 7):
            pipe.get("py:p%d" % i)
        pipe.delete("py:p0", "py:p1")
        pipe.dbsize()
        results = pipe.execute()
        self.assertEqual(results[:500], [True] * 500)
        self.assertEqual(results[500:-2], [str(i).encode() for i in range(0, 500, 7)])
        self.assertEqual(results[-2:], [2, 498])


if __name__ == "__main__":
    kvtest.main()
