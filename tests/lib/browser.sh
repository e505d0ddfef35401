# Shared by the shell tests that drive Debian's chromium (test_shop_browser.sh,
# test_topup_browser.sh): tests/lib/shell_test.sh (sourced here: set
# TEST_NAME, WORK, BIN and BASE first), chromium itself (installed by
# `BROWSER=1 scripts/deps.sh` when missing: the test fails, never skips,
# without it) and `browser`.

# shellcheck source=tests/lib/shell_test.sh
. tests/lib/shell_test.sh

# ---- chromium ----
if ! command -v chromium >/dev/null; then
  echo "chromium is missing; installing it (BROWSER=1 scripts/deps.sh)"
  BROWSER=1 scripts/deps.sh || die "could not install chromium (BROWSER=1 scripts/deps.sh failed)"
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
