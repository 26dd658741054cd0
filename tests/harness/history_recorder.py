# history_recorder.py - records what concurrent test clients did, for the
# linearizability checker (linearizability.py).
#
# Each client thread (or process) wraps every request:
#     p = rec.begin(client_id, "incr", "k")   # just before sending
#     ... send, wait ...
#     p.ok(7)                # a definite answer (SET: "OK", GET: str or None)
#     p.error("ERR not an integer")  # a definite error reply from the store
#     p.unknown("timeout")   # sent, but no answer: it may or may not apply
#     p.not_sent()           # refused before sending: it certainly did not apply
# Times come from time.monotonic_ns(), which on Linux is one clock for every
# process on the machine, so histories from several client processes can be
# concatenated. An error that does not come from the store's model (NOTLEADER
# or TRYAGAIN after the request was sent, a dropped connection) must be
# recorded as unknown, not as error: the write may still commit.
import json
import threading
import time


class Pending:
    """An operation that has been called and not yet returned."""

    def __init__(self, rec, client, op, key, value):
        self._rec = rec
        self._done = False
        self.entry = {"client": client, "op": op, "key": key, "call": time.monotonic_ns()}
        if value is not None:
            self.entry["value"] = value

    def _claim(self):
        """True for the one caller that finishes this operation."""
        with self._rec._lock:
            if self._done:
                return False
            self._done = True
            return True

    def _finish(self, status, output, ret, note, closing=False):
        if not self._claim():
            if closing:
                return  # its client finished it while the recorder closed
            raise RuntimeError("operation %r finished twice" % (self.entry,))
        e = self.entry
        e["return"] = ret
        e["output"] = output
        e["status"] = status
        if note is not None:
            e["note"] = note
        self._rec._record(self, e)

    def ok(self, output):
        self._finish("ok", output, time.monotonic_ns(), None)

    def error(self, message=None):
        self._finish("error", message, time.monotonic_ns(), None)

    def unknown(self, note=None):
        # The give-up time is kept for the HTML view; the checker treats the
        # return of an unknown operation as infinitely late.
        self._finish("unknown", None, time.monotonic_ns(), note)

    def not_sent(self):
        if not self._claim():
            raise RuntimeError("operation %r finished twice" % (self.entry,))
        self._rec._record(self, None)


class HistoryRecorder:
    """Thread-safe list of finished operations, optionally streamed to a
    JSON-lines file as they finish (so a crashed test still leaves a history)."""

    def __init__(self, path=None):
        self._lock = threading.Lock()
        self._ops = []
        self._pending = set()
        self._file = open(path, "w", encoding="utf-8") if path else None
        self.path = path
        self.not_sent_count = 0

    def begin(self, client, op, key, value=None):
        p = Pending(self, client, op, key, value)
        with self._lock:
            self._pending.add(p)
        return p

    def _record(self, p, entry):
        with self._lock:
            self._pending.discard(p)
            if entry is None:
                self.not_sent_count += 1
                return
            self._ops.append(entry)
            if self._file:
                self._file.write(json.dumps(entry) + "\n")
                self._file.flush()

    def ops(self):
        """The finished operations so far, in the order they finished."""
        with self._lock:
            return list(self._ops)

    def close(self):
        """Operations still pending (a client thread died mid-call) are
        recorded as unknown: they were sent and may have applied."""
        with self._lock:
            left = list(self._pending)
        for p in left:
            p._finish("unknown", None, time.monotonic_ns(),
                      "still pending when the recorder closed", closing=True)
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
