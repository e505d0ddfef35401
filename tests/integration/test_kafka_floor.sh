#!/usr/bin/env bash
# The kafka_floor bench scenario end to end, briefly: scripts/bench_kafka_floor.sh
# starts a devbroker (port BASE_PORT), `rpc-echo respond` and one 2-second
# `rpc-echo call` run, which must complete round trips through
# shared/patterns/rpc with no timeouts, send errors or answers other than
# 200, and write figures report.py can read. No timing assertions: only
# that the figures are there and consistent. Then rpc-echo's argument checks.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BASE_PORT=24400
BUILD=${BUILD:-build/release}
export BUILD
DIR=$(mktemp -d /tmp/millom-test-floor.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
failed=0
fail() { echo "FAIL $*"; failed=1; }

if BENCH_FLOOR_RUNS=1 BENCH_FLOOR_SECONDS=2 BENCH_FLOOR_CALLERS=8 \
  BENCH_FLOOR_BROKER_PORT=$BASE_PORT BENCH_FLOOR_JSON=$DIR/floor.json \
  scripts/bench_kafka_floor.sh >"$DIR/out.txt" 2>&1; then
  echo "ok   bench_kafka_floor.sh ran"
else
  fail "bench_kafka_floor.sh exited $?:"
  cat "$DIR/out.txt"
fi

python3 - "$DIR/floor.json" <<'PY' || failed=1
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    sys.exit(f"FAIL no results: {e}")
bad = []
run = d["runs"][0] if d.get("runs") else {}
if len(d.get("runs", [])) != 1:
    bad.append(f"want 1 run, got {len(d.get('runs', []))}")
if run.get("callers") != 8:
    bad.append(f"callers {run.get('callers')}, want 8")
if not isinstance(run.get("round_trips"), int) or run["round_trips"] <= 0:
    bad.append(f"no round trips: {run.get('round_trips')}")
for k in ("timeouts", "send_errors", "bad_replies"):
    if run.get(k) != 0:
        bad.append(f"{k} {run.get(k)}, want 0")
if d.get("errors") != 0 or d.get("problems"):
    bad.append(f"errors {d.get('errors')}, problems {d.get('problems')}")
for k in ("round_trips_per_s", "p50_ms", "p99_ms"):
    if not isinstance(d.get(k), (int, float)) or d[k] <= 0:
        bad.append(f"{k} is {d.get(k)!r}, want a positive number")
if isinstance(d.get("p50_ms"), (int, float)) and isinstance(d.get("p99_ms"), (int, float)) \
        and d["p50_ms"] > d["p99_ms"]:
    bad.append(f"p50 {d['p50_ms']} > p99 {d['p99_ms']}")
rate = run.get("round_trips", 0) / run.get("seconds", 1)
if abs(rate - (run.get("round_trips_per_s") or 0)) > 1e-4 * max(rate, 1):  # 6 digits
    bad.append(f"round_trips_per_s {run.get('round_trips_per_s')} != round_trips/seconds {rate}")
for p in ("client", "responder", "devbroker"):
    c = d.get("cpu", {}).get(p, {})
    if not isinstance(c.get("cpu_s"), (int, float)) or c["cpu_s"] < 0 or \
            not isinstance(c.get("cpu_s_per_1000"), (int, float)) or c["cpu_s_per_1000"] < 0:
        bad.append(f"cpu of {p}: {c!r}")
for b in bad:
    print("FAIL", b)
if not bad:
    print(f"ok   {run['round_trips']} round trips, no errors, figures parse")
sys.exit(1 if bad else 0)
PY

# Bad arguments: a usage message and status 2, before any connection.
for args in "call --callers 0" "call --seconds x" "call --cpu-of nopid" "echo"; do
  # shellcheck disable=SC2086  # the arguments, split
  "$BUILD/bench/rpc-echo" $args >"$DIR/arg.out" 2>&1
  rc=$?
  if [ $rc = 2 ] && grep -q usage "$DIR/arg.out"; then
    echo "ok   rpc-echo $args: usage, status 2"
  else
    fail "rpc-echo $args: status $rc, $(head -c 300 "$DIR/arg.out")"
  fi
done
exit $failed
