# test_multibulk.py - every stage-1 command sent the way client libraries send
# it (multibulk), with the replies a user sees: values are binary-safe, empty
# values are not missing values, large values come back intact, and INFO
# reports what is actually in the server.
import os

import kvtest


class MultibulkCommands(kvtest.ServerTestCase):

    def test_set_get_overwrite(self):
        c = self.connect()
        self.assertEqual(c.command("SET", "mb:k", "v1"), "OK")
        self.assertEqual(c.command("GET", "mb:k"), b"v1")
        self.assertEqual(c.command("SET", "mb:k", "v2"), "OK")
        self.assertEqual(c.command("GET", "mb:k"), b"v2")

    def test_get_missing_is_null(self):
        c = self.connect()
        self.assertIsNone(c.command("GET", "mb:never-set"))

    def test_empty_value_is_not_missing(self):
        c = self.connect()
        self.assertEqual(c.command("SET", "mb:empty", ""), "OK")
        self.assertEqual(c.command("GET", "mb:empty"), b"")
        self.assertEqual(c.command("EXISTS", "mb:empty"), 1)

    def test_empty_key(self):
        c = self.connect()
        self.assertEqual(c.command("SET", "", "for the empty key"), "OK")
        self.assertEqual(c.command("GET", ""), b"for the empty key")
        self.assertEqual(c.command("DEL", ""), 1)
        self.assertIsNone(c.command("GET", ""))

    def test_binary_safe_values_and_keys(self):
        # NUL bytes, CRLF and RESP syntax inside a bulk must be treated as data.
        c = self.connect()
        value = b"\x00a\r\nb\x00\r\n*1\r\n$3\r\nGET\r\n\xff\xfe" + bytes(range(256))
        key = b"mb:\x00key\r\nwith crlf\xff"
        self.assertEqual(c.command("SET", key, value), "OK")
        self.assertEqual(c.command("GET", key), value)
        # A key that differs only after the NUL is a different key.
        self.assertIsNone(c.command("GET", b"mb:\x00key"))
        self.assertIsNone(c.command("GET", b"mb:"))
        self.assertEqual(c.command("EXISTS", key), 1)
        self.assertEqual(c.command("ECHO", value), value)
        self.assertEqual(c.command("PING", value), value)

    def test_one_mebibyte_value(self):
        c = self.connect()
        value = os.urandom(1 << 20)
        self.assertEqual(c.command("SET", "mb:big", value), "OK")
        self.assertEqual(c.command("GET", "mb:big"), value)
        # The connection is still in sync afterwards.
        self.assertEqual(c.command("PING"), "PONG")

    def test_del_counts_only_existing(self):
        c = self.connect()
        for k in ("mb:d1", "mb:d2", "mb:d3"):
            self.assertEqual(c.command("SET", k, "x"), "OK")
        self.assertEqual(c.command("DEL", "mb:d1", "mb:d2", "mb:nope"), 2)
        self.assertIsNone(c.command("GET", "mb:d1"))
        self.assertIsNone(c.command("GET", "mb:d2"))
        self.assertEqual(c.command("GET", "mb:d3"), b"x")
        self.assertEqual(c.command("DEL", "mb:d1"), 0)
        # Naming a key twice deletes it once.
        self.assertEqual(c.command("DEL", "mb:d3", "mb:d3"), 1)

    def test_exists_counts_each_argument(self):
        c = self.connect()
        self.assertEqual(c.command("SET", "mb:e1", "x"), "OK")
        self.assertEqual(c.command("SET", "mb:e2", "y"), "OK")
        self.assertEqual(c.command("EXISTS", "mb:e1"), 1)
        self.assertEqual(c.command("EXISTS", "mb:e1", "mb:e2", "mb:nope"), 2)
        self.assertEqual(c.command("EXISTS", "mb:nope"), 0)
        # As in Redis, a key named twice counts twice.
        self.assertEqual(c.command("EXISTS", "mb:e1", "mb:e1"), 2)

    def test_ping_and_echo(self):
        c = self.connect()
        self.assertEqual(c.command("PING"), "PONG")
        # With an argument PING is an echo: a bulk string, not "+msg".
        self.assertEqual(c.command("PING", "hello there"), b"hello there")
        self.assertEqual(c.command("ECHO", "hi"), b"hi")
        self.assertEqual(c.command("ECHO", ""), b"")

    def test_commands_are_case_insensitive(self):
        c = self.connect()
        self.assertEqual(c.command("set", "mb:case", "1"), "OK")
        self.assertEqual(c.command("SeT", "mb:case", "2"), "OK")
        self.assertEqual(c.command("gEt", "mb:case"), b"2")
        self.assertEqual(c.command("exists", "mb:case"), 1)
        self.assertEqual(c.command("ping"), "PONG")
        self.assertIsInstance(c.command("dbsize"), int)
        self.assertEqual(c.command("del", "mb:case"), 1)
        # Keys, unlike command names, are case-sensitive.
        self.assertEqual(c.command("SET", "mb:Key", "upper"), "OK")
        self.assertIsNone(c.command("GET", "mb:key"))

    def test_what_real_clients_send_on_connect(self):
        # redis-cli and redis-benchmark ask these; an empty answer satisfies them.
        c = self.connect()
        self.assertEqual(c.command("COMMAND"), [])
        self.assertEqual(c.command("COMMAND", "DOCS"), [])
        self.assertEqual(c.command("COMMAND", "DOCS", "GET"), [])
        self.assertEqual(c.command("CONFIG", "GET", "no-such-parameter"), [])
        # A server may answer parameters it knows (redis-benchmark reads these
        # two), but only as name/value pairs that tell the truth: stage 1 keeps
        # nothing on disk; from stage 2 on every write is appended to a log.
        logged = b"yes" if (kvtest.stage_number() or 1) >= 2 else b"no"
        for param, truth in (("save", b""), ("appendonly", logged)):
            reply = c.command("CONFIG", "GET", param)
            self.assertIn(reply, ([], [param.encode(), truth]), "CONFIG GET %s" % param)
        self.assertEqual(c.command("SELECT", "0"), "OK")
        self.assertEqual(c.command("PING"), "PONG")

    def test_quit_replies_then_closes(self):
        c = self.connect()
        self.assertEqual(c.command("QUIT"), "OK")
        c.expect_closed()
        self.assertStillServes()


class Keyspace(kvtest.ServerTestCase):
    """Counts need a server no other test has written to."""

    def test_dbsize_follows_writes(self):
        srv = self.start_server()
        c = self.connect(srv)
        self.assertEqual(c.command("DBSIZE"), 0)
        for i in range(10):
            self.assertEqual(c.command("SET", "k%d" % i, "v"), "OK")
        self.assertEqual(c.command("DBSIZE"), 10)
        self.assertEqual(c.command("SET", "k0", "overwritten"), "OK")
        self.assertEqual(c.command("DBSIZE"), 10)
        self.assertEqual(c.command("DEL", "k0", "k1", "missing"), 2)
        self.assertEqual(c.command("DBSIZE"), 8)

    def test_info_fields(self):
        srv = self.start_server()
        c = self.connect(srv)
        text = c.command("INFO")
        self.assertIsInstance(text, bytes)
        text = text.decode()
        # Lines are CRLF separated: no bare LF anywhere.
        self.assertNotIn("\n", text.replace("\r\n", ""))
        lines = [l for l in text.split("\r\n") if l]
        self.assertTrue(lines[0].startswith("# "), "INFO should start with a section header: %r" % lines[0])
        for line in lines:
            self.assertTrue(line.startswith("# ") or ":" in line, "odd INFO line %r" % line)
        self.assertIn("# Keyspace", lines)
        info = kvtest.parse_info(text)
        self.assertEqual(info["stage"], kvtest.stage_name())
        self.assertEqual(info["keys"], "0")
        self.assertNotIn("db0", info, "an empty keyspace has no db0 line (as in Redis)")
        # Only this client remains (the harness's readiness probe may take the
        # server a moment to notice as closed).
        kvtest.wait_for(lambda: kvtest.parse_info(c.command("INFO"))["connected_clients"] == "1",
                        message="connected_clients to be 1")
        for field in ("total_commands_processed", "used_memory", "uptime_in_seconds"):
            self.assertRegex(info[field], r"^[0-9]+$", field)

        for i in range(3):
            self.assertEqual(c.command("SET", "info%d" % i, "v"), "OK")
        info = kvtest.parse_info(c.command("INFO"))
        self.assertEqual(info["keys"], "3")
        self.assertEqual(info["db0"], "keys=3,expires=0,avg_ttl=0")

    def test_info_counts_commands(self):
        srv = self.start_server()
        c = self.connect(srv)
        before = int(kvtest.parse_info(c.command("INFO"))["total_commands_processed"])
        for _ in range(5):
            self.assertEqual(c.command("PING"), "PONG")
        after = int(kvtest.parse_info(c.command("INFO"))["total_commands_processed"])
        # 5 PINGs plus one INFO, whether a command counts itself before or after it runs.
        self.assertEqual(after - before, 6, "before=%d after=%d" % (before, after))

    def test_info_counts_clients(self):
        srv = self.start_server()
        c = self.connect(srv)
        others = [self.connect(srv) for _ in range(4)]
        for o in others:
            self.assertEqual(o.command("PING"), "PONG")
        kvtest.wait_for(lambda: kvtest.parse_info(c.command("INFO"))["connected_clients"] == "5",
                        message="connected_clients to be 5")
        for o in others:
            o.close()
        # The server learns of the closes asynchronously: poll.
        kvtest.wait_for(lambda: kvtest.parse_info(c.command("INFO"))["connected_clients"] == "1",
                        message="connected_clients to drop back to 1")

    def test_info_used_memory_grows_with_data(self):
        srv = self.start_server()
        c = self.connect(srv)
        before = int(kvtest.parse_info(c.command("INFO"))["used_memory"])
        self.assertEqual(c.command("SET", "big", b"x" * (1 << 20)), "OK")
        after = int(kvtest.parse_info(c.command("INFO"))["used_memory"])
        self.assertGreaterEqual(after - before, 1 << 20, "before=%d after=%d" % (before, after))

    def test_info_uptime_counts_seconds(self):
        srv = self.start_server()
        c = self.connect(srv)
        first = int(kvtest.parse_info(c.command("INFO"))["uptime_in_seconds"])
        self.assertLessEqual(first, 5)
        # Uptime must advance by whole seconds as time passes (polled, not slept).
        kvtest.wait_for(lambda: int(kvtest.parse_info(c.command("INFO"))["uptime_in_seconds"]) > first,
                        timeout=3.0, interval=0.05, message="uptime_in_seconds to advance")


if __name__ == "__main__":
    kvtest.main()
