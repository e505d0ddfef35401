#!/usr/bin/env bash
# Notification throughput (issue 6): SubscriberEvents published straight to
# Kafka (as an MNO does) until rich notifications are delivered as webhooks
# to sp-sandbox, which accepts them at once.
#
#   1. a fresh stack on ports of its own (devbroker, mno-sandbox,
#      offer-resolver, notifier, sp-sandbox, api-edge);
#   2. the provider registers consent (api-edge's register endpoint) for a
#      few subscribers;
#   3. `millomctl events generate` produces N SubscriberEvents (distinct
#      transactionIds, override=true so the quota never refuses them) to
#      millom.subscriber.events, recording each event's produce time;
#   4. sp-sandbox's /admin/received is polled until all N arrived.
# events/s = N / (last delivery - first produce). End-to-end delay per event
# = sp-sandbox's receivedAtMs - the event's produce time (joined on
# transactionId; notifier's body carries no timestamp of the event); p50 and
# p99 of those. Prints the figures; writes var/bench/notify.json.
#
# Settings: BUILD (build/release), BENCH_NOTIFY_EVENTS (2000),
# BENCH_NOTIFY_SUBSCRIBERS (4), BENCH_NOTIFY_TIMEOUT_S (300),
# BENCH_NOTIFY_BASE_PORT (29300: +0 api-edge, +1 mno-sandbox, +2
# offer-resolver, +4 notifier, +6 sp-sandbox), BENCH_KEEP_DIR=1 keeps the
# temp dir. Any other MILLOM_* variable reaches the services unchanged.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
N=${BENCH_NOTIFY_EVENTS:-2000}
SUBS=${BENCH_NOTIFY_SUBSCRIBERS:-4}
TIMEOUT_S=${BENCH_NOTIFY_TIMEOUT_S:-300}
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

cleanup() {
  trap - EXIT INT TERM
  local i pid _
  # Services first, newest first; devbroker last.
  for ((i = ${#PROGRAMS[@]} - 1; i >= 0; i--)); do
    pid=${PID[${PROGRAMS[$i]}]:-}
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
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
for p in curl python3; do command -v "$p" >/dev/null || die "$p is not installed (make deps)"; done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_NOTIFY_EVENTS='$N': want a positive integer"
[[ $SUBS =~ ^[1-9][0-9]?$ ]] || die "BENCH_NOTIFY_SUBSCRIBERS='$SUBS': want 1..64"
for p in $EDGE_PORT $MNO_PORT $RESOLVER_PORT $NOTIFIER_PORT $SP_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is already in use; is another bench running?"
  fi
done

trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/millom-bench-notify.XXXXXX")
mkdir -p "$WORK/data" "$WORK/log"

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
export MILLOM_DATA_DIR=$WORK/data MILLOM_BROKER_FILE=$WORK/broker.bootstrap
export MILLOM_TENANTS=$WORK/tenants.json MILLOM_AUTH_DISABLED=1 MILLOM_LOG_LEVEL=warn
export MILLOM_EDGE_PORT=$EDGE_PORT MILLOM_MNO_PORT=$MNO_PORT MILLOM_RESOLVER_PORT=$RESOLVER_PORT
export MILLOM_NOTIFIER_PORT=$NOTIFIER_PORT MILLOM_SP_PORT=$SP_PORT
# override=true skips the quota at most MILLOM_NOTIFY_OVERRIDE_MAX times per
# subscriber and window (2 by default, a cap for operators); the bench sends
# thousands on purpose.
export MILLOM_NOTIFY_OVERRIDE_MAX=${MILLOM_NOTIFY_OVERRIDE_MAX:-1000000}
# Ports of the programs this bench does not start, away from the defaults.
export MILLOM_EXECUTOR_PORT=$((BASE + 3)) MILLOM_SETTLEMENT_PORT=$((BASE + 5))

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

start devbroker
for _ in $(seq 1 100); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
[ -s "$MILLOM_BROKER_FILE" ] || die "devbroker did not start; see $WORK/log/devbroker.log"
for p in "${PROGRAMS[@]:1}"; do start "$p"; done
wait_ready $MNO_PORT mno-sandbox
wait_ready $RESOLVER_PORT offer-resolver
wait_ready $NOTIFIER_PORT notifier
wait_ready $SP_PORT sp-sandbox
wait_ready $EDGE_PORT api-edge

# Consent for SUBS sandbox subscribers (9245426100NN).
MSISDN_ARGS=()
for ((i = 1; i <= SUBS; i++)); do
  m=$(printf '92454261%04d' "$i")
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
SINCE=$(curl -fsS "http://127.0.0.1:$SP_PORT/admin/received" |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["received"]; print(max([x["id"] for x in r] or [0]))')

log "$N events for $SUBS subscriber(s), type $TYPE; temp dir $WORK"
PREFIX=bench-$(date +%s%N)
"$BIN/millomctl" events generate --count "$N" "${MSISDN_ARGS[@]}" --type "$TYPE" \
  --prefix "$PREFIX" --times "$WORK/produced.tsv" ||
  die "millomctl events generate failed"

mkdir -p "$(dirname "$RESULTS_JSON")"
rc=0
python3 - "$WORK/produced.tsv" "$SP_PORT" "$SINCE" "$TIMEOUT_S" "$RESULTS_JSON" "$N" "$SUBS" \
  "$BUILD" <<'PY' || rc=$?
import json, os, subprocess, sys, time, urllib.request
produced_file, port, since, timeout_s, out, n, subs, build = sys.argv[1:]
since, n = int(since), int(n)
produced = {}
for line in open(produced_file):
    tid, ms = line.rstrip("\n").split("\t")
    produced[tid] = int(ms)
received = {}   # transactionId -> first receivedAtMs
dups = 0
deadline = time.time() + int(timeout_s)
while len(received) < len(produced) and time.time() < deadline:
    url = "http://127.0.0.1:%s/admin/received?kind=notification&since=%d&limit=5000" % (port, since)
    with urllib.request.urlopen(url, timeout=30) as r:
        batch = json.load(r)["received"]
    for x in batch:
        since = max(since, x["id"])
        body = x.get("body") if isinstance(x.get("body"), dict) else {}
        tid = x.get("transactionId") or body.get("transactionId")
        if tid not in produced:
            continue
        if tid in received:
            dups += 1
        else:
            received[tid] = x["receivedAtMs"]
    if not batch:
        time.sleep(0.1)
missing = len(produced) - len(received)
first = min(produced.values())
last = max(received.values()) if received else first
span_s = max(last - first, 1) / 1000.0
delays = sorted(received[t] - produced[t] for t in received)
def pct(p):
    if not delays:
        return None
    return delays[min(len(delays) - 1, int(round(p / 100.0 * len(delays) + 0.5)) - 1)]
def git(*a):
    try:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
res = {
    "events": n, "subscribers": int(subs), "delivered": len(received), "missing": missing,
    "duplicates": dups, "seconds": round(span_s, 3),
    "events_per_s": round(len(received) / span_s, 1),
    "delay_ms": {"p50": pct(50), "p99": pct(99), "max": delays[-1] if delays else None},
    "build": build, "cpus": os.cpu_count(), "git_commit": git("rev-parse", "HEAD"),
    "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "millom_env_overrides": {k: v for k, v in os.environ.items() if k.startswith("MILLOM_")
                             and not k.endswith("_PORT") and k not in (
                                 "MILLOM_DATA_DIR", "MILLOM_BROKER_FILE", "MILLOM_TENANTS",
                                 "MILLOM_LOG_LEVEL", "MILLOM_AUTH_DISABLED")},
}
json.dump(res, open(out, "w"), indent=2)
print()
print("Notifications: Kafka SubscriberEvent -> rich notification at sp-sandbox")
print("  events            %d (%d subscribers, 1 consenting provider)" % (n, int(subs)))
print("  delivered         %d (missing %d, duplicates %d)" % (len(received), missing, dups))
print("  throughput        %.1f events/s (%.2f s from first produce to last delivery)"
      % (res["events_per_s"], span_s))
print("  end-to-end delay  p50 %s ms, p99 %s ms, max %s ms" % (pct(50), pct(99), res["delay_ms"]["max"]))
print("results: %s" % out)
sys.exit(0 if missing == 0 else 3)
PY
[ "$rc" = 0 ] || log "not every event was delivered in ${TIMEOUT_S} s (exit $rc)"
for p in "${PROGRAMS[@]}"; do
  kill -0 "${PID[$p]}" 2>/dev/null || { log "$p died during the bench; see $WORK/log/$p.log"; exit 1; }
done
OK=1
exit $rc
