# resp.py - a raw RESP2 client for tests: encode requests exactly as client
# libraries send them, send arbitrary bytes (split, malformed, pipelined), and
# parse replies incrementally, keeping error replies distinct from simple
# strings. Also INFO's text as a dict.
import re
import socket
import time

from .env import IO_TIMEOUT

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
