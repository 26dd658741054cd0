"""timeline_model.py - the Raft run behind scripts/timeline.py's page: the
events read and sorted, each node's role and term over time as segments,
the partitions as sets of cut links, the marks to draw, and the mapping of
time to height that compresses quiet stretches. No drawing here."""
import bisect
import json
import re

# ---- reading

ROLE_ALIASES = {"follower": "follower", "pre-candidate": "pre-candidate",
                "precandidate": "pre-candidate", "pre_candidate": "pre-candidate",
                "candidate": "candidate", "leader": "leader"}
NOTABLE = {"role", "term", "elect", "crash", "restart", "partition", "heal", "violation", "note"}
COUNTED = ("send", "recv", "drop", "persist", "apply", "propose", "read", "vote", "elect",
           "commit", "crash", "restart", "partition", "note")


NODE_FIELDS = {"send": ["to"], "drop": ["to"], "recv": ["from"], "vote": ["for"],
               "role": ["leader"], "partition": ["to"], "heal": ["to"]}


class BadInput(Exception):
    pass


def read_events(lines):
    """Parses JSON lines into (meta, events sorted by t). Raises BadInput."""
    meta, events = {}, []
    for no, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError as e:
            raise BadInput("line %d: not JSON (%s)" % (no, e))
        if not isinstance(ev, dict) or "kind" not in ev:
            raise BadInput("line %d: not an event object with a kind" % no)
        if ev["kind"] == "meta":
            meta = ev
            continue
        t = ev.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise BadInput("line %d: t must be a number" % no)
        ev["_no"] = no
        events.append(ev)
    events.sort(key=lambda e: e["t"])
    return meta, events


def node_key(v):
    return str(v)


def node_order(meta, events):
    if isinstance(meta.get("nodes"), list) and meta["nodes"]:
        ids = [node_key(v) for v in meta["nodes"]]
    else:
        ids = []
    seen = set(ids)
    extra = []
    for ev in events:
        # with a list of nodes given, only an event's own node can add one
        fields = ["node"] if ids else ["node"] + NODE_FIELDS.get(ev["kind"], [])
        for f in fields:
            v = ev.get(f)
            vs = v if isinstance(v, list) else [v]
            for x in vs:
                if x is not None and not isinstance(x, bool) and node_key(x) not in seen:
                    seen.add(node_key(x))
                    extra.append(node_key(x))

    def k(s):
        return (0, int(s), s) if s.lstrip("-").isdigit() else (1, 0, s)
    return ids + sorted(extra, key=k)


def label(n):
    return "n" + n if n.lstrip("-").isdigit() else n


# ---- the run, reconstructed: role segments, partitions, marks


class Run:
    def __init__(self, meta, events, t_from=None, t_to=None):
        self.meta, self.events = meta, events
        self.nodes = node_order(meta, events)
        self.col = {n: i for i, n in enumerate(self.nodes)}
        self.unit = meta.get("unit", "ms")
        el = meta.get("election")
        self.election = el if isinstance(el, (int, float)) and el > 0 else (
            100 if self.unit == "sim" else 300)
        ts = [e["t"] for e in events] or [0]
        self.t0 = min(ts + ([0] if meta else []))
        # past the last event, so that the last state shows
        self.t1 = max(ts) + 0.2 * self.election
        self.counts = {}
        self.segments = {n: [] for n in self.nodes}  # [t0, t1, role, term, leader]
        self.cuts = []      # (t0, t1, frozenset of directed links)
        self.violations = []
        self.leaders = {}   # term -> [node, ...] in order seen
        self.marks = []     # (t, node, kind, event)
        self.window = None  # the whole run's (t0, t1) when only part is drawn
        self._build()
        if t_from is not None or t_to is not None:
            self._clip(self.t0 if t_from is None else max(t_from, self.t0),
                       self.t1 if t_to is None else min(t_to, self.t1))

    def _clip(self, a, b):
        """Keeps [a, b] of the run (the state at a was built from the whole run)."""
        if b <= a:
            raise BadInput("the window --from/--to holds no time of the run")
        for n in self.nodes:
            self.segments[n] = [[max(s[0], a), min(s[1], b)] + s[2:]
                                for s in self.segments[n] if s[1] > a and s[0] < b]
        self.cuts = [(max(x, a), min(y, b), l) for x, y, l in self.cuts if y > a and x < b]
        self.marks = [m for m in self.marks if a <= m[0] <= b]
        self.events = [e for e in self.events if a <= e["t"] <= b]
        self.window = (self.t0, self.t1)
        self.t0, self.t1 = a, b

    def _build(self):
        state = {n: ["follower", 0, None] for n in self.nodes}
        open_at = {n: self.t0 for n in self.nodes}
        links, cut_from = set(), self.t0

        def close(n, t):
            # a state that lasted no time leaves no segment
            if t > open_at[n]:
                self.segments[n].append([open_at[n], t] + state[n])
            open_at[n] = t

        def change(n, role=None, term=None, leader=False):
            old = list(state[n])
            new = [role if role is not None else old[0], term if term is not None else old[1],
                   old[2] if leader is False else leader]
            if new != old:
                close(n, t)
                state[n] = new

        for ev in self.events:
            kind, t = ev["kind"], ev["t"]
            self.counts[kind] = self.counts.get(kind, 0) + 1
            n = node_key(ev["node"]) if ev.get("node") is not None else None
            if n is not None and n not in state:
                continue
            if kind == "role" and n is not None:
                role = ROLE_ALIASES.get(str(ev.get("role", "")).lower(), "follower")
                term = ev.get("term") if isinstance(ev.get("term"), int) else None
                ld = ev.get("leader")
                change(n, role, term, node_key(ld) if ld is not None else None)
                if role == "leader" and term is not None:
                    lst = self.leaders.setdefault(term, [])
                    if n not in lst:
                        lst.append(n)
            elif kind == "term" and n is not None and isinstance(ev.get("term"), int):
                change(n, term=ev["term"])
            elif (kind == "vote" and n is not None and not ev.get("pre")
                  and isinstance(ev.get("term"), int) and isinstance(state[n][1], int)
                  and ev["term"] > state[n][1]):
                change(n, term=ev["term"])  # a node answers a vote in the candidate's term
            elif kind == "crash" and n is not None:
                change(n, role="crashed", leader=None)
            elif kind == "restart" and n is not None:
                dt = ev.get("durable_term")
                change(n, role="follower", term=dt if isinstance(dt, int) else None, leader=None)
            elif kind in ("partition", "heal"):
                new = set(links)
                to = [node_key(x) for x in ev.get("to") or [] if x is not None]
                if kind == "partition" and n is not None:
                    for b in to:
                        new.add((n, b))
                        if ev.get("both"):
                            new.add((b, n))
                elif kind == "heal" and n is None:
                    new.clear()
                elif kind == "heal":
                    for b in to:
                        new.discard((n, b))
                        if ev.get("both", True):
                            new.discard((b, n))
                # A cut or heal that changes no link (a simulation heals
                # links never cut) is not drawn: it would say something
                # happened when nothing did.
                if new != links:
                    if links and t > cut_from:
                        self.cuts.append((cut_from, t, frozenset(links)))
                    links, cut_from = new, t
                    self.marks.append((t, n, kind, ev))
            elif kind == "violation":
                self.violations.append(ev)
            if kind in ("elect", "vote", "commit", "propose", "crash", "restart", "read"):
                if n is not None:
                    self.marks.append((t, n, kind, ev))
            elif kind == "note":
                self.marks.append((t, n, kind, ev))
        end = self.t1
        for n in self.nodes:
            close(n, end)
            if not self.segments[n]:
                self.segments[n].append([end, end] + state[n])
        if links and end >= cut_from:
            self.cuts.append((cut_from, end, frozenset(links)))

    def notable_times(self):
        ts = [e["t"] for e in self.events if e["kind"] in NOTABLE]
        return sorted(set(ts))


# ---- time -> y, compressing quiet stretches

class TimeMap:
    def __init__(self, t0, t1, notable, px_per_unit, pad, quiet, gap_px):
        spans = []
        for t in notable:
            a, b = t - pad, t + pad
            if spans and a <= spans[-1][1] + quiet:
                spans[-1][1] = max(spans[-1][1], b)
            else:
                spans.append([a, b])
        spans = [[max(a, t0), min(b, t1)] for a, b in spans] or [[t0, t0]]
        # pieces: (t_a, t_b, y_a, y_b, compressed)
        self.pieces = []
        y = 0.0
        cur = t0
        for a, b in spans:
            if a > cur:
                if a - cur > quiet:
                    self.pieces.append((cur, a, y, y + gap_px, True))
                    y += gap_px
                else:
                    h = (a - cur) * px_per_unit
                    self.pieces.append((cur, a, y, y + h, False))
                    y += h
            h = max((b - max(a, cur)) * px_per_unit, 0)
            self.pieces.append((max(a, cur), b, y, y + h, False))
            y += h
            cur = max(cur, b)
        if t1 > cur:
            if t1 - cur > quiet:
                self.pieces.append((cur, t1, y, y + gap_px, True))
                y += gap_px
            else:
                h = (t1 - cur) * px_per_unit
                self.pieces.append((cur, t1, y, y + h, False))
                y += h
        self.height = y
        self.starts = [p[0] for p in self.pieces]

    def t_at(self, y):
        """The time drawn at height y (the inverse of y())."""
        for ta, tb, ya, yb, _ in self.pieces:
            if ya <= y <= yb:
                return ta if yb == ya else ta + (tb - ta) * (y - ya) / (yb - ya)
        return self.pieces[-1][1]

    def y(self, t):
        i = max(bisect.bisect_right(self.starts, t) - 1, 0)
        ta, tb, ya, yb, _ = self.pieces[i]
        if t <= ta or tb <= ta:
            return ya
        if t >= tb:
            return yb
        return ya + (yb - ya) * (t - ta) / (tb - ta)


def violation_nodes(ev, nodes):
    """The nodes a violation names: its "nodes" field, else 'node 3', 'leader 1',
    'nodes 2 and 4' in its message."""
    if isinstance(ev.get("nodes"), list):
        named = [node_key(v) for v in ev["nodes"]]
    else:
        named = []
        for m in re.finditer(r"\b(?:nodes?|leader|n)\s*(\d+)(?:\s+and\s+(\d+))?",
                             str(ev.get("msg", ""))):
            named += [g for g in m.groups() if g]
    return [n for n in nodes if n in named]


def sides(links, nodes):
    """The groups of nodes that still reach each other both ways."""
    comp = {}
    for n in nodes:
        if n in comp:
            continue
        comp[n] = n
        todo = [n]
        while todo:
            a = todo.pop()
            for b in nodes:
                if b not in comp and (a, b) not in links and (b, a) not in links:
                    comp[b] = n
                    todo.append(b)
    groups = {}
    for n in nodes:
        groups.setdefault(comp[n], []).append(n)
    return list(groups.values())


def cut_nodes(links, nodes):
    """The nodes to mark: every side but the largest if the cluster is split,
    else the ends of the cut links (a partial or one-way partition)."""
    groups = sides(links, nodes)
    if len(groups) > 1:
        big = max(groups, key=len)
        return [n for g in groups if g is not big for n in g]
    ends = {a for a, _ in links} | {b for _, b in links}
    return [n for n in nodes if n in ends]


def violation_indexes(run):
    """Log indexes the violations name: their "index" field, else 'entry 21' or
    'index 4' in the message; the first commit to reach one is highlighted."""
    out = set()
    for ev in run.violations:
        if isinstance(ev.get("index"), int):
            out.add(ev["index"])
        else:
            out |= {int(m) for m in re.findall(r"\b(?:entry|index)\s+(\d+)",
                                                str(ev.get("msg", "")))}
    return out


def describe_cut(links, nodes):
    """'n3 isolated', 'n1 n2 | n3 n4 n5', or per link 'n1 -> n2 cut', 'n1 <-> n2 cut'."""
    groups = sides(links, nodes)
    if len(groups) > 1:
        big = max(groups, key=len)
        if len(groups) == 2 and len([g for g in groups if g is not big][0]) == 1:
            return "%s isolated" % label([g for g in groups if g is not big][0][0])
        return "split: " + " | ".join(" ".join(label(n) for n in g) for g in groups)
    parts, done = [], set()
    for a, b in sorted(links):
        if (a, b) in done:
            continue
        if (b, a) in links:
            parts.append("%s \u2194 %s cut" % (label(a), label(b)))
            done |= {(a, b), (b, a)}
        else:
            parts.append("%s \u2192 %s cut" % (label(a), label(b)))
            done.add((a, b))
    return ", ".join(parts)
