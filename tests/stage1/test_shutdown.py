# test_shutdown.py - Ctrl-C (SIGINT) and SIGTERM stop the server cleanly and
# promptly even with clients connected: idle ones, one half-way through a
# request, one that never reads its replies. Exit code 0, a shutdown line in
# the log, every client sees its connection closed, no sanitizer reports.
import signal
import time

import kvtest
from kvtest import encode_command

# "~1-2 s": a person pressing Ctrl-C should not wait longer than this.
PROMPT = 2.0


def backlog_of_gets(tc, srv, send):
    """Sets a 64 KiB value, pipelines 300 GETs of it with send (about
    19 MiB of replies nobody reads yet) and waits until the server has run
    16 of them: it pauses a client only past 1 MiB of unsent replies.
    Returns one reply's bytes and how many GETs had run."""
    value = b"r" * (64 * 1024)
    control = tc.connect(srv)
    tc.assertEqual(control.command("SET", "sd:v", value), "OK")
    base = int(kvtest.parse_info(control.command("INFO"))["total_commands_processed"])
    send(encode_command("GET", "sd:v") * 300)
    polls = [0]

    def gets_run():
        # Each poll is itself a command: subtract the INFOs we sent.
        polls[0] += 1
        now = int(kvtest.parse_info(control.command("INFO"))["total_commands_processed"])
        ran = now - base - polls[0]
        return ran if ran >= 16 else 0

    ran = kvtest.wait_for(gets_run, message="the server to run 16 of the unread GETs")
    return b"$%d\r\n%s\r\n" % (len(value), value), ran


class Shutdown(kvtest.ServerTestCase):

    def shutdown_with_clients(self, sig):
        srv = self.start_server()
        idle = [self.connect(srv) for _ in range(3)]
        for c in idle:
            self.assertEqual(c.command("PING"), "PONG")
        mid = self.connect(srv)
        self.assertEqual(mid.command("SET", "sd:k", "before"), "OK")
        # Half a request: header and part of the value.
        mid.send(encode_command("SET", "sd:k", "after-the-signal")[:-8])

        # A client with megabytes of replies it never reads.
        control = self.connect(srv)
        self.assertEqual(control.command("SET", "sd:big", b"b" * (1 << 20)), "OK")
        base = int(kvtest.parse_info(control.command("INFO"))["total_commands_processed"])
        hog = self.connect(srv)
        hog.send(encode_command("GET", "sd:big") * 20)
        polls = [0]

        def gets_run():
            # Each poll is itself a command: subtract the INFOs we sent.
            polls[0] += 1
            now = int(kvtest.parse_info(control.command("INFO"))["total_commands_processed"])
            return now - base - polls[0] >= 1

        # The server may pause a client whose replies pile up, so wait for the
        # first GET only; 20 MiB of replies cannot all fit in socket buffers.
        kvtest.wait_for(gets_run, message="the server to run the unread GETs")

        t0 = time.monotonic()
        srv.send_signal(sig)
        rc = srv.wait(timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit code after %s\n%s" % (sig.name, kvtest.tail(srv.log())))
        self.assertLess(elapsed, PROMPT, "took %.2f s to exit after %s" % (elapsed, sig.name))
        self.assertIn("shutdown", srv.log().lower())

        for c in idle:
            c.expect_closed()
        # The half-sent SET was never answered as if it had been applied.
        rest = mid.read_until_closed()
        self.assertFalse(rest.startswith(b"+"), "reply to a half-sent request: %r" % rest[:80])
        hog.read_until_closed()  # whatever replies it got, the connection ends
        with self.assertRaises(OSError):
            srv.connect(timeout=2)

    def test_sigterm_with_clients(self):
        self.shutdown_with_clients(signal.SIGTERM)

    def test_sigint_with_clients(self):
        self.shutdown_with_clients(signal.SIGINT)

    def test_replies_computed_before_the_signal_are_delivered(self):
        # A client that pipelines more GETs than the server will buffer
        # replies for, and reads nothing until the signal. Whatever the server
        # ran before the signal, the client must receive whole: a server that
        # just drops its clients loses the replies still in its buffers
        # (more than 1 MiB once it pauses such a client), or cuts one in half.
        srv = self.start_server()
        reader = self.connect(srv)
        reply, ran_before = backlog_of_gets(self, srv, reader.send)
        srv.send_signal(signal.SIGTERM)
        got = reader.read_until_closed()
        self.assertEqual(srv.wait(), 0, kvtest.tail(srv.log()))
        whole, rest = divmod(len(got), len(reply))
        self.assertEqual(rest, 0, "a reply was cut: %d whole replies and %d bytes of the next" % (whole, rest))
        self.assertEqual(got, reply * whole, "the replies are not the value sent")
        self.assertGreaterEqual(whole, ran_before, "replies computed before the signal were lost")
        self.assertLess(whole, 300, "requests still queued when the signal came were run")

    def test_sigterm_idle_server(self):
        srv = self.start_server()
        t0 = time.monotonic()
        self.assertEqual(srv.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, PROMPT)
        self.assertIn("shutdown", srv.log().lower())


if __name__ == "__main__":
    kvtest.main()
