# case.py - the unittest glue: ServerTestCase (a shared server per test
# class, private servers and connections that clean up after themselves,
# assertions on replies) and main() for the scripts.
import unittest

from .resp import RespError
from .server import Server


class ServerTestCase(unittest.TestCase):
    """Base class: one server per test class (server_args), started lazily
    via self.server, plus helpers that register their own cleanup.

    Tests that need a server with other flags, or that kill it, call
    self.start_server(args) for a private one."""

    server_args = []
    shared_server = None  # per class

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared_server = None

    @classmethod
    def tearDownClass(cls):
        srv, cls.shared_server = cls.shared_server, None
        if srv is not None:
            srv.close()
        super().tearDownClass()

    @property
    def server(self):
        cls = type(self)
        if cls.shared_server is None or not cls.shared_server.running():
            if cls.shared_server is not None:
                cls.shared_server.close()
            cls.shared_server = Server(cls.server_args).start()
        return cls.shared_server

    def start_server(self, args=(), **kw):
        srv = Server(args, **kw)
        self.addCleanup(srv.close)
        return srv.start()

    def connect(self, server=None, **kw):
        c = (server or self.server).connect(**kw)
        self.addCleanup(c.close)
        return c

    def assertError(self, reply, prefix):
        self.assertIsInstance(reply, RespError, "expected an error reply starting %r, got %r" % (prefix, reply))
        self.assertTrue(reply.text.startswith(prefix), "expected an error starting %r, got %r" % (prefix, reply.text))

    def assertStillServes(self, server=None):
        """A fresh client can still use the server (after something nasty
        happened on another connection)."""
        with (server or self.server).connect() as c:
            self.assertEqual(c.command("PING"), "PONG")


def main():
    unittest.main(verbosity=2)
