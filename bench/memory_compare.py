#!/usr/bin/env python3
"""Memory comparison: shoal vs the system redis-server holding the same 1,000,000 keys.

Usage: bench/memory_compare.py [--keys N] [--shoal-threads T] [--batch B]

For each server in turn (never both at once) it starts the server fresh on a free loopback
port, waits for PING, reads its baseline resident memory, loads N keys ("key:%012d", 16 bytes)
with 32-byte values (hex of a seeded pseudo-random 16 bytes) by pipelining raw RESP SETs over
one socket in batches of B, checks DBSIZE == N, and reads VmRSS from /proc/<pid>/status and
used_memory from INFO memory. It then prints both servers' numbers and the ratios shoal/redis.
Only the processes this script started are stopped.

Environment: SHOAL_BIN (default <repo>/build/shoal), SHOAL_THREADS (default 2),
REDIS_SERVER (default redis-server).
"""
import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("server error: " + rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        raise RuntimeError("unexpected reply: %r" % line[:80])

    def command(self, *args):
        self.sock.sendall(encode(*args))
        return self.read_reply()

    def read_ok_replies(self, count):
        # Fast path for a batch of "+OK\r\n" replies.
        want = 5 * count
        while len(self.buf) < want:
            self._fill()
        got, self.buf = self.buf[:want], self.buf[want:]
        if got != b"+OK\r\n" * count:
            raise RuntimeError("unexpected reply in SET batch: %r" % got[:200])


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def info_field(conn, section, field):
    text = conn.command("INFO", section)
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return None


def wait_for_ping(port, proc, log_path, deadline_s=15.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            c = Conn(port, timeout=2.0)
            try:
                if c.command("PING") == "PONG":
                    return
            finally:
                c.close()
        except (OSError, RuntimeError):
            pass
        time.sleep(0.1)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-2000:]
    raise RuntimeError("server on port %d did not answer PING (exit=%s); log:\n%s" % (port, proc.poll(), tail))


def batches(n, batch, samples, seed=12345):
    """Yields (count, RESP payload); records the values of the keys in `samples` (a dict)."""
    rng = random.Random(seed)
    for start in range(0, n, batch):
        end = min(n, start + batch)
        parts = []
        for i in range(start, end):
            key = b"key:%012d" % i                   # 16 bytes
            val = rng.getrandbits(128).to_bytes(16, "little").hex().encode()  # 32 bytes
            if i in samples:
                samples[i] = val.decode()
            parts.append(b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$32\r\n%s\r\n" % (key, val))
        yield end - start, b"".join(parts)


def measure(name, argv, keys, batch, workdir):
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    log_path = os.path.join(workdir, name + ".log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_ping(port, proc, log_path)
        conn = Conn(port)
        base_rss = rss_kib(proc.pid)
        t0 = time.monotonic()
        # Keep two batches in flight: send batch k+1 before reading the replies to batch k.
        pending = []
        samples = dict.fromkeys({0, keys // 3, keys // 2, keys - 1})
        for count, payload in batches(keys, batch, samples):
            conn.sock.sendall(payload)
            pending.append(count)
            if len(pending) > 1:
                conn.read_ok_replies(pending.pop(0))
        for count in pending:
            conn.read_ok_replies(count)
        load_s = time.monotonic() - t0
        dbsize = int(conn.command("DBSIZE"))
        for i, want in samples.items():
            got = conn.command("GET", "key:%012d" % i)
            if got != want:
                raise RuntimeError("%s: GET key:%012d returned %r, expected %r" % (name, i, got, want))
        time.sleep(1.0)  # let background work (e.g. incremental rehashing) settle
        rss = rss_kib(proc.pid)
        used = info_field(conn, "memory", "used_memory")
        conn.close()
        return {
            "name": name, "pid": proc.pid, "dbsize": dbsize, "load_s": load_s,
            "base_rss_kib": base_rss, "rss_kib": rss, "used_memory": used,
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--shoal-threads", type=int, default=int(os.environ.get("SHOAL_THREADS") or 2))
    args = ap.parse_args()

    shoal_bin = os.environ.get("SHOAL_BIN") or os.path.join(REPO, "build", "shoal")
    redis_bin = os.environ.get("REDIS_SERVER") or "redis-server"
    if not os.access(shoal_bin, os.X_OK):
        sys.exit("shoal binary not found: %s (build it: ninja -C build shoal)" % shoal_bin)

    servers = [
        ("shoal", [shoal_bin, "serve", "--port", "{port}", "--threads", str(args.shoal_threads)]),
        ("redis", [redis_bin, "--port", "{port}", "--save", "", "--appendonly", "no", "--daemonize", "no"]),
    ]
    results = {}
    with tempfile.TemporaryDirectory(prefix="shoal-memory-compare.") as workdir:
        for name, argv in servers:
            r = measure(name, argv, args.keys, args.batch, workdir)
            results[name] = r
            print("# %s: pid %d, loaded %d keys in %.1fs, DBSIZE %d" %
                  (name, r["pid"], args.keys, r["load_s"], r["dbsize"]), file=sys.stderr)

    ok = True
    for r in results.values():
        if r["dbsize"] != args.keys:
            ok = False
            print("DBSIZE mismatch on %s: %d != %d" % (r["name"], r["dbsize"], args.keys), file=sys.stderr)

    def row(label, fn, fmt):
        s, r = fn(results["shoal"]), fn(results["redis"])
        ratio = ("%.2fx" % (s / r)) if (s is not None and r) else "n/a"
        fs = fmt % s if s is not None else "n/a"
        fr = fmt % r if r is not None else "n/a"
        print("%-26s %14s %14s %12s" % (label, fs, fr, ratio))

    mib = 1024.0 * 1024.0
    print("keys: %d (16-byte keys, 32-byte values), shoal --threads %d" % (args.keys, args.shoal_threads))
    print("%-26s %14s %14s %12s" % ("metric", "shoal", "redis", "shoal/redis"))
    row("DBSIZE", lambda r: r["dbsize"], "%d")
    row("RSS empty (MiB)", lambda r: r["base_rss_kib"] * 1024 / mib, "%.1f")
    row("RSS loaded (MiB)", lambda r: r["rss_kib"] * 1024 / mib, "%.1f")
    row("RSS per key (B)", lambda r: r["rss_kib"] * 1024.0 / args.keys, "%.1f")
    row("RSS delta per key (B)", lambda r: (r["rss_kib"] - r["base_rss_kib"]) * 1024.0 / args.keys, "%.1f")
    row("used_memory (MiB)", lambda r: None if r["used_memory"] is None else r["used_memory"] / mib, "%.1f")
    row("used_memory per key (B)", lambda r: None if r["used_memory"] is None else r["used_memory"] / args.keys, "%.1f")
    row("load time (s)", lambda r: r["load_s"], "%.2f")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
