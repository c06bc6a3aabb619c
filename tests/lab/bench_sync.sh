#!/usr/bin/env bash
# Synchronous replication figures (issue #9), every mode in the same run on the same machine:
# switchovers, the write cost (pgbench through the VIP), every standby down, and — with
# --ec2 — the partition with a writer on the cut-off primary's side.
#   usage: tests/lab/bench_sync.sh [--runs N] [--pgbench-s S] [--ec2] [--out FILE]   (as root)
# Each mode gets a fresh lab (paceline stack, 3 nodes, monitors 2 s/3 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=10 PGBENCH_S=15 EC2=false OUT=""
while (( $# )); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --pgbench-s) PGBENCH_S=$2; shift 2 ;;
        --ec2) EC2=true; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
LAB="bash tests/lab/lab.sh"
CLIENT=${LAB_PREFIX:-plab}-client
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
VIP=192.0.2.100
RAW=$(mktemp /tmp/lab-bench-sync.XXXXXX)
trap '$LAB down >/dev/null 2>&1 || true' EXIT
fresh() { $LAB down >/dev/null 2>&1 || true; $LAB up --nodes 3 "$@" >/dev/null 2>&1; }

for mode in off on strict; do
    fresh && $LAB config --stack paceline --sync "$mode" >/dev/null 2>&1
    for ((i = 1; i <= RUNS; i++)); do
        echo "sync $mode: switchover $i/$RUNS" >&2
        $LAB scenario switchover 2>/dev/null | tee -a "$RAW" >&2
    done
    echo "sync $mode: pgbench ${PGBENCH_S} s" >&2
    ip netns exec "$CLIENT" "$PGBENCH" -h "$VIP" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
    out=$(ip netns exec "$CLIENT" "$PGBENCH" -h "$VIP" -U postgres -n -c 4 -j 2 -T "$PGBENCH_S" postgres 2>/dev/null)
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
    printf '{"scenario":"pgbench","synchronous_mode":"%s","tps":%s,"latency_ms":%s,"clients":4,"seconds":%s}\n' "$mode" "${tps:-null}" "${lat:-null}" "$PGBENCH_S" | tee -a "$RAW" >&2
    echo "sync $mode: standbys-down" >&2
    $LAB scenario standbys-down 2>/dev/null | tee -a "$RAW" >&2
    echo "sync $mode: election (primary crash, one standby cut off)" >&2
    $LAB scenario election 2>/dev/null | tee -a "$RAW" >&2
    if [[ $EC2 == true ]]; then
        echo "sync $mode: partition (EC2 fencing)" >&2
        fresh --ec2 && $LAB config --stack paceline --sync "$mode" >/dev/null 2>&1
        $LAB scenario partition 2>/dev/null | tee -a "$RAW" >&2
    fi
done

python3 - "$RAW" "$RUNS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
modes = ["off", "on", "strict"]
def of(sc, m):
    return [r for r in rows if r["scenario"] == sc and r.get("synchronous_mode") == m]
print(f"Lab, stack `paceline`, 3 nodes, monitors 2 s/3 s, writer every 100 ms; synchronous_mode off / on / strict in one run, a fresh lab each.\n")
print("| synchronous_mode | switchover outage ms (median of N) | min–max | rows lost | pgbench tps (4 clients) | latency ms | standbys down: outage ms | election: promoted | rows lost | partition: acked after cut (side writer) | side rows lost |")
print("|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
base = None
for m in modes:
    sw = of("switchover", m)
    o = [r["outage_ms"] for r in sw]
    pb = of("pgbench", m)
    sd = of("standbys-down", m)
    el = of("election", m)
    pa = of("partition", m)
    med = int(statistics.median(o)) if o else None
    if m == "off":
        base = med
    ratio = f" ({med / base:.2f}× off)" if base and med and m != "off" else ""
    side = pa[0].get("side_writer", {}) if pa else {}
    cells = [
        m,
        f"{med}{ratio} (N={len(o)})" if o else "",
        f"{min(o)}–{max(o)}" if o else "",
        str(sum(r["rows_lost"] or 0 for r in sw)),
        f"{pb[0]['tps']:.0f}" if pb and pb[0]["tps"] is not None else "",
        f"{pb[0]['latency_ms']:.2f}" if pb and pb[0]["latency_ms"] is not None else "",
        str(sd[0]["outage_ms"]) if sd else "",
        ("ok" if el[0].get("election_ok") else "WRONG NODE") if el else "",
        str(el[0]["rows_lost"]) if el else "",
        str(side.get("acked_after_cut", "")),
        str(side.get("lost_rows", "")),
    ]
    print("| " + " | ".join(cells) + " |")
PY
echo "raw JSON lines: $RAW" >&2
