# shellcheck shell=bash disable=SC2034  # sourced; the STACK_* variables are for its callers
# The shell tests' stack (source it): what tests/lib/stack.c does for the C
# tests. Starts devbroker, mno-sandbox, sp-sandbox and the five services on
# loopback with their own ports, data dir, broker file and tenants copy,
# waits until each answers /readyz, and stops them: services first (all at
# once), devbroker last.
#
#   . tests/lib/stack.sh
#   stack_start BASE_PORT DIR [sandbox|secure [NAME=value...]] || exit 1
#   ... curl "$STACK_EDGE/std/..." ...
#   stack_stop || echo "a program exited badly"
#
# Ports as in stack.h: BASE_PORT + 0 api-edge, +1 mno-sandbox, +2..+5 the
# admin ports of offer-resolver, purchase-executor, notifier and
# settlement-reporter, +6 sp-sandbox. Every URL a program sends to another
# (operator callbacks, mno-sandbox's callbacks and their token endpoint,
# the links in notifications) points at this stack's api-edge. The secure
# profile is what `make run PROFILE=secure` runs: OAuth on every API call,
# keys made on first start in DIR/data/keys, mno-sandbox authenticating its
# callbacks as the operator's demo client. Logs: DIR/<program>.log.
# Programs run from $BUILD/bin (default build/release); the caller's
# environment reaches them (MILLOM_LOG_LEVEL, the sanitizer options).
# STACK_TENANTS_EDIT (Python statements on t, mno_port, sp_port) changes the
# stack's tenants copy after the ports are filled in, e.g. to send the
# providers' webhooks elsewhere.

STACK_PROGRAMS=(devbroker mno-sandbox sp-sandbox offer-resolver purchase-executor notifier
                settlement-reporter api-edge)
declare -A STACK_PID=()

# BASE_PORT DIR [PROFILE [NAME=value...]]: 0 when every program is ready;
# otherwise a line on stderr and 1 (whatever started is left for
# stack_stop). The NAME=value settings go to every program.
stack_start() {
  local base=$1 dir=$2 profile=${3:-sandbox} bin=${BUILD:-build/release}/bin p _
  shift 3 2>/dev/null || shift $#
  STACK_DIR=$dir
  STACK_BIN=$bin
  STACK_EDGE_PORT=$base
  STACK_MNO_PORT=$((base + 1))
  STACK_RESOLVER_PORT=$((base + 2))
  STACK_EXECUTOR_PORT=$((base + 3))
  STACK_NOTIFIER_PORT=$((base + 4))
  STACK_SETTLEMENT_PORT=$((base + 5))
  STACK_SP_PORT=$((base + 6))
  STACK_EDGE=http://127.0.0.1:$STACK_EDGE_PORT
  STACK_MNO=http://127.0.0.1:$STACK_MNO_PORT
  STACK_SP=http://127.0.0.1:$STACK_SP_PORT
  # A port already taken (another test stack, a `make run`) would let the
  # readiness checks talk to the wrong programs.
  for p in $(seq "$base" $((base + 6))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port $p is in use: another test stack or \`make run\`?" >&2
      return 1
    fi
  done
  for p in "${STACK_PROGRAMS[@]}"; do
    [ -x "$bin/$p" ] || { echo "$bin/$p is missing; run make build" >&2; return 1; }
  done
  mkdir -p "$dir/data" || return 1
  python3 - config/tenants.sandbox.json "$dir/tenants.json" "$STACK_MNO_PORT" "$STACK_SP_PORT" <<'PY' ||
import json, os, sys
src, dst, mno, sp = sys.argv[1:]
with open(src) as f:
    t = json.load(f)
for op in t["operators"]:
    op["backendUrl"] = "http://127.0.0.1:%s" % mno
for p in t["serviceProviders"]:
    p["notificationUrl"] = "http://127.0.0.1:%s/notifications" % sp
    p["callbackUrl"] = "http://127.0.0.1:%s/callbacks" % sp
# The caller's changes (STACK_TENANTS_EDIT): Python statements on t, the
# tenants, with mno_port and sp_port.
exec(os.environ.get("STACK_TENANTS_EDIT", ""), {"t": t, "mno_port": mno, "sp_port": sp})
with open(dst, "w") as f:
    json.dump(t, f, indent=2)
PY
    { echo "cannot write the tenants copy $dir/tenants.json" >&2; return 1; }

  local -a env=(
    MILLOM_DATA_DIR="$dir/data" MILLOM_BROKER_FILE="$dir/broker.bootstrap"
    MILLOM_KEY_DIR="$dir/data/keys" MILLOM_TENANTS="$dir/tenants.json"
    MILLOM_EDGE_PORT="$STACK_EDGE_PORT" MILLOM_MNO_PORT="$STACK_MNO_PORT"
    MILLOM_RESOLVER_PORT="$STACK_RESOLVER_PORT" MILLOM_EXECUTOR_PORT="$STACK_EXECUTOR_PORT"
    MILLOM_NOTIFIER_PORT="$STACK_NOTIFIER_PORT" MILLOM_SETTLEMENT_PORT="$STACK_SETTLEMENT_PORT"
    MILLOM_SP_PORT="$STACK_SP_PORT"
    MILLOM_PUBLIC_URL="$STACK_EDGE" MILLOM_CALLBACK_BASE_URL="$STACK_EDGE"
    MILLOM_MNO_CALLBACK_URL="$STACK_EDGE/activationCallback/tp" MILLOM_MNO_MILLOM_URL="$STACK_EDGE"
  )
  case "$profile" in
    sandbox) env+=(MILLOM_AUTH_DISABLED=1 MILLOM_PROFILE=sandbox) ;;
    secure) env+=(MILLOM_AUTH_DISABLED=0 MILLOM_PROFILE=secure) ;;
    *) echo "unknown profile $profile (sandbox or secure)" >&2; return 1 ;;
  esac
  STACK_ENV=("${env[@]}" "$@")

  rm -f "$dir/broker.bootstrap"
  stack_spawn devbroker
  # devbroker creates its topics one by one through the mock cluster's
  # thread (stack.c says the same): 0.1 s in a release build, 6 to 8 s
  # under the sanitizers on an idle box, more on a busy one. The bound is
  # 60 s (a start that never comes, not a timing check), and a devbroker
  # that exits ends it.
  for _ in $(seq 1 1200); do
    [ -s "$dir/broker.bootstrap" ] && break
    kill -0 "${STACK_PID[devbroker]}" 2>/dev/null ||
      { echo "devbroker exited during start-up; see $dir/devbroker.log" >&2; return 1; }
    sleep 0.05
  done
  [ -s "$dir/broker.bootstrap" ] ||
    { echo "devbroker did not write $dir/broker.bootstrap in 60 s" >&2; return 1; }
  if [ "$profile" = secure ]; then
    # Its activation callbacks need a token: the operator's demo client.
    stack_spawn mno-sandbox MILLOM_MNO_OAUTH_CLIENT_SECRET=tp-demo-secret
  else
    stack_spawn mno-sandbox
  fi
  for p in "${STACK_PROGRAMS[@]:2}"; do stack_spawn "$p"; done
  stack_wait_ready "$STACK_MNO_PORT" mno-sandbox &&
    stack_wait_ready "$STACK_SP_PORT" sp-sandbox &&
    stack_wait_ready "$STACK_RESOLVER_PORT" offer-resolver &&
    stack_wait_ready "$STACK_EXECUTOR_PORT" purchase-executor &&
    stack_wait_ready "$STACK_NOTIFIER_PORT" notifier &&
    stack_wait_ready "$STACK_SETTLEMENT_PORT" settlement-reporter &&
    stack_wait_ready "$STACK_EDGE_PORT" api-edge
}

# NAME [NAME=value...]: starts $STACK_BIN/NAME with the stack's settings
# (and these), in its own session, its output in $STACK_DIR/NAME.log.
stack_spawn() {
  local name=$1
  shift
  # Their own devbroker, never a cluster named in the caller's environment.
  setsid env -u KAFKA_BOOTSTRAP "${STACK_ENV[@]}" "$@" "$STACK_BIN/$name" >>"$STACK_DIR/$name.log" 2>&1 &
  STACK_PID[$name]=$!
}

# PORT NAME: waits (30 s at most) for GET /readyz to answer 200; a program
# that exits meanwhile ends the wait at once.
stack_wait_ready() {
  local port=$1 name=$2 _
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    kill -0 "${STACK_PID[$name]}" 2>/dev/null ||
      { echo "$name exited during start-up; see $STACK_DIR/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$name not ready on port $port in 30 s; see $STACK_DIR/$name.log" >&2
  return 1
}

# 0 when every program started is still running; else names the dead ones.
stack_alive() {
  local name rc=0
  for name in "${!STACK_PID[@]}"; do
    kill -0 "${STACK_PID[$name]}" 2>/dev/null ||
      { echo "$name died; see $STACK_DIR/$name.log" >&2; rc=1; }
  done
  return $rc
}

# Stops every program started: the services and sandboxes at once (SIGTERM;
# SIGKILL to any still running 10 s later; they exit in parallel, which
# under the sanitizers' exit checks is most of the time), then devbroker
# (like scripts/run.sh: services first, so they can commit offsets and
# flush). 0 when each exited 0; otherwise names the others (66 is a
# sanitizer report, scripts/test.sh's exitcode), prints the end of their
# logs and returns 1.
stack_stop() {
  local name bad=0
  local -a services=()
  for name in "${STACK_PROGRAMS[@]:1}"; do
    [ -n "${STACK_PID[$name]:-}" ] && services+=("$name")
  done
  stack_stop_group "${services[@]}" || bad=1
  if [ -n "${STACK_PID[devbroker]:-}" ]; then stack_stop_group devbroker || bad=1; fi
  return $bad
}

# NAME...: SIGTERM to each at once, SIGKILL to those still running 10 s
# later, then reaps each and checks its exit status (stack_stop).
stack_stop_group() {
  local name pid rc running bad=0 _
  for name in "$@"; do kill -TERM "${STACK_PID[$name]}" 2>/dev/null; done
  for _ in $(seq 1 100); do
    running=0
    for name in "$@"; do kill -0 "${STACK_PID[$name]}" 2>/dev/null && running=1; done
    [ "$running" = 0 ] && break
    sleep 0.1
  done
  for name in "$@"; do
    pid=${STACK_PID[$name]}
    unset "STACK_PID[$name]"
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$rc" != 0 ]; then
      echo "$name exited with status $rc (66: a sanitizer report); the end of $STACK_DIR/$name.log:" >&2
      tail -n 40 "$STACK_DIR/$name.log" >&2
      bad=1
    fi
  done
  return $bad
}
