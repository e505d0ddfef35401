#!/usr/bin/env bash
# The Postman collection (docs/postman/) run by newman against a stack of
# its own, in both profiles: the sandbox profile with the make-run
# environment, then the secure profile (OAuth on every call, tokens from
# the collection's pre-request script) with the make-run-secure
# environment. Only baseUrl, spSandboxUrl and mnoSandboxUrl are changed
# (--env-var) to point at this stack, so what passes here is what a user
# runs against `make run`. Fails on any failed assertion or request error,
# on a request of the collection that never ran, and when the secure run
# fetched more than one token per client (the pre-request script caches
# them).
#
# Stacks: tests/lib/stack.sh, a fresh data dir each, sandbox on ports
# 22200..22206 and secure on 22210..22216 (POSTMAN_BASE_PORT moves both).
# newman comes from tools/node (npm ci by scripts/deps.sh); when it is
# missing the test runs scripts/deps.sh, and FAILS (never skips) if newman
# is still missing. Run by scripts/test.sh; BUILD names the build tree,
# MILLOM_KEEP_TEST_DIR=1 keeps the temp dir (logs, newman's JSON reports).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BASE=${POSTMAN_BASE_PORT:-22200}
NEWMAN=tools/node/node_modules/.bin/newman
COLLECTION=docs/postman/millom-sandbox.postman_collection.json

TEST_NAME=postman
WORK=$(mktemp -d /tmp/millom-postman.XXXXXX)
# shellcheck source=tests/lib/shell_test.sh
. tests/lib/shell_test.sh

# ---- newman ----
if [ ! -x "$NEWMAN" ]; then
  echo "newman is missing; installing it (scripts/deps.sh: npm ci --prefix tools/node)"
  scripts/deps.sh || die "could not install newman (scripts/deps.sh failed)"
fi
[ -x "$NEWMAN" ] || die "newman is not installed in tools/node and could not be installed"
ok "newman $("$NEWMAN" --version)"

# Timeouts and deadlines: the collection checks answers, not latency. On a
# fresh stack built with ThreadSanitizer, on a busy machine, the first query
# took longer than its 3 s deadline (503 instead of the balance); a backend
# call over 2 s is a 503 too, a purchase over 8 s a 202 instead of 200, and
# a notification whose offers take over 2 s comes without offers.
SLOW_MACHINE_TIMEOUTS=(MILLOM_QUERY_DEADLINE_MS=15000 MILLOM_BACKEND_TIMEOUT_MS=10000
                       MILLOM_PURCHASE_DEADLINE_MS=25000 MILLOM_ACTIVATE_TIMEOUT_MS=15000
                       MILLOM_NOTIFY_OFFERS_TIMEOUT_MS=10000)

# PROFILE ENVIRONMENT_FILE BASE_PORT TOKEN_FETCHES: starts a stack, runs the
# collection, checks newman's JSON report, stops the stack.
run_profile() {
  local profile=$1 environment=$2 base=$3 token_fetches=$4
  local dir=$WORK/$profile
  mkdir -p "$dir"
  stack_start "$base" "$dir" "$profile" "${SLOW_MACHINE_TIMEOUTS[@]}" ||
    die "the $profile stack did not start"
  ok "$profile stack ready on $base..$((base + 6))"
  # 300 s bounds a run that hangs; a green one takes seconds.
  timeout 300 "$NEWMAN" run "$COLLECTION" -e "$environment" \
    --env-var "baseUrl=$STACK_EDGE" --env-var "spSandboxUrl=$STACK_SP" \
    --env-var "mnoSandboxUrl=$STACK_MNO" \
    --timeout-request 30000 --color off --disable-unicode \
    --reporters cli,json --reporter-json-export "$dir/newman.json" | tee "$dir/newman.txt"
  if [ "${PIPESTATUS[0]}" = 0 ]; then
    ok "$profile: newman passed"
  else
    bad "$profile: newman failed (its report is above)"
  fi
  # Token requests, the collection's own ("Get a token") and those of the
  # pre-request script: newman's report lists every request sent.
  local tokens
  tokens=$(grep -c "POST $STACK_EDGE/oauth/v1/token " "$dir/newman.txt")
  if [ "$tokens" = $((token_fetches + 1)) ]; then
    ok "$profile: $tokens token requests (\"Get a token\" and $token_fetches by the pre-request script)"
  else
    bad "$profile: $tokens token requests, want $((token_fetches + 1)): \"Get a token\" and one per client"
  fi
  # The JSON report says more than newman's exit status: every request of
  # the collection ran, and assertions were made.
  if python3 - "$COLLECTION" "$dir/newman.json" <<'PY'; then
import json, sys
collection, report = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def requests(items):
    for i in items:
        yield from requests(i["item"]) if "item" in i else [i]
want = {i["id"]: i["name"] for i in requests(collection["item"])}
run = report["run"]
ran = {e["item"]["id"] for e in run["executions"]}
problems = ["never ran: " + n for i, n in want.items() if i not in ran]
stats = run["stats"]
if stats["assertions"]["total"] < len(want):
    problems.append("only %d assertions for %d requests" % (stats["assertions"]["total"], len(want)))
for k in ("assertions", "requests", "testScripts", "prerequestScripts"):
    if stats[k]["failed"]:
        problems.append("%d %s failed" % (stats[k]["failed"], k))
if run["failures"]:
    problems.append("%d failures" % len(run["failures"]))
print("%d requests, %d assertions" % (len(want), stats["assertions"]["total"]))
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
    ok "$profile: every request ran, every assertion passed"
  else
    bad "$profile: newman's report shows problems (above)"
  fi
  stack_alive || bad "$profile: a program died during the run"
  stack_stop || bad "$profile: a program exited badly (its log is above; all logs in $dir)"
}

# The secure run's clients: the provider (sp-demo), the other provider
# (other-demo, the CPID presented by another provider) and the operator
# (tp-demo): three token requests for the whole run.
run_profile sandbox docs/postman/make-run.postman_environment.json "$BASE" 0
run_profile secure docs/postman/make-run-secure.postman_environment.json $((BASE + 10)) 3
