# test_inline.py - the inline protocol a person types into nc or telnet:
# space-separated words ending in CRLF or a bare LF, double and single quotes
# with Redis's escapes, blank lines ignored, command names in any case.
import kvtest


class Inline(kvtest.ServerTestCase):

    def test_typed_session(self):
        # What a user types into `nc 127.0.0.1 7001`, one line at a time.
        c = self.connect()
        self.assertEqual(c.inline("SET in:name alice"), "OK")
        self.assertEqual(c.inline("GET in:name"), b"alice")
        self.assertEqual(c.inline("EXISTS in:name in:nobody"), 1)
        self.assertEqual(c.inline("DEL in:name"), 1)
        self.assertIsNone(c.inline("GET in:name"))
        self.assertEqual(c.inline("PING"), "PONG")
        self.assertEqual(c.inline("PING hello"), b"hello")
        self.assertEqual(c.inline("ECHO hi"), b"hi")
        self.assertIsInstance(c.inline("DBSIZE"), int)
        self.assertIsInstance(c.inline("INFO"), bytes)
        self.assertEqual(c.inline("QUIT"), "OK")
        c.expect_closed()

    def test_bare_lf_line_endings(self):
        # nc on Unix sends "\n" only.
        c = self.connect()
        c.send(b"SET in:lf value-lf\n")
        self.assertEqual(c.read_reply(), "OK")
        c.send(b"GET in:lf\n")
        self.assertEqual(c.read_reply(), b"value-lf")
        # A value must not keep a stray CR when the line is CRLF-terminated.
        c.send(b"SET in:crlf value-crlf\r\nGET in:crlf\r\n")
        self.assertEqual(c.read_replies(2), ["OK", b"value-crlf"])

    def test_case_insensitive_command_names(self):
        c = self.connect()
        self.assertEqual(c.inline("set in:case v"), "OK")
        self.assertEqual(c.inline("GeT in:case"), b"v")
        self.assertEqual(c.inline("ping"), "PONG")
        self.assertEqual(c.inline("Exists in:case"), 1)
        self.assertEqual(c.inline("dEl in:case"), 1)

    def test_extra_whitespace_separates_arguments(self):
        c = self.connect()
        self.assertEqual(c.inline("  SET   in:ws \t spaced   "), "OK")
        self.assertEqual(c.inline("GET in:ws"), b"spaced")

    def test_blank_lines_are_ignored(self):
        c = self.connect()
        c.send(b"\r\n\n   \r\n\t\nPING\r\n\r\n\nECHO after-blanks\n")
        self.assertEqual(c.read_replies(2), ["PONG", b"after-blanks"])
        # Nothing else was sent back for the blank lines: the next reply is ours.
        self.assertEqual(c.inline("ECHO next"), b"next")

    def test_double_quotes(self):
        c = self.connect()
        self.assertEqual(c.inline('SET in:q "hello world"'), "OK")
        self.assertEqual(c.inline("GET in:q"), b"hello world")
        self.assertEqual(c.inline('SET "in:quoted key" "two words"'), "OK")
        self.assertEqual(c.inline('GET "in:quoted key"'), b"two words")
        self.assertEqual(c.inline('SET in:empty ""'), "OK")
        self.assertEqual(c.inline("GET in:empty"), b"")

    def test_double_quote_escapes(self):
        c = self.connect()
        self.assertEqual(c.inline(r'SET in:esc "a\nb\r\tc\\d\"e\x41\x00\xff"'), "OK")
        self.assertEqual(c.inline("GET in:esc"), b"a\nb\r\tc\\d\"eA\x00\xff")
        # ECHO shows the decoded bytes directly.
        self.assertEqual(c.inline(r'ECHO "\x48\x49 there"'), b"HI there")

    def test_single_quotes(self):
        # As in redis-cli: only \' is an escape inside single quotes.
        c = self.connect()
        self.assertEqual(c.inline(r"SET in:sq 'it\'s a \n literal'"), "OK")
        self.assertEqual(c.inline("GET in:sq"), b"it's a \\n literal")

    def test_inline_and_multibulk_interleave(self):
        c = self.connect()
        c.send(b"SET in:mix 1\r\n" + kvtest.encode_command("GET", "in:mix") + b"ECHO x\n")
        self.assertEqual(c.read_replies(3), ["OK", b"1", b"x"])

    def test_errors_keep_the_connection(self):
        c = self.connect()
        self.assertError(c.inline("NOSUCHCMD a b"), "ERR unknown command 'NOSUCHCMD'")
        self.assertError(c.inline("get"), "ERR wrong number of arguments for 'get' command")
        self.assertEqual(c.inline("PING"), "PONG")


if __name__ == "__main__":
    kvtest.main()
