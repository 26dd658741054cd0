# ports.py - loopback ports: finding a free one for a server, and telling
# whether something listens on one, and whose listener it is.
import os
import socket


def free_port():
    """A port nothing listens on right now. Another process could take it
    before the server binds; Server.start retries with a new one if so."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts_connections(port):
    """True when something accepts TCP connections on 127.0.0.1:port. A
    connection to itself does not count: with nothing listening, a client
    whose ephemeral port happens to equal port connects to itself (TCP
    simultaneous open), which looks like a server that is up."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return False
    with s:
        return s.getsockname() != s.getpeername()


def port_is_free(port, reuse_addr=False):
    """True when 127.0.0.1:port can be bound. With reuse_addr (as the
    servers bind) only a listening socket makes it busy, not the TIME_WAIT
    connections an earlier server left behind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse_addr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _listening_inodes(port):
    """Socket inodes listening on port (any local address), from the
    kernel's tables; None when they cannot be read (not Linux)."""
    inodes, read_any = set(), False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if read_any else None


def listens_in(pid, port):
    """True when process pid holds the socket listening on port. Another
    process can take a port between free_port() and the server's bind; the
    server then fails to bind, but until it exits a readiness probe would
    reach the other process and take it for the server (two tests once
    shared one server that way). True when the kernel's tables cannot be
    read: the probe is then all there is."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return True
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return True
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False
