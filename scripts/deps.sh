#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running, testing and
# benchmarking need. Does nothing when they are all there already.
set -euo pipefail
packages=(
  build-essential pkg-config
  librdkafka-dev libmicrohttpd-dev libcurl4-openssl-dev
  libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
  check libsubunit-dev libjansson-dev libjwt-dev libssl-dev
  kcat wrk nginx-light sqlite3 curl docker-compose
  python3 clang-format
)
# make fuzz (FUZZ=1) also needs clang and its libFuzzer/sanitizer runtimes;
# make test does not.
if [ "${FUZZ:-0}" = 1 ]; then
  packages+=(clang libclang-rt-14-dev)
fi
# make profile needs perf (Debian's linux-perf); nothing else does.
if [ "${PERF:-0}" = 1 ]; then
  packages+=(linux-perf)
fi
# The headless browser test of the shop page (tests/integration/
# test_shop_browser.sh, which calls BROWSER=1 scripts/deps.sh) needs
# Debian's chromium; nothing else does.
if [ "${BROWSER:-0}" = 1 ]; then
  packages+=(chromium fonts-dejavu-core)
fi
# Node.js and npm for the npm packages below (the machine's own, when it
# has them: a Node.js from elsewhere carries its npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages, each folder with its package.json and package-lock.json,
# installed into that folder (never globally) when its lock file changed:
#   tools/kafkajs   kafkajs + protobufjs (tests/integration/test_kafkajs_interop.c)
cd "$(dirname "$0")/.."
for dir in tools/kafkajs; do
  installed=$dir/node_modules/.package-lock.json
  if [ ! -e "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ]; then
    echo "npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
done
