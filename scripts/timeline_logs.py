"""timeline_logs.py - turns the stage 5 servers' own logs into timeline.py's
event format, so that a real run is drawn like a simulated one. The lines
read (node.c and peers.c write them; every line starts with a UTC time in
milliseconds, one clock for every process on the machine):

    node 2 of 3: clients on 127.0.0.1:7015, election timeout 500 ms, ...
    node 2: restored term 3, vote 1, 41 log entries
    node 2: candidate in term 4, leader 0 (0: unknown)     (a role line)
    node 3: grants its vote to node 2 in term 4            (or refuses, pre-vote)
    node 2: commit index 57 (entry of term 4)
    peer 127.0.0.1:40312: bad frame: ...; closing the link  (any WARN or ERROR)

A role line gives a "role" event, plus an "elect" event when the node
becomes a pre-candidate (a pre-vote round for term + 1) or a candidate.
WARN and ERROR lines become "note" events on that node. Every other line is
ignored. Times are kept in milliseconds since the Unix epoch here;
timeline.py shifts them so that the run starts at 0."""
import calendar
import re

STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z (ERROR|WARN|INFO|DEBUG)\s+(.*)$")
START = re.compile(r"^node (\d+) of (\d+): clients on \S+, election timeout (\d+) ms")
RESTORED = re.compile(r"^node (\d+): restored term (\d+), vote (\d+), (\d+) log entries")
ROLE = re.compile(r"^node (\d+): (follower|pre-candidate|candidate|leader) in term (\d+), leader (\d+)")
VOTE = re.compile(r"^node (\d+): (grants|refuses) its (vote|pre-vote) to node (\d+) in term (\d+)")
COMMIT = re.compile(r"^node (\d+): commit index (\d+) \(entry of term (\d+)\)")
NOTE_MAX = 160  # characters of a WARN or ERROR line kept in its note


def stamp_ms(m):
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups()[:7])
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


def read_log(lines, node=None):
    """One server's log -> (facts, events). node: its id if known (else
    taken from its start line). facts: "node", "nodes" (cluster size),
    "election" (ms), "starts" (times the server started)."""
    facts = {"node": node, "nodes": None, "election": None, "starts": []}
    events = []
    term = None
    pending = []  # WARN/ERROR lines seen before the node knew its id
    for line in lines:
        m = STAMP.match(line.rstrip("\n"))
        if not m:
            continue
        t, level, text = stamp_ms(m), m.group(8), m.group(9)
        s = START.match(text)
        if s:
            if facts["node"] is None:
                facts["node"] = int(s.group(1))
            facts["nodes"] = int(s.group(2))
            facts["election"] = int(s.group(3))
            facts["starts"].append(t)
            continue
        r = RESTORED.match(text)
        if r:
            term = int(r.group(2))
            continue
        r = ROLE.match(text)
        if r:
            n, role, new_term, leader = int(r.group(1)), r.group(2), int(r.group(3)), int(r.group(4))
            if term is not None and new_term != term:
                events.append({"t": t, "node": n, "kind": "term", "term": new_term, "old": term})
            term = new_term
            if role == "pre-candidate":
                events.append({"t": t, "node": n, "kind": "elect", "term": new_term + 1, "pre": True})
            elif role == "candidate":
                events.append({"t": t, "node": n, "kind": "elect", "term": new_term, "pre": False})
            events.append({"t": t, "node": n, "kind": "role", "role": role, "term": new_term,
                           "leader": leader or None})
            continue
        r = VOTE.match(text)
        if r:
            events.append({"t": t, "node": int(r.group(1)), "kind": "vote", "for": int(r.group(4)),
                           "granted": r.group(2) == "grants", "pre": r.group(3) == "pre-vote",
                           "term": int(r.group(5))})
            continue
        r = COMMIT.match(text)
        if r:
            events.append({"t": t, "node": int(r.group(1)), "kind": "commit", "index": int(r.group(2)),
                           "term": int(r.group(3))})
            continue
        if level in ("WARN", "ERROR"):
            note = {"t": t, "node": facts["node"], "kind": "note", "level": level.lower(),
                    "text": text if len(text) <= NOTE_MAX else text[:NOTE_MAX - 3] + "..."}
            (events if facts["node"] is not None else pending).append(note)
    for note in pending:
        note["node"] = facts["node"]
        events.append(note)
    return facts, [e for e in events if e["node"] is not None]


def merge(logs, harness=None):
    """logs: [(node id or None, lines)]; harness: (meta, events) the test
    recorded (timeline.py's format, t in epoch ms) or None. Returns (meta,
    events) with t in ms since the first event. A restart is taken from the
    harness's events when it recorded any crash or restart, else from the
    second and later start lines of a log."""
    hmeta, hevents = harness or ({}, [])
    meta = {"unit": "ms", "source": "stage5 server logs"}
    meta.update({k: v for k, v in hmeta.items() if k != "kind"})
    events = [dict(e) for e in hevents]
    harness_restarts = any(e["kind"] in ("crash", "restart") for e in hevents)
    ids = set()
    for node, lines in logs:
        facts, evs = read_log(lines, node)
        if facts["node"] is None:
            continue
        ids.add(facts["node"])
        if facts["nodes"]:
            ids.update(range(1, facts["nodes"] + 1))
        if facts["election"] and "election" not in meta:
            meta["election"] = facts["election"]
        if not harness_restarts:
            events += [{"t": t, "node": facts["node"], "kind": "restart"} for t in facts["starts"][1:]]
        events += evs
    if "nodes" not in meta:
        meta["nodes"] = sorted(ids)
    if events:
        t0 = min(e["t"] for e in events)
        for e in events:
            e["t"] = round(e["t"] - t0, 1)
        meta["epoch_ms"] = t0
    meta["kind"] = "meta"
    return meta, events
