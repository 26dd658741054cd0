# kvtest.py - shared harness for the Python integration suites of every stage.
#
# It starts the server binary under test on a free loopback port, talks raw
# RESP2 to it over a socket, and checks on every stop that the sanitizer build
# reported nothing. Later stages run the stage-1 scripts against their own
# binaries, so nothing here knows which stage it is testing except through the
# environment:
#   KV_SERVER_BIN   path of the server binary under test (required)
#   KV_SERVER_ARGS  extra server arguments, split like a shell would; "{tmp}"
#                   becomes a fresh temp dir per server (e.g. --data-dir {tmp}/data)
#   KV_BIN_DIR      the build's bin/ directory (other tools of the build)
#   KV_KEEP_TMP     if set, server temp dirs (logs, data) are left on disk
#   KV_UNDER_VALGRIND  ON when servers run under valgrind (make valgrind): 20-50x
#                   slower, so suites that repeat one check hundreds of times
#                   may repeat it fewer times (UNDER_VALGRIND)
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SERVER_BIN = os.environ.get("KV_SERVER_BIN", "")
SERVER_ARGS = os.environ.get("KV_SERVER_ARGS", "")
UNDER_VALGRIND = os.environ.get("KV_UNDER_VALGRIND", "").upper() in ("1", "ON", "TRUE")
BIN_DIR = os.environ.get("KV_BIN_DIR", os.path.dirname(SERVER_BIN))

# Sanitizer reports we refuse to ignore. A report does not always change the
# exit code (UBSan, leaks at exit under some options), so the log is the truth.
# VALGRIND-ERROR-BEGIN is what a KV_VALGRIND build's server wrapper prints
# around each memcheck finding (tests/CMakeLists.txt).
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "VALGRIND-ERROR-BEGIN")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0


def stage_name(binary=None):
    """The stage a binary implements, as INFO's "stage:" field names it: the
    binary is named after its stage directory (stage1-single-node, ...)."""
    return os.path.basename(binary or SERVER_BIN)


def stage_number(binary=None):
    m = re.match(r"stage(\d+)", stage_name(binary))
    return int(m.group(1)) if m else None


def default_port(binary=None):
    """Stage N listens on 700N unless told otherwise (see DESIGN.md)."""
    n = stage_number(binary)
    return 7000 + n if n else None


def wait_for(predicate, timeout=5.0, interval=0.01, message="condition"):
    """Poll predicate() until it returns a true value; return that value.
    The way to synchronise with the server: never a bare sleep."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, AssertionError, RespProtocolError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1f s waiting for %s%s" % (timeout, message, extra))
        time.sleep(interval)


def free_port():
    """A port nothing listens on right now. Another process could take it
    before the server binds; Server.start retries with a new one if so."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts_connections(port):
    """True when something accepts TCP connections on 127.0.0.1:port. A
    connection to itself does not count: with nothing listening, a client
    whose ephemeral port happens to equal port connects to itself (TCP
    simultaneous open), which looks like a server that is up."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return False
    with s:
        return s.getsockname() != s.getpeername()


def port_is_free(port, reuse_addr=False):
    """True when 127.0.0.1:port can be bound. With reuse_addr (as the
    servers bind) only a listening socket makes it busy, not the TIME_WAIT
    connections an earlier server left behind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse_addr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def sanitizer_lines(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


class SanitizerReport(Exception):
    """A sanitizer or valgrind finding in a process's output. Not an
    AssertionError on purpose: a test that expects a server to fail (with
    assertRaises(AssertionError)) must still fail on a memory error."""


def assert_no_sanitizer_reports(text, what="server"):
    bad = sanitizer_lines(text)
    if bad:
        raise SanitizerReport("%s output contains sanitizer reports:\n%s\n--- full output ---\n%s"
                              % (what, "\n".join(bad), tail(text)))


def tail(text, lines=60):
    parts = text.splitlines()
    if len(parts) > lines:
        parts = ["... (%d lines cut)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join(parts)


def sanitizer_env(env=None):
    """Environment for a sanitizer build: report everything, keep going on
    UBSan so one report does not hide the next, print stacks."""
    env = dict(os.environ if env is None else env)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def run_binary(args, binary=None, timeout=20.0, stdin=None):
    """Run the binary to completion (for flag tests): returns CompletedProcess
    with text stdout/stderr, after checking neither holds a sanitizer report."""
    cmd = [binary or SERVER_BIN] + list(args)
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=sanitizer_env())
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    assert_no_sanitizer_reports(p.stdout + p.stderr, "%s" % " ".join(cmd))
    return p


# ---------------------------------------------------------------------------
# RESP2 client


class RespError(Exception):
    """An error reply ("-ERR ..."), returned (not raised) by Conn.read_reply so
    tests can compare its text. Distinct from a simple string reply."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def startswith(self, prefix):
        return self.text.startswith(prefix)

    def __eq__(self, other):
        return isinstance(other, RespError) and other.text == self.text

    def __hash__(self):
        return hash(("RespError", self.text))

    def __repr__(self):
        return "RespError(%r)" % self.text


class RespProtocolError(Exception):
    """The server sent bytes that are not valid RESP2."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection while a reply was expected."""


def encode_arg(a):
    if isinstance(a, bytes):
        return a
    if isinstance(a, (bytearray, memoryview)):
        return bytes(a)
    if isinstance(a, str):
        return a.encode("utf-8")
    if isinstance(a, int):
        return str(a).encode()
    raise TypeError("cannot send %r" % (a,))


def encode_command(*args):
    """A multibulk request, exactly as client libraries send it."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = encode_arg(a)
        parts.append(b"$%d\r\n" % len(b))
        parts.append(b)
        parts.append(b"\r\n")
    return b"".join(parts)


class RespReader:
    """Incremental RESP2 reply parser. feed() bytes, then get() returns one
    reply or NOT_READY. Replies: str (simple), RespError, int, bytes (bulk),
    None (null bulk / null array), list (array, possibly nested)."""

    NOT_READY = object()

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def get(self):
        r = self._parse(0)
        if r is None:
            return self.NOT_READY
        value, end = r
        del self.buf[:end]
        return value

    def _line(self, pos):
        i = self.buf.find(b"\r\n", pos)
        if i < 0:
            return None
        return bytes(self.buf[pos:i]), i + 2

    def _parse(self, pos):
        if pos >= len(self.buf):
            return None
        t = self.buf[pos:pos + 1]
        r = self._line(pos + 1)
        if r is None:
            return None
        line, nxt = r
        if t == b"+":
            return line.decode("utf-8", "replace"), nxt
        if t == b"-":
            return RespError(line.decode("utf-8", "replace")), nxt
        if t == b":":
            return self._int(line, "integer"), nxt
        if t == b"$":
            n = self._int(line, "bulk length")
            if n == -1:
                return None, nxt
            if n < -1:
                raise RespProtocolError("invalid bulk length %r" % line)
            if len(self.buf) < nxt + n + 2:
                return None
            if self.buf[nxt + n:nxt + n + 2] != b"\r\n":
                raise RespProtocolError("bulk of length %d not followed by CRLF: %r"
                                        % (n, bytes(self.buf[nxt:nxt + n + 2])[-40:]))
            return bytes(self.buf[nxt:nxt + n]), nxt + n + 2
        if t == b"*":
            n = self._int(line, "array length")
            if n == -1:
                return None, nxt
            if n < -1:
                raise RespProtocolError("invalid array length %r" % line)
            items = []
            p = nxt
            for _ in range(n):
                r = self._parse(p)
                if r is None:
                    return None
                v, p = r
                items.append(v)
            return items, p
        raise RespProtocolError("unexpected reply type byte %r in %r" % (t, bytes(self.buf[pos:pos + 60])))

    @staticmethod
    def _int(line, what):
        if not re.fullmatch(rb"-?[0-9]+", line):
            raise RespProtocolError("invalid %s %r" % (what, line))
        return int(line)


class Conn:
    """A raw TCP client: send exact bytes, read parsed replies. Use it as a
    context manager or close() it; ServerTestCase.connect closes it for you."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, nodelay=True):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if nodelay:
            # Small sends go out as separate segments, so split-request tests
            # really do reach the server in pieces.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = RespReader()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(encode_arg(data))

    def send_command(self, *args):
        self.send(encode_command(*args))

    def command(self, *args, timeout=None):
        """Send one multibulk command and return its reply."""
        self.send_command(*args)
        return self.read_reply(timeout=timeout)

    def inline(self, line, timeout=None):
        """Send one inline command (CRLF appended) and return its reply."""
        self.send(encode_arg(line) + b"\r\n")
        return self.read_reply(timeout=timeout)

    def read_reply(self, timeout=None):
        """The next whole reply. Raises ConnectionClosed if the server closes
        first, socket.timeout (TimeoutError) if nothing complete arrives."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            r = self.reader.get()
            if r is not RespReader.NOT_READY:
                return r
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply within the deadline; have %r"
                                     % bytes(self.reader.buf[:200]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                raise ConnectionClosed("server closed the connection; unparsed bytes: %r"
                                       % bytes(self.reader.buf[:200]))
            self.reader.feed(data)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout=timeout) for _ in range(n)]

    def read_until_closed(self, timeout=5.0):
        """All bytes the server sends until it closes (ECONNRESET counts as
        closed). Fails if the connection stays open past the deadline."""
        got = bytes(self.reader.buf)
        self.reader.buf.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the connection within %.1f s (received %r)"
                                     % (timeout, got[:200]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got
            if not data:
                return got
            got += data

    def expect_closed(self, timeout=5.0):
        """Assert the server closes this connection without sending anything
        more (read the replies you expect first)."""
        extra = self.read_until_closed(timeout)
        if extra:
            raise AssertionError("expected the server to close the connection, but it sent %r" % extra[:200])

    def is_open(self):
        """True if the server has not closed the connection (non-blocking)."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
            return data != b""
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(self.timeout)


def parse_info(text):
    """INFO's bulk text as a dict of field -> string value ("# Section"
    headers and blank lines skipped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    fields = {}
    for line in text.split("\r\n"):
        if not line or line.startswith("#"):
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise AssertionError("INFO line without ':': %r" % line)
        fields[k] = v
    return fields


# ---------------------------------------------------------------------------
# Server process


class Server:
    """One server process on a free loopback port, output in a log file.

    start() and stop() may alternate: a restarted server keeps its temp dir
    (so data directories survive) and its port. Every stop checks the log for
    sanitizer reports. close() stops the process if needed and removes the
    temp dir; it runs from the context manager and from unittest cleanups."""

    def __init__(self, args=(), binary=None, env_args=True, port=None, bind="127.0.0.1", env=None,
                 port_flag=True):
        self.binary = binary or SERVER_BIN
        if not self.binary:
            raise unittest.SkipTest("KV_SERVER_BIN is not set")
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("server binary %r is not executable" % self.binary)
        self.tmp = tempfile.mkdtemp(prefix="kvtest-")
        self.args = [a.replace("{tmp}", self.tmp) for a in args]
        self.env_args = [a.replace("{tmp}", self.tmp) for a in shlex.split(SERVER_ARGS)] if env_args else []
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port()
        # port_flag=False: start without --port, to test the default (then
        # port must say where the server is expected to listen).
        self.port_flag = port_flag
        self.bind = bind
        self.env = env
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.returncode = None

    # -- lifecycle --

    def command_line(self):
        cmd = [self.binary]
        if self.port_flag:
            cmd += ["--port", str(self.port)]
        if self.bind is not None:
            cmd += ["--bind", self.bind]
        return cmd + self.env_args + self.args

    def start(self, timeout=START_TIMEOUT):
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("server already running")
        for attempt in range(5):
            if attempt > 0 and not self.fixed_port:
                self.port = free_port()
            if self._start_once(timeout):
                return self
            # Lost the race for the port to another process: pick another.
            if self.fixed_port or "in use" not in self.log().lower():
                break
        raise AssertionError("server exited with code %s before accepting connections:\n%s\n--- log ---\n%s"
                             % (self.returncode, " ".join(self.command_line()), tail(self.log())))

    def _start_once(self, timeout):
        logf = open(self.log_path, "ab")
        try:
            logf.write(b"=== kvtest: starting %s\n" % " ".join(self.command_line()).encode())
            logf.flush()
            self.proc = subprocess.Popen(self.command_line(), stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=sanitizer_env(self.env))
        finally:
            logf.close()
        self.returncode = None
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                assert_no_sanitizer_reports(self.log())
                return False
            if accepts_connections(self.port):
                return True
            if time.monotonic() >= deadline:
                self.kill9()
                raise AssertionError("server did not accept connections on port %d within %.0f s\n--- log ---\n%s"
                                     % (self.port, timeout, tail(self.log())))
            time.sleep(0.01)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Wait for the process to exit by itself; returns the exit code
        (negative: killed by that signal) after the sanitizer check."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError("server did not exit within %.1f s (killed)\n--- log ---\n%s"
                                 % (timeout, tail(self.log())))
        self.proc = None
        self.returncode = rc
        assert_no_sanitizer_reports(self.log())
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal the server and wait for it to exit; returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill9(self):
        """Crash the server (SIGKILL): no chance to flush or clean up."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self.proc = None
        self.returncode = rc
        assert_no_sanitizer_reports(self.log())
        # A child the server forked (stage 2's compaction) holds a copy of the
        # listening socket from fork() until it closes its inherited
        # descriptors, its first act. A restart probing the port meanwhile
        # would find the dead server's backlog, not the new server.
        wait_for(lambda: port_is_free(self.port, reuse_addr=True), timeout=10,
                 message="port %d released by the killed server and its children" % self.port)
        return rc

    def close(self):
        """Stop (SIGTERM, must exit 0) if running; remove the temp dir."""
        try:
            if self.proc is not None:
                rc = self.stop()
                if rc != 0:
                    raise AssertionError("server exited with code %s on SIGTERM\n--- log ---\n%s"
                                         % (rc, tail(self.log())))
        finally:
            if self.proc is not None:  # stop() raised before reaping: never leak a process
                self.proc.kill()
                self.proc.wait()
                self.proc = None
            if not os.environ.get("KV_KEEP_TMP"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- inspection --

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def connect(self, **kw):
        return Conn(self.port, **kw)

    def info(self):
        with self.connect() as c:
            reply = c.command("INFO")
        if not isinstance(reply, bytes):
            raise AssertionError("INFO replied %r" % (reply,))
        return parse_info(reply)


# ---------------------------------------------------------------------------
# unittest glue


class ServerTestCase(unittest.TestCase):
    """Base class: one server per test class (server_args), started lazily
    via self.server, plus helpers that register their own cleanup.

    Tests that need a server with other flags, or that kill it, call
    self.start_server(args) for a private one."""

    server_args = []
    shared_server = None  # per class

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared_server = None

    @classmethod
    def tearDownClass(cls):
        srv, cls.shared_server = cls.shared_server, None
        if srv is not None:
            srv.close()
        super().tearDownClass()

    @property
    def server(self):
        cls = type(self)
        if cls.shared_server is None or not cls.shared_server.running():
            if cls.shared_server is not None:
                cls.shared_server.close()
            cls.shared_server = Server(cls.server_args).start()
        return cls.shared_server

    def start_server(self, args=(), **kw):
        srv = Server(args, **kw)
        self.addCleanup(srv.close)
        return srv.start()

    def connect(self, server=None, **kw):
        c = (server or self.server).connect(**kw)
        self.addCleanup(c.close)
        return c

    def assertError(self, reply, prefix):
        self.assertIsInstance(reply, RespError, "expected an error reply starting %r, got %r" % (prefix, reply))
        self.assertTrue(reply.text.startswith(prefix), "expected an error starting %r, got %r" % (prefix, reply.text))

    def assertStillServes(self, server=None):
        """A fresh client can still use the server (after something nasty
        happened on another connection)."""
        with (server or self.server).connect() as c:
            self.assertEqual(c.command("PING"), "PONG")


def main():
    unittest.main(verbosity=2)
