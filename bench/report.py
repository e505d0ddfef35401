#!/usr/bin/env python3
"""Turns the raw wrk outputs of one `make bench` into a table and a JSON file.

scripts/bench.sh runs wrk and saves each run's output verbatim; everything
that interprets numbers lives here, so the shell script stays about starting
and stopping processes. Standard library only.

Usage:
  report.py MANIFEST RSS SETTINGS JSON_OUT

  MANIFEST  TSV: scenario id, label, URL, wrk output file (one line per run)
  RSS       TSV: program, pid, VmRSS in kB ("-" when unreadable), and
            "millom" (the RSS limit applies) or "reference" (it does not)
  SETTINGS  JSON object recorded as-is under "settings"
  JSON_OUT  where to write the results (the directory must exist)

Exit status: 0 when every scenario is valid (no non-2xx answers, no socket
errors, every run parsed), 3 otherwise. Missing a performance target is not
a failure: the bench measures, the table says PASS or MISS.
"""
import csv
import json
import re
import statistics
import sys
import time

# Targets for the Millom read path (the product's performance budget).
TARGETS = [
    # (scenario, metric, comparison, limit, text)
    ("balance_miss", "rps", ">=", 2000.0, "/balance cache miss >= 2000 req/s"),
    ("balance_miss", "p99_ms", "<=", 25.0, "/balance cache miss p99 <= 25 ms"),
]

# Millom scenario versus the nginx baseline that makes the same backend call.
RATIOS = [
    ("balance_miss", "nginx_balance", "millom balance-miss / nginx balance"),
    ("upsell", "nginx_offers", "millom upsellOffer / nginx offers"),
    ("balance_hit", "nginx_balance", "millom balance-hit / nginx balance"),
    ("purchase", "nginx_activate", "millom purchasePlan / nginx activate"),
]

RSS_LIMIT_MB = 30.0

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


def load_scenarios(manifest_path):
    scenarios = {}  # insertion order = order of first appearance = table order
    with open(manifest_path, newline="") as f:
        for sid, label, url, path in csv.reader(f, delimiter="\t"):
            sc = scenarios.setdefault(sid, {"label": label, "url": url, "runs": [],
                                            "problems": []})
            try:
                with open(path, errors="replace") as w:
                    run = parse_wrk(w.read())
                sc["runs"].append(run)
            except (OSError, ValueError) as e:
                sc["problems"].append(f"{path}: {e}")
    for sc in scenarios.values():
        runs = sc["runs"]
        sc["non2xx_total"] = sum(r["non2xx"] for r in runs)
        sc["socket_errors_total"] = sum(r["socket_errors"] for r in runs)
        if sc["non2xx_total"]:
            sc["problems"].append(f"{sc['non2xx_total']} non-2xx/3xx responses")
        if sc["socket_errors_total"]:
            sc["problems"].append(f"{sc['socket_errors_total']} socket errors")
        # Each figure is the median of that figure over the runs (not the run
        # with the median req/s): one noisy run moves none of them.
        sc["median"] = ({k: statistics.median(r[k] for r in runs)
                         for k in ("rps", "p50_ms", "p99_ms")} if runs else None)
        sc["valid"] = bool(runs) and not sc["problems"]
    return scenarios


def load_rss(path):
    rss = []
    with open(path, newline="") as f:
        for name, pid, kb, kind in csv.reader(f, delimiter="\t"):
            mb = None if kb == "-" else int(kb) / 1024.0
            limited = kind == "millom"
            rss.append({"program": name, "pid": int(pid), "rss_mb": mb,
                        "limit_applies": limited,
                        "over_limit": limited and mb is not None and mb > RSS_LIMIT_MB})
    return rss


def compute_ratios(scenarios):
    out = []
    for a, b, text in RATIOS:
        sa, sb = scenarios.get(a), scenarios.get(b)
        r = {"ratio": text, "numerator": a, "denominator": b, "rps": None, "p99": None,
             "valid": bool(sa and sb and sa["valid"] and sb["valid"])}
        if sa and sb and sa["median"] and sb["median"]:
            ma, mb = sa["median"], sb["median"]
            r["rps"] = ma["rps"] / mb["rps"] if mb["rps"] else None
            r["p99"] = ma["p99_ms"] / mb["p99_ms"] if mb["p99_ms"] else None
        out.append(r)
    return out


def check_targets(scenarios):
    out = []
    for sid, metric, cmp, limit, text in TARGETS:
        sc = scenarios.get(sid)
        value = sc["median"][metric] if sc and sc["median"] else None
        met = value is not None and (value >= limit if cmp == ">=" else value <= limit)
        valid = bool(sc and sc["valid"])
        # A number measured while the service answered errors is no evidence.
        out.append({"target": text, "scenario": sid, "metric": metric, "limit": limit,
                    "value": value, "valid": valid,
                    "result": "PASS" if met and valid else "MISS"})
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_report(settings, scenarios, ratios, targets, rss):
    runs = settings.get("runs")
    print()
    print(f"Millom read path, median of {runs} run(s) per scenario "
          f"(wrk -t{settings.get('threads')} -c{settings.get('connections')} "
          f"-d{settings.get('seconds')}s --latency)")
    print()
    w = max(len(sc["label"]) for sc in scenarios.values())
    head = f"{'scenario':<{w}}  {'req/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'non-2xx':>8}  {'sock err':>8}"
    print(head)
    print("-" * len(head))
    for sc in scenarios.values():
        m = sc["median"] or {}
        flag = "" if sc["valid"] else "  INVALID"
        print(f"{sc['label']:<{w}}  {fmt(m.get('rps'), '9.0f')}  {fmt(m.get('p50_ms'), '8.2f')}"
              f"  {fmt(m.get('p99_ms'), '8.2f')}  {sc['non2xx_total']:>8}"
              f"  {sc['socket_errors_total']:>8}{flag}")
    print()
    w = max(len(r["ratio"]) for r in ratios)
    print(f"{'ratio':<{w}}  {'req/s':>6}  {'p99':>6}")
    for r in ratios:
        flag = "" if r["valid"] else "  (from invalid data)"
        print(f"{r['ratio']:<{w}}  {fmt(r['rps'], '6.2f')}  {fmt(r['p99'], '6.2f')}{flag}")
    print()
    print("targets")
    for t in targets:
        unit = "req/s" if t["metric"] == "rps" else "ms"
        note = "" if t["valid"] else "  (scenario invalid)"
        print(f"  {t['result']:<4}  {t['target']:<36} measured {fmt(t['value'], '.2f')} {unit}{note}")
    print()
    print(f"resident memory after the runs (VmRSS; limit {RSS_LIMIT_MB:.0f} MB for Millom programs)")
    w = max(len(p["program"]) for p in rss)
    for p in rss:
        flag = ("  OVER" if p["over_limit"] else "") if p["limit_applies"] else "  (reference)"
        print(f"  {p['program']:<{w}}  {fmt(p['rss_mb'], '7.1f')} MB{flag}")
    for sc in scenarios.values():
        if not sc["valid"]:
            print(f"WARNING: {sc['label']}: invalid: {'; '.join(sc['problems']) or 'no runs'}",
                  file=sys.stderr)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    _, manifest, rss_path, settings_path, json_out = argv
    with open(settings_path) as f:
        settings = json.load(f)
    scenarios = load_scenarios(manifest)
    ratios = compute_ratios(scenarios)
    targets = check_targets(scenarios)
    rss = load_rss(rss_path)
    print_report(settings, scenarios, ratios, targets, rss)
    valid = all(sc["valid"] for sc in scenarios.values())
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings,
        "scenarios": scenarios,
        "ratios": ratios,
        "targets": targets,
        "rss": rss,
        "rss_limit_mb": RSS_LIMIT_MB,
        "valid": valid,
    }
    with open(json_out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return 0 if valid else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
