#!/usr/bin/env bash
# Routing without a VIP (issue #11), side by side in one run: the same scenarios on three
# stacks, alternating stack by stack within each repetition so that they share the machine's
# ups and downs, a fresh 3-node lab for every stack and repetition (docs/lab.md):
#   vip      ocf:paceline:pgsqlms + ocf:paceline:IPaddr2, the writer through the VIP
#            (config --stack paceline)
#   haproxy  ocf:paceline:pgsqlms + the state service, no VIP: HAProxy on every node,
#            checks GET /primary on port 8008, the writer through the nodes' HAProxy
#            (config --stack paceline --routing haproxy; crm-examples/haproxy.cfg)
#   seed     the seed demo: PAF's pgsqlms, HAProxy with tcp-check on the psql-based
#            pgsql-state socket (config --stack reference --routing seed)
# Scenarios: switchover, kill-postgres, node-crash; with --ec2 (fencing through the lab's
# fake EC2) fence and partition as well, and node-crash is fenced.
#   usage: tests/lab/bench_haproxy.sh [--runs N] [--stacks vip,haproxy,seed] [--ec2] [--sync on|strict] [--out FILE]
# --sync: synchronous replication on the paceline stacks (vip, haproxy; PAF has none), so
# that a partition's cut-off primary acknowledges nothing that is then lost.
# As root, after `paceline install`. LAB_PREFIX / LAB_DIR / PACELINE / PACELINE_SRC are
# passed to lab.sh (use a private prefix and directory). Raw JSON lines: --raw FILE (or a
# temporary file, named at the end). About 2.5 min per stack and run (4 with --ec2).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=3 OUT="" EC2=0 STACKS=vip,haproxy,seed RAW="" SYNC=off
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --stacks) STACKS=$2; shift 2 ;;
        --ec2) EC2=1; shift ;;
        --sync) SYNC=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --raw) RAW=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
[[ -n $RAW ]] || RAW=$(mktemp /tmp/lab-bench-haproxy.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true' EXIT
config_of() {
    case $1 in
        vip) echo "--stack paceline --sync $SYNC" ;;
        haproxy) echo "--stack paceline --sync $SYNC --routing haproxy" ;;
        seed) echo "--stack reference --routing seed" ;;
        *) echo "unknown stack $1" >&2; exit 2 ;;
    esac
}
scenarios=(switchover kill-postgres)
(( EC2 )) && scenarios+=(fence partition)
scenarios+=(node-crash)   # last: without fencing the crashed node is rebooted by the lab
up_args=(--nodes 3); (( EC2 )) && up_args+=(--ec2)

for ((i = 1; i <= RUNS; i++)); do
    for st in ${STACKS//,/ }; do
        echo "== run $i/$RUNS: $st ($(config_of "$st"))" >&2
        $LAB down >/dev/null 2>&1 || true
        # shellcheck disable=SC2046
        if ! { $LAB up "${up_args[@]}" >/dev/null 2>&1 && $LAB config $(config_of "$st") >/dev/null 2>&1; }; then
            echo "{\"bench_stack\":\"$st\",\"run\":$i,\"error\":\"lab up/config failed\"}" | tee -a "$RAW" >&2
            continue
        fi
        for sc in "${scenarios[@]}"; do
            line=$($LAB scenario "$sc" 2>/dev/null | grep '^{' || true)
            [[ -n $line ]] || line="{\"scenario\":\"$sc\",\"error\":\"no result\"}"
            line="{\"bench_stack\":\"$st\",\"run\":$i,${line#\{}"
            echo "$line" | tee -a "$RAW" >&2
        done
    done
done
$LAB down >/dev/null 2>&1 || true

python3 - "$RAW" "$RUNS" "$STACKS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs, stacks = sys.argv[2], sys.argv[3].split(",")
names = {"vip": "VIP (paceline)", "haproxy": "HAProxy + state service (paceline)", "seed": "seed: HAProxy + psql pgsql-state (PAF)"}
ok = [r for r in rows if "error" not in r]
iv = ok[0]["intervals"] if ok else {}
print(f"Routing bench, 3 nodes, {runs} run(s) per stack and scenario, a fresh lab each; monitors: promoted "
      f"{iv.get('monitor_promoted')}, unpromoted {iv.get('monitor_unpromoted')}; corosync token 3000 ms; "
      f"writer every 100 ms (connect timeout {ok[0].get('probe_connect_timeout_ms') if ok else '?'} ms).\n")
print("| scenario | stack | runs | write outage ms (median) | min–max | rows lost (total) | routed to a non-primary (total) | 2 primaries | note |")
print("|---|---|---:|---:|---|---:|---:|---|---|")
med = {}
for sc in ["switchover", "kill-postgres", "node-crash", "fence", "partition"]:
    for st in stacks:
        r = [x for x in ok if x["scenario"] == sc and x["bench_stack"] == st]
        failed = [x for x in rows if x.get("scenario") == sc and x["bench_stack"] == st and "error" in x]
        if not r and not failed:
            continue
        o = [x["outage_ms"] for x in r]
        lost = sum(x["rows_lost"] or 0 for x in r) if r else "–"
        routed = sum(x.get("routed_to_non_primary") or 0 for x in r) if r else "–"
        dp = "yes" if any(x["double_primary"] for x in r) else "never"
        notes = []
        moved = sum(1 for x in r if sc == "switchover" and x["primary_after"] == x["primary_before"])
        if moved:
            notes.append(f"{moved} run(s) ended back on the old primary (moved back after the clear)")
        bad = sum(1 for x in r if not x["healthy_after"])
        if bad:
            notes.append(f"{bad} not healthy after")
        if any(x.get("rows_lost") is None for x in r):
            notes.append("final check failed in some runs")
        sw = [x.get("via_switches") for x in r if x.get("via_switches")]
        if sw:
            notes.append(f"writer changed router {sum(sw)}×")
        if failed:
            notes.append(f"{len(failed)} run(s) failed")
        if o:
            med[(sc, st)] = statistics.median(o)
        print(f"| {sc} | {names.get(st, st)} | {len(r)} | {int(statistics.median(o)) if o else '–'} | "
              f"{(str(min(o)) + '–' + str(max(o))) if o else '–'} | {lost} | {routed} | {dp} | {'; '.join(notes)} |")
if ("switchover", "vip") in med and ("switchover", "haproxy") in med:
    d = med[("switchover", "haproxy")] - med[("switchover", "vip")]
    print(f"\nSwitchover through HAProxy minus through the VIP (medians): {int(d)} ms "
          f"(goal ≤ 500 ms: {'met' if d <= 500 else 'NOT met'}).")
PY
echo "raw JSON lines: $RAW" >&2
