# The world tests/bench_aws.sh and tests/bench_aws_vpc.sh run their agents in, sourced by
# them (bash, from the repository's root; MOTO_PY and AWSCLI_VENV set; $1: a tag):
# one throw-away network namespace $NS — moto (tests/aws/moto_server.py) on its
# 127.0.0.1:5000, serving until fd 7 closes, the IMDSv2 stub tests/lab/imds.py on
# 169.254.169.254:80 of its lo — with a VPC, a subnet and one instance ($IID, its $ENI and
# $MAC, 192.0.2.11). Credentials and region in a [default] profile of a temporary HOME
# ($TMP/home: heartbeat's agents require that profile); `aws ...` runs pip's AWS CLI in the
# namespace, `in_ns CMD` anything. Everything is removed on exit (trap).
NS=plt-$$-$1
TMP=$(mktemp -d "/tmp/paceline-bench-$1.XXXXXX")
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
