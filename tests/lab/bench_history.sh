#!/usr/bin/env bash
# What the incident record costs a switchover (issue #24.5), side by side in one run: the
# paceline stack, switchovers in a row alternating pgsqlms incident_record=false (off) and
# true (on, the default), the same lab. For each: the write outage the probe saw, and from
# Pacemaker's log the execution time of the demote and the promote (the actions on the
# switchover's critical path that the record touches), and with the record on what promote
# logged for writing it. Prints each run, medians, and on's median over off's.
#   usage: tests/lab/bench_history.sh [--runs N] [--out FILE]   (as root; LAB_PREFIX/LAB_DIR as lab.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=10 OUT=""
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
LAB_DIR=${LAB_DIR:-/var/lib/paceline-lab}
RAW=$(mktemp /tmp/lab-history.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true' EXIT
$LAB down >/dev/null 2>&1 || true
$LAB up --nodes 3 >/dev/null
$LAB config --stack paceline >/dev/null

# The newest "<op> (call N, PID P) exited with status 0 (execution time X)" of pgsqld on
# any node, in ms.
exec_ms() {
    grep -h "pgsqld $1 (call" "$LAB_DIR"/node*/var/log/pacemaker/pacemaker.log | sort | tail -1 |
        sed -E 's/.*execution time ([0-9.]+)(m?s)[,)].*/\1 \2/' | awk '{ print ($2 == "s") ? int($1 * 1000) : int($1) }'
}
written_ms() {
    # "written (N ms; M ms before pg_ctl promote)": both on the promotion's critical path.
    grep -h "incident record of timeline .* written (" "$LAB_DIR"/node*/var/log/pacemaker/pacemaker.log | sort | tail -1 |
        sed -E 's/.*written \(([0-9]+) ms; ([0-9]+) ms before.*/\1 \2/' | awk '{ print $1 + $2 }'
}

for ((i = 1; i <= 2 * RUNS; i++)); do
    mode=$([[ $((i % 2)) == 1 ]] && echo off || echo on)
    $LAB node 1 pcs resource update pgsqld incident_record=$([[ $mode == on ]] && echo true || echo false) >/dev/null
    sleep 4
    echo "$mode switchover $(( (i + 1) / 2 ))/$RUNS" >&2
    line=$($LAB scenario switchover 2>/dev/null) || true
    echo "$line" >&2
    if [[ $line != "{"* ]]; then
        echo "$mode {\"scenario_failed\": true}" >>"$RAW"
        continue
    fi
    echo "$mode $line {\"demote_ms\": $(exec_ms demote), \"promote_ms\": $(exec_ms promote), \"written_ms\": $([[ $mode == on ]] && written_ms || echo null)}" >>"$RAW"
done
python3 - "$RAW" "$RUNS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
raw, runs = sys.argv[1], sys.argv[2]
by, bad = {}, []
for line in open(raw):
    mode, _, rest = line.strip().partition(" ")
    if "scenario_failed" in rest:
        bad.append((mode, rest))
        continue
    scen, _, extra = rest.rpartition("} {")
    j, x = json.loads(scen + "}"), json.loads("{" + extra)
    if j.get("rows_lost") or j.get("double_primary") or not j.get("healthy_after"):
        bad.append((mode, rest))
    for k, v in (("outage", j["outage_ms"]), ("demote", x["demote_ms"]), ("promote", x["promote_ms"]), ("written", x["written_ms"])):
        if v is not None:
            by.setdefault((mode, k), []).append(v)
print(f"Switchovers with the incident record off and on, alternating, {runs} each, 3 nodes, paceline stack (medians, ms):\n")
print("| figure | off | on | on - off | on / off | on runs |")
print("|---|---|---|---|---|---|")
for k in ("outage", "demote", "promote"):
    off, on = by.get(("off", k), []), by.get(("on", k), [])
    if off and on:
        a, b = statistics.median(off), statistics.median(on)
        print(f"| {k} | {a:.0f} | {b:.0f} | {b - a:+.0f} | {b / a:.2f}x | {' '.join(map(str, on))} |")
w = by.get(("on", "written"), [])
if w:
    print(f"\npromote's own figure for writing the record: median {statistics.median(w):.0f} ms (runs: {' '.join(map(str, w))})")
for mode, j in bad:
    print(f"\nNOT WHOLE ({mode}): {j}")
PY
