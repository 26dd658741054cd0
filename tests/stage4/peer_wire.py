# peer_wire.py - what the stage 4 robustness suites (test_bad_peers.py,
# test_peer_security.py, test_backpressure.py, test_acks.py) share: peer
# frames built and read by hand in the protobuf wire format (u32 big-endian
# length + PeerMessage, field numbers from common/proto/peer.proto; no
# protobuf package needed), raw
# sockets to a peer port, and leader/follower processes on free loopback
# ports (a client port and a peer port each).
import os
import socket
import struct
import time

import kvtest

# Servers under valgrind are 20-50x slower: every deadline here scales.
SLOW = 20.0 if kvtest.UNDER_VALGRIND else 1.0

# PeerMessage's oneof field numbers (common/proto/peer.proto).
HELLO, CHALLENGE, CHALLENGE_RESPONSE, SYNC_REQUEST = 1, 2, 3, 4
STREAM_FROM, RECORDS, ACK, ERROR = 8, 9, 10, 11
ROLE_LEADER, ROLE_FOLLOWER = 1, 2


# -- the wire format --

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3 | 0) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def message(kind, body=b""):
    """One whole frame: a PeerMessage whose oneof holds `kind` = body."""
    return frame(field_bytes(kind, body))


def hello(role=ROLE_FOLLOWER, host="127.0.0.1", port=1, version=1, challenge=False):
    body = field_bytes(1, host) + field_varint(2, port) + field_varint(3, role) + field_varint(4, version)
    if challenge:
        body += field_varint(5, 1)
    return message(HELLO, body)


def sync_request(history_id="", last_index=0):
    return message(SYNC_REQUEST, field_bytes(1, history_id) + field_varint(2, last_index))


def ack(index):
    return message(ACK, field_varint(1, index))


def read_varint(data, pos):
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def fields(body):
    """A message's fields: {number: [values]}, varints as ints, length-delimited as bytes."""
    out, pos = {}, 0
    while pos < len(body):
        key, pos = read_varint(body, pos)
        if key & 7 == 0:
            value, pos = read_varint(body, pos)
        elif key & 7 == 2:
            n, pos = read_varint(body, pos)
            value, pos = body[pos:pos + n], pos + n
        else:
            raise AssertionError("wire type %d not expected here" % (key & 7))
        out.setdefault(key >> 3, []).append(value)
    return out


def frame_indexes(frames):
    """The indexes of the WAL frames (u32 length, u32 CRC, LogRecord) in a Records' `frames`."""
    out, pos = [], 0
    while pos < len(frames):
        n = struct.unpack(">I", frames[pos:pos + 4])[0]
        out.append(fields(frames[pos + 8:pos + 8 + n]).get(1, [0])[0])
        pos += 8 + n
    return out


def read_message(sock, timeout):
    """The next whole frame from sock: (oneof field number, body bytes)."""
    def exactly(n):
        got = bytearray()
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no whole peer message within %.1f s" % timeout)
            sock.settimeout(left)
            chunk = sock.recv(n - len(got))
            if not chunk:
                raise AssertionError("the peer closed the link")
            got += chunk
        return bytes(got)
    payload = exactly(struct.unpack(">I", exactly(4))[0])
    ((kind, (body,)),) = fields(payload).items()
    return kind, body


# -- raw peer connections --

def peer_socket(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(sock, timeout):
    """Reads until the other end closes (EOF or reset); returns the bytes it
    sent first. Fails if it is still open after timeout."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the peer link is still open after %.1f s" % timeout)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(got)
        except socket.timeout:
            continue
        if not chunk:
            return bytes(got)
        got += chunk


def send_quietly(sock, data):
    """Sends what the other end lets us: it may close halfway (that is the point)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


# -- nodes --

def write_secret(directory, name, content, mode=0o600):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.chmod(path, mode)  # whatever the umask said
    return path


def node(case, extra=(), replicaof=None, env=None):
    """Starts a node (a leader, or a follower of the node `replicaof`) with
    its own data dir and a free peer port; stopped at the test's cleanup."""
    peer_port = kvtest.free_port()
    args = ["--data-dir", "{tmp}/data", "--peer-port", str(peer_port)] + list(extra)
    if replicaof is not None:
        args += ["--replicaof", "127.0.0.1:%d" % (replicaof if isinstance(replicaof, int) else replicaof.peer_port)]
    srv = kvtest.Server(args, env_args=False, env=env)
    srv.peer_port = peer_port
    # case: a test (cleanup after it) or a test class (after the class).
    (case.addClassCleanup if isinstance(case, type) else case.addCleanup)(srv.close)
    return srv.start(timeout=kvtest.START_TIMEOUT * SLOW)


def command(srv, *args):
    with srv.connect(timeout=kvtest.IO_TIMEOUT * SLOW) as c:
        return c.command(*args)


def info(srv):
    return kvtest.parse_info(command(srv, "INFO").decode())


def digest(srv):
    return command(srv, "DIGEST").decode()


def keys_in(srv):
    return int(digest(srv).split("keys=")[1])


def wait_same_data(leader, follower, timeout=10.0, message="the follower to hold the leader's data"):
    def same():
        d = digest(leader)
        return d == digest(follower) and d
    return kvtest.wait_for(same, timeout=timeout * SLOW, interval=0.05, message=message)


def write_keys(srv, prefix, n):
    """n SETs in one pipelined round trip."""
    with srv.connect(timeout=kvtest.IO_TIMEOUT * SLOW) as c:
        c.send(b"".join(kvtest.encode_command("SET", "%s:%d" % (prefix, i), "v%d" % i) for i in range(n)))
        replies = c.read_replies(n)
    assert replies == ["OK"] * n, replies[:5]


def log_count(srv, text):
    return srv.log().count(text)


def wait_log(srv, text, count=1, timeout=5.0):
    """Waits until the server's log holds text at least count times."""
    kvtest.wait_for(lambda: log_count(srv, text) >= count, timeout=timeout * SLOW,
                    message="%d x %r in the log of the server on port %d" % (count, text, srv.port))
