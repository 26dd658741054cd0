#!/usr/bin/python3
"""test_timeline.py - the Raft timeline: scripts/timeline.py draws what the
events say (one column per node, role bands, term labels, partitions, the
violation), and raft_sim writes the events: a failing run leaves its
.timeline.jsonl and .html (in SIM_ARTIFACTS or the current directory), a
passing run or an expected violation leaves nothing. And the events read
from stage 5 servers' logs (--log, scripts/timeline_logs.py), merged with a
harness's own events (a real run's page: tests/stage5/test_real_timeline.py).

env: TL_SCRIPT (scripts/timeline.py), TL_SIM (raft_sim), TL_SIM_BROKEN
(raft_sim_broken_read_index); the binaries may be valgrind wrappers."""
import calendar
import html.parser
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.environ.get("TL_SCRIPT", os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                  "scripts", "timeline.py"))
SIM = os.environ.get("TL_SIM", "raft_sim")
SIM_BROKEN = os.environ.get("TL_SIM_BROKEN", "raft_sim_broken_read_index")
# StaleRead seed 1 is caught by the broken ReadIndex build at t=289: a short run.
BROKEN_RUN = {"SIM_SCENARIO": "StaleRead", "SIM_SEED": "1"}
BROKEN_WHY = "Linearizability: node 4 serves read 0 at index 2"


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Page(html.parser.HTMLParser):
    """What a reader of the page sees, by element class."""

    def __init__(self, text):
        super().__init__()
        self.elems = []      # (tag, attrs dict, text inside)
        self.stack = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        e = (tag, dict(attrs), [])
        self.elems.append(e)
        if tag not in ("rect", "line", "circle", "path", "polyline", "meta", "br", "i"):
            self.stack.append(e)

    def handle_startendtag(self, tag, attrs):
        self.elems.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        while self.stack:
            e = self.stack.pop()
            if e[0] == tag:
                break

    def handle_data(self, data):
        for e in self.stack:
            e[2].append(data)

    def by_class(self, cls, tag=None):
        return [e for e in self.elems if cls in e[1].get("class", "").split()
                and (tag is None or e[0] == tag)]

    def text(self, e):
        return "".join(e[2])


def ev(t, node, kind, **f):
    return json.dumps(dict(t=t, node=node, kind=kind, **f))


# Three nodes: n1 leads term 1; n3 is isolated and campaigns alone; n2 crashes
# and restarts; the network heals; a violation is reported.
EVENTS = [
    ev(0, None, "meta", nodes=[1, 2, 3], unit="sim", election=100, scenario="Hand", seed=7,
       replay="by hand"),
    ev(10, 1, "elect", term=1, pre=False),
    ev(10, 1, "term", term=1, old=0),
    ev(10, 1, "role", role="candidate", term=1, leader=None),
    ev(12, 2, "vote", term=1, granted=True, pre=False, **{"for": 1}),
    ev(12, 3, "vote", term=1, granted=False, pre=False, **{"for": 1}),
    ev(14, 1, "role", role="leader", term=1, leader=1),
    ev(20, 1, "commit", index=1, term=1),
    ev(40, 3, "partition", to=[1, 2], both=True),
    ev(150, 3, "elect", term=2, pre=False),
    ev(150, 3, "term", term=2, old=1),
    ev(150, 3, "role", role="candidate", term=2, leader=None),
    ev(300, 2, "crash", durable_term=1, durable_entries=1),
    ev(420, 2, "restart", durable_term=1, durable_entries=1),
    ev(500, None, "heal"),
    ev(510, None, "violation", msg="Election Safety: nodes 1 and 3 both lead term 2"),
]


def run_script(lines, *args):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "run.timeline.jsonl")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([sys.executable, SCRIPT, src] + list(args), capture_output=True,
                           text=True, timeout=60)
        out = os.path.join(d, "run.timeline.html")
        if not os.path.exists(out):
            return p, None
        with open(out, encoding="utf-8") as f:
            return p, f.read()


class Drawing(unittest.TestCase):
    def setUp(self):
        p, self.html = run_script(EVENTS)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.page = Page(self.html)

    def test_one_column_per_node(self):
        cols = self.page.by_class("node-col", "g")
        self.assertEqual([c[1]["data-node"] for c in cols], ["1", "2", "3"])
        heads = [self.page.text(h) for h in self.page.by_class("col-head")]
        self.assertEqual(heads, ["n1", "n2", "n3"])

    def test_role_bands_follow_the_events(self):
        bands = [(b[1]["class"].split()[1], b[1]["data-term"])
                 for b in self.page.by_class("band", "rect")]
        self.assertIn(("role-leader", "1"), bands)
        self.assertIn(("role-candidate", "2"), bands)   # n3, alone
        self.assertIn(("role-crashed", "1"), bands)     # n2
        self.assertNotIn("role-leader", [b for b, t in bands if t == "2"])

    def test_term_labels_where_the_term_changes(self):
        labels = {self.page.text(t) for t in self.page.by_class("term-label")}
        self.assertIn("T1", labels)
        self.assertIn("T2", labels)
        self.assertTrue(any("leader T1" in t for t in labels), labels)

    def test_partition_marks_only_the_isolated_node(self):
        parts = self.page.by_class("partition", "rect")
        self.assertTrue(parts)
        # n3's column starts at LEFT + 2 * CW; every band of the partition is there
        n3 = [r for r in self.page.by_class("band", "rect")
              if r[1]["class"].endswith("role-candidate") and r[1]["data-term"] == "2"][0]
        for r in parts:
            self.assertLess(float(r[1]["x"]), float(n3[1]["x"]))
            self.assertGreater(float(r[1]["x"]) + float(r[1]["width"]), float(n3[1]["x"]))
        self.assertIn("n3 isolated", self.html)

    def test_heal_that_changes_nothing_is_not_drawn(self):
        self.assertIn("network healed", self.html)  # t=500 healed n3's cut
        quiet = [EVENTS[0], ev(0, 2, "heal", to=[1, 3])] + EVENTS[1:]
        p, html = run_script(quiet)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("n2 reconnected", html)
        self.assertIn("network healed", html)

    def test_votes_and_elections_are_marked(self):
        self.assertEqual(len(self.page.by_class("granted", "g")), 1)
        self.assertEqual(len(self.page.by_class("refused", "g")), 1)
        self.assertEqual(len(self.page.by_class("elect", "path")), 2)

    def test_violation_on_top(self):
        boxes = self.page.by_class("violation", "div")
        self.assertEqual(len(boxes), 1)
        self.assertIn("Election Safety: nodes 1 and 3 both lead term 2", self.page.text(boxes[0]))
        self.assertLess(self.html.index("violation-box"), self.html.index("<svg"))
        # the nodes it names are outlined in red; "jump to it" has one target
        self.assertEqual(len(self.page.by_class("violation-node", "rect")), 2)
        self.assertEqual(len([e for e in self.page.elems if e[1].get("id") == "violation"]), 1)

    def test_self_contained(self):
        self.assertFalse([e for e in self.page.elems if e[0] in ("script", "link", "img")])
        self.assertNotIn("http://", self.html.replace('xmlns="http://www.w3.org/2000/svg"', ""))
        self.assertNotIn("https://", self.html)


class Input(unittest.TestCase):
    def test_no_violation_no_box(self):
        p, page = run_script([e for e in EVENTS if '"violation"' not in e])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(Page(page).by_class("violation", "div"))
        self.assertIn("No violation recorded", page)

    def test_bad_line_is_named(self):
        p, page = run_script(EVENTS[:3] + ["{not json"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("line 4", p.stderr)
        self.assertIsNone(page)

    def test_nodes_without_meta_come_from_the_events(self):
        p, page = run_script([e for e in EVENTS if '"meta"' not in e])
        self.assertEqual(p.returncode, 0, p.stderr)
        cols = Page(page).by_class("node-col", "g")
        self.assertEqual([c[1]["data-node"] for c in cols], ["1", "2", "3"])

    def test_long_quiet_stretch_is_compressed(self):
        lines = EVENTS[:8] + [ev(20 + 10 * k, 1, "commit", index=2 + k, term=1)
                              for k in range(1, 2000)]
        p, page = run_script(lines)
        self.assertEqual(p.returncode, 0, p.stderr)
        svg = Page(page).by_class("gap", "g")
        self.assertEqual(len(svg), 1)
        height = sum(int(e[1]["height"]) for e in Page(page).elems if e[0] == "svg")
        self.assertLess(height, 2000)  # 20000 units at 2.4 px each, were it not compressed


    def test_long_busy_run_stays_small(self):
        # an election every 300-700 ms for an hour, a commit every 20 ms
        lines, t = [ev(0, None, "meta", nodes=["a", "b", "c"], unit="ms", election=300)], 0
        for term in range(1, 7000):
            t += 300 + (term * 37) % 400
            c = "abc"[term % 3]
            lines += [ev(t, c, "elect", term=term, pre=False),
                      ev(t + 2, c, "role", role="leader", term=term, leader=c)]
            lines += [ev(t + 20 * k, c, "commit", index=term * 20 + k, term=term)
                      for k in range(1, 15)]
        p, page = run_script(lines)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(len(page), 5_000_000)
        self.assertIn("only t=", page)  # and it says what it left out
        self.assertIn("thinned", page)


# Two stage 5 servers' logs, as node.c and peers.c write them: node 1 wins
# term 1 with node 2's vote, commits, warns about a bad peer; node 2 is
# restarted (a second start line) and pre-votes alone.
LOG1 = """=== kvtest: starting stage5-raft --id 1
2026-11-25T10:00:00.000Z INFO  node 1: restored term 0, vote 0, 0 log entries
2026-11-25T10:00:00.001Z INFO  node 1 of 2: clients on 127.0.0.1:7005, election timeout 400 ms, heartbeat 40 ms
2026-11-25T10:00:00.500Z INFO  node 1: pre-candidate in term 0, leader 0 (0: unknown)
2026-11-25T10:00:00.502Z INFO  node 1: candidate in term 1, leader 0 (0: unknown)
2026-11-25T10:00:00.504Z INFO  node 1: leader in term 1, leader 1 (0: unknown)
2026-11-25T10:00:00.510Z INFO  node 1: commit index 1 (entry of term 1)
2026-11-25T10:00:00.900Z WARN  peer 127.0.0.1:5555: bad frame: empty frame (length 0); closing the link
2026-11-25T10:00:00.950Z DEBUG cannot reach node 2 at 127.0.0.1:17015: connection refused
"""
LOG2 = """2026-11-25T10:00:00.002Z INFO  node 2 of 2: clients on 127.0.0.1:7015, election timeout 400 ms, heartbeat 40 ms
2026-11-25T10:00:00.501Z INFO  node 2: grants its pre-vote to node 1 in term 1
2026-11-25T10:00:00.503Z INFO  node 2: grants its vote to node 1 in term 1
2026-11-25T10:00:00.503Z INFO  node 2: follower in term 1, leader 0 (0: unknown)
2026-11-25T10:00:00.505Z INFO  node 2: follower in term 1, leader 1 (0: unknown)
2026-11-25T10:00:01.000Z INFO  node 2 of 2: clients on 127.0.0.1:7015, election timeout 400 ms, heartbeat 40 ms
2026-11-25T10:00:01.400Z INFO  node 2: pre-candidate in term 1, leader 0 (0: unknown)
2026-11-25T10:00:01.401Z INFO  node 2: refuses its pre-vote to node 1 in term 1
"""


class ServerLogs(unittest.TestCase):
    def draw(self, *extra, logs=(LOG1, LOG2), ids=(None, None)):
        with tempfile.TemporaryDirectory() as d:
            args = []
            for k, (text, i) in enumerate(zip(logs, ids)):
                path = os.path.join(d, "n%d.log" % k)
                with open(path, "w") as f:
                    f.write(text)
                args += ["--log", path if i is None else "%d=%s" % (i, path)]
            out, saved = os.path.join(d, "t.html"), os.path.join(d, "t.jsonl")
            p = subprocess.run([sys.executable, SCRIPT] + list(extra) + args + ["-o", out, "--save-events", saved],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                return p, None, None
            return p, [json.loads(line) for line in read(saved).splitlines()], read(out)

    def test_events_read_from_the_logs(self):
        p, events, page = self.draw()
        self.assertEqual(p.returncode, 0, p.stderr)
        meta, events = events[0], events[1:]
        self.assertEqual((meta["kind"], meta["nodes"], meta["election"], meta["unit"]), ("meta", [1, 2], 400, "ms"))
        # t: ms since the first event, node 1's pre-candidate line at 10:00:00.500
        got = [(e["t"], e["node"], e["kind"]) for e in events]
        self.assertEqual(got[:3], [(0, 1, "elect"), (0, 1, "role"), (1, 2, "vote")])
        self.assertIn({"t": 0, "node": 1, "kind": "elect", "term": 1, "pre": True}, events)
        self.assertIn({"t": 2, "node": 1, "kind": "elect", "term": 1, "pre": False}, events)
        self.assertIn({"t": 2, "node": 1, "kind": "term", "term": 1, "old": 0}, events)
        self.assertIn({"t": 3, "node": 2, "kind": "vote", "for": 1, "granted": True, "pre": False, "term": 1},
                      events)
        self.assertIn({"t": 901, "node": 2, "kind": "vote", "for": 1, "granted": False, "pre": True, "term": 1},
                      events)
        self.assertIn({"t": 10, "node": 1, "kind": "commit", "index": 1, "term": 1}, events)
        # the second start line of node 2's log: a restart (no harness events)
        self.assertIn({"t": 500, "node": 2, "kind": "restart"}, events)
        notes = [e for e in events if e["kind"] == "note"]
        self.assertEqual(len(notes), 1)  # the WARN line; DEBUG and INFO chatter are not notes
        self.assertEqual((notes[0]["node"], notes[0]["level"]), (1, "warn"))
        self.assertIn("bad frame: empty frame", notes[0]["text"])
        ts = [e["t"] for e in events]
        self.assertEqual(ts, sorted(ts))
        doc = Page(page)
        self.assertEqual([c[1]["data-node"] for c in doc.by_class("node-col", "g")], ["1", "2"])
        bands = [(b[1]["class"].split()[1], b[1]["data-term"]) for b in doc.by_class("band", "rect")]
        self.assertIn(("role-leader", "1"), bands)
        self.assertIn(("role-pre-candidate", "1"), bands)
        self.assertTrue(doc.by_class("note", "text"))

    def test_harness_events_are_merged_and_restarts_taken_from_them(self):
        with tempfile.TemporaryDirectory() as d:
            ev = os.path.join(d, "h.jsonl")
            t = calendar.timegm((2026, 11, 25, 10, 0, 0, 0, 0, 0)) * 1000  # the logs' 10:00:00.000Z
            with open(ev, "w") as f:
                f.write(ev_line(0, None, "meta", scenario="by hand", nodes=[1, 2]) + "\n")
                f.write(ev_line(t + 700, 2, "partition", to=[1], both=True) + "\n")
                f.write(ev_line(t + 800, 2, "crash", how="kill -9") + "\n")
                f.write(ev_line(t + 990, 2, "restart") + "\n")
                f.write(ev_line(t + 1200, None, "heal") + "\n")
                f.write(ev_line(t + 1300, None, "note", text="delay 50 ms on every link") + "\n")
            p, events, page = self.draw(ev)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(events[0]["scenario"], "by hand")
        kinds = [(e["t"], e["node"], e["kind"]) for e in events[1:] if e["kind"] in ("partition", "crash",
                                                                                    "restart", "heal", "note")]
        # the harness recorded a crash and a restart: node 2's second start
        # line adds none
        self.assertEqual(kinds, [(200, 2, "partition"), (300, 2, "crash"), (400, 1, "note"), (490, 2, "restart"),
                                 (700, None, "heal"), (800, None, "note")])
        self.assertIn("n2 isolated", page)
        self.assertIn("network healed", page)
        self.assertIn("delay 50 ms on every link", page)
        self.assertTrue(Page(page).by_class("role-crashed", "rect"))

    def test_ids_given_on_the_command_line(self):
        # logs without their start line: the ids come from --log ID=PATH
        bare = [l for l in LOG1.splitlines() if " of 2:" not in l]
        p, events, _ = self.draw(logs=("\n".join(bare) + "\n",), ids=(1,))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([e["node"] for e in events[1:] if e["kind"] == "note"], [1])

    def test_missing_log_is_an_error(self):
        p = subprocess.run([sys.executable, SCRIPT, "--log", "/nonexistent/n1.log"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/n1.log", p.stderr)

    def test_nothing_to_draw_is_a_usage_error(self):
        p = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--log", p.stderr)


def ev_line(t, node, kind, **f):
    return json.dumps(dict(t=t, node=node, kind=kind, **f))


def sim(binary, env, cwd, *args):
    e = dict(os.environ, **env)
    for k in ("SIM_ARTIFACTS", "SIM_TIMELINE", "SIM_SEEDS"):
        if k not in env:
            e.pop(k, None)
    return subprocess.run([binary] + list(args), env=e, cwd=cwd, capture_output=True, text=True,
                          timeout=600)


class Simulation(unittest.TestCase):
    def check_artifacts(self, d, p):
        jsonl = os.path.join(d, "StaleRead-1.timeline.jsonl")
        page = os.path.join(d, "StaleRead-1.timeline.html")
        self.assertTrue(os.path.exists(jsonl), p.stdout)
        self.assertTrue(os.path.exists(page), p.stdout)
        self.assertIn("StaleRead-1.timeline.html", p.stdout)
        out = p.stdout.splitlines()
        replay = [k for k, line in enumerate(out) if line.startswith("replay: SIM_SCENARIO=StaleRead SIM_SEED=1 ")]
        self.assertTrue(replay, p.stdout)
        self.assertTrue(out[replay[0] + 1].startswith("timeline: "), p.stdout)
        events = [json.loads(line) for line in read(jsonl).splitlines()]
        self.assertEqual(events[0]["kind"], "meta")
        self.assertEqual(events[0]["nodes"], [1, 2, 3, 4, 5])
        violations = [e for e in events if e["kind"] == "violation"]
        self.assertEqual(len(violations), 1)
        self.assertTrue(violations[0]["msg"].startswith(BROKEN_WHY))
        ts = [e["t"] for e in events]
        self.assertEqual(ts, sorted(ts))
        kinds = {e["kind"] for e in events}
        for k in ("role", "term", "elect", "vote", "commit", "send", "recv", "partition", "read"):
            self.assertIn(k, kinds)
        doc = Page(read(page))
        self.assertEqual(len(doc.by_class("node-col", "g")), 5)
        box = doc.by_class("violation", "div")
        self.assertEqual(len(box), 1)
        self.assertIn(BROKEN_WHY, doc.text(box[0]))

    def test_failing_run_writes_artifacts_in_SIM_ARTIFACTS(self):
        with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryDirectory() as d:
            art = os.path.join(d, "arts")  # created by the sim
            p = sim(SIM_BROKEN, dict(BROKEN_RUN, SIM_ARTIFACTS=art), cwd)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("FAIL: scenario StaleRead seed 1: " + BROKEN_WHY, p.stdout)
            self.check_artifacts(art, p)
            self.assertEqual(os.listdir(cwd), [])

    def test_failing_run_writes_artifacts_here_by_default(self):
        with tempfile.TemporaryDirectory() as cwd:
            p = sim(SIM_BROKEN, BROKEN_RUN, cwd)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.check_artifacts(cwd, p)

    def test_expected_violation_leaves_no_files(self):
        with tempfile.TemporaryDirectory() as cwd:
            p = sim(SIM_BROKEN, {}, cwd, "--expect-violation", "--quiet", "--scenario",
                    "StaleRead", "--seeds", "1")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("CAUGHT", p.stdout)
            self.assertEqual(os.listdir(cwd), [])

    def test_passing_runs_leave_no_files(self):
        with tempfile.TemporaryDirectory() as cwd:
            p = sim(SIM, {"SIM_SCENARIO": "StaleRead"}, cwd, "--seeds", "3")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(os.listdir(cwd), [])

    def test_timeline_option_records_one_passing_run(self):
        with tempfile.TemporaryDirectory() as cwd:
            path = os.path.join(cwd, "ev.jsonl")
            p = sim(SIM, dict(BROKEN_RUN), cwd, "--timeline", path)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(os.listdir(cwd), ["ev.jsonl"])
            events = [json.loads(line) for line in read(path).splitlines()]
            self.assertFalse([e for e in events if e["kind"] == "violation"])
            leaders = {e["node"] for e in events if e["kind"] == "role" and e["role"] == "leader"}
            self.assertTrue(leaders)
            p, page = run_script(read(path).splitlines())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("No violation recorded", page)

    def test_timeline_needs_one_run(self):
        with tempfile.TemporaryDirectory() as cwd:
            p = sim(SIM, {}, cwd, "--timeline", os.path.join(cwd, "x.jsonl"), "--seeds", "2")
            self.assertEqual(p.returncode, 2)
            self.assertIn("one run", p.stderr)
            self.assertEqual(os.listdir(cwd), [])


if __name__ == "__main__":
    unittest.main()
