#!/bin/bash
# Benchmark: heartbeat awsvip (sh + curl + the AWS CLI from pip) vs paceline awsvip (Rust,
# AWS SDK), side by side in one run against the same fake EC2 (moto) and IMDSv2 stub.
#
#   usage: tests/bench_aws.sh [--out FILE]      (as root)
#   env:   PACELINE_AWSVIP  our agent (default: target/<triple>/release/agents/awsvip, the link to
#          the release build of paceline, built if missing)
#          BENCH_N          timed runs per action and agent (default 10)
#
# Everything runs inside one throw-away network namespace plt-<pid>-bench: moto
# (tests/aws/moto_server.py) on its 127.0.0.1:5000, the IMDSv2 stub tests/lab/imds.py on
# 169.254.169.254:80 of its lo, and both agents; nothing else is contacted. The AWS CLI
# lives in a venv at /opt/paceline-awscli (created with pip if missing: Debian's awscli
# ignores AWS_ENDPOINT_URL). Both agents get the same environment: credentials and region
# in a [default] profile of a temporary HOME (heartbeat requires that profile),
# AWS_ENDPOINT_URL=http://127.0.0.1:5000, api_delay=0 (heartbeat would otherwise sleep 3 s
# after each change; ours never sleeps blindly), CRM_meta_timeout=30000.
#
# Per action it reports the median wall time (hyperfine -N, run inside the namespace, so
# namespace entry is not measured), the processes the action creates (strace -f: execve
# and fork/clone without CLONE_THREAD), the peak RSS (GNU time: the largest process) and the
# CPU time (user + system, children included: what the action costs the node, as opposed to
# time spent waiting for the fake services).
# monitor runs with the address absent (rc 7), start with it absent (stop as hyperfine's
# --prepare), stop with it present (start as --prepare).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=
[[ ${1:-} == --out ]] && OUT=$2
N=${BENCH_N:-10}
HB=/usr/lib/ocf/resource.d/heartbeat/awsvip
AWSCLI_VENV=/opt/paceline-awscli
MOTO_PY=/opt/paceline-moto/bin/python3
TRIPLE=x86_64-unknown-linux-gnu
PL=${PACELINE_AWSVIP:-target/$TRIPLE/release/agents/awsvip}
VIP=192.0.2.100

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
for t in hyperfine strace /usr/bin/time ip "$MOTO_PY" "$HB"; do
    command -v "$t" >/dev/null || [[ -x $t ]] || { echo "missing: $t (tests/deps.sh)" >&2; exit 1; }
done
if [[ ! -x $AWSCLI_VENV/bin/aws ]]; then
    /usr/bin/python3 -m venv "$AWSCLI_VENV"
    "$AWSCLI_VENV/bin/pip" install -q awscli
fi
[[ -x $PL ]] || { cargo build --release --bin paceline && mkdir -p "${PL%/*}" && ln -sfn ../paceline "$PL"; }
PL=$(cd "${PL%/*}" && pwd)/${PL##*/}   # absolute, still the link: its name says which agent

NS=plt-$$-bench
TMP=$(mktemp -d /tmp/paceline-bench-aws.XXXXXX)
IMDS_PID=
cleanup() {
    [[ -n $IMDS_PID ]] && kill "$IMDS_PID" 2>/dev/null || true
    exec 7>&- || true                       # moto exits when its stdin closes
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 169.254.169.254/32 dev lo
in_ns() { ip netns exec "$NS" "$@"; }

# moto on the namespace's 127.0.0.1:5000, serving until fd 7 closes.
mkfifo "$TMP/moto.in"
ip netns exec "$NS" "$MOTO_PY" tests/aws/moto_server.py 5000 <"$TMP/moto.in" >"$TMP/moto.out" 2>&1 &
exec 7>"$TMP/moto.in"
for _ in $(seq 100); do grep -q PORT "$TMP/moto.out" 2>/dev/null && break; sleep 0.1; done

mkdir -p "$TMP/home/.aws"
printf '[default]\nregion = eu-west-1\n' >"$TMP/home/.aws/config"
printf '[default]\naws_access_key_id = AKIABENCHBENCHBENCH1\naws_secret_access_key = bench-secret\n' >"$TMP/home/.aws/credentials"
export HOME=$TMP/home AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_PAGER=
aws() { in_ns "$AWSCLI_VENV/bin/aws" --output text "$@"; }
VPC=$(aws ec2 create-vpc --cidr-block 192.0.0.0/16 --query Vpc.VpcId)
SUBNET=$(aws ec2 create-subnet --vpc-id "$VPC" --cidr-block 192.0.2.0/24 --query Subnet.SubnetId)
AMI=$(aws ec2 describe-images --query 'Images[0].ImageId')
read -r IID ENI MAC < <(aws ec2 run-instances --image-id "$AMI" --instance-type t3.micro --subnet-id "$SUBNET" \
    --private-ip-address 192.0.2.11 --count 1 \
    --query 'Instances[0].[InstanceId,NetworkInterfaces[0].NetworkInterfaceId,NetworkInterfaces[0].MacAddress]')
# Started directly (not through a shell function) so that $! is the stub itself, and
# without fd 7 so that it does not keep moto's stdin open.
ip netns exec "$NS" /usr/bin/python3 tests/lab/imds.py --instance-id "$IID" --eni "$ENI" --mac "$MAC" \
    --ip 192.0.2.11 --region eu-west-1 >"$TMP/imds.log" 2>&1 7>&- &
IMDS_PID=$!
for _ in $(seq 50); do in_ns bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && break; sleep 0.1; done

export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip OCF_RESKEY_secondary_private_ip=$VIP \
    OCF_RESKEY_api_delay=0 OCF_RESKEY_awscli=$AWSCLI_VENV/bin/aws OCF_RESKEY_CRM_meta_timeout=30000 \
    HA_LOGFACILITY=none PATH=$AWSCLI_VENV/bin:$PATH

# Sanity: both agents see the same world.
check() {   # AGENT ACTION WANT
    local rc=0
    in_ns "$1" "$2" >/dev/null 2>&1 || rc=$?
    [[ $rc == "$3" ]] || { echo "FAIL: $1 $2 returned $rc, expected $3" >&2; exit 1; }
}
for a in "$HB" "$PL"; do
    check "$a" monitor 7; check "$a" start 0; check "$a" monitor 0; check "$a" stop 0; check "$a" monitor 7
done

median_ms() {   # AGENT ACTION PREPARE
    local prep=()
    [[ -n $3 ]] && prep=(--prepare "$1 $3")
    in_ns hyperfine -N -i --runs "$N" --warmup 1 "${prep[@]}" --export-json "$TMP/h.json" "$1 $2" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$TMP/h.json"
}
procs() {       # AGENT ACTION PREPARE: processes created by the action (the agent itself included)
    [[ -n $3 ]] && in_ns "$1" "$3" >/dev/null 2>&1 || true
    in_ns strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o "$TMP/st" "$1" "$2" >/dev/null 2>&1 || true
    local execs forks
    execs=$(grep -c 'execve(' "$TMP/st" || true)
    forks=$(grep -E 'fork\(|clone3?\(' "$TMP/st" | grep -vc CLONE_THREAD || true)
    echo "$forks/$execs"
}
rusage() {      # AGENT ACTION PREPARE: "peak-RSS-MB CPU-ms" (CPU: user + system, children included)
    [[ -n $3 ]] && in_ns "$1" "$3" >/dev/null 2>&1 || true
    { in_ns /usr/bin/time -f 'RUSAGE %M %U %S' "$1" "$2" 2>&1 >/dev/null || true; } |
        awk '/^RUSAGE/ {printf "%.1f %.0f\n", $2/1024, ($3+$4)*1000}'
}

{
    echo "| action | heartbeat awsvip | paceline awsvip | speed-up | forks/execs (hb / pl) | peak RSS MB (hb / pl) | CPU ms (hb / pl) |"
    echo "|---|---|---|---|---|---|---|"
    for spec in "monitor::" "start::stop" "stop::start"; do
        action=${spec%%::*} prep=${spec##*::}
        hb=$(median_ms "$HB" "$action" "$prep"); pl=$(median_ms "$PL" "$action" "$prep")
        hbp=$(procs "$HB" "$action" "$prep"); plp=$(procs "$PL" "$action" "$prep")
        read -r hbr hbc < <(rusage "$HB" "$action" "$prep"); read -r plr plc < <(rusage "$PL" "$action" "$prep")
        in_ns "$PL" stop >/dev/null 2>&1 || true
        x=$(python3 -c "print('%.0fx' % ($hb / $pl))")
        echo "| $action | $hb ms | $pl ms | $x | $hbp / $plp | $hbr / $plr | $hbc / $plc |"
    done
} | tee "${OUT:-/dev/null}"
