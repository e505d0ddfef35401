# Shared by the shell tests that run a stack of their own (tests/lib/stack.sh,
# sourced here): pass/fail counting, `die`, and the exit trap that stops the
# stack and removes the temp dir only when everything passed (else, or with
# MILLOM_KEEP_TEST_DIR=1, it stays for the logs).
#
# Before sourcing, set TEST_NAME (the summary's name) and WORK (the temp
# dir); BIN and BASE as tests/lib/stack.sh wants them. A test with more to
# stop than the stack (test_openapi_contract.sh's Prisms) defines
# shell_test_before_stop; the trap calls it first.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# shellcheck source=tests/lib/stack.sh
. tests/lib/stack.sh

shell_test_finish() {
  local rc=$?
  trap - EXIT
  if declare -F shell_test_before_stop >/dev/null; then shell_test_before_stop; fi
  stack_stop || bad "a program exited badly (its log is above; all logs in $WORK)"
  echo "$TEST_NAME: $passed passed, $failed failed"
  if [ "$failed" = 0 ] && [ "$rc" = 0 ] && [ "${MILLOM_KEEP_TEST_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "logs kept in $WORK" >&2
  fi
  [ "$failed" = 0 ] && [ "$rc" = 0 ] && exit 0
  exit 1
}
trap shell_test_finish EXIT
trap 'exit 130' INT TERM

die() { bad "$*"; exit 1; }
