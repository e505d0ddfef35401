# Shared by the shell tests that drive Debian's chromium (test_shop_browser.sh,
# test_topup_browser.sh): tests/lib/shell_test.sh (sourced here: set
# TEST_NAME, WORK, BIN and BASE first), chromium itself (installed by
# `BROWSER=1 scripts/deps.sh` when missing: the test fails, never skips,
# without it) and `browser`.

# shellcheck source=tests/lib/shell_test.sh
. tests/lib/shell_test.sh

# ---- chromium ----
# make test runs both browser tests at once: on a fresh machine both found
# chromium missing and both ran apt-get, and the second failed on dpkg's
# lock (CI, 2026-12-03). One installs under a lock; the other waits for it
# and finds chromium there.
install_chromium() {
  command -v chromium >/dev/null && return 0
  echo "chromium is missing; installing it (BROWSER=1 scripts/deps.sh)"
  BROWSER=1 scripts/deps.sh
}
if ! command -v chromium >/dev/null; then
  (
    flock -w 900 9 || exit 1
    install_chromium
  ) 9>"${TMPDIR:-/tmp}/millom-chromium-install.lock" ||
    die "could not install chromium (BROWSER=1 scripts/deps.sh failed)"
fi
command -v chromium >/dev/null || die "chromium is not installed and could not be installed"
ok "chromium: $(chromium --version 2>/dev/null | head -1)"

browser() { # extra chromium args...; the user data dir is fresh each time
  local profile
  profile=$(mktemp -d "$WORK/profile.XXXXXX")
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$profile" "$@" 2>>"$WORK/chromium.log"
}
