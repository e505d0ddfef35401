#!/usr/bin/env bash
# Every integration test starts its stack on fixed loopback ports from its
# own base (BASE_PORT in a C test, BASE=${..:-N} or BASE_PORT=N in a shell
# test), and scripts/test.sh runs two tests at once: two tests with the same
# or nearby bases fail at random when the scheduler happens to pair them
# ("port ... is in use"). This checks that the bases are at least SPACING
# apart. A test that needs more ports than that must leave the next range
# free (test_kafka_security uses base+22).
set -euo pipefail
cd "$(dirname "$0")/../.."
SPACING=20

bases=$(
  for f in tests/integration/test_*.c; do
    n=$(grep -hoE '^#define BASE_PORT [0-9]+|stack_start\(&stack, [0-9]+' "$f" | grep -oE '[0-9]+$' | head -1 || true)
    [ -n "$n" ] && echo "$n $f"
  done
  for f in tests/integration/test_*.sh; do
    n=$(grep -hoE '^BASE=\$\{[A-Z_]+:-[0-9]+\}|^BASE_PORT=[0-9]+' "$f" | grep -oE '[0-9]+' | tail -1 || true)
    [ -n "$n" ] && echo "$n $f"
  done | sort -n
)
[ -n "$bases" ] || { echo "test_port_ranges: found no base ports" >&2; exit 1; }

status=0
prev_port=0
prev_file=
while read -r port file; do
  if [ -n "$prev_file" ] && [ $((port - prev_port)) -lt $SPACING ]; then
    echo "test_port_ranges: $file (base $port) is within $SPACING ports of $prev_file (base $prev_port)" >&2
    status=1
  fi
  prev_port=$port
  prev_file=$file
done <<<"$(echo "$bases" | sort -n)"
[ $status = 0 ] && echo "test_port_ranges: $(echo "$bases" | wc -l) tests, bases at least $SPACING apart"
exit $status
