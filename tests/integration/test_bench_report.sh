#!/usr/bin/env bash
# bench/report.py: the share of the box left idle while a closed-loop
# scenario ran (scripts/bench.sh writes box.tsv: scenario, run, busy, idle
# and steal ticks of /proc/stat around each wrk run). Fed two wrk outputs
# and their box ticks, the report must print the idle share of both runs
# together in the scenario table and keep it, and the steal share, in its
# JSON; without box.tsv (an older work dir) the column shows "-" and the
# JSON has no share. No bench runs here: the inputs are written by hand.
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

[ "$fail" = 0 ] && echo "PASS bench report: idle share of the box per scenario"
exit "$fail"
