#!/usr/bin/python3
"""no_read_client.py - a client that sends requests and never reads a reply
(chapter 1, exercise 3: what backpressure protects the server from).

It stores one value, then pipelines GETs of it as fast as the server takes
them, never reading, and once a second prints how much it has sent and the
server's resident memory (VmRSS in /proc/PID/status; the server is found by
the port it listens on, or given with --pid). It stops after --seconds, or
when the server's memory passes --max-rss-mib, so that a server without
backpressure does not take the whole machine down.

  scripts/no_read_client.py --port 7001 [--seconds 5] [--value-bytes 1000]
"""
import argparse
import os
import select
import socket
import sys
import time


def listening_pid(port):
    """The pid of the process listening on 127.0.0.1:port (or any address),
    from /proc/net/tcp's socket inode and the /proc/PID/fd links."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for row in f:
                    cols = row.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A: LISTEN
                        inodes.add("socket:[%s]" % cols[9])
        except FileNotFoundError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes:
                    return int(pid)
            except OSError:
                continue
    return None


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=7001)
    ap.add_argument("--pid", type=int, help="the server's pid (default: whoever listens on --port)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--value-bytes", type=int, default=1000, help="size of the value each GET returns")
    ap.add_argument("--max-rss-mib", type=float, default=1024, help="stop when the server's memory passes this")
    args = ap.parse_args()
    pid = args.pid or listening_pid(args.port)
    if not pid:
        sys.exit("no_read_client: nothing listens on port %d (start the server first)" % args.port)

    s = socket.create_connection(("127.0.0.1", args.port))
    value = b"x" * args.value_bytes
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(value), value))
    if s.recv(16) != b"+OK\r\n":
        sys.exit("no_read_client: SET k failed")
    get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    chunk = get * (65536 // len(get))
    s.setblocking(False)

    print("server pid %d, RSS %.1f MiB; sending GETs of a %d-byte value, reading nothing"
          % (pid, rss_mib(pid), args.value_bytes), flush=True)
    sent, pending = 0, b""
    started = time.monotonic()
    tick = started + 1
    while True:
        now = time.monotonic()
        if now >= tick:
            rss = rss_mib(pid)
            print("%3.0f s: sent %7.1f MiB (%9d GETs), server RSS %7.1f MiB"
                  % (now - started, sent / 1048576.0, sent // len(get), rss), flush=True)
            if rss > args.max_rss_mib:
                print("stopping: the server passed --max-rss-mib %.0f" % args.max_rss_mib)
                break
            if now - started >= args.seconds:
                break
            tick += 1
        _, writable, _ = select.select([], [s], [], max(0.0, tick - now))
        if writable:
            pending = pending or chunk
            try:
                n = s.send(pending)
            except BlockingIOError:
                continue
            sent += n
            pending = pending[n:]
    s.close()


if __name__ == "__main__":
    main()
