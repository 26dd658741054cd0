# kvtest - the shared harness for the Python integration suites of every
# stage. It starts the server binary under test on a free loopback port,
# talks raw RESP2 to it over a socket, and checks on every stop that the
# sanitizer (or valgrind) build reported nothing.
#
# One module per job; this file only gathers their names, so a suite writes
# `import kvtest` and `kvtest.Server`, `kvtest.wait_for`, ...:
#   env.py         what the environment says: binary under test, its extra
#                  arguments (KV_SERVER_ARGS, "{tmp}"), bin dir, valgrind,
#                  timeouts; a stage's name, number and default port
#   resp.py        the RESP2 client: encoding, the incremental reply reader,
#                  Conn (a raw socket), parse_info
#   ports.py       free ports, whether something listens on one, and whose
#   sanitizers.py  sanitizer environment and the scan of output for reports
#   wait.py        wait_for: polling with a deadline, never a bare sleep
#   server.py      Server (start, stop, kill -9, restart, log) and run_binary
#   case.py        ServerTestCase, the unittest base class, and main()
#   faultproxy.py  network faults between processes: FaultProxy (cut, delay,
#                  one-way), ProxyMesh and Partition over a cluster's peer links
from .case import ServerTestCase, main
from .env import (BIN_DIR, IO_TIMEOUT, SERVER_ARGS, SERVER_BIN, START_TIMEOUT, STOP_TIMEOUT, UNDER_VALGRIND,
                  default_port, stage_name, stage_number)
from .faultproxy import C2S, S2C, FaultProxy, Partition, ProxyMesh
from .ports import accepts_connections, free_port, listens_in, port_is_free
from .resp import (ConnectionClosed, Conn, RespError, RespProtocolError, RespReader, encode_arg, encode_command,
                   parse_info)
from .sanitizers import (SANITIZER_MARKERS, SanitizerReport, assert_no_sanitizer_reports, sanitizer_env,
                         sanitizer_lines, tail)
from .server import Server, run_binary
from .wait import wait_for

__all__ = [
    "BIN_DIR", "IO_TIMEOUT", "SERVER_ARGS", "SERVER_BIN", "START_TIMEOUT", "STOP_TIMEOUT", "UNDER_VALGRIND",
    "default_port", "stage_name", "stage_number",
    "C2S", "S2C", "FaultProxy", "Partition", "ProxyMesh",
    "accepts_connections", "free_port", "port_is_free",
    "ConnectionClosed", "Conn", "RespError", "RespProtocolError", "RespReader", "encode_arg", "encode_command",
    "parse_info",
    "SANITIZER_MARKERS", "SanitizerReport", "assert_no_sanitizer_reports", "sanitizer_env", "sanitizer_lines", "tail",
    "Server", "run_binary",
    "ServerTestCase", "main",
    "wait_for",
]
