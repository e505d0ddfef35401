#!/usr/bin/env bash
# make chaos: mixed load through api-edge while a random service is killed
# with SIGKILL every 2 to 5 s and restarted; then the killing stops, the
# stack drains, and one table says whether anything was lost.
#
# The stack is its own: ports CHAOS_BASE_PORT (19680) .. +6, data, logs and
# request records under CHAOS_DIR (var/chaos, emptied at start), devbroker
# on a random port. It never touches `make run`'s var/data or ports.
#
#   CHAOS_SECONDS (120)   how long the load and the kills last
#   CHAOS_DRAIN_S (180)   how long the checks wait for the work to finish
#   BUILD (build/release) where the programs are ($BUILD/bin)
#
# Load (each loop bounded in count and time, loopback only, every request
# with curl --max-time CHAOS_REQUEST_TIMEOUT_S): balance and upsellOffer
# reads; sync purchases (LOAN plans, and WALLET plans until the money runs
# out); async purchases (tp-data-weekly-async); consent registrations and
# operator notifications; a few bad requests. Victims: api-edge,
# offer-resolver, purchase-executor, notifier, settlement-reporter (the
# sandboxes and devbroker stay up).
#
# Checks (scripts' python3 part, at the end): every purchase answered 200
# or 202 is final; exactly one debit at mno-sandbox per completed transid,
# none for a failed one, none without a purchase; settlement records =
# completed purchases with the same sum; every notification answered 202
# reached sp-sandbox, repeats with the same X-Millom-Delivery-Id; refusals
# are 503 with Retry-After, nothing hung past its deadline (connection
# errors while api-edge was down are expected and counted apart); every
# killed program became ready again, none died on its own, and all stop
# cleanly at the end. Exit status 1 when any check fails.
set -uo pipefail

BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
CHAOS_SECONDS=${CHAOS_SECONDS:-120}
DRAIN_S=${CHAOS_DRAIN_S:-180}
REQUEST_TIMEOUT_S=${CHAOS_REQUEST_TIMEOUT_S:-20}
BASE=${CHAOS_BASE_PORT:-19680}
ROOT=${CHAOS_DIR:-var/chaos}
SP=testserviceprovider

EDGE_PORT=$BASE
MNO_PORT=$((BASE + 1))
RESOLVER_PORT=$((BASE + 2))
EXECUTOR_PORT=$((BASE + 3))
NOTIFIER_PORT=$((BASE + 4))
SETTLEMENT_PORT=$((BASE + 5))
SP_PORT=$((BASE + 6))
EDGE=http://127.0.0.1:$EDGE_PORT
RUN_ID=chaos-$(date +%s)

VICTIMS=(api-edge offer-resolver purchase-executor notifier settlement-reporter)
declare -A PORT=([api-edge]=$EDGE_PORT [mno-sandbox]=$MNO_PORT [sp-sandbox]=$SP_PORT
  [offer-resolver]=$RESOLVER_PORT [purchase-executor]=$EXECUTOR_PORT
  [notifier]=$NOTIFIER_PORT [settlement-reporter]=$SETTLEMENT_PORT)
declare -A PID=()      # program name -> pid of the running instance
LOAD_PIDS=()           # the load loops
WAITER_PIDS=()         # kill_loop's readiness waiters

now_ms() { date +%s%3N; }
log() { echo "chaos: $*" >&2; }

# ---- the stack ----

# Every program's settings: this stack's ports, data dir and tenants; the
# sandbox profile; short retry intervals so the drain is quick.
export_env() {
  export MILLOM_DATA_DIR=$ROOT/data
  export MILLOM_BROKER_FILE=$ROOT/broker.bootstrap
  export MILLOM_TENANTS=$ROOT/tenants.json
  export MILLOM_AUTH_DISABLED=1
  export MILLOM_LOG_LEVEL=${MILLOM_LOG_LEVEL:-info}
  export MILLOM_EDGE_PORT=$EDGE_PORT MILLOM_MNO_PORT=$MNO_PORT MILLOM_SP_PORT=$SP_PORT
  export MILLOM_RESOLVER_PORT=$RESOLVER_PORT MILLOM_EXECUTOR_PORT=$EXECUTOR_PORT
  export MILLOM_NOTIFIER_PORT=$NOTIFIER_PORT MILLOM_SETTLEMENT_PORT=$SETTLEMENT_PORT
  export MILLOM_PUBLIC_URL=$EDGE MILLOM_CALLBACK_BASE_URL=$EDGE
  export MILLOM_MNO_CALLBACK_URL=$EDGE/activationCallback/tp MILLOM_MNO_MILLOM_URL=$EDGE
  export MILLOM_PURCHASE_TIMER_S=0
  export MILLOM_KAFKA_SESSION_TIMEOUT_MS=6000
  # Pending purchases whose callback was lost are asked again (issue 12).
  export MILLOM_PENDING_RECHECK_S=5
  export MILLOM_NOTIFY_QUOTA=1000000
  export MILLOM_NOTIFY_BACKOFF_MS=200 MILLOM_NOTIFY_BACKOFF_MAX_MS=2000
  export MILLOM_NOTIFY_MAX_ATTEMPTS=1000
  # The operator retries a callback that api-edge could not take (killed):
  # 200 ms doubling, 10 POSTs cover minutes.
  export MILLOM_MNO_CALLBACK_DELAY_MS=1000 MILLOM_MNO_CALLBACK_ATTEMPTS=10
}

# The sandbox tenants file with this stack's sandbox ports.
write_tenants() {
  python3 - "$ROOT/tenants.json" "$MNO_PORT" "$SP_PORT" <<'PY'
import json, sys
path, mno, sp = sys.argv[1], sys.argv[2], sys.argv[3]
t = json.load(open("config/tenants.sandbox.json"))
for op in t.get("operators", []):
    op["backendUrl"] = f"http://127.0.0.1:{mno}"
for p in t.get("serviceProviders", []):
    p["notificationUrl"] = f"http://127.0.0.1:{sp}/notifications"
    p["callbackUrl"] = f"http://127.0.0.1:{sp}/callbacks"
json.dump(t, open(path, "w"), indent=2)
PY
}

# 0 when something accepts connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts one program in the background with the exported env.
start_program() { # name
  "$BIN/$1" >>"$ROOT/log/$1.log" 2>&1 &
  PID[$1]=$!
}

# Waits (bounded) until GET /readyz on the port answers 200.
wait_ready() { # port timeout_s
  local deadline=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl -fsS --max-time 1 "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# Starts devbroker, the sandboxes and the five services; waits until ready.
start_stack() {
  rm -rf "$ROOT"
  mkdir -p "$ROOT/data" "$ROOT/log" "$ROOT/requests" "$ROOT/tmp"
  for p in "${PORT[@]}"; do
    if port_busy "$p"; then
      log "port $p is in use (another chaos run, a test, make run?)"
      exit 1
    fi
  done
  export_env
  write_tenants
  start_program devbroker
  # devbroker needs 3 to 6 s to create its topics (up to 1 s each on the
  # mock cluster's poll); 60 s is the bound, not an expectation.
  for _ in $(seq 1 600); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
  [ -s "$MILLOM_BROKER_FILE" ] || { log "devbroker did not start"; exit 1; }
  local p
  for p in mno-sandbox sp-sandbox offer-resolver purchase-executor notifier \
           settlement-reporter api-edge; do
    start_program "$p"
  done
  for p in mno-sandbox sp-sandbox offer-resolver purchase-executor notifier \
           settlement-reporter api-edge; do
    wait_ready "${PORT[$p]}" 60 || { log "$p not ready; see $ROOT/log/$p.log"; exit 1; }
  done
}

# Stops the load loops and every program this script started (services
# first, devbroker last). With "check", records each service's exit status
# in $ROOT/stop.tsv (a clean stop exits 0).
stop_all() { # [check]
  local p
  for p in "${LOAD_PIDS[@]}" "${WAITER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${LOAD_PIDS[@]}" "${WAITER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  LOAD_PIDS=() WAITER_PIDS=()
  for p in api-edge settlement-reporter notifier purchase-executor offer-resolver \
           sp-sandbox mno-sandbox devbroker; do
    [ -n "${PID[$p]:-}" ] || continue
    kill -TERM "${PID[$p]}" 2>/dev/null
    wait "${PID[$p]}" 2>/dev/null
    local status=$?
    [ "${1:-}" = check ] && printf '%s\t%s\n' "$p" "$status" >>"$ROOT/stop.tsv"
    unset "PID[$p]"
  done
}
trap 'stop_all; exit 130' INT TERM

# ---- the load ----

# One request through api-edge, recorded in the loop's file as
#   kind  id  start_ms  end_ms  http_code  curl_exit  retry_after
# (http_code 000 when there was no answer).
request() { # file kind id method url [json body]
  local file=$1 kind=$2 id=$3 method=$4 url=$5 body=${6-}
  local hdr="$ROOT/tmp/$(basename "$file").hdr" t0 t1 code rc retry
  t0=$(now_ms)
  if [ -n "$body" ]; then
    code=$(curl -s -o /dev/null -D "$hdr" -w '%{http_code}' --max-time "$REQUEST_TIMEOUT_S" \
      -X "$method" -H 'Content-Type: application/json' --data "$body" "$url")
  else
    code=$(curl -s -o /dev/null -D "$hdr" -w '%{http_code}' --max-time "$REQUEST_TIMEOUT_S" \
      -X "$method" "$url")
  fi
  rc=$?
  t1=$(now_ms)
  retry=$(tr -d '\r' <"$hdr" 2>/dev/null | awk 'tolower($1) == "retry-after:" {print $2}')
  : >"$hdr"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$id" "$t0" "$t1" "${code:-000}" "$rc" \
    "${retry:--}" >>"$file"
}

# True while the load should go on: before the end time and below the
# loop's request bound.
load_on() { # end_s n max
  [ "$(date +%s)" -lt "$1" ] && [ "$2" -lt "$3" ]
}

# Reads: balance and upsellOffer of a few subscribers.
reads_loop() { # end_s
  local f=$ROOT/requests/reads.tsv n=0 subs=(924542610003 924542610001 924542610006 924542610002)
  while load_on "$1" $n 5000; do
    local s=${subs[$((RANDOM % 4))]}
    if ((n % 2)); then
      request "$f" read "balance-$s" GET "$EDGE/std/$SP/tp/$s/balance"
    else
      request "$f" read "upsell-$s" GET "$EDGE/std/$SP/tp/$s/upsellOffer"
    fi
    n=$((n + 1))
    sleep 0.05
  done
}

# Sync purchases: mostly LOAN plans (no money needed, never refused),
# every fourth a WALLET plan of a subscriber with 300.00 PKR (refused with
# 402 once the money is gone: failed purchases, which must not be debited).
sync_purchase_loop() { # end_s
  local f=$ROOT/requests/sync.tsv n=0
  while load_on "$1" $n 3000; do
    local tid="$RUN_ID-sync-$n"
    if ((n % 4 == 3)); then
      request "$f" purchase "$tid" POST "$EDGE/std/$SP/tp/924542610001/purchasePlan" \
        "{\"transid\":\"$tid\",\"planid\":\"tp-video-hour\"}"
    else
      request "$f" purchase "$tid" POST "$EDGE/std/$SP/tp/924542610002/purchasePlan" \
        "{\"transid\":\"$tid\",\"planid\":\"tp-loan-social-200mb\",\"fundSource\":\"LOAN\"}"
    fi
    n=$((n + 1))
    sleep 0.1
  done
}

# Async purchases of tp-data-weekly-async (250.00): the operator answers
# PENDING and calls back later through api-edge. The two subscribers
# afford about 12; later ones are refused (402).
async_purchase_loop() { # end_s
  local f=$ROOT/requests/async.tsv n=0 subs=(924542610006 924542610003)
  while load_on "$1" $n 1000; do
    local tid="$RUN_ID-async-$n" s=${subs[$((n % 5 == 4))]}
    request "$f" purchase "$tid" POST "$EDGE/std/$SP/tp/$s/purchasePlan" \
      "{\"transid\":\"$tid\",\"planid\":\"tp-data-weekly-async\"}"
    n=$((n + 1))
    sleep 1.5
  done
}

# Consent registrations (a new transactionId each time, same types) and
# operator notifications of subscribers that consented at the start.
notify_loop() { # end_s
  local f=$ROOT/requests/notify.tsv n=0 subs=(924542610003 924542610001 924542610006)
  while load_on "$1" $n 3000; do
    local s=${subs[$((n % 3))]}
    if ((n % 5 == 0)); then
      request "$f" consent "$RUN_ID-consent-$n" POST "$EDGE/std/$SP/$s/register" \
        "{\"transactionId\":\"$RUN_ID-consent-$n\",\"types\":[\"out-of-data\",\"low-data\"]}"
    else
      local tid="$RUN_ID-note-$n"
      request "$f" notify "$tid" POST "$EDGE/notify/tp/v1/single?idValue=$s&idType=MSISDN" \
        "{\"transactionId\":\"$tid\",\"type\":\"out-of-data\"}"
    fi
    n=$((n + 1))
    sleep 0.1
  done
}

# A few bad requests: each must get a 4xx (or a clean 503 while a service
# behind api-edge is down), never a 5xx or a hang.
bad_loop() { # end_s
  local f=$ROOT/requests/bad.tsv n=0
  while load_on "$1" $n 1000; do
    case $((n % 5)) in
      0) request "$f" bad short-transid POST "$EDGE/std/$SP/tp/924542610002/purchasePlan" \
           '{"transid":"x","planid":"tp-loan-social-200mb"}' ;;
      1) request "$f" bad not-json POST "$EDGE/std/$SP/tp/924542610002/purchasePlan" '{"transid":' ;;
      2) request "$f" bad unknown-type POST "$EDGE/notify/tp/v1/single?idValue=924542610003&idType=MSISDN" \
           "{\"transactionId\":\"$RUN_ID-bad-$n\",\"type\":\"no-such-type\"}" ;;
      3) request "$f" bad unknown-operator GET "$EDGE/std/$SP/zz/924542610003/balance" ;;
      4) request "$f" bad bad-key-type GET "$EDGE/std/$SP/tp/924542610003/balance?key_type=NOPE" ;;
    esac
    n=$((n + 1))
    sleep 1
  done
}

# Consents of the notified subscribers, before the chaos starts.
register_consents() {
  local s
  for s in 924542610003 924542610001 924542610006; do
    curl -fsS --max-time 10 -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d "{\"transactionId\":\"$RUN_ID-consent-$s\",\"types\":[\"out-of-data\",\"low-data\"]}" \
      "$EDGE/std/$SP/$s/register" || { log "consent for $s failed"; exit 1; }
  done
}

start_load() { # end_s
  reads_loop "$1" & LOAD_PIDS+=($!)
  sync_purchase_loop "$1" & LOAD_PIDS+=($!)
  async_purchase_loop "$1" & LOAD_PIDS+=($!)
  notify_loop "$1" & LOAD_PIDS+=($!)
  bad_loop "$1" & LOAD_PIDS+=($!)
}

# ---- the kills ----

# Until end_s: every 2 to 5 s, a random victim gets SIGKILL and is started
# again at once (same env, same data dir), without waiting for it: the
# next kill may come while it is still restoring, so two services can be
# down at once. Victims are drawn from a bag refilled with all five when
# empty; one not ready again since its last kill is passed over this time.
# A waiter in the background records each kill in kills.tsv as
#   name  kill_ms  ready_ms   (ready_ms 0: not ready within 60 s).
kill_loop() { # end_s
  local bag=()
  while [ "$(date +%s)" -lt "$1" ]; do
    sleep "$((2 + RANDOM % 4))"
    [ "$(date +%s)" -lt "$1" ] || break
    check_alive
    [ ${#bag[@]} -gt 0 ] || bag=("${VICTIMS[@]}")
    local pick=$((RANDOM % ${#bag[@]}))
    local victim=${bag[$pick]}
    curl -fsS --max-time 1 "http://127.0.0.1:${PORT[$victim]}/readyz" >/dev/null 2>&1 || continue
    bag=("${bag[@]:0:$pick}" "${bag[@]:$((pick + 1))}")
    local t_kill
    t_kill=$(now_ms)
    kill -KILL "${PID[$victim]}" 2>/dev/null
    wait "${PID[$victim]}" 2>/dev/null
    start_program "$victim"
    record_ready "$victim" "$t_kill" &
    WAITER_PIDS+=($!)
    log "killed $victim"
  done
}

# Waits (60 s at most) until a restarted victim is ready; one kills.tsv row.
record_ready() { # name kill_ms
  local t_ready=0
  wait_ready "${PORT[$1]}" 60 && t_ready=$(now_ms)
  printf '%s\t%s\t%s\n' "$1" "$2" "$t_ready" >>"$ROOT/kills.tsv"
  echo "chaos: $1 ready again after $(( t_ready ? t_ready - $2 : -1 )) ms" >&2
}

# Records (and restarts) any program that exited without being killed.
check_alive() {
  local p
  for p in "${!PID[@]}"; do
    if ! kill -0 "${PID[$p]}" 2>/dev/null; then
      wait "${PID[$p]}" 2>/dev/null
      printf '%s\t%s\t%s\n' "$p" "$(now_ms)" "$?" >>"$ROOT/died.tsv"
      log "$p died on its own; see $ROOT/log/$p.log"
      [ "$p" = devbroker ] && continue
      start_program "$p"
      wait_ready "${PORT[$p]}" 60
    fi
  done
}

# ---- the checks ----

# Drains (bounded by CHAOS_DRAIN_S) and checks; the rows of the table
# (check, value, ok|FAIL) go to $ROOT/table.tsv.
check_results() {
  python3 - "$ROOT" "$EDGE" "http://127.0.0.1:$MNO_PORT" "http://127.0.0.1:$SP_PORT" \
    "$DRAIN_S" "$CHAOS_SECONDS" <<'PY'
import glob, json, os, sys, time, urllib.error, urllib.request
from decimal import Decimal

root, edge, mno, sp, drain_s, chaos_s = sys.argv[1:7]
drain_deadline = time.monotonic() + int(drain_s)


def get_json(url):
    """GET url: (status, parsed JSON or None); status 0 when no answer."""
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:
        return 0, None


def read_tsv(pattern, fields):
    rows = []
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == len(fields):
                    rows.append(dict(zip(fields, parts)))
    return rows


requests = read_tsv("requests/*.tsv", ["kind", "id", "t0", "t1", "code", "rc", "retry"])
kills = read_tsv("kills.tsv", ["name", "kill", "ready"])
died = read_tsv("died.tsv", ["name", "at", "status"])
rows = []  # (check, value, ok)


def row(check, value, ok):
    rows.append((check, str(value), ok))


# -- purchases: poll the look-ups until every known purchase is final --
purchases = [r for r in requests if r["kind"] == "purchase"]
answered = {r["id"] for r in purchases if r["code"] in ("200", "202")}
states = {}  # transid -> look-up JSON (None: 404, no record)


def look_up(tid):
    status, j = get_json(f"{edge}/mgmt/tp/purchases/{tid}")
    if status == 200 and j:
        return j
    return None if status == 404 else {"state": f"(look-up answered {status})"}


def final(j):
    return j is not None and j.get("state") in ("completed", "failed")


todo = [r["id"] for r in purchases]
while True:
    for tid in todo:
        states[tid] = look_up(tid)
    todo = [t for t in todo if not final(states[t]) and (t in answered or states[t] is not None)]
    if not todo or time.monotonic() > drain_deadline:
        break
    time.sleep(2)
not_final = [t for t in answered if not final(states.get(t))]
stuck_other = [t for t in states if t not in answered and states[t] is not None and not final(states[t])]
completed = {t: j for t, j in states.items() if j and j.get("state") == "completed"}
failed = {t for t, j in states.items() if j and j.get("state") == "failed"}
row("purchases sent / answered 200 or 202", f"{len(purchases)} / {len(answered)}", True)
row("purchases completed / failed", f"{len(completed)} / {len(failed)}", True)
row("answered 200/202 but not final (lost)", len(not_final), not not_final)
row("other purchases with a record, not final", len(stuck_other), not stuck_other)
for t in sorted(not_final + stuck_other)[:10]:
    print(f"  not final: {t}: {states.get(t)}", file=sys.stderr)

# -- debits at mno-sandbox --
status, acts = get_json(f"{mno}/admin/activations")
net = {}
for a in (acts or {}).get("activations", []):
    net[a["transId"]] = net.get(a["transId"], 0) + a.get("debits", 0) - a.get("refunds", 0)
# The operator sees Millom's transId for the provider's transid (namespaced
# per provider): the look-up says which.
def op_id(t):
    j = states.get(t)
    return (j or {}).get("operatorTransId") or t


known_op_ids = {op_id(t) for t, j in states.items() if j is not None}
double = [t for t in completed if net.get(op_id(t), 0) != 1]
debited_failed = [t for t in failed if net.get(op_id(t), 0) != 0]
orphans = [t for t, n in net.items() if n > 0 and t not in known_op_ids]
row("completed without exactly one debit (double/missing)", len(double), status == 200 and not double)
row("failed but debited", len(debited_failed), not debited_failed)
row("debits without a purchase record", len(orphans), not orphans)
for t in (double + debited_failed + orphans)[:10]:
    print(f"  debit problem: {t}: net debits {net.get(op_id(t), 0)}, purchase {states.get(t)}", file=sys.stderr)

# -- settlement: records = completed purchases, same sum --
gross_completed = sum((Decimal(j.get("price", "0")) for j in completed.values()), Decimal(0))
day_from = time.strftime("%Y-%m-%d", time.gmtime(time.time() - int(chaos_s) - 3600))
day_to = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3600))
count = gross = None
while True:
    status, s = get_json(f"{edge}/mgmt/tp/settlements?from={day_from}&to={day_to}")
    if status == 200 and s:
        count = sum(d.get("count", 0) for d in s.get("days", []))
        gross = sum((Decimal(d.get("gross", "0")) for d in s.get("days", [])), Decimal(0))
    if (count == len(completed) and gross == gross_completed) or time.monotonic() > drain_deadline:
        break
    time.sleep(2)
row("settlement records / completed purchases", f"{count} / {len(completed)}", count == len(completed))
row("settled gross / completed gross (PKR)", f"{gross} / {gross_completed}", gross == gross_completed)

# -- notifications at sp-sandbox --
accepted = {r["id"] for r in requests if r["kind"] == "notify" and r["code"] == "202"}


def received_notifications():
    by_tid, since = {}, 0
    while True:
        status, j = get_json(f"{sp}/admin/received?kind=notification&since={since}&limit=1000")
        recs = (j or {}).get("received", [])
        for rec in recs:
            since = max(since, rec["id"])
            by_tid.setdefault(rec.get("transactionId"), []).append(rec)
        if status != 200 or len(recs) < 1000:
            return by_tid


while True:
    by_tid = received_notifications()
    lost = [t for t in accepted if not any(r["status"] == 200 for r in by_tid.get(t, []))]
    if not lost or time.monotonic() > drain_deadline:
        break
    time.sleep(2)
repeats = sum(max(0, len(by_tid.get(t, [])) - 1) for t in accepted)
mixed_ids = [t for t in accepted if len({r.get("deliveryId") for r in by_tid.get(t, [])}) > 1
             or any(not r.get("deliveryId") for r in by_tid.get(t, []))]
row("notifications answered 202", len(accepted), True)
row("accepted but never delivered (lost)", len(lost), not lost)
row("repeated deliveries (allowed)", repeats, True)
row("repeats with another or no X-Millom-Delivery-Id", len(mixed_ids), not mixed_ids)
for t in (lost + mixed_ids)[:10]:
    print(f"  notification problem: {t}: {by_tid.get(t)}", file=sys.stderr)

# -- answers: clean refusals, no hangs --
down = [(int(k["kill"]) - 1000, (int(k["ready"]) if int(k["ready"]) else 1 << 62) + 1000)
        for k in kills if k["name"] == "api-edge"]


def edge_down(r):
    t0, t1 = int(r["t0"]), int(r["t1"])
    return any(a <= t1 and t0 <= b for a, b in down)


clean503 = [r for r in requests if r["code"] == "503" and r["retry"] != "-"]
unclean = [r for r in requests if r["code"].startswith("5") and r not in clean503]
hung = [r for r in requests if r["rc"] == "28"]
conn = [r for r in requests if r["rc"] in ("7", "52", "56") and r["code"] == "000"]
conn_down = [r for r in conn if edge_down(r)]
conn_up = [r for r in conn if not edge_down(r)]
other_err = [r for r in requests if r["rc"] not in ("0", "7", "52", "56", "28")]
bad_ok = [r for r in requests if r["kind"] == "bad" and r["code"] in ("200", "202")]
row("requests sent", len(requests), True)
row("refused cleanly (503 with Retry-After)", len(clean503), True)
row("5xx without Retry-After or other 5xx", len(unclean), not unclean)
row("hung past the deadline (curl timeout)", len(hung), not hung)
row("connection refused/reset while api-edge was down", len(conn_down), True)
row("connection errors while api-edge was up", len(conn_up), not conn_up)
row("other curl errors", len(other_err), not other_err)
row("bad requests accepted", len(bad_ok), not bad_ok)
for r in (unclean + hung + conn_up + other_err + bad_ok)[:10]:
    print(f"  request problem: {r}", file=sys.stderr)

# -- the programs --
never_ready = [k for k in kills if k["ready"] == "0"]
row("kills (SIGKILL + restart)", len(kills), True)
row("restarts that never became ready", len(never_ready), not never_ready)
row("programs that died on their own", len(died), not died)
for p in died:
    print(f"  program problem: {p}", file=sys.stderr)

# -- the rows, for print_table --
with open(os.path.join(root, "table.tsv"), "w") as f:
    for check, value, ok in rows:
        f.write(f"{check}\t{value}\t{'ok' if ok else 'FAIL'}\n")
PY
}

# Prints the table from table.tsv plus the clean-stop row from stop.tsv;
# exit status 1 when any row is FAIL.
print_table() {
  local bad_stops
  bad_stops=$(awk -F'\t' '$2 != 0' "$ROOT/stop.tsv" | wc -l)
  printf 'programs not stopping cleanly at the end\t%s\t%s\n' "$bad_stops" \
    "$([ "$bad_stops" = 0 ] && echo ok || echo FAIL)" >>"$ROOT/table.tsv"
  [ "$bad_stops" = 0 ] || { log "exit statuses at the stop:"; cat "$ROOT/stop.tsv" >&2; }
  echo
  echo "chaos: $CHAOS_SECONDS s of load and kills (details in $ROOT)"
  echo
  awk -F'\t' '
    function dashes(n,  d) { d = sprintf("%*s", n, ""); gsub(/ /, "-", d); return d }
    { check[NR] = $1; value[NR] = $2; ok[NR] = $3
      if (length($1) > w) w = length($1); if (length($2) > v) v = length($2) }
    END {
      printf "| %-*s | %*s | ok   |\n", w, "check", v, "value"
      printf "| %s | %s | ---- |\n", dashes(w), dashes(v)
      for (i = 1; i <= NR; i++) printf "| %-*s | %*s | %-4s |\n", w, check[i], v, value[i], ok[i]
    }' "$ROOT/table.tsv"
  if grep -q $'\tFAIL$' "$ROOT/table.tsv"; then
    echo; echo "chaos: FAILED: $(awk -F'\t' '$3 == "FAIL" {printf "%s%s", sep, $1; sep = "; "}' "$ROOT/table.tsv")"
    return 1
  fi
  echo; echo "chaos: all checks passed"
}

# ---- main ----

main() {
  command -v python3 >/dev/null || { log "python3 is needed (scripts/deps.sh)"; exit 1; }
  [ -x "$BIN/api-edge" ] || { log "no $BIN/api-edge: make build first"; exit 1; }
  start_stack
  register_consents
  local end=$(($(date +%s) + CHAOS_SECONDS))
  log "stack up on $EDGE_PORT..$SP_PORT; load and kills for $CHAOS_SECONDS s (logs in $ROOT/log)"
  start_load "$end"
  kill_loop "$end"
  local p
  for p in "${LOAD_PIDS[@]}" "${WAITER_PIDS[@]}"; do wait "$p"; done
  LOAD_PIDS=() WAITER_PIDS=()
  check_alive
  log "load and kills over; draining (at most $DRAIN_S s) and checking"
  # The python part exits non-zero only when it could not finish (a bug, a
  # stack that stopped answering): that fails the run too.
  check_results || printf 'the checks ran to the end\tno\tFAIL\n' >>"$ROOT/table.tsv"
  check_alive
  stop_all check
  print_table
}

main
