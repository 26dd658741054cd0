# test_pipeline.py - many requests in one write, and requests cut into pieces
# at every byte position: TCP delivers a byte stream, so the server must answer
# each request exactly once, in order, however the bytes arrive.
import threading

import kvtest
from kvtest import RespError, encode_command


def pipeline_model(n):
    """n requests (mixed multibulk and inline, every command) with the reply a
    correct server gives to each, computed by a dict standing in for the store."""
    store = {}
    reqs = []
    for i in range(n):
        key = "pl:%d" % (i % 97)
        op = i % 10
        if op in (0, 1, 2):
            value = ("v%d" % i).encode() + (b"\x00\r\n" if i % 3 == 0 else b"")
            store[key] = value
            reqs.append((encode_command("SET", key, value), "OK"))
        elif op in (3, 4):
            reqs.append((encode_command("GET", key), store.get(key)))
        elif op == 5:
            other = "pl:%d" % ((i * 7) % 97)
            count = sum(1 for k in {key, other} if k in store)
            store.pop(key, None)
            store.pop(other, None)
            reqs.append((encode_command("DEL", key, other), count))
        elif op == 6:
            # Inline, as a person would pipe a file through nc.
            reqs.append((("EXISTS %s pl:none\r\n" % key).encode(), 1 if key in store else 0))
        elif op == 7:
            reqs.append((("ECHO e%d\n" % i).encode(), ("e%d" % i).encode()))
        elif op == 8:
            reqs.append((b"PING\r\n" if i % 20 else encode_command("PING"), "PONG"))
        else:
            if i % 1000 == 9:
                reqs.append((encode_command("NOSUCH", "x"), RespError("ERR unknown command 'NOSUCH'")))
            else:
                reqs.append((encode_command("DBSIZE"), len(store)))
    return reqs


# A small set touching every parser path: quoted inline with escapes, bare LF,
# binary bulk with CRLF inside, empty bulk, a blank line, multi-argument DEL.
SMALL = [
    (encode_command("SET", "sp:a", b"v\r\n\x001"), "OK"),
    (b'SET sp:b "x y\\n"\r\n', "OK"),
    (encode_command("GET", "sp:a"), b"v\r\n\x001"),
    (b"\r\nGET sp:b\n", b"x y\n"),
    (encode_command("ECHO", b""), b""),
    (b"EXISTS sp:a sp:b sp:c\r\n", 2),
    (encode_command("DEL", "sp:a", "sp:b"), 2),
    (b"PING\r\n", "PONG"),
    (encode_command("GET", "sp:a"), None),
]


class Pipeline(kvtest.ServerTestCase):

    def check_replies(self, got, reqs):
        for i, (r, (req, want)) in enumerate(zip(got, reqs)):
            if isinstance(want, RespError):
                self.assertIsInstance(r, RespError, "reply %d to %r" % (i, req))
                self.assertTrue(r.startswith(want.text), "reply %d to %r: %r" % (i, req, r))
            else:
                self.assertEqual(r, want, "reply %d to %r" % (i, req))

    def test_ten_thousand_in_one_send(self):
        srv = self.start_server()  # DBSIZE answers need an empty store
        c = self.connect(srv)
        reqs = pipeline_model(10000)
        payload = b"".join(r for r, _ in reqs)
        # Send from another thread while reading here: a server that applies
        # back-pressure must not deadlock against a client that reads late.
        errors = []

        def sender():
            try:
                c.send(payload)
            except OSError as e:
                errors.append(e)

        t = threading.Thread(target=sender)
        t.start()
        try:
            got = c.read_replies(len(reqs), timeout=30)
        finally:
            t.join(30)
        self.assertEqual(errors, [])
        self.check_replies(got, reqs)
        # Exactly 10,000 replies: the connection holds nothing more.
        self.assertEqual(c.command("ECHO", "end"), b"end")

    def offsets(self, reqs):
        ends, total = [], 0
        for r, _ in reqs:
            total += len(r)
            ends.append(total)
        return ends

    def test_split_in_two_at_every_byte(self):
        c = self.connect()
        payload = b"".join(r for r, _ in SMALL)
        ends = self.offsets(SMALL)
        for cut in range(1, len(payload)):
            c.send(payload[:cut])
            # Read the replies to the requests already whole before sending
            # the rest, so the server has surely seen the first piece alone.
            done = sum(1 for e in ends if e <= cut)
            got = c.read_replies(done)
            c.send(payload[cut:])
            got += c.read_replies(len(SMALL) - done)
            with self.subTest(cut=cut):
                self.check_replies(got, SMALL)

    def test_byte_by_byte_reading_as_it_goes(self):
        c = self.connect()
        payload = b"".join(r for r, _ in SMALL)
        ends = set(self.offsets(SMALL))
        got = []
        for i in range(len(payload)):
            c.send(payload[i:i + 1])
            if i + 1 in ends:
                got.append(c.read_reply())
        self.check_replies(got, SMALL)

    def test_byte_by_byte_then_read_all(self):
        c = self.connect()
        payload = b"".join(r for r, _ in SMALL) * 3
        for i in range(len(payload)):
            c.send(payload[i:i + 1])
        self.check_replies(c.read_replies(3 * len(SMALL)), SMALL * 3)

    def test_pipelined_replies_bigger_than_socket_buffers(self):
        # Replies far larger than the kernel buffers: a server that pauses a
        # client whose output piles up must resume it once the output drains.
        c = self.connect()
        for key, size, n in (("sp:m", 100 << 10, 30), ("sp:l", 1 << 20, 20)):
            value = key.encode() * (size // len(key))
            self.assertEqual(c.command("SET", key, value), "OK")
            c.send(encode_command("GET", key) * n + encode_command("ECHO", "done"))
            for i in range(n):
                self.assertEqual(c.read_reply(), value, "reply %d of %d GET %s" % (i + 1, n, key))
            self.assertEqual(c.read_reply(), b"done")

    def test_big_value_in_odd_chunks(self):
        c = self.connect()
        value = bytes(range(256)) * 4096  # 1 MiB
        payload = encode_command("SET", "sp:big", value) + encode_command("GET", "sp:big")
        step = 7919  # prime: chunk borders land everywhere in headers and data
        for i in range(0, len(payload), step):
            c.send(payload[i:i + step])
        self.assertEqual(c.read_replies(2), ["OK", value])


if __name__ == "__main__":
    kvtest.main()
