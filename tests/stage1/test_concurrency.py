# test_concurrency.py - 200 clients at once, each writing and reading its own
# keys: no reply goes to the wrong client, no write is lost, and the server's
# counts (DBSIZE, connected_clients) agree with what the clients did.
import threading

import kvtest
from kvtest import encode_command

CLIENTS = 200
KEYS_PER_CLIENT = 25


class Concurrency(kvtest.ServerTestCase):

    def test_two_hundred_clients(self):
        srv = self.start_server()
        connected = threading.Barrier(CLIENTS + 1, timeout=30)
        finished = threading.Barrier(CLIENTS + 1, timeout=60)
        failures = []

        def client(n):
            try:
                with srv.connect(timeout=30) as c:
                    connected.wait()
                    keys = [("cc:%d:%d" % (n, j)).encode() for j in range(KEYS_PER_CLIENT)]
                    vals = [("client %d value %d " % (n, j)).encode() * (1 + j % 5) for j in range(KEYS_PER_CLIENT)]
                    if n % 2 == 0:
                        # Request/response, one at a time.
                        for k, v in zip(keys, vals):
                            if c.command("SET", k, v) != "OK":
                                raise AssertionError("SET %r failed" % k)
                            got = c.command("GET", k)
                            if got != v:
                                raise AssertionError("GET %r: want %r got %r" % (k, v, got))
                    else:
                        # Everything in one write, so requests from many clients
                        # are in the server's buffers at the same time.
                        c.send(b"".join(encode_command("SET", k, v) + encode_command("GET", k)
                                        for k, v in zip(keys, vals)))
                        got = c.read_replies(2 * KEYS_PER_CLIENT, timeout=30)
                        want = [r for v in vals for r in ("OK", v)]
                        if got != want:
                            raise AssertionError("client %d pipelined replies differ: %r" % (n, got[:4]))
                    # Read back every key at the end: nobody else overwrote ours.
                    for k, v in zip(keys, vals):
                        got = c.command("GET", k)
                        if got != v:
                            raise AssertionError("final GET %r: want %r got %r" % (k, v, got))
                    finished.wait()
            except Exception as e:  # reported by the main thread
                failures.append("client %d: %r" % (n, e))
                connected.abort()
                finished.abort()

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            connected.wait()
            # All 200 are connected at once (plus our INFO client).
            kvtest.wait_for(lambda: srv.info()["connected_clients"] == str(CLIENTS + 1), timeout=10,
                            message="connected_clients to be %d" % (CLIENTS + 1))
            finished.wait()
        except threading.BrokenBarrierError:
            pass
        for t in threads:
            t.join(60)
        self.assertEqual(failures, [])

        with srv.connect() as c:
            self.assertEqual(c.command("DBSIZE"), CLIENTS * KEYS_PER_CLIENT)
            self.assertEqual(c.command("GET", "cc:199:24"), b"client 199 value 24 " * 5)
        kvtest.wait_for(lambda: srv.info()["connected_clients"] == "1",
                        message="connected_clients to fall back to 1 after the clients left")


if __name__ == "__main__":
    kvtest.main()
