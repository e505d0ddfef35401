#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running, testing and
# benchmarking need, and the npm packages of tools/node. Does nothing when
# they are all there already.
set -euo pipefail
packages=(
  build-essential pkg-config
  librdkafka-dev libmicrohttpd-dev libcurl4-openssl-dev
  libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
  check libsubunit-dev libjansson-dev libjwt-dev libssl-dev
  kcat wrk hey nginx-light sqlite3 curl docker-compose
  python3 python3-yaml clang-format
  prometheus # promtool: the alert rules' checks and unit tests (docker/prometheus)
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
# Debian's prometheus package also installs and starts a Prometheus daemon
# on port 9090, where make run and the tests put mno-sandbox; only promtool
# is wanted, so right after installing it the daemon is stopped and disabled
# (when systemd runs it; without systemd, as in containers, the package does
# not start it). A Prometheus installed before is left alone.
stop_prometheus_daemon() {
  command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] || return 0
  if systemctl is-enabled --quiet prometheus.service 2>/dev/null ||
     systemctl is-active --quiet prometheus.service 2>/dev/null; then
    echo "stopping and disabling the prometheus daemon (only promtool is needed)"
    $SUDO systemctl disable --now prometheus.service
  fi
}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Waits for dpkg's lock instead of failing at once when another apt-get
  # runs (a fresh machine's own updates, or a test installing chromium).
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
  case " ${missing[*]} " in *" prometheus "*) stop_prometheus_daemon ;; esac
fi

# npm packages, each folder with its package.json and the versions pinned
# by its package-lock.json, installed into that folder (never globally)
# with `npm ci`, again when the lock file changed since the last install:
#   tools/node      newman (tests/integration/test_postman.sh), @stoplight/prism-cli
#                   (tests/integration/test_openapi_contract.sh)
#   tools/kafkajs   kafkajs + protobufjs (tests/integration/test_kafkajs_interop.c)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for dir in "$ROOT/tools/node" "$ROOT/tools/kafkajs"; do
  stamp=$dir/node_modules/.millom-installed-lock.json
  if ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "installing npm packages into $dir/node_modules (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    cp "$dir/package-lock.json" "$stamp"
  fi
done
