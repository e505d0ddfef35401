#!/usr/bin/env bash
# make lint: every C file git knows of is formatted as .clang-format says
# (clang-format 14: `make format` fixes it), and everything builds once more
# with the warnings the code meets on top of -Wall -Wextra -Werror
# (build/lint).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
mapfile -t files < <(git ls-files '*.c' '*.h')
unformatted=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "lint: not formatted as .clang-format says (make format): ${unformatted[*]}"
  fail=1
else
  echo "lint: ${#files[@]} C files formatted as .clang-format says"
fi
mkdir -p build
warnings="-Wshadow -Wstrict-prototypes -Wpointer-arith -Wvla -Wundef"
if make --no-print-directory BUILD_DIR=build/lint EXTRA_CFLAGS="$warnings" build >build/lint.log 2>&1; then
  echo "lint: everything builds with $warnings"
else
  grep -E "error:" build/lint.log | sort -u | head -20
  echo "lint: the build with $warnings failed (build/lint.log)"
  fail=1
fi
exit $fail
