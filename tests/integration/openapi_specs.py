#!/usr/bin/env python3
"""The OpenAPI files tests/integration/test_openapi_contract.sh runs Prism
with, and the checks of Prism's logs afterwards.

  openapi_specs.py build OUT_DIR
      Copies schemas/openapi/ to OUT_DIR with the errata of
      schemas/openapi/upstream-errata.yaml applied, writes each entry of
      SPECS (its file with the path mapping the entry names) as
      <name>.contract.yaml next to its source, and prints "NAME PATH" for
      each. Fails when an erratum's "was" is not what the file has (the
      upstream file changed: look again).
  openapi_specs.py check SPEC_PATH NAME PRISM_LOG
      Fails for every error or violation in Prism's log, and for every
      operation of SPEC_PATH that no request in the log matched (a path
      listed in a spec and never called is untested).
"""
import copy
import json
import os
import re
import sys

import yaml

UPSTREAM = "schemas/openapi/upstream/"
ERRATA = "schemas/openapi/upstream-errata.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def std_aliases(spec):
    """The standard API's paths also without {operator}: the spec says the
    operator "can be omitted - the operator value will be extracted from
    subscriberId", and api-edge has a route for each such form."""
    for path, item in list(spec["paths"].items()):
        if "/{operator}/" not in path:
            continue
        alias = copy.deepcopy(item)
        for op in [alias] + [alias[m] for m in METHODS if m in alias]:
            if "parameters" in op:
                op["parameters"] = [p for p in op["parameters"] if p.get("name") != "operator"]
        spec["paths"][path.replace("/{operator}/", "/", 1)] = alias


def only(prefixes):
    def keep(spec):
        spec["paths"] = {p: v for p, v in spec["paths"].items() if p.startswith(prefixes)}
    return keep


def provider_hooks(spec):
    """The paths Millom posts to are "defined by service provider": here
    sp-sandbox's (/notifications, /callbacks)."""
    rename = {"/notification/path/defined/by/service/provider": "/notifications",
              "/callback/path/defined/by/service/provider/": "/callbacks"}
    spec["paths"] = {rename[p]: v for p, v in spec["paths"].items() if p in rename}


# name: (file under schemas/openapi, path mapping or None). A new spec to
# check: a line here and its Prism in test_openapi_contract.sh.
SPECS = {
    "standard": ("upstream/service-providers/millom-standard-api.yaml", std_aliases),
    "cpid": ("upstream/service-providers/cpid/cpid-retrieval.yaml", None),
    "notify": ("upstream/operators/notification/millom-notify.yaml", None),
    "callback": ("upstream/operators/purchase-callback/millom-callback.yaml", None),
    "rnf": ("upstream/service-providers/rich-notifications/rich-notification-api.yaml", only(("/rnf/",))),
    "provider-hooks": ("upstream/service-providers/rich-notifications/rich-notification-api.yaml",
                       provider_hooks),
    "extensions": ("millom-extensions.yaml", None),
}


def pointer_parent(doc, pointer):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def build(out_dir):
    """Copies schemas/openapi/ to out_dir with the errata applied (the
    upstream files $ref each other by relative paths), then writes each
    spec of SPECS next to its source as <name>.contract.yaml, and prints
    "name path" per spec."""
    errata = yaml.safe_load(open(ERRATA))
    problems = []
    docs = {}
    for root, _, files in os.walk("schemas/openapi"):
        for f in files:
            if f.endswith(".yaml") and f != os.path.basename(ERRATA):
                rel = os.path.relpath(os.path.join(root, f), "schemas/openapi")
                docs[rel] = yaml.safe_load(open(os.path.join(root, f)))
    for e in errata:
        spec = docs.get("upstream/" + e["spec"])
        try:
            parent, key = pointer_parent(spec, e["at"])
            now = parent[key]
        except (KeyError, IndexError, TypeError):
            problems.append("%s: erratum %s: not there any more" % (e["spec"], e["at"]))
            continue
        if now != e["was"]:
            problems.append("%s: erratum %s: is %s, the erratum expects %s"
                            % (e["spec"], e["at"], json.dumps(now), json.dumps(e["was"])))
            continue
        if "becomes" in e:
            parent[key] = e["becomes"]
        else:
            del parent[key]
    for rel, doc in docs.items():
        os.makedirs(os.path.dirname(os.path.join(out_dir, rel)), exist_ok=True)
        with open(os.path.join(out_dir, rel), "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    for name, (rel, mapping) in SPECS.items():
        spec = copy.deepcopy(docs[rel])
        if mapping:
            mapping(spec)
        path = os.path.join(out_dir, os.path.dirname(rel), name + ".contract.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        print(name, path)
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    return 1 if problems else 0


def template_regex(path):
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")


# Prism's log: "[HTTP SERVER] get /path?query ℹ  info      Request received",
# "✖  error" for a request it refused or an answer that broke the spec,
# "⚠  warning" for a violation below error.
REQUEST = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
PROBLEM = re.compile(r"(✖|⚠)\s+(error|warning|fatal)|[Vv]iolation")


def check(spec_path, name, log_path):
    spec = yaml.safe_load(open(spec_path))
    ops = {}
    for path, item in spec["paths"].items():
        for m in METHODS:
            if m in item:
                ops[(m, path)] = 0
    problems = []
    # Without a proxy upstream path in the spec's paths (notify: /notify),
    # Prism's log shows the path as the spec has it.
    for line in open(log_path, errors="replace"):
        line = line.rstrip("\n")
        r = REQUEST.search(line)
        if r:
            method, path = r.group(1).lower(), r.group(2).split("?")[0]
            # the most specific template that matches (fewest parameters)
            hits = [k for k in ops if k[0] == method and template_regex(k[1]).match(path)]
            if hits:
                ops[min(hits, key=lambda k: k[1].count("{"))] += 1
        if PROBLEM.search(line) and "[CLI]" not in line:
            problems.append("prism: " + line.strip())
    for (m, path), n in sorted(ops.items(), key=lambda x: x[0][1]):
        if n == 0:
            problems.append("never called: %s %s" % (m.upper(), path))
    called = sum(1 for n in ops.values() if n)
    print("%s: %d operations, %d called, %d requests, %d problems"
          % (name, len(ops), called, sum(ops.values()), len(problems)))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "build":
        sys.exit(build(sys.argv[2]))
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
