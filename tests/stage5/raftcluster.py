# raftcluster.py - a Raft cluster of real stage5-raft processes on loopback,
# for the stage 5 suites: free ports (client and peer per node), start,
# stop, kill -9 and restart each node, and the questions tests ask of the
# whole (who leads, do the digests agree).
import kvtest

# Timing: quick on a normal build; valgrind runs servers 20-50x slower, so
# every interval (and every deadline built on one) scales with it.
SCALE = 4 if kvtest.UNDER_VALGRIND else 1


class RaftCluster:
    def _pick_ports(self, n, ports=None):
        """Sets client_port and peer_port ({id: port}) from ports (client,
        peer, client, peer, ...), completed with free ones; returns them all."""
        ports = list(ports or [])
        while len(ports) < 2 * n:
            p = kvtest.free_port()
            if p not in ports:
                ports.append(p)
        self.client_port = {i: ports[2 * (i - 1)] for i in range(1, n + 1)}
        self.peer_port = {i: ports[2 * (i - 1) + 1] for i in range(1, n + 1)}
        return ports

    # mesh=True: every peer link goes through a kvtest.ProxyMesh (one proxy
    # per dialler and listener); self.partition (a kvtest.Partition over it)
    # cuts, blocks and delays links. Each node gets its own --cluster string.
    # node_extra: {id: [flags]} for one node only (e.g. another secret).
    # ports: fixed [client, peer, client, peer, ...] instead of free ones.
    def __init__(self, n=3, election_ms=500, heartbeat_ms=50, write_timeout_ms=5000, extra=(), mesh=False,
                 ports=None, node_extra=None):
        self.election_ms = election_ms * SCALE
        self.heartbeat_ms = heartbeat_ms * SCALE
        self.write_timeout_ms = write_timeout_ms * SCALE
        ports = self._pick_ports(n, ports)
        self.spec = ",".join("%d=127.0.0.1:%d:%d" % (i, self.client_port[i], self.peer_port[i])
                             for i in range(1, n + 1))
        self.mesh = self.partition = None
        if mesh:
            self.mesh = kvtest.ProxyMesh({i: ("127.0.0.1", self.peer_port[i]) for i in self.peer_port},
                                         avoid=ports)
            self.partition = kvtest.Partition(self.mesh)
        self.nodes = {}
        for i in range(1, n + 1):
            spec = self.mesh.cluster_arg(i, self.client_port) if mesh else self.spec
            args = ["--id", str(i), "--cluster", spec, "--data-dir", "{tmp}/data",
                    "--election-timeout-ms", str(self.election_ms), "--heartbeat-ms", str(self.heartbeat_ms),
                    "--write-timeout-ms", str(self.write_timeout_ms)] + list(extra) + \
                list((node_extra or {}).get(i, ()))
            self.nodes[i] = kvtest.Server(args, port=self.client_port[i])

    # -- lifecycle --

    def start(self):
        for s in self.nodes.values():
            s.start()
        return self

    def close(self):
        errors = []
        for s in self.nodes.values():
            try:
                s.close()
            except AssertionError as e:
                errors.append(str(e))
        if self.mesh is not None:
            self.mesh.close()
        if errors:
            raise AssertionError("\n".join(errors))

    def running(self):
        return [i for i, s in self.nodes.items() if s.running()]

    # -- questions --

    def command(self, i, *args, timeout=None):
        with self.nodes[i].connect() as c:
            return c.command(*args, timeout=timeout)

    def role(self, i):
        """ROLE: [role, term, leader id, commit index, applied index]."""
        r = self.command(i, "ROLE")
        return {"role": r[0].decode(), "term": r[1], "leader": r[2], "commit": r[3], "applied": r[4]}

    def stable_leader(self):
        """The leader's id if exactly one running node leads and every
        running node names it in the same term; else None."""
        roles = {i: self.role(i) for i in self.running()}
        leaders = [i for i, r in roles.items() if r["role"] == "leader"]
        if len(leaders) != 1:
            return None
        lead = leaders[0]
        if all(r["leader"] == lead and r["term"] == roles[lead]["term"] for r in roles.values()):
            return lead
        return None

    def wait_leader(self, timeout):
        return kvtest.wait_for(self.stable_leader, timeout=timeout, interval=0.02,
                               message="exactly one leader that every running node follows")

    def digests(self):
        return {i: self.command(i, "DIGEST") for i in self.running()}

    def wait_same_digest(self, expect=None, timeout=10.0):
        def same():
            d = self.digests()
            values = set(d.values())
            if len(values) == 1 and (expect is None or expect in values):
                return values.pop()
            return None
        return kvtest.wait_for(same, timeout=timeout * SCALE, message="every running node to hold the same data")

    def logs(self):
        return "\n".join("--- node %d ---\n%s" % (i, kvtest.tail(s.log())) for i, s in self.nodes.items())
