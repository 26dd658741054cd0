# server.py - the processes under test: a Server started on a free loopback
# port with its own temp dir and log, stopped, killed or restarted by the
# tests, and checked for sanitizer reports on every stop; run_binary for a
# run to completion (flags, --help).
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from .env import SERVER_ARGS, SERVER_BIN, START_TIMEOUT, STOP_TIMEOUT
from .ports import accepts_connections, free_port, listens_in, port_is_free
from .resp import Conn, parse_info
from .sanitizers import assert_no_sanitizer_reports, sanitizer_env, tail
from .wait import wait_for


def run_binary(args, binary=None, timeout=20.0, stdin=None):
    """Run the binary to completion (for flag tests): returns CompletedProcess
    with text stdout/stderr, after checking neither holds a sanitizer report."""
    cmd = [binary or SERVER_BIN] + list(args)
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=sanitizer_env())
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    assert_no_sanitizer_reports(p.stdout + p.stderr, "%s" % " ".join(cmd))
    return p


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies (a ctest
    timeout kills it without running its cleanups), so no server outlives
    its test. The signal follows the thread that started the server: start
    servers from the test's main thread, as every suite does."""
    import ctypes
    import signal as _signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(_signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Server:
    """One server process on a free loopback port, output in a log file.

    start() and stop() may alternate: a restarted server keeps its temp dir
    (so data directories survive) and its port. Every stop checks the log for
    sanitizer reports. close() stops the process if needed and removes the
    temp dir; it runs from the context manager and from unittest cleanups."""

    def __init__(self, args=(), binary=None, env_args=True, port=None, bind="127.0.0.1", env=None,
                 port_flag=True):
        self.binary = binary or SERVER_BIN
        if not self.binary:
            raise unittest.SkipTest("KV_SERVER_BIN is not set")
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("server binary %r is not executable" % self.binary)
        self.tmp = tempfile.mkdtemp(prefix="kvtest-")
        self.args = [a.replace("{tmp}", self.tmp) for a in args]
        self.env_args = [a.replace("{tmp}", self.tmp) for a in shlex.split(SERVER_ARGS)] if env_args else []
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port()
        # port_flag=False: start without --port, to test the default (then
        # port must say where the server is expected to listen).
        self.port_flag = port_flag
        self.bind = bind
        self.env = env
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.returncode = None

    # -- lifecycle --

    def command_line(self):
        cmd = [self.binary]
        if self.port_flag:
            cmd += ["--port", str(self.port)]
        if self.bind is not None:
            cmd += ["--bind", self.bind]
        return cmd + self.env_args + self.args

    def start(self, timeout=START_TIMEOUT):
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("server already running")
        for attempt in range(5):
            if attempt > 0 and not self.fixed_port:
                self.port = free_port()
            if self._start_once(timeout):
                return self
            # Lost the race for the port to another process: pick another.
            if self.fixed_port or "in use" not in self.log().lower():
                break
        raise AssertionError("server exited with code %s before accepting connections:\n%s\n--- log ---\n%s"
                             % (self.returncode, " ".join(self.command_line()), tail(self.log())))

    def _start_once(self, timeout):
        logf = open(self.log_path, "ab")
        try:
            logf.write(b"=== kvtest: starting %s\n" % " ".join(self.command_line()).encode())
            logf.flush()
            self.proc = subprocess.Popen(self.command_line(), stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=sanitizer_env(self.env),
                                         preexec_fn=_die_with_parent)
        finally:
            logf.close()
        self.returncode = None
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                assert_no_sanitizer_reports(self.log())
                return False
            # The listener must be ours: another process that took the port
            # also accepts connections, while ours is about to fail to bind.
            if accepts_connections(self.port) and listens_in(self.proc.pid, self.port):
                return True
            if time.monotonic() >= deadline:
                self.kill9()
                raise AssertionError("server did not accept connections on port %d within %.0f s\n--- log ---\n%s"
                                     % (self.port, timeout, tail(self.log())))
            time.sleep(0.01)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Wait for the process to exit by itself; returns the exit code
        (negative: killed by that signal) after the sanitizer check."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise AssertionError("server did not exit within %.1f s (killed)\n--- log ---\n%s"
                                 % (timeout, tail(self.log())))
        self.proc = None
        self.returncode = rc
        assert_no_sanitizer_reports(self.log())
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal the server and wait for it to exit; returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill9(self):
        """Crash the server (SIGKILL): no chance to flush or clean up."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self.proc = None
        self.returncode = rc
        assert_no_sanitizer_reports(self.log())
        # A child the server forked (stage 2's compaction) holds a copy of the
        # listening socket from fork() until it closes its inherited
        # descriptors, its first act. A restart probing the port meanwhile
        # would find the dead server's backlog, not the new server.
        wait_for(lambda: port_is_free(self.port, reuse_addr=True), timeout=10,
                 message="port %d released by the killed server and its children" % self.port)
        return rc

    def close(self):
        """Stop (SIGTERM, must exit 0) if running; remove the temp dir."""
        try:
            if self.proc is not None:
                rc = self.stop()
                if rc != 0:
                    raise AssertionError("server exited with code %s on SIGTERM\n--- log ---\n%s"
                                         % (rc, tail(self.log())))
        finally:
            if self.proc is not None:  # stop() raised before reaping: never leak a process
                self.proc.kill()
                self.proc.wait()
                self.proc = None
            if not os.environ.get("KV_KEEP_TMP"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- inspection --

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def connect(self, **kw):
        return Conn(self.port, **kw)

    def info(self):
        with self.connect() as c:
            reply = c.command("INFO")
        if not isinstance(reply, bytes):
            raise AssertionError("INFO replied %r" % (reply,))
        return parse_info(reply)
