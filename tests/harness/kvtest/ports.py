# ports.py - loopback ports: finding a free one for a server, and telling
# whether something listens on one.
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
