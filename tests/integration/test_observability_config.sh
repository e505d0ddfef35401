#!/usr/bin/env bash
# Checks compose's observability profile without a Docker engine
# (README "Observability"):
#   1. promtool check config: docker/prometheus/prometheus.yml (and the rule
#      files it names);
#   2. promtool check rules: docker/prometheus/rules/*.yml;
#   3. promtool test rules: docker/prometheus/tests/*.yml;
#   4. every alert has a test case where it fires and one where it does not;
#   5. the Grafana dashboards: valid JSON, every panel on the provisioned
#      datasource's uid, every query valid PromQL (promtool checks each as a
#      recording rule, with Grafana's $__rate_interval and $__range as 5m);
#   6. the provisioning files point where compose mounts the dashboards.
# Whether the metric names the rules and dashboards use are really exported
# is tests/integration/test_metrics_exported.sh (a running stack).
# promtool comes from Debian's `prometheus` package (scripts/deps.sh); if it
# is missing and cannot be installed, the test FAILS.
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

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool is missing; installing it with scripts/deps.sh"
  scripts/deps.sh || true
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "FAIL promtool is not installed and scripts/deps.sh could not install it" >&2
  echo "observability config: 0 passed, 1 failed"
  exit 1
fi

PROM=docker/prometheus
GRAFANA=docker/grafana
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1-3. promtool.
out=$(promtool check config "$PROM/prometheus.yml" 2>&1)
check "promtool check config $PROM/prometheus.yml" $? "$out"
out=$(promtool check rules "$PROM"/rules/*.yml 2>&1)
check "promtool check rules $PROM/rules/*.yml" $? "$out"
out=$(promtool test rules "$PROM"/tests/*.yml 2>&1)
check "promtool test rules $PROM/tests/*.yml" $? "$out"

# 4. Every alert fires in some test case and stays quiet in another.
out=$(python3 - "$PROM" <<'PY'
import glob, sys, yaml
prom = sys.argv[1]
alerts = [r["alert"] for f in sorted(glob.glob(prom + "/rules/*.yml"))
          for g in yaml.safe_load(open(f))["groups"] for r in g["rules"] if "alert" in r]
fires, quiet = set(), set()
for f in sorted(glob.glob(prom + "/tests/*.yml")):
    for t in yaml.safe_load(open(f)).get("tests", []):
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
problems = []
if len(alerts) < 7:
    problems.append(f"only {len(alerts)} alerts found")
for a in alerts:
    if a not in fires:
        problems.append(f"{a} never fires in a test")
    if a not in quiet:
        problems.append(f"{a} is never tested not to fire")
for a in sorted((fires | quiet) - set(alerts)):
    problems.append(f"tests name {a}, which no rule defines")
print("; ".join(problems))
PY
)
check "every alert has a firing and a non-firing test case" "$([ -z "$out" ]; echo $?)" "$out"

# 5. Dashboards. Each query becomes a recording rule in a scratch rules
#    file, so promtool parses it as Prometheus would.
out=$(python3 - "$GRAFANA" "$tmp/dashboard_rules.yml" <<'PY'
import glob, json, sys, yaml
grafana, rules_out = sys.argv[1:]
ds = yaml.safe_load(open(grafana + "/provisioning/datasources/prometheus.yml"))["datasources"]
uids = {d["uid"] for d in ds}
problems, rules = [], []
files = sorted(glob.glob(grafana + "/dashboards/*.json"))
if not files:
    problems.append("no dashboard in " + grafana + "/dashboards")
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for f in files:
    try:
        d = json.load(open(f))
    except ValueError as e:
        problems.append(f"{f}: not JSON: {e}")
        continue
    if not d.get("uid"):
        problems.append(f"{f}: no uid")
    n = 0
    for p in walk(d.get("panels", [])):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []) or [{}]:
            where = f"{f}: panel {p.get('title')!r}"
            for src in (p.get("datasource"), t.get("datasource")):
                if not isinstance(src, dict) or src.get("uid") not in uids:
                    problems.append(f"{where}: datasource {src} is not one of {sorted(uids)}")
            expr = t.get("expr")
            if not expr:
                problems.append(f"{where}: no query")
                continue
            expr = expr.replace("$__rate_interval", "5m").replace("$__range", "5m")
            if "$" in expr:
                problems.append(f"{where}: a template variable this check cannot stand in for: {expr}")
                continue
            n += 1
            rules.append({"record": f"dashboard_query_{len(rules)}", "expr": expr})
    if n < 10:
        problems.append(f"{f}: only {n} queries")
yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, open(rules_out, "w"))
print("; ".join(problems))
PY
)
check "the dashboards are JSON on the provisioned datasource" "$([ -z "$out" ]; echo $?)" "$out"
out=$(promtool check rules "$tmp/dashboard_rules.yml" 2>&1)
rc=$?
check "every dashboard query is valid PromQL ($(grep -c 'record:' "$tmp/dashboard_rules.yml") queries)" "$rc" "$out"

# 6. The dashboard provider reads the folder compose mounts the dashboards
#    on, and the datasource is compose's prometheus service.
out=$(python3 - "$GRAFANA" <<'PY'
import re, sys, yaml
grafana = sys.argv[1]
problems = []
compose = open("compose.yaml").read()
for p in yaml.safe_load(open(grafana + "/provisioning/dashboards/millom.yml"))["providers"]:
    path = p["options"]["path"]
    if f"./{grafana}/dashboards:{path}:ro" not in compose:
        problems.append(f"compose.yaml does not mount ./{grafana}/dashboards on {path}")
for d in yaml.safe_load(open(grafana + "/provisioning/datasources/prometheus.yml"))["datasources"]:
    if d["url"] != "http://prometheus:9090":
        problems.append(f"datasource {d['name']}: {d['url']} is not compose's prometheus service")
if f"./{grafana}/provisioning:/etc/grafana/provisioning:ro" not in compose:
    problems.append("compose.yaml does not mount the provisioning folder")
print("; ".join(problems))
PY
)
check "Grafana's provisioning matches compose.yaml's mounts" "$([ -z "$out" ]; echo $?)" "$out"

echo "observability config: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
