#!/bin/sh
# crm-examples/pgsql-ha-ec2.sh — the PostgreSQL HA cluster on EC2: everything pgsql-ha.sh
# configures (the promotable pgsqld-clone, the VIP pgsql-vip with its colocation and orders),
# plus what EC2 needs:
#   - fencing through the EC2 API: the stonith device fence-aws (fence_paceline_aws), which
#     powers a lost node's instance off (StopInstances, waits for "stopped") before Pacemaker
#     promotes another node, and stonith-enabled=true;
#   - the secondary private IP pgsql-awsvip (ocf:paceline:awsvip): EC2 delivers the VIP's
#     packets only to the ENI that owns the address, so it follows the primary like the VIP.
#
# Run it once, on one node of a running cluster that has none of these resources yet:
#     REGION=eu-west-1 HOST_MAP="node1:i-0aaa;node2:i-0bbb;node3:i-0ccc" VIP=10.0.1.100 \
#         NIC=ens5 CIDR=24 sh crm-examples/pgsql-ha-ec2.sh
# or against a CIB file:
#     cibadmin --empty > cib.xml && PCS="pcs -f cib.xml" REGION=... HOST_MAP=... sh crm-examples/pgsql-ha-ec2.sh
# See crm-examples/README.md (EC2 section) for the IAM permissions and the instance set-up.
#
# Environment (default in brackets); every variable of pgsql-ha.sh applies too (PCS, STACK,
# VIP, CIDR, NIC, PGDATA, DATADIR, BINDIR, PGHOST, PGPORT, MONITOR_*, VIP_MONITOR,
# PCS_CREATE_FLAGS) except STONITH, which is always true here. STACK defaults to paceline.
#   REGION              the instances' AWS region [required]
#   HOST_MAP            Pacemaker node name -> instance id, "node1:i-0aaa;node2:i-0bbb" [required]
#   ENDPOINT_URL        EC2 endpoint (a VPC interface endpoint; the lab's moto) [unset: the
#                       region's public endpoint]
#   PROFILE             AWS profile for both agents [unset: the SDK's default chain, i.e. the
#                       instance profile through IMDS — no keys in the CIB]
#   SECONDARY_IP        the secondary private IP awsvip moves [the VIP]
#   AWSVIP_MONITOR      monitor interval of pgsql-awsvip [VIP_MONITOR or 10s]
#   POWER_TIMEOUT       seconds fence_paceline_aws waits for "stopped" / "running" [60]
#   FENCE_MONITOR       monitor interval of the stonith device [60s]
#   FENCE_DELAY_MAX     pcmk_delay_max of the device, a random delay against fence races in
#                       two-node clusters, e.g. 15s [unset]
#   FENCE_AGENT         the fence agent [fence_paceline_aws]
#   AWSVIP_AGENT        the secondary IP's agent [ocf:paceline:awsvip] (both: to try another
#                       implementation with the same parameters)
set -eu

export PCS=${PCS:-pcs}
export STACK=${STACK:-paceline}
export VIP=${VIP:-192.0.2.100}
REGION=${REGION:-}
HOST_MAP=${HOST_MAP:-}
ENDPOINT_URL=${ENDPOINT_URL:-}
PROFILE=${PROFILE:-}
SECONDARY_IP=${SECONDARY_IP:-$VIP}
AWSVIP_MONITOR=${AWSVIP_MONITOR:-${VIP_MONITOR:-10s}}
POWER_TIMEOUT=${POWER_TIMEOUT:-60}
FENCE_MONITOR=${FENCE_MONITOR:-60s}
FENCE_DELAY_MAX=${FENCE_DELAY_MAX:-}
FENCE_AGENT=${FENCE_AGENT:-fence_paceline_aws}
AWSVIP_AGENT=${AWSVIP_AGENT:-ocf:paceline:awsvip}
export PCS_CREATE_FLAGS=${PCS_CREATE_FLAGS:-}

fail() { echo "pgsql-ha-ec2.sh: $*" >&2; exit 2; }
[ -n "$REGION" ] || fail "REGION is required (the instances' region, e.g. eu-west-1)"
[ -n "$HOST_MAP" ] || fail "HOST_MAP is required: node:instance-id pairs, e.g. node1:i-0aaa;node2:i-0bbb"
case ${STONITH:-true} in true) ;; *) fail "STONITH cannot be turned off here: this configuration fences through EC2" ;; esac
# Every pair node:i-...; pcmk_host_map also accepts spaces and commas, this script only ';'.
rest=$HOST_MAP
while [ -n "$rest" ]; do
    pair=${rest%%;*}
    case $pair in
        ?*:i-?*) ;;
        *) fail "HOST_MAP: '$pair' is not node:i-<instance id>" ;;
    esac
    case $rest in *\;*) rest=${rest#*;} ;; *) rest= ;; esac
done
case $POWER_TIMEOUT in '' | *[!0-9]*) fail "POWER_TIMEOUT must be a number of seconds, not '$POWER_TIMEOUT'" ;; esac

pcs_() {
    # shellcheck disable=SC2086
    $PCS "$@"
}

# Optional parameters shared by both agents.
common=""
[ -z "$ENDPOINT_URL" ] || common="$common endpoint_url=$ENDPOINT_URL"
[ -z "$PROFILE" ] || common="$common profile=$PROFILE"

# The fence device first: on a live cluster, stonith-enabled=true (set by pgsql-ha.sh) with no
# device would hold every resource back ("no STONITH resources have been defined").
# - pcmk_host_map: Pacemaker's node names are not instance ids; the fencer passes the mapped id
#   as the agent's plug.
# - The fencer's own deadlines cover the agent's: off waits up to POWER_TIMEOUT for "stopped",
#   reboot is off then on (twice that), plus room for the API calls.
# - stonith-action stays Pacemaker's default, reboot: the fenced node comes back (through
#   StartInstances) and rejoins as a standby (if its history diverged from the new primary's,
#   only once rewound: AUTO_REWIND, docs/pgsqlms.md "Crash recovery and timeline divergence").
off_timeout=$((POWER_TIMEOUT + 30))
reboot_timeout=$((2 * POWER_TIMEOUT + 30))
set -- "region=$REGION" "pcmk_host_map=$HOST_MAP" "power_timeout=$POWER_TIMEOUT" \
    "pcmk_off_timeout=${off_timeout}s" "pcmk_reboot_timeout=${reboot_timeout}s"
[ -z "$FENCE_DELAY_MAX" ] || set -- "$@" "pcmk_delay_max=$FENCE_DELAY_MAX"
# shellcheck disable=SC2086
pcs_ stonith create fence-aws "$FENCE_AGENT" "$@" $common \
    op monitor "interval=$FENCE_MONITOR" timeout=60s \
    $PCS_CREATE_FLAGS

# PostgreSQL, the VIP, their constraints, and stonith-enabled=true.
PGSQL_ENABLE=false STONITH=true sh "$(dirname "$0")/pgsql-ha.sh"

# The secondary private IP, exactly like the VIP: only with the primary, assigned after the
# promotion (clients and the standbys' replication reach the new primary only once it
# accepts writes), released after the demotion (the standbys get the old primary's last WAL).
# Created disabled and enabled once constrained, so it never lands elsewhere, even briefly.
# On a failover the old primary's node is fenced, so it cannot release the address:
# ocf:paceline:awsvip takes it over (AllowReassignment).
# shellcheck disable=SC2086
pcs_ resource create pgsql-awsvip "$AWSVIP_AGENT" "secondary_private_ip=$SECONDARY_IP" "region=$REGION" $common \
    op monitor "interval=$AWSVIP_MONITOR" timeout=30s \
    op start timeout=60s op stop timeout=60s \
    --disabled $PCS_CREATE_FLAGS
pcs_ constraint colocation add pgsql-awsvip with Promoted pgsqld-clone score=INFINITY
pcs_ constraint order promote pgsqld-clone then start pgsql-awsvip symmetrical=false kind=Mandatory
pcs_ constraint order demote pgsqld-clone then stop pgsql-awsvip symmetrical=false kind=Mandatory
pcs_ resource enable pgsql-awsvip

# PostgreSQL last (see the end of pgsql-ha.sh): no pcs command runs after it starts.
if [ "${PGSQL_ENABLE:-true}" = true ]; then
    pcs_ resource enable pgsqld-clone
fi
