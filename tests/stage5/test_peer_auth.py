# test_peer_auth.py - who may join a stage 5 cluster: with
# --cluster-secret-file every pair of nodes proves the secret to each other
# before any Raft message crosses. Nodes with the same secret elect a leader
# and replicate; a node with another secret, or none, never receives an entry
# (its store stays empty) and both sides log why; a handshake out of order,
# a challenge of the wrong size and a forged response each close that link
# with their reason logged; secret files that are too
# open or too short are refused at start; and a peer address off loopback
# without a secret is refused at start (protected mode).
import os
import shutil
import sys
import tempfile

import kvtest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "stage4"))
import peer_wire as pw  # noqa: E402
from raftcluster import SCALE, RaftCluster  # noqa: E402

CHALLENGE, CHALLENGE_RESPONSE, RAFT_HELLO, RAFT = 2, 3, 16, 17  # PeerMessage fields (common/proto/peer.proto)

SECRET = b"the-stage5-cluster-secret-0001\n"
OTHER = b"some-other-cluster-secret-0002\n"


class PeerAuthTest(kvtest.ServerTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kvtest-s5-secrets-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def secret(self, content=SECRET, mode=0o600):
        path = os.path.join(self.dir, "secret%d" % len(os.listdir(self.dir)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    def cluster(self, node_extra):
        c = RaftCluster(node_extra=node_extra)
        self.addCleanup(c.close)
        c.start()
        return c

    def bound(self, c):
        return (4 * c.election_ms + 2000 * SCALE) / 1000.0

    def wait_log(self, srv, text, timeout=10.0):
        kvtest.wait_for(lambda: text in srv.log(), timeout=timeout * SCALE, message="%r in the log" % text)

    def test_same_secret_forms_a_cluster(self):
        same = ("--cluster-secret-file", self.secret())
        c = self.cluster({1: same, 2: same, 3: same})
        lead = c.wait_leader(self.bound(c))
        self.assertEqual(c.command(lead, "SET", "k", "v"), "OK")
        digest = c.command(lead, "DIGEST")
        c.wait_same_digest(expect=digest)
        for i in c.nodes:
            self.assertIn("proved the cluster secret", c.nodes[i].log())

    def check_outsider(self, c, outsider, their_log, our_log):
        """Nodes 1 and 2 form a cluster; the outsider never gets an entry."""
        insiders = [i for i in c.nodes if i != outsider]

        def insider_leader():
            roles = {i: c.role(i) for i in insiders}
            leaders = [i for i, r in roles.items() if r["role"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        lead = kvtest.wait_for(insider_leader, timeout=self.bound(c), message="a leader among the insiders")
        self.assertEqual(c.command(lead, "SET", "k", "v"), "OK")
        other = next(i for i in insiders if i != lead)
        kvtest.wait_for(lambda: c.command(other, "DIGEST") == c.command(lead, "DIGEST"), timeout=10 * SCALE,
                        message="the two insiders to agree")
        self.wait_log(c.nodes[outsider], their_log)
        self.wait_log(c.nodes[lead], our_log)
        self.assertTrue(c.command(outsider, "DIGEST").endswith(b" keys=0"))
        info = c.nodes[outsider].info()
        self.assertEqual(info["raft_commit_index"], "0")
        self.assertNotEqual(info["raft_role"], "leader")
        self.assertEqual(c.role(lead)["role"], "leader")  # it could not disrupt the insiders

    def test_wrong_secret_is_kept_out(self):
        same = ("--cluster-secret-file", self.secret())
        c = self.cluster({1: same, 2: same, 3: ("--cluster-secret-file", self.secret(OTHER))})
        self.check_outsider(c, 3, "did not prove the cluster secret (--cluster-secret-file differs)",
                            "node 3 did not prove the cluster secret")

    def test_node_without_secret_is_kept_out(self):
        same = ("--cluster-secret-file", self.secret())
        c = self.cluster({1: same, 2: same})
        self.check_outsider(c, 3, "the other node has a cluster secret and this one has none",
                            "this node requires a cluster secret and the other node has none")

    def handshake_refused(self, frames, reason):
        """A peer that claims to be node 2 and holds no secret: the node
        closes the link with reason in its log and still serves."""
        same = ("--cluster-secret-file", self.secret())
        c = self.cluster({1: same, 2: same, 3: same})
        s = pw.peer_socket(c.peer_port[1], timeout=5 * SCALE)
        self.addCleanup(s.close)
        hello = pw.message(RAFT_HELLO, pw.field_varint(1, 2) + pw.field_varint(2, 3) + pw.field_varint(3, 1))
        pw.send_quietly(s, hello + frames)
        pw.wait_closed(s, timeout=5 * SCALE)
        line = "peer 127.0.0.1:%d: %s" % (s.getsockname()[1], reason)
        self.wait_log(c.nodes[1], line)
        with c.nodes[1].connect() as conn:
            self.assertEqual(conn.command("PING"), "PONG")

    def test_handshake_out_of_order_is_refused(self):
        # A Raft message where the challenge must come.
        beat = pw.message(RAFT, pw.field_varint(1, 7) + pw.field_varint(2, 2) + pw.field_varint(3, 1))
        self.handshake_refused(beat, "unexpected message during the cluster-secret handshake")

    def test_challenge_of_the_wrong_size_is_refused(self):
        self.handshake_refused(pw.message(CHALLENGE, pw.field_bytes(1, b"short")), "malformed challenge")

    def test_a_forged_response_is_refused(self):
        # A well-formed challenge, then a response that is not the HMAC.
        frames = pw.message(CHALLENGE, pw.field_bytes(1, b"n" * 32)) + \
            pw.message(CHALLENGE_RESPONSE, pw.field_bytes(1, b"m" * 32))
        self.handshake_refused(frames, "node 2 did not prove the cluster secret")

    def refused_at_start(self, args, message):
        p = kvtest.run_binary(["--id", "1", "--data-dir", os.path.join(self.dir, "data"), *args],
                              timeout=20 * SCALE)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(message, p.stdout + p.stderr)

    def test_bad_secret_files_are_refused(self):
        spec = "1=127.0.0.1:%d:%d" % (kvtest.free_port(), kvtest.free_port())
        open_file = self.secret(mode=0o644)
        self.refused_at_start(["--cluster", spec, "--cluster-secret-file", open_file],
                              "permissions 0644 for cluster secret file '%s' are too open" % open_file)
        short = self.secret(b"short\n")
        self.refused_at_start(["--cluster", spec, "--cluster-secret-file", short], "too short")

    def test_protected_mode_refuses_an_open_peer_port(self):
        spec = "1=0.0.0.0:%d:%d" % (kvtest.free_port(), kvtest.free_port())
        self.refused_at_start(["--cluster", spec, "--bind", "127.0.0.1"],
                              "refusing to listen for peers on 0.0.0.0 without --cluster-secret-file")


if __name__ == "__main__":
    kvtest.main()
