#!/usr/bin/env bash
# A hung primary and parameter updates, the reference stack (PAF + heartbeat IPaddr2) and
# the paceline stack side by side in one run (issue #10's figures in docs/benchmarks.md):
#   hang           RUNS times per stack: every process of the primary's PostgreSQL stopped
#                  (SIGSTOP); the write outage, how writes came back, the demote's time
#   update-params  once per stack: each non-unique parameter of pgsqld changed with pcs:
#                  reloaded or restarted, and the worst write outage
#   usage: tests/lab/bench_hang.sh [--runs N] [--out FILE]   (as root, after paceline install)
# HANG_MAX_S (default 90) is how long the lab leaves the processes stopped before it lets
# them go itself (then recovered_by is "sigcont").
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=3 OUT=""
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive integer" >&2; exit 2; }
export HANG_MAX_S=${HANG_MAX_S:-90}
LAB="bash tests/lab/lab.sh"
RAW=$(mktemp /tmp/lab-bench-hang.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true; rm -f "$RAW"' EXIT
for stack in reference paceline; do
    $LAB down >/dev/null 2>&1 || true
    $LAB up --nodes 3 >/dev/null 2>&1
    $LAB config --stack "$stack" >/dev/null 2>&1
    for ((i = 1; i <= RUNS; i++)); do
        echo "$stack hang run $i/$RUNS" >&2
        $LAB scenario hang 2>/dev/null | grep '^{' | tee -a "$RAW" >&2
    done
    echo "$stack update-params" >&2
    $LAB scenario update-params 2>/dev/null | grep '^{' | tee -a "$RAW" >&2
done
$LAB down >/dev/null 2>&1 || true

python3 - "$RAW" "$RUNS" "$HANG_MAX_S" "$(git log -1 --format=%h)" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs, hang_max, commit = sys.argv[2], sys.argv[3], sys.argv[4]
print(f"Lab, 3 nodes, monitors 2 s/3 s, commit {commit}; hang: {runs} runs per stack, the lab lets the "
      f"processes go after {hang_max} s. Outages in seconds.\n")
print("| stack | hang: write outage, median (min–max) | recovered by | demote on the hung node, median | rows lost |")
print("|---|---|---|---|---:|")
med = {}
for stack in ("reference", "paceline"):
    h = [r for r in rows if r["scenario"] == "hang" and r["stack"] == stack]
    if not h:
        continue
    out = [r["outage_ms"] / 1000 for r in h]
    med[stack] = statistics.median(out)
    by = {}
    for r in h:
        by[r.get("recovered_by")] = by.get(r.get("recovered_by"), 0) + 1
    dem = [o["exec_ms"] / 1000 for r in h for o in r.get("hung_node_ops", []) if o.get("op") == "demote" and o.get("exec_ms") is not None]
    d = f"{statistics.median(dem):.1f}" if dem else "-"
    print(f"| {stack} | {statistics.median(out):.1f} ({min(out):.1f}–{max(out):.1f}) | "
          f"{', '.join(f'{k} ×{v}' for k, v in sorted(by.items()))} | {d} | {sum(r['rows_lost'] for r in h)} |")
if "reference" in med and "paceline" in med and med["paceline"] > 0:
    print(f"\nhang, median outage ratio reference / paceline: {med['reference'] / med['paceline']:.1f}×")
print("\n| stack | update-params: reloaded | restarted | worst write outage |")
print("|---|---:|---:|---:|")
for r in rows:
    if r["scenario"] == "update-params":
        print(f"| {r['stack']} | {len(r.get('reloaded', []))} | {len(r.get('restarted', []))} | {r['outage_ms'] / 1000:.2f} |")
PY
