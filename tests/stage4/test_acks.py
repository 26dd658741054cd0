# test_acks.py - when a follower's acknowledgements are asked for (issue 10
# item 4, notes 4.15). Followers ack on their 100 ms heartbeat; sooner only
# when the leader's Records says ack_now, which the leader sends while a
# client waits in WAIT: on the records themselves, or, for records already
# sent, as an empty Records. A fake follower (a Python socket on the peer
# port) sees exactly what the leader sends and acks by hand, so WAIT's answer
# depends on the one ack it sends. Real followers: WAIT answers long before
# the heartbeat would matter, and a follower's ack still reaches the leader
# with no WAIT at all (ROLE's acked index). A connection blocked in WAIT
# keeps reading but runs nothing more until WAIT answers.
import socket

import kvtest
import peer_wire as pw

TIMEOUT = 10.0 * pw.SLOW


def wait_ms():
    """A WAIT timeout no test run reaches: the fake follower's ack ends it."""
    return str(int(60000 * pw.SLOW))


class LeaderAsksForAcks(kvtest.ServerTestCase):

    def fake_follower(self, leader):
        s = pw.peer_socket(leader.peer_port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(pw.hello())
        self.assertEqual(pw.read_message(s, TIMEOUT)[0], pw.HELLO)
        s.sendall(pw.sync_request("", 0))  # an empty log continues any history
        kind, body = pw.read_message(s, TIMEOUT)
        self.assertEqual(kind, pw.STREAM_FROM)
        self.assertEqual(pw.fields(body).get(2, [0])[0], 0)
        return s

    def records(self, s):
        """The next Records: (indexes of its frames, ack_now)."""
        kind, body = pw.read_message(s, TIMEOUT)
        self.assertEqual(kind, pw.RECORDS)
        f = pw.fields(body)
        return pw.frame_indexes(f.get(2, [b""])[0]), bool(f.get(3, [0])[0])

    def test_ack_is_asked_for_only_while_a_client_waits(self):
        leader = pw.node(self)
        s = self.fake_follower(leader)

        with leader.connect(timeout=TIMEOUT) as c:
            # No one waits: the record comes without a request for an ack.
            self.assertEqual(c.command("SET", "a", "1"), "OK")
            self.assertEqual(self.records(s), ([1], False))

            # A WAIT for that record (WAIT counts this connection's last
            # write): the leader asks for the ack with an empty Records;
            # WAIT answers 1 once the ack arrives, not before.
            c.send_command("WAIT", "1", wait_ms())
            self.assertEqual(self.records(s), ([], True))
            self.assertEqual(pw.command(leader, "PING"), "PONG")  # the leader serves others meanwhile
            s.sendall(pw.ack(1))
            self.assertEqual(c.read_reply(timeout=TIMEOUT), 1)

            # A write and its WAIT together: the request comes with the
            # record or right after it, and only our ack ends the WAIT.
            c.send(kvtest.encode_command("SET", "b", "2") + kvtest.encode_command("WAIT", "1", wait_ms()))
            self.assertEqual(c.read_reply(timeout=TIMEOUT), "OK")
            sent, asked = [], False
            while not asked:
                indexes, asked = self.records(s)
                sent += indexes
            self.assertEqual(sent, [2])
            s.sendall(pw.ack(2))
            self.assertEqual(c.read_reply(timeout=TIMEOUT), 1)

    def test_wait_with_real_followers_and_acks_without_wait(self):
        leader = pw.node(self)
        followers = [pw.node(self, replicaof=leader) for _ in range(2)]
        kvtest.wait_for(lambda: pw.info(leader)["connected_followers"] == "2", timeout=TIMEOUT,
                        message="two followers connected")
        # WAIT after each write: both followers' acks arrive.
        with leader.connect(timeout=TIMEOUT) as c:
            for i in range(20):
                self.assertEqual(c.command("SET", "k%d" % i, "v"), "OK")
                self.assertEqual(c.command("WAIT", "2", wait_ms()), 2)
        # Writes with no WAIT: the heartbeat acks them all the same.
        pw.write_keys(leader, "quiet", 50)
        last = int(pw.info(leader)["log_index"])

        def all_acked():
            role = pw.command(leader, "ROLE")
            return len(role[2]) == 2 and all(int(f[2]) == last for f in role[2])
        kvtest.wait_for(all_acked, timeout=TIMEOUT, message="both followers acknowledging index %d" % last)
        for f in followers:
            pw.wait_same_data(leader, f)


class BlockedConnection(kvtest.ServerTestCase):
    """A connection blocked in WAIT goes on reading (it no longer stops and
    restarts its read for every WAIT), but runs nothing until WAIT answers,
    and a client that closes its side meanwhile still gets what it is owed."""

    def test_pipelined_requests_wait_their_turn(self):
        leader = pw.node(self)  # no followers: WAIT 1 times out with 0
        with leader.connect(timeout=TIMEOUT) as c:
            c.send(kvtest.encode_command("SET", "k", "v1") + kvtest.encode_command("WAIT", "1", "300") +
                   kvtest.encode_command("SET", "k", "v2") + kvtest.encode_command("GET", "k"))
            self.assertEqual(c.read_replies(4, timeout=TIMEOUT), ["OK", 0, "OK", b"v2"])

    def test_half_closed_client_still_gets_the_wait_reply(self):
        leader = pw.node(self)
        s = socket.create_connection(("127.0.0.1", leader.port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(kvtest.encode_command("SET", "k", "v") + kvtest.encode_command("WAIT", "1", "300") +
                  kvtest.encode_command("GET", "k"))
        s.shutdown(socket.SHUT_WR)  # the end of its input arrives while WAIT blocks
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, b"+OK\r\n:0\r\n$1\r\nv\r\n")
        self.assertEqual(pw.command(leader, "PING"), "PONG")


if __name__ == "__main__":
    kvtest.main()
