#!/usr/bin/env bash
# The top-up donor's page (README, "Top-up") in a real headless browser,
# Debian's chromium, as test_shop_browser.sh does for the shop: a provider
# posts a top-up request, mno-sandbox records the SMS with the signed link
# to the donor, chromium renders the link's page (who asks, one button per
# amount, no script), and clicking the first amount (shop_click.py, a mouse
# click over the DevTools pipe) submits the form: the page says CREDITED,
# the requestor's balance grew by that amount and the request's status is
# CREDITED. A phone-sized screenshot goes into the temp dir only.
#
# Starts its own stack on ports 23020..23026 (TOPUP_BROWSER_BASE_PORT moves
# them) through tests/lib/stack.sh, and stops it on exit. Installs chromium
# through `BROWSER=1 scripts/deps.sh` when it is missing; if that fails the
# test FAILS (it never skips). BUILD names the build tree, MILLOM_KEEP_TEST_DIR=1
# keeps the temp dir.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
BASE=${TOPUP_BROWSER_BASE_PORT:-23020}
EDGE=http://127.0.0.1:$BASE
MNO=http://127.0.0.1:$((BASE + 1))
SP=testserviceprovider
REQUESTOR=924542610000
DONOR=6582736491

TEST_NAME="topup browser"
WORK=$(mktemp -d /tmp/millom-topup-browser.XXXXXX)
# shellcheck source=tests/lib/browser.sh
. tests/lib/browser.sh

# The main balance of the requestor through api-edge (no cache).
main_balance() {
  curl -fsS -H 'Cache-Control: no-cache' "$EDGE/std/$SP/tp/$REQUESTOR/accountInfo" |
    python3 -c 'import json,sys
print([b["balance"] for b in json.load(sys.stdin)["balances"] if b["balanceType"] == "main"][0])'
}

# ---- the stack ----
unset MILLOM_LINK_KEY # the sandbox link key, like the stack
stack_start "$BASE" "$WORK" sandbox || die "the stack did not start"
ok "stack ready on $BASE..$((BASE + 6))"

# ---- a top-up request and the donor's SMS ----
code=$(curl -sS -o "$WORK/request.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Partner-Reference: browser-$$" -d "{
    \"requestor\": {\"userNumber\": {\"msisdn\": \"+$REQUESTOR\"}, \"name\": \"Ali & Sons\"},
    \"donor\": {\"userNumber\": {\"msisdn\": \"+$DONOR\"}, \"name\": \"Jane Doe\"}}" \
  "$EDGE/v1/$SP/topup") || code=000
[ "$code" = 202 ] || die "POST /v1/$SP/topup answered $code: $(head -c 300 "$WORK/request.json")"
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["topupId"])' "$WORK/request.json")
ok "top-up request $ID accepted (202)"
curl -fsS "$MNO/admin/messages?to=$DONOR" >"$WORK/messages.json" || die "GET /admin/messages failed"
LINK=$(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["messages"]:
    if m.get("reference") == sys.argv[2]:
        print(m["text"].split()[-1])' "$WORK/messages.json" "$ID")
[[ $LINK == "$EDGE/topup/$SP/$ID?"* ]] || die "no SMS with the donor's link: $(head -c 400 "$WORK/messages.json")"
ok "the operator was asked to send the donor an SMS with the signed link"

# ---- the page in the browser ----
BEFORE=$(main_balance) || die "accountInfo failed"
browser --dump-dom "$LINK" >"$WORK/page.html"
grep -q "<h1>Top-up</h1>" "$WORK/page.html" && ok "donor page rendered by chromium" ||
  die "chromium did not render the donor page (see $WORK/page.html, $WORK/chromium.log)"
grep -qF "Ali &amp; Sons" "$WORK/page.html" && ok "the page names the requestor" ||
  bad "the page does not name the requestor"
grep -qi "<script" "$WORK/page.html" && bad "donor page has a script" || ok "donor page has no script"
buttons=$(grep -o 'name="amount"' "$WORK/page.html" | wc -l)
[ "$buttons" = 3 ] && ok "one button per amount (3)" || bad "amount buttons: want 3, got $buttons"

(cd "$WORK" && browser --screenshot="$WORK/page.png" --window-size=412,915 "$LINK" >/dev/null)
if [ -s "$WORK/page.png" ] && [ "$(head -c 8 "$WORK/page.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
  ok "phone screenshot ($(stat -c %s "$WORK/page.png") bytes PNG, 412x915) in the temp dir"
else
  bad "no screenshot (see $WORK/chromium.log)"
fi

# ---- the donor clicks the first amount ----
CLICK_PROFILE=$(mktemp -d "$WORK/profile.XXXXXX")
timeout 90 python3 tests/integration/shop_click.py "$LINK" "$CLICK_PROFILE" \
  "$WORK/chromium.log" "/topup/" >"$WORK/click.json" 2>>"$WORK/chromium.log" ||
  die "clicking an amount in chromium failed (see $WORK/click.json, $WORK/chromium.log)"
read -r METHOD POSTED_URL AMOUNT < <(python3 -c '
import json, sys, urllib.parse as u
c = json.load(open(sys.argv[1]))
amount = u.parse_qs(c.get("postData", "")).get("amount", ["-"])[0]
print(c.get("method", "-"), c.get("url", "-"), amount)' "$WORK/click.json")
if [ "$METHOD" = POST ] && [ "$POSTED_URL" = "$EDGE/topup/$SP/$ID" ] && [ "$AMOUNT" = 100.00 ]; then
  ok "clicking the first amount submitted the form: POST $POSTED_URL (amount $AMOUNT)"
else
  die "clicking did not POST the form: $(head -c 400 "$WORK/click.json")"
fi
python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("text",""))' \
  "$WORK/click.json" >"$WORK/done.txt"
grep -q "CREDITED" "$WORK/done.txt" && ok "the page after the click says CREDITED" ||
  bad "the page after the click: $(head -c 300 "$WORK/done.txt")"
AFTER=$(main_balance) || die "accountInfo failed"
if python3 -c 'import sys; sys.exit(0 if round(float(sys.argv[2]) - float(sys.argv[1]), 2) == 100.0 else 1)' "$BEFORE" "$AFTER"; then
  ok "the requestor's balance grew by 100.00 ($BEFORE -> $AFTER)"
else
  bad "the requestor's balance: $BEFORE -> $AFTER, want +100.00"
fi
state=$(curl -fsS "$EDGE/v1/$SP/topup/$ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[ "$state" = CREDITED ] && ok "GET /v1/$SP/topup/$ID: CREDITED" || bad "status after the click: $state"

stack_alive || bad "a program died during the test"
