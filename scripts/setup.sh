#!/usr/bin/env bash
# Installs every Debian package shoal's build, tests and benchmarks need.
# Idempotent; run as root (or with sudo available) on Debian 12.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  clang clang-format libclang-rt-14-dev
  libabsl-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev
  libjemalloc-dev libssl-dev libmsgpack-cxx-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev nlohmann-json3-dev
  python3 python3-redis python3-prometheus-client prometheus redis-server redis-tools procps
  iproute2
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
