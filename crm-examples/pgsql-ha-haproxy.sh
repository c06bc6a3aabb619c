#!/bin/sh
# crm-examples/pgsql-ha-haproxy.sh — the PostgreSQL HA cluster without a virtual IP, for
# networks that cannot move one (several availability zones, L3 fabrics, most clouds):
# everything pgsql-ha.sh creates except the VIP — the promotable clone pgsqld-clone and the
# node state service pgsql-state on every node — and HAProxy on every node
# (crm-examples/haproxy.cfg, outside Pacemaker) routes clients and the standbys'
# replication to the node whose state service answers GET /primary with 200.
#
# Run it once, on one node of a running cluster that has none of these resources yet:
#     PGPORT=5434 STATE_ALLOW="192.0.2.0/24 127.0.0.1 ::1" sh crm-examples/pgsql-ha-haproxy.sh
# or against a CIB file:
#     cibadmin --empty > cib.xml && PCS="pcs -f cib.xml" sh crm-examples/pgsql-ha-haproxy.sh
# crm-examples/README.md has the PostgreSQL and HAProxy set-up it expects.
#
# It runs pgsql-ha.sh itself (or, with EC2=true, pgsql-ha-ec2.sh: fencing through EC2), with
# every pcs command that concerns the VIP (pgsql-vip) or EC2's secondary IP (pgsql-awsvip)
# left out: the same resources, values and checks, one definition.
#
# Environment (default in brackets): every variable of pgsql-ha.sh (PCS, PGDATA, DATADIR,
# BINDIR, PGHOST, PGPORT, MONITOR_PROMOTED, MONITOR_UNPROMOTED, STONITH, AUTO_REWIND,
# REWIND_USER, SYNC_MODE, SYNC_COUNT, PCS_CREATE_FLAGS) except the VIP's (VIP, CIDR, NIC,
# VIP_MONITOR: no VIP), and:
#   STACK          paceline: ocf:paceline:pgsqlms + the state service (ocf:paceline:pgsql-state),
#                  which answers HAProxy's checks [paceline];
#                  reference: PAF's ocf:heartbeat:pgsqlms alone — HAProxy's checks must
#                  then come from elsewhere (the seed demo's psql-based pgsql-state socket)
#   STATE_SERVICE  true only (STACK=paceline): without the state service nothing answers
#                  HAProxy's checks
#   EC2            true|false [false]: run pgsql-ha-ec2.sh instead (fence_paceline_aws,
#                  stonith-enabled=true; its REGION, HOST_MAP, ... apply), without the
#                  secondary IP
#   STATE_ALLOW    required (STACK=paceline): the networks the state service answers (its
#                  allow parameter), e.g. "192.0.2.0/24 127.0.0.1 ::1": the nodes' network —
#                  every HAProxy checks every node from its own node's address — and the
#                  monitoring's. There is no VIP here to take a default from.
set -eu

if [ "${1:-}" = _pcs ]; then
    # pgsql-ha.sh's pcs, for each of its commands: the VIP's and the secondary IP's are
    # left out, the others passed on to the real pcs.
    shift
    for a in "$@"; do
        case $a in pgsql-vip | pgsql-awsvip) exit 0 ;; esac
    done
    # shellcheck disable=SC2086
    exec $HAPROXY_REAL_PCS "$@"
fi

PCS=${PCS:-pcs}
STACK=${STACK:-paceline}
STATE_SERVICE=${STATE_SERVICE:-true}
EC2=${EC2:-false}

fail() { echo "pgsql-ha-haproxy.sh: $*" >&2; exit 2; }
case $STACK in
    paceline)
        [ "$STATE_SERVICE" = true ] || fail "STATE_SERVICE must be true: HAProxy's checks ask the state service (ocf:paceline:pgsql-state)"
        [ -n "${STATE_ALLOW:-}" ] || fail "STATE_ALLOW is required: the networks the state service answers, those of the nodes (each HAProxy checks from its node's address) and of the monitoring, e.g. STATE_ALLOW=\"192.0.2.0/24 127.0.0.1 ::1\""
        ;;
    reference) echo "pgsql-ha-haproxy.sh: STACK=reference: no state service; HAProxy's checks must be answered by something else on every node" >&2 ;;
    *) fail "STACK must be paceline or reference, not '$STACK'" ;;
esac
case $EC2 in
    true) base=pgsql-ha-ec2.sh ;;
    false) base=pgsql-ha.sh ;;
    *) fail "EC2 must be true or false, not '$EC2'" ;;
esac
case $0 in
    *" "*) fail "the path of this script must not contain spaces (pgsql-ha.sh splits PCS on spaces): $0" ;;
esac

# pgsql-ha.sh splits $PCS on spaces: "sh <this script> _pcs" is a command it can run; the
# real pcs (which may itself be "pcs -f FILE") goes in HAPROXY_REAL_PCS.
HAPROXY_REAL_PCS=$PCS PCS="sh $0 _pcs" STACK=$STACK STATE_SERVICE=true \
    VIP_MONITOR=${VIP_MONITOR:-10s} \
    sh "$(dirname "$0")/$base"

# The routing checks' answerer must be there (a pgsql-ha.sh that creates it by default).
if [ "$STACK" = paceline ]; then
    # shellcheck disable=SC2086
    $PCS resource config pgsql-state-clone >/dev/null 2>&1 ||
        fail "$base created no state service (pgsql-state-clone): HAProxy's checks would find nothing to answer them"
fi
