#!/usr/bin/env python3
"""Replicated maps: local reads vs forwarded reads, propagation latency and write throughput of a
3-node shoal cluster, against a Redis primary with 2 replicas, in one run.

Usage: bench/replicated_compare.py [--help]

Setup. Three `shoal serve --threads T --replicated-map bench=rk:` nodes on free loopback ports
(cluster port = client port + 10000, one cookie, a data dir each in a temp dir, nodes 2 and 3
seeded with node 1, default `cluster-mode forward`), ready when every node sees 3 members alive,
cluster_state:ok, owns a third of the 16384 buckets (none moving), all serve the same CLUSTER
SLOTS, and the map reports synced=1. Later, with the shoal cluster stopped (never both at once):
a `redis-server --save '' --appendonly no` primary and two `--replicaof` replicas, ready when the
primary has 2 connected replicas and both links are up.

  1. Reads (shoal only), `redis-benchmark -c C -P 1|16 -q --csv`, N (-P 1) or N*SCALE (-P 16):
       replicated  GET rk:hot on node 1 (its local full copy)
       forwarded   GET skey  on node 1, skey a sharded key whose bucket node 2 owns
       owner       GET skey  on node 2 (context: the sharded key where it lives)
     The forwarded_commands counter of node 1 (INFO sharding) is printed for each run as a check.
  2. Propagation: SAMPLES times (after WARMUP), SET rk:prop <unique value> on node 1, then poll
     GET rk:prop on nodes 2 and 3 (one connection each, raw RESP, both GETs sent before either
     reply is read; the first poll leaves right behind the SET, whose reply is read once the
     value was seen) until both return the new value; latency = time.perf_counter() from just
     before sending the SET to the reply that showed the value on the later of the two. Its
     resolution is one poll round (printed: idle poll round p50/p99, and the idle SET round
     trip). Same for Redis: SET on the primary, poll both replicas. A sample not visible after
     2 s counts as a timeout.
  3. Writes: `redis-benchmark ... SET rk:__rand_int__ __rand_int__ -r KEYSPACE` (keys and values
     both random 12-digit numbers, so concurrent writers to different nodes really conflict),
     -P 1 and -P 16: against node 1 alone, and against all 3 nodes at once (3 concurrent
     redis-benchmark processes: sum of their rps, and total requests / wall time). Redis: the
     primary (2 replicas attached), by 1 process and by 3 concurrent processes (replicas are
     read-only). After each run: time until every node (replica) holds the same key count and
     the same values for 2000 sampled keys (polled, at most CONVERGE_S); after the last run, a
     full comparison of all KEYSPACE keys (MGET in chunks of 1000) on every node.

CPU: for every redis-benchmark run the script prints (stderr) the CPU used by the benchmark
client(s) (getrusage of the children), by the servers (/proc/PID/stat) and by everything else
on the machine (/proc/stat busy time minus those two: other people's work = noise), in % of one
core (100 x nproc = the machine); the report ends with the range of "everything else".

Environment (defaults keep a run under ~3 minutes on 2 cores):
  BENCH_N           requests per redis-benchmark run (per process) at -P 1 (default 100000)
  BENCH_P16_SCALE   at -P 16, BENCH_N times this (default 10)
  BENCH_CLIENTS     redis-benchmark -c (default 50)
  BENCH_KEYSPACE    redis-benchmark -r for the writes (default 100000)
  BENCH_SAMPLES     propagation samples per system (default 2000)
  BENCH_WARMUP      propagation warm-up samples, not counted (default 100)
  BENCH_CONVERGE_S  seconds allowed for convergence after a write run (default 15)
  BENCH_TIMEOUT     seconds allowed per redis-benchmark run (default 120)
  BENCH_PARTS       comma-separated subset of read,prop,write (default all three)
  BENCH_KEEP        set: keep the temp dir (server logs, data dirs) instead of removing it
  SHOAL_BIN         shoal binary (default <repo>/build/shoal)
  SHOAL_THREADS     worker threads per shoal node (default 2)
  REDIS_SERVER      redis-server binary (default redis-server from PATH)

Only the processes this script started are stopped, by pid (shoal nodes with SIGKILL, Redis
with SIGTERM then SIGKILL after 5 s), on exit, errors and signals included; the servers also
get PR_SET_PDEATHSIG so they die if this script is killed. The temp dir is removed.
"""
import ctypes
import math
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import redis  # noqa: F401  (redis-py, for the admin side; the timed loops use raw sockets)
except ImportError:
    # A python3 from pyenv or a venv may lack Debian's python3-redis: retry with the system one.
    if (os.path.exists("/usr/bin/python3") and not os.environ.get("_REPLICATED_COMPARE_REEXEC")
            and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3")):
        os.environ["_REPLICATED_COMPARE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("needs redis-py (Debian: apt-get install python3-redis)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


N = env_int("BENCH_N", 100000)
N16 = N * env_int("BENCH_P16_SCALE", 10)
CLIENTS = env_int("BENCH_CLIENTS", 50)
KEYSPACE = env_int("BENCH_KEYSPACE", 100000)
SAMPLES = env_int("BENCH_SAMPLES", 2000)
WARMUP = env_int("BENCH_WARMUP", 100)
CONVERGE_S = env_int("BENCH_CONVERGE_S", 15)
BENCH_TIMEOUT = env_int("BENCH_TIMEOUT", 120)
PARTS = set((os.environ.get("BENCH_PARTS") or "read,prop,write").split(","))
SHOAL_BIN = os.environ.get("SHOAL_BIN") or os.path.join(REPO, "build", "shoal")
SHOAL_THREADS = env_int("SHOAL_THREADS", 2)
REDIS_BIN = os.environ.get("REDIS_SERVER") or "redis-server"
MAP_NAME, MAP_PREFIX = "bench", "rk:"
POLL_DEADLINE_S = 2.0
PROP_TOTAL_DEADLINE_S = 90.0
VALUE = b"xxxxxxxx"


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- raw RESP client for the timed loops and the content checks ---------------------------------

class RespError(Exception):
    pass


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            data = bytes(self.buf[self.pos:self.pos + n])
            self.pos += n + 2
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if kind == b"_":
            return None
        raise RespError("unexpected reply: %r" % line[:80])

    def command(self, *args):
        self.send(encode(*args))
        return self.read()


def admin(port):
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)


# --- processes -------------------------------------------------------------------------------

def _pdeathsig():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _can_bind(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


_used_ports = set()


def free_port(with_cluster_port=False):
    """A loopback port free a moment ago (and port + 10000 too, TCP and UDP, if asked)."""
    for _ in range(1000):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p in _used_ports or p + 10000 in _used_ports:
            continue
        if with_cluster_port and (p >= 55000 or not _can_bind(p + 10000)):
            continue
        _used_ports.update((p, p + 10000))
        return p
    raise RuntimeError("no free port pair found")


class Procs:
    """Every process this script started; stopped by pid only."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.servers = []   # (name, Popen, kill_at_once, log file)
        self.benches = []   # running redis-benchmark Popens

    def start_server(self, name, argv, kill_at_once, env=None):
        logf = open(os.path.join(self.workdir, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, preexec_fn=_pdeathsig)
        self.servers.append((name, p, kill_at_once, logf))
        return p

    def server_pids(self):
        return [p.pid for _, p, _, _ in self.servers if p.poll() is None]

    def check_alive(self):
        for name, p, _, _ in self.servers:
            if p.poll() is not None:
                raise RuntimeError("%s (pid %d) exited with %s; log tail:\n%s"
                                   % (name, p.pid, p.returncode, self.log_tail(name)))

    def log_tail(self, name, chars=3000):
        try:
            with open(os.path.join(self.workdir, name + ".log"), errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return "(no log)"

    def stop_servers(self):
        for _, p, at_once, _ in self.servers:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL if at_once else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, p, _, logf in self.servers:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            logf.close()
        self.servers = []

    def stop_benches(self):
        for p in self.benches:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.benches = []


def wait_until(deadline_s, what, fn, procs=None, interval=0.1):
    deadline = time.monotonic() + deadline_s
    last_err = None
    while time.monotonic() < deadline:
        if procs is not None:
            procs.check_alive()
        try:
            if fn():
                return
        except (OSError, redis.RedisError, RespError) as e:
            last_err = e
        time.sleep(interval)
    raise RuntimeError("timed out after %ss waiting for %s (last error: %s)" % (deadline_s, what, last_err))


def pings(port):
    c = Conn(port, timeout=2)
    try:
        return c.command("PING") == b"PONG"
    finally:
        c.close()


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0


def cpu_stat():
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    total = sum(v[:8])
    return total - idle, total


def machine_busy(st0, st1):
    """Busy CPU between two cpu_stat() readings, in % of one core (so 100 * nproc = all busy)."""
    busy, total = st1[0] - st0[0], st1[1] - st0[1]
    return 100.0 * busy / total * (os.cpu_count() or 1) if total > 0 else float("nan")


# --- redis-benchmark ----------------------------------------------------------------------------

def run_benchmarks(procs, runs):
    """runs: list of (port, n, pipeline, command words). Starts them all at once and waits.
    Returns dict(rps=[...], p50=[...], wall, client_cpu %, server_cpu %, total)."""
    server_pids = procs.server_pids()
    s0 = {pid: cpu_ticks(pid) for pid in server_pids}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    st0 = cpu_stat()
    outs = []
    t0 = time.perf_counter()
    for port, n, pipeline, cmd in runs:
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-c", str(CLIENTS),
                "-P", str(pipeline), "-q", "--csv"]
        if any("__rand_int__" in w for w in cmd):
            argv += ["-r", str(KEYSPACE)]
        argv += cmd
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.benches.append(p)
        outs.append((p, argv))
    results = []
    deadline = time.monotonic() + BENCH_TIMEOUT
    for p, argv in outs:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            procs.stop_benches()
            raise RuntimeError("redis-benchmark timed out after %ds: %s" % (BENCH_TIMEOUT, " ".join(argv)))
        if p.returncode != 0:
            raise RuntimeError("redis-benchmark failed (%d): %s\n%s" % (p.returncode, " ".join(argv),
                                                                         err.decode(errors="replace")))
        rps = p50 = None
        for line in out.decode(errors="replace").splitlines():
            cells = [c.strip('"') for c in line.split('","')]
            if len(cells) >= 5 and cells[0] != "test":
                rps, p50 = float(cells[1]), float(cells[4])
        if rps is None:
            raise RuntimeError("no result from redis-benchmark: %s\nstdout: %s\nstderr: %s"
                               % (" ".join(argv), out.decode(errors="replace"), err.decode(errors="replace")))
        results.append((rps, p50))
    wall = time.perf_counter() - t0
    st1 = cpu_stat()
    procs.benches = [b for b in procs.benches if b.poll() is None]
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall * 100
    server_cpu = sum(cpu_ticks(pid) - s0[pid] for pid in server_pids) / CLK_TCK / wall * 100
    total = sum(r[1] for r in runs)
    busy = machine_busy(st0, st1)
    return {"machine_busy": busy, "others_cpu": busy - client_cpu - server_cpu,"rps": [r[0] for r in results], "p50": [r[1] for r in results], "wall": wall,
            "client_cpu": client_cpu, "server_cpu": server_cpu, "total": total,
            "sum": sum(r[0] for r in results), "agg": total / wall}


def describe(label, r):
    rps = " + ".join("%.0f" % x for x in r["rps"])
    extra = (" = %.0f (sum); %.0f by total/wall" % (r["sum"], r["agg"])) if len(r["rps"]) > 1 else ""
    log("  %-44s %s rps%s, p50 %s ms, %.2f s, CPU %% of a core: client %.0f, servers %.0f, everything else "
        "%.0f (of %d) (load %s)"
        % (label, rps, extra, "/".join("%.3f" % x for x in r["p50"]), r["wall"], r["client_cpu"],
           r["server_cpu"], max(0.0, r["others_cpu"]), 100 * (os.cpu_count() or 1), load()))


# --- clusters -----------------------------------------------------------------------------------

def node_env():
    # The nodes get their settings from the command line only: no SHOAL_* variable of the caller's.
    return {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}


def start_shoal(procs, workdir):
    ports = [free_port(with_cluster_port=True) for _ in range(3)]
    cookie = "replicated-compare-%d-%d" % (os.getpid(), random.getrandbits(32))
    for i, port in enumerate(ports):
        argv = [SHOAL_BIN, "serve", "--port", str(port), "--threads", str(SHOAL_THREADS),
                "--cluster-port", str(port + 10000), "--http-port", "-1", "--cookie", cookie,
                "--data-dir", os.path.join(workdir, "node%d" % (i + 1)),
                "--replicated-map", "%s=%s" % (MAP_NAME, MAP_PREFIX)]
        if i > 0:
            argv += ["--seeds", "127.0.0.1:%d" % (ports[0] + 10000)]
        p = procs.start_server("shoal-node%d" % (i + 1), argv, kill_at_once=True, env=node_env())
        wait_until(15, "shoal node %d (port %d) to answer PING" % (i + 1, port), lambda: pings(port), procs)
        log("shoal node %d: port %d, cluster port %d, pid %d" % (i + 1, port, port + 10000, p.pid))
    t0 = time.monotonic()
    wait_until(60, "the shoal cluster to settle", lambda: shoal_settled(ports), procs, interval=0.2)
    log("shoal cluster settled %.1f s after the last node answered PING" % (time.monotonic() - t0))
    return ports


def shoal_settled(ports):
    share = 16384 // len(ports)
    total = 0
    slot_maps = set()
    for port in ports:
        a = admin(port)
        try:
            if a.info("membership").get("members_alive") != len(ports):
                return False
            if "cluster_state:ok" not in a.execute_command("CLUSTER", "INFO"):
                return False
            c = a.info("cluster")
            served = c.get("buckets_served", 0)
            if c.get("buckets_sending") != 0 or c.get("buckets_receiving") != 0:
                return False
            if not share * 98 // 100 < served < share * 102 // 100:
                return False
            total += served
            m = a.info("replicated").get("map_" + MAP_NAME)
            if not isinstance(m, dict) or m.get("synced") != 1:
                return False
            slots = a.execute_command("CLUSTER", "SLOTS")
            slot_maps.add(tuple(sorted((s[0], s[1], s[2][1]) for s in slots)))
        finally:
            a.close()
    return total == 16384 and len(slot_maps) == 1


def owner_port(port, key):
    a = admin(port)
    try:
        slot = a.execute_command("CLUSTER", "KEYSLOT", key)
        for s in a.execute_command("CLUSTER", "SLOTS"):
            if s[0] <= slot <= s[1]:
                return slot, s[2][1]
    finally:
        a.close()
    return slot, None


def start_redis(procs, workdir):
    ports = [free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        argv = [REDIS_BIN, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", workdir]
        if i > 0:
            argv += ["--replicaof", "127.0.0.1", str(ports[0])]
        name = "redis-primary" if i == 0 else "redis-replica%d" % i
        p = procs.start_server(name, argv, kill_at_once=False)
        wait_until(15, "%s (port %d) to answer PING" % (name, port), lambda: pings(port), procs)
        log("%s: port %d, pid %d" % (name, port, p.pid))

    def ready():
        a = admin(ports[0])
        try:
            if a.info("replication").get("connected_slaves") != 2:
                return False
        finally:
            a.close()
        for port in ports[1:]:
            a = admin(port)
            try:
                r = a.info("replication")
                if r.get("master_link_status") != "up" or r.get("master_sync_in_progress") != 0:
                    return False
            finally:
                a.close()
        return True

    wait_until(30, "the Redis replicas to be in sync", ready, procs)
    return ports


# --- part 1: reads ------------------------------------------------------------------------------

def forwarded_commands(port):
    a = admin(port)
    try:
        return a.info("sharding").get("forwarded_commands", 0)
    finally:
        a.close()


def part_reads(procs, ports):
    res = {}
    a = admin(ports[0])
    try:
        a.set(MAP_PREFIX + "hot", VALUE)
        skey = None
        for i in range(10000):
            k = "skey:%d" % i
            slot, owner = owner_port(ports[0], k)
            if owner == ports[1]:
                skey = k
                break
        if skey is None:
            raise RuntimeError("no sharded key owned by node 2 found")
        a.set(skey, VALUE)  # forwarded to node 2 by node 1
    finally:
        a.close()
    log("part 1: replicated key %shot; sharded key %s (bucket %d, owner node 2 = port %d)"
        % (MAP_PREFIX, skey, slot, ports[1]))
    def visible(port):
        c = Conn(port, timeout=2)
        try:
            return c.command("GET", MAP_PREFIX + "hot") == VALUE and c.command("GET", skey) == VALUE
        finally:
            c.close()

    for port in ports:  # every node has its copy of rk:hot; skey reads the same through any node
        wait_until(5, "rk:hot and %s on port %d" % (skey, port), lambda: visible(port), procs)
    for pipeline in (1, 16):
        n = N if pipeline == 1 else N16
        for kind, port, key in (("replicated", ports[0], MAP_PREFIX + "hot"),
                                ("forwarded", ports[0], skey), ("owner", ports[1], skey)):
            f0 = forwarded_commands(ports[0])
            r = run_benchmarks(procs, [(port, n, pipeline, ["GET", key])])
            r["forwarded_delta"] = forwarded_commands(ports[0]) - f0
            res[kind, pipeline] = r
            describe("%s -P %d -n %d (GET %s on port %d)" % (kind, pipeline, n, key, port), r)
            log("    node 1 forwarded_commands +%d" % r["forwarded_delta"])
    res["skey"] = skey
    return res


# --- part 2: propagation ------------------------------------------------------------------------

def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, max(0, int(math.ceil(q * len(sorted_vals))) - 1))]


def part_propagation(label, writer_port, reader_ports):
    key = MAP_PREFIX + "prop"
    w = Conn(writer_port)
    readers = [Conn(p) for p in reader_ports]
    nonce = b"%x" % random.getrandbits(40)
    st0 = cpu_stat()
    try:
        if w.command("SET", key, b"start") != b"OK":
            raise RuntimeError("SET failed")
        # Idle poll rounds (both GETs sent, then both replies read): the measurement resolution.
        rounds = []
        for _ in range(500):
            t = time.perf_counter()
            for c in readers:
                c.send(encode("GET", key))
            for c in readers:
                c.read()
            rounds.append(time.perf_counter() - t)
        rounds.sort()
        acks = []  # idle SET round trips on the writer, for reference
        for i in range(500):
            t = time.perf_counter()
            if w.command("SET", key, b"idle-%d" % i) != b"OK":
                raise RuntimeError("SET failed")
            acks.append(time.perf_counter() - t)
        acks.sort()
        lat, polls = [], []
        timeouts = 0
        get = encode("GET", key)
        end_all = time.monotonic() + PROP_TOTAL_DEADLINE_S
        for i in range(WARMUP + SAMPLES):
            if time.monotonic() > end_all:
                log("  %s: stopped after %d samples (%.0f s limit)" % (label, i, PROP_TOTAL_DEADLINE_S))
                break
            val = b"%s-%d" % (nonce, i)
            msg = encode("SET", key, val)
            # The first poll goes out right behind the SET, without waiting for its reply (read
            # after the value was seen), so the SET's round trip is not a floor of the figure.
            t0 = time.perf_counter()
            w.send(msg)
            pending = list(readers)
            last = t0
            n_polls = 0
            deadline = t0 + POLL_DEADLINE_S
            while pending:
                for c in pending:
                    c.send(get)
                still = []
                for c in pending:
                    v = c.read()
                    now = time.perf_counter()
                    if v == val:
                        last = now
                    else:
                        still.append(c)
                pending = still
                n_polls += 1
                if pending and now > deadline:
                    break
            if w.read() != b"OK":
                raise RuntimeError("SET failed")
            if i < WARMUP:
                continue
            if pending:
                timeouts += 1
                continue
            lat.append(last - t0)
            polls.append(n_polls)
        lat.sort()
        return {"machine_busy": machine_busy(st0, cpu_stat()), "n": len(lat), "timeouts": timeouts, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
                "max": lat[-1] if lat else float("nan"), "mean": sum(lat) / len(lat) if lat else float("nan"),
                "ack_p50": pct(acks, 0.5), "round_p50": pct(rounds, 0.5), "round_p99": pct(rounds, 0.99),
                "polls_mean": sum(polls) / len(polls) if polls else float("nan")}
    finally:
        w.close()
        for c in readers:
            c.close()


def describe_prop(label, r):
    log("  %s: %d samples, %d timeouts: p50 %.1f us, p99 %.1f us, max %.1f us, mean %.1f us; idle SET round "
        "trip p50 %.1f us; idle poll round p50 %.1f us (p99 %.1f); %.2f poll rounds per sample; machine busy "
        "%.0f%% of a core (this script included)"
        % (label, r["n"], r["timeouts"], r["p50"] * 1e6, r["p99"] * 1e6, r["max"] * 1e6, r["mean"] * 1e6,
           r["ack_p50"] * 1e6, r["round_p50"] * 1e6, r["round_p99"] * 1e6, r["polls_mean"], r["machine_busy"]))


# --- part 3: writes and convergence ------------------------------------------------------------

def keyspace_keys():
    return ["%s%012d" % (MAP_PREFIX, i) for i in range(KEYSPACE)]


def mget_all(port, keys, chunk=1000):
    c = Conn(port, timeout=30)
    try:
        out = []
        for i in range(0, len(keys), chunk):
            out.extend(c.command("MGET", *keys[i:i + chunk]))
        return out
    finally:
        c.close()


def key_count(port, shoal):
    a = admin(port)
    try:
        if shoal:
            for m in a.execute_command("RMAP.LIST"):
                d = dict(zip(m[0::2], m[1::2]))
                if d.get("name") == MAP_NAME:
                    return int(d["keys"])
            raise RuntimeError("map %s not in RMAP.LIST" % MAP_NAME)
        return a.dbsize()
    finally:
        a.close()


def wait_converged(ports, shoal, sample_keys):
    """Polls until every node holds the same key count and the same values of sample_keys.
    Returns (seconds, counts, converged, checks); one check takes a few ms to tens of ms (the
    key counts and 2000 MGET values from every node), which bounds the figure's resolution."""
    t0 = time.monotonic()
    deadline = t0 + CONVERGE_S
    checks = 0
    while True:
        checks += 1
        counts = [key_count(p, shoal) for p in ports]
        same = len(set(counts)) == 1
        if same:
            vals = [mget_all(p, sample_keys) for p in ports]
            same = all(v == vals[0] for v in vals[1:])
        if same or time.monotonic() > deadline:
            return time.monotonic() - t0, counts, same, checks
        time.sleep(0.01)


def full_compare(ports):
    keys = keyspace_keys()
    vals = [mget_all(p, keys) for p in ports]
    present = sum(v is not None for v in vals[0])
    diff = [sum(1 for a, b in zip(vals[0], v) if a != b) for v in vals[1:]]
    return present, diff


def part_writes(procs, label, write_ports, all_ports, shoal):
    """write_ports: [single target, ...three targets]; all_ports: the nodes to compare."""
    res = {}
    cmd = ["SET", MAP_PREFIX + "__rand_int__", "__rand_int__"]
    rng = random.Random(7)
    sample_keys = ["%s%012d" % (MAP_PREFIX, rng.randrange(KEYSPACE)) for _ in range(2000)]
    for pipeline in (1, 16):
        n = N if pipeline == 1 else N16
        for kind, targets in (("one", write_ports[:1]), ("three", write_ports)):
            r = run_benchmarks(procs, [(p, n, pipeline, cmd) for p in targets])
            secs, counts, ok, checks = wait_converged(all_ports, shoal, sample_keys)
            r.update(converge_s=secs, counts=counts, converged=ok, checks=checks)
            res[kind, pipeline] = r
            describe("%s %s -P %d -n %d x%d" % (label, kind, pipeline, n, len(targets)), r)
            log("    %s after %.3f s (check %d): keys per node %s"
                % ("converged" if ok else "NOT converged", secs, checks, counts))
    secs, counts, ok, _ = wait_converged(all_ports, shoal, sample_keys)
    present, diff = full_compare(all_ports)
    res["final"] = {"counts": counts, "present": present, "diff": diff, "converged": ok}
    log("  %s final: keys per node %s; %d of %d keyspace keys present; values differing from node 1: %s"
        % (label, counts, present, KEYSPACE, diff))
    if shoal:
        stats = []
        for i, p in enumerate(all_ports):
            a = admin(p)
            try:
                m = a.info("replicated")["map_" + MAP_NAME]
            finally:
                a.close()
            stats.append(m)
            log("    node %d INFO replicated: %s" % (i + 1, ", ".join(
                "%s=%s" % (k, m.get(k)) for k in ("keys", "local_writes", "remote_applied", "remote_stale",
                                                  "batches_sent", "batches_received", "syncs", "sync_failures",
                                                  "sync_entries_received", "sync_entries_sent", "malformed"))))
        # Every change batch a node broadcast should have reached both others (the bus is
        # at-most-once; anti-entropy repairs what it loses).
        sent = sum(m["batches_sent"] for m in stats)
        lost = [sent - m["batches_sent"] - m["batches_received"] for m in stats]
        res["final"]["batches_missing"] = lost
        log("    change batches sent by the other nodes but not received, per node: %s" % lost)
    return res


# --- report -------------------------------------------------------------------------------------

def ratio(a, b):
    try:
        return "%.2fx" % (a / b)
    except (TypeError, ZeroDivisionError):
        return "n/a"


def report(reads, prop, writes):
    print()
    print("Replicated maps: shoal 3 nodes (--threads %d each) vs Redis primary + 2 replicas; "
          "%d cores shared by every server and client" % (SHOAL_THREADS, os.cpu_count()))
    if reads:
        print()
        print("1. Reads, one redis-benchmark -c %d, GET of one fixed key, -n %d at -P 1, %d at -P 16"
              % (CLIENTS, N, N16))
        print("%-4s %14s %14s %14s %12s %12s   %s" % ("-P", "replicated", "forwarded", "sharded owner",
                                                     "repl/fwd", "repl/owner", "p50 ms repl/fwd/owner"))
        for p in (1, 16):
            r, f, o = reads["replicated", p], reads["forwarded", p], reads["owner", p]
            print("%-4d %14.0f %14.0f %14.0f %12s %12s   %.3f/%.3f/%.3f"
                  % (p, r["rps"][0], f["rps"][0], o["rps"][0], ratio(r["rps"][0], f["rps"][0]),
                     ratio(r["rps"][0], o["rps"][0]), r["p50"][0], f["p50"][0], o["p50"][0]))
        print("(replicated: GET %shot on node 1; forwarded: GET %s on node 1, owned by node 2; owner: the same "
              "GET on node 2)" % (MAP_PREFIX, reads["skey"]))
    if prop:
        print()
        print("2. Propagation: SET on node 1 / the primary until the value is visible on both others, "
              "%d samples (us)" % SAMPLES)
        print("%-22s %9s %9s %9s %9s %9s %7s %12s %15s" % ("system", "p50", "p99", "max", "mean", "timeouts",
                                                             "polls", "SET rtt p50", "poll round p50"))
        for name in ("shoal", "redis"):
            r = prop.get(name)
            if r:
                print("%-22s %9.1f %9.1f %9.1f %9.1f %9d %7.2f %12.1f %15.1f"
                      % (name, r["p50"] * 1e6, r["p99"] * 1e6, r["max"] * 1e6, r["mean"] * 1e6, r["timeouts"],
                         r["polls_mean"], r["ack_p50"] * 1e6, r["round_p50"] * 1e6))
        if prop.get("shoal") and prop.get("redis"):
            s, r = prop["shoal"], prop["redis"]
            print("%-22s %9s %9s %9s %9s" % ("shoal/redis", ratio(s["p50"], r["p50"]), ratio(s["p99"], r["p99"]),
                                              ratio(s["max"], r["max"]), ratio(s["mean"], r["mean"])))
        print("(from sending the SET; the polls start right behind it. Resolution = one poll round: a GET to both "
              "readers, both replies;\n 'polls' = mean poll rounds per sample; SET rtt = idle SET round trip, "
              "for reference)")
    if writes:
        print()
        print("3. Writes, SET %s__rand_int__ __rand_int__ -r %d, -c %d per process, -n %d (-P 1) / %d (-P 16) "
              "per process" % (MAP_PREFIX, KEYSPACE, CLIENTS, N, N16))
        print("%-4s %-34s %12s %12s %12s %10s" % ("-P", "target", "shoal rps", "redis rps", "shoal/redis",
                                                  "converged"))
        for p in (1, 16):
            for kind, label in (("one", "1 process -> node 1 / primary"),
                                ("three", "3 processes -> 3 nodes / primary")):
                s = writes.get("shoal", {}).get((kind, p))
                r = writes.get("redis", {}).get((kind, p))
                sv = s["sum"] if s else None
                rv = r["sum"] if r else None
                conv = "/".join(("%.2fs%s" % (x["converge_s"], "*" if x["checks"] == 1 else ""))
                                if x["converged"] else "NO" for x in (s, r) if x)
                print("%-4d %-34s %12s %12s %12s %10s" % (p, label, "%.0f" % sv if sv else "n/a",
                                                          "%.0f" % rv if rv else "n/a", ratio(sv, rv), conv))
                if kind == "three":
                    print("%-4s %-34s %12s %12s %12s" % ("", "  (total requests / wall)",
                                                         "%.0f" % s["agg"] if s else "n/a",
                                                         "%.0f" % r["agg"] if r else "n/a",
                                                         ratio(s and s["agg"], r and r["agg"])))
        print("(3 processes: sum of their rps; 'converged': time after the run until key counts and 2000 sampled "
              "values matched on all nodes,\n shoal/redis; * = at the first check, i.e. within the time one check takes)")
        for name in ("shoal", "redis"):
            f = writes.get(name, {}).get("final")
            if f:
                print("%s final check: keys per node %s, %d/%d keyspace keys present, values differing from "
                      "node 1 (full MGET): %s -> %s%s" % (name, f["counts"], f["present"], KEYSPACE, f["diff"],
                                                          "OK" if f["converged"] and not any(f["diff"])
                                                          and len(set(f["counts"])) == 1 else "MISMATCH",
                                                          "; change batches missing per node: %s" % f["batches_missing"]
                                                          if "batches_missing" in f else ""))


def scan_shoal_logs(workdir):
    """The warning and error lines (level W or E) of the shoal nodes' logs."""
    notes = []
    for i in range(1, 4):
        try:
            with open(os.path.join(workdir, "shoal-node%d.log" % i), errors="replace") as f:
                for line in f:
                    parts = line.split(" ", 2)
                    if len(parts) > 2 and parts[1] in ("W", "E"):
                        notes.append("node%d: %s" % (i, line.rstrip()[:300]))
        except OSError:
            pass
    return notes


def noise_line(reads, prop, writes):
    others = []
    for d in [reads or {}] + list(writes.values()):
        others += [r["others_cpu"] for r in d.values() if isinstance(r, dict) and "others_cpu" in r]
    if others:
        print()
        print("Noise: CPU used by other processes during the redis-benchmark runs: %.0f-%.0f%% of a core "
              "(median %.0f%%; the machine has %d%%)" % (max(0.0, min(others)), max(others),
                                                       sorted(others)[len(others) // 2], 100 * (os.cpu_count() or 1)))


def main():
    if len(sys.argv) > 1:
        if sys.argv[1] in ("-h", "--help"):
            print(__doc__)
            return 0
        sys.exit("unknown argument: %s (try --help)" % sys.argv[1])
    for tool in ("redis-benchmark", REDIS_BIN):
        if shutil.which(tool) is None:
            sys.exit("missing tool: %s" % tool)
    bin_wait = time.monotonic() + 120
    while not os.access(SHOAL_BIN, os.X_OK):  # it may be momentarily missing during a rebuild
        if time.monotonic() > bin_wait:
            sys.exit("shoal binary not found: %s (build it: ninja -C build shoal)" % SHOAL_BIN)
        log("waiting for %s to appear" % SHOAL_BIN)
        time.sleep(5)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        commit = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %cd", "--date=iso"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    st = os.stat(SHOAL_BIN)
    log("shoal: %s (modified %s UTC; HEAD %s), --threads %d; redis: %s" % (
        SHOAL_BIN, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(st.st_mtime)), commit, SHOAL_THREADS,
        subprocess.run([REDIS_BIN, "--version"], capture_output=True, text=True).stdout.split(" sha")[0]))
    log("N=%d N16=%d clients=%d keyspace=%d samples=%d; %d cores; load %s; start %s UTC"
        % (N, N16, CLIENTS, KEYSPACE, SAMPLES, os.cpu_count(), load(), time.strftime("%H:%M:%S", time.gmtime())))

    workdir = tempfile.mkdtemp(prefix="shoal-replicated-compare.")
    procs = Procs(workdir)
    reads, prop, writes = None, {}, {}
    t_start = time.monotonic()
    try:
        ports = start_shoal(procs, workdir)
        if "read" in PARTS:
            reads = part_reads(procs, ports)
        if "prop" in PARTS:
            log("part 2: shoal propagation, SET on node 1, poll nodes 2 and 3 (load %s)" % load())
            prop["shoal"] = part_propagation("shoal", ports[0], ports[1:])
            describe_prop("shoal", prop["shoal"])
        if "write" in PARTS:
            log("part 3: shoal writes (load %s)" % load())
            writes["shoal"] = part_writes(procs, "shoal", ports, ports, shoal=True)
        procs.check_alive()
        procs.stop_servers()
        shoal_log_notes = scan_shoal_logs(workdir)

        if PARTS & {"prop", "write"}:
            rports = start_redis(procs, workdir)
            if "prop" in PARTS:
                log("part 2: redis propagation, SET on the primary, poll both replicas (load %s)" % load())
                prop["redis"] = part_propagation("redis", rports[0], rports[1:])
                describe_prop("redis", prop["redis"])
            if "write" in PARTS:
                log("part 3: redis writes (load %s)" % load())
                writes["redis"] = part_writes(procs, "redis", [rports[0]] * 3, rports, shoal=False)
            procs.check_alive()
            procs.stop_servers()
        report(reads, prop, writes)
        noise_line(reads, prop, writes)
        print("shoal logs: %d warning/error lines%s" % (len(shoal_log_notes), "".join(
            "\n  " + line for line in shoal_log_notes[:10])))
        log("total %.0f s, load at end %s" % (time.monotonic() - t_start, load()))
        bad = [n for n, w in writes.items() if not (w["final"]["converged"] and not any(w["final"]["diff"]))]
        bad += [n for n, p in prop.items() if p["timeouts"]]
        return 1 if bad else 0
    finally:
        procs.stop_benches()
        procs.stop_servers()
        if os.environ.get("BENCH_KEEP"):
            log("kept %s (server logs)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
