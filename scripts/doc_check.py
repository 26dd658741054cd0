#!/usr/bin/python3
"""doc_check.py - runs the commands the course tells people to type, and
checks that they still work and still print what the text says.

The convention (also described in notes/00-introduction.md, "Runnable
examples"): only fenced blocks whose info string carries the word
`doc-check` are run.

  ```sh doc-check        shell commands, one per line (a trailing \\ continues
                         the line); every one must exit 0.
  ```console doc-check   a transcript: "$ command" lines, each followed by the
                         output it must print. Two kinds of command take the
                         lines after them as what a person types:
                         "$ nc HOST PORT" (or telnet): inline requests, each
                         followed by the reply as nc shows it;
                         "$ .../kvcli [flags]" without a command: lines
                         "HOST:PORT> input", each followed by its output.
  ```text doc-check-log  lines that the servers started in this section must
                         have logged, in this order (other lines may come
                         between them): a server's lines after what earlier
                         log blocks matched in its log, one server's after
                         another's in the order they were started.

In expected output, "..." inside a line matches any text (timestamps, pids,
rates), and a line that is only "..." matches any number of lines.

How blocks run: all runnable blocks under one heading form a session (a
heading followed by the line "<!-- doc-check: continues the section above -->"
continues the session before it, for a walkthrough split into subsections),
run in
order by one bash (so `kill %1` finds the job a block before started), with
stdout and stderr on a pseudo-terminal, as a person sees them (redis-cli and
kvcli decorate their output only at a terminal). Each session gets a scratch
directory as its working directory and $HOME, where build/bin/ holds the
binaries of the build being checked (--bin-dir) and scripts/ is the
workbook's own; "/tmp/" in the text means a tmp/ inside the scratch
directory, and the documented ports are replaced by free ports, in commands
and in expected output alike: the client ports 7001-7099 and stage 4's peer
ports 17001-17099, each the same free port everywhere in its session
(servers started without --port or --peer-port get the replacement of
their default port; a stage 5 node started with --id N --cluster SPEC
listens on the ports of SPEC's entry N). A server
started with `&`, or alone on its line without it (as if in another
terminal), runs in the background with its log kept for doc-check-log
blocks; the check first waits for its port to be free, then for it to accept
connections. `make build` is taken as done (the binaries exist); any other
`make` fails. At the end of a session every server still running gets
SIGTERM and must exit 0, and no output may hold a sanitizer report; then
anything left of the session is killed.

Usage: doc_check.py --bin-dir build/bin [--root DIR] [-v] [FILE.md ...]
Exit status: 0 all blocks pass, 1 a block failed, 2 usage or setup error.
"""
import argparse
import glob
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TAG_RUN = "doc-check"
TAG_LOG = "doc-check-log"
DOC_PORT = re.compile(r"\b(1?70[0-9][0-9])\b")  # 7001-7099, 17001-17099
CONTINUES = "<!-- doc-check: continues the section above -->"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "VALGRIND-ERROR-BEGIN")
MARKER = re.compile(rb"\x1eDOCCHECK (\d+) (\d*)\x1e\r?\n")
PROMPT = re.compile(r"^(\S+:\d+)> ?(.*)$")


class CheckFailed(Exception):
    """One command or expectation did not hold; the message says which."""


# ---------------------------------------------------------------------------
# Reading the markdown


class Block:
    def __init__(self, path, line, kind, lines):
        self.path, self.line, self.kind, self.lines = path, line, kind, lines

    def where(self, offset=0):
        return "%s:%d" % (self.path, self.line + offset)


def parse_markdown(path):
    """Returns [(heading, [Block])] for the sections that hold runnable blocks."""
    sections = []
    heading, blocks = "(top)", []
    fence = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        if fence is None:
            m = re.match(r"^( *)(`{3,})(.*)$", line)
            if m:
                indent = m.group(1)
                words = m.group(3).split()
                kind = None
                if TAG_LOG in words:
                    kind = "log"
                elif TAG_RUN in words:
                    kind = "console" if words and words[0] == "console" else "sh"
                fence = (m.group(2), kind, no, [], indent)
            elif line.startswith("#"):
                if blocks:
                    sections.append((heading, blocks))
                heading, blocks = line.lstrip("#").strip(), []
            elif line.strip() == CONTINUES and not blocks and sections:
                before, blocks = sections.pop()
                heading = before + " + " + heading
        elif line.strip() == fence[0]:
            if fence[1]:
                blocks.append(Block(path, fence[2] + 1, fence[1], fence[3]))
            fence = None
        else:  # a fence inside a list item is indented, and so is its text
            fence[3].append(line[len(fence[4]):] if line.startswith(fence[4]) else line)
    if blocks:
        sections.append((heading, blocks))
    return sections


def strip_comment(line):
    """The command without a trailing shell comment (a # that starts a word,
    outside quotes)."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def shell_words(cmd):
    """(words, has_operators) of a comment-free command line."""
    lex = shlex.shlex(cmd, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        toks = list(lex)
    except ValueError:
        return [], True
    ops = [t for t in toks if t and all(ch in "();<>|&" for ch in t)]
    return [t for t in toks if t not in ops], bool(ops)


# ---------------------------------------------------------------------------
# Matching expected output


def line_pattern(line):
    return ".*".join(re.escape(part) for part in line.split("..."))


def block_pattern(expected_lines):
    parts = []
    for line in expected_lines:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(line_pattern(line.rstrip()) + r"\n")
    return re.compile("".join(parts))


# The shell's own notice that a background job died ("bash: line 4:  3701
# Killed  build/bin/stage2-wal ..."), printed whenever bash next looks at its
# jobs: after a `kill -9 %1` it can land in a later command's output. It is
# the shell talking, not the program under test, so it is not compared.
JOB_NOTICE = re.compile(r"^bash: line \d+: +\d+ (Killed|Terminated|Done|Exit \d+)\b.*$")


def normalise(text):
    lines = text.replace("\r\n", "\n").split("\n")
    lines = [l for l in lines if not JOB_NOTICE.match(l)]
    if lines and lines[-1] == "":
        lines.pop()
    return "".join(l.rstrip() + "\n" for l in lines)


def matches(expected_lines, actual_text):
    return block_pattern(expected_lines).fullmatch(normalise(actual_text)) is not None


def show(label, text):
    body = text if text.endswith("\n") or not text else text + "\n"
    return "--- %s ---\n%s" % (label, body or "(nothing)\n")


# ---------------------------------------------------------------------------
# A session: one bash, one scratch directory, the servers it starts


class Session:
    def __init__(self, root, bin_dir, ports, verbose, log_timeout):
        self.verbose = verbose
        self.log_timeout = log_timeout
        self.ports = ports
        self.scratch = tempfile.mkdtemp(prefix="doc-check-")
        os.makedirs(os.path.join(self.scratch, "tmp"))
        self.make_bin(bin_dir)
        os.symlink(os.path.abspath(os.path.join(root, "scripts")), os.path.join(self.scratch, "scripts"))
        self.jobs = []  # (pid, log path, is_server)
        self.log_cursor = {}  # job index -> the line of its log where the next log check starts
        self.transcript = []  # everything the session printed, for sanitizer checks
        self.start_bash()

    # -- setup

    def map_text(self, text):
        text = re.sub(r"(?<![\w.])/tmp/", self.scratch + "/tmp/", text)
        return DOC_PORT.sub(lambda m: str(self.ports[int(m.group(1))]) if is_doc_port(int(m.group(1))) else m.group(1), text)

    def make_bin(self, bin_dir):
        """build/bin/ in the scratch dir: wrappers that exec the real binaries,
        giving servers and kvcli the free port that replaces their default."""
        out = os.path.join(self.scratch, "build", "bin")
        os.makedirs(out)
        for name in sorted(os.listdir(bin_dir)):
            real = os.path.abspath(os.path.join(bin_dir, name))
            m = re.match(r"stage(\d)-", name)
            k = re.match(r"kvcli(?:-stage(\d))?$", name)
            if m or k:
                stage = int(m.group(1) if m else (k.group(1) or 3))
                defaults = [("--port", ["-p", "--port"], self.ports[7000 + stage])]
                if m and stage == 4:  # stage 4 also listens on a peer port
                    defaults.append(("--peer-port", ["--peer-port"], self.ports[17000 + stage]))
                script = "#!/bin/sh\n# doc_check.py: %s on its documented ports' replacements.\n" % name
                for flag, given, port in defaults:
                    patterns = ["*\" %s \"*" % g for g in given] + ["*\" %s=\"*" % flag]
                    script += "case \" $* \" in %s) ;; *) set -- %s %d \"$@\";; esac\n" % ("|".join(patterns), flag, port)
                script += "exec %s \"$@\"\n" % shlex.quote(real)
                path = os.path.join(out, name)
                with open(path, "w") as f:
                    f.write(script)
                os.chmod(path, 0o755)
            else:
                os.symlink(real, os.path.join(out, name))

    def start_bash(self):
        self.cmd_r, self.cmd_w = os.pipe()
        self.master, slave = pty.openpty()
        driver = ("exec </dev/null\n"
                  "make() { if [ \"$*\" = build ]; then return 0; fi; "
                  "echo \"doc-check: only 'make build' may run here (the build is done)\" >&2; return 1; }\n"
                  "while IFS= read -r -d '' -u %d __dc_cmd; do\n"
                  "  eval \"$__dc_cmd\"\n"
                  "  printf '\\036DOCCHECK %%s %%s\\036\\n' \"$?\" \"$!\"\n"
                  "done\n" % self.cmd_r)
        env = dict(os.environ, HOME=self.scratch, TERM="dumb", LC_ALL="C.UTF-8")
        env.pop("KV_SERVER_BIN", None)
        self.bash = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", driver], cwd=self.scratch,
                                     stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                                     pass_fds=(self.cmd_r,), start_new_session=True)
        os.close(slave)
        os.close(self.cmd_r)

    # -- running commands

    def run(self, cmd, timeout=30.0):
        """Runs one command line in the session's bash; returns (status,
        output, last background pid)."""
        if self.verbose:
            print("    $ " + cmd, flush=True)
        os.write(self.cmd_w, cmd.encode() + b"\0")
        out = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            m = MARKER.search(out)
            if m:
                text = bytes(out[:m.start()]).decode("utf-8", "replace")
                self.transcript.append(text)
                return int(m.group(1)), text, int(m.group(2)) if m.group(2) else None
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed("no end after %.0f s: %s\n%s" % (timeout, cmd, show("output so far", out.decode("utf-8", "replace"))))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise CheckFailed("the session's shell exited during: %s" % cmd)
                out += chunk

    def run_line(self, block, offset, line):
        """Runs a command as the text gives it, starting servers in the
        background. Returns (status, output)."""
        cmd = self.map_text(strip_comment(line))
        words, has_ops = shell_words(cmd[:-1] if cmd.endswith("&") and not cmd.endswith("&&") else cmd)
        background = cmd.endswith("&") and not cmd.endswith("&&")
        server = self.server_port(words)
        if server is not None and not background and not has_ops:
            background = True  # a server alone on its line: "in another terminal"
            cmd += " &"
        if not background:
            return self.run(cmd)[:2]
        if server is not None:
            for port in [server] + self.peer_port(words):
                wait_until(lambda: port_is_free(port), 15, "port %d to be free before %s" % (port, block.where(offset)))
        log = os.path.join(self.scratch, "job-%d.log" % len(self.jobs))
        status, out, pid = self.run(cmd[:-1].rstrip() + ' >>%s 2>&1 &' % shlex.quote(log))
        self.jobs.append((pid, log, server is not None))
        if server is not None:
            deadline = time.monotonic() + 30
            while not accepts_connections(server):
                if not pid_alive(pid) or time.monotonic() > deadline:
                    raise CheckFailed("%s: the server did not start listening on %d: %s\n%s"
                                      % (block.where(offset), server, cmd, show("its log", read(log))))
                time.sleep(0.02)
        return status, out

    def server_port(self, words):
        """The port a command's server will listen on, or None if the command
        does not start one of the workbook's servers."""
        if not words:
            return None
        m = re.match(r"(?:\./)?build/bin/stage(\d)-[\w-]+$", words[0])
        if not m or "--help" in words or "--version" in words:
            return None
        member = cluster_member(words)
        if member:
            return member[0]
        for i, w in enumerate(words):
            if w == "--port" and i + 1 < len(words) and words[i + 1].isdigit():
                return int(words[i + 1])
            if w.startswith("--port="):
                return int(w.split("=", 1)[1])
        return self.ports[7000 + int(m.group(1))]

    def peer_port(self, words):
        """[the peer port] a stage 4 server's command will listen on (or a
        stage 5 member's, from --cluster), or []."""
        member = cluster_member(words)
        if member:
            return [member[1]] if member[1] else []
        if not re.match(r"(?:\./)?build/bin/stage4-", words[0]):
            return []
        for i, w in enumerate(words):
            value = words[i + 1] if w == "--peer-port" and i + 1 < len(words) else \
                w.split("=", 1)[1] if w.startswith("--peer-port=") else None
            if value is not None:
                return [int(value)] if value.isdigit() and int(value) else []
        return [self.ports[17004]]

    # -- the three kinds of block

    def run_sh(self, block):
        for offset, line in logical_lines(block.lines):
            if not strip_comment(line).strip():
                continue
            status, out = self.run_line(block, offset, line)
            if status != 0:
                raise CheckFailed("%s: exit status %d: %s\n%s" % (block.where(offset), status, line.strip(), show("output", out)))

    def run_console(self, block):
        steps = []  # (offset, command, [expected lines])
        for offset, line in enumerate(block.lines):
            if line.startswith("$ "):
                steps.append((offset, line[2:], []))
            elif steps:
                steps[-1][2].append(line)
            elif line.strip():
                raise CheckFailed("%s: a console block must start with a '$ ' line" % block.where(offset))
        for offset, cmd, expected in steps:
            words, _ = shell_words(strip_comment(self.map_text(cmd)))
            if words and os.path.basename(words[0]) in ("nc", "telnet") and len(words) == 3:
                self.run_nc(block, offset, int(words[2]), expected)
                continue
            if words and re.match(r"(?:\./)?build/bin/kvcli", words[0]) and not kvcli_command(words[1:]):
                self.run_kvcli_session(block, offset, cmd, expected)
                continue
            status, out = self.run_line(block, offset, cmd)
            if status != 0 or not matches([self.map_text(e) for e in expected], out):
                raise CheckFailed("%s: $ %s\nexit status %d\n%s%s" % (block.where(offset), cmd, status,
                                  show("expected", "\n".join(expected)), show("actual", normalise(out))))

    def run_kvcli_session(self, block, offset, cmd, expected):
        """A kvcli session typed at its prompt: the typed lines are piped to
        kvcli, whose output goes to the terminal (decorated, no prompts)."""
        typed, outputs = [], []
        for line in expected:
            m = PROMPT.match(line)
            if m:
                typed.append(m.group(2))
            else:
                outputs.append(line)
        pipe = "printf '%%s\\n' %s | %s" % (" ".join(shlex.quote(t) for t in typed), strip_comment(cmd))
        status, out, _ = self.run(self.map_text(pipe))
        if not matches([self.map_text(e) for e in outputs], out):
            raise CheckFailed("%s: kvcli session typed as\n%s\n%s%s" % (block.where(offset), "\n".join(typed),
                              show("expected", "\n".join(outputs)), show("actual", normalise(out))))

    def run_nc(self, block, offset, port, lines):
        """nc by hand: each line is sent as typed (ending in a bare \\n, as nc
        sends it); the lines after it must be the reply, as nc shows it."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            reader = ReplyReader(s)
            i = 0
            while i < len(lines):
                if not lines[i].strip() and i == len(lines) - 1:
                    break
                typed = self.map_text(lines[i])
                s.sendall(typed.encode() + b"\n")
                try:
                    reply = reader.reply().decode("utf-8", "replace")
                except (OSError, CheckFailed) as e:
                    raise CheckFailed("%s: no reply to %r: %s" % (block.where(offset + 1 + i), typed, e))
                got = normalise(reply).split("\n")[:-1]
                want = [self.map_text(e) for e in lines[i + 1:i + 1 + len(got)]]
                if len(want) != len(got) or not matches(want, "\n".join(got) + "\n"):
                    raise CheckFailed("%s: typed %r\n%s%s" % (block.where(offset + 1 + i), typed,
                                      show("expected", "\n".join(want)), show("actual", "\n".join(got))))
                i += 1 + len(got)

    def check_log(self, block):
        """The expected lines, in order (one server's log after another's,
        in the order they were started), in the logs of the section's
        servers, each after what the previous log blocks matched in that
        log. Servers write their logs while the check reads them, so this
        polls until a deadline."""
        expected = [self.map_text(e) for e in block.lines if e.strip()]
        if not expected:
            return
        deadline = time.monotonic() + self.log_timeout
        while True:
            logged = [(j, n, line) for j, (_, log, _) in enumerate(self.jobs)
                      for n, line in enumerate(read(log).splitlines()) if n >= self.log_cursor.get(j, 0)]
            k, found, matched = 0, 0, {}
            while found < len(expected) and k < len(logged):
                if re.fullmatch(line_pattern(expected[found]), logged[k][2].rstrip()):
                    found += 1
                    matched[logged[k][0]] = logged[k][1] + 1
                k += 1
            if found == len(expected):
                self.log_cursor.update(matched)
                return
            if time.monotonic() > deadline:
                raise CheckFailed("%s: not logged (in this order): %s\n%s" % (block.where(), expected[found],
                                  show("servers' logs in this section", "\n".join(l for _, _, l in logged))))
            time.sleep(0.05)

    # -- the end

    def finish(self):
        """Stops what the session started: SIGTERM to every background job
        still running (servers must then exit 0), then SIGKILL to anything
        left in the session's process group. Returns the failures."""
        failures = []
        try:
            status, out, _ = self.run(
                "for __p in $(jobs -p); do kill -CONT $__p; kill -TERM $__p; done 2>/dev/null; "
                "for __p in $(jobs -p); do wait $__p; echo \"job $__p $?\"; done", timeout=20)
            ended = {int(p): int(rc) for p, rc in re.findall(r"job (\d+) (\d+)", out)}
            for pid, log, is_server in self.jobs:
                if is_server and pid in ended and ended[pid] != 0:
                    failures.append("server %d exited with status %d after SIGTERM\n%s" % (pid, ended[pid], show("its log", read(log))))
        except CheckFailed as e:
            failures.append("stopping the session's servers: %s" % e)
        for pid, log, _ in self.jobs:
            if any(m in read(log) for m in SANITIZER_MARKERS):
                failures.append("sanitizer report in a server's log\n%s" % show("log", read(log)))
        if any(m in t for t in self.transcript for m in SANITIZER_MARKERS):
            failures.append("sanitizer report in the output\n%s" % show("output", "".join(self.transcript)))
        try:
            os.killpg(self.bash.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self.cmd_w)
        self.bash.wait()
        os.close(self.master)
        return failures


def flag_value(words, flag):
    """The value of --flag V or --flag=V among words, or None."""
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(flag + "="):
            return w.split("=", 1)[1]
    return None


def cluster_member(words):
    """(client port, peer port) of a stage 5 or 6 server started with --id N
    --cluster N=HOST:CPORT:PPORT,...: its own entry gives its ports. None
    for any other command."""
    if not re.match(r"(?:\./)?build/bin/stage[56]-", words[0]):
        return None
    ident, spec = flag_value(words, "--id"), flag_value(words, "--cluster")
    if ident is None or spec is None:
        return None
    for entry in spec.split(","):
        name, _, addr = entry.partition("=")
        parts = addr.rsplit(":", 2)
        if name == ident and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    return None


def logical_lines(lines):
    """(offset, line) with backslash continuations joined."""
    out, buf, start = [], "", None
    for offset, line in enumerate(lines):
        if start is None:
            start = offset
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def kvcli_command(args):
    """The command words of a kvcli invocation (after its flags)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-p", "--port", "--host", "--timeout"):
            i += 2
        elif a.startswith("--"):
            i += 1
        else:
            return args[i:]
    return []


class ReplyReader:
    """Reads one RESP2 reply off a socket and returns its raw bytes."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise CheckFailed("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def reply(self):
        line = self._line()
        if line[:1] == b"$" and int(line[1:]) >= 0:
            n = int(line[1:]) + 2
            while len(self.buf) < n:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n:]
            return line + data
        if line[:1] == b"*":
            return line + b"".join(self.reply() for _ in range(max(0, int(line[1:]))))
        return line


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError, TypeError):
        return False


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def accepts_connections(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return False
    with s:
        return s.getsockname() != s.getpeername()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise CheckFailed("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.02)


def is_doc_port(port):
    return 7001 <= port <= 7099 or 17001 <= port <= 17099


class FreePorts(dict):
    """Documented port -> a free loopback port, chosen the first time the
    session meets the documented one, never the same for two of them."""

    def __missing__(self, port):
        if not is_doc_port(port):
            raise KeyError(port)
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                free = s.getsockname()[1]
            if free not in self.values() and not is_doc_port(free):
                self[port] = free
                return free


def free_ports():
    return FreePorts()


def check_file(path, args):
    failures, count = [], 0
    for heading, blocks in parse_markdown(path):
        print("%s: %s (%d block%s)" % (path, heading, len(blocks), "" if len(blocks) == 1 else "s"), flush=True)
        started = time.monotonic()
        session = Session(args.root, args.bin_dir, free_ports(), args.verbose, args.log_timeout)
        problems = []
        try:
            for block in blocks:
                count += 1
                {"sh": session.run_sh, "console": session.run_console, "log": session.check_log}[block.kind](block)
        except CheckFailed as e:
            problems.append(str(e))
        except Exception as e:  # a bug here must not leave servers running
            problems.append("doc_check.py itself failed: %r" % (e,))
        problems += session.finish()
        if problems:
            mapping = ", ".join("%d -> %d" % kv for kv in sorted(session.ports.items()))
            problems.append("(ports in this run: %s; /tmp/ -> %s/tmp/)" % (mapping, session.scratch))
        if args.keep:
            print("  scratch directory kept: %s" % session.scratch)
        else:
            shutil.rmtree(session.scratch, ignore_errors=True)
            if problems:
                problems.append("(run again with --keep to keep the scratch directory and the servers' logs)")
        for p in problems:
            print("  FAIL " + p.replace("\n", "\n  "), flush=True)
        if problems:
            failures.append((path, heading))
        elif args.verbose:
            print("  ok (%.1f s)" % (time.monotonic() - started))
    return failures, count


def main():
    ap = argparse.ArgumentParser(description="Run the runnable examples of the course (see the module docstring).")
    ap.add_argument("--bin-dir", required=True, help="the build's bin/ directory whose binaries the examples run")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                    help="the workbook's root (default: this script's parent)")
    ap.add_argument("--log-timeout", type=float, default=15.0, help="seconds to wait for expected log lines")
    ap.add_argument("--keep", action="store_true", help="keep every scratch directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each command as it runs")
    ap.add_argument("files", nargs="*", help="markdown files (default: README.md and notes/*.md)")
    args = ap.parse_args()
    if not os.path.isdir(args.bin_dir):
        print("doc_check: no such directory: %s" % args.bin_dir, file=sys.stderr)
        return 2
    files = args.files or [os.path.join(args.root, "README.md")] + sorted(glob.glob(os.path.join(args.root, "notes", "*.md")))
    started = time.monotonic()
    failures, count = [], 0
    for path in files:
        rel = os.path.relpath(path)
        f, n = check_file(path if rel.startswith("..") else rel, args)
        failures += f
        count += n
    print("doc_check: %d runnable block%s in %d file%s, %.1f s: %s" % (
        count, "" if count == 1 else "s", len(files), "" if len(files) == 1 else "s", time.monotonic() - started,
        "all pass" if not failures else "%d section%s FAILED" % (len(failures), "" if len(failures) == 1 else "s")))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
