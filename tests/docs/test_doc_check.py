# test_doc_check.py - the doc check's own test: on small markdown files it
# passes what holds and fails, naming the line, on a wrong expected output
# (a command's, an nc session's, a kvcli session's, a log's), on a failing
# command and on a server that does not start; unmarked blocks do not run;
# servers it started are gone afterwards. Stage 4's client and peer ports
# (and a stage 5 member's, named by its --cluster entry) are each mapped to one free port throughout a session, and a subsection
# marked as continuing the one above shares its session.
import os
import re
import socket
import subprocess
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "..", "scripts", "doc_check.py")
BIN_DIR = os.environ["KV_BIN_DIR"]
PYTHON = "/usr/bin/python3"

# A section that holds: a server in the background, a transcript, an nc
# session, a kvcli session and a log line. Tests break one piece at a time.
GOOD = textwrap.dedent("""\
    # Title

    ```sh
    false    # not marked: never runs
    ```

    ## Stage 1 by hand

    ```sh doc-check
    make build
    build/bin/stage1-single-node --port 7001 &   # waits for the port
    redis-cli -p 7001 set name alice
    ```

    ```console doc-check
    $ redis-cli -p 7001 get name
    "alice"
    $ redis-cli -p 7001 dbsize
    (integer) 1
    $ redis-cli -p 7001 info | head -3
    # Server
    stage:stage1-single-node
    version:...
    ```

    ```console doc-check
    $ nc 127.0.0.1 7001
    GET name
    $5
    alice
    FOO
    -ERR unknown command 'FOO'
    ```

    ```text doc-check-log
    ... INFO  listening on 127.0.0.1:7001 ...
    ```

    ## Stage 3 by hand

    ```sh doc-check
    build/bin/stage3-client --data-dir /tmp/kv3 &
    build/bin/kvcli -p 7003 set k v
    ```

    ```console doc-check
    $ build/bin/kvcli -p 7003
    127.0.0.1:7003> get k
    "v"
    127.0.0.1:7003> get missing
    (nil)
    ...
    ```
    """)


# Stage 4: a leader on its default ports (7004, peer 17004) and a follower
# given both of its own and the leader's peer port; the follower's ROLE must
# name the leader's peer port as the text does, and it connects only if the
# mapped 17004 is where the leader listens. The second section continues the
# first (the follower is still there); the log blocks check the follower's
# log, then the leader's.
GOOD4 = textwrap.dedent("""\
    # Stage 4

    ## A leader and a follower

    ```sh doc-check
    build/bin/stage4-replication --data-dir /tmp/l &
    build/bin/stage4-replication --port 7014 --peer-port 17014 --data-dir /tmp/f --replicaof 127.0.0.1:17004 &
    until redis-cli -p 7014 role | grep -qx connected; do sleep 0.1; done
    ```

    ## The follower's view
    <!-- doc-check: continues the section above -->

    ```console doc-check
    $ redis-cli -p 7014 role
    1) "follower"
    2) "127.0.0.1"
    3) (integer) 17004
    4) "connected"
    5) (integer) 0
    ```

    ```text doc-check-log
    ... INFO  replication: follower, peer port 127.0.0.1:17014, following 127.0.0.1:17004
    ```

    ```text doc-check-log
    ... INFO  replication: leader, peer port 127.0.0.1:17004
    ... INFO  follower 127.0.0.1:... (127.0.0.1:7014): continuing from index 1 ...
    ```
    """)


def run_checker(text, *extra):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "doc.md")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([PYTHON, CHECKER, "--bin-dir", BIN_DIR, "--log-timeout", "3", "-v", *extra, path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def listening_ports(out):
    """The servers' ports this run used, from its verbose command echo."""
    ports = {int(p) for p in re.findall(r"\$ build/bin/stage\d-\S+ .*?--port (\d+)", out)}
    ports |= {int(p) for p in re.findall(r"\$ build/bin/kvcli -p (\d+)", out)}
    return ports


class DocCheck(unittest.TestCase):

    def assertFails(self, text, *needles):
        rc, out = run_checker(text)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAILED", out)
        for n in needles:
            self.assertIn(n, out)
        return out

    def test_good_document_passes(self):
        rc, out = run_checker(GOOD)
        self.assertEqual(rc, 0, out)
        self.assertIn("6 runnable blocks", out)
        self.assertNotIn("false", out)  # the unmarked block did not run

    def test_servers_are_stopped_at_the_end_of_each_section(self):
        rc, out = run_checker(GOOD)
        self.assertEqual(rc, 0, out)
        ports = listening_ports(out)
        self.assertEqual(len(ports), 2, out)  # stage 1's and stage 3's
        for port in ports:
            with socket.socket() as s:
                self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0, "port %d still open" % port)

    def test_shell_job_notices_are_not_compared(self):
        # "bash: line 4:  3701 Killed ..." after a kill -9 of a background job
        # is the shell's, and may land in any later command's output.
        import importlib.util
        spec = importlib.util.spec_from_file_location("doc_check", CHECKER)
        dc = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dc)
        notice = "bash: line 4:  3701 Killed                  build/bin/stage2-wal --data-dir /tmp/x >> /tmp/j.log 2>&1\n"
        self.assertTrue(dc.matches(['"100"'], notice + '"100"\n'))
        self.assertFalse(dc.matches(['"100"'], 'Killed\n"100"\n'))  # only the shell's exact form is dropped

    def test_wrong_output_fails(self):
        out = self.assertFails(GOOD.replace('"alice"', '"bob"'), "doc.md:16", '"bob"', '"alice"')
        self.assertIn("--- expected ---", out)

    def test_wildcard_does_not_hide_a_wrong_line(self):
        self.assertFails(GOOD.replace("stage:stage1-single-node", "stage:stage9"), "stage:stage9")

    def test_failing_command_fails(self):
        self.assertFails(GOOD.replace("redis-cli -p 7001 set name alice", "ls /no/such/dir"),
                         "doc.md:12: exit status 2: ls /no/such/dir")

    def test_wrong_nc_reply_fails(self):
        self.assertFails(GOOD.replace("-ERR unknown command 'FOO'", "+OK"), "typed 'FOO'")

    def test_wrong_kvcli_session_fails(self):
        self.assertFails(GOOD.replace("(nil)", "(integer) 0"), "kvcli session", "(integer) 0")

    def test_missing_log_line_fails(self):
        self.assertFails(GOOD.replace("INFO  listening on", "INFO  listening quietly on"), "not logged")

    def test_server_that_does_not_start_fails(self):
        self.assertFails(GOOD.replace("--port 7001 &", "--port 7001 --no-such-flag &"),
                         "did not start listening", "no-such-flag")

    def test_make_other_than_build_fails(self):
        self.assertFails(GOOD.replace("make build", "make test"), "only 'make build'")

    def test_stage4_ports_are_mapped_the_same_throughout_a_session(self):
        rc, out = run_checker(GOOD4)
        self.assertEqual(rc, 0, out)
        self.assertIn("4 runnable blocks", out)
        self.assertIn("A leader and a follower + The follower's view", out)  # one session
        for documented in ("7004", "7014", "17004", "17014"):  # none is used as written
            self.assertIsNone(re.search(r"\$ .*\b%s\b" % documented, out), documented)
        # The leader was given no --peer-port: the follower, told the mapped
        # 17004, reached it, so the leader listened there too.
        self.assertRegex(out, r"--replicaof 127\.0\.0\.1:\d+ ")

    def test_stage4_wrong_peer_port_in_output_fails(self):
        self.assertFails(GOOD4.replace("3) (integer) 17004", "3) (integer) 17014"), "doc.md:", "(integer) 17014")

    def test_a_subsection_without_the_marker_is_a_new_session(self):
        self.assertFails(GOOD4.replace("<!-- doc-check: continues the section above -->\n", ""),
                         "The follower's view", "Could not connect")

    def test_log_lines_out_of_a_server_order_fail(self):
        # Each server's log is read in order: the follower line is already matched.
        self.assertFails(GOOD4.replace("continuing from index 1 ...\n", "continuing from index 1 ...\n"
                                       "... INFO  replication: follower, peer port ...\n"), "not logged")

    def test_stage5_member_ports_come_from_its_cluster_entry(self):
        # Three stage 5 nodes share one --cluster string: each listens on the
        # ports of its own entry, not on the stage's default port.
        import importlib.util
        spec = importlib.util.spec_from_file_location("doc_check", CHECKER)
        dc = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dc)
        c = "1=127.0.0.1:7005:17005,2=127.0.0.1:7015:17015,3=127.0.0.1:7025:17025"
        self.assertEqual(dc.cluster_member(["build/bin/stage5-raft", "--id", "2", "--cluster", c]), (7015, 17015))
        self.assertEqual(dc.cluster_member(["build/bin/stage5-raft", "--id=3", "--cluster=" + c]), (7025, 17025))
        self.assertIsNone(dc.cluster_member(["build/bin/stage5-raft", "--data-dir", "d"]))  # one-node: default port
        self.assertIsNone(dc.cluster_member(["build/bin/stage4-replication", "--id", "2", "--cluster", c]))
        self.assertIsNone(dc.cluster_member(["build/bin/stage5-raft", "--id", "4", "--cluster", c]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
