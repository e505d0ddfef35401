#!/usr/bin/env python3
"""Checks that the #include graph inside each given folder has no circle.

Usage: scripts/include_graph.py [--modules] [--print] [--layers SPEC] DIR...

Nodes are the folder's .c and .h files; an edge is an `#include "..."` of
another file of the same folder (resolved next to the including file, then
from the repository root, as the Makefile's -I. does). With --modules, a
header and its source (x.h and x.c) are one node, so a circle through a
source counts too: x.c including y.h while y.h (or y.c) includes x.h.
--print lists the edges. Exits 1 and prints the circle when there is one.

--layers SPEC (one DIR) also checks the folder's layering: SPEC lists its
files top layer first, layers separated by "|", files by spaces, e.g.
"main.c | a.h a.c | b.h b.c". Every include must go to a file of the same
layer or a lower one, and every .c/.h of the folder must be listed (a new
file has to be given its place).
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def node_of(path, modules):
    return os.path.splitext(path)[0] if modules else path


def graph(folder, modules):
    folder = os.path.normpath(folder)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.endswith(('.c', '.h')))
    known = set(files)
    edges = {node_of(f, modules): set() for f in files}
    for f in files:
        with open(f, encoding='utf-8', errors='replace') as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            for cand in (os.path.join(os.path.dirname(f), inc), inc):
                cand = os.path.normpath(cand)
                if cand in known:
                    a, b = node_of(f, modules), node_of(cand, modules)
                    if a != b:
                        edges[a].add(b)
                    break
    return edges


def find_cycle(edges):
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in edges}
    stack = []

    def visit(n):
        color[n] = GREY
        stack.append(n)
        for m in sorted(edges[n]):
            if color[m] == GREY:
                return stack[stack.index(m):] + [m]
            if color[m] == WHITE:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        color[n] = BLACK
        return None

    for n in sorted(edges):
        if color[n] == WHITE:
            c = visit(n)
            if c:
                return c
    return None


def check_layers(folder, spec):
    folder = os.path.normpath(folder)
    rank = {}
    for i, layer in enumerate(spec.split('|')):
        for name in layer.split():
            rank[os.path.join(folder, name)] = i
    edges = graph(folder, False)
    bad = [f'{f}: not placed in a layer' for f in sorted(edges) if f not in rank]
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if a in rank and b in rank and rank[b] < rank[a]:
                bad.append(f'{a} includes {b}, which is in a layer above it')
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


def main(argv):
    modules = '--modules' in argv
    show = '--print' in argv
    layers = None
    if '--layers' in argv:
        i = argv.index('--layers')
        if i + 1 >= len(argv):
            print('--layers needs a SPEC', file=sys.stderr)
            return 2
        layers = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    dirs = [a for a in argv if not a.startswith('--')]
    if layers is not None and len(dirs) != 1:
        print('--layers checks one DIR', file=sys.stderr)
        return 2
    if not dirs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for d in dirs:
        edges = graph(d, modules)
        if show:
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    print(f'{a} -> {b}')
        cycle = find_cycle(edges)
        if cycle:
            print(f'{d}: include circle: ' + ' -> '.join(cycle), file=sys.stderr)
            status = 1
        if layers is not None and check_layers(d, layers) != 0:
            status = 1
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
