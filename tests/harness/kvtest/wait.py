# wait.py - polling with a deadline, the one way tests synchronise with a
# server (never a bare sleep).
import time

from .resp import RespProtocolError


def wait_for(predicate, timeout=5.0, interval=0.01, message="condition"):
    """Poll predicate() until it returns a true value; return that value.
    The way to synchronise with the server: never a bare sleep."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, AssertionError, RespProtocolError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1f s waiting for %s%s" % (timeout, message, extra))
        time.sleep(interval)
