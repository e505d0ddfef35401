#!/usr/bin/env bash
# Measures Millom's read path and its pipelines, each next to a baseline
# measured in the same run, and prints the ratios. Run through `make bench`.
#
#   read path     wrk against api-edge vs nginx proxying to the same operator
#                 backend (mno-sandbox): /balance, upsellOffer, closed loop
#                 (the most each side serves); and /balance at a fixed
#                 offered rate with hey (BENCH_RATE req/s), the latency a
#                 user feels when the service is not saturated;
#   purchasePlan  wrk POSTing purchases (distinct transids, a sync plan on
#                 loan) for BENCH_PURCHASE_SUBSCRIBERS subscribers in turn vs
#                 nginx -> mno-sandbox /activate for the same subscribers;
#   settlement    scripts/bench_settlement.sh (settlement-reporter vs kcat
#                 reading the same events), on a devbroker of its own;
#   notifications scripts/bench_notify.sh (Kafka -> delivered webhooks vs wrk
#                 POSTing the same webhook body to sp-sandbox), on a stack of
#                 its own;
#   kafka_floor   scripts/bench_kafka_floor.sh: the Kafka request/reply hop
#                 alone (rpc-echo: 50 callers through shared/patterns/rpc, a
#                 responder that answers at once), on a devbroker of its own
#                 after the stack stopped: the read path's floor, set against
#                 nginx /balance (issue 14's 0.40).
# For each pipeline also the CPU seconds every program used per 1,000
# messages (utime + stime from /proc/<pid>/stat).
#
# Starts its own stack (devbroker, mno-sandbox, the five services) and an
# nginx on ports of its own, so it never disturbs a `make run` on the default
# ports, and stops it before the pipeline benches start theirs. Prints one
# table; writes the same results to var/bench/latest.json (one `ratios`
# entry per comparison, labelled balanceMiss, upsellOffer, balanceHit,
# purchasePlan, notifications, settlement, kafkaFloor). The raw wrk outputs and the logs
# stay in a temp dir, which is kept when anything went wrong.
#
# Settings (environment):
#   BUILD               build tree with bin/ (default build/release)
#   BENCH_RUNS          runs per scenario; the table shows medians (3)
#   BENCH_SECONDS       duration of one wrk run (15)
#   BENCH_CONNECTIONS   wrk connections (50)
#   BENCH_THREADS       wrk threads (2)
#   BENCH_NGINX_WORKERS nginx worker_processes for the baseline (auto)
#   BENCH_PURCHASE_SUBSCRIBERS  subscribers the purchases are spread over (200)
#   BENCH_DRAIN_S       at most this long after a purchase run for the
#                       purchases still in flight to reach the operator (60)
#   BENCH_PIPELINES=0   skip the settlement and notification benches
#   (bench_settlement.sh and bench_notify.sh read their own BENCH_* settings)
#   BENCH_KEEP_DIR=1    keep the temp dir even when everything went well
#   BENCH_FRESH_STACK=0 one stack for every scenario and run (default: a
#                       fresh one, same data dir, for each Millom scenario;
#                       see fresh_stack)
#   BENCH_RATE          requests per second offered in the fixed-rate runs (2000)
#   BENCH_RATE_SECONDS  duration of one fixed-rate run (15)
#   BENCH_SCENARIOS     only these scenarios, comma-separated (balance_miss,
#                       balance_hit, upsell, nginx_balance, nginx_offers,
#                       balance_miss_rate, nginx_balance_rate, purchase,
#                       nginx_activate, kafka_floor); default all. A ratio
#                       whose two sides did not both run is left out.
#   (kafka_floor: BENCH_FLOOR_SECONDS (7) per run, BENCH_RUNS runs,
#   BENCH_CONNECTIONS callers; scripts/bench_kafka_floor.sh)
#   BENCH_PERF=1        record every Millom scenario with `perf record -g`
#                       (all Millom programs) and write one report per
#                       program to var/bench/profile/<scenario>/ (what
#                       `make profile` does)
# Any other MILLOM_* variable set by the caller (e.g. MILLOM_EDGE_THREADS)
# reaches the services unchanged and is recorded in the results, so tuning
# experiments need no script change.
#
# Exit status: 0 when all scenarios ran without errors (targets missed are
# reported, not failed), 1 when the stack could not start or a program died,
# 3 when a scenario got non-2xx answers or socket errors, or a pipeline
# bench failed (lost or duplicated messages, or could not run): every
# scenario still runs, and the table ends with one FAILED line per failure.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
RUNS=${BENCH_RUNS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-15}
RATE=${BENCH_RATE:-2000}
RATE_SECONDS=${BENCH_RATE_SECONDS:-15}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-2}
# nginx gets one worker per core ("auto"), because Millom may use every core
# too: api-edge has 2 HTTP threads, offer-resolver 16 workers, and each
# program is its own process. A single worker would cap the baseline at one
# core and flatter Millom's ratios. Both sides call the same mno-sandbox.
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}
PURCHASE_SUBSCRIBERS=${BENCH_PURCHASE_SUBSCRIBERS:-200}
RESULTS_JSON=var/bench/latest.json
SETTLEMENT_JSON=var/bench/settlement.json
PROFILE_DIR=var/bench/profile
# A profiled run measures perf's overhead too: its table goes next to the
# profiles, never over the bench's results.
[ "${BENCH_PERF:-0}" = 1 ] && RESULTS_JSON=$PROFILE_DIR/latest.json
SCENARIOS=${BENCH_SCENARIOS:-all}
NOTIFY_JSON=var/bench/notify.json
FLOOR_JSON=var/bench/kafka_floor.json

# Ports away from the `make run` defaults (8080, 9090, 9101-9104).
EDGE_PORT=28080
NGINX_PORT=28081
MNO_PORT=29090
RESOLVER_PORT=29101
EXECUTOR_PORT=29102
NOTIFIER_PORT=29103
SETTLEMENT_PORT=29104

MSISDN=924542610003
SP=testserviceprovider
EDGE_URL=http://127.0.0.1:$EDGE_PORT/std/$SP/tp/$MSISDN
# Purchases: BENCH_PURCHASE_SUBSCRIBERS subscribers 924542620000, ...0001,
# ... created at mno-sandbox before the runs, each buying on loan (no wallet
# runs dry). bench/purchase.lua builds each request's path.
PURCHASE_PLAN=tp-loan-social-200mb
PURCHASE_MSISDN_BASE=924542620000
BACKEND_QUERY="customerIdType=MSISDN&channelId=App&serviceProviderId=$SP&lang=en"
NGINX_URL=http://127.0.0.1:$NGINX_PORT

# The services started, in start order; stop_everything walks it backwards.
PROGRAMS=(devbroker mno-sandbox offer-resolver purchase-executor notifier
          settlement-reporter api-edge)
declare -A PID=() CPU_BEFORE=() CPU_AFTER=()
NGINX_PID=
NGINX_PIDS=   # master and workers, for their CPU time
WORK=
FAILED=1   # cleared only when the whole bench went through

log() { echo "bench [+${SECONDS}s]: $*" >&2; }
die() { log "$*"; exit 1; }

check_prerequisites() {
  local p
  for p in "${PROGRAMS[@]}"; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing; run 'make build' first"
  done
  if selected kafka_floor; then
    [ -x "$BUILD/bench/rpc-echo" ] || die "$BUILD/bench/rpc-echo is missing; run 'make build' first"
  fi
  local tools=(wrk hey nginx curl python3)
  [ "${BENCH_PERF:-0}" = 1 ] && tools+=(perf)
  for p in "${tools[@]}"; do
    command -v "$p" >/dev/null || die "$p is not installed (make deps)"
  done
  for p in "$RUNS" "$SECONDS_PER_RUN" "$CONNECTIONS" "$THREADS" "$PURCHASE_SUBSCRIBERS" \
           "$RATE" "$RATE_SECONDS"; do
    [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad setting '$p': want a positive integer"
  done
  [ $((RATE % CONNECTIONS)) = 0 ] ||
    die "bad BENCH_RATE '$RATE': want a multiple of BENCH_CONNECTIONS ($CONNECTIONS), the hey workers"
  [ "$PURCHASE_SUBSCRIBERS" -le 10000 ] ||
    die "bad BENCH_PURCHASE_SUBSCRIBERS '$PURCHASE_SUBSCRIBERS': at most 10000"
  [[ $NGINX_WORKERS =~ ^([1-9][0-9]*|auto)$ ]] ||
    die "bad BENCH_NGINX_WORKERS '$NGINX_WORKERS': want a positive integer or auto"
  # A port already taken would make us measure somebody else's process.
  for p in $EDGE_PORT $NGINX_PORT $MNO_PORT $RESOLVER_PORT $EXECUTOR_PORT \
           $NOTIFIER_PORT $SETTLEMENT_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is already in use; is another bench running?"
    fi
  done
}

make_work_dir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/millom-bench.XXXXXX")
  mkdir -p "$WORK/data" "$WORK/log" "$WORK/wrk" "$WORK/nginx-tmp"
  # Workers of an nginx started as root run as nobody and must reach their
  # (never used) temp paths without an error.
  chmod 755 "$WORK"
  chmod 777 "$WORK/nginx-tmp"
  : >"$WORK/manifest.tsv"
  : >"$WORK/cpu.tsv"
  : >"$WORK/messages.tsv"
}

# The sandbox tenants file points tp at mno-sandbox on 9090 and the
# providers' webhooks at sp-sandbox on 9091; the bench's mno-sandbox listens
# elsewhere, so every operator gets a copy with our port, and the webhooks
# go to the bench's nginx.
write_tenants_file() {
  python3 - config/tenants.sandbox.json "$WORK/tenants.json" "http://127.0.0.1:$MNO_PORT" \
    "$NGINX_URL/provider" <<'PY'
import json, sys
src, dst, url, provider = sys.argv[1:]
with open(src) as f:
    t = json.load(f)
for op in t["operators"]:
    op["backendUrl"] = url
# Webhooks go to nginx, which answers 200 at once (bench/nginx.conf.template).
for sp in t["serviceProviders"]:
    for field in ("notificationUrl", "callbackUrl"):
        if field in sp:
            sp[field] = provider + "/" + field
with open(dst, "w") as f:
    json.dump(t, f, indent=2)
PY
}

export_service_environment() {
  # The bench always runs its own devbroker, never a cluster named by the
  # caller's environment.
  unset KAFKA_BOOTSTRAP
  export MILLOM_DATA_DIR=$WORK/data
  export MILLOM_BROKER_FILE=$WORK/broker.bootstrap
  export MILLOM_TENANTS=$WORK/tenants.json
  export MILLOM_LOG_LEVEL=warn
  export MILLOM_EDGE_PORT=$EDGE_PORT
  export MILLOM_MNO_PORT=$MNO_PORT
  export MILLOM_RESOLVER_PORT=$RESOLVER_PORT
  export MILLOM_EXECUTOR_PORT=$EXECUTOR_PORT
  export MILLOM_NOTIFIER_PORT=$NOTIFIER_PORT
  export MILLOM_SETTLEMENT_PORT=$SETTLEMENT_PORT
  export MILLOM_PURCHASE_TIMER_S=0
}

# Programs run in a session of their own (setsid), so a Ctrl-C in the
# terminal reaches only this script and wrk; stop_everything then stops them
# in order instead of all of them racing the broker. setsid execs in place
# (we are no process group leader), so $! is the program's own pid.
start_program() { # name
  setsid "$BIN/$1" >>"$WORK/log/$1.log" 2>&1 &
  PID[$1]=$!
}

wait_ready() { # port name
  local _
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0
    kill -0 "${PID[$2]}" 2>/dev/null || die "$2 exited during start-up; see $WORK/log/$2.log"
    sleep 0.1
  done
  die "$2 did not become ready on port $1 in 15 s; see $WORK/log/$2.log"
}

start_stack() {
  local _
  rm -f "$MILLOM_BROKER_FILE" # devbroker writes it anew once it listens
  start_program devbroker
  # devbroker: up to 1 s per topic on the mock cluster's poll (scripts/run.sh)
  for _ in $(seq 1 600); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
  [ -s "$MILLOM_BROKER_FILE" ] || die "devbroker did not start; see $WORK/log/devbroker.log"
  local p
  for p in "${PROGRAMS[@]:1}"; do start_program "$p"; done
  wait_ready $MNO_PORT mno-sandbox
  wait_ready $RESOLVER_PORT offer-resolver
  wait_ready $EXECUTOR_PORT purchase-executor
  wait_ready $NOTIFIER_PORT notifier
  wait_ready $SETTLEMENT_PORT settlement-reporter
  wait_ready $EDGE_PORT api-edge
}

start_nginx() {
  sed -e "s|@PREFIX@|$WORK|g" -e "s|@MNO_PORT@|$MNO_PORT|g" \
      -e "s|@NGINX_PORT@|$NGINX_PORT|g" -e "s|@NGINX_WORKERS@|$NGINX_WORKERS|g" \
      bench/nginx.conf.template >"$WORK/nginx.conf"
  # -e: nginx opens its error log before reading the config; keep that one
  # in the temp dir too instead of /var/log/nginx.
  setsid nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log" -g 'daemon off;' \
    >>"$WORK/log/nginx.log" 2>&1 &
  NGINX_PID=$!
  local _
  for _ in $(seq 1 50); do
    if curl -fsS -o /dev/null "$NGINX_URL/balance/$MSISDN?$BACKEND_QUERY" 2>/dev/null; then
      NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ' || true)"
      return 0
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited; see $WORK/nginx-error.log"
    sleep 0.1
  done
  die "nginx did not answer on port $NGINX_PORT; see $WORK/nginx-error.log"
}

# TERM, then up to 10 s for a clean exit before KILL: a program that hangs
# on shutdown is reported instead of hanging the bench.
stop_pid() { # pid name
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "$2 (pid $pid) ignored SIGTERM for 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  FAILED=1
}

stop_stack() {
  [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID" nginx
  NGINX_PID=
  # Services first, newest first, so they can commit offsets and flush while
  # the broker is still there; devbroker last.
  local i name
  for ((i = ${#PROGRAMS[@]} - 1; i >= 0; i--)); do
    name=${PROGRAMS[$i]}
    [ -n "${PID[$name]:-}" ] && stop_pid "${PID[$name]}" "$name"
    PID[$name]=
  done
  return 0
}

stop_everything() {
  trap - EXIT INT TERM
  stop_stack
  if [ -z "$WORK" ]; then
    :
  elif [ "$FAILED" = 0 ] && [ "${BENCH_KEEP_DIR:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "kept the logs and raw wrk outputs in $WORK"
  fi
}

# Every program must still be alive after a run: a crash under load would
# otherwise show up only as mysterious socket errors.
check_alive() {
  local name dead=0
  for name in "${PROGRAMS[@]}"; do
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      log "$name (pid ${PID[$name]}) died; last lines of $WORK/log/$name.log:"
      tail -n 20 "$WORK/log/$name.log" >&2 || true
      dead=1
    fi
  done
  kill -0 "$NGINX_PID" 2>/dev/null || { log "nginx died; see $WORK/nginx-error.log"; dead=1; }
  [ "$dead" = 0 ] || die "a program died during the bench"
}

# Fails loudly when a scenario's URL does not answer 200 before the load
# starts; for the cache-hit scenario this request is also the warm-up that
# fills the cache.
expect_200() { # url [curl args...]
  local url=$1 code
  shift
  code=$(curl -sS -o "$WORK/last-answer.json" -w '%{http_code}' "$@" "$url") || code=000
  [ "$code" = 200 ] || die "$url answered $code before the load: $(head -c 300 "$WORK/last-answer.json" 2>/dev/null)"
}

# CPU time (utime + stime, in clock ticks) the given processes used so far,
# added up, into CPU_TICKS (no fork: on a loaded machine the bench's own
# forks took seconds). Field 2 (comm) may hold spaces, so the fields are
# counted after its closing parenthesis: utime and stime are the 12th and
# 13th there.
cpu_ticks() { # pid...
  local p stat fields
  CPU_TICKS=0
  for p in "$@"; do
    { read -r stat <"/proc/$p/stat"; } 2>/dev/null || continue
    read -r -a fields <<<"${stat##*) }"
    CPU_TICKS=$((CPU_TICKS + fields[11] + fields[12]))
  done
}

# Ticks of every program and of nginx (master and workers, the baseline's)
# into the associative array named $1.
# shellcheck disable=SC2034,SC2154  # snap is a nameref to an associative array
cpu_snapshot() { # array name
  local -n snap=$1
  local name
  for name in "${PROGRAMS[@]}"; do
    cpu_ticks "${PID[$name]}"
    snap["$name"]=$CPU_TICKS
  done
  # shellcheck disable=SC2086  # a list of pids
  cpu_ticks $NGINX_PIDS
  snap["nginx"]=$CPU_TICKS
}

# The whole box's CPU ticks from /proc/stat (all cores, USER_HZ): busy
# (user, nice, system, irq, softirq), idle (idle, iowait) and steal (the
# hypervisor ran someone else), into BOX_BUSY, BOX_IDLE and BOX_STEAL.
box_ticks() {
  local user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
  BOX_BUSY=$((user + nice + system + irq + softirq))
  BOX_IDLE=$((idle + iowait))
  BOX_STEAL=$steal
}

# Appends id, run, program, ticks used between the snapshots CPU_BEFORE and
# CPU_AFTER, and the seconds between them, to cpu.tsv.
cpu_record() { # id run seconds
  local name
  for name in "${!CPU_AFTER[@]}"; do
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$name" \
      "$((CPU_AFTER[$name] - CPU_BEFORE[$name]))" "$3"
  done >>"$WORK/cpu.tsv"
}

# mno-sandbox's count of /activate calls so far (every purchase makes one).
activate_count() {
  local stats
  stats=$(curl -fsS "http://127.0.0.1:$MNO_PORT/admin/stats") || return 1
  [[ $stats =~ \"activate\":([0-9]+) ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

# Waits (at most BENCH_DRAIN_S, 60 s) until no /activate arrived for 1 s:
# purchases whose answer wrk stopped waiting for (timeouts, the end of the
# run) are still executed, and would otherwise run into the next scenario.
drain_purchases() {
  local prev=-1 cur i
  for ((i = 0; i < ${BENCH_DRAIN_S:-60}; i++)); do
    cur=$(activate_count) || return 0
    if [ "$cur" = "$prev" ]; then return 0; fi
    prev=$cur
    sleep 1
  done
  log "purchases still arriving at mno-sandbox after ${BENCH_DRAIN_S:-60} s; going on"
}

# Whether scenario $1 is selected by BENCH_SCENARIOS.
selected() { [ "$SCENARIOS" = all ] || [[ ,$SCENARIOS, == *,$1,* ]]; }

# perf record -g of each Millom program (not devbroker, mno-sandbox or
# nginx), one perf per program, while scenario $1 runs, when BENCH_PERF=1.
PERF_PIDS=()
perf_programs() {
  local name
  for name in "${PROGRAMS[@]}"; do
    case $name in devbroker | mno-sandbox) ;; *) echo "$name" ;; esac
  done
}

perf_start() { # id
  [ "${BENCH_PERF:-0}" = 1 ] && [[ $1 != nginx_* ]] || return 0
  local name
  mkdir -p "$WORK/perf"
  for name in $(perf_programs); do
    perf record -q -F 499 -g -o "$WORK/perf/$1.$name.data" -p "${PID[$name]}" \
      >>"$WORK/log/perf.log" 2>&1 &
    PERF_PIDS+=($!)
  done
  sleep 0.5 # perf attaches to every thread before the load starts
}

perf_stop() { # id
  [ ${#PERF_PIDS[@]} -gt 0 ] || return 0
  kill -INT "${PERF_PIDS[@]}" 2>/dev/null || true
  wait "${PERF_PIDS[@]}" 2>/dev/null || true
  PERF_PIDS=()
  local dir=$PROFILE_DIR/$1 name data
  rm -rf "$dir"
  mkdir -p "$dir"
  for name in $(perf_programs); do
    data=$WORK/perf/$1.$name.data
    # Per thread (named: lane-3, outbox-relay, kafka-consumer, ...), then
    # the hottest functions by own time with the call chains into them.
    {
      echo "# $name during $1: share of this program's samples per thread"
      perf report -i "$data" --stdio --no-children --sort comm -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -20
      echo
      echo
      # Time in the kernel shows up on a paravirtualised VM mostly as
      # pvm_irq_enable; the system call (or page fault) each sample came
      # through says what it was.
      echo "# $name during $1: samples per thread and system call (or page fault)"
      perf script -i "$data" 2>/dev/null | awk '
        /cpu-clock/ { inside = 1; comm = $1; how = ""; next }
        inside && NF == 0 { inside = 0; print comm, (how == "" ? "(user space)" : how); next }
        inside && how == "" && $2 ~ /^__(x64|do)_sys_/ { how = $2; sub(/\+.*/, "", how) }
        inside && how == "" && $2 ~ /^exc_page_fault/ { how = "page fault" }' |
        sort | uniq -c | sort -rn | head -30
      echo
      perf report -i "$data" --stdio --no-children --sort dso,symbol --percent-limit 1 \
        -g caller,0.5,callee,function,percent 2>/dev/null
    } >"$dir/$name.txt"
    mv "$data" "$dir/$name.perf.data"
  done
  log "profile of $1: $dir/<program>.txt (perf report -i $dir/<program>.perf.data)"
}

run_wrk() { # id label run url [header] [lua script] [purchases: 1]
  local id=$1 label=$2 run=$3 url=$4 header=${5:-} script=${6:-} purchases=${7:-0}
  selected "$id" || return 0
  local out=$WORK/wrk/$id.$run.txt
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency)
  [ -n "$header" ] && args+=(-H "$header")
  [ -n "$script" ] && args+=(-s "$script")
  log "run $run/$RUNS: $label"
  local activations=0
  [ "$purchases" = 0 ] || activations=$(activate_count)
  perf_start "$id"
  local t0=$EPOCHREALTIME
  cpu_snapshot CPU_BEFORE
  # How much of the box the closed loop leaves idle: a scenario bound by
  # CPU leaves next to nothing; one that waits (on timers, hand-offs)
  # leaves cores idle that more work in flight could use.
  box_ticks
  local busy0=$BOX_BUSY idle0=$BOX_IDLE steal0=$BOX_STEAL
  if ! wrk "${args[@]}" "$url" >"$out" 2>&1; then
    log "wrk failed for $label; output: $(cat "$out")"
  fi
  box_ticks
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$run" "$((BOX_BUSY - busy0))" "$((BOX_IDLE - idle0))" \
    "$((BOX_STEAL - steal0))" >>"$WORK/box.tsv"
  perf_stop "$id"
  # Purchases still running when wrk stopped, and the work a purchase
  # leaves for after its answer (settlement, outbox, changelog), belong to
  # this scenario's cost. Its messages are the purchases the operator saw.
  if [ "$purchases" != 0 ]; then
    drain_purchases
    printf '%s\t%s\t%s\n' "$id" "$run" "$(($(activate_count) - activations))" >>"$WORK/messages.tsv"
  fi
  cpu_snapshot CPU_AFTER
  # EPOCHREALTIME is seconds.microseconds (six digits).
  local ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
  cpu_record "$id" "$run" "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  printf '%s\t%s\t%s\t%s\n' "$id" "$label" "$url" "$out" >>"$WORK/manifest.tsv"
  check_alive
}

# A fixed offered rate: hey sends RATE req/s for RATE_SECONDS from
# CONNECTIONS workers (each at most RATE/CONNECTIONS req/s) and writes one
# CSV row per answered request (latency, status); report.py takes the
# percentiles, the rate reached, and the requests that got no answer
# (sent minus rows).
run_hey() { # id label run url [header]
  local id=$1 label=$2 run=$3 url=$4 header=${5:-}
  selected "$id" || return 0
  local out=$WORK/wrk/$id.$run.hey.csv
  local total=$((RATE * RATE_SECONDS))
  local args=(-n "$total" -c "$CONNECTIONS" -q $((RATE / CONNECTIONS)) -o csv)
  [ -n "$header" ] && args+=(-H "$header")
  log "run $run/$RUNS: $label ($RATE req/s offered for ${RATE_SECONDS}s)"
  perf_start "$id"
  local t0=$EPOCHREALTIME
  if ! hey "${args[@]}" "$url" >"$out" 2>"$out.err"; then
    log "hey failed for $label; output: $(cat "$out.err")"
  fi
  local ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
  perf_stop "$id"
  # The requests sent and the wall time go in a comment line report.py reads.
  printf '# sent=%s wall_ms=%s offered_rps=%s\n' "$total" "$ms" "$RATE" >>"$out"
  printf '%s\t%s\t%s\t%s\n' "$id" "$label" "$url" "$out" >>"$WORK/manifest.tsv"
  check_alive
}

# Creates the purchase subscribers at mno-sandbox (LOAN-capable: state
# NEED_LOANS, the loan offer in their offers; a loan never runs out) and asks
# upsellOffer, through api-edge as an SP does, for each one's offerContext;
# writes them as the Lua table bench/purchase.lua reads.
setup_purchase_subscribers() {
  log "creating $PURCHASE_SUBSCRIBERS purchase subscribers at mno-sandbox"
  python3 - "$PURCHASE_SUBSCRIBERS" "$PURCHASE_MSISDN_BASE" "$PURCHASE_PLAN" \
    "http://127.0.0.1:$MNO_PORT" "http://127.0.0.1:$EDGE_PORT/std/$SP/tp" \
    "$WORK/purchase-subscribers.lua" <<'PY' || die "could not set up the purchase subscribers"
import json, re, sys, urllib.error, urllib.request
n, base, plan, mno, edge, out = sys.argv[1:]
def call(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=body and json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]
rows = []
for i in range(int(n)):
    m = str(int(base) + i)
    st, ans = call("POST", mno + "/admin/subscribers",
                   {"msisdn": m, "subscriberState": "NEED_LOANS", "balanceMinor": 0,
                    "offers": [plan]})
    if st not in (200, 201):
        sys.exit("bench: mno-sandbox /admin/subscribers for %s answered %s: %s" % (m, st, ans))
    st, ans = call("GET", "%s/%s/upsellOffer" % (edge, m))
    if st != 200:
        sys.exit("bench: upsellOffer for %s answered %s: %s" % (m, st, ans))
    ctx = next((o.get("offerContext") for o in ans.get("offers", []) if o.get("planId") == plan), None)
    if not ctx or not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", ctx):
        sys.exit("bench: upsellOffer for %s gave no usable offerContext for %s" % (m, plan))
    rows.append('{m="%s",c="%s"}' % (m, ctx))
with open(out, "w") as f:
    f.write("return {\n" + ",\n".join(rows) + "\n}\n")
PY
}

# A fresh stack (same data dir) for each Millom scenario: a fetch from
# librdkafka's mock cluster walks the partition's message sets from the
# oldest one (rdkafka_mock.c, "FIXME: Maintain an index"), so devbroker's
# cost per message grows with what it holds, up to 5 MB per partition, and
# every read and purchase reply goes to one partition of millom.replies.
# Through one stack the third run's purchases were 23% slower than the
# first's (906, 792, 695/s), with 70% of devbroker's CPU in that walk; a
# Kafka broker finds an offset through its index. The baselines do not use
# Kafka and run on whatever stack is up. BENCH_FRESH_STACK=0 keeps one
# stack for everything.
STACK_USED=0
fresh_stack() { # scenario id
  selected "$1" || return 0
  if [ "$STACK_USED" = 1 ] && [ "${BENCH_FRESH_STACK:-1}" != 0 ]; then
    record_rss
    stop_stack
    start_stack
    start_nginx
  fi
  STACK_USED=1
}

run_scenarios() { # run
  local run=$1
  local balance=$EDGE_URL/balance
  local upsell=$EDGE_URL/upsellOffer
  local nginx_balance="$NGINX_URL/balance/$MSISDN?$BACKEND_QUERY"
  local nginx_offers="$NGINX_URL/offers/$MSISDN?$BACKEND_QUERY"

  # Each ratio's two sides run back to back: this box's speed drifts over
  # minutes (nginx's /balance made 12,972 to 21,755 a second in quick runs
  # minutes apart), and a baseline taken after three more scenarios and
  # their fresh stacks compared unlike moments. nginx /balance sits
  # between the miss and the hit, which both compare with it.
  fresh_stack balance_miss
  expect_200 "$balance" -H 'Cache-Control: no-cache'
  run_wrk balance_miss "/balance cache miss" "$run" "$balance" 'Cache-Control: no-cache'
  expect_200 "$nginx_balance"
  run_wrk nginx_balance "nginx -> mno /balance" "$run" "$nginx_balance"
  fresh_stack balance_hit
  expect_200 "$balance"
  run_wrk balance_hit "/balance cache hit" "$run" "$balance"
  fresh_stack upsell
  expect_200 "$upsell"
  # One subscriber and one set of filters, so after the first call the
  # operator's /offers answer comes from offer-resolver's cache (as for an
  # app that starts again within MILLOM_CACHE_TTL_S); every answer still
  # mints fresh offerContexts and publishes an OfferImpression.
  run_wrk upsell "upsellOffer (offers cached)" "$run" "$upsell"
  expect_200 "$nginx_offers"
  run_wrk nginx_offers "nginx -> mno /offers" "$run" "$nginx_offers"
  fresh_stack balance_miss_rate
  expect_200 "$balance" -H 'Cache-Control: no-cache'
  run_hey balance_miss_rate "/balance cache miss, fixed rate" "$run" "$balance" 'Cache-Control: no-cache'
  expect_200 "$nginx_balance"
  run_hey nginx_balance_rate "nginx -> mno /balance, fixed rate" "$run" "$nginx_balance"
  # Purchases: distinct transids, a sync plan bought on loan (no funds run
  # out), the purchase timer off, the subscribers in turn. The baseline
  # posts the operator's own /activate through nginx for the same
  # subscribers with distinct transIds.
  export BENCH_PURCHASE_TABLE=$WORK/purchase-subscribers.lua BENCH_THREADS=$THREADS
  fresh_stack purchase
  BENCH_BODY=millom run_wrk purchase \
    "purchasePlan ($PURCHASE_SUBSCRIBERS subscribers, sync, distinct transids)" "$run" \
    "http://127.0.0.1:$EDGE_PORT" "" "$PWD/bench/purchase.lua" 1
  BENCH_BODY=backend run_wrk nginx_activate "nginx -> mno /activate (same subscribers)" "$run" \
    "$NGINX_URL" "" "$PWD/bench/purchase.lua" 1
}

# VmRSS and VmHWM (the peak) of every program after the load, in kB (one
# line per program: name, pid, VmRSS, VmHWM, whether Millom's 20 MB VmHWM
# limit applies: to the five Millom services; devbroker stands in for Kafka
# and mno-sandbox for the operator, so like nginx (master and workers added
# up) they are listed for reference), then VmRSS's two parts now: RssAnon
# (the program's own memory) and RssFile (pages of mapped files, mostly
# the shared libraries' code, which every process using them shares).
status_kb() { # field pid...
  local field=$1 p
  shift
  for p in "$@"; do awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true; done |
    awk '{s += $1; n++} END {print n ? s : "-"}'
}

# Called before each stop of a stack (fresh_stack) and at the end: rss.tsv
# keeps, per program, the stack with the highest VmHWM.
record_rss() {
  local name pids kind
  for name in "${PROGRAMS[@]}"; do
    case $name in devbroker | mno-sandbox) kind=reference ;; *) kind=millom ;; esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${PID[$name]}" \
      "$(status_kb VmRSS "${PID[$name]}")" "$(status_kb VmHWM "${PID[$name]}")" "$kind" \
      "$(status_kb RssAnon "${PID[$name]}")" "$(status_kb RssFile "${PID[$name]}")"
  done >"$WORK/rss.run.tsv"
  pids=("$NGINX_PID" $(pgrep -P "$NGINX_PID" || true))
  printf '%s\t%s\t%s\t%s\treference\t%s\t%s\n' "nginx (master+workers)" "$NGINX_PID" \
    "$(status_kb VmRSS "${pids[@]}")" "$(status_kb VmHWM "${pids[@]}")" \
    "$(status_kb RssAnon "${pids[@]}")" "$(status_kb RssFile "${pids[@]}")" >>"$WORK/rss.run.tsv"
  touch "$WORK/rss.tsv"
  # Rows of rss.tsv (earlier runs) first, then this run's; the last row per
  # name with the highest VmHWM wins; printed in this run's order.
  awk -F'\t' -v earlier="$WORK/rss.tsv" 'FILENAME == earlier { best[$1] = $0; hwm[$1] = $4 + 0; next }
       { if (!($1 in best) || $4 + 0 >= hwm[$1]) best[$1] = $0; print best[$1] }' \
    "$WORK/rss.tsv" "$WORK/rss.run.tsv" >"$WORK/rss.merged.tsv"
  mv "$WORK/rss.merged.tsv" "$WORK/rss.tsv"
}

write_settings() {
  python3 - "$WORK/settings.json" <<PY
import json, os, subprocess, sys
def git(*a):
    try:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
inherited = {k: v for k, v in os.environ.items()
             if k.startswith("MILLOM_") and k not in (
                 "MILLOM_DATA_DIR", "MILLOM_BROKER_FILE", "MILLOM_TENANTS", "MILLOM_LOG_LEVEL",
                 "MILLOM_EDGE_PORT", "MILLOM_MNO_PORT", "MILLOM_RESOLVER_PORT",
                 "MILLOM_EXECUTOR_PORT", "MILLOM_NOTIFIER_PORT", "MILLOM_SETTLEMENT_PORT")}
json.dump({
    "runs": $RUNS, "seconds": $SECONDS_PER_RUN, "connections": $CONNECTIONS,
    "threads": $THREADS, "nginx_workers": "$NGINX_WORKERS", "build": "$BUILD",
    "purchase_subscribers": $PURCHASE_SUBSCRIBERS, "rate": $RATE, "rate_seconds": $RATE_SECONDS, "clk_tck": $(getconf CLK_TCK),
    "cpus": os.cpu_count(), "git_commit": git("rev-parse", "HEAD"),
    "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "millom_env_overrides": inherited, "work_dir": "$WORK",
}, open(sys.argv[1], "w"), indent=2)
PY
}

main() {
  check_prerequisites
  trap stop_everything EXIT
  trap 'exit 130' INT TERM
  make_work_dir
  write_tenants_file
  export_service_environment
  log "temp dir $WORK; $RUNS run(s) x ${SECONDS_PER_RUN}s per scenario, wrk -t$THREADS -c$CONNECTIONS"
  env | grep '^MILLOM_' | grep -vE '^MILLOM_(DATA_DIR|BROKER_FILE|TENANTS|LOG_LEVEL|[A-Z]+_PORT)=' |
    sed 's/^/bench: setting from the environment: /' >&2 || true
  start_stack
  start_nginx
  if selected purchase || selected nginx_activate; then setup_purchase_subscribers; fi
  # Runs are interleaved (all scenarios, then again) so that a slow spell on
  # a shared machine spreads over every scenario instead of skewing one.
  # Each Millom scenario gets a fresh stack (fresh_stack).
  local run
  for ((run = 1; run <= RUNS; run++)); do run_scenarios "$run"; done
  record_rss
  write_settings
  # The pipeline benches start stacks of their own: this one goes first, so
  # its idle programs neither take CPU nor hold ports meanwhile.
  stop_stack
  mkdir -p "$(dirname "$RESULTS_JSON")"
  rm -f "$SETTLEMENT_JSON" "$NOTIFY_JSON"
  local pipeline_args=() rc
  rm -f "$FLOOR_JSON"
  if selected kafka_floor; then
    # The Kafka hop alone, on its own devbroker, with the stack stopped.
    rc=0
    BUILD=$BUILD BENCH_FLOOR_RUNS=$RUNS BENCH_FLOOR_CALLERS=$CONNECTIONS \
      BENCH_FLOOR_JSON=$FLOOR_JSON scripts/bench_kafka_floor.sh || rc=$?
    [ "$rc" = 0 ] || log "kafka_floor bench failed (exit $rc)"
    pipeline_args+=(--kafka-floor "$FLOOR_JSON" --kafka-floor-exit "$rc")
  fi
  if [ "${BENCH_PIPELINES:-1}" != 0 ]; then
    # Settlement (settlement-reporter vs kcat) on its own devbroker and port.
    rc=0
    BUILD=$BUILD scripts/bench_settlement.sh || rc=$?
    [ "$rc" = 0 ] || log "settlement bench failed (exit $rc)"
    pipeline_args+=(--settlement "$SETTLEMENT_JSON" --settlement-exit "$rc")
    # Notifications (Kafka -> webhooks vs direct POSTs) on a stack of its
    # own (ports 29300+).
    rc=0
    BUILD=$BUILD scripts/bench_notify.sh || rc=$?
    [ "$rc" = 0 ] || log "notification bench failed (exit $rc)"
    pipeline_args+=(--notify "$NOTIFY_JSON" --notify-exit "$rc")
  fi
  local status=0
  python3 bench/report.py "$WORK/manifest.tsv" "$WORK/rss.tsv" "$WORK/settings.json" \
    "$RESULTS_JSON" --cpu "$WORK/cpu.tsv" --messages "$WORK/messages.tsv" --box "$WORK/box.tsv" \
    "${pipeline_args[@]}" || status=$?
  echo
  echo "results: $RESULTS_JSON"
  if [ "$status" != 0 ]; then
    log "FAILED: some scenarios had errors (see the FAILED lines above); logs in $WORK"
    exit "$status"
  fi
  FAILED=0
}

main "$@"
