# linearizability_html.py - a self-contained HTML page showing a checked
# history (linearizability.py): one row per client, each operation a bar
# from its call to its return, with what it sent and what it got back.
#
# The time axis is compressed, as Porcupine's visualiser does: only the
# order of call and return events matters to linearizability, so each
# distinct event time gets a column just wide enough for the labels of the
# bars that end there. Real times are in each bar's tooltip.
# A failing key is drawn first: the longest linearizable order the search
# found is numbered (green), joined by a line through one possible set of
# linearization points, and the operation that cannot be placed is red.
# No script, no external file: the page opens anywhere, offline.
import html
import json
import math

from linearizability import describe_outcome, _show, apply, step

ROW_H = 46
BAR_H = 30
LEFT = 110
CHAR_W = 7.2
PAD = 14
WINDOW_OPS = 15         # prefix operations shown before the failure, in the focused view
ALL_KEYS_LIMIT = 3000
TABLE_ROWS = 20         # rows of the order shown before the failure   # the all-keys view is left out of larger histories

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #222; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 22px 0 6px; }
.verdict-ok { color: #1a7f37; } .verdict-fail { color: #c62828; } .verdict-unknown { color: #a06000; }
table.keys td, table.keys th, table.order td, table.order th { padding: 2px 10px; text-align: left; }
table.order tr.blocker td { background: #fde2e2; font-weight: bold; }
table.order td.num { text-align: right; color: #555; }
.explain { background: #fff4f4; border-left: 4px solid #c62828; padding: 8px 12px; max-width: 1100px; }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 14px; height: 12px; vertical-align: middle; margin-right: 4px; border: 1px solid #555; }
.scroll { overflow-x: auto; border: 1px solid #ccc; margin: 6px 0 12px; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: bold; }
code, .mono { font-family: ui-monospace, monospace; }
svg text { font: 12px ui-monospace, monospace; }
svg .client { font: bold 12px system-ui, sans-serif; }
"""

# fill, stroke per role of a bar
STYLE = {
    "placed": ("#c8ecd0", "#1a7f37"),
    "blocker": ("#f8c4c4", "#c62828"),
    "unplaced": ("#e8e8e8", "#777"),
    "ok": ("#d6e6fa", "#2f5f9e"),
    "other": ("#f3f3f3", "#bbb"),
}


def _esc(s):
    return html.escape(str(s), quote=True)


def _label(o):
    return o.describe(with_output=False), "\u2192 " + describe_outcome(o.status, o.output)


def _timeline(ops, roles, numbers, points, title_id, band=None):
    """An SVG of ops; roles: op id -> STYLE key; numbers: op id -> order
    position; points: ordered (op id, time) linearization points."""
    clients = sorted({o.client for o in ops}, key=lambda c: (len(c), c))
    row = {c: i for i, c in enumerate(clients)}
    # Columns are (time, 0) for calls and (time, 1) for returns: an operation
    # that returns at the instant another is called is drawn overlapping it
    # (the checker counts them as concurrent), and one that takes no
    # measurable time still gets a bar.
    times = sorted({(o.call, 0) for o in ops} | {(o.end, 1) for o in ops if o.end != math.inf}
                   | {(t, 0) for _, t in points})
    rank = {t: i for i, t in enumerate(times)}
    call_col = lambda o: rank[(o.call, 0)]  # noqa: E731
    ret_col = lambda o: rank[(o.end, 1)]  # noqa: E731
    # Each column as far right as the widest label ending there needs.
    need = {}
    for o in ops:
        if o.end == math.inf:
            continue
        w = max(len(s) for s in _label(o)) * CHAR_W + PAD + (22 if o.id in numbers else 0)
        need.setdefault(ret_col(o), []).append((call_col(o), w))
    x = []
    for r in range(len(times)):
        pos = LEFT + 10 if r == 0 else x[r - 1] + 18
        for start, w in need.get(r, ()):
            pos = max(pos, x[start] + w)
        x.append(pos)
    unknown_w = max([max(len(s) for s in _label(o)) * CHAR_W + PAD + 30
                     for o in ops if o.end == math.inf] or [0])
    right = (x[-1] if x else LEFT) + max(unknown_w, 40)
    width = int(right + 20)
    height = len(clients) * ROW_H + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
           'aria-labelledby="%s" class="timeline">' % (width, height, title_id)]
    out.append('<title id="%s">history timeline, one row per client</title>' % title_id)
    out.append('<defs><pattern id="unk-%s" width="8" height="8" patternUnits="userSpaceOnUse" '
               'patternTransform="rotate(45)"><rect width="4" height="8" fill="#fff3c4"/>'
               '<rect x="4" width="4" height="8" fill="#fffbe8"/></pattern></defs>' % title_id)
    if band is not None and band.end != math.inf:
        bx0, bx1 = x[call_col(band)], x[ret_col(band)]
        out.append('<rect class="band" x="%.1f" y="4" width="%.1f" height="%d" fill="#c62828" '
                   'opacity="0.07"/>' % (bx0, bx1 - bx0, height - 8))
        for bx in (bx0, bx1):
            out.append('<line x1="%.1f" y1="4" x2="%.1f" y2="%d" stroke="#c62828" stroke-width="1" '
                       'stroke-dasharray="4,3" opacity="0.6"/>' % (bx, bx, height - 4))
    for c in clients:
        y = 20 + row[c] * ROW_H
        out.append('<g class="row" data-client="%s">' % _esc(c))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>' % (
            LEFT, y + ROW_H - 4, width, y + ROW_H - 4))
        out.append('<text class="client" x="8" y="%d">client %s</text>' % (y + BAR_H // 2 + 4, _esc(c)))
        out.append('</g>')
    for o in ops:
        y = 20 + row[o.client] * ROW_H
        x0 = x[call_col(o)]
        unknown = o.end == math.inf
        x1 = right if unknown else x[ret_col(o)]
        role = roles.get(o.id, "other")
        fill, stroke = STYLE[role]
        if unknown and role not in ("blocker",):
            fill = "url(#unk-%s)" % title_id
        tip = "op #%d  client %s  %s\ncall %d ns\nreturn %s" % (
            o.id, o.client, o.describe(), o.call,
            "unknown (treated as never)" if unknown else "%d ns (+%d)" % (o.ret, o.ret - o.call))
        if unknown and o.op == "get":
            tip += "\n(a read without an answer constrains nothing: the search leaves it out)"
        if o.note:
            tip += "\nnote: %s" % o.note
        cls = "op %s%s" % (role, " unknown" if unknown else "")
        out.append('<g class="%s" data-op="%d" data-key="%s">' % (cls, o.id, _esc(o.key)))
        out.append('<title>%s</title>' % _esc(tip))
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="3" fill="%s" stroke="%s" '
                   'stroke-width="%s"%s/>' % (x0, y, max(x1 - x0, 4), BAR_H, fill, stroke,
                                              "3" if role == "blocker" else "1.2",
                                              ' stroke-dasharray="5,3"' if unknown else ""))
        tx = x0 + 5
        if o.id in numbers:
            out.append('<circle cx="%.1f" cy="%d" r="9" fill="%s"/>' % (x0 + 12, y + BAR_H // 2, stroke))
            out.append('<text x="%.1f" y="%d" fill="#fff" text-anchor="middle" '
                       'style="font-size:10px">%d</text>' % (x0 + 12, y + BAR_H // 2 + 4, numbers[o.id]))
            tx += 20
        top, bottom = _label(o)
        if role == "other":
            out.append('<text x="%.1f" y="%d" fill="#999">%s</text>' % (tx, y + 12, _esc(o.key + ": " + top)))
        else:
            out.append('<text x="%.1f" y="%d">%s</text>' % (tx, y + 12, _esc(top)))
        out.append('<text x="%.1f" y="%d" fill="%s">%s</text>' % (
            tx, y + 26, "#c62828" if role == "blocker" else "#333", _esc(bottom)))
        out.append('</g>')
    if len(points) > 1:
        by_id = {o.id: o for o in ops}
        pts = []
        for oid, t in points:
            o = by_id[oid]
            pts.append((x[rank[(t, 0)]], 20 + row[o.client] * ROW_H + BAR_H + 3))
        out.append('<polyline class="linearization" points="%s" fill="none" stroke="#1a7f37" '
                   'stroke-width="1.5" stroke-dasharray="2,2" opacity="0.8"/>' %
                   " ".join("%.1f,%d" % p for p in pts))
        for px, py in pts:
            out.append('<circle cx="%.1f" cy="%d" r="3" fill="#1a7f37"/>' % (px, py))
    out.append('</svg>')
    return "\n".join(out)


def _points(order):
    """One possible time for each op of a linearization: the earliest
    moment at or after its call and after the previous op's point."""
    pts, t = [], -math.inf
    for o in order:
        t = max(t, o.call)
        pts.append((o.id, t))
    return pts


def _order_table(kr, last=None):
    """The order as a table; with last, only its last rows (the ones that
    matter to the failure) and a line saying how many are left out."""
    rows = ['<table class="order"><tr><th>#</th><th>client</th><th>operation</th>'
            '<th>answer seen</th><th>register after</th><th>op</th></tr>']
    reg = None
    skip = 0 if last is None else max(0, len(kr.order) - last)
    if skip:
        rows.append('<tr><td></td><td colspan="5">&hellip; %d earlier operations (all of them below)</td></tr>'
                    % skip)
    for i, o in enumerate(kr.order, 1):
        reg = step(reg, o)[1]
        if i <= skip:
            continue
        rows.append('<tr><td class="num">%d</td><td>%s</td><td class="mono">%s</td><td class="mono">%s</td>'
                    '<td class="mono">%s</td><td class="num">#%d</td></tr>' % (
                        i, _esc(o.client), _esc(o.describe(False)),
                        _esc(describe_outcome(o.status, o.output)), _esc(_show(reg)), o.id))
    if kr.blocker is not None:
        b = kr.blocker
        rows.append('<tr class="blocker"><td class="num">\u2717</td><td>%s</td><td class="mono">%s</td>'
                    '<td class="mono">%s</td><td class="mono">model: %s</td><td class="num">#%d</td></tr>' % (
                        _esc(b.client), _esc(b.describe(False)), _esc(describe_outcome(b.status, b.output)),
                        _esc(describe_outcome(*kr.expected)), b.id))
    rows.append('</table>')
    return "\n".join(rows)


def _failure_section(kr, n):
    b = kr.blocker
    placed = {o.id for o in kr.order}
    roles = {o.id: ("placed" if o.id in placed else "unplaced") for o in kr.ops}
    roles[b.id] = "blocker"
    numbers = {o.id: i for i, o in enumerate(kr.order, 1)}
    # Focus on the failure: the last few placed ops and everything called
    # before the blocker returned that the search still had to place.
    tail = kr.order[-WINDOW_OPS:]
    lo = min([o.call for o in tail] + [b.call])
    shown = [o for o in kr.ops if o.call <= b.ret and o.end >= lo
             and (o.id not in placed or o in tail)]
    points = _points(tail)
    out = ['<section class="failing-key" data-key="%s">' % _esc(kr.key),
           '<h2 class="verdict-fail">Key %s is not linearizable</h2>' % _esc(_show(kr.key)),
           '<div class="explain"><p>The checker found no order of the %d operations on this key that '
           'respects real time (an operation that returned before another was called comes first) and '
           'explains every answer. Here is an order that works up to the failure: %d operations, '
           'numbered in green. After them the register holds <code>%s</code>.</p>'
           '<p><b>Operation #%d cannot come next</b> (red): client %s sent <code>%s</code> and saw '
           '<code>%s</code>, but at that point the model answers <code>%s</code>. The search also '
           'tried every other order of the operations that may precede it; none explains '
           'all the answers. The red band marks its call and return.</p></div>' % (
               len(kr.ops), len(kr.order), _esc(_show(kr.state)), b.id, _esc(b.client),
               _esc(b.describe(False)), _esc(describe_outcome(b.status, b.output)),
               _esc(describe_outcome(*kr.expected)))]
    note = ""
    if len(shown) < len(kr.ops):
        note = (" Showing the last %d operations of the order and every operation concurrent with the "
                "failure (%d of %d); the whole key is below." % (len(tail), len(shown), len(kr.ops)))
    out.append('<p>Timeline of key %s, one row per client; time runs left to right (compressed: '
               'only the order of events is to scale).%s</p>' % (_esc(_show(kr.key)), note))
    out.append('<div class="scroll">%s</div>' % _timeline(shown, roles, numbers, points, "focus%d" % n, b))
    out.append('<h3>An order that works up to the failure, then the operation that cannot follow</h3>')
    out.append(_order_table(kr, last=TABLE_ROWS))
    if len(kr.order) > TABLE_ROWS:
        out.append('<details><summary>The whole order (%d operations)</summary>%s</details>' % (
            len(kr.order), _order_table(kr)))
    if len(shown) < len(kr.ops):
        out.append('<details><summary>Whole history of key %s (%d operations)</summary><div class="scroll">%s'
                   '</div></details>' % (_esc(_show(kr.key)), len(kr.ops),
                                         _timeline(kr.ops, roles, numbers, _points(kr.order), "full%d" % n, b)))
    out.append('</section>')
    return "\n".join(out)


def _other_key_section(kr, n):
    roles = {o.id: "ok" for o in kr.ops}
    numbers = {o.id: i for i, o in enumerate(kr.order, 1)} if kr.verdict == "ok" else {}
    points = _points(kr.order) if kr.verdict == "ok" else []
    what = {"ok": "linearizable; numbers give one valid order",
            "unknown": "not decided: the search ran out of time"}[kr.verdict]
    return ('<details class="key" data-key="%s"><summary>Key %s: %s (%d operations)</summary>'
            '<div class="scroll">%s</div></details>' % (
                _esc(kr.key), _esc(_show(kr.key)), what, len(kr.ops),
                _timeline(kr.ops, roles, numbers, points, "key%d" % n)))


def render(result, title="Linearizability check"):
    """The page, as a string."""
    head = {"ok": "Linearizable", "fail": "NOT linearizable",
            "unknown": "Unknown: the search timed out"}[result.verdict]
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<title>%s: %s</title>' % (_esc(title), head), '<style>%s</style></head><body>' % CSS,
           '<h1 class="verdict-%s" id="verdict">%s</h1>' % (result.verdict, head),
           '<p>%d operations by %d clients on %d keys, checked in %.2f s. Each key is checked on its own '
           '(a map of independent registers is linearizable when every register is).</p>' % (
               len(result.history), len({o.client for o in result.history}), len(result.keys),
               result.seconds)]
    out.append('<p class="legend"><span><i class="swatch" style="background:#c8ecd0"></i>placed in the '
               'order (number = position)</span><span><i class="swatch" style="background:#f8c4c4"></i>'
               'cannot be placed</span><span><i class="swatch" style="background:#e8e8e8"></i>not placed '
               'yet</span><span><i class="swatch" style="background:#fff3c4"></i>outcome unknown (may or '
               'may not have happened; the bar runs to the end)</span><span><i class="swatch" '
               'style="background:#d6e6fa"></i>a key that is linearizable</span><span><i class="swatch" '
               'style="border:0;border-bottom:2px dotted #1a7f37"></i>one moment at which each numbered '
               'operation can take effect</span></p>')
    out.append('<table class="keys"><tr><th>key</th><th>operations</th><th>verdict</th><th>search time</th></tr>')
    rank = {"fail": 0, "unknown": 1, "ok": 2}
    keys = sorted(result.keys.values(), key=lambda k: (rank[k.verdict], k.key))
    for k in keys:
        out.append('<tr><td class="mono">%s</td><td>%d</td><td class="verdict-%s">%s</td><td>%.3f s</td></tr>' % (
            _esc(_show(k.key)), len(k.ops), k.verdict,
            {"ok": "linearizable", "fail": "NOT linearizable", "unknown": "unknown (timed out)"}[k.verdict],
            k.seconds))
    out.append('</table>')
    for n, k in enumerate(keys):
        out.append(_failure_section(k, n) if k.verdict == "fail" else _other_key_section(k, n))
    if len(result.history) <= ALL_KEYS_LIMIT and len(result.keys) > 1:
        roles, numbers = {o.id: "other" for o in result.history}, {}
        for k in result.failing():
            placed = {o.id for o in k.order}
            roles.update({o.id: ("placed" if o.id in placed else "unplaced") for o in k.ops})
            roles[k.blocker.id] = "blocker"
            numbers.update({o.id: i for i, o in enumerate(k.order, 1)})
        out.append('<details class="all-keys"><summary>All keys together (%d operations; other keys in '
                   'grey)</summary><div class="scroll">%s</div></details>' % (
                       len(result.history), _timeline(result.history, roles, numbers, [], "all")))
    out.append('<p style="color:#777">Hover a bar for its op number, real call and return times '
               '(monotonic ns) and notes.</p></body></html>')
    return "\n".join(out)


def write_html(result, path, title="Linearizability check"):
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(result, title))
