# meshcluster.py - a stage 5 Raft cluster whose peer links go through a
# fault proxy mesh (kvtest.ProxyMesh): each node dials each peer through
# its own proxy, so a test can cut, block and delay any link; plus the
# questions a fault run asks of it (who leads now, has everything converged).
import kvtest
from raftcluster import SCALE, RaftCluster


class MeshCluster(RaftCluster):
    """RaftCluster whose peer links go through a ProxyMesh: each node dials
    its peers through the proxy (this node, that peer), and `partition` (a
    kvtest.Partition) cuts, blocks and delays them."""

    def __init__(self, n=3, election_ms=500, heartbeat_ms=50, write_timeout_ms=1000, extra=(), binary=None):
        # Not RaftCluster.__init__: the nodes need per-node --cluster strings.
        self.election_ms = election_ms * SCALE
        self.heartbeat_ms = heartbeat_ms * SCALE
        self.write_timeout_ms = write_timeout_ms * SCALE
        ports = self._pick_ports(n)
        # The proxies listen on ports the kernel picks: not the (still
        # unbound) ones chosen for the nodes.
        self.mesh = kvtest.ProxyMesh({i: ("127.0.0.1", self.peer_port[i]) for i in range(1, n + 1)},
                                     avoid=ports)
        self.partition = kvtest.Partition(self.mesh)
        self.nodes = {}
        for i in range(1, n + 1):
            args = ["--id", str(i), "--cluster", self.mesh.cluster_arg(i, self.client_port),
                    "--data-dir", "{tmp}/data",
                    "--election-timeout-ms", str(self.election_ms), "--heartbeat-ms", str(self.heartbeat_ms),
                    "--write-timeout-ms", str(self.write_timeout_ms)] + list(extra)
            self.nodes[i] = kvtest.Server(args, port=self.client_port[i], binary=binary)

    def close(self):
        try:
            super().close()
        finally:
            self.mesh.close()

    def heal_all(self):
        """Every link up and undelayed, every node running."""
        self.partition.heal()
        self.partition.delay(0)
        for s in self.nodes.values():
            if not s.running():
                s.start()

    def current_leader(self):
        """The node that says it leads in the highest term, or None."""
        best = None
        for i in self.running():
            try:
                r = self.role(i)
            except (OSError, kvtest.RespProtocolError):
                continue
            if r["role"] == "leader" and (best is None or r["term"] > best[1]):
                best = (i, r["term"])
        return best[0] if best else None

    def converged(self):
        """Every node has applied everything the leader has in its log, and
        the digests agree. Returns the digest, or None."""
        lead = self.stable_leader()
        if lead is None:
            return None
        last = int(self.nodes[lead].info()["raft_last_index"])
        for i in self.nodes:
            r = self.role(i)
            if r["commit"] != last or r["applied"] != last:
                return None
        d = set(self.digests().values())
        return d.pop() if len(d) == 1 else None
