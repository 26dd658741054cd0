# test_shutdown_slow_reader.py - a graceful shutdown waits for a client
# that is still taking its replies, however slowly, and cuts none of them;
# only a client that takes nothing for a whole grace period (500 ms) is
# dropped (test_shutdown.py). Stage 1 only: every later stage carries the
# same code (make check-copies), and the test takes a few seconds.
import signal
import socket
import time

import kvtest
from test_shutdown import backlog_of_gets


class SlowReader(kvtest.ServerTestCase):
    def test_a_slow_reader_is_not_cut(self):
        # A client that reads its replies, but slowly (a busy machine, a slow
        # link): the shutdown waits while it makes progress and cuts no reply,
        # though taking them lasts several grace periods (500 ms each). Its
        # receive buffer is small, so most of what it is owed stays in the
        # server's buffers rather than the kernel's.
        srv = self.start_server()
        reader = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(reader.close)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect: the window
        reader.connect(("127.0.0.1", srv.port))
        reply, ran_before = backlog_of_gets(self, srv, reader.sendall)  # ~19 MiB: the server pauses us
        srv.send_signal(signal.SIGTERM)
        got = bytearray()
        reader.settimeout(10)
        t0 = time.monotonic()
        while True:
            # The slow client itself, not synchronisation: at most its 64 KiB
            # buffer every 50 ms, about a megabyte a second against the
            # megabytes it is owed.
            time.sleep(0.05)
            try:
                data = reader.recv(64 * 1024)
            except ConnectionResetError:
                break
            if not data:
                break
            got += data
        took = time.monotonic() - t0
        self.assertEqual(srv.wait(), 0, kvtest.tail(srv.log()))
        whole, rest = divmod(len(got), len(reply))
        self.assertEqual(rest, 0, "a reply was cut after %.2f s: %d whole replies and %d bytes of the next"
                         % (took, whole, rest))
        self.assertGreaterEqual(whole, ran_before, "replies computed before the signal were lost")
        self.assertGreater(took, 1.0, "the reader was not slow enough to span grace periods (%.2f s)" % took)
        self.assertNotIn("dropped", srv.log())


if __name__ == "__main__":
    kvtest.main()
