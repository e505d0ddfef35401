#!/usr/bin/env bash
# Starts the whole stack in the foreground: devbroker (unless
# KAFKA_BOOTSTRAP names a real cluster), the sandboxes and every service.
# Ctrl-C stops everything cleanly. Logs: var/log/<program>.log.
# INSTANCES=2 also starts a second offer-resolver, purchase-executor,
# notifier and api-edge (own data dir, port, log and reply partition).
set -euo pipefail
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
export MILLOM_DATA_DIR=${MILLOM_DATA_DIR:-var/data}
export MILLOM_BROKER_FILE=${MILLOM_BROKER_FILE:-var/broker.bootstrap}
export MILLOM_TENANTS=${MILLOM_TENANTS:-config/tenants.sandbox.json}
# PROFILE=sandbox (default): no authentication, like Millom's public Sandbox.
# PROFILE=secure: OAuth 2.0 client credentials on every API call, with the
# demo clients of the tenants file (README "Security (secure profile)").
# Keys (shared/contracts/keys.h): the sandbox uses its public defaults; secure makes
# random keys on first start in MILLOM_KEY_DIR, shared by every program
# (second instances included: their data dir differs, their keys must not).
PROFILE=${PROFILE:-sandbox}
export MILLOM_KEY_DIR=${MILLOM_KEY_DIR:-$MILLOM_DATA_DIR/keys}
case "$PROFILE" in
  sandbox) export MILLOM_AUTH_DISABLED=1 MILLOM_PROFILE=sandbox ;;
  secure) export MILLOM_AUTH_DISABLED=0 MILLOM_PROFILE=secure ;;
  *) echo "unknown PROFILE=$PROFILE (sandbox or secure)" >&2; exit 2 ;;
esac
INSTANCES=${INSTANCES:-1}
case "$INSTANCES" in
  1|2) ;;
  *) echo "unsupported INSTANCES=$INSTANCES (1 or 2)" >&2; exit 2 ;;
esac
# Second instances: own admin/HTTP port, data dir ($MILLOM_DATA_DIR/2, the
# SQLite file is named after the service), log (<program>-2.log) and reply
# partition of millom.replies (each reply reader needs its own).
RESOLVER2_PORT=${MILLOM_RESOLVER2_PORT:-9111}
EXECUTOR2_PORT=${MILLOM_EXECUTOR2_PORT:-9112}
NOTIFIER2_PORT=${MILLOM_NOTIFIER2_PORT:-9113}
EDGE2_PORT=${MILLOM_EDGE2_PORT:-8081}
DATA2=$MILLOM_DATA_DIR/2
LOG_DIR=${MILLOM_LOG_DIR:-var/log}
mkdir -p "$MILLOM_DATA_DIR" "$LOG_DIR"
[ "$INSTANCES" = 2 ] && mkdir -p "$DATA2"

pids=()
names=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  # Services first, so they can commit offsets and flush; the broker last.
  local first=0
  [ "${names[0]:-}" = devbroker ] && first=1
  for ((i=${#pids[@]}-1; i>=first; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for ((i=${#pids[@]}-1; i>=first; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
  if [ "$first" = 1 ]; then kill -TERM "${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true; fi
  echo "stopped."
}
trap "stop_all; exit 0" INT TERM
trap stop_all EXIT

start() { # name [env...]
  local name=$1; shift
  env "$@" "$BIN/$name" >>"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

start_second() { # name [env...]: instance 2 of a program, log <name>-2.log
  local name=$1; shift
  env MILLOM_DATA_DIR="$DATA2" "$@" "$BIN/$name" >>"$LOG_DIR/$name-2.log" 2>&1 &
  pids+=($!)
  names+=("$name-2")
}

wait_http() { # port name
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$2 did not become ready on port $1; see $LOG_DIR/$2.log" >&2
  return 1
}

if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
  rm -f "$MILLOM_BROKER_FILE"
  start devbroker
  # devbroker needs 3 to 6 s to create its topics (up to 1 s each on the
  # mock cluster's poll); 60 s is the bound, not an expectation.
  for _ in $(seq 1 600); do [ -s "$MILLOM_BROKER_FILE" ] && break; sleep 0.1; done
  [ -s "$MILLOM_BROKER_FILE" ] || { echo "devbroker did not start; see $LOG_DIR/devbroker.log" >&2; exit 1; }
  echo "devbroker:           $(cat "$MILLOM_BROKER_FILE")  (Kafka protocol, in memory)"
else
  echo "kafka:               $KAFKA_BOOTSTRAP"
fi

if [ "$PROFILE" = secure ]; then
  # Its activation callbacks need a token too: client credentials of the
  # operator's demo client (tp-demo in the tenants file).
  start mno-sandbox MILLOM_MNO_OAUTH_CLIENT_SECRET="${MILLOM_MNO_OAUTH_CLIENT_SECRET:-tp-demo-secret}"
else
  start mno-sandbox
fi
[ -x "$BIN/sp-sandbox" ] && start sp-sandbox
start offer-resolver
start purchase-executor
start notifier
start settlement-reporter
start api-edge
if [ "$INSTANCES" = 2 ]; then
  start_second offer-resolver MILLOM_RESOLVER_PORT="$RESOLVER2_PORT"
  start_second purchase-executor MILLOM_EXECUTOR_PORT="$EXECUTOR2_PORT"
  start_second notifier MILLOM_NOTIFIER_PORT="$NOTIFIER2_PORT" MILLOM_REPLY_PARTITION=6
  start_second api-edge MILLOM_EDGE_PORT="$EDGE2_PORT" MILLOM_REPLY_PARTITION=1
fi

wait_http "${MILLOM_MNO_PORT:-9090}" mno-sandbox
[ -x "$BIN/sp-sandbox" ] && wait_http "${MILLOM_SP_PORT:-9091}" sp-sandbox
wait_http "${MILLOM_RESOLVER_PORT:-9101}" offer-resolver
wait_http "${MILLOM_EXECUTOR_PORT:-9102}" purchase-executor
wait_http "${MILLOM_NOTIFIER_PORT:-9103}" notifier
wait_http "${MILLOM_SETTLEMENT_PORT:-9104}" settlement-reporter
wait_http "${MILLOM_EDGE_PORT:-8080}" api-edge
if [ "$INSTANCES" = 2 ]; then
  wait_http "$RESOLVER2_PORT" offer-resolver-2
  wait_http "$EXECUTOR2_PORT" purchase-executor-2
  wait_http "$NOTIFIER2_PORT" notifier-2
  wait_http "$EDGE2_PORT" api-edge-2
fi

EDGE="http://localhost:${MILLOM_EDGE_PORT:-8080}"
if [ "$PROFILE" = secure ]; then
  RUNNING="Millom is running (SECURE PROFILE: OAuth 2.0 bearer tokens required)."
else
  RUNNING="Millom is running (SANDBOX PROFILE: authentication is DISABLED)."
fi
cat <<MSG

$RUNNING
  api-edge             $EDGE  (/healthz /readyz /metrics)
  mno-sandbox          http://localhost:${MILLOM_MNO_PORT:-9090}
  sp-sandbox           http://localhost:${MILLOM_SP_PORT:-9091}  (/admin/received)
  offer-resolver       http://localhost:${MILLOM_RESOLVER_PORT:-9101}/metrics
  purchase-executor    http://localhost:${MILLOM_EXECUTOR_PORT:-9102}/metrics
  notifier             http://localhost:${MILLOM_NOTIFIER_PORT:-9103}/metrics
  settlement-reporter  http://localhost:${MILLOM_SETTLEMENT_PORT:-9104}/metrics
MSG
if [ "$INSTANCES" = 2 ]; then
  cat <<MSG
  api-edge #2          http://localhost:$EDGE2_PORT  (reply partition 1)
  offer-resolver #2    http://localhost:$RESOLVER2_PORT/metrics
  purchase-executor #2 http://localhost:$EXECUTOR2_PORT/metrics
  notifier #2          http://localhost:$NOTIFIER2_PORT/metrics  (reply partition 6)
  data #2: $DATA2   logs #2: $LOG_DIR/<program>-2.log
MSG
fi
cat <<MSG
  data: $MILLOM_DATA_DIR   logs: $LOG_DIR

Try:
  curl $EDGE/std/testserviceprovider/tp/924542610003/upsellOffer

Ctrl-C stops everything.
MSG
if [ "$PROFILE" = secure ]; then
  cat <<MSG

Demo OAuth clients (demo secrets, never for production; tokens live ${MILLOM_TOKEN_TTL_S:-300} s):
  sp-demo     testserviceprovider  sp-demo-secret (rotation: sp-demo-secret-2)
  other-demo  otherprovider        other-demo-secret
  tp-demo     operator tp          tp-demo-secret
Get a token and use it:
  TOKEN=\$(curl -s -u sp-demo:sp-demo-secret -d grant_type=client_credentials \\
          $EDGE/oauth/v1/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -H "Authorization: Bearer \$TOKEN" $EDGE/std/testserviceprovider/tp/924542610003/balance
Keys (JWT, CPID, links, offerContext, subscriber hash): random, made on first
start in $MILLOM_KEY_DIR (mode 0600) unless set in the environment.
MSG
fi

# Wait until a program exits or Ctrl-C; either way stop_all runs.
wait -n "${pids[@]}" || true
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null || echo "${names[$i]} exited; see $LOG_DIR/${names[$i]}.log" >&2
done
