#!/usr/bin/env bash
# Runs every test binary: the integration tests that start the real
# programs on loopback, and the unit tests. Built with ASan+UBSan by
# `make test` (BUILD=build/san) or with ThreadSanitizer by
# `make test SAN=thread` (BUILD=build/tsan); a sanitizer report in any
# program fails the run: a test binary fails, and a service exits 66, which
# the test stack reports.
#
# TEST_JOBS (2) tests run at once. Every integration test owns its ports
# (its BASE_PORT range) and temp dirs, so they may overlap; most of their
# time is spent waiting on services. Each test's output is printed whole
# when it ends, with its time.
set -uo pipefail
BUILD=${BUILD:-build/san}
export BUILD
export CK_FORK=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=66}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
# halt_on_error=0: a service goes on after a report (so the test sees the
# rest of its behaviour) and exits 66 at the end; second_deadlock_stack
# names both stacks of a lock-order report.
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/tests/tsan.supp:halt_on_error=0:exitcode=66:second_deadlock_stack=1:print_suppressions=0}
export MILLOM_LOG_LEVEL=${MILLOM_LOG_LEVEL:-warn}
JOBS=${TEST_JOBS:-2}

OUT=$(mktemp -d /tmp/millom-tests.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# The integration tests first (the long ones), then the unit tests.
programs=()
for t in tests/integration/test_*.c; do programs+=("$BUILD/tests/$(basename "${t%.c}")"); done
# Under ThreadSanitizer the tests driven by outside tools run once, in the
# ASan run only: the Postman collection (newman), the OpenAPI contract
# (Prism) and the shop and top-up pages in a browser (chromium) check
# answers against specs and pages, through the same services and code
# paths that the C tests drive under ThreadSanitizer too; together they
# took minutes of CI.
TSAN_SKIPS="test_postman.sh test_openapi_contract.sh test_shop_browser.sh test_topup_browser.sh"
for t in tests/integration/test_*.sh; do
  [ -e "$t" ] || continue
  case $BUILD in *tsan*) [[ " $TSAN_SKIPS " == *" $(basename "$t") "* ]] && continue ;; esac
  programs+=("$t")
done
for t in tests/unit/test_*.c; do programs+=("$BUILD/tests/$(basename "${t%.c}")"); done

passed=0
failed=0
failures=()
timings=()
declare -A running=() # pid -> program

start() { # program
  local name
  name=$(basename "$1")
  (
    started=$SECONDS
    "$1" >"$OUT/$name.log" 2>&1
    status=$?
    echo "$status $((SECONDS - started))" >"$OUT/$name.rc"
    exit "$status"
  ) &
  running[$!]=$1
}

# Waits for one running test and prints its output and verdict.
finish_one() {
  local pid name status seconds
  wait -n -p pid "${!running[@]}"
  name=$(basename "${running[$pid]}")
  unset "running[$pid]"
  read -r status seconds <"$OUT/$name.rc" 2>/dev/null || { status=127; seconds=0; }
  echo "=== $name"
  cat "$OUT/$name.log"
  if [ "$status" = 0 ]; then
    echo "=== $name: passed in $seconds s"
    passed=$((passed + 1))
  else
    echo "=== $name: FAILED (exit $status) in $seconds s"
    failed=$((failed + 1))
    failures+=("$name")
  fi
  timings+=("$seconds $name")
}

for p in "${programs[@]}"; do
  while [ "${#running[@]}" -ge "$JOBS" ]; do finish_one; done
  start "$p"
done
while [ "${#running[@]}" -gt 0 ]; do finish_one; done

echo
echo "slowest: $(printf '%s\n' "${timings[@]}" | sort -rn | head -6 | awk '{printf "%s %s s  ", $2, $1}')"
[ $failed -gt 0 ] && echo "failed: ${failures[*]}"
echo "programs: $passed passed, $failed failed"
[ $failed -eq 0 ]
