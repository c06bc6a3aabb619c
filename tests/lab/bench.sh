#!/usr/bin/env bash
# Lab figures: every scenario RUNS times (default 5) on one stack, medians in a Markdown table.
#   usage: tests/lab/bench.sh [--stack reference|paceline] [--os debian12|debian13] [--runs N] [--scenarios a,b] [--out FILE]   (as root)
# --os: the nodes' userland (lab.sh up --os; debian13: Pacemaker 3.0, PostgreSQL 17).
# --scenarios: only these (default: switchover,kill-postgres,standby-crash,restart-all,node-crash).
# node-crash leaves the crashed ex-primary to an operator (no fencing yet), so each of its
# runs gets a fresh lab; the other scenarios share one.
set -euo pipefail
cd "$(dirname "$0")/../.."
STACK=reference OS=debian12 RUNS=5 OUT="" SCENARIOS=switchover,kill-postgres,standby-crash,restart-all,node-crash
while (( $# )); do
    case $1 in
        --stack) STACK=$2; shift 2 ;;
        --os) OS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
RAW=$(mktemp /tmp/lab-bench.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true' EXIT
fresh() { $LAB down >/dev/null 2>&1 || true; $LAB up --nodes 3 --os "$OS" >/dev/null 2>&1 && $LAB config --stack "$STACK" >/dev/null 2>&1; }

wanted() { [[ ",$SCENARIOS," == *",$1,"* ]]; }
fresh
for scenario in switchover kill-postgres standby-crash restart-all; do
    wanted "$scenario" || continue
    for ((i = 1; i <= RUNS; i++)); do
        echo "$STACK $scenario run $i/$RUNS" >&2
        $LAB scenario "$scenario" 2>/dev/null | tee -a "$RAW" >&2
    done
done
for ((i = 1; i <= RUNS; i++)); do
    wanted node-crash || break
    echo "$STACK node-crash run $i/$RUNS" >&2
    fresh
    $LAB scenario node-crash 2>/dev/null | tee -a "$RAW" >&2
done

python3 - "$RAW" "$STACK" "$RUNS" "$OS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
stack, runs, os_ = sys.argv[2], sys.argv[3], sys.argv[4]
iv = rows[0]["intervals"] if rows else {}
print(f"Lab ({os_}), stack `{stack}`, 3 nodes, {runs} runs per scenario; monitors: promoted {iv.get('monitor_promoted')}, "
      f"unpromoted {iv.get('monitor_unpromoted')}, VIP {iv.get('vip_monitor')}; corosync token 3000 ms; writer every 100 ms.\n")
print("| scenario | runs | write outage ms (median) | min–max | recovery ms (median) | rows lost (total) | double primary | note |")
print("|---|---:|---:|---|---:|---:|---|---|")
for sc in ["switchover", "kill-postgres", "node-crash", "standby-crash", "restart-all"]:
    r = [x for x in rows if x["scenario"] == sc]
    if not r:
        continue
    o = [x["outage_ms"] for x in r]
    rec = [x["recovery_ms"] for x in r]
    lost = sum(x["rows_lost"] or 0 for x in r)
    dp = "yes" if any(x["double_primary"] for x in r) else "never"
    note = sorted({x.get("crashed_node_after_boot", "") for x in r} - {""})
    note = ("crashed ex-primary after reboot: " + ", ".join(note)) if note else ""
    bad = sum(1 for x in r if not x["healthy_after"])
    if bad:
        note += f" ({bad} runs not healthy after)"
    print(f"| {sc} | {len(r)} | {int(statistics.median(o))} | {min(o)}–{max(o)} | {int(statistics.median(rec))} | {lost} | {dp} | {note} |")
PY
echo "raw JSON lines: $RAW" >&2
