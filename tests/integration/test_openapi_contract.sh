#!/usr/bin/env bash
# Contract test: real answers of a running stack checked against the
# OpenAPI files by Stoplight Prism's validating proxy (`prism proxy SPEC
# UPSTREAM --errors`), for the upstream standard, CPID, notification,
# callback and rich-notification specs (schemas/openapi/upstream/, with the
# errata of schemas/openapi/upstream-errata.yaml) and Millom-C's own
# schemas/openapi/millom-extensions.yaml. One Prism per spec, in front of
# api-edge; one more (provider-hooks) between notifier and sp-sandbox, the
# providers' notificationUrl and callbackUrl pointing at it, so the
# notifications and purchase callbacks Millom sends are checked too.
#
# Fails on: a request or answer Prism finds against its spec (its 4xx/5xx
# problem answer, an sl-violations header, an error or warning line in its
# log), an unexpected status, and an operation of a spec that no request
# called (tests/integration/openapi_specs.py check): a path added to
# millom-extensions.yaml needs a request here.
#
# Stack: tests/lib/stack.sh, secure profile (tokens on every call), ports
# 23800..23806, and a second api-edge on 23807 (an OpenAPI file it cannot
# read: 404); the Prisms on 23810..23816 (OPENAPI_BASE_PORT moves all).
# Prism comes from tools/node (npm ci by scripts/deps.sh; installed on
# demand, and the test FAILS, never skips, when it is still missing).
# MILLOM_KEEP_TEST_DIR=1 keeps the temp dir (logs, specs, answers).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BASE=${OPENAPI_BASE_PORT:-23800}
PRISM=tools/node/node_modules/.bin/prism

TEST_NAME="openapi contract"
WORK=$(mktemp -d /tmp/millom-openapi.XXXXXX)
# shellcheck source=tests/lib/shell_test.sh
. tests/lib/shell_test.sh

declare -A PRISM_PORT=([standard]=$((BASE + 10)) [cpid]=$((BASE + 11)) [notify]=$((BASE + 12))
                       [callback]=$((BASE + 13)) [rnf]=$((BASE + 14)) [provider-hooks]=$((BASE + 15))
                       [extensions]=$((BASE + 16)))
declare -A PRISM_PID=()

# Each Prism runs in its own session (setsid): its node process forks a
# second one, so the whole process group is stopped.
stop_prisms() {
  local name
  for name in "${!PRISM_PID[@]}"; do kill -TERM -- "-${PRISM_PID[$name]}" 2>/dev/null; done
  for name in "${!PRISM_PID[@]}"; do wait "${PRISM_PID[$name]}" 2>/dev/null; unset "PRISM_PID[$name]"; done
}

shell_test_before_stop() { stop_prisms; }

# ---- Prism and the specs ----
if [ ! -x "$PRISM" ]; then
  echo "prism is missing; installing it (scripts/deps.sh: npm ci --prefix tools/node)"
  scripts/deps.sh || die "could not install prism (scripts/deps.sh failed)"
fi
[ -x "$PRISM" ] || die "prism is not installed in tools/node and could not be installed"
mkdir -p "$WORK/specs" "$WORK/answers"
declare -A SPEC_FILE=()
python3 tests/integration/openapi_specs.py build "$WORK/specs" >"$WORK/specs.txt" ||
  die "the specs could not be built (an erratum no longer applies: above)"
while read -r name path; do SPEC_FILE[$name]=$path; done <"$WORK/specs.txt"
ok "specs built with $(grep -c '^- spec:' schemas/openapi/upstream-errata.yaml) errata"

# Every Prism proxies to api-edge, but provider-hooks to sp-sandbox; the
# notification spec's server has the base path /notify.
STACK_EDGE_URL=http://127.0.0.1:$BASE
declare -A PRISM_UPSTREAM=([notify]=$STACK_EDGE_URL/notify [provider-hooks]=http://127.0.0.1:$((BASE + 6)))
for name in "${!PRISM_PORT[@]}"; do
  setsid "$PRISM" proxy "${SPEC_FILE[$name]}" "${PRISM_UPSTREAM[$name]:-$STACK_EDGE_URL}" \
    --errors -h 127.0.0.1 -p "${PRISM_PORT[$name]}" >"$WORK/prism-$name.log" 2>&1 &
  PRISM_PID[$name]=$!
done

# ---- the stack (meanwhile the Prisms start) ----
# The providers' webhooks go through provider-hooks, with a token from
# sp-sandbox (the notification path requires the provider's OAuth).
export STACK_TENANTS_EDIT="
for p in t['serviceProviders']:
    p['notificationUrl'] = 'http://127.0.0.1:$((BASE + 15))/notifications'
    p['callbackUrl'] = 'http://127.0.0.1:$((BASE + 15))/callbacks'
    # the top-up outcome callback is Millom's own (top-up.yaml has none):
    # straight to sp-sandbox, not through the rich-notification spec's Prism
    p['topupCallbackUrl'] = 'http://127.0.0.1:%s/callbacks' % sp_port
    p['webhookAuth'] = {'tokenUrl': 'http://127.0.0.1:%s/oauth/token' % sp_port,
                        'clientId': 'millom', 'clientSecretEnv': 'OPENAPI_SP_CLIENT_SECRET'}
"
# The operator's asynchronous answer is held (10 min): the test sends it
# itself, on /callback/v1, through its Prism.
stack_start "$BASE" "$WORK" secure OPENAPI_SP_CLIENT_SECRET=contract-secret \
  MILLOM_SP_OAUTH_CLIENT_ID=millom MILLOM_SP_OAUTH_CLIENT_SECRET=contract-secret \
  MILLOM_MNO_CALLBACK_DELAY_MS=600000 \
  MILLOM_QUERY_DEADLINE_MS=15000 MILLOM_BACKEND_TIMEOUT_MS=10000 \
  MILLOM_PURCHASE_DEADLINE_MS=25000 MILLOM_ACTIVATE_TIMEOUT_MS=15000 \
  MILLOM_NOTIFY_OFFERS_TIMEOUT_MS=10000 || die "the stack did not start"
ok "stack ready on $BASE..$((BASE + 6))"

for name in "${!PRISM_PORT[@]}"; do
  for _ in $(seq 1 600); do
    grep -q "Prism is listening" "$WORK/prism-$name.log" && break
    kill -0 "${PRISM_PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "Prism is listening" "$WORK/prism-$name.log" ||
    die "prism ($name) did not start in 60 s: $(tail -n 5 "$WORK/prism-$name.log")"
done
ok "${#PRISM_PORT[@]} prisms listening on $((BASE + 10))..$((BASE + 16))"

# PORT PID LOG: waits (30 s at most) for /readyz of a program this test
# started itself; one that exits ends the wait.
wait_ready_pid() {
  local _
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- requests ----
n=0
ANSWER=
# SPEC WANT METHOD PATH [curl args...]: the request through SPEC's Prism.
# WANT: the statuses that are right here ("200" or "200 202"). Prism's
# own answers (its problem documents) and sl-violations headers fail.
call() {
  local spec=$1 want=$2 method=$3 path=$4 code
  shift 4
  n=$((n + 1))
  ANSWER=$WORK/answers/$n
  code=$(curl -sS -o "$ANSWER" -D "$ANSWER.headers" -w '%{http_code}' --max-time 60 \
    -X "$method" "$@" "http://127.0.0.1:${PRISM_PORT[$spec]}$path")
  if grep -qi '^sl-violations:' "$ANSWER.headers" || grep -q 'stoplight.io/prism/errors' "$ANSWER"; then
    bad "$spec: $method $path: $code, prism: $(head -c 600 "$ANSWER")"
  elif [[ " $want " != *" $code "* ]]; then
    bad "$spec: $method $path: $code, want $want: $(head -c 300 "$ANSWER")"
  else
    ok "$spec: $method $path: $code"
  fi
}
# FIELD: a field of the last answer (a JSON object), "" when absent.
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2], ""); print(v if isinstance(v, str) else json.dumps(v))' "$ANSWER" "$1" 2>/dev/null; }

JSON=(-H 'Content-Type: application/json')
SUB=924542610003 # has money, gets offers (the upstream sandbox's)
POOR=924542610000 # has a loan, offered nothing, cannot buy

# Tokens, on millom-extensions.yaml's token endpoint: the provider and the operator.
call extensions 200 POST /oauth/v1/token -u sp-demo:sp-demo-secret -d grant_type=client_credentials
SP_AUTH=(-H "Authorization: Bearer $(field access_token)")
call extensions 200 POST /oauth/v1/token -d grant_type=client_credentials -d client_id=tp-demo \
  -d client_secret=tp-demo-secret
OP_AUTH=(-H "Authorization: Bearer $(field access_token)")
call extensions 401 POST /oauth/v1/token -u sp-demo:wrong-secret -d grant_type=client_credentials

# The standard API, with and without {operator}.
S=/std/testserviceprovider
for what in accountInfo balance upsellOffer; do
  call standard 200 GET "$S/tp/$SUB/$what" "${SP_AUTH[@]}"
  call standard 200 GET "$S/$SUB/$what" "${SP_AUTH[@]}"
done
call standard "200 402" GET "$S/tp/$POOR/upsellOffer" "${SP_AUTH[@]}"
call standard 404 GET "$S/tp/92454261/balance" "${SP_AUTH[@]}"
call standard 400 GET "$S/nosuchop/$SUB/balance" "${SP_AUTH[@]}"
call standard 200 GET "$S/tp/$SUB/upsellOffer" "${SP_AUTH[@]}"
cp "$ANSWER" "$WORK/offers.json"
offer() { # PLANID: its offerContext
  python3 -c 'import json,sys; print(next(o["offerContext"] for o in json.load(open(sys.argv[1]))["offers"] if o["planId"] == sys.argv[2]))' "$WORK/offers.json" "$1"
}
buy_body() { printf '{"transid":"%s","planid":"%s","offercontext":"%s"}' "$1" "$2" "$(offer "$2")"; }
# consent, so that notifications reach the provider (200, no body)
call standard 200 POST "$S/$SUB/register" "${SP_AUTH[@]}" "${JSON[@]}" \
  -d '{"transactionId":"contract-reg-1","types":["out-of-data","pack-near-expiry"]}'
call standard 200 POST "$S/tp/$SUB/purchasePlan" "${SP_AUTH[@]}" "${JSON[@]}" \
  -d "$(buy_body contract-tx-0000001 tp-social-daily)"
call standard 200 POST "$S/$SUB/purchasePlan" "${SP_AUTH[@]}" "${JSON[@]}" \
  -d "$(buy_body contract-tx-0000002 tp-music-daily)"
# the operator answers later (held): 202 processing
call standard 202 POST "$S/tp/$SUB/purchasePlan" "${SP_AUTH[@]}" "${JSON[@]}" \
  -d "$(buy_body contract-tx-0000003 tp-data-weekly-async)"
call standard 400 POST "$S/tp/$SUB/purchasePlan" "${SP_AUTH[@]}" "${JSON[@]}" \
  -d '{"transid":"contract-tx-0000004","planid":"tp-video-hour","offercontext":"forged"}'

# Extensions for providers: eligibility and purchase status.
call extensions 200 GET "$S/tp/$SUB/eligibility/tp-video-hour" "${SP_AUTH[@]}"
call extensions 200 GET "$S/$POOR/eligibility/tp-video-hour?fundSource=WALLET" "${SP_AUTH[@]}"
call extensions 200 GET "$S/tp/$SUB/purchasePlan/contract-tx-0000001" "${SP_AUTH[@]}"
call extensions 200 GET "$S/$SUB/purchasePlan/contract-tx-0000003" "${SP_AUTH[@]}"
[ "$(field status)" = processing ] && ok "the held purchase is processing" ||
  bad "the held purchase is $(field status), want processing"
call extensions 404 GET "$S/tp/$SUB/purchasePlan/contract-tx-nosuch" "${SP_AUTH[@]}"

# Management, as the operator.
call extensions 200 GET "/mgmt/tp/purchases?subscriberId=$SUB" "${OP_AUTH[@]}"
call extensions 200 GET /mgmt/tp/purchases/contract-tx-0000003 "${OP_AUTH[@]}"
HELD=$(field operatorTransId)
call extensions 200 GET /mgmt/tp/settlements "${OP_AUTH[@]}"
call extensions 200 GET "/mgmt/tp/settlements?format=csv" "${OP_AUTH[@]}"
call extensions 200 GET /mgmt/tp/offer-performance "${OP_AUTH[@]}"
call extensions 200 GET "/mgmt/tp/consents?subscriberId=$SUB" "${OP_AUTH[@]}"
call extensions 400 GET "/mgmt/tp/settlements?from=yesterday" "${OP_AUTH[@]}"

# The operator's callback for the held purchase (millom-callback.yaml):
# a refusal with the fields passed on to the provider.
call callback 200 POST "/callback/v1/tp/?idValue=$SUB&idType=MSISDN" "${OP_AUTH[@]}" "${JSON[@]}" \
  -d "{\"transactionId\":\"$HELD\",\"appId\":\"testserviceprovider\",\"errorType\":\"PIN_ENTRY_ERROR\",\"errorCode\":\"400.70.2\",\"redirectLink\":\"https://op.example/pin?retry=1\"}"
call callback 409 POST "/callback/v1/tp/?idValue=$SUB&idType=MSISDN" "${OP_AUTH[@]}" "${JSON[@]}" \
  -d "{\"transactionId\":\"$HELD\",\"appId\":\"testserviceprovider\"}"
call callback 404 POST "/callback/v1/tp/?idValue=$SUB&idType=MSISDN" "${OP_AUTH[@]}" "${JSON[@]}" \
  -d '{"transactionId":"no-such-transaction","appId":"testserviceprovider"}'
call extensions 200 GET "$S/tp/$SUB/purchasePlan/contract-tx-0000003" "${SP_AUTH[@]}"
[ "$(field status)" = failed ] && [ "$(field errorCode)" = 400.70.2 ] &&
  ok "the refused purchase is failed with the operator's errorCode" ||
  bad "the refused purchase: $(cat "$ANSWER")"

# CPIDs (loopback is tp's network in the sandbox tenants; X-MSISDN stands
# in for header enrichment).
call cpid 200 GET "/cpid?app=testserviceprovider" -H "X-MSISDN: $SUB"
CPID=$(field cpid)
# cpid-retrieval.yaml gives registerCpid no body and no way to pass the
# CPID; api-edge takes it as a body {"cpid"} or as the query parameter
# cpid: the query form, which the spec does not refuse (with the JSON
# Content-Type api-edge asks of every POST, and no body).
call cpid 200 POST "/testserviceprovider/tp/registerCpid?app=testserviceprovider&cpid=$(
  python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$CPID")" \
  "${SP_AUTH[@]}" -H 'Content-Type: application/json'
call cpid 400 GET "/cpid?app=testserviceprovider"

# The Notification API; the notification reaches sp-sandbox through
# provider-hooks.
call notify 202 POST "/tp/v1/single?idValue=$SUB&idType=MSISDN&override=true" "${OP_AUTH[@]}" \
  "${JSON[@]}" -d '{"transactionId":"contract-n-1","type":"out-of-data"}'
# (a request the spec refuses, an unknown type, never passes Prism: only
# answers to valid requests are checked)
call notify 403 POST "/tp/v1/single?idValue=$SUB&idType=MSISDN" "${OP_AUTH[@]}" "${JSON[@]}" \
  -d '{"transactionId":"contract-n-2","type":"low-data"}'
call notify 404 POST "/tp/v1/single?idValue=924542619999&idType=MSISDN" "${OP_AUTH[@]}" \
  "${JSON[@]}" -d '{"transactionId":"contract-n-3","type":"out-of-data"}'

# KIND: waits (60 s at most) for sp-sandbox to have received one.
received() {
  local _
  for _ in $(seq 1 600); do
    curl -fsS "$STACK_SP/admin/received?kind=$1" >"$WORK/received-$1.json" 2>/dev/null &&
      python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["count"] else 1)' \
        "$WORK/received-$1.json" && return 0
    sleep 0.1
  done
  return 1
}
received notification && ok "a notification reached sp-sandbox through provider-hooks" ||
  bad "no notification reached sp-sandbox in 60 s"
received callback && ok "a purchase callback reached sp-sandbox through provider-hooks" ||
  bad "no purchase callback reached sp-sandbox in 60 s"

# The notification's signed links: rich-notification-api.yaml's, and the shop.
link() { # NAME: the link of the first notification, as a path and query
  python3 -c 'import json,sys,urllib.parse as u; b=json.load(open(sys.argv[1]))["received"][0]["body"]
l=b[sys.argv[2]] if sys.argv[2] != "purchaseLink" else b["offers"][0]["purchaseLink"]
p=u.urlsplit(l); print(p.path + "?" + p.query)' "$WORK/received-notification.json" "$1"
}
call rnf 200 GET "$(link refresh)"
call rnf 200 GET "$(link ping)"
call rnf "200 202" GET "$(link purchaseLink)"
call extensions 200 GET "$(link shop)"
# the shop's Buy form of tp-video-hour (not bought yet), posted as a browser would
python3 - "$ANSWER" tp-video-hour >"$WORK/buy.txt" <<'PY' || bad "the shop page has no Buy form for tp-video-hour"
import html.parser, sys, urllib.parse
class Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.action = None; self.fields = []; self.done = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.done: return
        if tag == "form" and a.get("method", "").lower() == "post": self.action = a.get("action")
        elif tag == "input" and self.action and a.get("name"): self.fields.append((a["name"], a.get("value", "")))
    def handle_endtag(self, tag):
        if tag == "form" and self.action:
            if ("planId", sys.argv[2]) in self.fields: self.done = True
            else: self.action = None; self.fields = []
f = Form(); f.feed(open(sys.argv[1]).read())
if not f.done: sys.exit(1)
print(urllib.parse.urlsplit(f.action).path); print(urllib.parse.urlencode(f.fields))
PY
call extensions "200 202" POST "$(sed -n 1p "$WORK/buy.txt")" \
  -H 'Content-Type: application/x-www-form-urlencoded' --data "$(sed -n 2p "$WORK/buy.txt")"
# the notification's unsubscribe link (an extension of rich notifications)
call extensions 200 GET "$(link unsubscribe)"

# Top-up: top-up.yaml's POST declares only a 405 answer, so it goes to
# api-edge directly; Millom's status read and the donor's page (the link
# in the SMS mno-sandbox was asked to send) through extensions.
DONOR=6582736491
code=$(curl -sS -o "$WORK/topup.json" -w '%{http_code}' -X POST "${SP_AUTH[@]}" "${JSON[@]}" \
  -H 'X-Partner-Reference: contract-topup-1' "$STACK_EDGE_URL/v1/testserviceprovider/topup" \
  -d "{\"requestor\":{\"userNumber\":{\"msisdn\":\"+$SUB\"},\"name\":\"Ayesha\"},\"donor\":{\"userNumber\":{\"msisdn\":\"+$DONOR\"},\"name\":\"Jane\"}}")
TOPUP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("topupId",""))' "$WORK/topup.json")
[ "$code" = 202 ] && [ -n "$TOPUP" ] && ok "a top-up request: 202 $TOPUP" ||
  bad "a top-up request: $code $(cat "$WORK/topup.json")"
call extensions 200 GET "/v1/testserviceprovider/topup/$TOPUP" "${SP_AUTH[@]}"
call extensions 404 GET /v1/testserviceprovider/topup/tu-00000000000000000000000000000000 "${SP_AUTH[@]}"
DONOR_LINK=$(curl -fsS "$STACK_MNO/admin/messages?to=$DONOR" | python3 -c '
import json, sys, urllib.parse as u
m = [m for m in json.load(sys.stdin)["messages"] if m.get("reference") == sys.argv[1]]
p = u.urlsplit(m[0]["text"].split()[-1]) if m else None
print(p.path + "?" + p.query if p else "")' "$TOPUP")
[ -n "$DONOR_LINK" ] && ok "the donor's SMS has a link" || bad "no SMS with a link for $TOPUP"
call extensions 200 GET "$DONOR_LINK"
# the page's form with an amount it does not offer (400), then its first one
donor_form() { # AMOUNT: the form's action path, then its fields with that amount
  python3 - "$ANSWER" "$1" <<'PY'
import html.parser, sys, urllib.parse
class Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.action = None; self.fields = []; self.amounts = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None: self.action = a.get("action")
        elif a.get("name") == "amount": self.amounts.append(a.get("value"))
        elif tag == "input" and a.get("name"): self.fields.append((a["name"], a.get("value", "")))
f = Form(); f.feed(open(sys.argv[1]).read())
amount = sys.argv[2] if sys.argv[2] != "first" else (f.amounts or [""])[0]
print(urllib.parse.urlsplit(f.action or "").path)
print(urllib.parse.urlencode(f.fields + [("amount", amount)]))
PY
}
donor_form 99999.00 >"$WORK/donate-bad.txt"
donor_form first >"$WORK/donate.txt"
call extensions 400 POST "$(sed -n 1p "$WORK/donate-bad.txt")" \
  -H 'Content-Type: application/x-www-form-urlencoded' --data "$(sed -n 2p "$WORK/donate-bad.txt")"
call extensions 200 POST "$(sed -n 1p "$WORK/donate.txt")" \
  -H 'Content-Type: application/x-www-form-urlencoded' --data "$(sed -n 2p "$WORK/donate.txt")"

# Bulk notifications, as the operator (the bulk scope is tp-demo's).
call extensions 200 POST /notify/tp/v1/bulk "${OP_AUTH[@]}" "${JSON[@]}" -d "[
  {\"idValue\":\"$SUB\",\"idType\":\"MSISDN\",\"override\":true,\"transactionId\":\"contract-b-1\",\"type\":\"out-of-data\"},
  {\"idValue\":\"924542619999\",\"idType\":\"MSISDN\",\"transactionId\":\"contract-b-2\",\"type\":\"out-of-data\"}]"

# Platform.
call extensions 200 GET /healthz
call extensions 200 GET /readyz
call extensions 200 GET /metrics
call extensions 200 GET /openapi/millom-extensions.yaml
cmp -s "$ANSWER" schemas/openapi/millom-extensions.yaml &&
  ok "api-edge serves schemas/openapi/millom-extensions.yaml as it is" ||
  bad "GET /openapi/millom-extensions.yaml is not schemas/openapi/millom-extensions.yaml"

# A second api-edge whose MILLOM_OPENAPI_FILE cannot be read: it starts,
# logs why, and the path answers 404 saying so.
EDGE2_PORT=$((BASE + 7))
setsid env -u KAFKA_BOOTSTRAP "${STACK_ENV[@]}" MILLOM_EDGE_PORT=$EDGE2_PORT MILLOM_REPLY_PARTITION=1 \
  MILLOM_OPENAPI_FILE="$WORK/no-such-openapi.yaml" "$STACK_BIN/api-edge" >"$WORK/api-edge-2.log" 2>&1 &
EDGE2_PID=$!
if wait_ready_pid "$EDGE2_PORT" "$EDGE2_PID" "$WORK/api-edge-2.log"; then
  code=$(curl -sS -o "$WORK/answers/missing" -w '%{http_code}' "http://127.0.0.1:$EDGE2_PORT/openapi/millom-extensions.yaml")
  if [ "$code" = 404 ] && grep -q 'no-such-openapi.yaml could not be read' "$WORK/answers/missing" &&
     grep -q 'openapi: cannot read' "$WORK/api-edge-2.log"; then
    ok "an OpenAPI file that cannot be read: logged at start, 404 naming it"
  else
    bad "an OpenAPI file that cannot be read: $code $(cat "$WORK/answers/missing")"
  fi
else
  bad "the second api-edge did not start (see $WORK/api-edge-2.log)"
fi
kill -TERM "$EDGE2_PID" 2>/dev/null
wait "$EDGE2_PID"
rc=$?
[ "$rc" = 0 ] && ok "the second api-edge exited 0" ||
  bad "the second api-edge exited $rc: $(tail -n 20 "$WORK/api-edge-2.log")"

# ---- Prism's logs: no violation anywhere, every operation called ----
stack_alive || bad "a program died during the run"
stop_prisms
for name in standard cpid notify callback rnf provider-hooks extensions; do
  python3 tests/integration/openapi_specs.py check "${SPEC_FILE[$name]}" "$name" "$WORK/prism-$name.log" &&
    ok "$name: every operation called, no violation" || bad "$name: see above"
done
