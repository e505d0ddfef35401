#!/usr/bin/env bash
# Runs every test binary: unit tests first, then the integration tests that
# start the real programs on loopback. Built with ASan+UBSan by `make test`
# (BUILD=build/san) or with ThreadSanitizer by `make test SAN=thread`
# (BUILD=build/tsan); a sanitizer report in any program fails the run: a
# test binary fails, and a service exits 66, which the test stack reports.
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

passed=0
failed=0
failures=()
run() { # binary
  local name
  name=$(basename "$1")
  echo "=== $name"
  if "$1"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

for t in tests/unit/test_*.c; do run "$BUILD/tests/$(basename "${t%.c}")"; done
for t in tests/integration/test_*.c; do run "$BUILD/tests/$(basename "${t%.c}")"; done
for t in tests/integration/test_*.sh; do
  [ -e "$t" ] || continue
  run "$t"
done

echo
[ $failed -gt 0 ] && echo "failed: ${failures[*]}"
echo "programs: $passed passed, $failed failed"
[ $failed -eq 0 ]
