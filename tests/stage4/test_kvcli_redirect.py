# test_kvcli_redirect.py - what kvcli-stage4 shows when a follower refuses a
# write and the library follows the redirect to the leader: the line
# "-> Redirected to HOST:PORT" (stdout at a terminal, stderr in a pipe), the
# prompt that moves to the leader, the errors of a loop and of redirects
# turned off, and reads the follower answers itself. The nodes are fakes
# whose replies we choose; the server target is not used by the script.
import os
import pty
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import kvtest

KVCLI = os.path.join(kvtest.BIN_DIR, "kvcli-stage4")
REFUSAL = b"READONLY You can't write against a read only replica."


class Node:
    """A fake node on loopback. A follower (leader set: a port) serves GET
    with b"follower-value" and refuses anything else with READONLY naming
    127.0.0.1:<leader>; a leader answers SET with +OK and GET with
    b"leader-value". Every request is logged as a list of bytes."""

    def __init__(self):
        self.leader = None
        self.log = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _reply(self, req):
        name = req[0].upper()
        if self.leader is not None:
            if name == b"GET":
                return b"$14\r\nfollower-value\r\n"
            return b"-%s leader=127.0.0.1:%d\r\n" % (REFUSAL, self.leader)
        if name == b"GET":
            return b"$12\r\nleader-value\r\n"
        return b"+OK\r\n"

    def _serve(self, conn):
        reader = kvtest.RespReader()  # a request has the shape of an array reply
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
                    with self.lock:
                        self.log.append(req)
                        reply = self._reply(req)
                    conn.sendall(reply)
        except OSError:
            return

    def requests(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def addr(node):
    return b"127.0.0.1:%d" % node.port


def run_piped(args, stdin=None):
    p = subprocess.run([KVCLI] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                       env=kvtest.sanitizer_env())
    kvtest.assert_no_sanitizer_reports((p.stdout + p.stderr).decode("utf-8", "replace"), "kvcli")
    return p.returncode, p.stdout, p.stderr


def run_on_tty(args):
    """One-shot kvcli with stdout on a pseudo-terminal: (exit code, what the
    terminal showed with CRLF as LF, stderr)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([KVCLI] + args, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                             env=kvtest.sanitizer_env())
        os.close(slave)
        slave = None
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
        rc = p.wait(20)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    kvtest.assert_no_sanitizer_reports((bytes(out) + err).decode("utf-8", "replace"), "kvcli")
    return rc, bytes(out).replace(b"\r\n", b"\n"), err


class Redirect(unittest.TestCase):

    def node(self):
        n = Node()
        self.addCleanup(n.close)
        return n

    def setUp(self):
        self.leader = self.node()
        self.follower = self.node()
        self.follower.leader = self.leader.port
        self.p = ["-p", str(self.follower.port)]

    def test_pipe_prints_the_redirect_on_stderr(self):
        rc, out, err = run_piped(self.p + ["set", "k", "v"])
        self.assertEqual((rc, out, err), (0, b"OK\n", b"-> Redirected to %s\n" % addr(self.leader)))
        self.assertEqual(self.leader.requests(), [[b"set", b"k", b"v"]])
        self.assertEqual(self.follower.requests(), [[b"set", b"k", b"v"]])

    def test_terminal_prints_the_redirect_before_the_reply(self):
        rc, out, err = run_on_tty(self.p + ["set", "k", "v"])
        self.assertEqual((rc, out, err), (0, b"-> Redirected to %s\nOK\n" % addr(self.leader), b""))

    def test_piped_commands_stay_with_the_leader(self):
        rc, out, err = run_piped(self.p, stdin=b"set a 1\nget a\nset b 2\n")
        self.assertEqual(rc, 0)
        self.assertEqual(out, b"OK\nleader-value\nOK\n")
        self.assertEqual(err, b"-> Redirected to %s\n" % addr(self.leader))  # once
        self.assertEqual(self.follower.requests(), [[b"set", b"a", b"1"]])
        self.assertEqual([r[0] for r in self.leader.requests()], [b"set", b"get", b"set"])

    def test_reads_are_answered_by_the_follower(self):
        rc, out, err = run_piped(self.p + ["get", "k"])
        self.assertEqual((rc, out, err), (0, b"follower-value\n", b""))
        self.assertEqual(self.leader.requests(), [])

    def test_two_hops(self):
        first = self.node()
        first.leader = self.follower.port  # names a node that is a follower too
        rc, out, err = run_piped(["-p", str(first.port), "set", "k", "v"])
        self.assertEqual((rc, out), (0, b"OK\n"))
        self.assertEqual(err, b"-> Redirected to %s (after 2 hops)\n" % addr(self.leader))

    def test_loop_ends_with_an_error_naming_the_addresses(self):
        a, b = self.node(), self.node()
        a.leader, b.leader = b.port, a.port
        rc, out, err = run_piped(["-p", str(a.port), "set", "k", "v"])
        self.assertEqual((rc, out), (1, b""))
        path = b" -> ".join([addr(a), addr(b), addr(a), addr(b)])
        self.assertIn(b"too many redirects: gave up after 3 (max_redirects)", err)
        self.assertIn(path, err)
        self.assertNotIn(b"-> Redirected to", err)
        self.assertEqual((len(a.requests()), len(b.requests())), (2, 2))
        rc, out, err = run_piped(["--redirects", "1", "-p", str(a.port), "set", "k", "v"])
        self.assertIn(b"gave up after 1 (max_redirects)", err)
        self.assertIn(b" -> ".join([addr(a), addr(b)]) + b", which answered", err)

    def test_redirects_off_shows_the_refusal(self):
        rc, out, err = run_piped(["--redirects", "0"] + self.p + ["set", "k", "v"])
        self.assertEqual((rc, out), (1, b""))
        self.assertEqual(err, b"%s leader=%s\n" % (REFUSAL, addr(self.leader)))
        rc, out, err = run_on_tty(["--redirects", "0"] + self.p + ["set", "k", "v"])
        self.assertEqual((rc, out), (1, b"(error) %s leader=%s\n" % (REFUSAL, addr(self.leader))))
        self.assertEqual(self.leader.requests(), [])

    def test_unreachable_leader(self):
        self.follower.leader = kvtest.free_port()
        rc, out, err = run_piped(self.p + ["set", "k", "v"])
        self.assertEqual((rc, out), (1, b""))
        self.assertIn(b"redirect %s -> 127.0.0.1:%d failed: cannot connect" % (addr(self.follower),
                                                                                self.follower.leader), err)
        self.assertNotIn(b"-> Redirected to", err)

    def test_interactive_prompt_moves_to_the_leader(self):
        env = dict(kvtest.sanitizer_env(), HOME=self.node_home(), TERM="dumb")
        port = self.follower.port
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
        read_until(b"%s> " % addr(self.follower))
        os.write(fd, b"set a 1\r")
        read_until(b"%s> " % addr(self.leader))
        shown = bytes(out).replace(b"\r\n", b"\n")
        self.assertIn(b"-> Redirected to %s\nOK\n" % addr(self.leader), shown)
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    def node_home(self):
        home = tempfile.mkdtemp(prefix="kvcli-home-")
        self.addCleanup(shutil.rmtree, home, True)
        return home


class Help(unittest.TestCase):

    def test_help_documents_redirects(self):
        rc, out, _ = run_piped(["--help"])
        self.assertEqual(rc, 0)
        for text in (b"--redirects", b"-> Redirected to HOST:PORT", b"on stderr when"):
            self.assertIn(text, out)


if __name__ == "__main__":
    kvtest.main()
