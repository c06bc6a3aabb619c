#!/bin/bash
# Benchmark: heartbeat aws-vpc-move-ip (sh + curl + the AWS CLI from pip) vs paceline
# aws-vpc-move-ip (Rust, AWS SDK), side by side in one run against the same fake EC2 (moto)
# and IMDSv2 stub, with two route tables.
#
#   usage: tests/bench_aws_vpc.sh [--out FILE]      (as root)
#   env:   PACELINE_VPC  our agent (default: target/<triple>/release/agents/aws-vpc-move-ip,
#          the link to the release build of paceline, made if missing)
#          BENCH_N       timed runs per action and agent (default 10)
#
# As tests/bench_aws.sh: everything inside one throw-away network namespace plt-<pid>-vpc —
# moto on its 127.0.0.1:5000, the IMDSv2 stub on 169.254.169.254:80 of its lo, an eth0 (a
# veth with the instance's MAC, as IMDS describes it) — and nothing else is contacted. Both
# agents get the same environment (a [default] profile in a temporary HOME, which heartbeat
# requires; AWS_ENDPOINT_URL; CRM_meta_timeout=30000). The routes exist beforehand
# (heartbeat's start can only replace one); lookup_type=NetworkInterfaceId, since moto does
# not fill in the InstanceId of a route to an ENI as EC2 does (heartbeat's InstanceId check
# then never matches).
# Per action: median wall time (hyperfine -N), processes created (strace -f), peak RSS and
# CPU time (GNU time, children included). "probe" is a monitor with interval 0 with the
# address here and routed here (both agents then ask EC2 for the tables); "monitor" a
# recurring one (the local address only); start with the address absent (stop as
# --prepare), stop with it present (start as --prepare).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=
[[ ${1:-} == --out ]] && OUT=$2
N=${BENCH_N:-10}
HB=/usr/lib/ocf/resource.d/heartbeat/aws-vpc-move-ip
AWSCLI_VENV=/opt/paceline-awscli
MOTO_PY=/opt/paceline-moto/bin/python3
TRIPLE=x86_64-unknown-linux-gnu
PL=${PACELINE_VPC:-target/$TRIPLE/release/agents/aws-vpc-move-ip}
IP=192.0.2.250

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
for t in hyperfine strace /usr/bin/time ip curl "$MOTO_PY" "$HB"; do
    command -v "$t" >/dev/null || [[ -x $t ]] || { echo "missing: $t (tests/deps.sh)" >&2; exit 1; }
done
if [[ ! -x $AWSCLI_VENV/bin/aws ]]; then
    /usr/bin/python3 -m venv "$AWSCLI_VENV"
    "$AWSCLI_VENV/bin/pip" install -q awscli
fi
[[ -x $PL ]] || { cargo build --release --bins && mkdir -p "${PL%/*}" && ln -sfn ../paceline "$PL"; }
PL=$(cd "${PL%/*}" && pwd)/${PL##*/}

source tests/aws/bench_world.sh vpc
RTB1=$(aws ec2 create-route-table --vpc-id "$VPC" --query RouteTable.RouteTableId)
RTB2=$(aws ec2 create-route-table --vpc-id "$VPC" --query RouteTable.RouteTableId)
for t in "$RTB1" "$RTB2"; do aws ec2 create-route --route-table-id "$t" --destination-cidr-block "$IP/32" --network-interface-id "$ENI" >/dev/null; done
ip -n "$NS" link add eth0 address "$MAC" type veth peer name eth0p
ip -n "$NS" link set eth0 up && ip -n "$NS" link set eth0p up

export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=overlay OCF_RESKEY_ip=$IP OCF_RESKEY_routing_table=$RTB1,$RTB2 \
    OCF_RESKEY_interface=eth0 OCF_RESKEY_lookup_type=NetworkInterfaceId OCF_RESKEY_region=eu-west-1 OCF_RESKEY_awscli=$AWSCLI_VENV/bin/aws \
    OCF_RESKEY_CRM_meta_timeout=30000 HA_LOGFACILITY=none PATH=$AWSCLI_VENV/bin:$PATH

check() {   # AGENT ACTION WANT [INTERVAL]
    local rc=0
    in_ns env OCF_RESKEY_CRM_meta_interval="${4:-60000}" "$1" "$2" >"$TMP/check.out" 2>&1 || rc=$?
    [[ $rc == "$3" ]] || { echo "FAIL: $1 $2 returned $rc, expected $3" >&2; tail -20 "$TMP/check.out" >&2; exit 1; }
}
for a in "$HB" "$PL"; do
    check "$a" monitor 7; check "$a" start 0; check "$a" monitor 0; check "$a" monitor 0 0; check "$a" stop 0; check "$a" monitor 7
done

median_ms() {   # AGENT ACTION PREPARE INTERVAL
    local prep=()
    [[ -n $3 ]] && prep=(--prepare "env OCF_RESKEY_CRM_meta_interval=60000 $1 $3")
    in_ns hyperfine -N -i --runs "$N" --warmup 1 "${prep[@]}" --export-json "$TMP/h.json" "env OCF_RESKEY_CRM_meta_interval=$4 $1 $2" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$TMP/h.json"
}
procs() {       # AGENT ACTION PREPARE INTERVAL
    [[ -n $3 ]] && in_ns "$1" "$3" >/dev/null 2>&1 || true
    in_ns env OCF_RESKEY_CRM_meta_interval="$4" strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o "$TMP/st" "$1" "$2" >/dev/null 2>&1 || true
    local execs forks
    execs=$(grep -c 'execve(' "$TMP/st" || true)
    forks=$(grep -E 'fork\(|clone3?\(' "$TMP/st" | grep -vc CLONE_THREAD || true)
    echo "$forks/$execs"
}
rusage() {      # AGENT ACTION PREPARE INTERVAL
    [[ -n $3 ]] && in_ns "$1" "$3" >/dev/null 2>&1 || true
    { in_ns env OCF_RESKEY_CRM_meta_interval="$4" /usr/bin/time -f 'RUSAGE %M %U %S' "$1" "$2" 2>&1 >/dev/null || true; } |
        awk '/^RUSAGE/ {printf "%.1f %.0f\n", $2/1024, ($3+$4)*1000}'
}

{
    echo "| action | heartbeat aws-vpc-move-ip | paceline aws-vpc-move-ip | speed-up | forks/execs (hb / pl) | peak RSS MB (hb / pl) | CPU ms (hb / pl) |"
    echo "|---|---|---|---|---|---|---|"
    for spec in "probe:monitor:start:0" "monitor:monitor:start:60000" "start:start:stop:60000" "stop:stop:start:60000"; do
        IFS=: read -r label action prep interval <<<"$spec"
        hb=$(median_ms "$HB" "$action" "$prep" "$interval"); pl=$(median_ms "$PL" "$action" "$prep" "$interval")
        hbp=$(procs "$HB" "$action" "$prep" "$interval"); plp=$(procs "$PL" "$action" "$prep" "$interval")
        read -r hbr hbc < <(rusage "$HB" "$action" "$prep" "$interval"); read -r plr plc < <(rusage "$PL" "$action" "$prep" "$interval")
        in_ns "$PL" stop >/dev/null 2>&1 || true
        x=$(python3 -c "print('%.0fx' % ($hb / $pl))")
        echo "| $label | $hb ms | $pl ms | $x | $hbp / $plp | $hbr / $plr | $hbc / $plc |"
    done
} | tee "${OUT:-/dev/null}"
