#!/usr/bin/env bash
# kill -9 of the primary's postmaster with the shipped monitor intervals (15 s promoted,
# 16 s unpromoted), with and without the state service's instant crash reports, side by
# side in one run (issue #11's figure in docs/benchmarks.md):
#   reference      PAF + heartbeat IPaddr2, 15 s/16 s monitors: the monitor finds the crash
#   paceline       ocf:paceline agents, 15 s/16 s, STATE_SERVICE=false: the monitor finds it
#   paceline+state the same with the state service (crm-examples' default): it reports the
#                  crash to Pacemaker at once (crm_resource --fail)
#   paceline 2s    STATE_SERVICE=false with the lab's fast 2 s/3 s monitors: what the
#                  default intervals with crash reports should match
#   usage: tests/lab/bench_crash.sh [--runs N] [--out FILE] [--only NAME...]   (as root)
# With PACELINE set (the paceline binary), the agents are installed from its build before
# each paceline variant's configuration (other labs on the machine may install others).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=5 OUT="" ONLY=""
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --only) ONLY+=" $2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive integer" >&2; exit 2; }
LAB="bash tests/lab/lab.sh"
RAW=$(mktemp /tmp/lab-bench-crash.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true; rm -f "$RAW"' EXIT
# name stack state-service promoted unpromoted
for variant in "reference reference false 15s 16s" "paceline paceline false 15s 16s" \
               "paceline+state paceline true 15s 16s" "paceline-2s paceline false 2s 3s"; do
    read -r name stack state mp mu <<<"$variant"
    [[ -z $ONLY || " $ONLY " == *" $name "* ]] || continue
    $LAB down >/dev/null 2>&1 || true
    $LAB up --nodes 3 >/dev/null 2>&1
    [[ $stack != paceline || -z ${PACELINE:-} ]] || "$PACELINE" install >/dev/null
    MONITOR_PROMOTED=$mp MONITOR_UNPROMOTED=$mu STATE_SERVICE=$state $LAB config --stack "$stack" >/dev/null 2>&1
    for ((i = 1; i <= RUNS; i++)); do
        echo "$name kill-postgres run $i/$RUNS" >&2
        MONITOR_PROMOTED=$mp MONITOR_UNPROMOTED=$mu $LAB scenario kill-postgres 2>/dev/null | grep '^{' \
            | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['variant']='$name'; print(json.dumps(r))" | tee -a "$RAW" >&2
    done
done
$LAB down >/dev/null 2>&1 || true

python3 - "$RAW" "$RUNS" "$(git log -1 --format=%h)" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs, commit = sys.argv[2], sys.argv[3]
print(f"Lab, 3 nodes, commit {commit}; kill -9 of the primary's postmaster, {runs} runs per variant. Seconds.\n")
print("| variant | monitors | write outage, median (min–max) | recovery, median | rows lost | 2 primaries |")
print("|---|---|---|---|---:|---|")
med = {}
for name in ("reference", "paceline", "paceline+state", "paceline-2s"):
    v = [r for r in rows if r["variant"] == name]
    if not v:
        continue
    out = [r["outage_ms"] / 1000 for r in v]
    rec = [r["recovery_ms"] / 1000 for r in v if r.get("recovery_ms") is not None]
    med[name] = statistics.median(out)
    iv = v[0]["intervals"]
    print(f"| {name} | {iv['monitor_promoted']}/{iv['monitor_unpromoted']} | {statistics.median(out):.2f} ({min(out):.2f}–{max(out):.2f}) | "
          f"{statistics.median(rec):.2f} | {sum(r['rows_lost'] for r in v)} | {any(r['double_primary'] for r in v)} |")
for a, b in (("reference", "paceline+state"), ("paceline", "paceline+state")):
    if a in med and b in med and med[b] > 0:
        print(f"\nmedian outage ratio {a} / {b}: {med[a] / med[b]:.1f}×")
PY
