#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   1. `docker-compose config` accepts compose.yaml;
#   2. (the topics of docker/create-topics.sh: tests/unit/test_shared_topics.c);
#   3. every program under services/ (but devbroker and millomctl, which are
#      no deployed services) has a compose service and a Dockerfile target;
#      the api-edge image has the OpenAPI file it serves;
#   4. every service gets every key and MILLOM_PROFILE=production;
#   5. Kafka is a trust boundary: compose refuses to start without every
#      Kafka principal's password; every Millom program that reaches Kafka
#      authenticates (SASL) as its own principal; the broker denies what no
#      ACL allows; docker/kafka-acls.sh grants mno only WRITE on
#      millom.subscriber.events, analyst only READ on the settlement topics,
#      every other principal the topics its code names; and X-MSISDN is
#      trusted from one /32, the gateway's fixed address on its network;
#   6. the production-shaped Kafka (compose.kafka-cluster.yaml over
#      compose.yaml): valid, three KRaft nodes in one quorum, replication 3
#      and min.insync.replicas=2 for the internal topics and every Millom
#      topic (dry runs of kafka-start.sh and create-topics.sh), every Kafka
#      client on every broker; the single node's shape likewise with 1;
#   7. the observability profile in both shapes: Prometheus scrapes every
#      Millom program on its health check's port; pinned images on the
#      host's loopback (tests/integration/test_observability_config.sh
#      checks the rules and dashboards themselves).
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

# api-edge serves schemas/openapi/millom-extensions.yaml (GET
# /openapi/millom-extensions.yaml) from MILLOM_OPENAPI_FILE, by default that
# path relative to its working directory: its image must have the file at
# /app/<that path> (the Dockerfile's WORKDIR), and compose must not point
# elsewhere.
openapi_default=$(grep -oE '"MILLOM_OPENAPI_FILE", *"[^"]+"' services/api-edge/main.c | sed 's/.*, *"//; s/"$//')
edge_stage=$(awk '/^FROM / {on = ($0 ~ / AS api-edge$/)} on' docker/Dockerfile)
missing=()
[ -n "$openapi_default" ] || missing+=("(no MILLOM_OPENAPI_FILE default in services/api-edge/main.c)")
[ -f "$openapi_default" ] || missing+=("$openapi_default is not in the repository")
grep -q '^WORKDIR /app$' docker/Dockerfile || missing+=("the runtime image's WORKDIR is not /app")
grep -qE "^COPY $openapi_default /app/$openapi_default\$" <<<"$edge_stage" ||
  missing+=("the api-edge target does not COPY $openapi_default to /app/$openapi_default")
docker-compose -f compose.yaml config 2>/dev/null | grep -q MILLOM_OPENAPI_FILE &&
  missing+=("compose.yaml sets MILLOM_OPENAPI_FILE (the image's default is the file it has)")
check "the api-edge image has the OpenAPI file it serves" "${#missing[@]}" "${missing[*]}"

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

# 6. The production-shaped Kafka (compose.kafka-cluster.yaml over
#    compose.yaml): three KRaft nodes in one quorum, replication factor 3
#    and min.insync.replicas=2 on the internal topics and every Millom
#    topic, every Kafka client bootstrapping from the three.
CLUSTER=(-f compose.yaml -f compose.kafka-cluster.yaml)
out=$(docker-compose "${CLUSTER[@]}" config -q 2>&1)
rc=$?
[ -n "$out" ] && echo "$out"
check "docker-compose config accepts compose.yaml + compose.kafka-cluster.yaml" "$rc"
declare -A rendered=(
  [single]=$(docker-compose -f compose.yaml --profile tools --profile edge2 config 2>/dev/null)
  [cluster]=$(docker-compose "${CLUSTER[@]}" --profile tools --profile edge2 config 2>/dev/null)
)
for shape in single cluster; do
  out=$(SHAPE=$shape CONFIG="${rendered[$shape]}" python3 - <<'PY'
import os, yaml
shape, cfg = os.environ["SHAPE"], yaml.safe_load(os.environ["CONFIG"])
svcs = cfg["services"]
want_rf, want_isr = (3, 2) if shape == "cluster" else (1, 1)
problems = []
brokers = {n: s for n, s in svcs.items()
           if "/millom/kafka-start.sh" in (s.get("entrypoint") or [])}
if len(brokers) != (3 if shape == "cluster" else 1):
    problems.append(f"{len(brokers)} brokers: {sorted(brokers)}")
ids, host_ports, volumes, voters = set(), set(), set(), set()
for n, s in brokers.items():
    env = s.get("environment") or {}
    ids.add(str(env.get("MILLOM_KAFKA_NODE_ID", 1)))
    host_ports.add(str(env.get("MILLOM_KAFKA_HOST_PORT", 29092)))
    voters.add(env.get("MILLOM_KAFKA_QUORUM_VOTERS", "1@localhost:9093"))
    volumes |= {v.split(":")[0] if isinstance(v, str) else v.get("source")
                for v in s.get("volumes", []) if "/var/lib/kafka/data" in str(v)}
    if str(env.get("MILLOM_KAFKA_ADVERTISED_HOST", "kafka")) != n:
        problems.append(f"{n} advertises {env.get('MILLOM_KAFKA_ADVERTISED_HOST', 'kafka')}")
    for var, want in (("MILLOM_KAFKA_REPLICATION_FACTOR", want_rf),
                      ("MILLOM_KAFKA_MIN_INSYNC_REPLICAS", want_isr)):
        if str(env.get(var, 1)) != str(want):
            problems.append(f"{n}: {var}={env.get(var, '(unset: 1)')}, want {want}")
for what, got in (("node ids", ids), ("host ports", host_ports), ("data volumes", volumes)):
    if len(got) != len(brokers):
        problems.append(f"{what} not one per broker: {sorted(map(str, got))}")
if shape == "cluster":
    if len(voters) != 1:
        problems.append(f"brokers disagree on the quorum: {voters}")
    else:
        quorum = {v.split("@")[0]: v.split("@")[1].split(":")[0] for v in voters.pop().split(",")}
        named = {str((s.get("environment") or {}).get("MILLOM_KAFKA_NODE_ID")): n
                 for n, s in brokers.items()}
        if quorum != named:
            problems.append(f"quorum {quorum} is not the brokers {named}")
env = svcs["create-topics"].get("environment") or {}
if str(env.get("MILLOM_REPLICATION_FACTOR")) != str(want_rf):
    problems.append(f"create-topics: MILLOM_REPLICATION_FACTOR={env.get('MILLOM_REPLICATION_FACTOR')}, want {want_rf}")
if shape == "cluster" and str(env.get("MILLOM_MIN_INSYNC_REPLICAS")) != "2":
    problems.append(f"create-topics: MILLOM_MIN_INSYNC_REPLICAS={env.get('MILLOM_MIN_INSYNC_REPLICAS')}, want 2")
for n, s in svcs.items():
    env = s.get("environment") or {}
    if "KAFKA_BOOTSTRAP" not in env:
        continue
    hosts = {h.split(":")[0] for h in str(env["KAFKA_BOOTSTRAP"]).split(",")}
    if hosts != set(brokers):
        problems.append(f"{n}: KAFKA_BOOTSTRAP={env['KAFKA_BOOTSTRAP']} is not every broker")
    deps = s.get("depends_on") or {}
    missing = [b for b in brokers if (deps.get(b) or {}).get("condition") != "service_healthy"]
    if missing:
        problems.append(f"{n} does not wait for {missing}")
print("; ".join(problems))
PY
  )
  check "Kafka shape $shape: brokers, quorum, replication, every client on every broker" \
    "$([ -z "$out" ]; echo $?)" "$out"
done

# 6b. kafka-start.sh as node 2 of three (dry run, stand-ins for Kafka's
#     tools): its id, the quorum's controllers on the network, replication
#     3 and min.insync.replicas 2; min.insync.replicas above the
#     replication factor is refused.
tmp=$(mktemp -d)
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "$0 $*" >> "%s/calls"\n' "$tmp" > "$tmp/bin/kafka-storage.sh"
cp "$tmp/bin/kafka-storage.sh" "$tmp/bin/kafka-server-start.sh"
chmod +x "$tmp/bin/"*.sh
missing=()
out=$(CLUSTER_ID=test KAFKA_BIN="$tmp/bin" MILLOM_KAFKA_CONFIG_DIR="$tmp/cfg" \
  MILLOM_KAFKA_NODE_ID=2 MILLOM_KAFKA_QUORUM_VOTERS=1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093 \
  MILLOM_KAFKA_ADVERTISED_HOST=kafka-2 MILLOM_KAFKA_HOST_PORT=29093 \
  MILLOM_KAFKA_REPLICATION_FACTOR=3 MILLOM_KAFKA_MIN_INSYNC_REPLICAS=2 \
  bash docker/kafka-start.sh 2>&1) || missing+=("kafka-start.sh failed: $out")
props=$(cat "$tmp/cfg/server.properties" 2>/dev/null)
for want in node.id=2 controller.quorum.voters=1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093 \
  listeners=INTERNAL://:9092,HOST://:29093,CONTROLLER://:9093 \
  advertised.listeners=INTERNAL://kafka-2:9092,HOST://localhost:29093 \
  offsets.topic.replication.factor=3 transaction.state.log.replication.factor=3 \
  transaction.state.log.min.isr=2 default.replication.factor=3 min.insync.replicas=2 \
  unclean.leader.election.enable=false; do
  grep -qxF "$want" <<<"$props" || missing+=("no $want")
done
out=$(CLUSTER_ID=test KAFKA_BIN="$tmp/bin" MILLOM_KAFKA_CONFIG_DIR="$tmp/cfg2" \
  MILLOM_KAFKA_REPLICATION_FACTOR=1 MILLOM_KAFKA_MIN_INSYNC_REPLICAS=2 bash docker/kafka-start.sh 2>&1) &&
  missing+=("kafka-start.sh starts with min.insync.replicas above the replication factor")
grep -q MILLOM_KAFKA_MIN_INSYNC_REPLICAS <<<"$out" || missing+=("the refusal does not name the variable")
rm -rf "$tmp"
check "kafka-start.sh as node 2 of 3: quorum, replication 3, min.insync.replicas 2" \
  "${#missing[@]}" "${missing[*]}"

# 6c. create-topics.sh (dry run, stand-ins for kafka-topics.sh and
#     kafka-configs.sh): with replication 3 every topic it creates (dlqs,
#     changelogs and settlement included) has 3 replicas and
#     min.insync.replicas=2; with 1 (the single node), 1 and 1.
tmp=$(mktemp -d)
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "$(basename "$0") $*" >> "%s/calls"\n' "$tmp" > "$tmp/bin/kafka-topics.sh"
cp "$tmp/bin/kafka-topics.sh" "$tmp/bin/kafka-configs.sh"
chmod +x "$tmp/bin/"*.sh
missing=()
for shape in "3 2" "1 1"; do
  read -r rf isr <<<"$shape"
  : >"$tmp/calls"
  out=$(KAFKA_BIN="$tmp/bin" KAFKA_BOOTSTRAP=kafka:9092 MILLOM_REPLICATION_FACTOR=$rf \
    bash docker/create-topics.sh 2>&1) || { missing+=("rf $rf: create-topics.sh failed: $out"); continue; }
  out=$(RF=$rf ISR=$isr python3 - "$tmp/calls" <<'PY'
import os, re, sys
rf, isr = os.environ["RF"], os.environ["ISR"]
created, configured, problems = {}, {}, []
for line in open(sys.argv[1]):
    t = re.search(r"--topic (\S+)", line) or re.search(r"--entity-name (\S+)", line)
    if line.startswith("kafka-topics.sh") and "--create" in line:
        created[t.group(1)] = re.search(r"--replication-factor (\S+)", line).group(1)
    elif line.startswith("kafka-configs.sh"):
        configured[t.group(1)] = re.search(r"--add-config (\S+)", line).group(1)
topics = set(re.findall(r'#define TOPIC_[A-Z_]+[\s\\]+"(millom\.[a-z.]+)"',
                        open("shared/plumbing/topics.h").read()))
for name in sorted(topics - set(created)):
    problems.append(f"{name} is not created")
for name, r in sorted(created.items()):
    if r != rf:
        problems.append(f"{name}: replication factor {r}")
    if f"min.insync.replicas={isr}" not in configured.get(name, "").split(","):
        problems.append(f"{name}: configs {configured.get(name)}")
if len(created) < 25:
    problems.append(f"only {len(created)} topics created")
print("; ".join(problems))
PY
  )
  [ -n "$out" ] && missing+=("rf $rf: $out")
done
out=$(KAFKA_BIN="$tmp/bin" MILLOM_REPLICATION_FACTOR=3 MILLOM_MIN_INSYNC_REPLICAS=4 \
  bash docker/create-topics.sh 2>&1) && missing+=("create-topics.sh accepts min.insync.replicas 4 with 3 replicas")
grep -q MILLOM_MIN_INSYNC_REPLICAS <<<"$out" || missing+=("the refusal does not name the variable")
rm -rf "$tmp"
check "create-topics.sh: every topic with replication 3 and min.insync.replicas 2 (1 and 1 on one node)" \
  "${#missing[@]}" "${missing[*]}"

# 7. The observability profile: compose accepts it in both shapes;
#    Prometheus scrapes exactly the compose services that run a Millom
#    program, each on the port its health check uses; prometheus and
#    grafana run pinned images and publish on the host's loopback only.
missing=()
for files in "compose.yaml" "compose.yaml compose.kafka-cluster.yaml"; do
  args=()
  for f in $files; do args+=(-f "$f"); done
  out=$(docker-compose "${args[@]}" --profile observability config -q 2>&1) || missing+=("$files: $out")
done
config=$(docker-compose -f compose.yaml --profile observability --profile edge2 --profile tools config 2>/dev/null)
out=$(CONFIG="$config" python3 - <<'PY'
import os, re, yaml
cfg = yaml.safe_load(os.environ["CONFIG"])
prom = yaml.safe_load(open("docker/prometheus/prometheus.yml"))
problems = []
jobs = {}
for j in prom["scrape_configs"]:
    for sd in j.get("dns_sd_configs", []):
        for name in sd["names"]:
            jobs[j["job_name"]] = (name, sd["port"])
programs = {}
for n, s in cfg["services"].items():
    if not str(s.get("image", "")).startswith("millom/") or "millomctl" in s["image"]:
        continue
    m = re.search(r"http://127\.0\.0\.1:(\d+)/readyz", " ".join(s["healthcheck"]["test"]))
    programs[n] = int(m.group(1))
for n, port in sorted(programs.items()):
    if jobs.get(n) != (n, port):
        problems.append(f"{n} (port {port}) is scraped as {jobs.get(n)}")
for j in sorted(set(jobs) - set(programs)):
    problems.append(f"job {j} scrapes no compose service")
for n in ("prometheus", "grafana"):
    s = cfg["services"].get(n)
    if not s:
        problems.append(f"no service {n}")
        continue
    if s.get("profiles") != ["observability"]:
        problems.append(f"{n}: profiles {s.get('profiles')}")
    if not re.search(r":v?\d+\.\d+\.\d+$", s.get("image", "")):
        problems.append(f"{n}: image {s.get('image')} is not pinned to a version")
    for p in s.get("ports", []):
        if (p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]) != "127.0.0.1":
            problems.append(f"{n}: port {p} is not on the host's loopback")
print("; ".join(problems))
PY
)
[ -n "$out" ] && missing+=("$out")
check "observability profile: both shapes valid, every program scraped, pinned images on loopback" \
  "${#missing[@]}" "${missing[*]}"

echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
