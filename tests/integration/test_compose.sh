#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   1. `docker-compose config` accepts compose.yaml;
#   2. docker/create-topics.sh creates every topic devbroker creates
#      (services/devbroker/cluster.c), with a .dlq twin for consumed topics;
#   3. every program under services/ (but devbroker and millomctl, which are
#      no deployed services) has a compose service and a Dockerfile target;
#   4. every service gets every key and MILLOM_PROFILE=production.
# Run from the repository root (scripts/test.sh does).
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
check() { # name result(0 ok) [details]
  if [ "$2" -eq 0 ]; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1${3:+: $3}"
    failed=$((failed + 1))
  fi
}

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose is missing; installing it with scripts/deps.sh"
  scripts/deps.sh || true
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "FAIL docker-compose is not installed and scripts/deps.sh could not install it" >&2
  echo "compose: 0 passed, 1 failed"
  exit 1
fi

# 1. The compose file is valid (variables unset: their defaults apply).
out=$(docker-compose -f compose.yaml config -q 2>&1)
rc=$?
[ -n "$out" ] && echo "$out"
check "docker-compose config accepts compose.yaml" "$rc"

# 2. Topics. cluster.c lists consumed_topics (each with a .dlq twin),
#    plain_topics, and millom.replies.
topics_of() { # array name in cluster.c
  awk -v a="$1" '$0 ~ a"\\[\\] = \\{" {on=1; next} on && /};/ {on=0} on' \
    services/devbroker/cluster.c | grep -oE '"millom\.[a-z.]+"' | tr -d '"'
}
consumed=$(topics_of consumed_topics)
plain=$(topics_of plain_topics)
# The consumed_topics=( ... ) block of create-topics.sh.
script_consumed=$(awk '/^consumed_topics=\(/ {on=1; next} on && /^\)/ {on=0} on {print $1}' \
  docker/create-topics.sh)
missing=()
[ -n "$consumed" ] && [ -n "$plain" ] || missing+=("(could not read the topic lists of cluster.c)")
for t in $consumed; do
  grep -qx "$t" <<<"$script_consumed" || missing+=("$t (with .dlq)")
done
for t in $plain millom.replies; do
  grep -qE "(^|[[:space:]])$(sed 's/\./\\./g' <<<"$t")([[:space:]]|$)" docker/create-topics.sh ||
    missing+=("$t")
done
grep -q 'millom.settlement.reports.*cleanup.policy=compact' docker/create-topics.sh ||
  missing+=("millom.settlement.reports is not compacted")
check "create-topics.sh creates every devbroker topic ($(wc -w <<<"$consumed $plain") + replies)" \
  "${#missing[@]}" "${missing[*]}"

# 3. Services: one compose service and one Dockerfile target per program.
services=$(docker-compose -f compose.yaml config --services 2>/dev/null)
missing=()
for d in services/*/; do
  s=$(basename "$d")
  case "$s" in devbroker | millomctl) continue ;; esac
  grep -qx "$s" <<<"$services" || missing+=("$s (compose service)")
  grep -qE "^FROM runtime AS $s\$" docker/Dockerfile || missing+=("$s (Dockerfile target)")
done
check "every program under services/ has a compose service" "${#missing[@]}" "${missing[*]}"

# The compose tenants are the sandbox tenants with container addresses:
# the same operators, providers and clients, so both profiles behave alike.
diff_ids=$(python3 - <<'PY'
import json
a = json.load(open("config/tenants.sandbox.json"))
b = json.load(open("docker/tenants.compose.json"))
for key in ("operators", "serviceProviders", "clients"):
    ids_a = sorted(x["id"] for x in a.get(key, []))
    ids_b = sorted(x["id"] for x in b.get(key, []))
    if ids_a != ids_b:
        print(f"{key}: sandbox {ids_a} vs compose {ids_b}")
PY
)
check "docker/tenants.compose.json has the sandbox's tenants and clients" "$([ -z "$diff_ids" ]; echo $?)" "$diff_ids"

# 4. Keys: every service runs with MILLOM_PROFILE=production by default and
#    gets every key (shared/keys.c) from the environment, so none is ever a
#    sandbox default and a missing one stops it (named in its log).
config=$(docker-compose -f compose.yaml config 2>/dev/null)
missing=()
key_names=$(grep -oE '"MILLOM_[A-Z_]+_KEY"' shared/keys.c | tr -d '"' | sort -u)
[ -n "$key_names" ] || missing+=("(could not read the key names of shared/keys.c)")
for s in offer-resolver purchase-executor notifier settlement-reporter api-edge mno-sandbox; do
  block=$(awk -v s="  $s:" '$0 == s {on=1; next} on && /^  [a-z0-9-]+:$/ {on=0} on' <<<"$config")
  grep -q "MILLOM_PROFILE: production" <<<"$block" || missing+=("$s: MILLOM_PROFILE")
  for k in $key_names; do grep -q "$k:" <<<"$block" || missing+=("$s: $k"); done
done
check "every service gets every key and the production profile" "${#missing[@]}" "${missing[*]}"

echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
