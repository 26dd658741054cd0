#!/usr/bin/python3
"""test_server_start.py - kvtest.Server.start when another process takes
the port between free_port() and the server's bind. The server then fails
to bind and exits, but until it does, a readiness probe reaches the other
process's listener. start() must not take that listener for the server (two
suites once ran against one server that way): it waits for its own process,
sees it lose the race, and starts it again on a new port.

The server here is a stand-in: a Python script that, like ours, spends a
moment starting (recovery) before it binds --port, and exits 1 saying
"address already in use" if it cannot."""
import os
import socket
import sys
import tempfile
import textwrap
import unittest
from unittest import mock

import kvtest
from kvtest import server as kvserver

STAND_IN = textwrap.dedent("""\
    import signal, socket, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stops cleanly, as ours do
    port = int(sys.argv[sys.argv.index("--port") + 1])
    time.sleep(0.3)  # recovering before it listens, as a real server does
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        print("cannot listen on 127.0.0.1:%d: address already in use" % port, flush=True)
        sys.exit(1)
    s.listen()
    while True:
        c, _ = s.accept()
        c.close()
    """)


class PortTakenMeanwhile(unittest.TestCase):
    def setUp(self):
        d = tempfile.mkdtemp(prefix="kvtest-start-")
        self.script = os.path.join(d, "stand-in-server")
        with open(self.script, "w") as f:
            f.write("#!%s\n%s" % (sys.executable, STAND_IN))
        os.chmod(self.script, 0o755)
        self.addCleanup(lambda: (os.unlink(self.script), os.rmdir(d)))
        # The other process: already listening on the port free_port() is
        # about to hand out first.
        self.other = socket.socket()
        self.other.bind(("127.0.0.1", 0))
        self.other.listen()
        self.addCleanup(self.other.close)
        self.taken = self.other.getsockname()[1]

    def test_start_moves_to_a_new_port_and_reaches_its_own_process(self):
        ports = iter([self.taken])
        real = kvserver.free_port
        with mock.patch.object(kvserver, "free_port", lambda: next(ports, None) or real()):
            srv = kvtest.Server(binary=self.script, env_args=False, bind=None)
            self.addCleanup(srv.close)
            self.assertEqual(srv.port, self.taken)
            srv.start(timeout=10)
        self.assertNotEqual(srv.port, self.taken)
        self.assertIn("address already in use", srv.log())
        self.assertTrue(kvtest.listens_in(srv.pid, srv.port))
        self.assertFalse(kvtest.listens_in(srv.pid, self.taken))

    def test_listens_in_tells_the_owner(self):
        self.assertTrue(kvtest.listens_in(os.getpid(), self.taken))
        self.assertFalse(kvtest.listens_in(os.getpid(), kvtest.free_port()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
