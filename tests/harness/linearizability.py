#!/usr/bin/python3
# linearizability.py - checks that a recorded key-value history is linearizable.
#
# Stage 5 onwards: concurrent clients record GET/SET/INCR/APPEND operations
# (history_recorder.py) while the harness kills, partitions and restarts
# nodes; this module decides whether some single order of those operations,
# consistent with real time, explains every answer the clients saw.
#
# The method is Porcupine's (Athalye), itself Lowe's refinement of the
# Wing & Gong search, with P-compositionality (Horn & Kroening):
#  * The model is a map of independent registers, so a history is
#    linearizable exactly when each key's sub-history is; each key is
#    searched alone, which turns one huge search into several small ones.
#  * Per key, call and return events sit in one time-ordered linked list.
#    The search walks it from the head: at a call it tries to linearize that
#    operation now (the model must accept its output); if it can, the call
#    and its return are lifted out of the list and the walk restarts at the
#    head. Reaching a return means the operation it closes has not been
#    linearized although it finished: backtrack (pop the last choice, put its
#    events back, try the next call after it).
#  * Memoisation: the pair (set of linearized operations, model state) is
#    remembered; reaching a pair already seen cannot succeed where it failed
#    before, so that branch is cut. This is what makes the search practical.
#    Two further cuts for unknown operations are explained in _check_key.
# Operations whose outcome is unknown (timeout, dropped connection) return at
# "infinity": they may be linearized anywhere after their call, including
# after everything else, which is the same as not having happened.
#
# Command line: linearizability.py HISTORY.jsonl [--html OUT] [--timeout S]
# exits 0 (linearizable), 1 (not linearizable), 2 (unknown: timed out, or a
# bad history file).
import argparse
import json
import math
import os
import sys
import time

OPS = ("get", "set", "incr", "append")
STATUSES = ("ok", "error", "unknown")
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class HistoryError(ValueError):
    """The history is malformed; no verdict can be given."""


class Op:
    """One client operation. ret is None when the outcome is unknown."""

    __slots__ = ("id", "client", "op", "key", "value", "call", "ret", "output", "status", "note")

    def __init__(self, id, client, op, key, value, call, ret, output, status, note=None):
        self.id = id
        self.client = client
        self.op = op
        self.key = key
        self.value = value
        self.call = call
        self.ret = ret
        self.output = output
        self.status = status
        self.note = note

    @property
    def end(self):
        return math.inf if self.status == "unknown" else self.ret

    def describe(self, with_output=True):
        """GET x -> '3' style text, as the report and the HTML view show it."""
        text = self.op.upper() + " " + _show(self.key)
        if self.op in ("set", "append"):
            text += " " + _show(self.value)
        if not with_output:
            return text
        return text + " -> " + describe_outcome(self.status, self.output)

    def to_dict(self):
        d = {"client": self.client, "op": self.op, "key": self.key, "call": self.call,
             "return": self.ret, "output": self.output, "status": self.status}
        if self.op in ("set", "append"):
            d["value"] = self.value
        if self.note is not None:
            d["note"] = self.note
        return d


def _show(v):
    return "nil" if v is None else json.dumps(v, ensure_ascii=False)


def describe_outcome(status, output):
    if status == "unknown":
        return "? (unknown)"
    if status == "error":
        return "error" + (" " + _show(output) if output is not None else "")
    return _show(output)


# ---------------------------------------------------------------- the model
# One register per key, holding a string or None (missing), as the server's
# store does. apply() is the sequential specification: what a single, correct
# server would answer and leave behind.

def _redis_int(s):
    """The integer a string holds under Redis's strict rules, else None."""
    if s is None:
        return 0
    if not s or len(s) > 20:
        return None
    body = s[1:] if s[0] == "-" else s
    if not body.isdigit() or not body.isascii():
        return None
    if body[0] == "0" and (len(body) > 1 or s[0] == "-"):
        return None  # leading zeros and "-0" are not integers to Redis
    n = int(s)
    return n if INT64_MIN <= n <= INT64_MAX else None


def byte_len(s):
    return len(s.encode("utf-8", "surrogateescape"))


def apply(state, op, value=None):
    """(new state, status, output) of op on a register holding state."""
    if op == "get":
        return state, "ok", state
    if op == "set":
        return value, "ok", "OK"
    if op == "incr":
        n = _redis_int(state)
        if n is None or n == INT64_MAX:
            return state, "error", None
        return str(n + 1), "ok", n + 1
    if op == "append":
        new = (state or "") + value
        return new, "ok", byte_len(new)
    raise HistoryError("unknown op %r" % op)


def step(state, op):
    """Can op be linearized on state? Returns (accepted, new state)."""
    new, status, output = apply(state, op.op, op.value)
    if op.status == "unknown":
        return True, new
    if op.status != status:
        return False, state
    # An error's message is not part of the model: only that it failed.
    return (status == "error" or op.output == output), new


# ---------------------------------------------------------------- input

def _parse_op(i, d):
    if not isinstance(d, dict):
        raise HistoryError("operation %d: not a JSON object" % i)
    for field in ("client", "op", "key", "call", "status"):
        if field not in d:
            raise HistoryError("operation %d: missing %r" % (i, field))
    op, status = d["op"], d["status"]
    if op not in OPS:
        raise HistoryError("operation %d: op %r is not one of %s" % (i, op, "|".join(OPS)))
    if status not in STATUSES:
        raise HistoryError("operation %d: status %r is not one of %s" % (i, status, "|".join(STATUSES)))
    call, ret = d["call"], d.get("return")
    if not isinstance(call, int) or isinstance(call, bool):
        raise HistoryError("operation %d: call must be an integer (ns)" % i)
    if ret is not None and (not isinstance(ret, int) or isinstance(ret, bool)):
        raise HistoryError("operation %d: return must be an integer (ns) or null" % i)
    if status != "unknown" and ret is None:
        raise HistoryError("operation %d: a %s operation needs a return time" % (i, status))
    if ret is not None and ret < call:
        raise HistoryError("operation %d: returns before it is called" % i)
    if not isinstance(d["key"], str):
        raise HistoryError("operation %d: key must be a string" % i)
    value = d.get("value")
    if op in ("set", "append") and not isinstance(value, str):
        raise HistoryError("operation %d: %s needs a string value" % (i, op))
    output = d.get("output")
    if status == "ok":
        want = {"get": (str, type(None)), "set": (str,), "incr": (int,), "append": (int,)}[op]
        if not isinstance(output, want) or isinstance(output, bool):
            raise HistoryError("operation %d: output %r does not fit a successful %s" % (i, output, op))
    return Op(i, str(d["client"]), op, d["key"], value if op in ("set", "append") else None,
              call, ret, output, status, d.get("note"))


def parse_history(items):
    """Ops from an iterable of dicts (or Ops, renumbered in order)."""
    ops = []
    for i, d in enumerate(items):
        if isinstance(d, Op):
            d = d.to_dict()
        ops.append(_parse_op(i, d))
    return ops


def load_history(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise HistoryError("%s:%d: not JSON: %s" % (path, lineno, e)) from None
    return parse_history(items)


# ---------------------------------------------------------------- the search

class KeyResult:
    """The verdict for one key. When linearizable, order is one valid order.
    On failure, order is the longest linearizable prefix the search built,
    less any operations at its end that need not precede blocker (unknown
    outcomes, or called after blocker was); blocker is the operation that
    cannot follow it and expected what the model answers there instead."""

    def __init__(self, key, verdict, ops, order, blocker=None, state=None, expected=None,
                 seconds=0.0, longest=0):
        self.key = key
        self.verdict = verdict          # "ok" | "fail" | "unknown"
        self.ops = ops                  # Ops on this key, history order
        self.order = order              # list of Op: linearization / prefix
        self.blocker = blocker          # Op or None
        self.state = state              # register after order (fail only)
        self.expected = expected        # (status, output) the model gives blocker
        self.seconds = seconds
        self.longest = longest          # length of the longest prefix before trimming

    def explain(self):
        if self.verdict == "ok":
            return "key %s: linearizable (%d operations)" % (_show(self.key), len(self.ops))
        if self.verdict == "unknown":
            return "key %s: unknown, the search ran out of time (%d operations)" % (
                _show(self.key), len(self.ops))
        lines = ["key %s: NOT linearizable (%d operations)" % (_show(self.key), len(self.ops)),
                 "  a linearizable order of %d operations (the longest the search built had %d):" % (
                     len(self.order), self.longest)]
        shown = self.order if len(self.order) <= 12 else self.order[-12:]
        if len(shown) < len(self.order):
            lines.append("    ... %d earlier operations" % (len(self.order) - len(shown)))
        for o in shown:
            lines.append("    %s   [client %s, op #%d]" % (o.describe(), o.client, o.id))
        b = self.blocker
        lines.append("  after it the register holds %s, so op #%d cannot follow: client %s saw" % (
            _show(self.state), b.id, b.client))
        lines.append("    %s   where the model answers %s." % (b.describe(), describe_outcome(*self.expected)))
        lines.append("  The search ruled out every other order as well.")
        return "\n".join(lines)


class Result:
    def __init__(self, history, keys, seconds):
        self.history = history
        self.keys = keys                # key -> KeyResult
        self.seconds = seconds
        verdicts = {k.verdict for k in keys.values()}
        self.verdict = "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "ok"

    @property
    def ok(self):
        return self.verdict == "ok"

    def failing(self):
        return [k for k in self.keys.values() if k.verdict == "fail"]

    def summary(self):
        head = {"ok": "linearizable", "fail": "NOT linearizable",
                "unknown": "unknown (timed out)"}[self.verdict]
        lines = ["%s: %d operations, %d keys, %.2f s" % (head, len(self.history), len(self.keys),
                                                        self.seconds)]
        order = sorted(self.keys.values(), key=lambda k: ({"fail": 0, "unknown": 1, "ok": 2}[k.verdict], k.key))
        lines += [k.explain() for k in order]
        return "\n".join(lines)


def _check_key(key, ops, deadline):
    """Porcupine's search over one key's operations."""
    start = time.monotonic()
    # A read whose answer never arrived constrains nothing and changes
    # nothing: it can always go last. Leaving it out shrinks the search.
    live = [o for o in ops if not (o.op == "get" and o.status == "unknown")]
    # On a key that only sees GET and SET, an unknown SET whose value no
    # completed GET returned can be left out too: in any order that places
    # it, the operations between it and the next SET would be GETs
    # returning its value, so there are none, and without it every answer
    # stays the same. Fault runs leave many such writes (sent to a leader
    # that was then killed or deposed), and each one left in doubles the
    # work of every dead end the search meets. INCR and APPEND would carry
    # the value into their answers, so a key with either keeps them all.
    if all(o.op in ("get", "set") for o in live):
        read = {o.output for o in live if o.op == "get" and o.status == "ok"}
        live = [o for o in live if not (o.op == "set" and o.status == "unknown" and o.value not in read)]
    n = len(live)
    # Events: (time, 0 for call / 1 for return, op index). Calls sort before
    # returns at equal times, so operations that touch count as concurrent:
    # clock granularity must never produce a false alarm.
    events = []
    for i, o in enumerate(live):
        events.append((o.call, 0, i))
        events.append((o.end, 1, i))
    events.sort()
    # Doubly linked list over nodes 1..2n; 0 is the head, 2n+1 the tail.
    size = 2 * n + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    op_of = [0] * size
    match = [0] * size
    call_node = [0] * n
    for pos, (_, kind, i) in enumerate(events, 1):
        op_of[pos] = i
        if kind == 0:
            is_call[pos] = True
            call_node[i] = pos
        else:
            match[call_node[i]] = pos
    head, tail = 0, size - 1

    def lift(c):
        for x in (c, match[c]):
            nxt[prv[x]] = nxt[x]
            prv[nxt[x]] = prv[x]

    def unlift(c):
        for x in (match[c], c):
            nxt[prv[x]] = x
            prv[nxt[x]] = x

    # Unknown operations never block anything (their returns are at the
    # end) and can always be placed last. Three sound cuts follow, without
    # which a failing search tries every subset of them:
    #  * laziness: at each step definite operations are tried first (pass
    #    0), unknown ones only after those failed (pass 1), so each state is
    #    first explored with as few unknown operations used as possible;
    #  * subsumption: a state reached with fewer unknown operations used can
    #    do all that it can do with more, so if (placed definite ops, state)
    #    failed with unknown set U, it fails with any superset of U;
    #  * twins: among unplaced unknown operations that do the same thing
    #    and have all been called, only the first needs trying.
    twin = [(o.op, o.value) if o.status == "unknown" else None for o in live]
    state = None
    definite = 0                # bits of placed definite operations
    unknown = 0                 # bits of placed unknown operations
    stack = []                  # (call node, state before it, pass)
    seen = {}                   # (definite, state) -> unknown sets tried
    best, best_blocker = [], None
    # Done once every definite operation is placed: the unknown ones left
    # can all go last (and the subsumption cut would refuse to place them).
    full = 0
    for i, o in enumerate(live):
        if twin[i] is None:
            full |= 1 << i
    entry = nxt[head]
    phase = 0
    steps = 0
    while definite != full:
        steps += 1
        if steps & 1023 == 0 and time.monotonic() > deadline:
            return KeyResult(key, "unknown", ops, [], seconds=time.monotonic() - start)
        if is_call[entry]:
            i = op_of[entry]
            if (twin[i] is None) == (phase == 1):
                entry = nxt[entry]      # not this pass's kind
                continue
            if phase == 1:
                x = prv[entry]
                while x != head and twin[op_of[x]] != twin[i]:
                    x = prv[x]
                if x != head:           # an earlier twin is still unplaced
                    entry = nxt[entry]
                    continue
            accepted, new_state = step(state, live[i])
            if accepted:
                if phase == 0:
                    d, u = definite | (1 << i), unknown
                else:
                    d, u = definite, unknown | (1 << i)
                tried = seen.setdefault((d, new_state), [])
                if not any(m & ~u == 0 for m in tried):
                    tried.append(u)
                    stack.append((entry, state, phase))
                    state, definite, unknown = new_state, d, u
                    lift(entry)
                    entry, phase = nxt[head], 0
                    continue
            entry = nxt[entry]
        elif phase == 0:
            entry, phase = nxt[head], 1
        else:
            # The op this return closes was never placed: this branch is dead.
            if best_blocker is None or len(stack) > len(best):
                best = [op_of[c] for c, _, _ in stack]
                best_blocker = op_of[entry]
            if not stack:
                break
            entry, state, phase = stack.pop()
            definite &= ~(1 << op_of[entry])
            unknown &= ~(1 << op_of[entry])
            unlift(entry)
            entry = nxt[entry]
    seconds = time.monotonic() - start
    if definite == full:
        order = [live[op_of[c]] for c, _, _ in stack]
        placed = {o.id for o in order}
        order += [o for o in live if o.id not in placed]
        return KeyResult(key, "ok", ops, order, seconds=seconds)
    prefix = [live[i] for i in best]
    blocker = live[best_blocker]
    longest = len(prefix)
    # Operations at the end of the prefix that did not have to come before
    # the blocker (called after it, or never known to happen) only blur the
    # illustration; leaving them out keeps the prefix linearizable.
    while prefix and (prefix[-1].call > blocker.call or prefix[-1].status == "unknown"):
        prefix.pop()
    reg = None
    for o in prefix:
        reg = step(reg, o)[1]
    _, status, output = apply(reg, blocker.op, blocker.value)
    return KeyResult(key, "fail", ops, prefix, blocker, reg, (status, output), seconds, longest)


def check(history, timeout=60.0):
    """Checks a history: a list of dicts in the JSON-lines format, or of Ops,
    or a path to a .jsonl file. Returns a Result whose verdict is "ok",
    "fail" or "unknown" (the time budget of `timeout` seconds ran out before
    some key was decided and no key failed). Raises HistoryError on bad input."""
    if isinstance(history, (str, os.PathLike)):
        ops = load_history(history)
    else:
        ops = parse_history(history)
    start = time.monotonic()
    deadline = start + timeout
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    keys = {}
    # Small keys first: a hard key then cannot starve the easy ones of time.
    for key in sorted(by_key, key=lambda k: (len(by_key[k]), k)):
        keys[key] = _check_key(key, by_key[key], deadline)
    return Result(ops, keys, time.monotonic() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a recorded key-value history for linearizability.")
    ap.add_argument("history", help="JSON lines, one operation per line")
    ap.add_argument("--html", help="write an HTML view here (default on failure: HISTORY.html)")
    ap.add_argument("--timeout", type=float, default=60.0, help="search budget in seconds (default 60)")
    args = ap.parse_args(argv)
    try:
        result = check(args.history, args.timeout)
    except (HistoryError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print(result.summary())
    html = args.html
    if html is None and result.verdict == "fail":
        html = os.path.splitext(args.history)[0] + ".html"
    if html:
        from linearizability_html import write_html
        write_html(result, html)
        print("HTML view: %s" % os.path.abspath(html))
    return {"ok": 0, "fail": 1, "unknown": 2}[result.verdict]


if __name__ == "__main__":
    sys.exit(main())
