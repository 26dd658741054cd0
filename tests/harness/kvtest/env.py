# env.py - what the harness is told by the environment, and what it derives
# from the binary's name. Nothing else in the harness reads the environment
# for configuration (KV_KEEP_TMP aside, read by server.py where it applies).
#
# Later stages run the stage-1 scripts against their own binaries, so nothing
# here knows which stage it is testing except through these:
#   KV_SERVER_BIN   path of the server binary under test (required)
#   KV_SERVER_ARGS  extra server arguments, split like a shell would; "{tmp}"
#                   becomes a fresh temp dir per server (e.g. --data-dir {tmp}/data)
#   KV_BIN_DIR      the build's bin/ directory (other tools of the build)
#   KV_KEEP_TMP     if set, server temp dirs (logs, data) are left on disk
#   KV_UNDER_VALGRIND  ON when servers run under valgrind (make valgrind): 20-50x
#                   slower, so suites that repeat one check hundreds of times
#                   may repeat it fewer times (UNDER_VALGRIND)
import os
import re

SERVER_BIN = os.environ.get("KV_SERVER_BIN", "")
SERVER_ARGS = os.environ.get("KV_SERVER_ARGS", "")
UNDER_VALGRIND = os.environ.get("KV_UNDER_VALGRIND", "").upper() in ("1", "ON", "TRUE")
BIN_DIR = os.environ.get("KV_BIN_DIR", os.path.dirname(SERVER_BIN))

# Under valgrind a server starts (and replays) 20-50x slower, and a loaded
# machine slows it further: a start is given longer there.
START_TIMEOUT = 60.0 if UNDER_VALGRIND else 10.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 10.0


def stage_name(binary=None):
    """The stage a binary implements, as INFO's "stage:" field names it: the
    binary is named after its stage directory (stage1-single-node, ...)."""
    return os.path.basename(binary or SERVER_BIN)


def stage_number(binary=None):
    m = re.match(r"stage(\d+)", stage_name(binary))
    return int(m.group(1)) if m else None


def default_port(binary=None):
    """Stage N listens on 700N unless told otherwise (see DESIGN.md)."""
    n = stage_number(binary)
    return 7000 + n if n else None
