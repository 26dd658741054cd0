# sanitizers.py - the memory checks every process the tests run must pass:
# the environment a sanitizer build runs under, and the scan of a process's
# output for ASan, UBSan, LeakSanitizer and valgrind findings.
import os

# Sanitizer reports we refuse to ignore. A report does not always change the
# exit code (UBSan, leaks at exit under some options), so the log is the truth.
# VALGRIND-ERROR-BEGIN is what a KV_VALGRIND build's server wrapper prints
# around each memcheck finding (tests/CMakeLists.txt).
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "VALGRIND-ERROR-BEGIN")


def sanitizer_lines(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


class SanitizerReport(Exception):
    """A sanitizer or valgrind finding in a process's output. Not an
    AssertionError on purpose: a test that expects a server to fail (with
    assertRaises(AssertionError)) must still fail on a memory error."""


def assert_no_sanitizer_reports(text, what="server"):
    bad = sanitizer_lines(text)
    if bad:
        raise SanitizerReport("%s output contains sanitizer reports:\n%s\n--- full output ---\n%s"
                              % (what, "\n".join(bad), tail(text)))


def tail(text, lines=60):
    parts = text.splitlines()
    if len(parts) > lines:
        parts = ["... (%d lines cut)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join(parts)


def sanitizer_env(env=None):
    """Environment for a sanitizer build: report everything, keep going on
    UBSan so one report does not hide the next, print stacks."""
    env = dict(os.environ if env is None else env)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env
