#!/usr/bin/env bash
# Notification throughput (issue 6): SubscriberEvents published straight to
# Kafka (as an MNO does) until rich notifications are delivered as webhooks
# to sp-sandbox, which accepts them at once.
#
#   1. a fresh stack on ports of its own (devbroker, mno-sandbox,
#      offer-resolver, notifier, sp-sandbox, api-edge);
#   2. BENCH_NOTIFY_SUBSCRIBERS subscribers (924542630001, ...) are created
#      at mno-sandbox (POST /admin/subscribers, a wallet and three offers
#      each), and the provider registers consent for each (api-edge's
#      register endpoint): events spread over many subscribers, as an
#      operator's do, so neither one Kafka partition nor one subscriber's
#      cached offers carry the whole load;
#   3. `millomctl events generate` produces N SubscriberEvents (distinct
#      transactionIds, override=true so the quota never refuses them) to
#      millom.subscriber.events, recording each event's produce time;
#   4. sp-sandbox's /admin/received is polled until all N arrived.
# events/s = N / (last delivery - first produce). End-to-end delay per event
# = sp-sandbox's receivedAtMs - the event's produce time (joined on
# transactionId; notifier's body carries no timestamp of the event); p50 and
# p99 of those. Prints the figures; writes var/bench/notify.json.
#
#   5. every event must arrive exactly once by delivery id: as many
#      distinct X-Millom-Delivery-Id values as events, none repeated, one
#      per event, every delivery answered 200; otherwise the bench fails;
#   6. baseline: wrk POSTs the body of one delivered notification (with a
#      fresh X-Millom-Delivery-Id each time) straight to sp-sandbox's
#      /notifications, BENCH_SECONDS long; ratio = events/s / POSTs/s.
# CPU seconds per 1,000 events of every program (utime + stime from
# /proc/<pid>/stat, produce to last delivery), and of the baseline's.
#
# Runs: all six steps run BENCH_NOTIFY_RUNS times (BENCH_RUNS, 3), each on a
# fresh stack, each ratio against the baseline of its own run. The JSON's
# top-level figures are those of the run with the median ratio (events/s
# over its baseline's POSTs/s is that median), with every run's lost,
# repeated and failed deliveries added up; "runs" lists every run. One
# run of about 5 s swung with the box's speed (0.26 to 0.35 in full
# benches of the same code).
#
# Settings: BUILD (build/release), BENCH_NOTIFY_EVENTS (6000: long enough,
# about 5 s, that the first event's fixed delay no longer weighs on a rate
# compared with the baseline's 15-s steady one; 2,000 lasted 1.6 s),
# BENCH_NOTIFY_RUNS (BENCH_RUNS, 3),
# BENCH_NOTIFY_SUBSCRIBERS (64, at most 64: millomctl's --msisdn limit),
# BENCH_NOTIFY_TIMEOUT_S (300),
# BENCH_NOTIFY_BASE_PORT (29300: +0 api-edge, +1 mno-sandbox, +2
# offer-resolver, +4 notifier, +6 sp-sandbox), for the baseline
# BENCH_SECONDS (15), BENCH_CONNECTIONS (50), BENCH_THREADS (2),
# BENCH_KEEP_DIR=1 keeps the temp dir. Any other MILLOM_* variable reaches
# the services unchanged. Exit status 3 when events were lost or
# duplicated or the baseline had errors, 1 when it could not run.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
N=${BENCH_NOTIFY_EVENTS:-6000}
RUNS=${BENCH_NOTIFY_RUNS:-${BENCH_RUNS:-3}}
SUBS=${BENCH_NOTIFY_SUBSCRIBERS:-64}
TIMEOUT_S=${BENCH_NOTIFY_TIMEOUT_S:-300}
SECONDS_PER_RUN=${BENCH_SECONDS:-15}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-2}
BASE=${BENCH_NOTIFY_BASE_PORT:-29300}
EDGE_PORT=$BASE
MNO_PORT=$((BASE + 1))
RESOLVER_PORT=$((BASE + 2))
NOTIFIER_PORT=$((BASE + 4))
SP_PORT=$((BASE + 6))
SP=testserviceprovider
TYPE=low-data
RESULTS_JSON=var/bench/notify.json
PROGRAMS=(devbroker mno-sandbox offer-resolver notifier sp-sandbox api-edge)
declare -A PID=()
WORK=
OK=0

log() { echo "bench-notify: $*" >&2; }
die() { log "$*"; exit 1; }

# Services first, newest first; devbroker last.
stop_programs() {
  local i pid _
  for ((i = ${#PROGRAMS[@]} - 1; i >= 0; i--)); do
    pid=${PID[${PROGRAMS[$i]}]:-}
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PID=()
}

cleanup() {
  trap - EXIT INT TERM
  stop_programs
  if [ -z "$WORK" ]; then
    :
  elif [ "$OK" = 1 ] && [ "${BENCH_KEEP_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "kept the logs in $WORK"
  fi
}

for p in "${PROGRAMS[@]}" millomctl; do
  [ -x "$BIN/$p" ] || die "$BIN/$p is missing; run 'make build' first"
done
for p in curl python3 wrk; do command -v "$p" >/dev/null || die "$p is not installed (make deps)"; done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_NOTIFY_EVENTS='$N': want a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_NOTIFY_RUNS='$RUNS': want a positive integer"
for p in "$SECONDS_PER_RUN" "$CONNECTIONS" "$THREADS"; do
  [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad setting '$p': want a positive integer"
done
[[ $SUBS =~ ^[1-9][0-9]?$ ]] && [ "$SUBS" -le 64 ] || die "BENCH_NOTIFY_SUBSCRIBERS='$SUBS': want 1..64"
for p in $EDGE_PORT $MNO_PORT $RESOLVER_PORT $NOTIFIER_PORT $SP_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is already in use; is another bench running?"
  fi
done

trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/millom-bench-notify.XXXXXX")
mkdir -p "$WORK/log"

python3 - config/tenants.sandbox.json "$WORK/tenants.json" "$MNO_PORT" "$SP_PORT" <<'PY'
import json, sys
src, dst, mno, sp = sys.argv[1:]
with open(src) as f:
    t = json.load(f)
for op in t["operators"]:
    op["backendUrl"] = "http://127.0.0.1:%s" % mno
for p in t["serviceProviders"]:
    p["notificationUrl"] = "http://127.0.0.1:%s/notifications" % sp
    p["callbackUrl"] = "http://127.0.0.1:%s/callbacks" % sp
with open(dst, "w") as f:
    json.dump(t, f, indent=2)
PY

unset KAFKA_BOOTSTRAP
export MILLOM_TENANTS=$WORK/tenants.json MILLOM_AUTH_DISABLED=1 MILLOM_LOG_LEVEL=warn
export MILLOM_EDGE_PORT=$EDGE_PORT MILLOM_MNO_PORT=$MNO_PORT MILLOM_RESOLVER_PORT=$RESOLVER_PORT
export MILLOM_NOTIFIER_PORT=$NOTIFIER_PORT MILLOM_SP_PORT=$SP_PORT
# override=true skips the quota at most MILLOM_NOTIFY_OVERRIDE_MAX times per
# subscriber and window (2 by default, a cap for operators); the bench sends
# thousands on purpose.
export MILLOM_NOTIFY_OVERRIDE_MAX=${MILLOM_NOTIFY_OVERRIDE_MAX:-1000000}
# Ports of the programs this bench does not start, away from the defaults.
export MILLOM_EXECUTOR_PORT=$((BASE + 3)) MILLOM_SETTLEMENT_PORT=$((BASE + 5))

# CPU time (utime + stime, clock ticks) of every program: name<TAB>ticks.
# Field 2 of /proc/<pid>/stat (comm) may hold spaces, so the fields are
# counted after its closing parenthesis: utime and stime are the 12th and
# 13th there.
cpu_snapshot() {
  local p stat fields
  for p in "${PROGRAMS[@]}"; do
    stat=$(cat "/proc/${PID[$p]}/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    printf '%s\t%s\n' "$p" "$((fields[11] + fields[12]))"
  done
}
cpu_diff() { # before after -> name<TAB>ticks used
  join -t $'\t' <(sort "$1") <(sort "$2") | awk -F'\t' '{print $1 "\t" $3 - $2}'
}

start() { setsid "$BIN/$1" >>"$WORK/log/$1.log" 2>&1 & PID[$1]=$!; }
wait_ready() { # port name
  local _
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0
    kill -0 "${PID[$2]}" 2>/dev/null || die "$2 exited during start-up; see $WORK/log/$2.log"
    sleep 0.1
  done
  die "$2 did not become ready on port $1 in 15 s; see $WORK/log/$2.log"
}

# Steps 1 and 2 on a fresh data dir: each run gets a fresh stack, as each
# Millom scenario of scripts/bench.sh does (devbroker's cost per message
# grows with what it holds, and notifier's store with what it delivered:
# on one stack three runs made 1,358, 1,132 and 889 events/s).
start_stack() { # dir
  export MILLOM_DATA_DIR=$1/data MILLOM_BROKER_FILE=$1/broker.bootstrap
  mkdir -p "$MILLOM_DATA_DIR"
  start devbroker
  # devbroker: up to 1 s per topic on the mock cluster's poll (scripts/run.sh)
  for _ in $(seq 1 600); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
  [ -s "$MILLOM_BROKER_FILE" ] || die "devbroker did not start; see $WORK/log/devbroker.log"
  for p in "${PROGRAMS[@]:1}"; do start "$p"; done
  wait_ready $MNO_PORT mno-sandbox
  wait_ready $RESOLVER_PORT offer-resolver
  wait_ready $NOTIFIER_PORT notifier
  wait_ready $SP_PORT sp-sandbox
  wait_ready $EDGE_PORT api-edge

  # SUBS subscribers (92454263NNNN) at mno-sandbox, each with consent.
  MSISDN_ARGS=()
  for ((i = 1; i <= SUBS; i++)); do
    m=$(printf '92454263%04d' "$i")
    code=$(curl -sS -o "$WORK/subscriber.json" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' \
      -d "{\"msisdn\":\"$m\",\"balanceMinor\":52075,\"offers\":[\"tp-data-daily-3gb\",\"tp-social-daily\",\"tp-video-hour\"]}" \
      "http://127.0.0.1:$MNO_PORT/admin/subscribers") || code=000
    [[ $code = 20[01] ]] || die "mno-sandbox /admin/subscribers for $m answered $code: $(head -c 300 "$WORK/subscriber.json")"
    code=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' \
      -d "{\"transactionId\":\"bench-consent-$i\",\"types\":[\"$TYPE\"]}" \
      "http://127.0.0.1:$EDGE_PORT/std/$SP/$m/register") || code=000
    [ "$code" = 200 ] || die "register $m answered $code: $(head -c 300 "$WORK/register.json")"
    MSISDN_ARGS+=(--msisdn "$m")
  done

  # One warm-up event end to end, so the consents are in notifier's store and
  # the first connections exist before the clock runs.
  "$BIN/millomctl" events generate --count 1 "${MSISDN_ARGS[@]:0:2}" --type "$TYPE" \
    --prefix bench-warmup --times "$WORK/warmup.tsv"
  warm=0
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$SP_PORT/admin/received?kind=notification" |
       grep -q 'bench-warmup-0'; then warm=1; break; fi
    sleep 0.1
  done
  [ "$warm" = 1 ] || die "the warm-up event never reached sp-sandbox; see $WORK/log/notifier.log"
}

# One run: a fresh stack, steps 3 to 6; writes $WORK/run.<n>.json and exits on what
# stops the bench (a program died, nothing could be checked). Its lines
# are not indented: the here-documents' ends must start their lines.
run_once() { # run number
  local run=$1 dir=$WORK/run.$1
  mkdir -p "$dir"
  start_stack "$dir"
SINCE=$(curl -fsS "http://127.0.0.1:$SP_PORT/admin/received" |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["received"]; print(max([x["id"] for x in r] or [0]))')

log "run $run/$RUNS: $N events for $SUBS subscriber(s), type $TYPE; temp dir $WORK"
cpu_snapshot >"$dir/cpu.before"
PREFIX=bench-$(date +%s%N)
"$BIN/millomctl" events generate --count "$N" "${MSISDN_ARGS[@]}" --type "$TYPE" \
  --prefix "$PREFIX" --times "$dir/produced.tsv" ||
  die "millomctl events generate failed"

# Waits for the deliveries, checks them (exactly once by delivery id, all
# answered 200) and keeps one delivered body for the baseline.
rc=0
python3 - "$dir/produced.tsv" "$SP_PORT" "$SINCE" "$TIMEOUT_S" "$dir/millom.json" \
  "$dir/webhook.json" <<'PY' || rc=$?
import json, sys, time, urllib.request
produced_file, port, since, timeout_s, out, body_out = sys.argv[1:]
since = int(since)
produced = {}
for line in open(produced_file):
    tid, ms = line.rstrip("\n").split("\t")
    produced[tid] = int(ms)
first_at = {}      # transactionId -> first receivedAtMs
per_delivery = {}  # delivery id -> records
ids_of = {}        # transactionId -> set of delivery ids
no_id = non200 = 0
body = None
deadline = time.time() + int(timeout_s)
while len(first_at) < len(produced) and time.time() < deadline:
    url = "http://127.0.0.1:%s/admin/received?kind=notification&since=%d&limit=5000" % (port, since)
    with urllib.request.urlopen(url, timeout=30) as r:
        batch = json.load(r)["received"]
    for x in batch:
        since = max(since, x["id"])
        b = x.get("body") if isinstance(x.get("body"), dict) else {}
        tid = x.get("transactionId") or b.get("transactionId")
        if tid not in produced:
            continue
        if x.get("status") != 200:
            non200 += 1
            continue
        first_at.setdefault(tid, x["receivedAtMs"])
        if body is None:
            body = b
        did = x.get("deliveryId")
        if not did:
            no_id += 1
            continue
        per_delivery[did] = per_delivery.get(did, 0) + 1
        ids_of.setdefault(tid, set()).add(did)
    if not batch:
        time.sleep(0.1)
# A late duplicate would arrive after the last first delivery: look once more.
time.sleep(1.0)
url = "http://127.0.0.1:%s/admin/received?kind=notification&since=%d&limit=100000" % (port, since)
with urllib.request.urlopen(url, timeout=30) as r:
    for x in json.load(r)["received"]:
        b = x.get("body") if isinstance(x.get("body"), dict) else {}
        tid = x.get("transactionId") or b.get("transactionId")
        if tid in produced and x.get("status") == 200 and x.get("deliveryId"):
            per_delivery[x["deliveryId"]] = per_delivery.get(x["deliveryId"], 0) + 1
            ids_of.setdefault(tid, set()).add(x["deliveryId"])
delays = sorted(first_at[t] - produced[t] for t in first_at)
def pct(p):
    return delays[min(len(delays) - 1, int(round(p / 100.0 * len(delays) + 0.5)) - 1)] if delays else None
first = min(produced.values())
last = max(first_at.values()) if first_at else first
span_s = max(last - first, 1) / 1000.0
res = {
    "events": len(produced), "delivered": len(first_at), "missing": len(produced) - len(first_at),
    "distinct_delivery_ids": len(per_delivery),
    "duplicate_deliveries": sum(c - 1 for c in per_delivery.values()),
    "events_with_several_delivery_ids": sum(1 for v in ids_of.values() if len(v) > 1),
    "deliveries_without_id": no_id, "non200": non200,
    "seconds": round(span_s, 3), "events_per_s": round(len(first_at) / span_s, 1),
    "delay_ms": {"p50": pct(50), "p99": pct(99), "max": delays[-1] if delays else None},
}
json.dump(res, open(out, "w"), indent=2)
if body is not None:
    with open(body_out, "w") as f:
        json.dump(body, f, separators=(",", ":"), ensure_ascii=False)
PY
cpu_snapshot >"$dir/cpu.after"
cpu_diff "$dir/cpu.before" "$dir/cpu.after" >"$dir/cpu.millom.tsv"
[ "$rc" = 0 ] || die "run $run: checking the deliveries failed (exit $rc)"

# Baseline: wrk POSTs the same webhook body straight to sp-sandbox.
if [ -s "$dir/webhook.json" ]; then
  log "run $run/$RUNS: baseline: wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s POSTs the webhook body to sp-sandbox"
  cpu_snapshot >"$dir/cpu.before"
  BENCH_WEBHOOK_BODY=$dir/webhook.json wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" \
    --latency -s "$PWD/bench/webhook.lua" "http://127.0.0.1:$SP_PORT/notifications" \
    >"$dir/baseline.txt" 2>&1 || log "wrk failed: $(cat "$dir/baseline.txt")"
  cpu_snapshot >"$dir/cpu.after"
  cpu_diff "$dir/cpu.before" "$dir/cpu.after" >"$dir/cpu.baseline.tsv"
else
  log "no event was delivered: no webhook body for the baseline"
  : >"$dir/baseline.txt"
  : >"$dir/cpu.baseline.tsv"
fi
for p in "${PROGRAMS[@]}"; do
  kill -0 "${PID[$p]}" 2>/dev/null || { log "$p died during the bench; see $WORK/log/$p.log"; exit 1; }
done

rc=0
python3 - "$dir" "$dir.json" "$SUBS" "$BUILD" "$(getconf CLK_TCK)" \
  "$THREADS" "$CONNECTIONS" "$SECONDS_PER_RUN" "$run" <<'PY' || rc=$?
import json, os, subprocess, sys
work, out, subs, build, clk_tck, threads, conns, secs, run = sys.argv[1:]
clk_tck = int(clk_tck)
sys.path.insert(0, "bench")
from report import parse_wrk
m = json.load(open(os.path.join(work, "millom.json")))
problems = []
if m["missing"]:
    problems.append("%d of %d events not delivered" % (m["missing"], m["events"]))
if m["duplicate_deliveries"] or m["events_with_several_delivery_ids"]:
    problems.append("not exactly once: %d repeated delivery ids, %d events with several delivery ids"
                    % (m["duplicate_deliveries"], m["events_with_several_delivery_ids"]))
if m["deliveries_without_id"]:
    problems.append("%d deliveries without X-Millom-Delivery-Id" % m["deliveries_without_id"])
if m["delivered"] == m["events"] and m["distinct_delivery_ids"] != m["events"]:
    problems.append("%d distinct delivery ids for %d events" % (m["distinct_delivery_ids"], m["events"]))
if m["non200"]:
    problems.append("%d deliveries answered non-200 by sp-sandbox" % m["non200"])
base = None
try:
    base = parse_wrk(open(os.path.join(work, "baseline.txt"), errors="replace").read())
except (OSError, ValueError) as e:
    problems.append("baseline: %s" % e)
if base and base["non2xx"]:
    problems.append("baseline: %d non-2xx answers" % base["non2xx"])
if base and base["socket_errors"]:
    problems.append("baseline: %d socket errors" % base["socket_errors"])
MILLOM = {"offer-resolver", "notifier", "api-edge"}
def cpu(name, per, seconds):
    rows = {}
    for line in open(os.path.join(work, name)):
        prog, ticks = line.rstrip("\n").split("\t")
        rows[prog] = {"cpu_s": round(int(ticks) / clk_tck, 3),
                      "cpu_s_per_1000": round(int(ticks) / clk_tck * 1000.0 / per, 3) if per else None,
                      "cpu_s_per_s": round(int(ticks) / clk_tck / seconds, 4) if seconds else None,
                      "millom": prog in MILLOM}
    return rows
def git(*a):
    try:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
rate = m["events_per_s"]
res = dict(m)
res.update({
    "subscribers": int(subs),
    "baseline": None if base is None else {
        "what": "wrk POSTing the same webhook body to sp-sandbox /notifications",
        "threads": int(threads), "connections": int(conns), "seconds": int(secs),
        "rps": base["rps"], "p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"],
        "requests": base["requests"], "non2xx": base["non2xx"],
        "socket_errors": base["socket_errors"]},
    "ratio": round(rate / base["rps"], 4) if base and base["rps"] else None,
    "cpu": cpu("cpu.millom.tsv", m["delivered"], m["seconds"]),
    "baseline_cpu": cpu("cpu.baseline.tsv", base["requests"] if base else 0, int(secs)),
    "problems": problems, "valid": not problems,
    "build": build, "cpus": os.cpu_count(), "git_commit": git("rev-parse", "HEAD"),
    "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "millom_env_overrides": {k: v for k, v in os.environ.items() if k.startswith("MILLOM_")
                             and not k.endswith("_PORT") and k not in (
                                 "MILLOM_DATA_DIR", "MILLOM_BROKER_FILE", "MILLOM_TENANTS",
                                 "MILLOM_LOG_LEVEL", "MILLOM_AUTH_DISABLED")},
})
json.dump(res, open(out, "w"), indent=2)
d = m["delay_ms"]
print()
print("Notifications, run %s: Kafka SubscriberEvent -> rich notification at sp-sandbox" % run)
print("  events            %d (%d subscribers, 1 consenting provider)" % (m["events"], int(subs)))
print("  delivered         %d (missing %d); distinct delivery ids %d, repeated %d, events with several %d"
      % (m["delivered"], m["missing"], m["distinct_delivery_ids"], m["duplicate_deliveries"],
         m["events_with_several_delivery_ids"]))
print("  throughput        %.1f events/s (%.2f s from first produce to last delivery)"
      % (rate, m["seconds"]))
print("  end-to-end delay  p50 %s ms, p99 %s ms, max %s ms" % (d["p50"], d["p99"], d["max"]))
if base:
    print("  baseline          %.1f POSTs/s straight to sp-sandbox (wrk -t%s -c%s -d%ss), p50 %.2f ms, "
          "p99 %.2f ms, non-2xx %d, socket errors %d"
          % (base["rps"], threads, conns, secs, base["p50_ms"], base["p99_ms"], base["non2xx"],
             base["socket_errors"]))
    print("  ratio             %s" % res["ratio"])
print("  CPU s per 1,000 events: " + ", ".join(
    "%s %s%s" % (k, v["cpu_s_per_1000"], "" if v["millom"] else " (ref)")
    for k, v in res["cpu"].items()))
sys.exit(0 if not problems else 3)
PY
[ "$rc" = 0 ] || [ "$rc" = 3 ] || die "run $run: the results failed (exit $rc)"
stop_programs
[ "${BENCH_KEEP_DIR:-0}" = 1 ] || rm -rf "$dir/data"
}

for run in $(seq 1 "$RUNS"); do run_once "$run"; done

# Every run's problems count; the figures are those of the run with the
# median ratio (so its events/s over its baseline's POSTs/s is the median).
mkdir -p "$(dirname "$RESULTS_JSON")"
rc=0
python3 - "$RESULTS_JSON" "$WORK"/run.*.json <<'PY' || rc=$?
import json, sys
sys.path.insert(0, "bench")
from report import combine_notify_runs, load_runs
out, paths = sys.argv[1], sys.argv[2:]
runs = load_runs(paths)
res = combine_notify_runs(runs)
json.dump(res, open(out, "w"), indent=2)
print()
print("Notifications, %d run(s): events/s %s against POSTs/s %s, ratios %s; the run with the median "
      "ratio: %s events/s, ratio %s" % (
          len(runs), [r["events_per_s"] for r in runs],
          [(r.get("baseline") or {}).get("rps") for r in runs], [r["ratio"] for r in runs],
          res["events_per_s"], res["ratio"]))
for p in res["problems"]:
    print("  FAILED: %s" % p)
print("results: %s" % out)
sys.exit(0 if not res["problems"] else 3)
PY
[ "$rc" != 0 ] || OK=1
exit $rc
