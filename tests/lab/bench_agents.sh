#!/usr/bin/env bash
# PAF's pgsqlms vs ocf:paceline:pgsqlms, monitor on the same instances of a running lab
# (paceline-lab up && paceline-lab config): each agent run by hand inside the primary's and
# a standby's node with the environment Pacemaker gives a recurring monitor; wall time by
# hyperfine -N (median of N), processes forked by strace -f.
#   usage: tests/lab/bench_agents.sh [--runs N] [--out FILE]      (as root)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=20 OUT=""
while (( $# )); do case $1 in --runs) N=$2; shift 2 ;; --out) OUT=$2; shift 2 ;; *) echo "unknown argument $1" >&2; exit 2 ;; esac; done
LAB="bash tests/lab/lab.sh"
PAF=/usr/lib/ocf/resource.d/heartbeat/pgsqlms
OURS=/usr/lib/ocf/resource.d/paceline/pgsqlms
[[ -x $PAF && -x $OURS ]] || { echo "need $PAF and $OURS (paceline install)" >&2; exit 1; }
status=$($LAB status)
primary=$(awk '$3 == "primary" {print $1}' <<<"$status" | head -1)
standby=$(awk '$3 == "standby" {print $1}' <<<"$status" | head -1)
[[ -n $primary && -n $standby ]] || { echo "need a primary and a standby (paceline-lab status)" >&2; exit 1; }

envs() {   # the environment of a recurring monitor of pgsqld on node $1 (role $2)
    local interval=3000; [[ $2 == primary ]] && interval=2000
    echo OCF_ROOT=/usr/lib/ocf OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=0 OCF_RESOURCE_INSTANCE=pgsqld HA_LOGFACILITY=none \
        OCF_RESKEY_bindir=/usr/lib/postgresql/15/bin OCF_RESKEY_pgdata=/var/lib/postgresql/15/main \
        OCF_RESKEY_pghost=/run/postgresql OCF_RESKEY_CRM_meta_interval=$interval OCF_RESKEY_CRM_meta_timeout=10000 \
        OCF_RESKEY_CRM_meta_notify=true OCF_RESKEY_CRM_meta_clone_max=3 OCF_RESKEY_CRM_meta_master_max=1 \
        OCF_RESKEY_CRM_meta_promoted_max=1 OCF_RESKEY_CRM_meta_on_node=$1 OCF_RESKEY_crm_feature_set=3.16.2
}
measure() {   # node role agent -> "median_ms forks rc"
    local node=$1 role=$2 agent=$3 e json forks rc=0
    e=$(envs "$node" "$role")
    # shellcheck disable=SC2086
    $LAB node "${node#node}" env $e "$agent" monitor >/dev/null 2>&1 || rc=$?
    # shellcheck disable=SC2086
    $LAB node "${node#node}" env $e hyperfine -N -i --style none --warmup 2 --runs "$N" --export-json /tmp/bench-agent.json "$agent monitor" >/dev/null 2>&1 || true
    json=$($LAB node "${node#node}" cat /tmp/bench-agent.json)
    # shellcheck disable=SC2086
    forks=$($LAB node "${node#node}" env $e strace -f -qq -e trace=fork,vfork,clone,clone3 -o /tmp/bench-agent.strace "$agent" monitor >/dev/null 2>&1; \
            $LAB node "${node#node}" cat /tmp/bench-agent.strace | grep -E '(fork|clone3?)\(' | grep -v CLONE_THREAD | grep -cE '= [0-9]+$' || true)
    python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["results"][0]["median"]*1000, 1))' "$json" | tr '\n' ' '
    echo "$forks $rc"
}
{
    echo "pgsqlms monitor, PAF 2.3.0 vs paceline, run by hand in a lab node with a recurring monitor's environment; median of $N (hyperfine -N); $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| instance | PAF ms | paceline ms | ratio | PAF forks | paceline forks | rc PAF / paceline |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for role in primary standby; do
        node=$primary; [[ $role == standby ]] && node=$standby
        read -r pt pf prc < <(measure "$node" "$role" "$PAF")
        read -r ot of orc < <(measure "$node" "$role" "$OURS")
        echo "| $role ($node) | $pt | $ot | $(python3 -c "print(round($pt/$ot, 1))") | $pf | $of | $prc / $orc |"
    done
} | tee "${OUT:-/dev/null}"
