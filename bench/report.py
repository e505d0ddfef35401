#!/usr/bin/env python3
"""Turns the raw wrk outputs of one `make bench` into a table and a JSON file.

scripts/bench.sh runs wrk and saves each run's output verbatim; everything
that interprets numbers lives here, so the shell script stays about starting
and stopping processes. Standard library only.

Usage:
  report.py MANIFEST RSS SETTINGS JSON_OUT [--cpu CPU_TSV]
            [--settlement JSON --settlement-exit N] [--notify JSON --notify-exit N]
            [--kafka-floor JSON --kafka-floor-exit N]

  MANIFEST  TSV: scenario id, label, URL, output file (one line per run): wrk's
            text, or for the fixed-rate runs (*.hey.csv) hey's CSV rows and
            the line "# sent=N wall_ms=MS offered_rps=R" bench.sh adds
  RSS       TSV: program, pid, VmRSS and VmHWM in kB ("-" when unreadable),
            and "millom" (the memory limit applies) or "reference" (it does
            not)
  SETTINGS  JSON object recorded as-is under "settings"
  JSON_OUT  where to write the results (the directory must exist)
  CPU_TSV   TSV: scenario id, run, program, CPU clock ticks used during the
            run (settings' clk_tck converts them to seconds), the run's seconds
  MESSAGES  (--messages) TSV: scenario id, run, messages handled during the run
            (purchases the operator saw); CPU per 1,000 divides by these
            instead of wrk's completed requests
  --settlement / --notify: the JSON written by scripts/bench_settlement.sh
            and scripts/bench_notify.sh, and their exit status; a missing file
            or a non-zero status makes that pipeline's entry invalid
  --kafka-floor: the JSON of scripts/bench_kafka_floor.sh (the Kafka
            request/reply hop alone) and its exit status; set against
            nginx /balance of the same run, with the read path's 0.40 target

Every comparison is one entry of "ratios", labelled (balanceMiss,
upsellOffer, balanceHit, purchasePlan, notifications, settlement,
kafkaFloor): rate and
baseline_rate (per second), ratio, p50/p99 where they apply, errors,
problems, valid, and for the pipelines the CPU seconds per 1,000 messages
of every program.

Exit status: 0 when every scenario and pipeline is valid (no non-2xx
answers, no socket errors, every run parsed, nothing lost or duplicated),
3 otherwise. Missing a performance target is not a failure: the bench
measures, the table says PASS or MISS.
"""
import argparse
import csv
import json
import os
import re
import statistics
import sys
import time

# Targets for the Millom read path (the product's performance budget).
TARGETS = [
    # (scenario, metric, comparison, limit, text)
    ("balance_miss_rate", "p99_ms", "<=", 25.0, "/balance miss, fixed rate: p99 <= 25 ms"),
]

# Millom scenario versus the nginx baseline that makes the same backend call:
# (label, scenario, baseline scenario, text).
RATIOS = [
    ("balanceMiss", "balance_miss", "nginx_balance", "millom balance-miss / nginx balance"),
    ("upsellOffer", "upsell", "nginx_offers", "millom upsellOffer / nginx offers"),
    ("balanceHit", "balance_hit", "nginx_balance", "millom balance-hit / nginx balance"),
    ("purchasePlan", "purchase", "nginx_activate", "millom purchasePlan / nginx activate"),
]

# Scenarios whose CPU per 1,000 requests (or messages) is reported, and the
# baselines next to them.
CPU_SCENARIOS = {"purchase", "nginx_activate", "balance_miss", "balance_hit", "upsell",
                 "nginx_balance", "nginx_offers"}
# Programs of the bench stack that are not Millom (their CPU is reference).
NOT_MILLOM = {"devbroker", "mno-sandbox", "sp-sandbox", "nginx"}

# Goals against the baselines (issue 13: pipelines, issue 14: read path):
# (label, field, comparison, limit, text).
RATIO_TARGETS = [
    ("balanceMiss", "ratio", ">=", 0.40, "/balance miss >= 0.40 of nginx /balance"),
    ("balanceHit", "ratio", ">=", 0.50, "/balance hit >= 0.50 of nginx /balance"),
    ("upsellOffer", "ratio", ">=", 0.40, "upsellOffer >= 0.40 of nginx /offers"),
    ("purchasePlan", "ratio", ">=", 0.20, "purchasePlan >= 0.20 of nginx /activate"),
    ("purchasePlan", "p99_ms", "<=", 500.0, "purchasePlan p99 <= 500 ms"),
    ("notifications", "ratio", ">=", 0.25, "notifications >= 0.25 of direct POSTs"),
    ("settlement", "ratio", ">=", 0.25, "settlement >= 0.25 of kcat"),
]

# The read path's goal against nginx /balance (issue 14), which the Kafka
# request/reply floor (kafkaFloor) is set against: below it, the Kafka hop
# alone leaves no room for the target on this machine.
READ_PATH_TARGET = 0.40

# Peak resident memory (VmHWM) of every Millom program after the runs.
MEMORY_LIMIT_MB = 20.0

# wrk prints times with the unit its formatter picked (us, ms, s, m, h).
TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
# ...and counts sometimes with a metric suffix (e.g. "1.23k requests").
COUNT_SUFFIX = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}

RE_RPS = re.compile(r"^\s*Requests/sec:\s*([0-9.]+)\s*$", re.M)
RE_PCT = r"^\s*{pct}%\s+([0-9.]+)\s*(us|ms|s|m|h)\s*$"
RE_REQUESTS = re.compile(r"^\s*([0-9.]+)([kKMG]?) requests in ", re.M)
RE_NON2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s*(\d+)\s*$", re.M)
RE_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$", re.M)


def parse_wrk(text):
    """Returns the numbers of one wrk --latency run, or raises ValueError."""
    out = {}
    m = RE_RPS.search(text)
    if not m:
        raise ValueError("no 'Requests/sec:' line")
    out["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(RE_PCT.format(pct=pct), text, re.M)
        if not m:
            raise ValueError(f"no '{pct}%' latency line (was wrk run with --latency?)")
        out[f"p{pct}_ms"] = float(m.group(1)) * TIME_UNITS_MS[m.group(2)]
    m = RE_REQUESTS.search(text)
    out["requests"] = int(float(m.group(1)) * COUNT_SUFFIX[m.group(2)]) if m else None
    # wrk prints these two lines only when the count is not zero.
    m = RE_NON2XX.search(text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = RE_SOCKET.search(text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    out["socket_errors_detail"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else None)
    return out


def percentile(sorted_values, pct):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


def parse_hey(text):
    """Returns the numbers of one fixed-rate hey run (-o csv), or raises
    ValueError. hey writes a row only for a request that got an answer, so
    the requests sent minus the rows are the ones that got none."""
    latencies, non2xx, sent, wall_ms, offered = [], 0, None, None, None
    for line in text.splitlines():
        if line.startswith("# "):
            fields = dict(kv.split("=", 1) for kv in line[2:].split())
            sent, wall_ms = int(fields["sent"]), int(fields["wall_ms"])
            offered = float(fields["offered_rps"])
            continue
        cols = line.split(",")
        if len(cols) < 8 or cols[0] == "response-time":
            continue
        latencies.append(float(cols[0]) * 1000.0)
        if not 200 <= int(cols[6]) < 300:
            non2xx += 1
    if sent is None:
        raise ValueError("no '# sent=' line (the hey run did not finish)")
    if not latencies:
        raise ValueError("no answered requests")
    latencies.sort()
    out = {"rps": len(latencies) * 1000.0 / wall_ms if wall_ms else None,
           "offered_rps": offered, "requests": len(latencies), "non2xx": non2xx,
           "socket_errors": max(0, sent - len(latencies)), "socket_errors_detail": None,
           "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
           "p999_ms": percentile(latencies, 99.9), "max_ms": latencies[-1]}
    return out


def load_scenarios(manifest_path):
    scenarios = {}  # insertion order = order of first appearance = table order
    with open(manifest_path, newline="") as f:
        for sid, label, url, path in csv.reader(f, delimiter="\t"):
            sc = scenarios.setdefault(sid, {"label": label, "url": url, "runs": [],
                                            "problems": []})
            try:
                with open(path, errors="replace") as w:
                    text = w.read()
                run = parse_hey(text) if path.endswith(".hey.csv") else parse_wrk(text)
                sc["runs"].append(run)
                # hey's workers fall behind when answers are slower than
                # their pace: then the rate offered was not the rate sent.
                if run.get("offered_rps") and run["rps"] < 0.95 * run["offered_rps"]:
                    sc["problems"].append(
                        f"{path}: answered {run['rps']:.0f} req/s of {run['offered_rps']:.0f} offered")
            except (OSError, ValueError) as e:
                sc["problems"].append(f"{path}: {e}")
    for sc in scenarios.values():
        runs = sc["runs"]
        sc["non2xx_total"] = sum(r["non2xx"] for r in runs)
        sc["socket_errors_total"] = sum(r["socket_errors"] for r in runs)
        if sc["non2xx_total"]:
            sc["problems"].append(f"{sc['non2xx_total']} non-2xx/3xx responses")
        if sc["socket_errors_total"]:
            sc["problems"].append(f"{sc['socket_errors_total']} socket errors or unanswered")
        # Each figure is the median of that figure over the runs (not the run
        # with the median req/s): one noisy run moves none of them.
        sc["median"] = ({k: statistics.median(r[k] for r in runs)
                         for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "offered_rps")
                         if all(r.get(k) is not None for r in runs)} if runs else None)
        sc["fixed_rate"] = any("offered_rps" in r for r in runs)
        sc["valid"] = bool(runs) and not sc["problems"]
    return scenarios


def load_rss(path):
    rss = []
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            name, pid, rss_kb, hwm_kb, kind = row[:5]
            anon_kb, file_kb = (row[5:7] + ["-", "-"])[:2]
            mb = None if rss_kb == "-" else int(rss_kb) / 1024.0
            hwm = None if hwm_kb == "-" else int(hwm_kb) / 1024.0
            limited = kind == "millom"
            rss.append({"program": name, "pid": int(pid), "rss_mb": mb, "hwm_mb": hwm,
                        "anon_mb": None if anon_kb == "-" else int(anon_kb) / 1024.0,
                        "file_mb": None if file_kb == "-" else int(file_kb) / 1024.0,
                        "limit_applies": limited,
                        "over_limit": limited and hwm is not None and hwm > MEMORY_LIMIT_MB})
    return rss


def load_messages(path):
    out = {}
    if path:
        with open(path, newline="") as f:
            for sid, _run, n in csv.reader(f, delimiter="\t"):
                out[sid] = out.get(sid, 0) + int(n)
    return out


def load_cpu(path, scenarios, clk_tck, messages):
    """CPU seconds per program over all runs of each scenario in
    CPU_SCENARIOS, and per 1,000 of its messages (or completed requests)."""
    ticks, wall = {}, {}
    if path:
        with open(path, newline="") as f:
            for sid, run, prog, t, secs in csv.reader(f, delimiter="\t"):
                if sid in CPU_SCENARIOS:
                    ticks.setdefault(sid, {}).setdefault(prog, 0)
                    ticks[sid][prog] += int(t)
                    wall.setdefault(sid, {})[run] = float(secs)
    out = {}
    for sid, progs in ticks.items():
        sc = scenarios.get(sid)
        requests = messages.get(sid)
        if requests is None:
            requests = sum(r["requests"] or 0 for r in sc["runs"]) if sc else 0
        seconds = sum(wall[sid].values())
        out[sid] = {p: {"cpu_s": round(t / clk_tck, 3),
                        "cpu_s_per_1000": round(t / clk_tck * 1000.0 / requests, 4)
                        if requests else None,
                        "cpu_s_per_s": round(t / clk_tck / seconds, 4) if seconds else None,
                        "millom": p not in NOT_MILLOM}
                    for p, t in progs.items()}
    return out


def load_box(path, scenarios):
    """The share of the box's CPU time (all cores) left idle, and taken by
    the hypervisor (steal), while each closed-loop scenario ran, over all
    its runs: idle cores in a closed loop mean it waits (timers, hand-offs
    between threads and programs), not that it is short of CPU."""
    if not path or not os.path.exists(path):
        return
    ticks = {}
    with open(path, newline="") as f:
        for sid, _run, busy, idle, steal in csv.reader(f, delimiter="\t"):
            t = ticks.setdefault(sid, [0, 0, 0])
            t[0] += int(busy)
            t[1] += int(idle)
            t[2] += int(steal)
    for sid, (busy, idle, steal) in ticks.items():
        total = busy + idle + steal
        if sid in scenarios and total > 0:
            scenarios[sid]["box_idle_share"] = round(idle / total, 3)
            scenarios[sid]["box_steal_share"] = round(steal / total, 3)


def ratio_entry(label, text, unit, rate, base_rate, problems, **extra):
    r = {"label": label, "text": text, "unit": unit, "rate": rate, "baseline_rate": base_rate,
         "ratio": rate / base_rate if rate is not None and base_rate else None,
         "p50_ms": None, "p99_ms": None, "baseline_p50_ms": None, "baseline_p99_ms": None,
         "errors": 0, "problems": problems, "valid": not problems}
    r.update(extra)
    return r


def compute_ratios(scenarios, cpu):
    out = []
    for label, a, b, text in RATIOS:
        sa, sb = scenarios.get(a), scenarios.get(b)
        if not sa or not sb:
            continue  # a side not selected (BENCH_SCENARIOS): no ratio
        problems = []
        for sc, sid in ((sa, a), (sb, b)):
            if not sc:
                problems.append(f"{sid}: not run")
            elif not sc["valid"]:
                problems.append(f"{sc['label']}: {'; '.join(sc['problems']) or 'no runs'}")
        ma = sa["median"] if sa and sa["median"] else {}
        mb = sb["median"] if sb and sb["median"] else {}
        r = ratio_entry(label, text, "req/s", ma.get("rps"), mb.get("rps"), problems,
                        numerator=a, denominator=b)
        r.update({"p50_ms": ma.get("p50_ms"), "p99_ms": ma.get("p99_ms"),
                  "baseline_p50_ms": mb.get("p50_ms"), "baseline_p99_ms": mb.get("p99_ms"),
                  "p99_ratio": ma["p99_ms"] / mb["p99_ms"]
                  if ma.get("p99_ms") is not None and mb.get("p99_ms") else None,
                  "errors": sum(sc["non2xx_total"] + sc["socket_errors_total"]
                                for sc in (sa, sb) if sc)})
        if a in cpu:
            r["cpu_s_per_1000"] = cpu[a]
        if b in cpu:
            r["baseline_cpu_s_per_1000"] = cpu[b]
        out.append(r)
    return out


def load_runs(paths):
    """The per-run JSON files a pipeline bench wrote (<dir>/run.<n>.json),
    loaded in run order (run.10 after run.9)."""
    return [json.load(open(p)) for p in sorted(paths, key=lambda p: int(p.rsplit(".", 2)[-2]))]


def median_run(runs, key):
    """The run whose figure `key` is the median of all runs' (the lower
    middle one of an even count; a run without the figure counts as the
    lowest). The pipeline benches (scripts/bench_settlement.sh,
    scripts/bench_notify.sh) run several times, each next to a baseline of
    its own, and report the run with the median ratio."""
    ranked = sorted(runs, key=lambda r: (r.get(key) is not None, r.get(key) or 0))
    return ranked[(len(ranked) - 1) // 2]


def combine_settlement_runs(runs):
    """scripts/bench_settlement.sh's runs as one result: the figures of the
    run with the median ratio (records/s over that run's kcat events/s),
    the fewest records any run settled, and every run under "runs"."""
    res = dict(median_run(runs, "ratio_settled_vs_kcat"))
    res["settled"] = min(r["settled"] for r in runs)
    res["runs"] = runs
    return res


NOTIFY_ERROR_COUNTS = ("missing", "duplicate_deliveries", "events_with_several_delivery_ids",
                       "deliveries_without_id", "non200")


def combine_notify_runs(runs):
    """scripts/bench_notify.sh's runs as one result: the figures of the run
    with the median ratio (events/s over that run's baseline POSTs/s); the
    lost, repeated and failed deliveries and the baseline's errors added
    up over every run; every run's problems, named by run; every run under
    "runs"."""
    res = dict(median_run(runs, "ratio"))
    for k in NOTIFY_ERROR_COUNTS:
        res[k] = sum(r.get(k, 0) for r in runs)
    if res.get("baseline"):
        res["baseline"] = dict(res["baseline"])
        for k in ("non2xx", "socket_errors"):
            res["baseline"][k] = sum((r.get("baseline") or {}).get(k, 0) for r in runs)
    res["problems"] = ["run %d: %s" % (i, p) for i, r in enumerate(runs, 1)
                       for p in r.get("problems", [])]
    res["problems"] += ["run %d: no baseline" % i for i, r in enumerate(runs, 1)
                        if not r.get("baseline")]
    res["valid"] = not res["problems"]
    res["runs"] = runs
    return res


def load_pipeline(path, exit_status, name):
    """The JSON a pipeline bench wrote and the problems that make it invalid."""
    problems = []
    data = None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"no results from {name} ({e})")
    if exit_status:
        problems.append(f"{name} exited with status {exit_status}")
    return data, problems


def settlement_ratio(path, exit_status):
    d, problems = load_pipeline(path, exit_status, "scripts/bench_settlement.sh")
    d = d or {}
    if d and d.get("settled", d.get("events")) < d.get("events", 0):
        problems.append(f"settled {d.get('settled')} of {d.get('events')} events")
    return ratio_entry(
        "settlement", "settlement-reporter records / kcat consuming the same events", "records/s",
        d.get("settled_records_per_s"), d.get("kcat_consume_events_per_s"), problems,
        messages=d.get("events"), published_rate=d.get("published_records_per_s"),
        cpu_s_per_1000={k: v for k, v in d.get("cpu", {}).items()})


def notifications_ratio(path, exit_status):
    d, problems = load_pipeline(path, exit_status, "scripts/bench_notify.sh")
    d = d or {}
    problems += [p for p in d.get("problems", []) if p not in problems]
    base = d.get("baseline") or {}
    errors = (d.get("missing", 0) + d.get("duplicate_deliveries", 0)
              + d.get("events_with_several_delivery_ids", 0) + d.get("non200", 0)
              + d.get("deliveries_without_id", 0)
              + base.get("non2xx", 0) + base.get("socket_errors", 0))
    delay = d.get("delay_ms") or {}
    return ratio_entry(
        "notifications", "Kafka -> delivered webhooks / wrk POSTing the same body to sp-sandbox",
        "events/s", d.get("events_per_s"), base.get("rps"), problems,
        messages=d.get("events"), p50_ms=delay.get("p50"), p99_ms=delay.get("p99"),
        latency_is="end-to-end delay, produce to delivery",
        baseline_p50_ms=base.get("p50_ms"), baseline_p99_ms=base.get("p99_ms"), errors=errors,
        exactly_once={k: d.get(k) for k in (
            "delivered", "missing", "distinct_delivery_ids", "duplicate_deliveries",
            "events_with_several_delivery_ids", "deliveries_without_id", "non200")},
        cpu_s_per_1000=d.get("cpu", {}), baseline_cpu_s_per_1000=d.get("baseline_cpu", {}))


def kafka_floor_ratio(path, exit_status, scenarios):
    """rpc-echo's round trips/s over nginx /balance's req/s of this run."""
    d, problems = load_pipeline(path, exit_status, "scripts/bench_kafka_floor.sh")
    d = d or {}
    problems += [p for p in d.get("problems", []) if p not in problems]
    base = scenarios.get("nginx_balance")
    base_median = base["median"] if base and base["median"] else {}
    if base and not base["valid"]:
        problems.append(f"{base['label']}: {'; '.join(base['problems']) or 'no runs'}")
    # The client and the responder run Millom's shared code; devbroker is
    # Kafka's stand-in.
    cpu = {f"rpc-echo {p}" if p in ("client", "responder") else p:
           dict(v, millom=p != "devbroker") for p, v in (d.get("cpu") or {}).items()}
    return ratio_entry(
        "kafkaFloor", "Kafka request/reply alone (rpc-echo round trips) / nginx /balance",
        "trips/s", d.get("round_trips_per_s"), base_median.get("rps"), problems,
        numerator="kafka_floor", denominator="nginx_balance" if base else None,
        p50_ms=d.get("p50_ms"), p99_ms=d.get("p99_ms"),
        baseline_p50_ms=base_median.get("p50_ms"), baseline_p99_ms=base_median.get("p99_ms"),
        errors=d.get("errors", 0), callers=d.get("callers"), runs=d.get("runs"),
        cpu_s_per_1000=cpu, read_path_target=READ_PATH_TARGET)


def print_kafka_floor(r):
    """The floor's figures and whether it leaves room for the read path's target."""
    print()
    print(f"Kafka request/reply floor (rpc-echo: {r.get('callers')} callers through "
          "shared/patterns/rpc, a responder that answers at once; its own devbroker, stack stopped)")
    print(f"  {fmt(r['rate'], '.0f')} round trips/s, p50 {fmt(r['p50_ms'], '.2f')} ms, "
          f"p99 {fmt(r['p99_ms'], '.2f')} ms; nginx /balance {fmt(r['baseline_rate'], '.0f')} req/s;"
          f" ratio {fmt(r['ratio'], '.3f')}{'' if r['valid'] else '  (invalid)'}")
    if r["ratio"] is None:
        print(f"  read path target {READ_PATH_TARGET:.2f} of nginx /balance: not compared "
              "(nginx_balance did not run)")
    elif r["ratio"] >= READ_PATH_TARGET:
        print(f"  read path target {READ_PATH_TARGET:.2f} of nginx /balance vs the floor's "
              f"{r['ratio']:.3f}: the Kafka hop alone leaves room for the target "
              f"(at most {r['ratio'] / READ_PATH_TARGET:.2f}x the target's rate)")
    else:
        print(f"  read path target {READ_PATH_TARGET:.2f} of nginx /balance vs the floor's "
              f"{r['ratio']:.3f}: the Kafka hop alone leaves NO room for the target "
              f"(the floor is {r['ratio'] / READ_PATH_TARGET:.2f}x the target's rate)")


def check_ratio_targets(ratios):
    by_label = {r["label"]: r for r in ratios}
    out = []
    for label, field, cmp, limit, text in RATIO_TARGETS:
        r = by_label.get(label)
        if r is None:
            continue
        value = r.get(field)
        met = value is not None and (value >= limit if cmp == ">=" else value <= limit)
        out.append({"target": text, "scenario": label, "metric": field, "limit": limit,
                    "value": value, "valid": r["valid"],
                    "result": "PASS" if met and r["valid"] else "MISS"})
    return out


def check_targets(scenarios):
    out = []
    for sid, metric, cmp, limit, text in TARGETS:
        sc = scenarios.get(sid)
        if sc is None:
            continue  # not selected (BENCH_SCENARIOS): no verdict
        value = sc["median"][metric] if sc and sc["median"] else None
        met = value is not None and (value >= limit if cmp == ">=" else value <= limit)
        valid = bool(sc and sc["valid"])
        # A number measured while the service answered errors is no evidence.
        out.append({"target": text, "scenario": sid, "metric": metric, "limit": limit,
                    "value": value, "valid": valid,
                    "result": "PASS" if met and valid else "MISS"})
    return out


def pct(share):
    return None if share is None else share * 100


def fmt(v, spec):
    if v is None:
        width = re.match(r"\d*", spec).group(0)
        return "-".rjust(int(width)) if width else "-"
    return format(v, spec)


def print_report(settings, scenarios, ratios, targets, rss):
    runs = settings.get("runs")
    print()
    print(f"Millom read path and purchases, median of {runs} run(s) per scenario "
          f"(wrk -t{settings.get('threads')} -c{settings.get('connections')} "
          f"-d{settings.get('seconds')}s --latency)")
    print()
    w = max(len(sc["label"]) for sc in scenarios.values())
    head = (f"{'scenario':<{w}}  {'req/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'non-2xx':>8}"
            f"  {'sock err':>8}  {'idle %':>6}")
    print(head)
    print("-" * len(head))
    closed = {sid: sc for sid, sc in scenarios.items() if not sc.get("fixed_rate")}
    fixed = {sid: sc for sid, sc in scenarios.items() if sc.get("fixed_rate")}
    for sc in closed.values():
        m = sc["median"] or {}
        flag = "" if sc["valid"] else "  INVALID"
        print(f"{sc['label']:<{w}}  {fmt(m.get('rps'), '9.0f')}  {fmt(m.get('p50_ms'), '8.2f')}"
              f"  {fmt(m.get('p99_ms'), '8.2f')}  {sc['non2xx_total']:>8}"
              f"  {sc['socket_errors_total']:>8}  {fmt(pct(sc.get('box_idle_share')), '6.0f')}{flag}")
    print("(idle %: the box's cores left idle while the scenario ran, all runs; a closed loop")
    print(" that leaves cores idle is waiting on timers and hand-offs, not short of CPU)")
    if fixed:
        print()
        print(f"fixed offered rate (hey, {settings.get('connections')} workers, "
              f"{settings.get('rate_seconds')}s; latency of every answered request)")
        print()
        head = (f"{'scenario':<{w}}  {'offered':>8}  {'reached':>8}  {'p50 ms':>8}  {'p99 ms':>8}"
                f"  {'p99.9 ms':>8}  {'errors':>6}")
        print(head)
        print("-" * len(head))
        for sc in fixed.values():
            m = sc["median"] or {}
            flag = "" if sc["valid"] else "  INVALID"
            print(f"{sc['label']:<{w}}  {fmt(m.get('offered_rps'), '8.0f')}  {fmt(m.get('rps'), '8.0f')}"
                  f"  {fmt(m.get('p50_ms'), '8.2f')}  {fmt(m.get('p99_ms'), '8.2f')}"
                  f"  {fmt(m.get('p999_ms'), '8.2f')}"
                  f"  {sc['non2xx_total'] + sc['socket_errors_total']:>6}{flag}")
    print()
    print("Millom / baseline, measured in this run (p50/p99: Millom's, ms; for notifications the")
    print("end-to-end delay from produce to delivery; errors: non-2xx, socket errors, lost or")
    print("duplicated messages of both sides)")
    print()
    head = (f"{'label':<13}  {'rate':>9}  {'baseline':>9}  {'unit':<9}  {'ratio':>6}  {'p50':>8}"
            f"  {'p99':>8}  {'errors':>6}")
    print(head)
    print("-" * len(head))
    for r in ratios:
        flag = "" if r["valid"] else "  FAILED"
        print(f"{r['label']:<13}  {fmt(r['rate'], '9.1f')}  {fmt(r['baseline_rate'], '9.1f')}"
              f"  {r['unit']:<9}  {fmt(r['ratio'], '6.3f')}  {fmt(r['p50_ms'], '8.1f')}"
              f"  {fmt(r['p99_ms'], '8.1f')}  {r['errors']:>6}{flag}")
    cpu_rows = [(r["label"], "millom", r["cpu_s_per_1000"]) for r in ratios if r.get("cpu_s_per_1000")]
    cpu_rows += [(r["label"], "baseline", r["baseline_cpu_s_per_1000"]) for r in ratios
                 if r.get("baseline_cpu_s_per_1000")]
    if cpu_rows:
        print()
        print("CPU seconds per 1,000 messages (utime+stime from /proc; (ref): not a Millom program;")
        print("baseline rows: the programs that serve the baseline)")
        for label, side, progs in sorted(cpu_rows, key=lambda x: (x[0], x[1] != "millom")):
            shown = {p: v for p, v in progs.items()
                     if (v.get("cpu_s") or 0) > 0 and (side == "millom" or not v.get("millom"))}
            parts = [f"{p} {fmt(v.get('cpu_s_per_1000'), '.3f')}{'' if v.get('millom') else ' (ref)'}"
                     for p, v in sorted(shown.items(), key=lambda kv: -(kv[1].get("cpu_s") or 0))]
            millom_total = sum(v.get("cpu_s_per_1000") or 0 for v in progs.values() if v.get("millom"))
            total = f"  [Millom total {millom_total:.3f}]" if side == "millom" else ""
            print(f"  {label:<13} {side:<8}  {', '.join(parts) or '-'}{total}")
            # Millom's programs while only the baseline ran: what they burn
            # with no work of theirs (polling), which the per-1,000 figures
            # above include.
            idle = {p: v["cpu_s_per_s"] for p, v in progs.items()
                    if side == "baseline" and v.get("millom") and v.get("cpu_s_per_s")}
            if idle:
                print(f"  {label:<13} {'idle':<8}  Millom programs while the baseline ran, CPU s/s: "
                      + ", ".join(f"{p} {v:.3f}" for p, v in sorted(idle.items(), key=lambda kv: -kv[1]))
                      + f"  [total {sum(idle.values()):.3f}]")
    floor = next((r for r in ratios if r["label"] == "kafkaFloor"), None)
    if floor:
        print_kafka_floor(floor)
    print()
    print("targets")
    for t in targets:
        unit = {"rps": "req/s", "ratio": ""}.get(t["metric"], "ms")
        note = "" if t["valid"] else "  (scenario invalid)"
        print(f"  {t['result']:<4}  {t['target']:<40} measured {fmt(t['value'], '.2f')} {unit}{note}")
    print()
    print(f"memory after the runs (VmRSS now, VmHWM the peak; limit {MEMORY_LIMIT_MB:.0f} MB VmHWM "
          "for Millom programs; VmRSS now = RssAnon, the program's own, + RssFile, mapped "
          "files: shared libraries' pages, shared with every process using them)")
    w = max(len(p["program"]) for p in rss)
    for p in rss:
        flag = ("  OVER" if p["over_limit"] else "") if p["limit_applies"] else "  (reference)"
        print(f"  {p['program']:<{w}}  VmRSS {fmt(p['rss_mb'], '6.1f')} MB  "
              f"VmHWM {fmt(p.get('hwm_mb'), '6.1f')} MB  "
              f"RssAnon {fmt(p.get('anon_mb'), '5.1f')}  RssFile {fmt(p.get('file_mb'), '5.1f')}"
              f"{flag}")
    failed = [r for r in ratios if not r["valid"]]
    failed_ids = {r.get("numerator") for r in failed} | {r.get("denominator") for r in failed}
    failures = [f"{r['label']}: {'; '.join(r['problems'])}" for r in failed]
    failures += [f"{sc['label']}: {'; '.join(sc['problems']) or 'no runs'}"
                 for sid, sc in scenarios.items() if not sc["valid"] and sid not in failed_ids]
    if failures:
        print()
        for f in failures:
            print(f"FAILED: {f}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("rss")
    ap.add_argument("settings")
    ap.add_argument("json_out")
    ap.add_argument("--cpu")
    ap.add_argument("--messages")
    ap.add_argument("--box")
    ap.add_argument("--settlement")
    ap.add_argument("--settlement-exit", type=int, default=0)
    ap.add_argument("--notify")
    ap.add_argument("--notify-exit", type=int, default=0)
    ap.add_argument("--kafka-floor")
    ap.add_argument("--kafka-floor-exit", type=int, default=0)
    a = ap.parse_args(argv[1:])
    with open(a.settings) as f:
        settings = json.load(f)
    scenarios = load_scenarios(a.manifest)
    messages = load_messages(a.messages)
    cpu = load_cpu(a.cpu, scenarios, int(settings.get("clk_tck") or 100), messages)
    load_box(a.box, scenarios)
    ratios = compute_ratios(scenarios, cpu)
    for r in ratios:
        if r.get("numerator") in messages:
            r["messages"] = messages[r["numerator"]]
            r["baseline_messages"] = messages.get(r.get("denominator"))
    if a.settlement:
        ratios.append(settlement_ratio(a.settlement, a.settlement_exit))
    if a.notify:
        ratios.append(notifications_ratio(a.notify, a.notify_exit))
    if a.kafka_floor:
        ratios.append(kafka_floor_ratio(a.kafka_floor, a.kafka_floor_exit, scenarios))
    targets = check_targets(scenarios) + check_ratio_targets(ratios)
    rss = load_rss(a.rss)
    print_report(settings, scenarios, ratios, targets, rss)
    valid = all(sc["valid"] for sc in scenarios.values()) and all(r["valid"] for r in ratios)
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings,
        "scenarios": scenarios,
        "ratios": ratios,
        "targets": targets,
        "rss": rss,
        "memory_limit_mb": MEMORY_LIMIT_MB,
        "valid": valid,
    }
    with open(a.json_out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return 0 if valid else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
