# faultproxy.py - network faults between real server processes on loopback:
# a TCP proxy the test controls (cut, delay, one-way), and a Partition of a
# cluster's peer links built from one proxy per (dialler, listener) pair.
#
# The model. In our clusters every node dials its peers' peer ports (stage 4:
# a follower dials its leader; stage 5: every node dials every other). Put a
# FaultProxy in front of each (dialler, listener) pair and give the dialler
# the proxy's port instead of the listener's real peer port: then the bytes
# the dialler sends travel the proxy's "c2s" direction (client to server) and
# the listener's answers travel "s2c". A directed link "A reaches B" is
# therefore two proxy directions: c2s of proxy (A, B), and s2c of proxy
# (B, A). ProxyMesh builds the proxies; Partition keeps a set of directed
# links that are down and sets every proxy's two directions from it, so
# symmetric ({1,2}|{3}), asymmetric (A reaches B, B does not reach A) and
# partial (1-2 and 2-3 up, 1-3 down) partitions are one call each. For
# stage 5 each node then gets its own --cluster string: its own entry real,
# each peer's peer port replaced by the proxy (this node, that peer)
# (ProxyMesh.cluster_arg).
#
# What a cut looks like. A network partition does not lose bytes from the
# middle of a TCP stream: TCP retransmits, and the bytes arrive after the
# partition heals, or the connection times out. So a blackholed direction
# holds bytes, never drops them: the proxy keeps reading up to HOLD_LIMIT
# bytes per direction of each connection (so stats() can show they were
# sent), then stops reading and the kernel buffers fill until the sender
# blocks, as it would behind a partition. heal() delivers every held byte,
# in order. New connections during a full blackhole are accepted but not
# connected upstream until heal (the listener sees nothing; the dialler sees
# a connection on which nothing moves). Dropping bytes mid-stream would
# instead test the peers' frame decoders against corrupted streams, a
# different fault. cut(mode="drop") is the other fault: a node that reboots
# or a firewall that rejects: every proxied connection is reset (RST) on both
# sides, and new ones are accepted and reset at once until heal.
#
# delay(ms) stamps each chunk with (time read + ms) and forwards it no
# earlier; a chunk never overtakes an earlier one, so order is preserved
# even when the delay changes. heal() does not clear a delay (delay(0) does).
#
# Use, for three stage 5 nodes (ports picked with free_port()):
#   mesh = ProxyMesh({n: ("127.0.0.1", peer_port[n]) for n in (1, 2, 3)})
#   start node n with --cluster mesh.cluster_arg(n, client_port)
#   part = Partition(mesh)
#   part.split({1, 2}, {3}); ...; part.heal()
#   part.block(3, 1)          # 3's messages no longer reach 1
#   part.cut(1, 3)            # partial: 1-2 and 2-3 stay up
# For stage 4, ProxyMesh(..., pairs=[(2, 1), (3, 1)]) and each follower's
# --replicaof names mesh.address(follower, 1). Peers must identify each
# other by what the handshake says (node id), not by the source address of
# a connection: through a proxy every connection comes from the proxy.
#
# The proxy runs in a background thread (selectors); every control call is
# executed by that thread and returns once it has taken effect, so a test
# that calls cut() knows no byte crosses afterwards.
import collections
import errno
import queue
import selectors
import socket
import struct
import threading
import time

C2S = "c2s"  # client (the dialler) to server (the listener)
S2C = "s2c"
DIRECTIONS = (C2S, S2C)
HOLD_LIMIT = 4 << 20  # bytes queued per direction of a connection before the proxy stops reading
CHUNK = 65536
CALL_TIMEOUT = 10.0


def _reset_close(sock):
    """Close with RST (SO_LINGER 0): the peer sees ECONNRESET, and no
    TIME_WAIT is left holding the port."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _other(direction):
    return S2C if direction == C2S else C2S


class _Link:
    """One proxied connection: the accepted client socket, the upstream
    socket, and per direction a FIFO of [due time, bytes]."""

    def __init__(self, proxy, client):
        self.proxy = proxy
        self.client = client
        self.server = None  # None until the upstream connect starts
        self.connected = False
        self.queue = {C2S: collections.deque(), S2C: collections.deque()}
        self.queued = {C2S: 0, S2C: 0}
        self.eof = {C2S: False, S2C: False}  # the direction's source sent FIN (or failed)
        self.reset = {C2S: False, S2C: False}  # ... and it was a reset
        self.shut = {C2S: False, S2C: False}  # FIN passed on to the direction's destination
        self.blocked = {C2S: False, S2C: False}  # destination's buffer full: waiting for EVENT_WRITE
        self.events = {}  # socket -> registered selector events
        self.closed = False

    def src(self, d):
        return self.client if d == C2S else self.server

    def dst(self, d):
        return self.server if d == C2S else self.client

    # -- upstream connection --

    def start_connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = s
        err = s.connect_ex(self.proxy.target)
        if err == 0:
            self.connected = True
        elif err not in (errno.EINPROGRESS, errno.EAGAIN):
            self.proxy._count("connect_failures")
            self.close(reset=True)

    def _finish_connect(self):
        err = self.server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.proxy._count("connect_failures")
            self.close(reset=True)
            return
        self.connected = True

    # -- data --

    def _can_read(self, d):
        s = self.src(d)
        if s is None or self.eof[d] or self.queued[d] >= HOLD_LIMIT:
            return False
        return self.connected or d == C2S  # client bytes queue up while connecting

    def _read(self, d):
        try:
            data = self.src(d).recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.eof[d] = self.reset[d] = True
            return
        if not data:
            self.eof[d] = True
            return
        self.queue[d].append([time.monotonic() + self.proxy._delay[d], data])
        self.queued[d] += len(data)

    def flush(self, d, now):
        """Send every due chunk of direction d that the socket takes, then
        pass on EOF once the queue is empty. False if the link closed."""
        if self.closed or not self.proxy._pass[d] or not self.connected:
            return True
        q, dst = self.queue[d], self.dst(d)
        self.blocked[d] = False
        while q and q[0][0] <= now:
            data = q[0][1]
            try:
                n = dst.send(data)
            except (BlockingIOError, InterruptedError):
                self.blocked[d] = True
                return True
            except OSError:
                self.close(reset=True)
                return False
            self.proxy._forwarded[d] += n
            self.queued[d] -= n
            if n < len(data):
                q[0][1] = data[n:]
                self.blocked[d] = True
                return True
            q.popleft()
        if not q and self.eof[d] and not self.shut[d]:
            if self.reset[d]:
                self.close(reset=True)
                return False
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.shut[d] = True
            if self.shut[_other(d)]:
                self.close(reset=False)
                return False
        return True

    def _wants_write(self, d, now):
        q = self.queue[d]
        return bool(q) and q[0][0] <= now and self.proxy._pass[d] and self.connected

    def next_due(self):
        """The earliest time a queued chunk becomes due (for the select
        timeout). A blocked direction waits for EVENT_WRITE instead: its
        due head must not make select spin."""
        due = None
        for d in DIRECTIONS:
            q = self.queue[d]
            if q and self.proxy._pass[d] and self.connected and not self.blocked[d]:
                due = q[0][0] if due is None else min(due, q[0][0])
        return due

    def on_event(self, sock, mask):
        if self.closed:
            return
        if sock is self.server and not self.connected:
            self._finish_connect()
            return
        if mask & selectors.EVENT_READ:
            d = C2S if sock is self.client else S2C
            if self._can_read(d):
                self._read(d)

    def update(self, now):
        """Flush what is due and register the events this link waits for."""
        for d in DIRECTIONS:
            if not self.flush(d, now):
                return
        want = {self.client: 0}
        if self.server is not None:
            want[self.server] = 0
            if not self.connected:
                want[self.server] = selectors.EVENT_WRITE
        for d in DIRECTIONS:
            if self._can_read(d):
                want[self.src(d)] |= selectors.EVENT_READ
            if self._wants_write(d, now):
                want[self.dst(d)] |= selectors.EVENT_WRITE
        sel = self.proxy._sel
        for s, ev in want.items():
            old = self.events.get(s, 0)
            if ev == old:
                continue
            if old == 0:
                sel.register(s, ev, self)
            elif ev == 0:
                sel.unregister(s)
            else:
                sel.modify(s, ev, self)
            self.events[s] = ev

    def close(self, reset):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.server):
            if s is None:
                continue
            if self.events.get(s):
                self.proxy._sel.unregister(s)
            if reset:
                _reset_close(s)
            else:
                s.close()
        self.events.clear()
        self.proxy._links.discard(self)


class FaultProxy:
    """A TCP proxy on a free loopback port forwarding to target (host, port).

    Controls (any thread, any time; each returns once in effect):
      cut(mode="blackhole")  hold all bytes both ways (a partition)
      cut(mode="drop")       reset every connection, reset new ones
      one_way(direction)     only direction ("c2s" or "s2c") flows; the other is held
      heal()                 both directions flow; held bytes are delivered
      delay(ms, direction=None)  delay each chunk (one direction or both)
      stats()                counters (see there)
      close()                stop, reset every connection, release the port
    """

    def __init__(self, target, listen_host="127.0.0.1", listen_port=0, name=None):
        self.target = (target[0], int(target[1]))
        self.name = name or "proxy->%s:%d" % self.target
        self._pass = {C2S: True, S2C: True}
        self._delay = {C2S: 0.0, S2C: 0.0}
        self._refuse = False
        self._links = set()
        self._forwarded = {C2S: 0, S2C: 0}
        self._counts = {"accepted": 0, "refused": 0, "connect_failures": 0}
        self._calls = queue.Queue()
        self._stopping = False
        self._closed = False
        self.error = None  # an exception that stopped the loop thread
        self._final_stats = None

        self._sel = selectors.DefaultSelector()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # A proxy re-created on a fixed port (a cluster's addresses are
            # fixed) must not wait for TIME_WAIT connections of the last one.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((listen_host, listen_port))
            self._listener.listen(128)
            self._listener.setblocking(False)
            self._wake_r, self._wake_w = socket.socketpair()
        except OSError:
            self._listener.close()
            self._sel.close()
            raise
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.address = self._listener.getsockname()
        self.port = self.address[1]
        self._sel.register(self._listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def __repr__(self):
        return "<FaultProxy %s on port %d>" % (self.name, self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- controls --

    def cut(self, mode="blackhole"):
        if mode == "blackhole":
            self._call(self._set, False, False)
        elif mode == "drop":
            self._call(self._drop)
        else:
            raise ValueError("cut mode must be 'blackhole' or 'drop', not %r" % (mode,))

    def heal(self):
        self._call(self._set, True, True)

    def one_way(self, direction):
        """Only `direction` flows ("c2s": the dialler's bytes reach the
        listener, its answers are held; "s2c": the reverse)."""
        if direction not in DIRECTIONS:
            raise ValueError("direction must be %r or %r, not %r" % (C2S, S2C, direction))
        self._call(self._set, direction == C2S, direction == S2C)

    def delay(self, ms, direction=None):
        if ms < 0:
            raise ValueError("delay must be >= 0 ms")
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError("direction must be None, %r or %r" % (C2S, S2C))

        def apply():
            for d in ([direction] if direction else DIRECTIONS):
                self._delay[d] = ms / 1000.0
        self._call(apply)

    @property
    def state(self):
        """"up", "drop", "blackhole", or "one_way:c2s" / "one_way:s2c"."""
        return self._call(self._state)

    def stats(self):
        """A consistent snapshot: bytes forwarded per direction (written to
        the destination), bytes held in the proxy per direction, connections
        accepted (all, including refused ones), refused (reset at once by a
        drop cut), active, deferred (accepted during a full blackhole, not
        yet connected upstream), and upstream connect failures."""
        if self._closed or self.error is not None:
            return dict(self._final_stats or {})
        return self._call(self._snapshot)

    def close(self):
        if self._closed:
            return
        if self._thread.is_alive():
            try:
                self._call(self._stop)
            except RuntimeError:
                pass
            self._thread.join(CALL_TIMEOUT)
        self._closed = True

    # -- the loop thread --

    def _call(self, fn, *args):
        if self._closed:
            raise RuntimeError("%r is closed" % self)
        if self.error is not None:
            raise RuntimeError("%r loop failed: %r" % (self, self.error))
        done = threading.Event()
        box = {}
        self._calls.put((fn, args, done, box))
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # the wake pipe is full: the loop wakes anyway
        deadline = time.monotonic() + CALL_TIMEOUT
        while not done.wait(0.05):
            if not self._thread.is_alive() and not done.is_set():
                raise RuntimeError("%r loop is not running (error: %r)" % (self, self.error))
            if time.monotonic() >= deadline:
                raise RuntimeError("%r did not answer within %.0f s (error: %r)" % (self, CALL_TIMEOUT, self.error))
        if "exc" in box:
            raise box["exc"]
        return box.get("value")

    def _run(self):
        try:
            while not self._stopping:
                timeout = self._timeout()
                for key, mask in self._sel.select(timeout):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        key.data.on_event(key.fileobj, mask)
                # Forward before answering calls, so stats() never counts
                # as held a byte that was only on its way through.
                self._update_all()
                if self._run_calls():
                    self._update_all()
        except Exception as e:  # pragma: no cover - reported through error and the next call
            self.error = e
        finally:
            self._final_stats = self._snapshot()
            for link in list(self._links):
                link.close(reset=True)
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._fail_pending_calls()
            self._wake_w.close()

    def _timeout(self):
        due = None
        for link in self._links:
            t = link.next_due()
            if t is not None and (due is None or t < due):
                due = t
        if due is None:
            return None
        return max(0.0, due - time.monotonic())

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _run_calls(self):
        ran = False
        while True:
            try:
                fn, args, done, box = self._calls.get_nowait()
            except queue.Empty:
                return ran
            ran = True
            try:
                box["value"] = fn(*args)
            except Exception as e:
                box["exc"] = e
            done.set()

    def _fail_pending_calls(self):
        while True:
            try:
                _, _, done, box = self._calls.get_nowait()
            except queue.Empty:
                return
            box["exc"] = RuntimeError("%r stopped" % self)
            done.set()

    def _update_all(self):
        now = time.monotonic()
        for link in list(self._links):
            if not link.closed:
                link.update(now)

    def _accept(self):
        while True:
            try:
                s, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ECONNABORTED: the client already gave up
            self._counts["accepted"] += 1
            if self._refuse:
                self._counts["refused"] += 1
                _reset_close(s)
                continue
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, s)
            self._links.add(link)
            if self._pass[C2S] or self._pass[S2C]:
                link.start_connect()

    def _set(self, c2s, s2c):
        self._refuse = False
        self._pass[C2S], self._pass[S2C] = c2s, s2c
        if c2s or s2c:
            for link in list(self._links):
                if link.server is None:  # accepted during a full blackhole
                    link.start_connect()

    def _drop(self):
        self._refuse = True
        self._pass[C2S] = self._pass[S2C] = False
        for link in list(self._links):
            link.close(reset=True)

    def _state(self):
        if self._refuse:
            return "drop"
        if self._pass[C2S] and self._pass[S2C]:
            return "up"
        if not self._pass[C2S] and not self._pass[S2C]:
            return "blackhole"
        return "one_way:" + (C2S if self._pass[C2S] else S2C)

    def _snapshot(self):
        held = {C2S: 0, S2C: 0}
        for link in self._links:
            for d in DIRECTIONS:
                held[d] += link.queued[d]
        return {
            "forwarded_c2s": self._forwarded[C2S],
            "forwarded_s2c": self._forwarded[S2C],
            "held_c2s": held[C2S],
            "held_s2c": held[S2C],
            "accepted": self._counts["accepted"],
            "refused": self._counts["refused"],
            "active": len(self._links),
            "deferred": sum(1 for link in self._links if link.server is None),
            "connect_failures": self._counts["connect_failures"],
        }

    def _count(self, what):
        self._counts[what] += 1

    def _stop(self):
        self._stopping = True


class ProxyMesh:
    """One FaultProxy per (dialler, listener) pair of a cluster.

    listeners: {node: (host, peer port)}, where each node really listens for
    its peers. pairs: the (dialler, listener) pairs that connect; default
    every ordered pair of distinct nodes (stage 5); for stage 4 the
    (follower, leader) pairs. The proxies exist before the nodes start (a
    connection to a node that is not up yet is reset, as a down node's
    would be).

    avoid: ports no proxy may listen on. The proxies take ports the kernel
    picks, and the ports picked for the nodes (free_port()) are not bound
    until the nodes start: a proxy on one of them makes that node fail to
    bind, and a client that dials the node reaches the proxy instead. The
    listeners' peer ports are always avoided; pass the client ports too."""

    def __init__(self, listeners, pairs=None, listen_host="127.0.0.1", avoid=()):
        self.listeners = dict(listeners)
        if pairs is None:
            pairs = [(a, b) for a in self.listeners for b in self.listeners if a != b]
        avoid = set(avoid) | {int(addr[1]) for addr in self.listeners.values()}
        self.proxies = {}
        try:
            for d, l in pairs:
                if l not in self.listeners:
                    raise ValueError("pair (%r, %r): %r has no listener address" % (d, l, l))
                self.proxies[(d, l)] = self._proxy_avoiding(self.listeners[l], listen_host,
                                                            "proxy %s->%s" % (d, l), avoid)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _proxy_avoiding(target, listen_host, name, avoid):
        rejected = []  # kept listening until a proxy is found, so the kernel cannot hand the port out again
        try:
            while True:
                p = FaultProxy(target, listen_host=listen_host, name=name)
                if p.port not in avoid:
                    return p
                rejected.append(p)
        finally:
            for p in rejected:
                p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def proxy(self, dialler, listener):
        return self.proxies[(dialler, listener)]

    def address(self, dialler, listener):
        """Where `dialler` must dial to reach `listener`'s peer port."""
        return self.proxies[(dialler, listener)].address

    def cluster_arg(self, node, client_ports, host="127.0.0.1"):
        """Stage 5's --cluster value for `node`: its own entry real, each
        peer's peer port replaced by the proxy from node to that peer.
        client_ports: {node: client port} (redirects name those)."""
        parts = []
        for n in sorted(self.listeners):
            if n == node:
                pport = self.listeners[n][1]
            else:
                pport = self.proxies[(node, n)].port
            parts.append("%s=%s:%d:%d" % (n, host, client_ports[n], pport))
        return ",".join(parts)

    def close(self):
        for p in self.proxies.values():
            p.close()


class Partition:
    """Which directed links between nodes are down, applied to a ProxyMesh
    (or to a dict {(dialler, listener): FaultProxy}).

    A proxy (d, l) forwards c2s while d reaches l and s2c while l reaches d;
    a proxy with both directions down is cut with `mode` ("blackhole" holds
    bytes like a partition; "drop" resets connections like a rebooted node
    or a rejecting firewall); one with one direction down is one_way.
    Changes add up until heal()."""

    def __init__(self, mesh, mode="blackhole"):
        self.proxies = mesh.proxies if isinstance(mesh, ProxyMesh) else dict(mesh)
        if mode not in ("blackhole", "drop"):
            raise ValueError("mode must be 'blackhole' or 'drop'")
        self.mode = mode
        self.nodes = sorted({n for pair in self.proxies for n in pair}, key=repr)
        self._down = set()
        self._applied = {pair: "up" for pair in self.proxies}

    @property
    def down(self):
        """The directed links (src, dst) that are down: src cannot reach dst."""
        return frozenset(self._down)

    def reaches(self, src, dst):
        return (src, dst) not in self._down

    def split(self, *groups):
        """Symmetric partition: nodes reach each other only within a group,
        e.g. split({1, 2}, {3}). Every node must be in exactly one group."""
        seen = {}
        for i, g in enumerate(groups):
            for n in g:
                if n in seen:
                    raise ValueError("node %r is in two groups" % (n,))
                seen[n] = i
        missing = set(self.nodes) - set(seen)
        if missing:
            raise ValueError("nodes %r are in no group" % (sorted(missing, key=repr),))
        for a in seen:
            for b in seen:
                if a != b and seen[a] != seen[b]:
                    self._down.add((a, b))
        self._apply()

    def isolate(self, node):
        """node can neither reach nor be reached by any other."""
        self.split({node}, set(self.nodes) - {node})

    def cut(self, a, b):
        """Partial partition: a and b lose each other (both directions);
        every other link stays as it was."""
        self._down.update({(a, b), (b, a)})
        self._apply()

    def block(self, src, dst):
        """Asymmetric: src's bytes no longer reach dst; dst still reaches src."""
        self._down.add((src, dst))
        self._apply()

    def heal(self):
        self._down.clear()
        self._apply()

    def delay(self, ms, src=None, dst=None):
        """Delay the bytes from src to dst (both None: every link)."""
        for (d, l), p in self.proxies.items():
            if (src is None or src == d) and (dst is None or dst == l):
                p.delay(ms, C2S)
            if (src is None or src == l) and (dst is None or dst == d):
                p.delay(ms, S2C)

    def _apply(self):
        for (d, l), p in self.proxies.items():
            c2s, s2c = (d, l) not in self._down, (l, d) not in self._down
            if c2s and s2c:
                want = "up"
            elif not c2s and not s2c:
                want = self.mode
            else:
                want = C2S if c2s else S2C
            if self._applied[(d, l)] == want:
                continue
            if want == "up":
                p.heal()
            elif want in DIRECTIONS:
                p.one_way(want)
            else:
                p.cut(want)
            self._applied[(d, l)] = want
