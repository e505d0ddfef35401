#!/usr/bin/env bash
# The include graph of every program's folder and of shared/ has no circle
# (file by file; purchase-executor also header and source together), and
# purchase-executor keeps its layers: every include goes to the same layer
# or a lower one (main -> executor -> handlers -> flow -> client/outcome ->
# store; the operator slots beside the config). First checks that the
# checker itself catches a circle and an upward include.
set -uo pipefail
cd "$(dirname "$0")/../.."
check=scripts/include_graph.py
fail=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "b.h"\n' >"$tmp/a.h"
printf '#include "a.h"\n' >"$tmp/b.h"
if python3 "$check" "$tmp" 2>/dev/null; then
  echo "FAIL: the checker missed a circle a.h -> b.h -> a.h"
  fail=1
fi
rm -f "$tmp"/*
printf '#include "top.h"\n' >"$tmp/low.c"
printf '\n' >"$tmp/top.h"
printf '\n' >"$tmp/low.h"
if python3 "$check" --layers "top.h | low.h low.c" "$tmp" 2>/dev/null; then
  echo "FAIL: the checker missed an include of a higher layer"
  fail=1
fi

for d in services/*/ shared/*/; do
  python3 "$check" "$d" || fail=1
done
python3 "$check" --modules services/purchase-executor || fail=1
python3 "$check" --layers "main.c
  | executor.h executor.c
  | handlers.h purchase_commands.c eligibility.c callbacks.c lookups.c retry_worker.c
    topups.h topups.c
  | purchase_flow.h purchase_flow.c
  | executor_config.h operator_slots.h operator_slots.c
  | activation_client.h activation_client.c
  | purchase_outcome.h purchase_outcome.c
  | purchase.h purchase_store.c" services/purchase-executor || fail=1

# shared/'s layers: plumbing <- contracts <- patterns. A file may include
# its own layer and the ones below, never one above.
upward() { # root: lists every include of a higher layer under root/shared
  local root=$1
  grep -Hn -e '#include "shared/contracts/' -e '#include "shared/patterns/' \
    "$root"/shared/plumbing/*.[ch] 2>/dev/null
  grep -Hn -e '#include "shared/patterns/' "$root"/shared/contracts/*.[ch] 2>/dev/null
}
bad=$(upward .)
if [ -n "$bad" ]; then
  echo "FAIL: an include goes up shared/'s layers (plumbing <- contracts <- patterns):"
  echo "$bad"
  fail=1
fi
# ...and the check above does catch one.
mkdir -p "$tmp/shared/plumbing"
printf '#include "shared/patterns/rpc.h"\n' >"$tmp/shared/plumbing/x.c"
if [ -z "$(upward "$tmp")" ]; then
  echo "FAIL: the shared/ layer check cannot see an upward include"
  fail=1
fi

[ $fail -eq 0 ] && echo "include graph: no circle, purchase-executor's and shared/'s layers hold"
exit $fail
