"""System tests: malformed and hostile input over raw sockets.

A bad request must get the error Redis gives and (for protocol errors) a closed connection, and
must never disturb other clients or the data.
"""

import os
import socket
import time
import unittest

from shoal_harness import (RespError, RespReader, ShoalServer, encode_command, read_line,
                           read_until_closed)

SURVIVOR_KEYS = 100


class BadInputTest(unittest.TestCase):
    """One node for the class. A client connected for the whole class wrote 100 keys first; every
    test ends by checking that it still works and the keys are intact."""

    @classmethod
    def setUpClass(cls):
        cls.server = ShoalServer(threads=2).start()
        cls.survivor = cls.server.client()
        cls.survivor.flushall()
        cls.survivor.mset({f"keep:{i}": f"value-{i}" for i in range(SURVIVOR_KEYS)})

    @classmethod
    def tearDownClass(cls):
        cls.survivor.close()
        cls.server.stop()

    def setUp(self):
        self.assertTrue(self.server.alive(), "shoal died:\n" + self.server.log())
        self._sockets = []

    def tearDown(self):
        for s in self._sockets:
            s.close()
        self.assertTrue(self.server.alive(), "shoal died:\n" + self.server.log())
        self.check_survivor()

    def check_survivor(self):
        r = self.survivor
        self.assertTrue(r.ping())
        keys = [f"keep:{i}" for i in range(SURVIVOR_KEYS)]
        self.assertEqual(r.mget(keys), [f"value-{i}".encode() for i in range(SURVIVOR_KEYS)])
        self.assertEqual(r.get("keep:0"), b"value-0")

    def raw(self, timeout=10):
        s = self.server.raw(timeout)
        self._sockets.append(s)
        return s

    def assert_protocol_error_and_close(self, payload, expected_prefix=b"-ERR Protocol error"):
        s = self.raw()
        s.sendall(payload)
        data = read_until_closed(s, timeout=10, limit=1 << 20)
        self.assertTrue(data.startswith(expected_prefix), f"{payload[:40]!r} -> {data[:200]!r}")
        self.assertEqual(data.count(b"\r\n"), 1, f"one error line, then close: {data[:200]!r}")
        return data

    # -- protocol errors: error reply, then the connection is closed ---------------------------

    def test_malformed_resp_closes_connection(self):
        cases = [
            (b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length"),
            (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length"),
            (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length"),
            (b"*2\r\n$3\r\nGET\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'"),
            (b"*-5\r\n", b"-ERR Protocol error: invalid multibulk length"),
        ]
        for payload, prefix in cases:
            with self.subTest(payload=payload):
                self.assert_protocol_error_and_close(payload, prefix)

    def test_valid_commands_before_a_protocol_error_are_answered(self):
        s = self.raw()
        s.sendall(encode_command("SET", "before", "1") + encode_command("PING") + b"*1\r\n$x\r\n"
                  + encode_command("SET", "after", "1"))
        data = read_until_closed(s, timeout=10)
        self.assertEqual(data, b"+OK\r\n+PONG\r\n-ERR Protocol error: invalid bulk length\r\n")
        self.assertEqual(self.survivor.get("before"), b"1")
        self.assertIsNone(self.survivor.get("after"), "input after a protocol error must be dropped")
        self.survivor.delete("before")

    def test_bulk_longer_than_proto_max_bulk_len(self):
        r = self.survivor
        old = r.config_get("proto-max-bulk-len")["proto-max-bulk-len"]
        try:
            self.assertTrue(r.config_set("proto-max-bulk-len", "1mb"))
            self.assertEqual(r.config_get("proto-max-bulk-len"), {"proto-max-bulk-len": "1048576"})
            self.assert_protocol_error_and_close(b"*2\r\n$3\r\nGET\r\n$2000000\r\n",
                                                 b"-ERR Protocol error: invalid bulk length")
            # Right at the limit is fine.
            s = self.raw()
            reader = RespReader(s)
            value = b"x" * (1024 * 1024)
            self.assertEqual(reader.command("SET", "atlimit", value), b"OK")
            self.assertEqual(reader.command("STRLEN", "atlimit"), 1024 * 1024)
            r.delete("atlimit")
        finally:
            r.config_set("proto-max-bulk-len", old)

    # -- command errors: error reply, the connection stays usable -------------------------------

    def test_command_errors_keep_connection(self):
        s = self.raw()
        r = RespReader(s)
        self.assertEqual(r.command("SET", "str", "abc"), b"OK")
        self.assertEqual(r.command("HSET", "hash", "f", "v"), 1)
        self.assertEqual(r.command("SET", "max", str(2**63 - 1)), b"OK")
        self.assertEqual(r.command("SET", "min", str(-2**63)), b"OK")
        cases = [
            (("NOSUCHCMD", "a", "b"),
             "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "),
            (("GET",), "ERR wrong number of arguments for 'get' command"),
            (("SET", "k"), "ERR wrong number of arguments for 'set' command"),
            (("HSET", "h", "f"), "ERR wrong number of arguments for 'hset' command"),
            (("GET", "hash"), "WRONGTYPE Operation against a key holding the wrong kind of value"),
            (("HGET", "str", "f"),
             "WRONGTYPE Operation against a key holding the wrong kind of value"),
            (("INCR", "str"), "ERR value is not an integer or out of range"),
            (("INCRBY", "k", "1.5"), "ERR value is not an integer or out of range"),
            (("EXPIRE", "str", "soon"), "ERR value is not an integer or out of range"),
            (("INCR", "max"), "ERR increment or decrement would overflow"),
            (("DECR", "min"), "ERR increment or decrement would overflow"),
            (("INCRBY", "max", "1"), "ERR increment or decrement would overflow"),
            (("INCRBYFLOAT", "str", "1"), "ERR value is not a valid float"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                reply = r.command(*args)
                self.assertIsInstance(reply, RespError, f"{args} -> {reply!r}")
                self.assertEqual(str(reply), message)
                self.assertEqual(r.command("PING"), b"PONG")
        # The failed commands changed nothing.
        self.assertEqual(r.command("GET", "str"), b"abc")
        self.assertEqual(r.command("GET", "max"), str(2**63 - 1).encode())
        self.assertEqual(r.command("GET", "min"), str(-2**63).encode())
        self.assertEqual(r.command("DEL", "str", "hash", "max", "min", "k"), 4)

    def test_empty_multibulk_is_ignored(self):
        s = self.raw()
        s.sendall(b"*0\r\n" + encode_command("PING"))
        self.assertEqual(read_line(s), b"+PONG\r\n")

    # -- big and fragmented requests -------------------------------------------------------------

    def test_5mb_value_round_trip(self):
        value = os.urandom(5 * 1024 * 1024)
        r = self.server.client()
        try:
            self.assertTrue(r.set("big", value))
            self.assertEqual(r.strlen("big"), len(value))
            self.assertEqual(r.get("big"), value)
        finally:
            r.delete("big")
            r.close()
        # The same over a raw socket, pipelined with a small command after it.
        s = self.raw(timeout=30)
        reader = RespReader(s, timeout=30)
        s.sendall(encode_command("SET", "big2", value) + encode_command("GET", "big2")
                  + encode_command("PING"))
        self.assertEqual(reader.read(), b"OK")
        self.assertEqual(reader.read(), value)
        self.assertEqual(reader.read(), b"PONG")
        self.assertEqual(reader.command("DEL", "big2"), 1)

    def test_request_sent_one_byte_at_a_time(self):
        s = self.raw()
        payload = (encode_command("SET", "slow", "a\r\nb c") + encode_command("GET", "slow")
                   + encode_command("DEL", "slow"))
        for b in payload:
            s.sendall(bytes([b]))
            time.sleep(0.0005)
        reader = RespReader(s)
        self.assertEqual(reader.read(), b"OK")
        self.assertEqual(reader.read(), b"a\r\nb c")
        self.assertEqual(reader.read(), 1)

    def test_binary_keys_and_values(self):
        reader = RespReader(self.raw())
        key = b"k\x00\r\n\xff*$"
        value = bytes(range(256)) * 4
        self.assertEqual(reader.command("SET", key, value), b"OK")
        self.assertEqual(reader.command("GET", key), value)
        self.assertEqual(reader.command("EXISTS", b"k"), 0)
        self.assertEqual(reader.command("DEL", key), 1)

    def test_many_arguments(self):
        reader = RespReader(self.raw(timeout=30), timeout=30)
        args = ["MSET"]
        for i in range(50000):
            args += [f"many:{i}", str(i)]
        self.assertEqual(reader.command(*args), b"OK")
        got = reader.command("MGET", *[f"many:{i}" for i in range(50000)])
        self.assertEqual(got, [str(i).encode() for i in range(50000)])
        self.assertEqual(reader.command("DEL", *[f"many:{i}" for i in range(50000)]), 50000)

    def test_client_disconnecting_mid_request(self):
        for payload in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc", b"*2\r\n$3\r\nGET", b"PI",
                        encode_command("SET", "half", "x" * 100000)[:50000]):
            s = self.server.raw()
            s.sendall(payload)
            s.close()
        # An abortive close (RST) with unread replies pending.
        s = self.server.raw()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(encode_command("GET", "keep:1") * 1000)
        s.close()
        self.assertIsNone(self.survivor.get("half"))


class InlineCommandsTest(unittest.TestCase):
    """Inline (telnet-style) commands. A fresh node per test, so a failure cannot leak."""

    def setUp(self):
        self.server = ShoalServer(threads=2).start()
        self.r = self.server.client(socket_timeout=3)
        self.r.mset({f"keep:{i}": f"value-{i}" for i in range(SURVIVOR_KEYS)})
        self.sock = self.server.raw(timeout=3)

    def tearDown(self):
        self.sock.close()
        try:
            self.assertTrue(self.server.alive())
            self.assertTrue(self.r.ping())
            self.assertEqual(self.r.mget([f"keep:{i}" for i in range(SURVIVOR_KEYS)]),
                             [f"value-{i}".encode() for i in range(SURVIVOR_KEYS)])
        finally:
            self.r.close()
            self.server.stop()

    def test_inline_ping(self):
        self.sock.sendall(b"PING\r\n")
        self.assertEqual(read_line(self.sock, 3), b"+PONG\r\n")
        self.sock.sendall(b"PING\n")  # a bare LF ends an inline command too
        self.assertEqual(read_line(self.sock, 3), b"+PONG\r\n")

    def test_inline_quoted_arguments(self):
        self.sock.sendall(b'SET k "a b"\r\nGET k\r\n')
        self.assertEqual(read_line(self.sock, 3), b"+OK\r\n")
        self.assertEqual(read_line(self.sock, 3), b"$3\r\n")
        self.assertEqual(read_line(self.sock, 3), b"a b\r\n")
        self.assertEqual(self.r.get("k"), b"a b")
        self.sock.sendall(b"SET k2 'it\\'s' \r\nSET k3 \"\\x41\\n\"\r\n")
        self.assertEqual(read_line(self.sock, 3), b"+OK\r\n")
        self.assertEqual(read_line(self.sock, 3), b"+OK\r\n")
        self.assertEqual(self.r.get("k2"), b"it's")
        self.assertEqual(self.r.get("k3"), b"A\n")

    def test_inline_mixed_with_multibulk(self):
        self.sock.sendall(encode_command("PING") + b"PING\r\n" + encode_command("ECHO", "x")
                          + b"\r\n" + b"ECHO y\r\n")
        reader = RespReader(self.sock, timeout=3)
        self.assertEqual([reader.read() for _ in range(4)], [b"PONG", b"PONG", b"x", b"y"])

    def test_dollar_line_outside_multibulk_is_an_inline_command(self):
        # Like Redis: "$3" outside a multibulk is the inline command "$3" (unknown), not a
        # protocol error, and the connection stays open.
        self.sock.sendall(b"$3\r\nfoo\r\n")
        self.assertEqual(read_line(self.sock, 3),
                         b"-ERR unknown command '$3', with args beginning with: \r\n")
        self.assertEqual(read_line(self.sock, 3),
                         b"-ERR unknown command 'foo', with args beginning with: \r\n")
        self.sock.sendall(encode_command("PING"))
        self.assertEqual(read_line(self.sock, 3), b"+PONG\r\n")

    def test_unbalanced_quotes(self):
        self.sock.sendall(b'SET k "abc\r\n')
        data = read_until_closed(self.sock, timeout=3)
        self.assertEqual(data, b"-ERR Protocol error: unbalanced quotes in request\r\n")


if __name__ == "__main__":
    unittest.main()
