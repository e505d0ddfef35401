#!/usr/bin/env bash
# Settlement throughput (issue 7): how fast settlement-reporter turns a
# backlog of PurchaseEvents into SettlementRecords, next to how fast kcat
# merely reads the same events (the floor any consumer pays on this broker).
#
#   1. a fresh devbroker; `millomctl purchases generate` produces N
#      COMPLETED PurchaseEvents to millom.purchase.events (varied amounts,
#      plans, providers, subscribers; one UTC day);
#   2. baseline: kcat consumes all N from the beginning (-e: stop at the end),
#      three times, the middle time counting;
#   3. settlement-reporter (alone, fresh database) starts on the backlog; the
#      clock runs from its /readyz (partitions assigned) until its counter
#      millom_settlement_records_total reaches N (settled: committed in
#      SQLite with aggregates and outbox rows), and until the outbox is
#      empty (every record and report published to Kafka).
# Prints events/s of both and the ratio, and the CPU seconds per 1,000
# events settlement-reporter (and, for reference, devbroker) used from its
# /readyz until the outbox was empty (utime + stime from /proc/<pid>/stat);
# writes var/bench/settlement.json.
#
# Runs: the three steps run BENCH_SETTLEMENT_RUNS times (BENCH_RUNS, 3),
# each on a fresh devbroker and database, each ratio against the kcat
# baseline of its own run. The JSON's top-level figures are those of the
# run with the median ratio (so records/s over kcat's events/s is that
# median), and "runs" lists every run: one run of about 4 s swung with the
# box's speed (settled 28,141 to 43,287 records/s in full benches of the
# same code).
#
# Settings: BUILD (build/release), BENCH_SETTLEMENT_EVENTS (100000),
# BENCH_SETTLEMENT_RUNS (BENCH_RUNS, 3), BENCH_SETTLEMENT_PORT (29204),
# BENCH_KEEP_DIR=1 keeps the temp dir.
# Any MILLOM_* variable reaches settlement-reporter unchanged.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
N=${BENCH_SETTLEMENT_EVENTS:-100000}
RUNS=${BENCH_SETTLEMENT_RUNS:-${BENCH_RUNS:-3}}
PORT=${BENCH_SETTLEMENT_PORT:-29204}
RESULTS_JSON=var/bench/settlement.json
WORK=
BROKER_PID=
REPORTER_PID=
OK=0

log() { echo "bench-settlement: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
# CPU time (utime + stime, clock ticks) of a process; fields counted after
# comm's closing parenthesis (utime and stime are the 12th and 13th there).
cpu_ticks() { # pid
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}

# TERM, then up to 10 s before KILL.
stop_pid() { # pid
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in $REPORTER_PID $BROKER_PID; do stop_pid "$pid"; done
  if [ -n "$WORK" ] && [ "$OK" = 1 ] && [ "${BENCH_KEEP_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  elif [ -n "$WORK" ]; then
    log "kept logs in $WORK"
  fi
}

metric() { # name -> value or 0
  curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
    awk -v n="$1" '$1 == n {print $2; found=1} END {if (!found) print 0}'
}

# One run: a fresh devbroker and database, the events, kcat, then
# settlement-reporter; writes $WORK/run.<n>.json.
run_once() { # run number
  local run=$1 dir=$WORK/run.$1
  mkdir -p "$dir/data"
  export MILLOM_DATA_DIR=$dir/data MILLOM_BROKER_FILE=$dir/broker.bootstrap

  setsid "$BIN/devbroker" >>"$dir/devbroker.log" 2>&1 &
  BROKER_PID=$!
  # devbroker: up to 1 s per topic on the mock cluster's poll (scripts/run.sh)
  for _ in $(seq 1 600); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
  [ -s "$MILLOM_BROKER_FILE" ] || die "devbroker did not start; see $dir/devbroker.log"
  local boot
  boot=$(cat "$MILLOM_BROKER_FILE")

  log "run $run/$RUNS: producing $N purchase events"
  local t0 t1
  t0=$(now)
  "$BIN/millomctl" purchases generate --count "$N" --prefix "bench-$$-$run" 2>>"$dir/millomctl.log" ||
    die "producing failed; see $dir/millomctl.log"
  t1=$(now)
  local produce_s
  produce_s=$(python3 -c "print($t1 - $t0)")

  # kcat reads the backlog three times and the middle time counts: one
  # read lasts under a second, and its start (connection, metadata) made
  # single reads of the same backlog range from 82,898 to 151,473 events/s.
  log "run $run/$RUNS: baseline: kcat consumes the $N events (three times)"
  local got read kcat_times=()
  for read in 1 2 3; do
    t0=$(now)
    got=$(kcat -C -b "$boot" -t millom.purchase.events -o beginning -e -q -f '.\n' 2>>"$dir/kcat.log" | wc -l)
    t1=$(now)
    [ "$got" -ge "$N" ] || die "kcat read $got of $N events; see $dir/kcat.log"
    kcat_times+=("$(python3 -c "print($t1 - $t0)")")
  done
  local kcat_s
  kcat_s=$(printf '%s\n' "${kcat_times[@]}" | sort -g | sed -n 2p)

  log "run $run/$RUNS: settlement-reporter settles the $N events"
  setsid "$BIN/settlement-reporter" >>"$dir/settlement-reporter.log" 2>&1 &
  REPORTER_PID=$!
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break
    kill -0 "$REPORTER_PID" 2>/dev/null || die "settlement-reporter exited; see $dir/settlement-reporter.log"
    sleep 0.05
  done
  t0=$(now)
  local reporter_cpu0 broker_cpu0
  reporter_cpu0=$(cpu_ticks "$REPORTER_PID")
  broker_cpu0=$(cpu_ticks "$BROKER_PID")
  local settled=0 settled_at='' published_at='' deadline=$((SECONDS + 600))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$REPORTER_PID" 2>/dev/null || die "settlement-reporter died; see $dir/settlement-reporter.log"
    settled=$(metric millom_settlement_records_total)
    if [ -z "$settled_at" ] && [ "$settled" -ge "$N" ]; then settled_at=$(now); fi
    if [ -n "$settled_at" ] && [ "$(metric millom_outbox_depth)" = 0 ]; then
      published_at=$(now)
      break
    fi
    sleep 0.1
  done
  [ -n "$published_at" ] || die "only $settled of $N settled in 600 s; see $dir"
  local reporter_cpu broker_cpu
  reporter_cpu=$(($(cpu_ticks "$REPORTER_PID") - reporter_cpu0))
  broker_cpu=$(($(cpu_ticks "$BROKER_PID") - broker_cpu0))
  stop_pid "$REPORTER_PID"
  REPORTER_PID=
  stop_pid "$BROKER_PID"
  BROKER_PID=
  [ "${BENCH_KEEP_DIR:-0}" = 1 ] || rm -rf "$dir/data"

  python3 - "$N" "$produce_s" "$kcat_s" "$t0" "$settled_at" "$published_at" "$dir.json" \
    "$settled" "$reporter_cpu" "$broker_cpu" "$(getconf CLK_TCK)" <<'PY'
import json, sys
n, produce_s, kcat_s, t0, settled_at, published_at, out, settled, rcpu, bcpu, tck = sys.argv[1:]
cpu = {name: {"cpu_s": round(int(t) / int(tck), 3),
              "cpu_s_per_1000": round(int(t) / int(tck) * 1000.0 / int(n), 4), "millom": m}
       for name, t, m in (("settlement-reporter", rcpu, True), ("devbroker", bcpu, False))}
n = int(n); produce_s = float(produce_s); kcat_s = float(kcat_s)
settle_s = float(settled_at) - float(t0); publish_s = float(published_at) - float(t0)
r = {
    "events": n,
    "produce_events_per_s": round(n / produce_s),
    "kcat_consume_events_per_s": round(n / kcat_s),
    "kcat_s": round(kcat_s, 3),
    "settled_records_per_s": round(n / settle_s),
    "settle_s": round(settle_s, 3),
    "published_records_per_s": round(n / publish_s),
    "publish_s": round(publish_s, 3),
    "ratio_settled_vs_kcat": round((n / settle_s) / (n / kcat_s), 3),
    "ratio_published_vs_kcat": round((n / publish_s) / (n / kcat_s), 3),
    "settled": int(settled),
    "cpu": cpu,
}
json.dump(r, open(out, "w"), indent=2)
PY
}

main() {
  for p in devbroker settlement-reporter millomctl; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing; run 'make build' first"
  done
  for p in kcat curl python3; do command -v "$p" >/dev/null || die "$p is not installed (make deps)"; done
  [[ $N =~ ^[1-9][0-9]*$ ]] || die "bad BENCH_SETTLEMENT_EVENTS '$N'"
  [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "bad BENCH_SETTLEMENT_RUNS '$RUNS'"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use"; fi
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/millom-bench-settlement.XXXXXX")
  unset KAFKA_BOOTSTRAP
  export MILLOM_LOG_LEVEL=warn MILLOM_SETTLEMENT_PORT=$PORT

  local run
  for run in $(seq 1 "$RUNS"); do run_once "$run"; done

  mkdir -p "$(dirname "$RESULTS_JSON")"
  python3 - "$RESULTS_JSON" "$WORK"/run.*.json <<'PY'
import json, sys
sys.path.insert(0, "bench")
from report import combine_settlement_runs, load_runs
out, paths = sys.argv[1], sys.argv[2:]
runs = load_runs(paths)
r = combine_settlement_runs(runs)
json.dump(r, open(out, "w"), indent=2)
n = r["events"]
print()
print(f"settlement throughput, {n} PurchaseEvents, {len(runs)} run(s) (each: fresh devbroker, "
      "settlement-reporter alone)")
for i, x in enumerate(runs, 1):
    print(f"  run {i}: kcat {x['kcat_consume_events_per_s']} events/s ({x['kcat_s']:.2f} s), "
          f"settled {x['settled_records_per_s']} records/s ({x['settle_s']:.2f} s), "
          f"ratio {x['ratio_settled_vs_kcat']}")
print(f"  the run with the median ratio:")
print(f"  {'kcat consume (baseline)':38s} {r['kcat_consume_events_per_s']:>10} events/s  ({r['kcat_s']:.2f} s)")
print(f"  {'settlement-reporter: settled (SQLite)':38s} {r['settled_records_per_s']:>10} records/s ({r['settle_s']:.2f} s)  ratio {r['ratio_settled_vs_kcat']}")
print(f"  {'settlement-reporter: published (Kafka)':38s} {r['published_records_per_s']:>10} records/s ({r['publish_s']:.2f} s)  ratio {r['ratio_published_vs_kcat']}")
print(f"  (producing the events: {r['produce_events_per_s']} events/s)")
print("  CPU s per 1,000 events: " + ", ".join(
    f"{k} {v['cpu_s_per_1000']}{'' if v['millom'] else ' (ref)'}" for k, v in r["cpu"].items()))
print(f"results: {out}")
PY
  OK=1
}

main "$@"
