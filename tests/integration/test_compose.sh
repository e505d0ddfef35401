#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   1. `docker-compose config` accepts compose.yaml;
#   2. (the topics of docker/create-topics.sh: tests/unit/test_shared_topics.c);
#   3. every program under services/ (but devbroker and millomctl, which are
#      no deployed services) has a compose service and a Dockerfile target;
#   4. every service gets every key and MILLOM_PROFILE=production;
#   5. Kafka is a trust boundary: compose refuses to start without every
#      Kafka principal's password; every Millom program that reaches Kafka
#      authenticates (SASL) as its own principal; the broker denies what no
#      ACL allows; docker/kafka-acls.sh grants mno only WRITE on
#      millom.subscriber.events, analyst only READ on the settlement topics,
#      every other principal the topics its code names; and X-MSISDN is
#      trusted from one /32, the gateway's fixed address on its network.
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

# Kafka passwords have no default (check 5): these stand in for the .env.
kafka_password_vars=$(grep -oE '\$\{MILLOM_KAFKA_[A-Z_]+_PASSWORD' compose.yaml | tr -d '${' | sort -u)
for v in $kafka_password_vars; do export "$v=test-${v,,}-0123456789"; done

# 1. The compose file is valid (other variables unset: their defaults apply).
out=$(docker-compose -f compose.yaml config -q 2>&1)
rc=$?
[ -n "$out" ] && echo "$out"
check "docker-compose config accepts compose.yaml" "$rc"

# 2. Topics: docker/create-topics.sh against the registry (shared/plumbing/topics.h,
#    which devbroker creates from) is checked by tests/unit/test_shared_topics.c.

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
#    gets every key (shared/contracts/keys.c) from the environment, so none is ever a
#    sandbox default and a missing one stops it (named in its log).
config=$(docker-compose -f compose.yaml config 2>/dev/null)
missing=()
key_names=$(grep -oE '"MILLOM_[A-Z_]+_KEY"' shared/contracts/keys.c | tr -d '"' | sort -u)
[ -n "$key_names" ] || missing+=("(could not read the key names of shared/contracts/keys.c)")
for s in offer-resolver purchase-executor notifier settlement-reporter api-edge mno-sandbox; do
  block=$(awk -v s="  $s:" '$0 == s {on=1; next} on && /^  [a-z0-9-]+:$/ {on=0} on' <<<"$config")
  grep -q "MILLOM_PROFILE: production" <<<"$block" || missing+=("$s: MILLOM_PROFILE")
  for k in $key_names; do grep -q "$k:" <<<"$block" || missing+=("$s: $k"); done
done
check "every service gets every key and the production profile" "${#missing[@]}" "${missing[*]}"

# 5. Kafka security.
# 5a. Without any one principal's password, compose refuses to start and
#     names the variable (no usable default, whatever the profile).
missing=()
principals=$(bash -c '. docker/kafka-principals.sh; echo $MILLOM_KAFKA_PRINCIPALS')
[ -n "$principals" ] || missing+=("(could not read docker/kafka-principals.sh)")
for p in $principals; do
  v=$(bash -c ". docker/kafka-principals.sh; principal_password_var $p")
  grep -qx "$v" <<<"$kafka_password_vars" || { missing+=("$v is not in compose.yaml"); continue; }
  out=$(env -u "$v" docker-compose -f compose.yaml config -q 2>&1) &&
    missing+=("compose starts without $v")
  grep -q "$v" <<<"$out" || missing+=("the refusal does not name $v")
done
grep -qE 'MILLOM_KAFKA_[A-Z_]+_PASSWORD:-' compose.yaml && missing+=("a Kafka password has a default")
check "compose refuses to start without any Kafka password ($(wc -w <<<"$principals") principals)" \
  "${#missing[@]}" "${missing[*]}"

# 5b-5d: compose's rendered configuration, the ACL list and the tenants.
config=$(docker-compose -f compose.yaml --profile tools --profile edge2 config 2>/dev/null)
acls=$(bash docker/kafka-acls.sh --print 2>&1)
out=$(CONFIG="$config" ACLS="$acls" PRINCIPALS="$principals" python3 - <<'PY'
import ipaddress, json, os, re, glob
import yaml

cfg = yaml.safe_load(os.environ["CONFIG"])
principals = os.environ["PRINCIPALS"].split()
acls = {}
for line in os.environ["ACLS"].splitlines():
    who, _, args = line.partition("|")
    acls.setdefault(who, []).append(args)
problems = {"auth": [], "acl": [], "gateway": []}

# 5b. Every compose service that reaches Kafka authenticates as its own
#     principal (never admin), with a password; every program under
#     services/ that makes Kafka clients has such a compose service.
users = {}
for name, svc in cfg["services"].items():
    env = svc.get("environment") or {}
    if "KAFKA_BOOTSTRAP" not in env:
        continue
    if "/millom/kafka-init.sh" in (svc.get("entrypoint") or []):
        # The init job: the super user admin (docker/kafka-init.sh).
        if not env.get("MILLOM_KAFKA_ADMIN_PASSWORD"):
            problems["auth"].append(f"{name}: no MILLOM_KAFKA_ADMIN_PASSWORD")
        continue
    proto = (env.get("KAFKA_SECURITY_PROTOCOL") or "").lower()
    user = env.get("KAFKA_SASL_USERNAME")
    if proto not in ("sasl_plaintext", "sasl_ssl"):
        problems["auth"].append(f"{name}: KAFKA_SECURITY_PROTOCOL={proto or '(unset)'}")
    if not user:
        problems["auth"].append(f"{name}: no KAFKA_SASL_USERNAME")
        continue
    if user == "admin" or user not in principals:
        problems["auth"].append(f"{name}: principal {user} is not a service principal")
    if not (env.get("KAFKA_SASL_PASSWORD") or env.get("KAFKA_SASL_PASSWORD_FILE")):
        problems["auth"].append(f"{name}: no KAFKA_SASL_PASSWORD")
    users[name] = user
for d in sorted(glob.glob("services/*/")):
    prog = d.split("/")[1]
    if prog == "devbroker":
        continue  # the development broker, never deployed
    code = "".join(open(f).read() for f in glob.glob(d + "*.[ch]"))
    if not re.search(r"runner_main|kafka_producer_new|kafka_conf_common|kafka_consumer_new", code):
        continue
    svcs = [n for n, svc in cfg["services"].items()
            if n == prog or str(svc.get("image", "")).startswith(f"millom/{prog}:")]
    if not svcs:
        problems["auth"].append(f"{prog} makes Kafka clients but has no compose service")
    for n in svcs:
        if n not in users:
            problems["auth"].append(f"{n} ({prog}) has no Kafka principal")

# 5c. ACLs: the broker denies by default; admin is the only super user;
#     mno and analyst exactly as the threat model says; every principal
#     has ACLs, none on a wildcard; each service principal is granted the
#     topics its code names; every ACL's topic is created.
start = open("docker/kafka-start.sh").read()
for need in ("allow.everyone.if.no.acl.found=false",
             "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "super.users=User:admin\n"):
    if need not in start:
        problems["acl"].append(f"kafka-start.sh lacks {need.strip()}")
if re.search(r"PLAINTEXT://|:PLAINTEXT\b", start):
    problems["acl"].append("kafka-start.sh has an unauthenticated listener")
if acls.get("mno") != ["--operation WRITE --topic millom.subscriber.events"]:
    problems["acl"].append(f"mno: {acls.get('mno')}")
settle = {"millom.settlement.records", "millom.settlement.reports"}
an = acls.get("analyst", [])
an_topics = {a.split()[-1] for a in an if "--topic" in a}
if an_topics != settle or any(not a.startswith("--operation READ ") for a in an):
    problems["acl"].append(f"analyst: {an}")
for p in principals:
    if p != "admin" and not acls.get(p):
        problems["acl"].append(f"{p} has no ACL")
for p in acls:
    if p not in principals:
        problems["acl"].append(f"ACLs for unknown principal {p}")
    for a in acls[p]:
        if "*" in a or ("--topic" in a and "prefixed" in a) or "--operation ALL" in a.upper():
            problems["acl"].append(f"{p}: too broad: {a}")
created = open("docker/create-topics.sh").read()
consumed = re.search(r"consumed_topics=\((.*?)\)", created, re.S).group(1).split()
known = set(consumed) | {t + ".dlq" for t in consumed} | set(re.findall(r"millom\.[a-z.]+", created))
for p, lines in acls.items():
    for a in lines:
        m = re.search(r"--topic (\S+)", a)
        if m and m.group(1) not in known:
            problems["acl"].append(f"{p}: {m.group(1)} is not created by create-topics.sh")
# The programs name topics by the macros of shared/plumbing/topics.h.
topic_names = dict(re.findall(r'#define (TOPIC_[A-Z_]+)[\s\\]+"(millom\.[a-z.]+)"',
                              open("shared/plumbing/topics.h").read()))
if len(topic_names) < 15:
    problems["acl"].append("cannot read the topic names of shared/plumbing/topics.h")
for prog in ("api-edge", "offer-resolver", "purchase-executor", "notifier", "settlement-reporter"):
    code = "".join(open(f).read() for f in glob.glob(f"services/{prog}/*.[ch]"))
    named = set(re.findall(r'"(millom\.[a-z.]+)"', code)) - {"millom.mgmt.read"}
    named |= {topic_names[m] for m in re.findall(r"\bTOPIC_[A-Z_]+\b", code) if m in topic_names}
    granted = {a.split()[-1] for a in acls.get(prog, []) if "--topic" in a}
    for t in sorted(named - granted):
        problems["acl"].append(f"{prog} uses {t} but has no ACL for it")

# 5d. X-MSISDN: every operator's trusted range is one /32, the fixed
#     address of one service on a compose network with a fixed subnet that
#     api-edge is on too (and nothing else).
tenants = json.load(open("docker/tenants.compose.json"))
nets = cfg.get("networks") or {}
for op in tenants.get("operators", []):
    cidrs = op.get("cpidClientCidrs", [])
    if not cidrs:
        problems["gateway"].append(f"{op['id']}: no cpidClientCidrs")
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.prefixlen != net.max_prefixlen:
            problems["gateway"].append(f"{op['id']}: {cidr} is not one address")
            continue
        addr = str(net.network_address)
        holders = [(name, nname) for name, svc in cfg["services"].items()
                   for nname, ncfg in (svc.get("networks") or {}).items()
                   if (ncfg or {}).get("ipv4_address") == addr]
        if len(holders) != 1:
            problems["gateway"].append(f"{op['id']}: {addr} is held by {holders or 'no service'}")
            continue
        gw, nname = holders[0]
        ipam = (nets.get(nname) or {}).get("ipam") or {}
        subnets = [c.get("subnet") for c in ipam.get("config", [])]
        if not any(s and ipaddress.ip_address(addr) in ipaddress.ip_network(s) for s in subnets):
            problems["gateway"].append(f"{addr} is not in a fixed subnet of network {nname}")
        members = sorted(n for n, svc in cfg["services"].items()
                         if nname in (svc.get("networks") or {}))
        if "api-edge" not in members:
            problems["gateway"].append(f"api-edge is not on {nname}")
        others = [m for m in members if m not in (gw, "api-edge", "api-edge-2")]
        if others:
            problems["gateway"].append(f"{nname} also holds {others}")

print(json.dumps(problems))
PY
)
for k in auth acl gateway; do
  detail=$(python3 -c 'import json,sys; print("; ".join(json.loads(sys.argv[1])[sys.argv[2]]))' \
    "$out" "$k" 2>/dev/null) || detail="(the check itself failed: $out)"
  case $k in
    auth) name="every Millom Kafka client in compose authenticates (SASL) as its own principal" ;;
    acl) name="Kafka denies by default; mno only writes subscriber.events, analyst only reads settlements, services only their topics" ;;
    gateway) name="X-MSISDN is trusted from one /32: the gateway's fixed address on its own network" ;;
  esac
  check "$name" "$([ -z "$detail" ]; echo $?)" "$detail"
done

# 5e. docker/kafka-start.sh, dry run with stand-ins for Kafka's tools: the
#     broker's properties have SASL on every listener and the authorizer,
#     every principal gets a SCRAM user at format time, nothing prints a
#     password, and a missing password stops it with the variable's name.
tmp=$(mktemp -d)
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "$0 $*" >> "%s/calls"\n' "$tmp" > "$tmp/bin/kafka-storage.sh"
cp "$tmp/bin/kafka-storage.sh" "$tmp/bin/kafka-server-start.sh"
chmod +x "$tmp/bin/"*.sh
missing=()
out=$(CLUSTER_ID=test KAFKA_BIN="$tmp/bin" MILLOM_KAFKA_CONFIG_DIR="$tmp/cfg" \
  bash docker/kafka-start.sh 2>&1) || missing+=("kafka-start.sh failed: $out")
props=$(cat "$tmp/cfg/server.properties" 2>/dev/null)
calls=$(cat "$tmp/calls" 2>/dev/null)
grep -q '^listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT$' <<<"$props" ||
  missing+=("a listener without SASL")
grep -q '^listeners=.*CONTROLLER://localhost:9093' <<<"$props" || missing+=("controller not on loopback")
grep -q '^allow.everyone.if.no.acl.found=false$' <<<"$props" || missing+=("allow.everyone.if.no.acl.found")
for p in $principals; do
  grep -q -- "--add-scram SCRAM-SHA-512=\[name=$p,password=" <<<"$calls" || missing+=("no SCRAM user $p")
done
grep -q 'kafka-server-start.sh .*/server.properties' <<<"$calls" || missing+=("the server is not started")
for v in $kafka_password_vars; do
  grep -qF -- "${!v}" <<<"$out" && missing+=("kafka-start.sh printed $v")
done
[ "$(stat -c %a "$tmp/cfg/server.properties" 2>/dev/null)" = 600 ] || missing+=("server.properties is not 0600")
out=$(env -u MILLOM_KAFKA_NOTIFIER_PASSWORD CLUSTER_ID=test KAFKA_BIN="$tmp/bin" \
  MILLOM_KAFKA_CONFIG_DIR="$tmp/cfg2" bash docker/kafka-start.sh 2>&1) &&
  missing+=("kafka-start.sh starts without MILLOM_KAFKA_NOTIFIER_PASSWORD")
grep -q MILLOM_KAFKA_NOTIFIER_PASSWORD <<<"$out" || missing+=("the refusal does not name the variable")
rm -rf "$tmp"
check "kafka-start.sh: SASL listeners, authorizer, a SCRAM user per principal, passwords required" \
  "${#missing[@]}" "${missing[*]}"

echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
