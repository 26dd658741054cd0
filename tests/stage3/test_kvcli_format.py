# test_kvcli_format.py - what kvcli prints, exactly: redis-cli's decorated
# format on a terminal (numbered and aligned arrays, nesting, escapes, nil,
# integers, errors; INFO raw, as redis-cli prints it) and raw output in a
# pipe, checked against a canned server whose replies we choose; plus flags
# in any order and timeouts.
import os
import pty
import socket
import subprocess
import threading
import time
import unittest

import kvtest

KVCLI = os.path.join(kvtest.BIN_DIR, "kvcli")

# A page of INFO text, as the server sends it: CRLF-terminated lines.
INFO_TEXT = b"# Server\r\nstage:canned\r\n\r\n# Clients\r\nconnected_clients:1\r\n"

# Replies by command name (upper case). Any other command is answered with
# an array of its own arguments, so tests can see exactly what kvcli sent.
CANNED = {
    b"INFO": b"$%d\r\n%s\r\n" % (len(INFO_TEXT), INFO_TEXT),
    b"MULTILINE": b"$3\r\na\nb\r\n",
    b"ARR11": b"*11\r\n" + b"".join(b"$1\r\n%c\r\n" % c for c in b"abcdefghijk"),
    b"NESTED": b"*2\r\n*2\r\n:1\r\n:2\r\n$1\r\nx\r\n",
    b"ESCAPES": b"$8\r\na\"b\\\x00\n\x07\xff\r\n",
    b"EMPTY": b"*0\r\n",
    b"NIL": b"$-1\r\n",
    b"NUM": b":-42\r\n",
    b"FAIL": b"-ERR canned failure\r\n",
    b"PING": b"+PONG\r\n",
}


class CannedServer:
    """A loopback server answering each request with a canned reply (or
    never, when silent). One thread per connection; stopped by close()."""

    def __init__(self, silent=False):
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        # A multibulk request has the shape of an array reply, so the
        # harness's reply parser reads requests too.
        reader = kvtest.RespReader()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                reader.feed(data)
                while True:
                    req = reader.get()
                    if req is kvtest.RespReader.NOT_READY:
                        break
                    if self.silent:
                        continue
                    conn.sendall(CANNED.get(req[0].upper()) or kvtest.encode_command(*req))
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def run_on_tty(args, stdin=None, timeout=20):
    """Runs kvcli with stdout on a pseudo-terminal; returns (exit code,
    stdout with the terminal's CRLF turned back into LF, stderr)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([KVCLI] + args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=slave, stderr=subprocess.PIPE, env=kvtest.sanitizer_env())
        os.close(slave)
        slave = None
        if stdin is not None:
            p.stdin.write(stdin)
            p.stdin.close()
        out = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        err = p.stderr.read()
        p.stderr.close()
        rc = p.wait(timeout)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    kvtest.assert_no_sanitizer_reports((bytes(out) + err).decode("utf-8", "replace"), "kvcli")
    return rc, bytes(out).replace(b"\r\n", b"\n"), err


def run_piped(args, stdin=None, timeout=20):
    p = subprocess.run([KVCLI] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=kvtest.sanitizer_env())
    kvtest.assert_no_sanitizer_reports((p.stdout + p.stderr).decode("utf-8", "replace"), "kvcli")
    return p.returncode, p.stdout, p.stderr


class Formatting(unittest.TestCase):

    def setUp(self):
        self.srv = CannedServer()
        self.addCleanup(self.srv.close)
        # A generous read timeout: on a loaded machine, or under valgrind,
        # kvcli's default 5 s can pass before the canned reply is read.
        self.p = ["-p", str(self.srv.port), "--timeout", "30000"]

    def tty(self, *cmd):
        return run_on_tty(self.p + list(cmd))

    def piped(self, *cmd):
        return run_piped(self.p + list(cmd))

    def test_terminal_arrays_are_numbered_and_aligned(self):
        rc, out, _ = self.tty("arr11")
        self.assertEqual(rc, 0)
        expected = "".join('%2d) "%s"\n' % (i + 1, c) for i, c in enumerate("abcdefghijk"))
        self.assertEqual(out.decode(), expected)

    def test_terminal_nested_arrays(self):
        rc, out, _ = self.tty("nested")
        self.assertEqual(out, b'1) 1) (integer) 1\n   2) (integer) 2\n2) "x"\n')

    def test_terminal_escapes_binary(self):
        rc, out, _ = self.tty("escapes")
        self.assertEqual(out, b'"a\\"b\\\\\\x00\\n\\a\\xff"\n')

    def test_terminal_scalars(self):
        self.assertEqual(self.tty("empty")[1], b"(empty array)\n")
        self.assertEqual(self.tty("nil")[1], b"(nil)\n")
        self.assertEqual(self.tty("num")[1], b"(integer) -42\n")
        self.assertEqual(self.tty("ping")[1], b"PONG\n")
        rc, out, err = self.tty("fail")
        self.assertEqual((rc, out), (1, b"(error) ERR canned failure\n"))

    def test_terminal_info_is_raw_lines(self):
        # redis-cli prints INFO unquoted at a terminal: one field per line,
        # not one line of \r\n escapes. STATS is INFO under its alias.
        for cmd in ("info", "INFO", "stats"):
            rc, out, _ = self.tty(cmd)
            self.assertEqual((rc, out), (0, INFO_TEXT + b"\n"), cmd)
            self.assertNotIn(b"\\r\\n", out)
        # The same from typed (piped) lines read by a person at a terminal.
        rc, out, _ = run_on_tty(self.p, stdin=b"stats\nnum\n")
        self.assertEqual((rc, out), (0, INFO_TEXT + b"\n(integer) -42\n"))

    def test_terminal_other_multiline_bulk_stays_quoted(self):
        # As in redis-cli: only INFO is raw; a value with a newline in it is
        # shown quoted, so the newline is visible as \n.
        self.assertEqual(self.tty("multiline")[1], b'"a\\nb"\n')

    def test_pipe_is_raw(self):
        self.assertEqual(self.piped("arr11")[1], b"".join(b"%c\n" % c for c in b"abcdefghijk"))
        self.assertEqual(self.piped("nested")[1], b"1\n2\nx\n")
        self.assertEqual(self.piped("escapes")[1], b"a\"b\\\x00\n\x07\xff\n")
        self.assertEqual(self.piped("nil")[1], b"\n")
        self.assertEqual(self.piped("num")[1], b"-42\n")
        rc, out, err = self.piped("fail")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn(b"ERR canned failure", err)

    def test_piped_commands_to_a_terminal_are_decorated(self):
        # stdin is a pipe, stdout a terminal: a person is reading.
        rc, out, _ = run_on_tty(self.p, stdin=b"nil\nnum\n")
        self.assertEqual((rc, out), (0, b"(nil)\n(integer) -42\n"))

    def test_arguments_reach_the_server_unchanged(self):
        # One-shot: everything after the command is an argument, even "-p".
        rc, out, _ = self.piped("echoargs", "a b", "-p", "--port", "")
        self.assertEqual(out, b"echoargs\na b\n-p\n--port\n\n")
        # Piped: quoting and escapes as in redis-cli.
        rc, out, _ = run_piped(self.p, stdin=b'echoargs "x\\x00y" \'single q\' "tab\\there"\n')
        self.assertEqual(out, b"echoargs\nx\x00y\nsingle q\ntab\there\n")

    def test_aliases_any_case(self):
        # PUT, DELETE and STATS are sent as SET, DEL and INFO.
        self.assertEqual(self.piped("Put", "k", "v")[1], b"SET\nk\nv\n")
        self.assertEqual(self.piped("DELETE", "k")[1], b"DEL\nk\n")
        self.assertEqual(self.piped("stats")[1], INFO_TEXT + b"\n")


class Flags(unittest.TestCase):

    def test_flags_in_any_order_before_the_command(self):
        srv = CannedServer()
        self.addCleanup(srv.close)
        for args in (["--timeout", "2000", "-p", str(srv.port)], ["-p", str(srv.port), "--timeout", "2000"],
                     ["--host", "127.0.0.1", "--port=%d" % srv.port], ["--host=localhost", "-p", str(srv.port)]):
            rc, out, err = run_piped(args + ["ping"])
            self.assertEqual((rc, out, err), (0, b"PONG\n", b""), args)

    def test_read_timeout(self):
        srv = CannedServer(silent=True)
        self.addCleanup(srv.close)
        started = time.monotonic()
        rc, out, err = run_piped(["--timeout", "300", "-p", str(srv.port), "ping"])
        self.assertEqual(rc, 1)
        self.assertIn(b"no reply from 127.0.0.1:%d within 300 ms" % srv.port, err)
        self.assertLess(time.monotonic() - started, 10)

    def test_bad_flags_exit_2(self):
        for args in (["--port", "70000"], ["--port", "x"], ["--timeout"], ["--nope"], ["-p"]):
            rc, out, err = run_piped(args)
            self.assertEqual(rc, 2, args)
            self.assertTrue(err.startswith(b"kvcli: "), (args, err))

    def test_version_and_help(self):
        rc, out, _ = run_piped(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out.decode(), r"^kvcli \d+\.\d+")
        rc, out, _ = run_piped(["--help"])
        self.assertEqual(rc, 0)
        for flag in (b"--host", b"--port", b"--timeout", b"PUT=SET"):
            self.assertIn(flag, out)


if __name__ == "__main__":
    kvtest.main()
