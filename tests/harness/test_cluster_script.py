# test_cluster_script.py - scripts/cluster-stage4.sh (make cluster-stage4)
# and scripts/cluster-lib.sh, run against a stand-in server: a small Python
# program with the stage 4 flags that listens on its client and peer ports
# and records the arguments it was given. What is checked is the runner's
# behaviour (ports, data dirs, flags, refusals, Ctrl-C), not the server's.
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import accepts_connections, free_port, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "cluster-stage4.sh")
TIMEOUT = 20.0

FAKE_SERVER = textwrap.dedent('''\
    #!/usr/bin/python3
    # Stand-in for stage4-replication: the flags cluster-stage4.sh passes.
    import argparse, os, signal, socket, sys, time
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer-port", type=int, required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--replicaof")
    ap.add_argument("--fsync")
    a = ap.parse_args()
    if os.environ.get("FAKE_FAIL_PORT") == str(a.port):
        print("fake: refusing to start on purpose", flush=True)
        sys.exit(3)
    os.makedirs(a.data_dir, exist_ok=True)
    with open(os.path.join(a.data_dir, "argv"), "w") as f:
        f.write(" ".join(sys.argv[1:]))
    socks = []
    for p in (a.port, a.peer_port):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        s.listen()
        socks.append(s)
    with open(os.path.join(os.environ["FAKE_PIDS"], str(os.getpid())), "w"):
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)
''')


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; its state letter says so.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class ClusterScriptTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-cluster-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        self.pids = os.path.join(self.tmp, "pids")
        os.makedirs(self.bin)
        os.makedirs(self.pids)
        server = os.path.join(self.bin, "stage4-replication")
        with open(server, "w") as f:
            f.write(FAKE_SERVER)
        os.chmod(server, 0o755)
        self.pick_ports()
        self.addCleanup(self.kill_leftovers)

    def pick_ports(self):
        self.ports = {}
        used = set()
        for n in (1, 2, 3):
            for kind in ("PORT", "PEER_PORT"):
                p = free_port()
                while p in used:
                    p = free_port()
                used.add(p)
                self.ports["NODE%d_%s" % (n, kind)] = p

    def kill_leftovers(self):
        for name in os.listdir(self.pids):
            pid = int(name)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def node_pids(self):
        return [int(n) for n in os.listdir(self.pids)]

    def start(self, **env):
        e = dict(os.environ)
        e.update({k: str(v) for k, v in self.ports.items()})
        e.update({k: str(v) for k, v in env.items()})
        e["FAKE_PIDS"] = self.pids
        self.out = os.path.join(self.tmp, "out.txt")
        # A session of its own, SIGINT at its default: what a terminal gives
        # a foreground `make cluster-stage4`, so killpg(SIGINT) is Ctrl-C.
        with open(self.out, "w") as out:
            proc = subprocess.Popen(["bash", SCRIPT, self.bin], env=e, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self.reap, proc)
        return proc

    def reap(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def output(self):
        with open(self.out) as f:
            return f.read()

    def start_ready(self, **env):
        """start + wait_ready. A port free when picked can be taken by another
        test's connection before the script checks it (the script then
        refuses, as it should): pick new ports and try again, a few times."""
        for attempt in range(5):
            proc = self.start(**env)
            wait_for(lambda: "Stop them" in self.output() or proc.poll() is not None, timeout=TIMEOUT,
                     message="the cluster script to print its instructions")
            if proc.poll() is None or "is taken" not in self.output() or attempt == 4:
                break
            self.pick_ports()
        self.assertIsNone(proc.poll(), self.output())
        return proc

    def wait_ready(self, proc):
        wait_for(lambda: "Stop them" in self.output() or proc.poll() is not None, timeout=TIMEOUT,
                 message="the cluster script to print its instructions")
        self.assertIsNone(proc.poll(), self.output())

    def test_three_nodes_start_and_ctrl_c_stops_them_all(self):
        cluster_dir = os.path.join(self.tmp, "cluster")
        proc = self.start_ready(CLUSTER_DIR=cluster_dir)
        pids = self.node_pids()
        self.assertEqual(len(pids), 3)
        for n in (1, 2, 3):
            self.assertTrue(accepts_connections(self.ports["NODE%d_PORT" % n]))
        argv = {}
        for n in (1, 2, 3):
            with open(os.path.join(cluster_dir, "node%d" % n, "data", "argv")) as f:
                argv[n] = f.read()
        leader_peer = self.ports["NODE1_PEER_PORT"]
        self.assertNotIn("--replicaof", argv[1])
        for n in (2, 3):
            self.assertIn("--port %d --peer-port %d" % (self.ports["NODE%d_PORT" % n], self.ports["NODE%d_PEER_PORT" % n]),
                          argv[n])
            self.assertIn("--replicaof 127.0.0.1:%d" % leader_peer, argv[n])
        out = self.output()
        self.assertIn("redis-cli -p %d" % self.ports["NODE1_PORT"], out)
        self.assertIn("kvcli-stage4 -p %d" % self.ports["NODE2_PORT"], out)
        self.assertIn("Ctrl-C", out)

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        self.assertEqual(proc.wait(TIMEOUT), 0, self.output())
        for pid in pids:
            self.assertFalse(alive(pid), "node pid %d outlived the script" % pid)
        self.assertEqual(self.output().count("exited with code 0"), 3, self.output())
        self.assertTrue(os.path.isdir(os.path.join(cluster_dir, "node2", "data")))  # a given dir is kept

    def test_sigterm_stops_them_too_and_a_temp_dir_is_removed(self):
        proc = self.start_ready(CLUSTER_FOLLOWERS=1)
        self.assertEqual(len(self.node_pids()), 2)
        out = self.output()
        cluster_dir = out.split("data and logs in ", 1)[1].split("):", 1)[0]
        self.assertTrue(os.path.isdir(cluster_dir))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(TIMEOUT), 0, self.output())
        for pid in self.node_pids():
            self.assertFalse(alive(pid))
        self.assertFalse(os.path.exists(cluster_dir))

    def test_a_taken_port_is_refused_before_anything_starts(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.ports["NODE3_PEER_PORT"]))
            s.listen()
            proc = self.start()
            rc = proc.wait(TIMEOUT)
        self.assertEqual(rc, 1)
        self.assertIn("port %d is taken" % self.ports["NODE3_PEER_PORT"], self.output())
        self.assertEqual(self.node_pids(), [])

    def test_a_node_that_fails_to_start_stops_the_others(self):
        proc = self.start(FAKE_FAIL_PORT=self.ports["NODE2_PORT"])
        rc = proc.wait(TIMEOUT)
        out = self.output()
        self.assertEqual(rc, 1, out)
        self.assertIn("node2 did not start serving", out)
        self.assertIn("refusing to start on purpose", out)  # the end of its log is shown
        for pid in self.node_pids():
            self.assertFalse(alive(pid), "pid %d left running" % pid)

    def test_a_node_exiting_later_is_reported_and_the_rest_keep_running(self):
        proc = self.start_ready(CLUSTER_FOLLOWERS=2)
        pids = sorted(self.node_pids())
        victim = pids[1]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "exited by itself" in self.output(), timeout=TIMEOUT, message="the death reported")
        self.assertIsNone(proc.poll())
        os.killpg(proc.pid, signal.SIGINT)
        self.assertEqual(proc.wait(TIMEOUT), 0, self.output())
        for pid in pids:
            self.assertFalse(alive(pid))

    def test_bad_settings_are_refused(self):
        for env, message in (({"CLUSTER_FOLLOWERS": 5}, "CLUSTER_FOLLOWERS must be"),
                             ({"NODE2_PORT": "70x4"}, "is not a number"),
                             ({"NODE2_PORT": self.ports["NODE1_PORT"]}, "is given twice")):
            proc = self.start(**env)
            self.assertEqual(proc.wait(TIMEOUT), 1)
            self.assertIn(message, self.output())
        self.assertEqual(self.node_pids(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
