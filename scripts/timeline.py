#!/usr/bin/python3
"""timeline.py - draws a Raft run's events as one self-contained HTML page:
one column per node, time flowing down, each node's role as a coloured band
with its term, elections and votes, commits, crashes, partitions and the
safety violation (if any). Standard library only; the page has no script
and loads nothing, so it opens anywhere, offline.

    scripts/timeline.py EVENTS.jsonl [-o OUT.html] [--title TEXT]
        [--from T] [--to T] [--scale PX] [--page-px PX]
    scripts/timeline.py [EVENTS.jsonl] --log [ID=]NODE.log ... [--save-events F]
    (make timeline RUN=EVENTS.jsonl [OUT=...], or SCENARIO=Name SEED=n,
     or LOGS="node1.log node2.log ..." [RUN=harness events])

This file reads the options; timeline_logs.py turns stage 5 server logs
(--log, one per node; ID= when the log does not say which node it is) into
events, merged with EVENTS.jsonl if given (then in epoch milliseconds, the
servers' clock: what a test harness records of its own faults); the
merged run starts at t=0 and --save-events writes it.
timeline_model.py rebuilds the run from the events, timeline_html.py
draws it.

THE EVENT FORMAT (neutral: the simulation writes it, and the real servers'
logs are converted to it). One JSON object per line:

    {"t": <number>, "node": <id or null>, "kind": "<kind>", ...fields}

t is the time of the event: simulated time units for raft_sim, milliseconds
for real processes; lines need not be sorted (they are, stably, by t). node
is the node the event happened on (an integer or a string; null for events
of the whole run). Fields by kind (unknown kinds and fields are ignored, so
a source may say more):

    meta       node null; optional, first: "source", "scenario", "seed",
               "nodes": [ids] (the columns, in order; else the ids seen),
               "unit": "sim"|"ms", "election": base election timeout in t
               units (sets the scale), "tick", "binary", "replay": command
    role       "role": follower|pre-candidate|candidate|leader, "term",
               "leader": id or null (who the node believes leads)
    term       "term", "old": the node's current term changed (persisted)
    elect      "term", "pre": bool - the node starts an election (or a
               pre-vote round) for that term
    vote       "for": candidate id, "term", "granted": bool, "pre": bool -
               the node answered a (pre-)vote request (a real vote moves the
               voter to that term, if no term event said so)
    commit     "index", "term": the node's commit index advanced to index
    apply      "index", "term", "value": the node applied an entry
    persist    "index", "term": the node's log is durable up to index
    propose    "index", "term", "value": a client write the node accepted
    read       "id", "phase": ask|done, and "index", "need" when done
    crash      the node stopped ("durable_term", "durable_entries" optional)
    restart    the node came back (same optional fields)
    partition  "to": [ids], "both": bool - messages from node to each of
               "to" are lost from now on (both: in both directions)
    heal       node null: every link works again; or node with "to": [ids]
               and "both": the links between node and those ids work again
    send       "to", "msg" (message type), "term", and per type "prev",
               "n", "commit", "match", "reject"
    recv       "from", "msg", "term", ...: a message arrived
    drop       "to", "msg", "term": a message was lost (cut link, loss,
               receiver down)
    violation  node null, "msg": the safety property that failed; drawn in
               red, and its message is the first thing on the page
    note       "text": anything else worth seeing (a delay put on a link, a
               bad frame sent, a server's warning); on a node: a grey
               label; node null: a grey line across the page

send, recv, drop, persist and apply are counted, not drawn: they would
bury the rest; the page's summary gives their totals.

THE DRAWING. Stretches where nothing but replication happens (no role
change, election, crash, partition or heal for longer than an election
timeout) are compressed to a fixed height and marked; the rest is drawn at
a constant scale (--scale pixels per election timeout). A long run is cut
into pages of at most --page-px pixels, each its own picture. Labels that
would overlap are dropped lowest priority first (commits before elections);
every mark keeps a tooltip with its details.
"""
import argparse
import sys

sys.dont_write_bytecode = True  # run from the source tree: leave no __pycache__ there
import json  # noqa: E402

from timeline_html import render  # noqa: E402
from timeline_logs import merge  # noqa: E402
from timeline_model import BadInput, read_events  # noqa: E402


def read_logs(specs):
    """--log values ([ID=]PATH) -> [(id or None, lines)]."""
    logs = []
    for spec in specs:
        node, path = None, spec
        head, sep, tail = spec.partition("=")
        if sep and head.isdigit():
            node, path = int(head), tail
        with open(path, encoding="utf-8", errors="replace") as f:
            logs.append((node, f.readlines()))
    return logs


def main(argv=None):
    ap = argparse.ArgumentParser(description="Raft events (JSON lines) -> an HTML timeline")
    ap.add_argument("events", nargs="?", help="JSON lines file ('-' for stdin)")
    ap.add_argument("--log", action="append", default=[], metavar="[ID=]PATH",
                    help="a stage 5 server's log (repeat: one per node)")
    ap.add_argument("--save-events", metavar="PATH", help="write the merged events (with --log)")
    ap.add_argument("-o", "--output", help="HTML file (default: the input's name, .html)")
    ap.add_argument("--title")
    ap.add_argument("--scale", type=float, default=240,
                    help="pixels per election timeout (default 240)")
    ap.add_argument("--page-px", type=int, default=9000, help="page height in pixels")
    ap.add_argument("--from", dest="t_from", type=float, help="draw only from this time")
    ap.add_argument("--to", dest="t_to", type=float, help="draw only up to this time")
    a = ap.parse_args(argv)
    if a.events is None and not a.log:
        ap.error("give an events file, or --log for each node")
    meta, events = {}, []
    try:
        if a.events == "-":
            meta, events = read_events(sys.stdin)
        elif a.events is not None:
            with open(a.events, encoding="utf-8") as f:
                meta, events = read_events(f)
    except (OSError, BadInput) as e:
        print("timeline.py: %s: %s" % (a.events, e), file=sys.stderr)
        return 2
    if a.log:
        try:
            meta, events = merge(read_logs(a.log), (meta, events))
        except OSError as e:
            print("timeline.py: %s" % e, file=sys.stderr)
            return 2
        events.sort(key=lambda e: e["t"])
        if a.save_events:
            try:
                with open(a.save_events, "w", encoding="utf-8") as f:
                    for e in [meta] + events:
                        f.write(json.dumps({k: v for k, v in e.items() if not k.startswith("_")}) + "\n")
            except OSError as e:
                print("timeline.py: %s: %s" % (a.save_events, e), file=sys.stderr)
                return 2
    out = a.output
    if not out:
        if a.events in (None, "-"):
            out = "timeline.html"
        else:
            base = a.events[:-len(".jsonl")] if a.events.endswith(".jsonl") else a.events
            out = base + ".html"
    try:
        page = render(meta, events, a.title, a.scale, a.page_px, a.t_from, a.t_to)
    except BadInput as e:
        print("timeline.py: %s" % e, file=sys.stderr)
        return 2
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        print("timeline.py: %s: %s" % (out, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
