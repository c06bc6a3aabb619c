#!/bin/bash
# Benchmark: heartbeat IPaddr2 (resource-agents, shell) vs paceline IPaddr2 (Rust),
# side by side in one run, inside a throw-away pair of network namespaces.
#
#   usage: tests/bench_ipaddr2.sh [--out FILE]     (as root)
#   env:   PACELINE_IPADDR2  our agent   (default /usr/lib/ocf/resource.d/paceline/IPaddr2)
#          BENCH_N           runs/action (default 20)
#
# Per action (meta-data, monitor, start, stop) it reports the median wall time
# of N runs and the number of processes the action forks (strace, threads not
# counted). start runs with the VIP absent, monitor and stop with it present
# (set up by the same agent's start, untimed). Timing: the whole measuring loop
# runs *inside* the namespace (the script re-executes itself via `ip netns exec`
# with a hidden --inner argument), so namespace entry is not measured; the only
# fork in the timed path is the agent itself. The agents alternate run by run.
# Background children (heartbeat's send_arp keeps sending ARPs ~1 s after
# start) are waited for, untimed, before the next run, via a FIFO they inherit.
#
# Only 192.0.2.0/24 (TEST-NET-1) is used, only inside namespaces plb-$$-a/b,
# which are deleted on exit.
set -euo pipefail

HEARTBEAT=/usr/lib/ocf/resource.d/heartbeat/IPaddr2
VIP=192.0.2.50

# ---------------------------------------------------------------- inner loop
# Runs inside namespace a with a clean environment. Args: N HB PL RESULTS TMPDIR
if [[ ${1:-} == --inner ]]; then
    N=$2 HB=$3 PL=$4 RESULTS=$5 TMP=$6
    # Same environment for both agents. HA_LOGFACILITY=none: heartbeat logs to
    # stderr (sent to /dev/null here) instead of forking logger(1) for syslog.
    export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip \
        OCF_RESKEY_ip=$VIP OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth0 \
        OCF_RESKEY_CRM_meta_timeout=20000 HA_LOGFACILITY=none
    FAILS=0
    exec {null}<>/dev/null
    # FIFO trick: every agent run inherits the write end $w; once the agent and
    # all of its (background) children are gone, reading $rd hits EOF.
    mkfifo "$TMP/fifo"
    exec {rw}<>"$TMP/fifo"; exec {rd}<"$TMP/fifo"; exec {rw}>&-

    wait_children() {   # untimed
        local _ rc
        while :; do
            read -r -t 30 -u "$rd" _ && continue
            rc=$?
            if (( rc > 128 )); then echo "warning: agent children still running after 30 s" >&2; fi
            return 0
        done
    }
    addr_present() {    # fork-free: look for the VIP's host route in /proc
        local l
        while read -r l; do [[ $l == "|-- $VIP" ]] && return 0; done </proc/net/fib_trie
        return 1
    }
    fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

    # run AGENT ACTION: sets US (wall time in µs) and RC; checks rc and address
    run() {
        local agent=$1 action=$2 t0 t1
        exec {w}>"$TMP/fifo"
        if [[ $action == monitor ]]; then
            t0=$EPOCHREALTIME
            OCF_RESKEY_CRM_meta_interval=10000 "$agent" monitor <&$null >&$null 2>&$null && RC=0 || RC=$?
            t1=$EPOCHREALTIME
        else
            t0=$EPOCHREALTIME
            "$agent" "$action" <&$null >&$null 2>&$null && RC=0 || RC=$?
            t1=$EPOCHREALTIME
        fi
        exec {w}>&-
        US=$(( ${t1/./} - ${t0/./} ))
        wait_children
        [[ $RC == 0 ]] || fail "$agent $action: rc=$RC"
        case $action in
            start|monitor) addr_present || fail "$agent $action: $VIP not on eth0" ;;
            stop) ! addr_present || fail "$agent stop: $VIP still on eth0" ;;
        esac
    }
    median_us() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
    count_forks() {     # AGENT ACTION [monitor env] -> processes created
        local agent=$1 action=$2 pre=$TMP/st.$RANDOM
        if [[ $action == monitor ]]; then export OCF_RESKEY_CRM_meta_interval=10000; fi
        strace -f -ff -qq -e trace=fork,vfork,clone,clone3 -o "$pre" \
            "$agent" "$action" <&$null >&$null 2>&$null || true
        unset OCF_RESKEY_CRM_meta_interval
        # one file per pid (-ff), so no <unfinished>/<resumed> splitting; count
        # successful fork/vfork/clone/clone3, but not CLONE_THREAD (threads)
        cat "$pre".* | grep -E '^(fork|vfork|clone|clone3)\(.*\) = [1-9][0-9]*$' \
            | grep -vc CLONE_THREAD || true
        rm -f "$pre".*
    }

    # Timed runs, the two agents interleaved run by run so that load bursts on
    # the machine hit both alike. T[agent.action] collects the samples in µs.
    declare -A T F
    run "$HB" meta-data; run "$PL" meta-data                 # warm-up
    for ((i = 0; i < N; i++)); do
        for a in HB PL; do run "${!a}" meta-data; T[$a.meta-data]+=" $US"; done
    done
    for ((i = 0; i < N; i++)); do                           # address absent
        for a in HB PL; do run "${!a}" start; T[$a.start]+=" $US"; run "${!a}" stop; done
    done
    for ((i = 0; i < N; i++)); do                           # address present
        for a in HB PL; do
            run "${!a}" start
            run "${!a}" monitor; T[$a.monitor]+=" $US"
            run "${!a}" stop;    T[$a.stop]+=" $US"
        done
    done
    # Fork counts, one strace'd run each, same pre-state as the timed runs.
    for action in meta-data monitor start stop; do
        for a in HB PL; do
            if [[ $action == monitor || $action == stop ]]; then run "${!a}" start; fi
            F[$a.$action]=$(count_forks "${!a}" "$action")
            if [[ $action == monitor || $action == start ]]; then run "${!a}" stop; fi
        done
        # shellcheck disable=SC2086  # word splitting of the sample lists is intended
        echo "$action $(median_us ${T[HB.$action]}) $(median_us ${T[PL.$action]})" \
            "${F[HB.$action]} ${F[PL.$action]}" >>"$RESULTS"
    done
    echo "fails $FAILS" >>"$RESULTS"
    exit 0
fi

# ---------------------------------------------------------------- outer part
OUT=
while (( $# )); do
    case $1 in
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (usage: $0 [--out FILE])" >&2; exit 2 ;;
    esac
done

PL=${PACELINE_IPADDR2:-/usr/lib/ocf/resource.d/paceline/IPaddr2}
N=${BENCH_N:-20}
if [[ ! -x $PL ]]; then
    echo "paceline IPaddr2 not found at $PL." >&2
    echo "Build and install it (or point PACELINE_IPADDR2=/path/to/IPaddr2 at the binary)." >&2
    exit 1
fi
[[ -x $HEARTBEAT ]] || { echo "heartbeat IPaddr2 not found at $HEARTBEAT (install resource-agents)" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_N must be a positive integer" >&2; exit 1; }
(( EUID == 0 )) || { echo "must run as root (network namespaces)" >&2; exit 1; }
command -v strace >/dev/null || { echo "strace is required" >&2; exit 1; }

NS_A=plb-$$-a NS_B=plb-$$-b
TMP=$(mktemp -d /tmp/plb-$$.XXXXXX)
cleanup() {
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_A"
ip netns add "$NS_B"
ip -n "$NS_A" link add eth0 type veth peer name eth0 netns "$NS_B"
ip -n "$NS_A" addr add 192.0.2.1/24 dev eth0
ip -n "$NS_B" addr add 192.0.2.2/24 dev eth0
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done

SELF=$(readlink -f "$0")
echo "benchmarking $HEARTBEAT vs $PL, N=$N (takes a while: heartbeat sends ARPs for ~1 s after each start) ..." >&2
ip netns exec "$NS_A" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    bash "$SELF" --inner "$N" "$HEARTBEAT" "$PL" "$TMP/results" "$TMP"

fails=$(awk '$1 == "fails" {print $2}' "$TMP/results")
{
    echo "IPaddr2 benchmark $(date -u '+%Y-%m-%d %H:%M:%S UTC'), kernel $(uname -r), N=$N (median wall time; forks = processes created)"
    echo
    echo "| action | heartbeat ms | paceline ms | ratio (hb/pl) | heartbeat forks | paceline forks |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk '$1 != "fails" {
        r = ($3 > 0) ? sprintf("%.1f", $2 / $3) : "-"
        printf "| %s | %.2f | %.2f | %s | %d | %d |\n", $1, $2 / 1000, $3 / 1000, r, $4, $5
    }' "$TMP/results"
    if [[ ${fails:-1} != 0 ]]; then
        echo
        echo "WARNING: $fails agent runs failed (wrong rc or address state); see stderr."
    fi
} >"$TMP/table"
# Second view of the stateless actions, spawned the way pacemaker-execd does it (fork+exec
# from a small process, no shell): hyperfine -N. The bash loop above pays bash's own fork
# for both agents, which flattens the ratios of the fastest actions.
if command -v hyperfine >/dev/null; then
    env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip
         OCF_RESKEY_ip=$VIP OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth0
         OCF_RESKEY_CRM_meta_timeout=20000 OCF_RESKEY_CRM_meta_interval=10000 HA_LOGFACILITY=none)
    ip netns exec "$NS_A" "${env[@]}" "$PL" start >/dev/null 2>&1
    sleep 1.5   # let the background announcements finish
    ip netns exec "$NS_A" "${env[@]}" hyperfine -N --style none --warmup 5 --runs "$((N * 5))" \
        --export-json "$TMP/hf.json" "$HEARTBEAT monitor" "$PL monitor" "$HEARTBEAT meta-data" "$PL meta-data" >/dev/null 2>&1
    ip netns exec "$NS_A" "${env[@]}" "$PL" stop >/dev/null 2>&1
    {
        echo
        echo "Spawned directly (hyperfine -N, $((N * 5)) runs each, address present; median ms):"
        echo
        echo "| action | heartbeat ms | paceline ms | ratio (hb/pl) |"
        echo "|---|---:|---:|---:|"
        python3 - "$TMP/hf.json" <<'PY'
import json, sys
r = {x["command"].split()[-1] + ("/hb" if "heartbeat" in x["command"] else "/pl"): x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for a in ("meta-data", "monitor"):
    print(f"| {a} | {r[a + '/hb']:.2f} | {r[a + '/pl']:.2f} | {r[a + '/hb'] / r[a + '/pl']:.1f} |")
PY
    } >>"$TMP/table"
fi
cat "$TMP/table"
[[ -z $OUT ]] || cp "$TMP/table" "$OUT"
[[ ${fails:-1} == 0 ]]
