#!/usr/bin/env bash
# Instant reconnect (issue #23.3), side by side in one run: switchovers in a row on
# PostgreSQL's default wal_retrieve_retry_interval (5 s), the paceline stack, with
#   off        synchronous_mode=off (what the others are held to)
#   on-wait    synchronous_mode=on, pgsql-state instant_reconnect=false (the standbys retry
#              on PostgreSQL's schedule: the new primary's commits wait for them)
#   on         synchronous_mode=on, instant_reconnect=true (the default)
# and prints the write outage of each run, medians, and each median's ratio to off's.
#   usage: tests/lab/bench_reconnect.sh [--runs N] [--out FILE]   (as root; LAB_PREFIX/LAB_DIR as lab.sh)
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
export RETRY_INTERVAL=default PROBE_CONNECT_TIMEOUT_MS=${PROBE_CONNECT_TIMEOUT_MS:-250}
LAB="bash tests/lab/lab.sh"
RAW=$(mktemp /tmp/lab-reconnect.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true' EXIT
for mode in off on-wait on; do
    $LAB down >/dev/null 2>&1 || true
    $LAB up --nodes 3 >/dev/null
    $LAB config --stack paceline --sync "${mode%-wait}" >/dev/null
    if [[ $mode == on-wait ]]; then
        $LAB node 1 pcs resource update pgsql-state instant_reconnect=false >/dev/null
        sleep 5
    fi
    for ((i = 1; i <= RUNS; i++)); do
        echo "$mode switchover $i/$RUNS" >&2
        # A scenario that fails (the cluster not whole again in time) is reported, not fatal.
        line=$($LAB scenario switchover 2>/dev/null) || true
        echo "$line" >&2
        [[ $line == "{"* ]] && echo "$mode $line" >>"$RAW" || echo "$mode {\"scenario_failed\": true}" >>"$RAW"
    done
done
python3 - "$RAW" "$RUNS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
raw, runs = sys.argv[1], sys.argv[2]
by = {}
rec = {}
bad = []
for line in open(raw):
    mode, _, js = line.partition(" ")
    j = json.loads(js)
    if j.get("scenario_failed"):
        bad.append((mode, j))
        continue
    by.setdefault(mode, []).append(j["outage_ms"])
    rec.setdefault(mode, []).append(j.get("recovery_ms") or 0)
    if j.get("rows_lost") or j.get("double_primary") or not j.get("healthy_after"):
        bad.append((mode, j))
base = statistics.median(by["off"])
print(f"Switchover write outage, {runs} in a row per mode, wal_retrieve_retry_interval at PostgreSQL's default (5 s), 3 nodes, paceline stack:\n")
print("| mode | median ms | min | max | runs (ms) | median / off | recovery median ms |")
print("|---|---|---|---|---|---|---|")
for mode in ("off", "on-wait", "on"):
    v = by.get(mode, [])
    if not v:
        continue
    m = statistics.median(v)
    print(f"| {mode} | {m:.0f} | {min(v)} | {max(v)} | {' '.join(map(str, v))} | {m / base:.2f}x | {statistics.median(rec[mode]):.0f} |")
for mode, j in bad:
    print(f"\nNOT WHOLE ({mode}): {json.dumps(j)}")
PY
