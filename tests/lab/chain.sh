#!/usr/bin/env bash
# Faults one after the other in the EC2 lab (issue #26.9): "a fault is handled only when the
# cluster is whole again". First the primary cut off N times in a row (--partitions), then a
# chain of random faults (--chain; kill -9, switchover, freeze, partition, crash, fence) in
# an order drawn from --seed. After every one: a healthy cluster (one primary with the VIP,
# every other node a streaming standby with a positive score), no acknowledged row lost
# (with --sync on, the cut-off primary's side too; asynchronous, its side is only reported),
# never two primaries, and a fenced or crashed node back as a streaming standby. One JSON
# line per scenario on stderr, a summary on stdout; exit 1 at the first scenario that
# leaves the cluster short (the nodes' logs are kept in $LAB_KEEP_LOGS, /var/tmp by default).
#   usage: tests/lab/chain.sh [--sync off|on] [--partitions N] [--chain N] [--seed S]   (as root)
# Takes about a minute per scenario; not part of CI (tests/lab_cluster.rs runs each fault).
set -euo pipefail
cd "$(dirname "$0")/../.."
SYNC=off PARTS=10 CHAIN=12 SEED=$((RANDOM))
while (( $# )); do
    case $1 in
        --sync) SYNC=$2; shift 2 ;;
        --partitions) PARTS=$2; shift 2 ;;
        --chain) CHAIN=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
export LAB_QUIET=1
trap '$LAB down >/dev/null 2>&1 || true' EXIT
$LAB up --nodes 3 --ec2 >/dev/null
$LAB config --stack paceline --sync "$SYNC" >/dev/null

n=0
# One scenario; its verdict. Returns 1 when the cluster is not whole after it.
run() {
    local s=$1 line
    n=$((n + 1))
    line=$($LAB scenario "$s" 2>/dev/null || true)
    echo "$line" >&2
    python3 - "$n" "$s" "$line" "$SYNC" <<'PY'
import json, sys
n, s, line, sync = sys.argv[1:]
try:
    j = json.loads(line)
except ValueError:
    print(f"{n:>3} {s:<14} FAIL: no result ({line[:200]!r})"); sys.exit(1)
bad = []
if not j.get("healthy_after"): bad.append("not healthy")
if len(j.get("standbys_after") or []) != 2: bad.append(f"standbys {j.get('standbys_after')}")
if j.get("rows_lost") != 0: bad.append(f"rows lost {j.get('rows_lost')}")
if j.get("max_primaries_seen") != 1: bad.append(f"primaries seen {j.get('max_primaries_seen')}")
if s in ("partition", "fence", "node-crash") and j.get("fenced_node_streaming") is not True: bad.append("the fenced node does not stream")
# The writer on the cut-off primary's side: with synchronous replication the isolated
# primary acknowledges nothing; asynchronous, what it acknowledged until it stopped is lost
# (docs/lab.md, `partition`), reported, not a failure.
side = j.get("side_writer") or {}
note = ""
if side:
    note = f", cut-off side: {side.get('acked_after_cut')} acked after the cut, {side.get('lost_rows')} lost"
    if sync == "on" and side.get("acked_after_cut"): bad.append(f"cut-off primary acknowledged {side['acked_after_cut']}")
    if sync == "on" and side.get("lost_rows"): bad.append(f"cut-off side lost {side['lost_rows']}")
print(f"{n:>3} {s:<14} {'ok  ' if not bad else 'FAIL'} {j.get('primary_before')} -> {j.get('primary_after')}, outage {j.get('outage_ms')} ms, {j.get('acked')} acked, {j.get('rows_lost')} lost{note}" + (": " + "; ".join(bad) if bad else ""))
sys.exit(1 if bad else 0)
PY
}

fail() { export LAB_KEEP_LOGS=${LAB_KEEP_LOGS:-/var/tmp}; echo "stopped at scenario $n (seed $SEED); logs kept in $LAB_KEEP_LOGS" ; exit 1; }
echo "synchronous_mode=$SYNC: $PARTS partitions of the primary, then $CHAIN random faults (seed $SEED)"
for ((i = 1; i <= PARTS; i++)); do run partition || fail; done
faults=(kill-postgres switchover hang partition node-crash fence)
RANDOM=$SEED
for ((i = 1; i <= CHAIN; i++)); do run "${faults[RANDOM % ${#faults[@]}]}" || fail; done
echo "all $n scenarios left the cluster whole"
