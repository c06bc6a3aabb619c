#!/usr/bin/env bash
# PAF's pgsqlms vs ocf:paceline:pgsqlms: promote, demote and the notifications of a
# switchover, on the same PostgreSQL instances, in one run.
#
# Brings up its own 3-node lab (LAB_PREFIX / LAB_DIR, default pld and
# /var/lib/paceline-lab-pld, so it does not clash with another lab), configures it with the
# reference stack, waits for a healthy cluster, then sets maintenance-mode=true so Pacemaker
# leaves the resources alone, and plays switchovers by hand inside the nodes, with the
# environment Pacemaker gives each action (OCF_RESKEY_*, CRM_meta_* with the op's timeout,
# the notify_* lists of a transition that demotes P and promotes T), in Pacemaker's order:
#
#   notify pre-demote (P, O, T) -> demote P -> [VIP off P] -> notify post-demote (P, O, T)
#   -> notify pre-promote (P, O, T) -> promote T -> notify post-promote (P, O, T)
#   -> [VIP on T, standbys reconnected to T: untimed]
#
# (P the primary, T the target, O the third node; node1 -> node2, then back.) Each run does,
# per agent (PAF first, then ours, alternating run by run): two switchovers timed (1->2, 2->1)
# and two with every action under strace -f (processes forked, threads not counted). Wall
# time: a small timer inside the node around the agent's process. Each switchover ends with
# node1 or node2 primary and the VIP on it; each run ends on node1 as it began, so leaving
# maintenance mode finds the roles Pacemaker last saw. The lab is torn down on exit.
#
#   usage: tests/lab/bench_actions.sh [--runs N] [--out FILE] [--ours PATH] [--raw FILE] [--traces DIR]
#          (as root; --ours defaults to target/*/release/agents/pgsqlms, else the installed agent;
#          --raw keeps one line per action run, --traces the last strace log of each action)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=5 OUT="" OURS="" RAW="" TRACES=""
while (( $# )); do case $1 in
    --runs) N=$2; shift 2 ;; --out) OUT=$2; shift 2 ;; --ours) OURS=$2; shift 2 ;; --raw) RAW=$2; shift 2 ;; --traces) TRACES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;; esac; done
export LAB_PREFIX=${LAB_PREFIX:-pld} LAB_DIR=${LAB_DIR:-/var/lib/paceline-lab-pld}
if [[ -z ${PACELINE:-} ]]; then
    for c in target/*/release/paceline target/*/debug/paceline; do [[ -x $c ]] && { PACELINE=$PWD/$c; break; }; done
fi
export PACELINE
PAF=/usr/lib/ocf/resource.d/heartbeat/pgsqlms
if [[ -z $OURS ]]; then
    for c in target/*/release/agents/pgsqlms /usr/lib/ocf/resource.d/paceline/pgsqlms; do [[ -x $c ]] && { OURS=$c; break; }; done
fi
[[ -x $PAF && -x $OURS ]] || { echo "need $PAF and ours (--ours PATH, cargo build --release)" >&2; exit 1; }
[[ ! -e $LAB_DIR/state/nodes ]] || { echo "a lab is already up in $LAB_DIR: not touching it" >&2; exit 1; }

# Work files live outside the lab dir (torn down) and are visible inside the nodes.
W=$(mktemp -d /var/tmp/bench-actions.XXXXXX)
# frozen: a rebuild during the run changes nothing; named pgsqlms, which is what the
# multi-call binary runs as (src/install.rs)
mkdir -p "$W/paceline" && cp -L "$OURS" "$W/paceline/pgsqlms"
OURS_COPY=$W/paceline/pgsqlms
# The lab driver as committed (HEAD), so that edits in progress in the work tree do not change
# it under a running benchmark; it finds crm-examples/ through PACELINE_SRC.
mkdir -p "$W/src/tests/lab"
git show HEAD:tests/lab/lab.sh >"$W/src/tests/lab/lab.sh"
ln -s "$PWD/crm-examples" "$W/src/crm-examples"
export PACELINE_SRC=$W/src
LAB="bash $W/src/tests/lab/lab.sh"
: >"$W/raw.tsv"

cleanup() {
    local rc=$?
    $LAB node 1 pcs property set maintenance-mode=false >/dev/null 2>&1 || true
    $LAB down >/dev/null 2>&1 || true
    [[ -n $RAW ]] && cp "$W/raw.tsv" "$RAW" 2>/dev/null
    rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench_actions: lab $LAB_PREFIX up (3 nodes), reference stack" >&2
LAB_QUIET=1 $LAB up --nodes 3
LAB_QUIET=1 $LAB config --stack reference
$LAB node 1 pcs property set maintenance-mode=true >/dev/null
sleep 2   # the recurring monitors are cancelled

VIP=192.0.2.100
# The timer run inside a node: wall time of the agent's process alone, its rc.
TIMER='import subprocess,sys,time
log=open(sys.argv[1],"ab")
t=time.monotonic_ns()
rc=subprocess.call(sys.argv[2:],stdout=log,stderr=log)
print("%.1f %d" % ((time.monotonic_ns()-t)/1e6, rc))'
# The same under strace -f (forks, clones and execs). strace follows every descendant, the
# PostgreSQL server a demote starts included, and would wait for it: once the agent's own
# process has exited, strace is interrupted (-I1: it detaches and leaves the server alone).
STRACE='import re,signal,subprocess,sys,time
log=open(sys.argv[1],"ab"); out=sys.argv[2]
p=subprocess.Popen(["strace","-f","-q","-I1","-e","trace=fork,vfork,clone,clone3,execve","-o",out]+sys.argv[3:],stdout=log,stderr=log)
agent=None; rc=None
while rc is None:
    time.sleep(0.01)
    try: text=open(out).read()
    except FileNotFoundError: text=""
    if agent is None and "\n" in text: agent=text.split(None,1)[0]
    if agent:
        m=re.search(r"^%s\s+\+\+\+ (exited with|killed by) (\w+)" % agent, text, re.M)
        if m: rc=int(m.group(2)) if m.group(1)=="exited with" else 128
    if rc is None and p.poll() is not None: rc=p.returncode
if p.poll() is None:
    p.send_signal(signal.SIGINT); p.wait()
print("- %d" % rc)'
# Processes created in that log by the agent and the tools it runs (clone without
# CLONE_THREAD, fork, vfork), calls split into "unfinished" / "resumed" joined again. The
# server's own processes (forked by a process that exec'd postgres, and their children) are
# PostgreSQL's work, not the agent's: not counted.
COUNT='import re,sys
pend={}; pg=set(); n=0
for l in open(sys.argv[1]):
    m=re.match(r"(\d+)\s+(.*)",l.rstrip("\n"))
    if not m: continue
    pid,rest=m.groups()
    if rest.endswith("<unfinished ...>"): pend[pid]=rest[:-len("<unfinished ...>")]; continue
    r=re.match(r"<\.\.\. \w+ resumed>(.*)",rest)
    if r: rest=pend.pop(pid,"")+r.group(1)
    if re.match(r"execve\(\"[^\"]*/postgres\"",rest) and rest.endswith("= 0"): pg.add(pid); continue
    c=re.match(r"(clone3?|fork|vfork)\(.*= ([1-9][0-9]*)$",rest)
    if not c or "CLONE_THREAD" in rest: continue
    if pid in pg: pg.add(c.group(2))
    else: n+=1
print(n)'

node_no() { echo "${1#node}"; }
inst() { echo "pgsqld:$(( ${1#node} - 1 ))"; }
psql_in() { local i=$1; shift; $LAB node "$i" runuser -u postgres -- psql -X -A -t -q -h /run/postgresql -d postgres -c "$*" 2>/dev/null; }

# env_for NODE ACTION TIMEOUT_MS [P T O TYPE OPERATION]: the environment Pacemaker gives.
env_for() {
    local node=$1 action=$2 timeout=$3
    ENVV=(OCF_ROOT=/usr/lib/ocf OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=0 OCF_RESOURCE_INSTANCE=pgsqld
          OCF_RESOURCE_TYPE=pgsqlms HA_LOGFACILITY=none
          OCF_RESKEY_bindir=/usr/lib/postgresql/15/bin OCF_RESKEY_pgdata=/var/lib/postgresql/15/main
          OCF_RESKEY_pghost=/run/postgresql OCF_RESKEY_pgport=5432
          OCF_RESKEY_CRM_meta_name="$action" OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_CRM_meta_timeout="$timeout"
          OCF_RESKEY_CRM_meta_notify=true OCF_RESKEY_CRM_meta_clone_max=3 OCF_RESKEY_CRM_meta_clone_node_max=1
          OCF_RESKEY_CRM_meta_master_max=1 OCF_RESKEY_CRM_meta_master_node_max=1
          OCF_RESKEY_CRM_meta_promoted_max=1 OCF_RESKEY_CRM_meta_promoted_node_max=1
          OCF_RESKEY_CRM_meta_promotable=true OCF_RESKEY_CRM_meta_globally_unique=false
          OCF_RESKEY_CRM_meta_clone="$(inst "$node" | cut -d: -f2)"
          OCF_RESKEY_CRM_meta_on_node="$node" OCF_RESKEY_crm_feature_set=3.16.2)
    (( $# > 3 )) || return 0
    local p=$4 t=$5 o=$6 type=$7 op=$8 k
    local all="node1 node2 node3" allr="pgsqld:0 pgsqld:1 pgsqld:2"
    local su; su=$(printf '%s\n' "$t" "$o" | sort | tr '\n' ' '); su=${su% }
    local sr=""; for k in $su; do sr+="${sr:+ }$(inst "$k")"; done
    ENVV+=(OCF_RESKEY_CRM_meta_notify_type="$type" OCF_RESKEY_CRM_meta_notify_operation="$op"
           OCF_RESKEY_CRM_meta_notify_active_uname="$all" OCF_RESKEY_CRM_meta_notify_active_resource="$allr"
           OCF_RESKEY_CRM_meta_notify_all_uname="$all" OCF_RESKEY_CRM_meta_notify_available_uname="$all"
           OCF_RESKEY_CRM_meta_notify_inactive_resource=" "
           OCF_RESKEY_CRM_meta_notify_start_uname=" " OCF_RESKEY_CRM_meta_notify_start_resource=" "
           OCF_RESKEY_CRM_meta_notify_stop_uname=" " OCF_RESKEY_CRM_meta_notify_stop_resource=" "
           OCF_RESKEY_CRM_meta_notify_master_uname="$p" OCF_RESKEY_CRM_meta_notify_master_resource="$(inst "$p")"
           OCF_RESKEY_CRM_meta_notify_promoted_uname="$p" OCF_RESKEY_CRM_meta_notify_promoted_resource="$(inst "$p")"
           OCF_RESKEY_CRM_meta_notify_slave_uname="$su" OCF_RESKEY_CRM_meta_notify_slave_resource="$sr"
           OCF_RESKEY_CRM_meta_notify_unpromoted_uname="$su" OCF_RESKEY_CRM_meta_notify_unpromoted_resource="$sr"
           OCF_RESKEY_CRM_meta_notify_demote_uname="$p" OCF_RESKEY_CRM_meta_notify_demote_resource="$(inst "$p")"
           OCF_RESKEY_CRM_meta_notify_promote_uname="$t" OCF_RESKEY_CRM_meta_notify_promote_resource="$(inst "$t")")
}

# act MODE AGENT_LABEL AGENT NODE ROLE PHASE ACTION TIMEOUT [P T O TYPE OP]: run one action
# inside NODE, append "agent mode phase role node ms forks rc" to raw.tsv, return its rc.
act() {
    local mode=$1 label=$2 agent=$3 node=$4 role=$5 phase=$6 action=$7 timeout=$8; shift 8
    env_for "$node" "$action" "$timeout" "$@"
    local out ms rc forks=-
    if [[ $mode == time ]]; then
        out=$($LAB node "$(node_no "$node")" env "${ENVV[@]}" python3 -c "$TIMER" "$W/agents.log" "$agent" "$action")
    else
        rm -f "$W/strace"
        out=$($LAB node "$(node_no "$node")" env "${ENVV[@]}" python3 -c "$STRACE" "$W/agents.log" "$W/strace" "$agent" "$action")
        forks=$(python3 -c "$COUNT" "$W/strace")
        [[ -z $TRACES ]] || { mkdir -p "$TRACES"; cp "$W/strace" "$TRACES/$label-$phase-$role-$node.strace"; }
    fi
    read -r ms rc <<<"$out"; ms=${ms:-nan} rc=${rc:-99}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$mode" "$phase" "$role" "$node" "$ms" "$forks" "$rc" >>"$W/raw.tsv"
    return "$rc"
}

# After the promote (untimed): the VIP on the new primary, stale ARP entries gone, every
# standby streaming from the new primary and caught up (a walreceiver still attached
# elsewhere is kicked). Without it the next switchover is rightly refused: the target would
# not have the demoted primary's shutdown checkpoint.
settle_replication() {
    local t=$1 o=$2 p=$3 i k
    $LAB node "$(node_no "$t")" ip addr add "$VIP/24" dev eth0
    for i in 1 2 3; do $LAB node "$i" ip neigh flush dev eth0 >/dev/null 2>&1 || true; done
    for k in $(seq 60); do
        # streaming and caught up: "streaming" alone is also the catch-up on the old timeline
        # before a standby switches to the new one
        local s; s=$(psql_in "$(node_no "$t")" "select string_agg(application_name, ' ' order by application_name) from pg_stat_replication where state = 'streaming' and replay_lsn >= pg_current_wal_lsn()" || true)
        [[ $s == "$(printf '%s\n' "$p" "$o" | sort | tr '\n' ' ' | sed 's/ $//')" ]] && return 0
        if (( k % 8 == 3 )); then
            for i in $p $o; do
                [[ " $s " == *" $i "* ]] || psql_in "$(node_no "$i")" "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'walreceiver'" >/dev/null || true
            done
        fi
        sleep 1
    done
    echo "bench_actions: standbys not streaming from $t after 60 s" >&2
    return 1
}

# One switchover from P to T by AGENT, every action in MODE (time | strace).
switchover() {
    local mode=$1 label=$2 agent=$3 p=$4 t=$5 o=$6 n
    local tr=("$p" "$t" "$o")
    for n in "$p" "$o" "$t"; do
        local role=standby; [[ $n == "$p" ]] && role=primary
        act "$mode" "$label" "$agent" "$n" "$role" notify-pre-demote notify 60000 "${tr[@]}" pre demote || true
    done
    act "$mode" "$label" "$agent" "$p" primary demote demote 120000 \
        || { echo "bench_actions: $label demote on $p failed (see $W/agents.log)" >&2; tail -20 "$W/agents.log" >&2; return 1; }
    $LAB node "$(node_no "$p")" ip addr del "$VIP/24" dev eth0
    for n in "$p" "$o" "$t"; do
        local role=other; [[ $n == "$p" ]] && role=demoted; [[ $n == "$t" ]] && role=target
        act "$mode" "$label" "$agent" "$n" "$role" notify-post-demote notify 60000 "${tr[@]}" post demote || true
    done
    for n in "$p" "$o" "$t"; do
        local role=other; [[ $n == "$p" ]] && role=demoted; [[ $n == "$t" ]] && role=target
        act "$mode" "$label" "$agent" "$n" "$role" notify-pre-promote notify 60000 "${tr[@]}" pre promote || true
    done
    act "$mode" "$label" "$agent" "$t" target promote promote 30000 \
        || { echo "bench_actions: $label promote on $t failed" >&2; tail -20 "$W/agents.log" >&2; return 1; }
    for n in "$p" "$o" "$t"; do
        local role=other; [[ $n == "$p" ]] && role=demoted; [[ $n == "$t" ]] && role=target
        act "$mode" "$label" "$agent" "$n" "$role" notify-post-promote notify 60000 "${tr[@]}" post promote || true
    done
    settle_replication "$t" "$o" "$p"
}


for run in $(seq "$N"); do
    for a in paf paceline; do
        agent=$PAF; [[ $a == paceline ]] && agent=$OURS_COPY
        echo "bench_actions: run $run/$N, $a" >&2
        for mode in time strace; do
            switchover "$mode" "$a" "$agent" node1 node2 node3
            switchover "$mode" "$a" "$agent" node2 node1 node3
        done
    done
done

# Leave the roles as Pacemaker last saw them (node1 primary with the VIP) before maintenance off.
[[ $(psql_in 1 "select pg_is_in_recovery()") == f ]] || { echo "bench_actions: node1 is not the primary at the end" >&2; exit 1; }

kernel=$(uname -r)
{
python3 - "$W/raw.tsv" "$N" "$kernel" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY'
import sys, statistics as st
from collections import defaultdict
raw, n, kernel, when = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ms, forks = defaultdict(list), defaultdict(list)
crit = defaultdict(lambda: defaultdict(float))     # (agent, switchover#) -> phase -> max over nodes
fsum = defaultdict(int)                            # (agent, switchover#) -> processes forked
seq = defaultdict(int)
for line in open(raw):
    agent, mode, phase, role, node, t, f, rc = line.rstrip("\n").split("\t")
    # a new switchover starts with the first pre-demote notification, on the primary
    if phase == "notify-pre-demote" and role == "primary":
        seq[(agent, mode)] += 1
    k = (agent, seq[(agent, mode)])
    if mode == "time":
        ms[(agent, phase, role)].append(float(t))
        crit[k][phase] = max(crit[k][phase], float(t))
    else:
        forks[(agent, phase, role)].append(int(f))
        fsum[k] += int(f)
rows = [("demote", "primary", "demote (the primary)"),
        ("promote", "target", "promote (the target)"),
        ("notify-pre-promote", "target", "notify pre-promote, target"),
        ("notify-pre-promote", "other", "notify pre-promote, other standby"),
        ("notify-pre-promote", "demoted", "notify pre-promote, demoted primary"),
        ("notify-pre-demote", "primary", "notify pre-demote, primary"),
        ("notify-pre-demote", "standby", "notify pre-demote, standbys"),
        ("notify-post-demote", None, "notify post-demote, any node"),
        ("notify-post-promote", None, "notify post-promote, any node")]
def pick(d, agent, phase, role):
    return [v for (a, p, r), vs in d.items() if a == agent and p == phase and (role is None or r == role) for v in vs]
def med(v): return st.median(v) if v else float("nan")
print(f"pgsqlms switchover actions, PAF 2.3.0 vs paceline, run by hand in the lab nodes (maintenance mode) with the environment Pacemaker gives; "
      f"{n} runs x 2 switchovers timed + 2 under strace per agent; median wall ms, median processes forked; kernel {kernel}; {when}")
print()
print("| action | PAF ms | paceline ms | ratio | PAF forks | paceline forks |")
print("|---|---:|---:|---:|---:|---:|")
for phase, role, label in rows:
    a, b = med(pick(ms, "paf", phase, role)), med(pick(ms, "paceline", phase, role))
    fa, fb = med(pick(forks, "paf", phase, role)), med(pick(forks, "paceline", phase, role))
    print(f"| {label} | {a:.1f} | {b:.1f} | {a/b:.1f} | {fa:g} | {fb:g} |")
order = ["notify-pre-demote", "demote", "notify-post-demote", "notify-pre-promote", "promote", "notify-post-promote"]
tot = {ag: med([sum(v.get(p, 0) for p in order) for (a, _), v in crit.items() if a == ag]) for ag in ("paf", "paceline")}
ftot = {ag: med([v for (a, _), v in fsum.items() if a == ag]) for ag in ("paf", "paceline")}
print(f"| **whole switchover**: ms on the critical path (notifications run in parallel: slowest node per phase); forks on all 3 nodes | "
      f"{tot['paf']:.0f} | {tot['paceline']:.0f} | {tot['paf']/tot['paceline']:.1f} | {ftot['paf']:g} | {ftot['paceline']:g} |")
PY
} | tee "${OUT:-/dev/null}"
