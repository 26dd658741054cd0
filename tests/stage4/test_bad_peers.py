# test_bad_peers.py - what a node does with a peer that is not one of its
# own: garbage, an oversized or empty length header, a message of a type it
# does not know, a message out of turn, a huge frame before the peer proved
# the cluster secret (the handshake limit is 4 KiB), and 200 seeded random
# byte strings. Each time that link alone is closed with its reason in the
# log; the leader keeps serving clients and its real follower keeps streaming
# on its own link. A follower fed garbage by a fake "leader" closes the link,
# says why, and keeps serving reads.
import random
import shutil
import socket
import struct
import tempfile

import kvtest
import peer_wire as pw

SECRET = b"bad-peers-test-cluster-secret-0123456789"


class BadFramesToLeader(kvtest.ServerTestCase):
    """One leader holding a cluster secret and one real follower, shared by
    the tests: after every attack the follower must still be on its first link."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        secrets = tempfile.mkdtemp(prefix="kvtest-secrets-")
        cls.addClassCleanup(shutil.rmtree, secrets, True)
        secret = pw.write_secret(secrets, "secret", SECRET)
        cls.leader = pw.node(cls, ["--cluster-secret-file", secret])
        cls.follower = pw.node(cls, ["--cluster-secret-file", secret], replicaof=cls.leader)
        pw.write_keys(cls.leader, "before", 20)
        pw.wait_same_data(cls.leader, cls.follower)

    def attack(self, data, reason, refused=False):
        """Sends data on a fresh peer connection; the leader must close it
        with `reason` logged against that connection's address."""
        streaming = pw.log_count(self.follower, "replication: streaming from leader")
        refused_before = int(pw.info(self.leader)["refused_peers"])
        s = pw.peer_socket(self.leader.peer_port)
        self.addCleanup(s.close)
        me = "peer 127.0.0.1:%d: " % s.getsockname()[1]
        pw.send_quietly(s, data)
        pw.wait_closed(s, timeout=5.0 * pw.SLOW)
        pw.wait_log(self.leader, me + reason)
        self.assertIn(me + reason, self.leader.log())
        self.assertRegex(self.leader.log(), r"%s%s[^\n]*; closing the link" % (me, reason.replace("(", r"\(")
                                                                           .replace(")", r"\)")))
        # That link only: clients are served, the follower streams on.
        self.assertEqual(pw.command(self.leader, "PING"), "PONG")
        prefix = "after-%s" % self.id().rsplit(".", 1)[1]
        pw.write_keys(self.leader, prefix, 30)
        self.assertEqual(pw.command(self.leader, "GET", prefix + ":7"), b"v7")
        pw.wait_same_data(self.leader, self.follower)
        self.assertEqual(pw.log_count(self.follower, "replication: streaming from leader"), streaming,
                         "the real follower had to reconnect")
        self.assertEqual(pw.info(self.leader)["connected_followers"], "1")
        refused_after = int(pw.info(self.leader)["refused_peers"])
        self.assertEqual(refused_after, refused_before + (1 if refused else 0))

    def test_text_garbage(self):
        # "GET " read as a length: about 1.2 GB.
        self.attack(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad frame: frame of 1195725856 bytes exceeds the limit")

    def test_undecodable_payload(self):
        self.attack(pw.frame(b"\xff" * 16), "bad frame: undecodable PeerMessage in a frame of 16 bytes")

    def test_oversized_length_header(self):
        self.attack(struct.pack(">I", 0xFFFFFFFF) + b"\x0a\x00",
                    "bad frame: frame of 4294967295 bytes exceeds the limit of 4096 bytes")

    def test_empty_frame(self):
        self.attack(struct.pack(">I", 0), "bad frame: empty frame (length 0)")

    def test_unknown_message_type(self):
        # Field 12 is reserved in PeerMessage: a well-formed frame of no known type.
        self.attack(pw.message(12, b"\x08\x01"), "bad frame: unknown peer message type (field 12) in a frame of 4 bytes")

    def test_sync_request_before_hello(self):
        self.attack(pw.sync_request("", 0), "unexpected SyncRequest in state hello", refused=True)

    def test_huge_frame_before_authentication(self):
        # A proper Hello, answered with the leader's Hello and Challenge; then,
        # before proving the secret, a frame over the 4 KiB handshake limit.
        big = pw.field_bytes(pw.CHALLENGE_RESPONSE, pw.field_bytes(1, b"m" * 5000))
        self.attack(pw.hello(challenge=True) + pw.frame(big),
                    "bad frame: frame of %d bytes exceeds the limit of 4096 bytes" % len(big))

    def test_peer_text_cannot_forge_log_lines(self):
        # Text from an unauthenticated peer (its Hello's host, its Error's
        # reason) reaches log lines: a newline in it must not start a line.
        s = pw.peer_socket(self.leader.peer_port)
        self.addCleanup(s.close)
        me = "follower 127.0.0.1:%d " % s.getsockname()[1]
        pw.send_quietly(s, pw.hello(host="evil\n2026-01-01T00:00:00.000Z INFO  FORGED-1", challenge=True) +
                        pw.message(pw.ERROR, pw.field_bytes(1, "bye\r\nFORGED-2\x1b[31m")))
        pw.wait_closed(s, timeout=5.0 * pw.SLOW)
        pw.wait_log(self.leader, me)
        line = [ln for ln in self.leader.log().splitlines() if me in ln][0]
        self.assertIn("reports: bye??FORGED-2?[31m", line)
        self.assertIn("(evil?2026-01-01T00:00:00.000Z INFO  FORG:1)", line)  # hosts are cut at 40
        for ln in self.leader.log().splitlines():
            self.assertFalse(ln.startswith(("2026-01-01", "FORGED")), ln)
        self.assertStillServes(self.leader)

    def test_unproved_follower_cannot_sync(self):
        # Skipping the challenge: a SyncRequest straight after Hello.
        self.attack(pw.hello(challenge=True) + pw.sync_request("", 0),
                    "unexpected message during authentication", refused=True)


class GarbageFromFakeLeader(kvtest.ServerTestCase):
    """A follower whose "leader" is a Python socket sending garbage."""

    def test_follower_closes_and_keeps_serving_reads(self):
        leader = pw.node(self)
        follower = pw.node(self, replicaof=leader)
        pw.write_keys(leader, "k", 10)
        pw.wait_same_data(leader, follower)

        fake = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(fake.close)
        fake.bind(("127.0.0.1", 0))
        fake.listen(4)
        fake.settimeout(10.0 * pw.SLOW)
        fake_port = fake.getsockname()[1]
        self.assertEqual(pw.command(follower, "REPLICAOF", "127.0.0.1", str(fake_port)), "OK")

        me = "peer 127.0.0.1:%d: bad frame: " % fake_port
        cases = [(pw.frame(b"\xff" * 16), "undecodable PeerMessage in a frame of 16 bytes"),
                 (struct.pack(">I", 1 << 30), "frame of 1073741824 bytes exceeds the limit of 4096 bytes")]
        for n, (garbage, reason) in enumerate(cases, 1):
            conn, _ = fake.accept()  # the follower (re)connects by itself
            self.addCleanup(conn.close)
            first = conn.recv(4096)  # its Hello
            self.assertGreater(len(first), 4)
            pw.send_quietly(conn, garbage)
            pw.wait_closed(conn, timeout=5.0 * pw.SLOW)
            pw.wait_log(follower, me + reason)
            self.assertIn(me + reason + "; closing the link", follower.log())
            # Reads go on with what it held.
            self.assertEqual(pw.command(follower, "GET", "k:3"), b"v3")
            self.assertEqual(pw.keys_in(follower), 10)
            self.assertError(pw.command(follower, "SET", "x", "y"), "READONLY")
        self.assertEqual(pw.info(follower)["leader_link_status"], "down")

        # A fake leader's text cannot forge the follower's log lines either.
        conn, _ = fake.accept()
        self.addCleanup(conn.close)
        conn.recv(4096)
        pw.send_quietly(conn, pw.hello(role=pw.ROLE_LEADER, host="evil\nFORGED-1") +
                        pw.message(pw.ERROR, pw.field_bytes(1, "no\nFORGED-2")))
        pw.wait_closed(conn, timeout=5.0 * pw.SLOW)
        pw.wait_log(follower, "refused us: no?FORGED-2")
        for ln in follower.log().splitlines():
            self.assertFalse(ln.startswith("FORGED"), ln)
        self.assertNotIn("\nFORGED", follower.log())
        # What READONLY names as the leader is printable too.
        reply = pw.command(follower, "SET", "x", "y")
        self.assertError(reply, "READONLY")
        self.assertNotIn("\n", reply.text)


class PeerPortFuzz(kvtest.ServerTestCase):
    """200 seeded random inputs, each on a new connection, to a leader
    without a secret (so that a valid Hello reaches the later states)."""

    SEED = 4242
    CASES = 200

    def inputs(self, rng):
        valid = [pw.hello(), pw.hello(challenge=True), pw.sync_request("", 0),
                 pw.sync_request("f" * 32, rng.randrange(1 << 40)), pw.ack(rng.randrange(1 << 20)),
                 pw.message(pw.RECORDS, pw.field_bytes(2, bytes(rng.randrange(256) for _ in range(40)))),
                 pw.message(pw.ERROR, pw.field_bytes(1, "fuzz"))]
        for _ in range(self.CASES):
            kind = rng.randrange(5)
            if kind == 0:  # bytes, nothing else
                yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            elif kind == 1:  # a plausible length, random payload
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
                yield pw.frame(body)
            elif kind == 2:  # a Hello, then random frames
                yield pw.hello() + b"".join(pw.frame(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))))
                                            for _ in range(rng.randrange(1, 4)))
            elif kind == 3:  # valid messages in a random order
                yield b"".join(rng.choice(valid) for _ in range(rng.randrange(1, 5)))
            else:  # a valid conversation with bytes flipped
                data = bytearray(pw.hello() + pw.sync_request("", 0) + pw.ack(1))
                for _ in range(rng.randrange(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                yield bytes(data)

    def test_random_inputs(self):
        leader = pw.node(self)
        follower = pw.node(self, replicaof=leader)
        pw.write_keys(leader, "seed", 20)
        pw.wait_same_data(leader, follower)
        rng = random.Random(self.SEED)
        for n, data in enumerate(self.inputs(rng)):
            s = pw.peer_socket(leader.peer_port)
            pw.send_quietly(s, data)
            s.close()
            if n % 25 == 24:
                self.assertTrue(leader.running(), "leader died after fuzz input %d: %r" % (n, data))
                self.assertEqual(pw.command(leader, "PING"), "PONG")
        pw.write_keys(leader, "after", 50)
        pw.wait_same_data(leader, follower)
        self.assertTrue(leader.running())
        kvtest.assert_no_sanitizer_reports(leader.log(), "leader")
        kvtest.assert_no_sanitizer_reports(follower.log(), "follower")
        # The inputs reached the decoder's refusals and the handshake's.
        log = leader.log()
        for reason in ("bad frame: undecodable", "bad frame: frame of", "bad frame: unknown peer message type",
                       "unexpected SyncRequest in state hello", "in state sync", "reports: fuzz"):
            self.assertTrue(reason in log, "no fuzz input led to %r in the log" % reason)
        # Every fuzz link was let go: only the real follower is left.
        kvtest.wait_for(lambda: pw.info(leader)["connected_followers"] == "1", timeout=10 * pw.SLOW,
                        message="the fuzz links to be closed")


if __name__ == "__main__":
    kvtest.main()
