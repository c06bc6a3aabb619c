#!/usr/bin/env bash
# `paceline status` against what a DBA runs today for the same picture, in the same lab and
# the same run (issue #12's goal: <= 100 ms on a 3-node cluster), with hyperfine on node 1:
#   paceline status          the whole screen: crm_mon + cibadmin + every node's state service
#   paceline status --json   the same, as JSON
#   crm_mon -1               Pacemaker's view only (no PostgreSQL, no lag)
#   pcs status               the same through pcs (Python)
#   crm_mon + 3 psql         crm_mon, then psql on each node for role and LSN (what people script)
#   usage: tests/lab/bench_status.sh [--runs N] [--out FILE]   (as root; brings up its own lab)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=20 OUT=""
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
PACELINE=${PACELINE:-$(ls target/*/release/paceline target/*/debug/paceline 2>/dev/null | head -1)}
[[ -x $PACELINE ]] || { echo "no paceline binary (cargo build)" >&2; exit 2; }
RAW=$(mktemp -d /tmp/lab-bench-status.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true; rm -rf "$RAW"' EXIT
"$PACELINE" install >/dev/null
$LAB down >/dev/null 2>&1 || true
$LAB up --nodes 3 >/dev/null 2>&1
$LAB config --stack paceline >/dev/null 2>&1
PSQL3='for h in 192.0.2.11 192.0.2.12 192.0.2.13; do psql -X -A -t -h $h -U postgres -d postgres -c "select pg_is_in_recovery(), pg_current_wal_lsn()" 2>/dev/null || psql -X -A -t -h $h -U postgres -d postgres -c "select pg_is_in_recovery(), pg_last_wal_replay_lsn()"; done'
$LAB node 1 hyperfine --style basic --warmup 3 --runs "$RUNS" -i --export-json "$RAW/h.json" \
    -n "paceline status" "$PACELINE status" \
    -n "paceline status --json" "$PACELINE status --json" \
    -n "crm_mon -1" "crm_mon -1" \
    -n "pcs status" "pcs status" \
    -n "crm_mon -1 + psql on 3 nodes" "crm_mon -1 >/dev/null; $PSQL3" >&2
python3 - "$RAW/h.json" "$RUNS" "$(git log -1 --format=%h 2>/dev/null || echo '?')" <<'PY' | tee "${OUT:-/dev/null}"
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"Lab, 3 nodes (paceline stack, state service on every node), commit {sys.argv[3]}; hyperfine on node1, {sys.argv[2]} runs each. Milliseconds.\n")
print("| command | shows | mean | median | min | max |")
print("|---|---|---:|---:|---:|---:|")
shows = {"paceline status": "cluster + PostgreSQL of every node + verdict", "paceline status --json": "the same, JSON",
         "crm_mon -1": "cluster only", "pcs status": "cluster only", "crm_mon -1 + psql on 3 nodes": "cluster, then role + LSN per node"}
by = {}
for x in r:
    by[x["command"]] = x["median"]
    print(f"| `{x['command']}` | {shows.get(x['command'], '')} | {x['mean']*1000:.0f} | {x['median']*1000:.0f} | {x['min']*1000:.0f} | {x['max']*1000:.0f} |")
p = by.get("paceline status")
if p:
    for k in ("pcs status", "crm_mon -1 + psql on 3 nodes", "crm_mon -1"):
        if k in by:
            print(f"\n`{k}` / `paceline status` (median): {by[k] / p:.1f}×")
PY
