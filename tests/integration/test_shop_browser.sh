#!/usr/bin/env bash
# The shop page (issue 6) in a real headless browser, Debian's chromium:
# a signed shop link lists the offers, one <form method="post"> per offer
# and no purchase link (issue 16 item 5), and clicking a "Buy" button in
# the browser (shop_click.py, a mouse click over the DevTools pipe) submits
# the form and buys the offer (the purchase exists in /mgmt afterwards). A
# phone-sized screenshot goes into the temp dir, never into the repository.
#
# Starts its own stack on ports 18980..18986 (SHOP_BROWSER_BASE_PORT moves
# them) through tests/lib/stack.sh (the shell tests' stack.c), with its own
# data dir, broker file and tenants copy, and stops it on exit: services
# first, devbroker last. Installs chromium through
# `BROWSER=1 scripts/deps.sh` when it is missing; if that fails the test
# FAILS (it never skips). Run by scripts/test.sh; BUILD names the build tree
# (build/san there), MILLOM_KEEP_TEST_DIR=1 keeps the temp dir.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
BIN=$BUILD/bin
BASE=${SHOP_BROWSER_BASE_PORT:-18980}
EDGE=http://127.0.0.1:$BASE
SP=testserviceprovider
MSISDN=924542610003

TEST_NAME="shop browser"
WORK=$(mktemp -d /tmp/millom-shop-browser.XXXXXX)
# shellcheck source=tests/lib/browser.sh
. tests/lib/browser.sh

# ---- the stack ----
[ -x "$BIN/millomctl" ] || die "$BIN/millomctl is missing; run make build"
unset MILLOM_LINK_KEY  # the sandbox link key, like the stack (millomctl link signs with it)
stack_start "$BASE" "$WORK" sandbox || die "the stack did not start"
ok "stack ready on $BASE..$((BASE + 6))"

# ---- a CPID and a signed shop link ----
CPID=$(curl -fsS -H "X-MSISDN: $MSISDN" "$EDGE/cpid?app=$SP" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["cpid"])') || die "GET /cpid failed"
[ -n "$CPID" ] || die "no CPID"
ok "CPID for $MSISDN"
SHOP_URL=$("$BIN/millomctl" link --base "$EDGE" --path "/rnf/$SP/tp/$CPID/shop" --ttl 600) ||
  die "millomctl link failed"
OFFERS_URL=$("$BIN/millomctl" link --base "$EDGE" --path "/rnf/$SP/tp/$CPID/offers" --ttl 600) ||
  die "millomctl link failed"
# The offer names the shop must show, from the signed offers link.
curl -fsS "$OFFERS_URL" >"$WORK/offers.json" || die "offers link failed: $OFFERS_URL"
mapfile -t NAMES < <(python3 -c '
import json, sys
for o in json.load(open(sys.argv[1]))["offers"]:
    print(o["planName"][0]["text"])' "$WORK/offers.json")
[ ${#NAMES[@]} -gt 0 ] || die "the offers link lists no offers"

# ---- the shop in the browser ----
browser --dump-dom "$SHOP_URL" >"$WORK/shop.html"
if grep -q "<h1>Offers</h1>" "$WORK/shop.html"; then ok "shop page rendered by chromium"; else
  die "chromium did not render the shop page (see $WORK/shop.html, $WORK/chromium.log)"; fi
python3 - "$WORK/shop.html" "$WORK/shop.names" <<'PY'
import html, re, sys
page = open(sys.argv[1]).read()
# The text of each offer's name paragraph, as the browser's DOM holds it.
names = [html.unescape(n) for n in re.findall(r'<p class="name">(.*?)</p>', page)]
open(sys.argv[2], "w").write("\n".join(names) + "\n")
PY
missing=0
for n in "${NAMES[@]}"; do
  grep -qxF "$n" "$WORK/shop.names" || { bad "shop lacks offer '$n'"; missing=1; }
done
[ "$missing" = 0 ] && ok "shop lists all ${#NAMES[@]} offers (${NAMES[*]})"
grep -q "Daily Social Pack" "$WORK/shop.names" && ok "shop lists Daily Social Pack" ||
  bad "shop lacks Daily Social Pack"
grep -qi "<script" "$WORK/shop.html" && bad "shop page has a script" || ok "shop page has no script"
mapfile -t FORMS < <(python3 - "$WORK/shop.html" <<'PY'
import html, re, sys
for action in re.findall(r'<form method="post" action="([^"]*)"', open(sys.argv[1]).read()):
    print(html.unescape(action))
PY
)
if [ ${#FORMS[@]} = ${#NAMES[@]} ] && [[ ${FORMS[0]} == /rnf/$SP/tp/*/purchasePlan ]]; then
  ok "one purchase form (POST) per offer (${#FORMS[@]})"
else
  die "purchase forms: want ${#NAMES[@]} POST forms to /purchasePlan, got ${#FORMS[@]}: ${FORMS[*]:-none}"
fi
grep -q 'purchasePlan?' "$WORK/shop.html" && bad "shop page still has a purchase link" ||
  ok "shop page has no purchase link"

# Phone-sized screenshot, into the temp dir only.
(cd "$WORK" && browser --screenshot="$WORK/shop.png" --window-size=412,915 "$SHOP_URL" >/dev/null)
if [ -s "$WORK/shop.png" ] && [ "$(head -c 8 "$WORK/shop.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
  ok "phone screenshot ($(stat -c %s "$WORK/shop.png") bytes PNG, 412x915) in the temp dir"
else
  bad "no screenshot (see $WORK/chromium.log)"
fi

# ---- buying through the browser: click the first "Buy" ----
CLICK_PROFILE=$(mktemp -d "$WORK/profile.XXXXXX")
timeout 90 python3 tests/integration/shop_click.py "$SHOP_URL" "$CLICK_PROFILE" \
  "$WORK/chromium.log" >"$WORK/click.json" 2>>"$WORK/chromium.log" ||
  die "clicking Buy in chromium failed (see $WORK/click.json, $WORK/chromium.log)"
read -r METHOD POSTED_URL TRANSID < <(python3 -c '
import json, sys, urllib.parse as u
c = json.load(open(sys.argv[1]))
tid = u.parse_qs(c.get("postData", "")).get("transactionId", ["-"])[0]
print(c.get("method", "-"), c.get("url", "-"), tid)' "$WORK/click.json")
if [ "$METHOD" = POST ] && [[ $POSTED_URL == "$EDGE/rnf/$SP/tp/"*/purchasePlan ]]; then
  ok "clicking Buy submitted the form: POST $POSTED_URL (transactionId $TRANSID)"
else
  die "clicking Buy did not POST the form: $(head -c 400 "$WORK/click.json")"
fi
python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("text",""))' \
  "$WORK/click.json" >"$WORK/buy.html"
if grep -qiE "completed|processing" "$WORK/buy.html"; then
  ok "purchase through the browser answered: $(grep -oiE '"state":"[A-Za-z_]+"|completed|processing' "$WORK/buy.html" | head -1)"
else
  bad "purchase answer says neither completed nor processing: $(head -c 400 "$WORK/buy.html")"
fi
state=
for _ in $(seq 1 50); do
  code=$(curl -sS -o "$WORK/mgmt.json" -w '%{http_code}' "$EDGE/mgmt/tp/purchases/$TRANSID") || code=000
  if [ "$code" = 200 ]; then
    state=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j.get("state") or j.get("status") or "?")' "$WORK/mgmt.json" 2>/dev/null)
    break
  fi
  sleep 0.1
done
if [ -n "$state" ]; then ok "purchase $TRANSID exists in /mgmt (state $state)"; else
  bad "purchase $TRANSID not found in /mgmt: $code $(head -c 300 "$WORK/mgmt.json" 2>/dev/null)"; fi

# Every program is still alive.
stack_alive || bad "a program died during the test"
