#!/usr/bin/env bash
# The multi-AZ lab's outages next to the single-AZ EC2 lab's, in one run: the same paceline
# stack with fencing through EC2, once with the VIP + awsvip's secondary IP (up --ec2,
# crm-examples/pgsql-ha-ec2.sh), once with the overlay IP moved by route tables (up --ec2
# --multiaz, crm-examples/pgsql-ha-ec2-multiaz.sh, ocf:paceline:aws-vpc-move-ip). Each
# scenario (switchover, fence, node-crash) RUNS times on one lab per stack; medians.
#   usage: tests/lab/bench_multiaz.sh [--runs N] [--raw FILE] [--out FILE]   (as root)
# The lab's own prefix and directory (LAB_PREFIX, LAB_DIR: default plz, /var/lib/paceline-lab-plz).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=3 OUT="" RAW=""
while (( $# )); do case $1 in --runs) RUNS=$2; shift 2 ;; --out) OUT=$2; shift 2 ;; --raw) RAW=$2; shift 2 ;; *) echo "unknown argument $1" >&2; exit 2 ;; esac; done
export LAB_PREFIX=${LAB_PREFIX:-plz} LAB_DIR=${LAB_DIR:-/var/lib/paceline-lab-plz}
LAB="bash tests/lab/lab.sh"
RAW=${RAW:-$(mktemp /tmp/lab-multiaz.XXXXXX)}
trap '$LAB down >/dev/null 2>&1 || true' EXIT
for kind in awsvip overlay; do
    $LAB down >/dev/null 2>&1 || true
    if [[ $kind == overlay ]]; then $LAB up --nodes 3 --ec2 --multiaz >&2; else $LAB up --nodes 3 --ec2 >&2; fi
    $LAB config --stack paceline >&2
    for scenario in switchover fence node-crash; do
        for ((i = 1; i <= RUNS; i++)); do
            echo "$kind $scenario run $i/$RUNS" >&2
            $LAB scenario "$scenario" 2>/dev/null | sed "s/^{/{\"address\":\"$kind\",/" | tee -a "$RAW" >&2
        done
    done
done
python3 - "$RAW" "$RUNS" <<'PY' | tee "${OUT:-/dev/null}"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"EC2 lab, paceline stack, 3 nodes, fencing through EC2, {sys.argv[2]} runs per scenario (medians)")
print()
print("| scenario | VIP + awsvip: write outage | overlay IP (aws-vpc-move-ip): write outage | rows lost (awsvip / overlay) | 2 primaries | address follows (awsvip / overlay) |")
print("|---|---:|---:|---|---|---|")
for sc in ("switchover", "fence", "node-crash"):
    by = {k: [r for r in rows if r["scenario"] == sc and r["address"] == k] for k in ("awsvip", "overlay")}
    med = lambda k: "%.1f s" % (statistics.median(r["outage_ms"] for r in by[k]) / 1000) if by[k] else "-"
    lost = lambda k: str(sum(r["rows_lost"] for r in by[k]))
    dbl = "yes" if any(r["double_primary"] for k in by for r in by[k]) else "no"
    fol = lambda k: "/".join(str(r.get("routes_follow", r.get("secondary_ip_follows", "-"))).lower() for r in by[k])
    print(f"| {sc} | {med('awsvip')} | {med('overlay')} | {lost('awsvip')} / {lost('overlay')} | {dbl} | {fol('awsvip')} / {fol('overlay')} |")
PY
