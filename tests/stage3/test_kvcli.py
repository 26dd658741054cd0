# test_kvcli.py - kvcli as a user runs it: one-shot commands with exit
# codes for scripts, commands piped on stdin, and the interactive REPL under
# a pseudo-terminal (prompt, decorated output, history file).
import os
import pty
import select
import subprocess
import tempfile
import time

import kvtest

KVCLI = os.path.join(kvtest.BIN_DIR, "kvcli")


class Kvcli(kvtest.ServerTestCase):

    def cli(self, *args, stdin=None):
        p = subprocess.run([KVCLI, "-p", str(self.server.port)] + list(args), input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, env=kvtest.sanitizer_env())
        kvtest.assert_no_sanitizer_reports(p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace"),
                                           "kvcli")
        return p

    def test_one_shot(self):
        p = self.cli("set", "k", "hello world")
        self.assertEqual((p.returncode, p.stdout), (0, b"OK\n"))
        p = self.cli("get", "k")
        self.assertEqual((p.returncode, p.stdout), (0, b"hello world\n"))
        p = self.cli("get", "missing")
        self.assertEqual((p.returncode, p.stdout), (0, b"\n"))
        p = self.cli("exists", "k", "missing")
        self.assertEqual(p.stdout, b"1\n")

    def test_aliases_from_the_plan(self):
        self.assertEqual(self.cli("PUT", "a", "1").stdout, b"OK\n")
        self.assertEqual(self.cli("get", "a").stdout, b"1\n")
        self.assertEqual(self.cli("delete", "a").stdout, b"1\n")
        self.assertIn(b"stage:stage3-client", self.cli("stats").stdout)

    def test_error_reply_exits_1(self):
        p = self.cli("nosuch", "x")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"ERR unknown command 'nosuch'", p.stderr)
        self.assertEqual(p.stdout, b"")

    def test_connection_refused_exits_1(self):
        port = kvtest.free_port()
        p = subprocess.run([KVCLI, "--port", str(port), "ping"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"cannot connect", p.stderr)

    def test_flags(self):
        self.assertEqual(subprocess.run([KVCLI, "--bogus"], stderr=subprocess.PIPE).returncode, 2)
        self.assertEqual(subprocess.run([KVCLI, "--port", "0"], stderr=subprocess.PIPE).returncode, 2)
        h = subprocess.run([KVCLI, "--help"], stdout=subprocess.PIPE)
        self.assertEqual(h.returncode, 0)
        self.assertIn(b"--host", h.stdout)

    def test_piped_commands_with_quotes(self):
        script = b'set q "two words"\nget q\nset nl "a\\nb"\nget nl\n\nset k v\nget k\n'
        p = self.cli(stdin=script)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"OK\ntwo words\nOK\na\nb\nOK\nv\n")
        bad = self.cli(stdin=b'set x "unterminated\nget k\n')
        self.assertEqual(bad.returncode, 1)
        self.assertIn(b"unbalanced quotes", bad.stderr)
        self.assertEqual(bad.stdout, b"v\n")  # later lines still run

    def test_interactive_repl(self):
        home = tempfile.mkdtemp(prefix="kvcli-home-")
        env = dict(kvtest.sanitizer_env(), HOME=home, TERM="dumb")
        port = self.server.port  # start the server before forking, not in the child
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(KVCLI, [KVCLI, "-p", str(port)], env)
        out = bytearray()

        def read_until(token, timeout=10):
            deadline = time.monotonic() + timeout
            while token not in out:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "waiting for %r, got %r" % (token, bytes(out)))
                r, _, _ = select.select([fd], [], [], left)
                if r:
                    try:
                        out.extend(os.read(fd, 4096))
                    except OSError:
                        break
        prompt = b"127.0.0.1:%d> " % port
        read_until(prompt)
        os.write(fd, b"set a 1\r")
        read_until(b"OK")
        os.write(fd, b"get a\r")
        read_until(b'"1"')  # decorated: a terminal shows strings quoted
        os.write(fd, b"get nothing\r")
        read_until(b"(nil)")
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        with open(os.path.join(home, ".kvcli_history")) as f:
            history = f.read()
        # libedit's history format escapes spaces as \040.
        lines = [line.replace("\\040", " ") for line in history.splitlines()]
        self.assertIn("set a 1", lines)
        self.assertIn("get a", lines)


if __name__ == "__main__":
    kvtest.main()
