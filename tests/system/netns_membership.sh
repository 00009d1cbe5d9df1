#!/usr/bin/env bash
# Membership across a real (virtual) network: three shoal nodes, each in its own network
# namespace, linked by veth pairs to a bridge that lives in a fourth namespace (nothing is added
# to the host's own namespace). The test cuts node 3's link (`ip link set ... down` on its bridge
# port), checks nodes 1 and 2 declare it dead (and it sees them dead), brings the link back and
# checks all three see each other alive again (SWIM's reconnect probe of dead members heals it).
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 and python3. Exits 77 (skip) if they
# are missing, 0 on success, 1 on failure. Every namespace and process it made is removed on exit,
# failure and interruption included.
#
# Usage: tests/system/netns_membership.sh [path/to/shoal]   (default: $SHOAL_BIN or build/shoal)
set -u

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHOAL="${1:-${SHOAL_BIN:-$REPO_ROOT/build/shoal}}"
DETECT_TIMEOUT=${DETECT_TIMEOUT:-20}   # s: cut-off node declared dead by the others
HEAL_TIMEOUT=${HEAL_TIMEOUT:-40}       # s: back alive (reconnect runs every 10 s)
COOKIE="netns-membership-cookie"
SUBNET="10.231.77"                     # private, and only inside the test namespaces
PORT=7000 CPORT=7100 HPORT=7200

TAG="shm$$"                  # unique per run: names are <=15 chars (interface name limit)
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

netns_setup 3

# --- helpers --------------------------------------------------------------------------------------
# counts NODE -> "alive suspect dead left" as node NODE reports them (INFO membership), or "".
counts() {
  ip netns exec "${TAG}n$1" python3 - "$SUBNET.$1" "$PORT" <<'EOF' 2>/dev/null
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$10\r\nmembership\r\n")
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n")
        if sep and head.startswith(b"$") and len(rest) >= int(head[1:]):
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    info = dict(l.split(":", 1) for l in data.decode().splitlines() if ":" in l)
    print(" ".join(info.get(f"members_{k}", "?").strip() for k in ("alive", "suspect", "dead", "left")))
except Exception:
    pass
EOF
}

# wait_counts TIMEOUT "WANT" NODE... : every NODE reports WANT ("alive suspect dead left").
wait_counts() {
  local timeout=$1 want=$2; shift 2
  local deadline; deadline=$(python3 -c "import time; print(time.monotonic() + $timeout)")
  while :; do
    local ok=1 n
    for n in "$@"; do
      [ "$(counts "$n")" = "$want" ] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    if python3 -c "import sys, time; sys.exit(0 if time.monotonic() > $deadline else 1)"; then
      for n in "$@"; do echo "  node $n: $(counts "$n") (alive suspect dead left)"; done
      return 1
    fi
    sleep 0.1
  done
}

start_node() {
  local i=$1 seeds=""
  [ "$i" != 1 ] && seeds="--seeds $SUBNET.1:$CPORT"
  # shellcheck disable=SC2086
  ip netns exec "${TAG}n$i" env -u SHOAL_SEEDS -u SHOAL_COOKIE "$SHOAL" serve \
      --bind "$SUBNET.$i" --port $PORT --threads 1 --cluster-port $CPORT --http-port $HPORT \
      --cookie "$COOKIE" --data-dir "$WORK/d$i" $seeds >"$WORK/n$i.log" 2>&1 </dev/null &
  PIDS+=($!)
}

# --- the test -------------------------------------------------------------------------------------
for i in 1 2 3; do start_node $i; done
t0=$(now)
wait_counts 20 "3 0 0 0" 1 2 3 || fail "the three nodes did not form a cluster"
echo "ok: cluster of 3 formed across namespaces ($(elapsed "$t0") s)"

t0=$(now)
ip -n "$BR_NS" link set p3 down
wait_counts "$DETECT_TIMEOUT" "2 0 1 0" 1 2 || fail "nodes 1 and 2 did not declare node 3 dead"
echo "ok: node 3 cut off, declared dead by nodes 1 and 2 after $(elapsed "$t0") s"
wait_counts "$DETECT_TIMEOUT" "1 0 2 0" 3 || fail "node 3 did not declare nodes 1 and 2 dead"
echo "ok: node 3 sees nodes 1 and 2 dead ($(elapsed "$t0") s)"
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a node exited (pid $pid)"; done

t0=$(now)
ip -n "$BR_NS" link set p3 up
wait_counts "$HEAL_TIMEOUT" "3 0 0 0" 1 2 3 || fail "the cluster did not heal after the link came back"
echo "ok: link restored, all three alive again after $(elapsed "$t0") s"
grep -q "is alive" "$WORK/n1.log" || fail "node 1 did not log node 3 coming back"
echo "PASS"
