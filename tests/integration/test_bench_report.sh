#!/usr/bin/env bash
# bench/report.py: the share of the box left idle while a closed-loop
# scenario ran (scripts/bench.sh writes box.tsv: scenario, run, busy, idle
# and steal ticks of /proc/stat around each wrk run). Fed two wrk outputs
# and their box ticks, the report must print the idle share of both runs
# together in the scenario table and keep it, and the steal share, in its
# JSON; without box.tsv (an older work dir) the column shows "-" and the
# JSON has no share. The pipeline benches' runs are combined by their
# median ratio, with every run's errors counted. No bench runs here: the
# inputs are written by hand.
set -uo pipefail
cd "$(dirname "$0")/../.."
report=bench/report.py
fail=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wrk_output() { # rps
  cat <<EOF
Running 10s test @ http://127.0.0.1:28080/
  Latency Distribution
     50%    6.50ms
     75%    8.00ms
     90%   10.00ms
     99%   15.00ms
  $(($1 * 10)) requests in 10.00s, 1.00MB read
Requests/sec:   $1.00
Transfer/sec:      1.00MB
EOF
}
wrk_output 7000 >"$tmp/miss.1.txt"
wrk_output 7200 >"$tmp/miss.2.txt"
printf 'balance_miss\t/balance cache miss\thttp://x/\t%s\n' "$tmp/miss.1.txt" "$tmp/miss.2.txt" \
  >"$tmp/manifest.tsv"
printf 'api-edge\t1\t16000\t16500\tmillom\t5000\t11000\n' >"$tmp/rss.tsv"
echo '{"runs": 2, "threads": 2, "connections": 50, "seconds": 10, "clk_tck": 100}' \
  >"$tmp/settings.json"
# Run 1: 800 busy, 150 idle, 50 steal; run 2: 900 busy, 150 idle, 0 steal.
# Together: 300 idle and 50 steal of 2,050 ticks.
printf 'balance_miss\t1\t800\t150\t50\nbalance_miss\t2\t900\t150\t0\n' >"$tmp/box.tsv"

# Runs the report with box ticks from $2 and checks the miss row's idle
# column ($3: a regex for its end) and the JSON's idle and steal shares ($4).
check_report() { # case box.tsv row-end shares
  local out=$tmp/$1.json text=$tmp/$1.txt got
  if ! python3 "$report" "$tmp/manifest.tsv" "$tmp/rss.tsv" "$tmp/settings.json" "$out" \
    --box "$2" >"$text"; then
    echo "FAIL ($1): report.py exited non-zero"
    cat "$text"
    fail=1
    return
  fi
  if ! grep -Eq '^scenario .* idle %$' "$text"; then
    echo "FAIL ($1): the scenario table has no idle % column"
    fail=1
  fi
  if ! grep -Eq "^/balance cache miss +7100 .* $3\$" "$text"; then
    echo "FAIL ($1): the miss row should end with an idle column of '$3':"
    grep '^/balance' "$text"
    fail=1
  fi
  got=$(python3 -c '
import json, sys
sc = json.load(open(sys.argv[1]))["scenarios"]["balance_miss"]
print(sc.get("box_idle_share"), sc.get("box_steal_share"))' "$out")
  if [ "$got" != "$4" ]; then
    echo "FAIL ($1): JSON idle and steal shares: want $4, got $got"
    fail=1
  fi
}

# 300 / 2050 = 14.6% idle, printed without decimals; 50 / 2050 steal.
check_report with-box "$tmp/box.tsv" 15 "0.146 0.024"
# An older work dir without box.tsv: the same report, no share.
check_report without-box "$tmp/missing.tsv" - "None None"

# The pipeline benches run several times, each next to a baseline of its
# own; their runs are combined by bench/report.py (combine_settlement_runs,
# combine_notify_runs) and the report's ratio must be the median run's.
# Settlement: ratios 0.30, 0.20, 0.25 -> the 0.25 run's figures.
python3 - "$tmp/settlement.json" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from report import combine_settlement_runs
def run(settled_rate, kcat_rate, settled=100000):
    return {"events": 100000, "settled": settled, "settled_records_per_s": settled_rate,
            "kcat_consume_events_per_s": kcat_rate, "published_records_per_s": settled_rate,
            "ratio_settled_vs_kcat": round(settled_rate / kcat_rate, 3), "cpu": {}}
runs = [run(30000, 100000), run(20000, 100000, settled=99990), run(25000, 100000)]
json.dump(combine_settlement_runs(runs), open(sys.argv[1], "w"))
PY
# Notifications: ratios 0.20, 0.40, 0.30, 0.10 (an even count: the lower
# middle, 0.20); run 4 lost two events and its baseline had a socket error.
python3 - "$tmp/notify.json" <<'PY'
import json, sys
sys.path.insert(0, "bench")
from report import combine_notify_runs
def run(rate, base, missing=0, socket_errors=0, problems=()):
    return {"events": 6000, "events_per_s": rate, "ratio": round(rate / base, 4),
            "delivered": 6000 - missing, "missing": missing, "duplicate_deliveries": 0,
            "events_with_several_delivery_ids": 0, "deliveries_without_id": 0, "non200": 0,
            "distinct_delivery_ids": 6000 - missing, "delay_ms": {"p50": 1, "p99": 2},
            "baseline": {"rps": base, "non2xx": 0, "socket_errors": socket_errors},
            "problems": list(problems)}
runs = [run(1000, 5000), run(2000, 5000), run(1500, 5000),
        run(500, 5000, missing=2, socket_errors=1, problems=["2 of 6000 events not delivered"])]
json.dump(combine_notify_runs(runs), open(sys.argv[1], "w"))
PY
# Both results carry a failure (a run settled too few, a run lost events),
# so the report must fail (exit 3) and name them.
rc=0
python3 "$report" "$tmp/manifest.tsv" "$tmp/rss.tsv" "$tmp/settings.json" "$tmp/pipe.json" \
  --settlement "$tmp/settlement.json" --notify "$tmp/notify.json" >"$tmp/pipe.txt" || rc=$?
if [ "$rc" = 3 ] && grep -q '^FAILED: notifications: run 4: 2 of 6000 events not delivered$' \
  "$tmp/pipe.txt" && grep -q '^FAILED: settlement: settled 99990 of 100000 events$' "$tmp/pipe.txt"; then
  got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["label"]: x for x in d["ratios"]}
n = json.load(open(sys.argv[2]))
s = json.load(open(sys.argv[3]))
print(round(r["settlement"]["ratio"], 3), round(r["notifications"]["ratio"], 3),
      r["notifications"]["errors"], s["settled"], len(s["runs"]), n["missing"], n["valid"],
      "|".join(n["problems"]))' "$tmp/pipe.json" "$tmp/notify.json" "$tmp/settlement.json")
  want="0.25 0.2 3 99990 3 2 False run 4: 2 of 6000 events not delivered"
  if [ "$got" != "$want" ]; then
    echo "FAIL (pipeline runs): want '$want', got '$got'"
    fail=1
  fi
else
  echo "FAIL (pipeline runs): report.py should exit 3 naming both failures; it exited $rc:"
  cat "$tmp/pipe.txt"
  fail=1
fi

[ "$fail" = 0 ] && echo "PASS bench report: idle share of the box per scenario; pipeline runs by their median"
exit "$fail"
