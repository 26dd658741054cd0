"""timeline_html.py - draws a timeline_model.Run as one HTML page of inline
SVG (scripts/timeline.py says what the page shows): bands, labels placed
without overlap, pages for long runs, the summary and the legend."""
import bisect
import html
import json
import os

from timeline_model import (COUNTED, Run, TimeMap, cut_nodes, describe_cut, label, node_key,
                            violation_indexes, violation_nodes)

# ---- drawing

ROLE_FILL = {"follower": "#cfe0f3", "pre-candidate": "#fff0a8", "candidate": "#ffb74d",
             "leader": "#43a047", "crashed": "#4a4a4a"}
TERM_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
LEFT = 120        # time axis gutter
CW = 210          # column width
TOP = 8           # room above t0 in each page's picture
VOTE_X, STRIPE_X, BAND_X, BAND_W, LABEL_X = 12, 26, 32, 60, 98
LABEL_H = 11
MAX_HEIGHT = 60000   # pixels, beyond which the scale shrinks, then the start is cut
MARK_BUDGET = 6000   # commit/propose/read marks drawn in full; more are thinned
MAX_SHIFT = 30    # how far a label may move from its event before it is dropped
LABEL_ORDER = {"crash": 0, "elect": 1, "term-label": 2, "restart": 3}  # at one instant

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 20px 20px; color: #222; }
h1 { font-size: 20px; margin: 14px 0 6px; }
h2 { font-size: 16px; margin: 18px 0 4px; }
code { background: #f3f3f3; padding: 1px 4px; }
.violation { background: #fde2e2; border: 2px solid #c62828; padding: 8px 12px; margin: 8px 0;
             max-width: 1100px; }
.violation b { color: #c62828; }
.ok { background: #e6f4ea; border: 2px solid #1a7f37; padding: 6px 12px; margin: 8px 0;
      max-width: 1100px; }
.legend span { display: inline-block; margin: 2px 14px 2px 0; white-space: nowrap; }
.sw { display: inline-block; width: 14px; height: 12px; vertical-align: middle;
      margin-right: 4px; border: 1px solid #555; }
.mk { display: inline-block; width: 16px; text-align: center; font-weight: bold; }
.summary td { padding: 1px 12px 1px 0; vertical-align: top; }
.summary td:first-child { white-space: nowrap; }
.heads { position: sticky; top: 0; background: rgba(255,255,255,0.95); z-index: 2;
         border-bottom: 1px solid #999; height: 26px; }
.col-head { position: absolute; top: 3px; font-weight: bold; font-size: 15px; }
.page { position: relative; }
.pages a { margin-right: 10px; }
svg text { font-family: system-ui, sans-serif; }
"""


def esc(s):
    return html.escape(str(s), quote=True)


def fmt_t(t):
    if float(t).is_integer() or abs(t) >= 1000:
        return "%d" % round(t)
    return "%.1f" % t


def durable(ev):
    """What a crash or restart event says the node had on disk, if it says."""
    if "durable_term" not in ev and "durable_entries" not in ev:
        return ""
    return " (durable: term %s, %s entries)" % (ev.get("durable_term", "?"), ev.get("durable_entries", "?"))


def nice_step(x):
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least x."""
    m = 1
    while True:
        for k in (1, 2, 5):
            if k * m >= x:
                return k * m
        m *= 10


class Labels:
    """Places a column's labels without overlap, most important first."""

    def __init__(self):
        self.taken = []  # sorted (y0, y1)

    def place(self, y):
        for d in [0] + [s * k for k in range(1, MAX_SHIFT // 3 + 1) for s in (3, -3)]:
            y0 = y + d - LABEL_H + 2
            y1 = y0 + LABEL_H
            i = bisect.bisect_left(self.taken, (y0, y1))
            if i > 0 and self.taken[i - 1][1] > y0:
                continue
            if i < len(self.taken) and self.taken[i][0] < y1:
                continue
            self.taken.insert(i, (y0, y1))
            return y + d
        return None


class Drawing:
    def __init__(self, run, scale):
        self.run = run
        self.px = scale / run.election
        self.notes = []  # what was left out to keep the page small, said on the page
        self.tm = self.timemap()
        if self.tm.height > MAX_HEIGHT:  # a long busy run: a smaller scale, fewer pages
            self.px *= max(MAX_HEIGHT / self.tm.height, 0.5)
            self.tm = self.timemap()
            self.notes.append("drawn at %.0f%% of the usual scale (--scale)" % (
                100 * self.px * run.election / scale))
        if self.tm.height > MAX_HEIGHT:  # still too long: only its end, where runs fail
            start = self.tm.t_at(self.tm.height - MAX_HEIGHT)
            self.notes.insert(0, "only t=%s..%s is drawn, the end of the run (--from, --to "
                                 "choose another part)" % (fmt_t(start), fmt_t(run.t1)))
            run._clip(start, run.t1)
            self.tm = self.timemap()
        small = sum(1 for m in run.marks if m[2] in ("commit", "propose", "read"))
        # commit/propose/read marks: a tick at most every thin px, a label every thin * 8
        self.thin = 0
        if small > MARK_BUDGET:
            self.thin = 6
            self.notes.append("%d commit, write and read marks thinned: at most one every "
                              "%d px per node, one label every %d px" % (small, 6, 48))
        self.right = LEFT + CW * len(run.nodes)
        self.width = self.right + 70  # room for the last column's labels
        self.items = []  # (y0, y1, layer, svg)
        self.labels = {n: Labels() for n in run.nodes}
        self.votes = {n: Labels() for n in run.nodes}
        self.violation_y = None
        self._last = {}

    def timemap(self):
        r = self.run
        return TimeMap(r.t0, r.t1, r.notable_times(), self.px, pad=0.3 * r.election,
                       quiet=r.election, gap_px=34)

    def y(self, t):
        return TOP + self.tm.y(t)

    def thinned(self, n, kind, y, what):
        """In a dense run, whether this tick or label is too close to the last one."""
        if not self.thin:
            return False
        gap = self.thin * (8 if what == "label" else 1)
        last = self._last.get((n, kind, what))
        if last is not None and y - last < gap:
            return True
        self._last[(n, kind, what)] = y
        return False

    def x(self, n):
        return LEFT + CW * self.run.col[n]

    def add(self, y0, y1, layer, svg, node=None):
        """One piece of the picture spanning y0..y1; a node's bands (node set)
        are grouped per page into its column's <g class="node-col">."""
        self.items.append((y0, y1, layer, svg, node))

    def draw(self):
        self.grid()
        self.bands()
        self.partitions()
        self.gaps()
        self.term_labels()
        self.marks()
        self.violation_lines()
        return self

    def grid(self):
        right = self.right
        step = nice_step(100 / self.px)
        for k, (ta, tb, ya, yb, comp) in enumerate(self.tm.pieces):
            if comp:
                continue
            ticks = []
            if k == 0 or self.tm.pieces[k - 1][4]:
                ticks.append(ta)  # where drawing resumes after a quiet stretch
            t = (ta // step + 1) * step
            while t <= tb:
                ticks.append(t)
                t += step
            last = -1e9
            for t in ticks:
                yy = self.y(t)
                if yy - last < 30:
                    continue
                last = yy
                self.add(yy, yy, 0,
                         '<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>'
                         '<text x="%d" y="%.1f" font-size="11" fill="#666" '
                         'text-anchor="end">t=%s</text>'
                         % (LEFT - 6, yy, right, yy, LEFT - 10, yy + 4, fmt_t(t)))

    def bands(self):
        for n in self.run.nodes:
            x = self.x(n)
            for t0, t1, role, term, leader in self.run.segments[n]:
                parts = []
                y0, y1 = self.y(t0), self.y(t1)
                h = max(y1 - y0, 0.6)
                tip = "%s: %s, term %s, t=%s..%s%s" % (
                    label(n), role, term, fmt_t(t0), fmt_t(t1),
                    ", believes %s leads" % label(leader) if leader and role != "leader" else "")
                fill = ROLE_FILL.get(role, "#ddd")
                extra = ' stroke="#222" stroke-width="0.5"' if role == "leader" else ""
                patt = ' fill="url(#crashed)"' if role == "crashed" else ' fill="%s"' % fill
                parts.append('<rect class="band role-%s" data-term="%s" x="%d" y="%.1f" '
                             'width="%d" height="%.1f"%s%s><title>%s</title></rect>'
                             % (role, term, x + BAND_X, y0, BAND_W, h, patt, extra, esc(tip)))
                if role != "crashed":
                    parts.append('<rect class="term-stripe" x="%d" y="%.1f" width="6" '
                                 'height="%.1f" fill="%s"><title>term %s</title></rect>'
                                 % (x + STRIPE_X, y0, h, TERM_COLOURS[term % len(TERM_COLOURS)]
                                    if isinstance(term, int) else "#999", term))
                self.add(y0, y0 + h, 1, "".join(parts), n)

    def partitions(self):
        for t0, t1, links in self.run.cuts:
            y0, y1 = self.y(t0), self.y(t1)
            desc = describe_cut(links, self.run.nodes)
            for n in cut_nodes(links, self.run.nodes):
                x = self.x(n)
                self.add(y0, y1, 0.5,
                         '<rect class="partition" x="%d" y="%.1f" width="%d" height="%.1f" '
                         'fill="url(#cut)" stroke="#e65100" stroke-width="1.2" '
                         'stroke-dasharray="4 2"><title>partition t=%s..%s: %s</title></rect>'
                         % (x + 2, y0, CW - 4, max(y1 - y0, 1), fmt_t(t0), fmt_t(t1), esc(desc)))
            self.add(y0, y0 + 12, 4,
                     '<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e65100" '
                     'stroke-width="1.5"/><text class="partition-label" x="%d" y="%.1f" '
                     'font-size="11" fill="#e65100" font-weight="bold">\u2702 %s</text>'
                     % (LEFT - 110, y0, self.right, y0, LEFT - 110, y0 - 3, esc(desc)))
        for t, n, _, ev in self.run.marks:
            if n is None and ev["kind"] == "note":  # the harness's word on the whole run
                y = self.y(t)
                self.add(y, y + 12, 4,
                         '<line class="note-line" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#777" '
                         'stroke-width="1" stroke-dasharray="2 3"/><text class="note" x="%d" y="%.1f" '
                         'font-size="11" fill="#555">\u270e %s<title>t=%s: %s</title></text>'
                         % (LEFT - 110, y, self.right, y, LEFT - 110, y - 3, esc(ev.get("text", "")),
                            fmt_t(t), esc(ev.get("text", ""))))
        healed = [m for m in self.run.marks if m[2] == "heal"]
        for t, n, _, ev in healed:
            y = self.y(t)
            what = "network healed" if n is None else "%s reconnected" % label(n)
            self.add(y, y, 4,
                     '<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2e7d32" '
                     'stroke-width="1.5" stroke-dasharray="6 3"/><text x="%d" y="%.1f" '
                     'font-size="11" fill="#2e7d32" font-weight="bold">\u2695 %s</text>'
                     % (LEFT - 110, y, self.right, y, LEFT - 110, y + 12, esc(what)))

    def gaps(self):
        for ta, tb, ya, yb, comp in self.tm.pieces:
            if not comp:
                continue
            ya += TOP
            yb += TOP
            mid = (ya + yb) / 2
            zig = []
            x = LEFT
            while x < self.right:
                zig.append("%d,%.1f" % (x, mid - 3 if (x // 8) % 2 else mid + 3))
                x += 8
            self.add(ya, yb, 3,
                     '<g class="gap"><rect x="%d" y="%.1f" width="%d" height="%.1f" '
                     'fill="#fff" opacity="0.55"/><polyline points="%s" fill="none" '
                     'stroke="#888" stroke-width="1"/><text x="%d" y="%.1f" font-size="11" '
                     'fill="#555" text-anchor="end">\u22ee %s quiet</text>'
                     '<text x="%d" y="%.1f" font-size="10" fill="#888" text-anchor="end">'
                     't=%s..%s</text><title>%s..%s: no role change, election, crash or '
                     'partition; compressed</title></g>'
                     % (LEFT, ya, self.right - LEFT, yb - ya, " ".join(zig), LEFT - 10,
                        mid, fmt_t(tb - ta) + (" units" if self.run.unit == "sim" else " ms"),
                        LEFT - 10, mid + 11, fmt_t(ta), fmt_t(tb), fmt_t(ta), fmt_t(tb)))

    def label(self, n, t, pri, text, colour, cls, tip, bold=False):
        self._pending.append((pri, t, n, text, colour, cls, tip, bold))

    def term_labels(self):
        self._pending = []
        for n in self.run.nodes:
            prev_term, prev_role = None, None
            for t0, t1, role, term, leader in self.run.segments[n]:
                y0, y1 = self.y(t0), self.y(t1)
                fresh = term != prev_term or prev_role == "crashed"
                if role != "crashed" and (fresh or prev_role is None) and y1 - y0 >= 13:
                    self.add(y0, y0 + 12, 5,
                             '<text class="term-label" x="%d" y="%.1f" font-size="11" '
                             'font-weight="bold" fill="%s">T%s</text>'
                             % (self.x(n) + BAND_X + 4, y0 + 11,
                                "#fff" if role == "leader" else "#222", term))
                if role == "leader" and prev_role != "leader":
                    self.label(n, t0, 5, "\u2605 leader T%s" % term, "#1b5e20", "term-label",
                               "%s becomes leader of term %s at t=%s" % (label(n), term,
                                                                          fmt_t(t0)), True)
                elif role != "crashed" and term != prev_term and prev_term is not None:
                    self.label(n, t0, 3, "T%s %s" % (term, role), "#333", "term-label",
                               "%s moves to term %s (%s) at t=%s" % (label(n), term, role,
                                                                      fmt_t(t0)))
                prev_term, prev_role = (term if role != "crashed" else prev_term), role

    def marks(self):
        named = violation_indexes(self.run)
        for v in self.run.violations:  # keep labels off the violation's red line
            if self.run.t0 <= v["t"] <= self.run.t1:
                vy = self.y(v["t"])
                for lab in self.labels.values():
                    bisect.insort(lab.taken, (vy - 3, vy + 3))
        for t, n, kind, ev in self.run.marks:
            if n is None or n not in self.run.col:
                continue
            x, y = self.x(n), self.y(t)
            if kind == "elect":
                pre = bool(ev.get("pre"))
                what = "pre-vote" if pre else "election"
                self.add(y - 5, y + 5, 6,
                         '<path class="elect" d="M%d %.1f l-7 -5 v10 z" fill="%s" stroke="#6d4c00">'
                         '<title>%s starts %s for term %s at t=%s</title></path>'
                         % (x + BAND_X - 1, y, "#fff0a8" if pre else "#ff9800", label(n), what,
                            ev.get("term"), fmt_t(t)))
                self.label(n, t, 4, "%s T%s" % (what, ev.get("term")), "#8a5a00", "elect",
                           "%s starts %s for term %s" % (label(n), what, ev.get("term")))
            elif kind == "vote":
                granted, pre = bool(ev.get("granted")), bool(ev.get("pre"))
                cand = node_key(ev.get("for"))
                yy = self.votes[n].place(y)
                if yy is None:
                    continue
                tip = "%s %s %s%s for term %s at t=%s" % (
                    label(n), "grants" if granted else "refuses", label(cand),
                    " a pre-vote" if pre else " its vote", ev.get("term"), fmt_t(t))
                fill = ("#c8e6c9" if pre else "#2e7d32") if granted else "#fff"
                stroke = "#2e7d32" if granted else "#c62828"
                txt = "#fff" if granted and not pre else ("#1b5e20" if granted else "#c62828")
                self.add(yy - 6, yy + 6, 6,
                         '<g class="vote %s"><circle cx="%d" cy="%.1f" r="6" fill="%s" '
                         'stroke="%s"%s/><text x="%d" y="%.1f" font-size="9" fill="%s" '
                         'text-anchor="middle" font-weight="bold">%s</text><title>%s</title></g>'
                         % ("granted" if granted else "refused", x + VOTE_X, yy, fill, stroke,
                            ' stroke-dasharray="2 1.5"' if pre else "", x + VOTE_X, yy + 3, txt,
                            esc(cand if granted else "\u00d7"), esc(tip)))
            elif kind == "commit":
                idx = ev.get("index") if isinstance(ev.get("index"), int) else 0
                # the first commit anywhere that covers a named index
                hit = sorted(i for i in named if i <= idx)
                named -= set(hit)
                colour = "#c62828" if hit else "#0d47a1"
                if not hit and self.thinned(n, kind, y, "tick"):
                    continue
                self.add(y, y, 6, '<line class="commit" x1="%d" y1="%.1f" x2="%d" y2="%.1f" '
                         'stroke="%s" stroke-width="%d"/>'
                         % (x + BAND_X + BAND_W - 10, y, x + BAND_X + BAND_W + 4, y, colour,
                            3 if hit else 2))
                text = "commit %s" % idx
                if hit:
                    text += " \u25c0 violation"
                elif self.thinned(n, kind, y, "label"):
                    continue
                self.label(n, t, 7 if hit else 1, text, colour, "commit",
                           "%s: commit index -> %s (entry of term %s) at t=%s"
                           % (label(n), idx, ev.get("term"), fmt_t(t)), bool(hit))
            elif kind == "propose":
                if self.thinned(n, kind, y, "tick"):
                    continue
                self.add(y, y, 6, '<circle class="propose" cx="%d" cy="%.1f" r="2.5" '
                         'fill="#6a1b9a"/>' % (x + BAND_X + BAND_W + 2, y))
                if self.thinned(n, kind, y, "label"):
                    continue
                self.label(n, t, 0, "propose #%s" % ev.get("index"), "#6a1b9a", "propose",
                           "%s accepts a write at index %s, term %s (value %s)"
                           % (label(n), ev.get("index"), ev.get("term"), ev.get("value")))
            elif kind == "read":
                if self.thinned(n, kind, y, "label"):
                    continue
                done = ev.get("phase") == "done"
                text = ("read #%s served at index %s" % (ev.get("id"), ev.get("index"))
                        if done else "read #%s asked" % ev.get("id"))
                self.label(n, t, 2, text, "#00695c", "read", json.dumps(
                    {k: v for k, v in ev.items() if not k.startswith("_")}))
            elif kind == "note":
                text = str(ev.get("text", ""))
                colour = "#b71c1c" if ev.get("level") == "error" else "#6d4c41"
                self.add(y - 3, y + 3, 6, '<circle class="note-mark" cx="%d" cy="%.1f" r="3" fill="%s">'
                         '<title>%s</title></circle>' % (x + BAND_X + BAND_W + 2, y, colour, esc(text)))
                self.label(n, t, 2, text if len(text) <= 40 else text[:38] + "\u2026", colour, "note",
                           "%s at t=%s: %s" % (label(n), fmt_t(t), text))
            elif kind == "crash":
                self.label(n, t, 6, "\u2716 %s" % ev.get("how", "crash"), "#b71c1c", "crash",
                           "%s %s at t=%s%s" % (label(n), ev.get("how", "crashes"), fmt_t(t),
                                                durable(ev)), True)
            elif kind == "restart":
                self.label(n, t, 6, "\u21bb restart", "#1565c0", "restart",
                           "%s restarts at t=%s%s" % (label(n), fmt_t(t), durable(ev)), True)
        # Which labels fit: the most important first, each within MAX_SHIFT of
        # its event. Then the kept ones are laid out again in time order, so
        # that "election" reads above "leader" however they were chosen.
        kept = {n: [] for n in self.run.nodes}
        for k, p in enumerate(sorted(self._pending, key=lambda p: (-p[0], p[1]))):
            if self.labels[p[2]].place(self.y(p[1]) + 4) is not None:
                kept[p[2]].append(p)
        avoid = [self.y(v["t"]) for v in self.run.violations
                 if self.run.t0 <= v["t"] <= self.run.t1]
        for n, labels in kept.items():
            bottom = -1e9
            for pri, t, _, text, colour, cls, tip, bold in sorted(
                    labels, key=lambda p: (p[1], LABEL_ORDER.get(p[5], 9))):
                y = self.y(t)
                yy = max(y + 4, bottom + LABEL_H)
                for vy in avoid:  # off the violation's red line
                    if yy - LABEL_H + 2 < vy + 3 and yy + 2 > vy - 3:
                        yy = vy + 3 + LABEL_H - 2
                bottom = yy
                x = self.x(n) + LABEL_X
                lead = ""
                if abs(yy - 4 - y) > 5:
                    lead = ('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" '
                            'stroke-width="0.6"/>' % (x - 6, y, x - 1, yy - 4, colour))
                self.add(min(y, yy) - 10, max(y, yy) + 2, 9,
                         '%s<text class="%s" x="%d" y="%.1f" font-size="10.5" fill="%s"%s>%s'
                         '<title>%s</title></text>'
                         % (lead, cls, x, yy, colour, ' font-weight="bold"' if bold else "",
                            esc(text), esc(tip)))

    def violation_lines(self):
        for k, ev in enumerate(self.run.violations):
            if not self.run.t0 <= ev["t"] <= self.run.t1:
                continue
            y = self.y(ev["t"])
            for n in violation_nodes(ev, self.run.nodes):
                self.add(y - 30, y + 4, 8,
                         '<rect class="violation-node" x="%d" y="%.1f" width="%d" height="30" '
                         'fill="none" stroke="#c62828" stroke-width="3"><title>%s is named by '
                         'the violation</title></rect>'
                         % (self.x(n) + BAND_X - 4, y - 28, BAND_W + 8, label(n)))
            if self.violation_y is None:
                self.violation_y = y
            self.add(y - 14, y + 4, 8,
                     '<g class="violation-mark"><rect x="%d" y="%.1f" width="%d" height="4" '
                     'fill="#c62828"/><text x="%d" y="%.1f" font-size="12" font-weight="bold" '
                     'fill="#c62828">VIOLATION t=%s</text><title>%s</title></g>'
                     % (LEFT - 110, y - 2,
                        self.right - (LEFT - 110), LEFT - 110, y - 5, fmt_t(ev["t"]),
                        esc(ev.get("msg", ""))))

    def pages(self, page_px):
        """Splits the picture into pages at compressed stretches where possible."""
        total = self.tm.height + TOP + 20
        cuts = [0.0]
        breaks = sorted((TOP + (ya + yb) / 2) for _, _, ya, yb, c in self.tm.pieces if c)
        while total - cuts[-1] > page_px:
            limit = cuts[-1] + page_px
            ok = [b for b in breaks if cuts[-1] + page_px / 3 < b <= limit]
            cuts.append(ok[-1] if ok else limit)
        cuts.append(total)
        return list(zip(cuts, cuts[1:]))

    def svg(self, y0, y1):
        body, cols = [], {n: [] for n in self.run.nodes}
        for a, b, layer, svg, node in self.items:  # sorted by layer in render()
            if b < y0 - 20 or a > y1 + 20:
                continue
            if node is None:
                body.append(svg)
            else:
                if not cols[node]:
                    body.append(cols[node])  # the column's group, filled below
                cols[node].append(svg)
        out = []
        for piece in body:
            if isinstance(piece, list):
                node = next(n for n, v in cols.items() if v is piece)
                out.append('<g class="node-col" data-node="%s">%s</g>'
                           % (esc(node), "".join(piece)))
            else:
                out.append(piece)
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'viewBox="0 %.1f %d %.1f">%s</svg>'
                % (self.width, y1 - y0, y0, self.width, y1 - y0, "".join(out)))


# Patterns shared by every page's picture, defined once in the document.
DEFS = ('<svg width="0" height="0" style="position:absolute"><defs>'
        '<pattern id="crashed" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#4a4a4a"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern>'
        '<pattern id="cut" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(-45)"><rect width="8" height="8" '
        'fill="rgba(255,152,0,0.10)"/><line x1="0" y1="0" x2="0" y2="8" '
        'stroke="rgba(230,81,0,0.35)" stroke-width="2"/></pattern></defs></svg>')


def icon(body):
    return ('<svg width="16" height="14" viewBox="0 0 16 14" style="vertical-align:middle;'
            'margin-right:4px">%s</svg>' % body)


def legend():
    sw = "".join('<span><i class="sw" style="background:%s"></i>%s</span>' % (ROLE_FILL[r], r)
                 for r in ("follower", "pre-candidate", "candidate", "leader"))
    marks = [
        ('<path d="M12 7 l-9 -6 v12 z" fill="#ff9800" stroke="#6d4c00"/>',
         "election starts (pale: pre-vote round)"),
        ('<circle cx="8" cy="7" r="6" fill="#2e7d32" stroke="#2e7d32"/><text x="8" y="10" '
         'font-size="9" fill="#fff" text-anchor="middle" font-weight="bold">4</text>',
         "vote granted to n4 (pale, dashed: pre-vote)"),
        ('<circle cx="8" cy="7" r="6" fill="#fff" stroke="#c62828"/><text x="8" y="10" '
         'font-size="9" fill="#c62828" text-anchor="middle" font-weight="bold">\u00d7</text>',
         "vote refused"),
        ('<line x1="1" y1="7" x2="15" y2="7" stroke="#0d47a1" stroke-width="2"/>',
         "commit index advances"),
        ('<circle cx="8" cy="7" r="3" fill="#6a1b9a"/>', "write proposed"),
    ]
    lines = [
        ('<rect x="1" y="1" width="14" height="12" fill="url(#lg-cut)" stroke="#e65100" '
         'stroke-dasharray="3 2"/><defs><pattern id="lg-cut" width="5" height="5" '
         'patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="5" '
         'height="5" fill="#fff3e0"/><line x1="0" y1="0" x2="0" y2="5" stroke="#f2a56b" '
         'stroke-width="2"/></pattern></defs>',
         "partitioned: the node has a cut link (orange line: the cut starts; green dashed: "
         "healed)"),
        ('<polyline points="1,9 5,5 9,9 13,5" fill="none" stroke="#888"/>',
         "quiet stretch, compressed"),
        ('<rect x="0" y="5" width="16" height="4" fill="#c62828"/>', "safety violation"),
    ]
    return ('<div class="legend">' + sw +
            '<span><i class="sw" style="background:repeating-linear-gradient(45deg,#4a4a4a 0 3px,'
            '#888 3px 5px)"></i>crashed</span>'
            '<span><i class="sw" style="background:linear-gradient(90deg,%s,%s,%s)"></i>'
            'term: the stripe left of each band, one colour per term, its number where it '
            'changes</span><br>' % (TERM_COLOURS[1], TERM_COLOURS[2], TERM_COLOURS[3]) +
            "".join("<span>%s%s</span>" % (icon(i), t) for i, t in marks) + "<br>" +
            "".join("<span>%s%s</span>" % (icon(i), t) for i, t in lines) + "</div>")


def summary(run):
    rows = []
    m = run.meta
    if m.get("scenario") is not None:
        rows.append(("run", "scenario %s%s%s" % (m.get("scenario"), "" if m.get("seed") is None
                                                 else ", seed %s" % m.get("seed"),
                     ", " + os.path.basename(str(m["binary"])) if m.get("binary") else "")))
    if m.get("replay"):
        rows.append(("replay", "<code>%s</code>" % esc(m["replay"])))
    rows.append(("time", "t=%s..%s (%s), election timeout %s" % (
        fmt_t(run.t0), fmt_t(run.t1), "simulated units" if run.unit == "sim" else "ms",
        fmt_t(run.election)) + (" - only part drawn, of t=%s..%s" % (
            fmt_t(run.window[0]), fmt_t(run.window[1])) if run.window else "")))
    lead = []
    terms = sorted(run.leaders)
    for k, term in enumerate(terms):
        ns = run.leaders[term]
        s = "T%s %s" % (term, "+".join(label(n) for n in ns))
        if len(ns) > 1:  # two leaders in one term: always shown
            lead.append('<b style="color:#c62828">%s</b>' % esc(s))
        elif len(terms) <= 60 or k < 10 or k >= len(terms) - 30:
            lead.append(esc(s))
        elif k == 10:
            lead.append("\u2026 (%d terms in all) \u2026" % len(terms))
    rows.append(("leaders", ", ".join(lead) or "none"))
    c = run.counts
    rows.append(("events (whole run)", ", ".join("%s %d" % (k, c[k]) for k in COUNTED if c.get(k))))
    return ('<table class="summary">' + "".join(
        "<tr><td><b>%s</b></td><td>%s</td></tr>" % (k, v) for k, v in rows) + "</table>")


def render(meta, events, title=None, scale=240, page_px=9000, t_from=None, t_to=None):
    run = Run(meta, events, t_from, t_to)
    d = Drawing(run, scale).draw()
    if title is None:
        title = "Raft timeline"
        if meta.get("scenario") is not None:
            title += ": %s" % meta["scenario"]
            if meta.get("seed") is not None:
                title += " seed %s" % meta["seed"]
    out = ['<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s</title>'
           '<style>%s</style></head><body>' % (esc(title), CSS), "<h1>%s</h1>" % esc(title)]
    if run.violations:
        v = run.violations[0]
        out.append('<div class="violation" id="violation-box"><b>VIOLATION at t=%s:</b> %s '
                   '<a href="#violation">(jump to it)</a>%s</div>'
                   % (fmt_t(v["t"]), esc(v.get("msg", "")),
                      "".join("<br><b>also at t=%s:</b> %s" % (fmt_t(w["t"]), esc(w.get("msg")))
                              for w in run.violations[1:])))
    else:
        out.append('<div class="ok">No violation recorded in this run.</div>')
    out.append(summary(run))
    if d.notes:
        out.append("<p><b>A long run:</b> %s.</p>" % esc("; ".join(d.notes)))
    out.append(legend())
    pages = d.pages(page_px)
    if len(pages) > 1:
        out.append('<div class="pages">pages: ' + "".join(
            '<a href="#page%d">%d</a>' % (i + 1, i + 1) for i in range(len(pages))) + "</div>")
    heads = "".join('<span class="col-head" style="left:%dpx">%s</span>'
                    % (LEFT + CW * i + BAND_X, esc(label(n))) for i, n in enumerate(run.nodes))
    out.append('<div class="heads" style="width:%dpx;position:sticky">%s</div>' % (d.width, heads))
    d.items.sort(key=lambda i: i[2])
    out.append(DEFS)
    for i, (y0, y1) in enumerate(pages):
        if len(pages) > 1:
            out.append('<h2 id="page%d">page %d of %d</h2>' % (i + 1, i + 1, len(pages)))
        anchor = ""
        if d.violation_y is not None and y0 <= d.violation_y < y1:
            # the "jump to it" target, a little above the red line
            anchor = ('<div id="violation" style="position:absolute;top:%dpx"></div>'
                      % max(d.violation_y - y0 - 200, 0))
        out.append('<div class="page">%s%s</div>' % (anchor, d.svg(y0, y1)))
    out.append("</body></html>\n")
    return "".join(out)
