#!/usr/bin/env bash
# The floor of the read path (issue 14): what the Kafka request/reply hop
# alone costs on this machine, with no HTTP, no cache and no backend call.
#
#   1. a fresh devbroker of its own (nothing else on it);
#   2. `rpc-echo respond`: a group consumer of millom.queries answering
#      every query at once with rpc_reply() (offer-resolver's consumer and
#      producer, minus its work);
#   3. BENCH_FLOOR_RUNS times `rpc-echo call`: BENCH_FLOOR_CALLERS callers
#      in a closed loop for BENCH_FLOOR_SECONDS through shared/patterns/rpc
#      as api-edge calls it (same producer, reply reader and deadline).
# Prints round trips/s, p50/p99 and the CPU seconds per 1,000 round trips of
# the client, the responder and devbroker (utime + stime from
# /proc/<pid>/stat over the measured seconds) for each run and their
# medians, and writes them to BENCH_FLOOR_JSON (var/bench/kafka_floor.json);
# scripts/bench.sh runs it as scenario kafka_floor and bench/report.py sets
# it against nginx /balance.
#
# Settings: BUILD (build/release), BENCH_FLOOR_RUNS (BENCH_RUNS, 3),
# BENCH_FLOOR_SECONDS (7), BENCH_FLOOR_CALLERS (BENCH_CONNECTIONS, 50),
# BENCH_FLOOR_BROKER_PORT (devbroker's port; unset: any free one),
# BENCH_FLOOR_JSON, BENCH_KEEP_DIR=1 keeps the temp dir. MILLOM_KAFKA_* and
# MILLOM_RPC_* reach both sides as they reach the services.
#
# Exit status: 0, or 1 when it could not run or a run had timeouts, send
# errors or answers other than 200 (the JSON says which).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
RUNS=${BENCH_FLOOR_RUNS:-${BENCH_RUNS:-3}}
SECONDS_PER_RUN=${BENCH_FLOOR_SECONDS:-7}
CALLERS=${BENCH_FLOOR_CALLERS:-${BENCH_CONNECTIONS:-50}}
BROKER_PORT=${BENCH_FLOOR_BROKER_PORT:-}
RESULTS_JSON=${BENCH_FLOOR_JSON:-var/bench/kafka_floor.json}
WORK=
BROKER_PID=
RESPONDER_PID=
OK=0

log() { echo "bench-kafka-floor: $*" >&2; }
die() { log "$*"; exit 1; }

# TERM, then up to 10 s before KILL; the exit status is the program's.
stop_pid() { # pid
  local _
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null
}

cleanup() {
  local rc=0
  [ -n "$RESPONDER_PID" ] && { stop_pid "$RESPONDER_PID" || rc=$?; }
  [ "$rc" = 0 ] || { log "rpc-echo respond exited with status $rc"; OK=0; }
  [ -n "$BROKER_PID" ] && { stop_pid "$BROKER_PID" || true; }
  if [ -n "$WORK" ] && [ "$OK" = 1 ] && [ "${BENCH_KEEP_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  elif [ -n "$WORK" ]; then
    log "kept logs in $WORK"
  fi
  [ "$OK" = 1 ] || exit 1
}

main() {
  [ -x "$BUILD/bin/devbroker" ] || die "$BUILD/bin/devbroker is missing; run 'make build' first"
  [ -x "$BUILD/bench/rpc-echo" ] || die "$BUILD/bench/rpc-echo is missing; run 'make build' first"
  command -v python3 >/dev/null || die "python3 is not installed (make deps)"
  local p
  for p in "$RUNS" "$SECONDS_PER_RUN" "$CALLERS"; do
    [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad setting '$p': want a positive integer"
  done
  [ -z "$BROKER_PORT" ] || [[ $BROKER_PORT =~ ^[1-9][0-9]*$ ]] ||
    die "bad BENCH_FLOOR_BROKER_PORT '$BROKER_PORT'"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/millom-bench-floor.XXXXXX")
  unset KAFKA_BOOTSTRAP
  export MILLOM_DATA_DIR=$WORK/data MILLOM_BROKER_FILE=$WORK/broker.bootstrap
  export MILLOM_LOG_LEVEL=${MILLOM_LOG_LEVEL:-warn}
  if [ -n "$BROKER_PORT" ]; then export MILLOM_BROKER_PORT=$BROKER_PORT; else unset MILLOM_BROKER_PORT; fi
  mkdir -p "$MILLOM_DATA_DIR"

  setsid "$BUILD/bin/devbroker" >>"$WORK/devbroker.log" 2>&1 &
  BROKER_PID=$!
  # 60 s as tests/lib/stack.sh waits: a sanitized devbroker (the test runs
  # this script on build/tsan too) takes more than 10 s to create its topics.
  for _ in $(seq 1 600); do
    [ -s "$MILLOM_BROKER_FILE" ] && break
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$MILLOM_BROKER_FILE" ] || die "devbroker did not start in 60 s; see $WORK/devbroker.log"
  setsid "$BUILD/bench/rpc-echo" respond >>"$WORK/responder.log" 2>&1 &
  RESPONDER_PID=$!

  local run out=()
  for ((run = 1; run <= RUNS; run++)); do
    log "run $run/$RUNS: $CALLERS callers for ${SECONDS_PER_RUN}s"
    kill -0 "$RESPONDER_PID" 2>/dev/null || die "rpc-echo respond died; see $WORK/responder.log"
    "$BUILD/bench/rpc-echo" call --callers "$CALLERS" --seconds "$SECONDS_PER_RUN" \
      --cpu-of "responder=$RESPONDER_PID" --cpu-of "devbroker=$BROKER_PID" \
      >"$WORK/run.$run.json" 2>>"$WORK/client.log" ||
      die "rpc-echo call failed; see $WORK/client.log"
    out+=("$WORK/run.$run.json")
  done

  mkdir -p "$(dirname "$RESULTS_JSON")"
  python3 - "$RESULTS_JSON" "${out[@]}" <<'PY' || die "a run had errors (see $RESULTS_JSON)"
import json, statistics, sys
out, paths = sys.argv[1], sys.argv[2:]
runs = [json.load(open(p)) for p in paths]
def med(key, sub=None):
    vals = [(r[key] if sub is None else r[key].get(sub, {}).get("cpu_s_per_1000")) for r in runs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
errors = sum(r["timeouts"] + r["send_errors"] + r["bad_replies"] for r in runs)
problems = []
if errors:
    problems.append(f"{errors} timeouts, send errors or answers other than 200")
if not all(r["round_trips"] > 0 for r in runs):
    problems.append("a run completed no round trip")
progs = list(runs[0]["cpu"])
res = {
    "runs": runs, "callers": runs[0]["callers"], "seconds": runs[0]["seconds"],
    "round_trips_per_s": med("round_trips_per_s"), "p50_ms": med("p50_ms"),
    "p99_ms": med("p99_ms"), "errors": errors, "problems": problems,
    # Per program: CPU seconds over all runs, and the median per 1,000.
    "cpu": {p: {"cpu_s": round(sum(r["cpu"][p]["cpu_s"] or 0 for r in runs), 3),
                "cpu_s_per_1000": med("cpu", p)} for p in progs},
}
json.dump(res, open(out, "w"), indent=2)
print()
print(f"Kafka request/reply floor: rpc-echo, {res['callers']} callers, median of {len(runs)} run(s) "
      f"(own devbroker)")
for i, r in enumerate(runs, 1):
    print(f"  run {i}: {r['round_trips_per_s']:8.0f} round trips/s  p50 {r['p50_ms']} ms  "
          f"p99 {r['p99_ms']} ms  errors {r['timeouts'] + r['send_errors'] + r['bad_replies']}")
print(f"  median {res['round_trips_per_s']:.0f} round trips/s, p50 {res['p50_ms']:.2f} ms, "
      f"p99 {res['p99_ms']:.2f} ms")
print("  CPU s per 1,000 round trips: " + ", ".join(
    f"{p} {v['cpu_s_per_1000']:.4f}" for p, v in res["cpu"].items()
    if v["cpu_s_per_1000"] is not None))
print(f"results: {out}")
sys.exit(1 if problems else 0)
PY
  OK=1
}

main "$@"
