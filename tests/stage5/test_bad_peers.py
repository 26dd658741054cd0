# test_bad_peers.py - what a stage 5 node does with bytes on its peer port
# that no member of its cluster sends: garbage, an oversized length header,
# a message of the wrong type (a Raft message before RaftHello, a stage 4
# Hello), a RaftHello naming a node that is not in --cluster or naming the
# node itself, a Raft message whose sender is not who said Hello. Each time
# that link alone is closed with its reason in the node's log; the node
# keeps serving clients and the cluster keeps committing on its own links.
# The frames are built by hand (tests/stage4/peer_wire.py's wire helpers).
import os
import re
import struct
import sys

import kvtest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "stage4"))
import peer_wire as pw  # noqa: E402
from faultrun import FaultCase, secs  # noqa: E402

RAFT_HELLO, RAFT = 16, 17  # PeerMessage fields (common/proto/peer.proto)


def raft_hello(node_id, cluster_size=3):
    return pw.message(RAFT_HELLO, pw.field_varint(1, node_id) + pw.field_varint(2, cluster_size))


def raft_heartbeat(sender, to, term):
    # RaftMessage: type=1 (7: HEARTBEAT), from=2, to=3, term=4.
    return pw.message(RAFT, pw.field_varint(1, 7) + pw.field_varint(2, sender) + pw.field_varint(3, to)
                      + pw.field_varint(4, term))


class BadPeerFrames(FaultCase):
    def setUp(self):
        self.c = self.cluster()
        self.lead = self.c.wait_leader(self.election_bound(self.c))
        self.term = self.c.term(self.lead)
        self.n = 0
        self.assertEqual(self.c.command(self.lead, "SET", "before", "1"), "OK")

    def attack(self, target, data, reason):
        """Sends data to target's real peer port (not through the proxies);
        target must close the link with reason logged against it, and
        nothing else may change."""
        c = self.c
        c.note("bad frame to n%d: %s" % (target, reason[:40]), target)
        s = pw.peer_socket(c.peer_port[target], timeout=secs(5))
        self.addCleanup(s.close)
        me = "peer 127.0.0.1:%d: " % s.getsockname()[1]
        pw.send_quietly(s, data)
        pw.wait_closed(s, timeout=secs(5))
        line = me + reason
        kvtest.wait_for(lambda: line in c.nodes[target].log(), timeout=secs(5),
                        message="%r in node %d's log" % (line, target))
        self.assertRegex(c.nodes[target].log(), r"WARN  %s[^\n]*; closing the link" % re.escape(line))
        # The node serves clients, and the cluster commits with the same
        # leader in the same term on its own links.
        with c.nodes[target].connect(timeout=secs(5)) as conn:
            self.assertEqual(conn.command("PING"), "PONG")
        for _ in range(5):
            key = "after:%d" % self.n
            self.n += 1
            self.assertEqual(c.command(self.lead, "SET", key, "v"), "OK")
        self.assertEqual(c.stable_leader(), self.lead)
        self.assertEqual(c.term(self.lead), self.term)
        c.wait_same_digest(expect=c.command(self.lead, "DIGEST"), timeout=secs(10))

    def followers(self):
        return [i for i in self.c.nodes if i != self.lead]

    def test_text_garbage(self):
        # "GET " read as a length header: about 1.2 GB.
        self.attack(self.lead, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    "bad frame: frame of 1195725856 bytes exceeds the limit")

    def test_oversized_length_header(self):
        self.attack(self.followers()[0], struct.pack(">I", 0xFFFFFFFF) + b"\x0a\x00",
                    "bad frame: frame of 4294967295 bytes exceeds the limit of 4096 bytes")

    def test_raft_message_before_hello(self):
        self.attack(self.lead, raft_heartbeat(self.followers()[0], self.lead, self.term + 5),
                    "expected RaftHello (is this a stage 5 node?)")

    def test_stage4_hello(self):
        self.attack(self.lead, pw.hello(), "expected RaftHello (is this a stage 5 node?)")

    def test_hello_from_a_node_not_in_the_cluster(self):
        self.attack(self.lead, raft_hello(9),
                    "node id 9 or cluster size 3 does not match this node's --cluster")

    def test_hello_claiming_the_nodes_own_id(self):
        self.attack(self.lead, raft_hello(self.lead),
                    "node id %d or cluster size 3 does not match this node's --cluster" % self.lead)

    def test_hello_with_another_cluster_size(self):
        f = self.followers()[0]
        self.attack(self.lead, raft_hello(f, cluster_size=5),
                    "node id %d or cluster size 5 does not match this node's --cluster" % f)

    def test_raft_message_from_someone_else_than_the_hello_said(self):
        # Says it is one follower, then sends as the other: a higher term
        # would depose the leader, were the message believed.
        a, b = self.followers()
        self.attack(self.lead, raft_hello(a) + raft_heartbeat(b, self.lead, self.term + 5),
                    "malformed Raft message")

    def test_wrong_message_type_after_hello(self):
        f = self.followers()[0]
        self.attack(self.lead, raft_hello(f) + pw.ack(3), "unexpected message type")


if __name__ == "__main__":
    kvtest.main()
