#!/usr/bin/env bash
# The main job: installs what is needed, builds shoal, and runs a local node in the foreground.
# (Later issues grow this into a local 3-node cluster with the web UI.)
# Usage: scripts/run.sh [port]   — Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-${SHOAL_PORT:-6379}}
./scripts/setup.sh
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_busy "$port"; then
  # Something (a Debian redis-server service, say) already listens there: take a free port.
  for p in $(seq 7000 7099); do
    if ! port_busy "$p"; then
      echo "port $port is in use; using $p instead"
      port=$p
      break
    fi
  done
fi
mkdir -p run
./build/shoal serve --port "$port" --bind 127.0.0.1 >run/node1.log 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat run/node1.log; exit 1; fi
  sleep 0.1
done
cat <<MSG

  shoal is running (pid $pid, log: run/node1.log)

    connect:   redis-cli -p $port
    try:       redis-cli -p $port set greeting hello
               redis-cli -p $port get greeting
    benchmark: redis-benchmark -p $port -t set,get -n 100000 -q

  Ctrl-C stops it.
MSG
wait "$pid"
