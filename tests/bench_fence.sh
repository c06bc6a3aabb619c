#!/bin/bash
# Benchmark: fence-agents' fence_aws (Debian 12: Python, boto3 1.26) vs paceline's
# fence_paceline_aws (Rust), side by side in one run, against moto in a throw-away
# network namespace.
#
#   usage: tests/bench_fence.sh [--out FILE]     (as root)
#   env:   PACELINE_FENCE  our agent   (default /usr/sbin/fence_paceline_aws)
#          BENCH_N         runs/action (default 10)
#
# Both agents run unmodified with the same command line (`-o ACTION -n i-... -r eu-west-1`)
# and the same environment, and both talk HTTPS to the regional endpoint name
# ec2.eu-west-1.amazonaws.com: inside the namespace that name resolves to 127.0.0.1
# (/etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts), where a small TLS
# relay in front of moto presents a certificate of a throw-away CA that both trust
# (AWS_CA_BUNDLE for botocore, SSL_CERT_FILE for the Rust SDK). Debian's boto3 ignores AWS_ENDPOINT_URL and fence_aws has
# no endpoint option, so this is how fence_aws reaches moto without patching anything; the
# namespace has nothing but its loopback, so nothing can leave it. The IMDSv2 stub of the
# lab (tests/lab/imds.py) answers on 169.254.169.254 on the namespace's lo: both agents'
# race checks in `off` ask it which instance they run on.
#
# Per action it reports the median wall time of N runs (the agents alternate run by run),
# the processes the action forks (strace, threads not counted) and the peak RSS
# (GNU time). off runs against a running target, on against a stopped one; both agents use
# their defaults. moto stops and starts instances instantly, so no action waits for EC2.
# "unreachable" is a monitor of region eu-west-3, whose endpoint name resolves to 127.0.0.3
# where nothing listens (connection refused): how long each agent takes to give up, with
# its default login_timeout/shell_timeout (both fail it with rc 1).
#
# Only 127.0.0.0/8 and 169.254.169.254 inside namespace plt-$$-fbench, deleted on exit
# with /etc/netns/plt-$$-fbench and the temporary files; moto and the IMDS stub are
# stopped by pid.
set -euo pipefail

FENCE_AWS=/usr/sbin/fence_aws
MOTO=/opt/paceline-moto/bin/moto_server
MOTO_PY=/opt/paceline-moto/bin/python3
REGION=eu-west-1
HOST=ec2.$REGION.amazonaws.com

# ---------------------------------------------------------------- inner loop
# Runs inside the namespace with a clean environment. Args: N FA PL RESULTS TMP SRC
if [[ ${1:-} == --inner ]]; then
    N=$2 FA=$3 PL=$4 RESULTS=$5 TMP=$6 SRC=$7
    export AWS_ACCESS_KEY_ID=AKIDBENCHMARK AWS_SECRET_ACCESS_KEY=benchmark-secret \
        AWS_CA_BUNDLE=$TMP/ca.pem SSL_CERT_FILE=$TMP/ca.pem \
        AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent HOME=/nonexistent
    PIDS=()
    trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
    trap 'exit 130' INT TERM
    ip link set lo up
    ip addr add 169.254.169.254/32 dev lo
    "$MOTO" -H 127.0.0.1 -p 5000 >"$TMP/moto.log" 2>&1 &
    PIDS+=($!)
    # TLS in front of moto: a small stdlib relay with TCP_NODELAY (moto's own --ssl server
    # adds 20-50 ms to every request, which would only measure moto).
    python3 - "$TMP/cert.pem" "$TMP/key.pem" <<'EOF_RELAY' >"$TMP/relay.log" 2>&1 &
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.create_server(("127.0.0.1", 443))
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def handle(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
        u = socket.create_connection(("127.0.0.1", 5000))
    except (OSError, ssl.SSLError):
        c.close()
        return
    u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=pipe, args=(u, t), daemon=True).start()
    pipe(t, u)
while True:
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF_RELAY
    PIDS+=($!)
    for port in 5000 443; do
        for ((i = 0; i < 100; i++)); do
            (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
            sleep 0.1
        done
    done
    # Ten instances: node1 is "this node" (IMDS), node2 the target, the rest fill the list.
    read -r SELF TARGET < <("$MOTO_PY" - "$HOST" "$REGION" <<'EOF'
import sys, boto3
host, region = sys.argv[1], sys.argv[2]
ec2 = boto3.client("ec2", region_name=region, endpoint_url=f"https://{host}")
ami = ec2.describe_images()["Images"][0]["ImageId"]
ids = []
for n in range(1, 11):
    r = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"node{n}"}]}])
    ids.append(r["Instances"][0]["InstanceId"])
print(ids[0], ids[1])
EOF
    )
    [[ $SELF == i-* && $TARGET == i-* ]] || { echo "could not create instances in moto (see $TMP/moto.log)" >&2; exit 1; }
    python3 "$SRC/tests/lab/imds.py" --instance-id "$SELF" --eni eni-0bench --mac 02:00:00:00:00:01 \
        --ip 192.0.2.11 --region "$REGION" >"$TMP/imds.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        (exec 3<>/dev/tcp/169.254.169.254/80) 2>/dev/null && break
        sleep 0.1
    done

    FAILS=0
    exec {null}<>/dev/null
    fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
    args() {            # ACTION -> the command line both agents get
        case $1 in
            metadata) echo "-o metadata" ;;
            list|monitor) echo "-o $1 -r $REGION" ;;
            unreachable) echo "-o monitor -r eu-west-3" ;;
            *) echo "-o $1 -n $TARGET -r $REGION" ;;
        esac
    }
    # run AGENT ACTION [expected rc]: sets US (wall time in µs)
    run() {
        local agent=$1 action=$2 want=${3:-0} t0 t1 rc
        # shellcheck disable=SC2046  # the option list is meant to be split
        t0=$EPOCHREALTIME
        "$agent" $(args "$action") <&$null >"$TMP/out" 2>"$TMP/err" && rc=0 || rc=$?
        t1=$EPOCHREALTIME
        US=$(( ${t1/./} - ${t0/./} ))
        [[ $rc == "$want" ]] || fail "$agent $action: rc=$rc (want $want): $(head -c 300 "$TMP/err")"
    }
    median_us() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
    count_forks() {     # AGENT ACTION -> processes created
        local pre=$TMP/st.$RANDOM
        # shellcheck disable=SC2046
        strace -f -ff -qq -e trace=fork,vfork,clone,clone3 -o "$pre" "$1" $(args "$2") <&$null >&$null 2>&$null || true
        cat "$pre".* | grep -E '^(fork|vfork|clone|clone3)\(.*\) = [1-9][0-9]*$' | grep -vc CLONE_THREAD || true
        rm -f "$pre".*
    }
    peak_rss_kb() {     # AGENT ACTION -> max resident set size in kB
        # shellcheck disable=SC2046
        /usr/bin/time -f %M -o "$TMP/rss" "$1" $(args "$2") <&$null >&$null 2>&$null || true
        tail -n 1 "$TMP/rss"
    }
    # The target's state before an action: off needs it running, on stopped.
    prepare() {
        case $1 in
            off) "$PL" -o on -n "$TARGET" -r "$REGION" <&$null >&$null 2>&$null || fail "prepare on" ;;
            on) "$PL" -o off -n "$TARGET" -r "$REGION" <&$null >&$null 2>&$null || fail "prepare off" ;;
            *) ;;
        esac
    }

    declare -A T F R
    for a in FA PL; do for action in metadata status list; do run "${!a}" "$action"; done; done   # warm-up
    for action in metadata status list monitor off on unreachable; do
        want=0; [[ $action == unreachable ]] && want=1
        for ((i = 0; i < N; i++)); do
            for a in FA PL; do
                prepare "$action"
                run "${!a}" "$action" "$want"
                T[$a.$action]+=" $US"
            done
        done
        for a in FA PL; do
            prepare "$action"; F[$a.$action]=$(count_forks "${!a}" "$action")
            prepare "$action"; R[$a.$action]=$(peak_rss_kb "${!a}" "$action")
        done
        # shellcheck disable=SC2086  # word splitting of the sample lists is intended
        echo "$action $(median_us ${T[FA.$action]}) $(median_us ${T[PL.$action]})" \
            "${F[FA.$action]} ${F[PL.$action]} ${R[FA.$action]} ${R[PL.$action]}" >>"$RESULTS"
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

PL=${PACELINE_FENCE:-/usr/sbin/fence_paceline_aws}
N=${BENCH_N:-10}
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
[[ -x $PL ]] || { echo "paceline fence agent not found at $PL (paceline install, or PACELINE_FENCE=/path)" >&2; exit 1; }
[[ -x $FENCE_AWS ]] || { echo "$FENCE_AWS not found (apt-get install fence-agents)" >&2; exit 1; }
[[ -x $MOTO && -x $MOTO_PY ]] || { echo "$MOTO missing (tests/deps.sh installs moto in /opt/paceline-moto)" >&2; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_N must be a positive integer" >&2; exit 1; }
(( EUID == 0 )) || { echo "must run as root (network namespaces)" >&2; exit 1; }
for t in strace openssl /usr/bin/time; do command -v "$t" >/dev/null || { echo "$t is required" >&2; exit 1; }; done

NS=plt-$$-fbench
TMP=$(mktemp -d /tmp/plt-$$-fbench.XXXXXX)
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/$NS" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throw-away CA and a certificate for the regional endpoint name, signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 1 \
    -subj "/CN=paceline benchmark CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/leaf.csr" -subj "/CN=$HOST" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$HOST" >"$TMP/ext"
openssl x509 -req -in "$TMP/leaf.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
    -out "$TMP/cert.pem" -days 1 -extfile "$TMP/ext" 2>/dev/null

ip netns add "$NS"
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1 localhost\n127.0.0.1 %s\n127.0.0.3 ec2.eu-west-3.amazonaws.com\n' "$HOST" >"/etc/netns/$NS/hosts"

SELF=$(readlink -f "$0")
echo "benchmarking $FENCE_AWS vs $PL, N=$N (about a minute) ..." >&2
ip netns exec "$NS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    bash "$SELF" --inner "$N" "$FENCE_AWS" "$PL" "$TMP/results" "$TMP" "$SRC"

fails=$(awk '$1 == "fails" {print $2}' "$TMP/results")
{
    echo "fence agent benchmark $(date -u '+%Y-%m-%d %H:%M:%S UTC'), kernel $(uname -r), N=$N" \
        "(median wall time; forks = processes created; RSS = peak resident set)"
    echo
    echo "| action | fence_aws ms | paceline ms | ratio | fence_aws forks | paceline forks | fence_aws RSS MB | paceline RSS MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    awk '$1 != "fails" {
        r = ($3 > 0) ? sprintf("%.1f", $2 / $3) : "-"
        printf "| %s | %.1f | %.1f | %s | %d | %d | %.1f | %.1f |\n", $1, $2 / 1000, $3 / 1000, r, $4, $5, $6 / 1024, $7 / 1024
    }' "$TMP/results"
    if [[ ${fails:-1} != 0 ]]; then
        echo
        echo "WARNING: $fails agent runs failed (wrong exit code); see stderr."
    fi
} >"$TMP/table"
cat "$TMP/table"
if [[ -n $OUT ]]; then cp "$TMP/table" "$OUT"; fi
[[ ${fails:-1} == 0 ]]
