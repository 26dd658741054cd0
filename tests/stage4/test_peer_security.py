# test_peer_security.py - who may join and who may write: the cluster secret
# on the peer port (followers prove they hold it, and so does the leader),
# the client password (--requirepass-file: NOAUTH, WRONGPASS, AUTH, redis-cli
# -a), secret files that are refused at start, and protected mode (no
# listening beyond loopback with neither a secret nor a password).
import os
import shutil
import subprocess
import tempfile
import unittest

import kvtest
import peer_wire as pw

SECRET = b"the-cluster-secret-of-this-test-0001"
OTHER = b"another-secret-that-is-long-enough-02"


class Files(kvtest.ServerTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kvtest-secrets-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def secret(self, content=SECRET, mode=0o600, name=None):
        return pw.write_secret(self.dir, name or "f%d" % len(os.listdir(self.dir)), content, mode)


class ClusterSecret(Files):

    def assert_never_fed(self, leader, follower):
        """The follower holds none of the leader's records, though it tried."""
        self.assertGreater(pw.keys_in(leader), 0)
        self.assertEqual(pw.digest(follower).split()[1], "keys=0")
        self.assertEqual(pw.info(follower)["log_index"], "0")
        self.assertNotIn("replication: streaming from leader", follower.log())
        self.assertEqual(pw.info(leader)["connected_followers"], "0")

    def test_same_secret_streams(self):
        leader = pw.node(self, ["--cluster-secret-file", self.secret()])
        follower = pw.node(self, ["--cluster-secret-file", self.secret()], replicaof=leader)
        pw.write_keys(leader, "k", 50)
        pw.wait_same_data(leader, follower)
        self.assertEqual(pw.command(follower, "GET", "k:49"), b"v49")
        self.assertEqual(pw.info(leader)["refused_peers"], "0")

    def test_wrong_secret_is_refused(self):
        leader = pw.node(self, ["--cluster-secret-file", self.secret()])
        pw.write_keys(leader, "k", 50)
        follower = pw.node(self, ["--cluster-secret-file", self.secret(OTHER)], replicaof=leader)
        # It keeps trying (once a second) and is refused every time.
        kvtest.wait_for(lambda: int(pw.info(leader)["refused_peers"]) >= 2, timeout=10 * pw.SLOW,
                        message="two refusals")
        self.assertRegex(leader.log(), r"refusing follower 127\.0\.0\.1:\d+ \(127\.0\.0\.1:%d\): it does not hold "
                                       r"the cluster secret" % follower.port)
        self.assertIn("refused us: authentication failed: wrong cluster secret", follower.log())
        self.assert_never_fed(leader, follower)

    def test_follower_with_secret_refuses_leader_without(self):
        leader = pw.node(self)
        pw.write_keys(leader, "k", 10)
        follower = pw.node(self, ["--cluster-secret-file", self.secret()], replicaof=leader)
        pw.wait_log(leader, "this leader has no cluster secret, and the follower requires one; closing the link",
                    count=2, timeout=10)
        self.assertGreaterEqual(int(pw.info(leader)["refused_peers"]), 2)
        self.assert_never_fed(leader, follower)

    def test_follower_without_secret_is_refused(self):
        leader = pw.node(self, ["--cluster-secret-file", self.secret()])
        pw.write_keys(leader, "k", 10)
        follower = pw.node(self, replicaof=leader)
        pw.wait_log(follower, "replication: leader 127.0.0.1:%d: the leader requires a cluster secret "
                    "(--cluster-secret-file)" % leader.peer_port, count=2, timeout=10)
        # The leader hears why it gave up (a refusal by the follower, not by the leader).
        pw.wait_log(leader, "(127.0.0.1:%d) reports: the leader requires a cluster secret" % follower.port, count=2)
        self.assertEqual(pw.info(leader)["refused_peers"], "0")
        self.assert_never_fed(leader, follower)

    def refused_at_start(self, path, message):
        data = os.path.join(self.dir, "data")
        p = kvtest.run_binary(["--port", str(kvtest.free_port()), "--peer-port", str(kvtest.free_port()),
                               "--data-dir", data, "--cluster-secret-file", path], timeout=20 * pw.SLOW)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(message, p.stdout + p.stderr)

    def test_open_secret_file_is_refused(self):
        path = self.secret(mode=0o644)
        self.refused_at_start(path, "permissions 0644 for cluster secret file '%s' are too open" % path)

    def test_empty_secret_file_is_refused(self):
        path = self.secret(b"")
        self.refused_at_start(path, "cluster secret file '%s' is empty" % path)

    def test_short_secret_file_is_refused(self):
        path = self.secret(b"short-secret\n")
        self.refused_at_start(path, "cluster secret file '%s' is too short: a secret of 16" % path)

    def test_missing_secret_file_is_refused(self):
        path = os.path.join(self.dir, "nowhere")
        self.refused_at_start(path, "cluster secret file '%s': No such file or directory" % path)


class ClientPassword(Files):
    PASSWORD = b"client-password-7"

    def start(self):
        return pw.node(self, ["--requirepass-file", self.secret(self.PASSWORD + b"\n")])

    def test_noauth_wrongpass_auth(self):
        srv = self.start()
        c = self.connect(srv)
        self.assertError(c.command("GET", "k"), "NOAUTH Authentication required.")
        self.assertError(c.command("SET", "k", "v"), "NOAUTH Authentication required.")
        self.assertError(c.command("PING"), "NOAUTH")
        self.assertError(c.command("AUTH", "not-the-password"),
                         "WRONGPASS invalid username-password pair or user is disabled.")
        self.assertError(c.command("GET", "k"), "NOAUTH")
        self.assertEqual(c.command("AUTH", self.PASSWORD), "OK")
        self.assertEqual(c.command("SET", "k", "v"), "OK")
        self.assertEqual(c.command("GET", "k"), b"v")
        # Another connection starts unauthenticated.
        other = self.connect(srv)
        self.assertError(other.command("GET", "k"), "NOAUTH")

    def test_quit_before_auth(self):
        srv = self.start()
        c = self.connect(srv)
        self.assertEqual(c.command("QUIT"), "OK")
        c.expect_closed(timeout=5 * pw.SLOW)

    def test_redis_cli_with_password(self):
        cli = shutil.which("redis-cli")
        if not cli:
            raise unittest.SkipTest("redis-cli is not installed (scripts/deps.sh installs it)")
        srv = self.start()

        def run(*args):
            p = subprocess.run([cli, "-p", str(srv.port)] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=20 * pw.SLOW)
            return p.stdout.decode().strip()

        self.assertEqual(run("-a", self.PASSWORD.decode(), "--no-auth-warning", "SET", "cli", "yes"), "OK")
        self.assertEqual(run("-a", self.PASSWORD.decode(), "--no-auth-warning", "GET", "cli"), "yes")
        self.assertIn("NOAUTH", run("GET", "cli"))
        # A wrong password: redis-cli reports the failed AUTH, then the command is refused.
        out = run("-a", "nope", "--no-auth-warning", "GET", "cli")
        self.assertIn("WRONGPASS", out)
        self.assertIn("NOAUTH", out)
        self.assertNotIn("yes", out)

    def test_open_password_file_is_refused(self):
        path = self.secret(self.PASSWORD, mode=0o640)
        p = kvtest.run_binary(["--port", str(kvtest.free_port()), "--peer-port", "0",
                               "--data-dir", os.path.join(self.dir, "data"), "--requirepass-file", path],
                              timeout=20 * pw.SLOW)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("permissions 0640 for password file '%s' are too open" % path, p.stdout + p.stderr)


class ProtectedMode(Files):
    MESSAGE = ("refusing to listen on 0.0.0.0 with neither --cluster-secret-file nor --requirepass-file: anyone who "
               "reaches the port could join the cluster or write; set them, or bind 127.0.0.1")

    def test_open_bind_without_secrets_refuses_to_start(self):
        port = kvtest.free_port()
        p = kvtest.run_binary(["--bind", "0.0.0.0", "--port", str(port), "--peer-port", str(kvtest.free_port()),
                               "--data-dir", os.path.join(self.dir, "data")], timeout=20 * pw.SLOW)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(self.MESSAGE, p.stdout + p.stderr)
        self.assertTrue(kvtest.port_is_free(port))

    def test_open_bind_with_secrets_starts(self):
        peer_port = kvtest.free_port()
        srv = kvtest.Server(["--peer-port", str(peer_port), "--data-dir", "{tmp}/data",
                             "--cluster-secret-file", self.secret(), "--requirepass-file", self.secret(b"pw-0123")],
                            env_args=False, bind="0.0.0.0")
        self.addCleanup(srv.close)
        srv.start(timeout=kvtest.START_TIMEOUT * pw.SLOW)
        c = self.connect(srv)
        self.assertError(c.command("GET", "k"), "NOAUTH")
        self.assertEqual(c.command("AUTH", "pw-0123"), "OK")
        self.assertEqual(c.command("SET", "k", "v"), "OK")
        self.assertTrue(kvtest.accepts_connections(peer_port))
        self.assertNotIn("refusing to listen", srv.log())


if __name__ == "__main__":
    kvtest.main()
