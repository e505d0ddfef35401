#!/usr/bin/env bash
# A program given a bad setting exits 1 at its start with one message that
# names the variable and what it accepts (shared/plumbing/settings.h), instead of
# running on a default. Each program is started with one bad value; Kafka
# points at a closed loopback port in this test's range (BASE_PORT 20780),
# so nothing here needs a broker.
# Run from the repository root (scripts/test.sh does); BUILD=build/san.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/san}
BASE_PORT=20780
tmp=$(mktemp -d /tmp/millom-settings-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
# expect program 'VAR=value' 'message part' [more VAR=value]
expect() {
  local prog=$1 setting=$2 want=$3
  shift 3
  local out="$tmp/$prog.out"
  env -i PATH="$PATH" HOME="$tmp" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
    MILLOM_DATA_DIR="$tmp/data" MILLOM_BROKER_FILE="$tmp/none" \
    KAFKA_BOOTSTRAP="127.0.0.1:$BASE_PORT" MILLOM_PROFILE=sandbox "$@" "$setting" \
    timeout 20 "$BUILD/bin/$prog" >"$out" 2>&1 </dev/null
  local rc=$?
  if [ $rc -eq 1 ] && grep -qF -- "$want" "$out"; then
    echo "ok   $prog $setting: exit 1, \"$want\""
    passed=$((passed + 1))
  else
    echo "FAIL $prog $setting: exit $rc, wanted 1 and \"$want\"; output:"
    sed 's/^/     /' "$out" | head -20
    failed=$((failed + 1))
  fi
}

for p in api-edge offer-resolver purchase-executor notifier settlement-reporter mno-sandbox \
         sp-sandbox devbroker; do
  # before the log exists: a plain line on stderr (the others are JSON lines)
  expect "$p" MILLOM_LOG_LEVEL=loud \
    'MILLOM_LOG_LEVEL must be one of debug, info, warn, error, not "loud"'
done
for p in api-edge offer-resolver purchase-executor notifier settlement-reporter; do
  expect "$p" MILLOM_KAFKA_LINGER_MS=soon \
    'MILLOM_KAFKA_LINGER_MS must be a whole number of milliseconds from 0 to 900000, not \"soon\"'
  expect "$p" MILLOM_HTTP_MAX_BODY=lots \
    'MILLOM_HTTP_MAX_BODY must be a whole number from 1 to 1073741824, not \"lots\"'
done
expect api-edge MILLOM_EDGE_PORT=http \
  'MILLOM_EDGE_PORT must be a whole number from 0 to 65535, not \"http\"'
expect api-edge MILLOM_AUTH_DISABLED=maybe 'MILLOM_AUTH_DISABLED must be 1 or 0'
expect api-edge MILLOM_TENANTS_WATCH=sometimes 'MILLOM_TENANTS_WATCH must be 1 or 0'
# HTTPS files (shared/plumbing/http_tls.h; good and mismatched pairs:
# tests/integration/test_edge_tls.c)
echo "not a certificate" >"$tmp/garbage.pem"
expect api-edge MILLOM_TLS_CERT=/nonexistent/cert.pem \
  'MILLOM_TLS_CERT: cannot read /nonexistent/cert.pem: No such file or directory' \
  MILLOM_TLS_KEY=/nonexistent/key.pem
expect api-edge "MILLOM_TLS_CERT=$tmp/garbage.pem" \
  "MILLOM_TLS_CERT: $tmp/garbage.pem holds no PEM certificate" "MILLOM_TLS_KEY=$tmp/garbage.pem"
expect api-edge "MILLOM_TLS_KEY=$tmp/garbage.pem" \
  'MILLOM_TLS_KEY is set but MILLOM_TLS_CERT is not'
expect api-edge MILLOM_LINK_LIMIT_KEYS=8 \
  'MILLOM_LINK_LIMIT_KEYS must be a whole number from 16 to 4194304, not \"8\"'
expect offer-resolver MILLOM_CACHE_TTL_S=-1 \
  'MILLOM_CACHE_TTL_S must be a whole number of seconds from 0 to 86400, not \"-1\"'
expect purchase-executor MILLOM_PURCHASE_TIMER_S=1m \
  'MILLOM_PURCHASE_TIMER_S must be a whole number of seconds from 0 to 86400, not \"1m\"'
expect purchase-executor MILLOM_CALLBACK_BASE_URL=api-edge:8080 \
  'MILLOM_CALLBACK_BASE_URL must be an http:// or https:// URL with a host'
expect notifier MILLOM_NOTIFY_QUOTA=three \
  'MILLOM_NOTIFY_QUOTA must be a whole number from 0 to 1000000, not \"three\"'
expect settlement-reporter MILLOM_SETTLEMENT_CLOSE_CHECK_MS=0 \
  'MILLOM_SETTLEMENT_CLOSE_CHECK_MS must be a whole number of milliseconds from 1 to 86400000'
expect mno-sandbox MILLOM_MNO_CALLBACK_ATTEMPTS=0 \
  'MILLOM_MNO_CALLBACK_ATTEMPTS must be a whole number from 1 to 100, not \"0\"'
expect sp-sandbox MILLOM_SP_THREADS=many \
  'MILLOM_SP_THREADS must be a whole number from 1 to 256, not \"many\"'
expect sp-sandbox MILLOM_SP_WEBHOOK_SECRETS=hunter2 \
  'MILLOM_SP_WEBHOOK_SECRETS must be one or two whsec_ secrets: a webhook secret must start with whsec_'
expect devbroker MILLOM_BROKER_COUNT=99 \
  'MILLOM_BROKER_COUNT must be a whole number from 1 to 32, not \"99\"'

# Key lists (shared/contracts/keys.h): the setting and the entry are named,
# the secret never is.
# hidden program secret: the last run of program did not print secret.
hidden() {
  if grep -qF -- "$2" "$tmp/$1.out"; then
    echo "FAIL $1 printed the secret $2"
    failed=$((failed + 1))
  else
    echo "ok   $1 kept $2 out of its output"
    passed=$((passed + 1))
  fi
}
expect api-edge MILLOM_JWT_KEYS=k1 \
  'MILLOM_JWT_KEYS must be a list of kid:secret or default entries separated by commas: entry 1 is neither kid:secret nor default'
expect offer-resolver MILLOM_OFFER_CONTEXT_KEYS=k1:first-secret,k1:second-secret \
  'MILLOM_OFFER_CONTEXT_KEYS must be a list of kid:secret or default entries separated by commas: key id k1 is there twice (entries 1 and 2)'
expect notifier 'MILLOM_LINK_KEYS=k/1:link-secret' \
  'MILLOM_LINK_KEYS must be a list of kid:secret or default entries separated by commas: entry 1: a key id is 1 to 16 of A-Z a-z 0-9 _ -'
expect api-edge 'MILLOM_CPID_KEYS=k2:hunter2 two,default' \
  'MILLOM_CPID_KEYS must be a list of kid:secret or default entries separated by commas: entry 1 (key id k2): a secret here is printable ASCII without spaces'
hidden api-edge hunter2
expect settlement-reporter MILLOM_CPID_KEYS=default,, \
  'MILLOM_CPID_KEYS must be a list of kid:secret or default entries separated by commas: entry 2 is empty'
# Retiring the single key takes unsetting it too, never an accident.
expect purchase-executor MILLOM_OFFER_CONTEXT_KEYS=k2:hunter3 \
  'MILLOM_OFFER_CONTEXT_KEY is set, but MILLOM_OFFER_CONTEXT_KEYS does not list default' \
  MILLOM_OFFER_CONTEXT_KEY=hunter4
hidden purchase-executor hunter3
hidden purchase-executor hunter4
expect api-edge MILLOM_CPID_KEYS=k2:hunter5,default \
  'MILLOM_CPID_KEYS lists default, but MILLOM_CPID_KEY is not set (production profile)' \
  MILLOM_PROFILE=production MILLOM_AUTH_DISABLED=0 MILLOM_JWT_KEY=jwt-secret
hidden api-edge hunter5

echo "settings: $passed passed, $failed failed"
[ $failed -eq 0 ]
