#!/bin/sh
# crm-examples/pgsql-ha-ec2-multiaz.sh — the PostgreSQL HA cluster on EC2 across availability
# zones: everything pgsql-ha-ec2.sh configures (the promotable pgsqld-clone, fencing through
# EC2 with fence-aws, stonith-enabled=true) except its two addresses, the VIP and the
# secondary private IP — a private IP belongs to one subnet, so to one AZ — and instead:
#   - the overlay IP pgsql-overlay (ocf:paceline:aws-vpc-move-ip): an address outside the
#     VPC's CIDR that the VPC route tables send to the primary's interface, configured on
#     that interface; it follows the primary like the VIP (same colocation and orders).
#
# Run it once, on one node of a running cluster that has none of these resources yet:
#     REGION=eu-west-1 HOST_MAP="node1:i-0aaa;node2:i-0bbb;node3:i-0ccc" \
#         OVERLAY_IP=192.0.2.100 ROUTE_TABLES=rtb-0aaa,rtb-0bbb NIC=ens5 \
#         STATE_ALLOW="10.0.1.0/24 10.0.2.0/24 127.0.0.1 ::1" \
#         sh crm-examples/pgsql-ha-ec2-multiaz.sh
# or against a CIB file (PCS="pcs -f cib.xml"), as pgsql-ha.sh.
# Each instance needs its source/destination check disabled (EC2 drops packets to an
# address that is not the interface's otherwise); crm-examples/README.md has the IAM
# permissions.
#
# Environment (default in brackets): every variable of pgsql-ha-ec2.sh (REGION, HOST_MAP,
# ENDPOINT_URL, PROFILE, POWER_TIMEOUT, FENCE_*, and pgsql-ha.sh's), and:
#   OVERLAY_IP       the overlay address, outside the VPC's CIDR blocks [required]
#   ROUTE_TABLES     the route tables to update, comma-separated: those of every subnet the
#                    clients and the nodes are in [required]
#   NIC              the interface that gets the address [eth0]
#   OVERLAY_MONITOR  monitor interval of pgsql-overlay [10s]
#   MONAPI           true|false [false]: also check the route tables on every monitor (one
#                    DescribeRouteTables each time; probes always check them)
#   OVERLAY_AGENT    the overlay IP's agent [ocf:paceline:aws-vpc-move-ip] (heartbeat's
#                    takes the same parameters)
#   STATE_ALLOW      required with the state service (STACK=paceline, the default): the
#                    networks it answers (its allow parameter), e.g. the subnets of the
#                    nodes and of the monitoring, "10.0.1.0/24 10.0.2.0/24 127.0.0.1 ::1";
#                    the overlay IP is no network to take a default from
set -eu

if [ "${1:-}" = _pcs ]; then
    # pgsql-ha-ec2.sh's pcs, for each of its commands: the VIP's and the secondary IP's are
    # left out, the others passed on to the real pcs.
    shift
    for a in "$@"; do
        case $a in pgsql-vip | pgsql-awsvip) exit 0 ;; esac
    done
    # shellcheck disable=SC2086
    exec $MULTIAZ_REAL_PCS "$@"
fi

PCS=${PCS:-pcs}
OVERLAY_IP=${OVERLAY_IP:-}
ROUTE_TABLES=${ROUTE_TABLES:-}
NIC=${NIC:-eth0}
OVERLAY_MONITOR=${OVERLAY_MONITOR:-10s}
MONAPI=${MONAPI:-false}
OVERLAY_AGENT=${OVERLAY_AGENT:-ocf:paceline:aws-vpc-move-ip}
ENDPOINT_URL=${ENDPOINT_URL:-}
PROFILE=${PROFILE:-}
PCS_CREATE_FLAGS=${PCS_CREATE_FLAGS:-}

fail() { echo "pgsql-ha-ec2-multiaz.sh: $*" >&2; exit 2; }
[ -n "$OVERLAY_IP" ] || fail "OVERLAY_IP is required (an address outside the VPC's CIDR blocks)"
case $OVERLAY_IP in *[!0-9.]* | *.*.*.*.* | .* | *.) fail "OVERLAY_IP must be an IPv4 address, not '$OVERLAY_IP'" ;; *.*.*.*) ;; *) fail "OVERLAY_IP must be an IPv4 address, not '$OVERLAY_IP'" ;; esac
[ -n "$ROUTE_TABLES" ] || fail "ROUTE_TABLES is required: the route tables' ids, comma-separated (rtb-0aaa,rtb-0bbb)"
if [ "${STACK:-paceline}" = paceline ] && [ "${STATE_SERVICE:-true}" = true ] && [ -z "${STATE_ALLOW:-}" ]; then
    fail "STATE_ALLOW is required: the networks the state service answers (the subnets of the nodes and of the monitoring), e.g. STATE_ALLOW=\"10.0.1.0/24 10.0.2.0/24 127.0.0.1 ::1\""
fi
rest=$ROUTE_TABLES
while [ -n "$rest" ]; do
    t=${rest%%,*}
    case $t in rtb-?*) ;; *) fail "ROUTE_TABLES: '$t' is not a route table id (rtb-...)" ;; esac
    case $rest in *,*) rest=${rest#*,} ;; *) rest= ;; esac
done
case $MONAPI in true | false) ;; *) fail "MONAPI must be true or false, not '$MONAPI'" ;; esac
case $0 in
    *" "*) fail "the path of this script must not contain spaces (pgsql-ha.sh splits PCS on spaces): $0" ;;
esac

# pgsql-ha.sh splits $PCS on spaces: "sh <this script> _pcs" is a command it can run; the
# real pcs (which may itself be "pcs -f FILE") goes in MULTIAZ_REAL_PCS. The VIP's own
# settings are pgsql-ha.sh's business only; VIP_MONITOR keeps its checks quiet.
MULTIAZ_ENABLE=${PGSQL_ENABLE:-true}
MULTIAZ_REAL_PCS=$PCS PCS="sh $0 _pcs" NIC=$NIC VIP_MONITOR=${VIP_MONITOR:-10s} PGSQL_ENABLE=false \
    sh "$(dirname "$0")/pgsql-ha-ec2.sh"

pcs_() {
    # shellcheck disable=SC2086
    $PCS "$@"
}
common=""
[ -z "$ENDPOINT_URL" ] || common="$common endpoint_url=$ENDPOINT_URL"
[ -z "$PROFILE" ] || common="$common profile=$PROFILE"

# The overlay IP, exactly like the VIP: only with the primary, routed here after the
# promotion (clients and the standbys' replication reach the new primary only once it
# accepts writes), released after the demotion. Created disabled and enabled once
# constrained, so it never lands elsewhere, even briefly. On a failover the old primary's
# node is fenced; the new primary's start rewrites every table (ReplaceRoute).
# shellcheck disable=SC2086
pcs_ resource create pgsql-overlay "$OVERLAY_AGENT" "ip=$OVERLAY_IP" "routing_table=$ROUTE_TABLES" \
    "interface=$NIC" "monapi=$MONAPI" "region=${REGION:-}" $common \
    op monitor "interval=$OVERLAY_MONITOR" timeout=30s \
    op start timeout=60s op stop timeout=60s \
    --disabled $PCS_CREATE_FLAGS
pcs_ constraint colocation add pgsql-overlay with Promoted pgsqld-clone score=INFINITY
pcs_ constraint order promote pgsqld-clone then start pgsql-overlay symmetrical=false kind=Mandatory
pcs_ constraint order demote pgsqld-clone then stop pgsql-overlay symmetrical=false kind=Mandatory
pcs_ resource enable pgsql-overlay

# PostgreSQL last (see the end of pgsql-ha.sh): no pcs command runs after it starts.
if [ "$MULTIAZ_ENABLE" = true ]; then
    pcs_ resource enable pgsqld-clone
fi
