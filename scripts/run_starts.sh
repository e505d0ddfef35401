#!/usr/bin/env bash
# Start-up check: starts the stack with scripts/run.sh N times (default 20)
# on fresh data directories, waits for "Millom is running", stops it with
# SIGTERM (as Ctrl-C does) and counts the starts that crashed or where a
# program never became ready. Usage: make build && scripts/run_starts.sh [N]
# (uses make run's ports, so not while `make run` is up).
cd "$(dirname "$0")/.."
N=${1:-20}
ok=0; bad=0
for i in $(seq 1 "$N"); do
  d=$(mktemp -d /tmp/millom-start-XXXX)
  MILLOM_DATA_DIR=$d/data MILLOM_LOG_DIR=$d/log MILLOM_BROKER_FILE=$d/broker.bootstrap \
    scripts/run.sh > $d/out.txt 2>&1 &
  pid=$!
  started=0
  for _ in $(seq 1 300); do
    grep -q "Millom is running" $d/out.txt && { started=1; break; }
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM $pid 2>/dev/null; wait $pid
  if [ $started = 1 ] && ! grep -qiE "segmentation|exited|did not become ready" $d/out.txt && ! grep -qi "segmentation\|sanitizer" $d/log/*.log; then
    ok=$((ok+1)); rm -rf $d
  else
    bad=$((bad+1)); echo "start $i failed: $d"; tail -5 $d/out.txt
  fi
done
echo "make run starts: $ok passed, $bad failed"
