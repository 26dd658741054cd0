# test_start_failure.py - a node that cannot take its ports says so and exits
# 1, whatever its role. A follower starts dialling its leader before it
# listens for clients; when the client port was taken, the shutdown that
# followed once aborted on a libuv assertion (the dial closed twice) instead
# of exiting 1 (found by `make demo`, whose random ports collided).
import os
import shutil
import socket
import tempfile
import unittest

import kvtest


class PortTaken(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kvtest-start-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Held, listening, for the whole test: the server's bind must fail.
        self.taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.taken.bind(("127.0.0.1", 0))
        self.taken.listen(1)
        self.addCleanup(self.taken.close)
        self.port = self.taken.getsockname()[1]

    def start(self, args, message):
        p = kvtest.run_binary(args + ["--data-dir", os.path.join(self.dir, "data")],
                              timeout=60 if kvtest.UNDER_VALGRIND else 20)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertIn(message, out)
        self.assertNotIn("Assertion", out)

    def test_follower_whose_client_port_is_taken(self):
        # Its leader's peer port: nothing listens there, so the dial is still
        # under way (or failing) when the listen fails.
        self.start(["--port", str(self.port), "--peer-port", str(kvtest.free_port()),
                    "--replicaof", "127.0.0.1:%d" % kvtest.free_port()],
                   "cannot listen on 127.0.0.1:%d: address already in use" % self.port)

    def test_leader_whose_client_port_is_taken(self):
        self.start(["--port", str(self.port), "--peer-port", str(kvtest.free_port())],
                   "cannot listen on 127.0.0.1:%d: address already in use" % self.port)

    def test_follower_whose_peer_port_is_taken(self):
        self.start(["--port", str(kvtest.free_port()), "--peer-port", str(self.port),
                    "--replicaof", "127.0.0.1:%d" % kvtest.free_port()],
                   "cannot listen for peers on 127.0.0.1:%d: address already in use" % self.port)


if __name__ == "__main__":
    unittest.main()
