"""Start/stop helper for shoal system tests.

The binary is taken from the SHOAL_BIN environment variable (set by ctest), or from the `binary`
argument, or else build/shoal relative to the repository root.

Each ShoalServer runs one real `shoal serve` process on a free loopback port. start() waits for
the node by polling PING until a deadline (a node that exits or hangs at start is reported at
once with its log; only a port taken by someone else is retried, on new ports). stop() sends
the process it started SIGTERM, by its pid, and a second one (which skips the graceful leave),
waits a bounded time for it to exit (so a sanitizer build's leak check runs) and only then
SIGKILLs it.

A sanitizer report in a node's log (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer,
ThreadSanitizer) fails the run: stop() raises it (after the process is gone), and every report
seen is printed again at exit with a failing status, so one raised where nobody looks (a loop
of stops, a tearDownClass) cannot be lost.
"""

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import redis

_REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0  # SIGTERM to exit; a sanitizer build's leak check runs in this time

# What the sanitizers print when they find something.
SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|LeakSanitizer:|"
                              r"runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer")
_sanitizer_reports = []  # (node, report excerpt) seen by stop(), in order
_started = []  # every ShoalServer that started a process, for the exit-time cleanup


def sanitizer_report(log):
    """The part of `log` from the first sanitizer report on (up to 6000 chars), or None."""
    m = SANITIZER_REPORT.search(log)
    if m is None:
        return None
    begin = log.rfind("\n", 0, m.start()) + 1
    return log[begin:begin + 6000]


def _at_exit():
    for server in list(_started):
        try:
            server.stop(check=False)
        except Exception:
            pass
    if _sanitizer_reports:
        for name, report in _sanitizer_reports:
            sys.stderr.write(f"\n=== sanitizer report in the log of {name} ===\n{report}\n")
        sys.stderr.write(f"FAILED: {len(_sanitizer_reports)} node log(s) with a sanitizer "
                         f"report\n")
        sys.stderr.flush()
        os._exit(1)


atexit.register(_at_exit)


class StartFailure(RuntimeError):
    """The node exited or did not answer at start (not retried)."""


def _port_taken(log):
    """True if the node's start failed because a port it was given was taken meanwhile."""
    return "Address already in use" in log or "EADDRINUSE" in log


def _log_tail(log, lines=60):
    return "\n".join(log.splitlines()[-lines:])


def find_binary(binary=None):
    path = binary or os.environ.get("SHOAL_BIN") or os.path.join(_REPO_ROOT, "build", "shoal")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(f"shoal binary not found or not executable: {path!r} (set SHOAL_BIN)")
    return path


def free_port():
    """A loopback port that was free a moment ago (the OS picked it for a bound port-0 socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), as used for Redis Cluster key slots."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key) -> int:
    if isinstance(key, str):
        key = key.encode()
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16(key) & 16383


def worker_of(key, threads=2) -> int:
    """The worker thread that owns `key` in a node run with `threads` workers."""
    return key_slot(key) % threads


def keys_on_workers(prefix="k", threads=2):
    """Returns one key name per worker, [key_on_worker_0, key_on_worker_1, ...]."""
    found = {}
    i = 0
    while len(found) < threads:
        k = f"{prefix}{i}"
        found.setdefault(worker_of(k, threads), k)
        i += 1
    return [found[w] for w in range(threads)]


class ShoalServer:
    def __init__(self, *, threads=2, requirepass=None, maxmemory=None, settings=None, binary=None):
        self.binary = find_binary(binary)
        self.threads = threads
        self.requirepass = requirepass
        self.maxmemory = maxmemory
        self.settings = dict(settings or {})
        self.port = None
        self.proc = None
        self._log = None
        self._log_text = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def _argv(self):
        argv = [self.binary, "serve", "--port", str(self.port), "--threads", str(self.threads),
                "--bind", "127.0.0.1"]
        if self.requirepass is not None:
            argv += ["--requirepass", self.requirepass]
        if self.maxmemory is not None:
            argv += ["--maxmemory", str(self.maxmemory)]
        for name, value in self.settings.items():
            argv += ["--set", f"{name}={value}"]
        return argv

    def start(self, attempts=5):
        for attempt in range(attempts):
            self.port = free_port()
            self._spawn(None)
            if self._started_ok(attempt, attempts, "shoal"):
                return self
        raise AssertionError("unreachable")

    def _spawn(self, env):
        self._log_text = ""
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self._argv(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        if self not in _started:
            _started.append(self)

    def _started_ok(self, attempt, attempts, name):
        """Waits for the process just spawned. True once it serves; False if a port it was given
        was taken meanwhile and attempts are left (the caller retries on new ports); raises
        StartFailure with the log's tail if it exited or hung for any other reason."""
        try:
            self._wait_ready()
            self._check_identity()
            return True
        except Exception as e:
            error = e
        log = self.log()
        self.stop(check=False)
        if (isinstance(error, PortTaken) or _port_taken(log)) and attempt + 1 < attempts:
            return False
        raise StartFailure(f"{name} did not start: {error}\n--- log (tail) ---\n{_log_tail(log)}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise StartFailure(f"shoal exited with status {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    reply = s.recv(64)
                    # With requirepass, PING before AUTH gets -NOAUTH: still proof it is serving.
                    if reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PONG from port {self.port} within {START_TIMEOUT}s")
            time.sleep(0.02)

    def _check_identity(self):
        # The port was free when picked, but another process could have taken it since; make sure
        # the node answering is the process we started.
        with self.client() as c:
            pid = c.info("server")["process_id"]
        if pid != self.proc.pid:
            raise PortTaken(f"port {self.port} is served by pid {pid}, not ours ({self.proc.pid})")

    def stop(self, check=True, graceful=True):
        """Stops the process: SIGTERM twice (a stop without the graceful leave), up to
        STOP_TIMEOUT for it to exit, then SIGKILL; with graceful=False, SIGKILL at once (a crash).
        Then, with check, raises AssertionError if the log holds a sanitizer report."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None and graceful:
                deadline = time.monotonic() + STOP_TIMEOUT
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                    # A second signal once the first one's stop is under way (logged) makes the
                    # node exit without handing its buckets over: no waiting for a leave.
                    logged_by = time.monotonic() + 5.0
                    while (proc.poll() is None and time.monotonic() < logged_by and
                           "signal 15 received" not in self.log()):
                        time.sleep(0.02)
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=10)
        if self in _started:
            _started.remove(self)
        if self._log is not None:
            self._log_text = self.log()
            self._log.close()
            self._log = None
            report = sanitizer_report(self._log_text)
            if report is not None:
                _sanitizer_reports.append((self.display_name(), report))
                if check:
                    raise AssertionError(f"sanitizer report in the log of {self.display_name()}:"
                                         f"\n{report}")

    def display_name(self):
        return getattr(self, "name", None) or f"shoal on port {self.port}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        if self._log is None:
            return self._log_text
        # pread, not seek + read: the node writes through the same open file (same offset), so
        # moving the offset back would make its next line overwrite the start of the log.
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        chunks, offset = [], 0
        while offset < size:
            chunk = os.pread(fd, size - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- clients -----------------------------------------------------------------------------

    def client(self, **kw):
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("password", self.requirepass)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


# -- raw socket helpers --------------------------------------------------------------------------

def encode_command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_line(sock, deadline=10.0) -> bytes:
    """Reads up to and including the first CRLF (or until EOF). Byte at a time: small replies only."""
    sock.settimeout(deadline)
    buf = b""
    while not buf.endswith(b"\r\n"):
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf


def read_until_closed(sock, timeout=10.0, limit=None) -> bytes:
    """Reads until the peer closes (or resets) the connection; raises on timeout."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
        if limit is not None and len(data) > limit:
            raise AssertionError(f"read more than {limit} bytes without the connection closing")
        if time.monotonic() > deadline:
            raise TimeoutError("connection not closed in time")


def is_closed(sock, timeout=10.0) -> bool:
    """True if the peer closes the connection within `timeout` (any pending data is discarded)."""
    try:
        read_until_closed(sock, timeout)
        return True
    except (TimeoutError, socket.timeout):
        return False


def wait_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ServerTestCase(unittest.TestCase):
    """One shoal node shared by all tests of the class; each test starts with FLUSHALL."""

    server_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.server = ShoalServer(**cls.server_kwargs)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.assertTrue(self.server.alive(), "shoal process died:\n" + self.server.log())
        self.r = self.server.client()
        self.r.flushall()
        self._sockets = []

    def tearDown(self):
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
        self.r.close()
        self.assertTrue(self.server.alive(), "shoal process died:\n" + self.server.log())

    def raw(self, timeout=10):
        s = self.server.raw(timeout)
        self._sockets.append(s)
        return s


class RespError(Exception):
    """An error reply read by RespReader (the text after '-')."""


class RespReader:
    """Reads whole RESP2/RESP3 replies from a socket (bulk strings as bytes, errors as RespError
    instances, maps as dicts, nulls as None, EOF as EOFError)."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if t == b"%":
            n = int(rest)
            return {self._key(self.read()): self.read() for _ in range(n)}
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        raise AssertionError(f"bad RESP reply line {line!r}")

    def read_typed(self):
        """Reads one reply; returns (its RESP type byte, e.g. b"%", and its value)."""
        while not self.buf:
            self._fill()
        t = self.buf[:1]
        return t, self.read()

    @staticmethod
    def _key(k):
        return tuple(k) if isinstance(k, list) else k

    def command(self, *args):
        self.sock.sendall(encode_command(*args))
        return self.read()


# -- clusters of nodes ---------------------------------------------------------------------------

NUM_BUCKETS = 16384


def free_cluster_port():
    """A port free a moment ago for both TCP and UDP on loopback (the cluster port needs both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free TCP+UDP port found")


def parse_info(text):
    """INFO text (str or bytes) as a dict of strings; redis-py's parsed dicts pass through."""
    if isinstance(text, dict):
        return {k: str(v) for k, v in text.items()}
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


class PortTaken(RuntimeError):
    """The port picked for a node is served by another process (a race with the OS's picks)."""


class ClusterNode(ShoalServer):
    """One `shoal serve` cluster member: its own client and cluster ports, a cookie, seeds, an
    optional data dir (keeps its id across restarts), a cluster mode (forward/redirect) and, with
    http=True, the admin HTTP API on a port of its own (off otherwise). SHOAL_* variables of the
    caller's environment do not leak in."""

    def __init__(self, name, *, cookie, seeds=(), data_dir=None, cluster_mode=None, http=False,
                 **kw):
        kw.setdefault("threads", 1)
        super().__init__(**kw)
        self.name = name
        self.cookie = cookie
        self.seeds = list(seeds)
        self.data_dir = data_dir
        self.cluster_mode = cluster_mode
        self.http = http
        self.cluster_port = None
        self.http_port = None

    def _argv(self):
        argv = super()._argv()
        http_port = str(self.http_port) if self.http else "-1"
        argv += ["--cluster-port", str(self.cluster_port), "--http-port", http_port,
                 "--cookie", self.cookie]
        if self.data_dir:
            argv += ["--data-dir", self.data_dir]
        if self.seeds:
            argv += ["--seeds", ",".join(self.seeds)]
        if self.cluster_mode:
            argv += ["--set", f"cluster-mode={self.cluster_mode}"]
        return argv

    @property
    def cluster_address(self):
        return f"127.0.0.1:{self.cluster_port}"

    def start(self, attempts=5, keep_ports=False):
        """Starts the node (returns once it answers PING: it may not serve keys yet); with
        keep_ports, the first attempt reuses the ports of its previous run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        for attempt in range(attempts):
            if not (keep_ports and attempt == 0 and self.port):
                self.port = free_port()
                self.cluster_port = free_cluster_port()
                self.http_port = free_port() if self.http else None
            self._spawn(env)
            if self._started_ok(attempt, attempts, self.name):
                return self
        raise AssertionError("unreachable")

    def kill9(self):
        """Crashes the node (SIGKILL by pid) and reaps it; keeps its log."""
        self.stop(graceful=False)

    def send_sigterm(self):
        os.kill(self.proc.pid, signal.SIGTERM)

    def wait_exit(self, timeout=30.0):
        """Waits for the process to exit; returns its status (None if it had to be killed)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        self.stop()
        return rc

    def info(self, section):
        """INFO <section> as a dict of strings; None if the node does not answer."""
        try:
            with self.client(socket_timeout=2) as c:
                return parse_info(c.execute_command("INFO", section))
        except Exception:
            return None

    def cluster_info(self):
        """INFO cluster as a dict with ints where they are numbers; None if no answer."""
        info = self.info("cluster")
        if info is None:
            return None
        return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in info.items()}

    def dbsize(self):
        with self.client(socket_timeout=5) as c:
            return c.dbsize()

    def command(self, *args, timeout=5.0):
        """One command over a fresh raw connection; error replies come back as RespError."""
        with self.raw(timeout) as s:
            return RespReader(s, timeout).command(*args)


def start_cluster(count, *, cookie, prefix="node", data_root=None, **kw):
    """Starts `count` ClusterNodes, the first one alone and the others with it as their seed.
    With data_root, each gets data_root/<name> as its data dir. Returns the list; on failure,
    every node started so far is stopped."""
    nodes = []
    try:
        for i in range(1, count + 1):
            name = f"{prefix}{i}"
            node = ClusterNode(name, cookie=cookie,
                               seeds=[nodes[0].cluster_address] if nodes else [],
                               data_dir=os.path.join(data_root, name) if data_root else None, **kw)
            nodes.append(node)
            node.start()
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def _serving_error(reply):
    """An error reply that means "this key is not being served right now" (as opposed to MOVED or
    ASK, which are a normal answer in redirect mode)."""
    if isinstance(reply, RespError):
        text = str(reply)
        return not (text.startswith("MOVED ") or text.startswith("ASK "))
    return False


def probe_keys(count=64):
    """Keys spread over the bucket space (one every 16384/count buckets or so)."""
    return [f"probe:{i}" for i in range(count)]


def parse_cluster_nodes(text):
    """CLUSTER NODES text -> (set of config epochs, {"ip:port": number of slots})."""
    if isinstance(text, bytes):
        text = text.decode()
    epochs, owners = set(), {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        epochs.add(f[6])
        addr = f[1].split("@")[0]
        for r in f[8:]:
            if r.startswith("["):  # a migration marker of myself's line
                continue
            a, _, b = r.partition("-")
            owners[addr] = owners.get(addr, 0) + int(b or a) - int(a) + 1
    return tuple(sorted(epochs)), owners


def cluster_state(nodes, probes=None):
    """One poll of a cluster: (settled?, description). Settled means every node answers, the
    buckets they serve add up to 16384, none is being sent or received, all report the same map
    epoch, each serves exactly its even share (floor or ceil), every node has the same map
    (CLUSTER NODES) and it names each node for exactly the buckets that node serves, and GETs of
    the probe keys on every node get no CLUSTERDOWN/TRYAGAIN/forwarding error."""
    infos = {n.name: n.cluster_info() for n in nodes}
    desc = "; ".join(
        f"{name}: " + (f"served={i.get('buckets_served')} send={i.get('buckets_sending')} "
                       f"recv={i.get('buckets_receiving')} epoch={i.get('cluster_epoch')} "
                       f"keys={i.get('keys')}" if i else "no answer")
        for name, i in infos.items())
    if any(i is None or "buckets_served" not in i for i in infos.values()):
        return False, desc
    served = [i["buckets_served"] for i in infos.values()]
    if sum(served) != NUM_BUCKETS:
        return False, desc
    if any(i["buckets_sending"] or i["buckets_receiving"] for i in infos.values()):
        return False, desc
    if len({i["cluster_epoch"] for i in infos.values()}) != 1:
        return False, desc
    share = NUM_BUCKETS / len(nodes)
    # The assignment gives each of N equal nodes floor or ceil of 16384/N buckets, exactly: a
    # looser check could pass between two migration batches and see buckets move afterwards.
    if any(abs(s - share) >= 1 for s in served):
        return False, desc
    # Every node has the same map (epoch and owners), and the map names each node for exactly the
    # buckets it serves (maps follow migrations a little later).
    maps = {}
    for n in nodes:
        try:
            text = n.command("CLUSTER", "NODES", timeout=3)
        except (OSError, EOFError) as e:
            return False, f"{desc}; {n.name}: {e}"
        if isinstance(text, RespError):
            return False, f"{desc}; {n.name} CLUSTER NODES: {text}"
        maps[n.name] = parse_cluster_nodes(text)
    first = next(iter(maps.values()))
    for name, m in maps.items():
        if m != first:
            return False, f"{desc}; maps differ: {name} has epoch {m[0]}, " \
                          f"{next(iter(maps))} has {first[0]}"
    epoch, owners = first
    for n, i in zip(nodes, infos.values()):
        mapped = owners.get(f"127.0.0.1:{n.port}", 0)
        if mapped != i["buckets_served"]:
            return False, f"{desc}; map (epoch {epoch}) names {n.name} for {mapped} buckets"
    for n in nodes:
        try:
            with n.raw(3) as s:
                reader = RespReader(s, 3)
                keys = probes or probe_keys()
                s.sendall(b"".join(encode_command("GET", k) for k in keys))
                for k in keys:
                    reply = reader.read()
                    if _serving_error(reply):
                        return False, f"{desc}; {n.name} GET {k}: {reply}"
        except (OSError, EOFError) as e:
            return False, f"{desc}; {n.name}: {e}"
    return True, desc


def wait_settled(nodes, timeout=30.0, total_keys=None, interval=0.05):
    """Polls cluster_state until it holds (and, with total_keys, until the nodes' DBSIZEs add up to
    it: copies of migrated buckets are dropped after the cut-over). Returns the seconds it took;
    raises AssertionError with the last state on timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    desc = ""
    while True:
        ok, desc = cluster_state(nodes)
        if ok and total_keys is not None:
            try:
                sizes = [n.dbsize() for n in nodes]
            except Exception as e:  # a node stopped answering
                sizes, ok = str(e), False
            if ok and sum(sizes) != total_keys:
                ok = False
            desc += f"; dbsize={sizes} (want sum {total_keys})"
        if ok:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster not settled after {timeout}s: {desc}")
        time.sleep(interval)


def step(fn):
    """For test classes whose tests are ordered steps on shared state (test_1_..., test_2_...):
    runs a step only if every earlier step passed, and marks the class broken (its `broken`
    attribute) if this one fails, so later steps are skipped instead of failing for the same
    cause."""
    import functools

    @functools.wraps(fn)
    def wrapper(self):
        cls = type(self)
        if getattr(cls, "broken", None):
            self.skipTest(f"an earlier step failed ({cls.broken})")
        try:
            fn(self)
        except unittest.SkipTest:
            raise
        except BaseException:
            cls.broken = fn.__name__
            raise

    return wrapper


def slot_owners(node):
    """The map as `node` has it (CLUSTER SLOTS): a list of 16384 "ip:port" strings (None for an
    unowned slot). An error reply fails the caller's test."""
    reply = node.command("CLUSTER", "SLOTS")
    if isinstance(reply, RespError):
        raise AssertionError(f"{getattr(node, 'name', node.port)}: CLUSTER SLOTS: {reply}")
    owners = [None] * NUM_BUCKETS
    for entry in reply:
        host, port = entry[2][0], entry[2][1]
        addr = f"{host.decode() if isinstance(host, bytes) else host}:{port}"
        for s in range(entry[0], entry[1] + 1):
            owners[s] = addr
    return owners


def moved_slots(before, after):
    """{(old owner, new owner): number of slots} for the slots whose owner changed."""
    out = {}
    for a, b in zip(before, after):
        if a != b:
            out[(a, b)] = out.get((a, b), 0) + 1
    return out
