# Shared by the shell tests that drive Debian's chromium (test_shop_browser.sh,
# test_topup_browser.sh): pass/fail counting, the exit trap that stops the
# stack (tests/lib/stack.sh, sourced here) and keeps the temp dir when
# anything failed, chromium itself (installed by `BROWSER=1 scripts/deps.sh`
# when missing: the test fails, never skips, without it) and `browser`.
#
# Before sourcing, set TEST_NAME (the summary's name) and WORK (the temp
# dir); BIN and BASE as tests/lib/stack.sh wants them.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
summary() { echo "$TEST_NAME: $passed passed, $failed failed"; }

# shellcheck source=tests/lib/stack.sh
. tests/lib/stack.sh

browser_finish() {
  local rc=$?
  trap - EXIT
  stack_stop || bad "a program exited badly (its log is above; all logs in $WORK)"
  summary
  if [ "$failed" = 0 ] && [ "${MILLOM_KEEP_TEST_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "logs, pages and screenshot kept in $WORK" >&2
  fi
  [ "$failed" = 0 ] && [ "$rc" = 0 ] && exit 0
  exit 1
}
trap browser_finish EXIT
trap 'exit 130' INT TERM

die() { bad "$*"; exit 1; }

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
