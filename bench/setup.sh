#!/bin/sh
# Installs what `make bench` needs beyond the project's own toolchain (Go,
# gcc, cargo/rustc): the peers' libraries and the chart's matplotlib, all from
# Debian. Idempotent: installs only what is missing, and asks apt nothing when
# everything is there.
set -eu

packages="make pkg-config libuv1-dev librust-tokio-dev python3 python3-uvloop python3-matplotlib wrk"
command -v cargo >/dev/null 2>&1 || packages="$packages cargo"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done

if [ -n "$missing" ]; then
  echo "bench/setup.sh: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
