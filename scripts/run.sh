#!/usr/bin/env bash
# The main job: installs what is needed, builds shoal, and runs a local 3-node cluster in the
# foreground. The nodes find each other through node 1 (SWIM membership) with a cluster cookie
# generated into run/cookie; each keeps its identity in run/nodeN.
# Usage: scripts/run.sh [base-port]   (default 7001: nodes on 7001-7003) — Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-${SHOAL_BASE_PORT:-7001}}
./scripts/setup.sh
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports_free() {  # client, admin HTTP and cluster ports of the three nodes
  for i in 0 1 2; do
    for off in 0 1000 10000; do
      if port_busy $(($1 + i + off)); then return 1; fi
    done
  done
}
if ! ports_free "$base"; then
  for b in 7101 7201 7301 7401 7501; do
    if ports_free "$b"; then
      echo "ports around $base are in use; using $b-$((b + 2)) instead"
      base=$b
      break
    fi
  done
fi

mkdir -p run
[ -s run/cookie ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >run/cookie
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
seed="127.0.0.1:$((base + 10000))"
for i in 1 2 3; do
  port=$((base + i - 1))
  seeds=()
  [ "$i" -gt 1 ] && seeds=(--seeds "$seed")
  ./build/shoal serve --port "$port" --cookie-file run/cookie --data-dir "run/node$i" \
    --replicated-map users=users: --replicated-map sessions=sess: "${seeds[@]}" >"run/node$i.log" 2>&1 &
  pids+=($!)
done
# Ready when every node sees three members alive, every bucket has an owner and each node
# serves its third of them (the first node owns everything until the others join).
for _ in $(seq 1 100); do
  ready=0
  for i in 1 2 3; do
    if redis-cli -p $((base + i - 1)) info membership 2>/dev/null | grep -q "members_alive:3" &&
      redis-cli -p $((base + i - 1)) cluster info 2>/dev/null | grep -q "cluster_state:ok" &&
      redis-cli -p $((base + i - 1)) info cluster 2>/dev/null |
        grep -Eq "buckets_served:(5461|5462)"; then
      ready=$((ready + 1))
    fi
  done
  [ "$ready" -eq 3 ] && break
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then tail -5 run/node*.log; exit 1; fi
  done
  sleep 0.1
done
./build/shoal status --node "127.0.0.1:$((base + 1000))" || true
cat <<MSG

  A 3-node shoal cluster is running (logs: run/node1.log .. run/node3.log)

    connect:   redis-cli -c -p $base     (any node serves any key; also -p $((base + 1)), -p $((base + 2)))
    members:   build/shoal status --node 127.0.0.1:$((base + 1000))
               curl http://127.0.0.1:$((base + 1000))/api/v1/members
    health:    curl http://127.0.0.1:$((base + 1000))/health
    buckets:   curl http://127.0.0.1:$((base + 1000))/api/v1/buckets
    info:      redis-cli -p $base info sharding ; redis-cli -p $base cluster shards
    maps:      redis-cli -p $base set users:ann Ann ; redis-cli -p $((base + 2)) get users:ann
               (replicated maps 'users' = keys users:*, 'sessions' = sess*: on every node)
               curl http://127.0.0.1:$((base + 1000))/api/v1/maps

  Keys are sharded over the three nodes in 16384 buckets; a node forwards a command for a key it
  does not hold. Ctrl-C stops the cluster (each node hands its buckets over before it exits).
MSG
wait
