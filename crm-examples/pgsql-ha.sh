#!/bin/sh
# crm-examples/pgsql-ha.sh — the Pacemaker configuration of the PostgreSQL HA cluster we ship:
# a promotable PostgreSQL resource (one primary, streaming-replication standbys elsewhere)
# and a virtual IP that follows the primary. Names and values follow PAF's documentation
# (pgsqld, pgsqld-clone, pgsql-vip), so the result is what a PAF user expects to find.
#
# Run it once, on one node of a running cluster that has none of these resources yet:
#     sh crm-examples/pgsql-ha.sh
# or against a CIB file (nothing running needed):
#     cibadmin --empty > cib.xml && PCS="pcs -f cib.xml" sh crm-examples/pgsql-ha.sh
# See crm-examples/README.md for the PostgreSQL set-up the agents expect.
#
# Environment (default in brackets):
#   PCS                 the pcs command, split on spaces [pcs]; "pcs -f FILE" edits a CIB file
#   STACK               paceline:  ocf:paceline:pgsqlms       + ocf:paceline:IPaddr2   [paceline]
#                       reference: ocf:heartbeat:pgsqlms (PAF) + ocf:heartbeat:IPaddr2
#   VIP                 the virtual IP clients and standbys connect to [192.0.2.100]
#   CIDR                its prefix length [24]
#   NIC                 the interface it goes on [eth0]
#   PGDATA              pgsqlms pgdata: the directory holding postgresql.conf [/var/lib/postgresql/17/main]
#   DATADIR             pgsqlms datadir, only if it differs from PGDATA, e.g. with Debian's
#                       pg_createcluster layout PGDATA=/etc/postgresql/17/main
#                       DATADIR=/var/lib/postgresql/17/main [unset: not configured]
#   BINDIR              PostgreSQL's binaries [/usr/lib/postgresql/17/bin]
#   PGHOST              socket directory for the agent's local connections [/run/postgresql]
#   PGPORT              [5432]
#   MONITOR_PROMOTED    monitor interval of the primary [15s]
#   MONITOR_UNPROMOTED  monitor interval of the standbys [16s]; must differ from MONITOR_PROMOTED
#   VIP_MONITOR         monitor interval of the VIP [10s]
#   STONITH             true|false: the stonith-enabled cluster property [true]. This script
#                       creates no fence device: true needs one in the configuration already
#                       (your platform's, e.g. fence_ipmilan; on EC2 pgsql-ha-ec2.sh creates
#                       fence_paceline_aws, then runs this script), else it stops before
#                       changing anything. false (a test cluster only: a hung primary and a
#                       promoted standby can both take writes) prints a warning.
#   AUTO_REWIND         paceline stack only: the pgsqlms auto_rewind parameter, true|false
#                       [unset: the agent's default, false]. true: a rebooted ex-primary whose
#                       history diverged is rewound from the primary (pg_rewind) and rejoins as
#                       a standby; false: likewise if its WAL past the fork holds no
#                       transaction (a shutdown checkpoint), otherwise its start is refused
#                       with the reason (docs/pgsqlms.md)
#   REWIND_USER         paceline stack only: the pgsqlms rewind_user parameter [unset: the user
#                       of primary_conninfo], who needs pg_rewind's privileges on the primary
#   SYNC_MODE           paceline stack only: the pgsqlms synchronous_mode parameter, off|on|strict
#                       [unset: the agent's default, off]. on/strict: commits are acknowledged
#                       only once SYNC_COUNT standbys have them (docs/pgsqlms.md), and the
#                       node state service (see STATE_SERVICE) guards them against cancelled
#                       waits (docs/pgsql-state.md)
#   STATE_SERVICE       paceline stack only, true|false: the node state service
#                       (ocf:paceline:pgsql-state, a clone on every node) [true]. It reports a
#                       crashed PostgreSQL to Pacemaker at once (no wait for the next monitor),
#                       guards synchronous commits, and answers load balancers' routing checks
#                       on port 8008 (docs/state-service.md)
#   STATE_ALLOW         paceline stack only: the networks the state service answers (its
#                       allow parameter; addresses or networks separated by spaces): the
#                       load balancers' and the monitoring's. A client from anywhere else is
#                       closed unanswered and takes none of its connections
#                       [the VIP's network, i.e. the nodes', and this node's loopback:
#                       "$VIP/$CIDR 127.0.0.1 ::1"]; "0.0.0.0/0 ::/0" answers every client
#                       (docs/state-service.md, "Connection limits")
#   SYNC_COUNT          paceline stack only: synchronous_node_count [unset: the agent's default, 1]
#   PCS_CREATE_FLAGS    extra flags for both "pcs resource create" [none], e.g. --force, which
#                       pcs needs while ocf:paceline:pgsqlms is not installed on this machine
#                       (without it pcs refuses an agent whose meta-data it cannot read).
#   PGSQL_ENABLE        enable pgsqld-clone at the end [true]; false leaves it disabled for
#                       a caller that adds resources first (pgsql-ha-ec2.sh does)
set -eu

PCS=${PCS:-pcs}
STACK=${STACK:-paceline}
VIP=${VIP:-192.0.2.100}
CIDR=${CIDR:-24}
NIC=${NIC:-eth0}
PGDATA=${PGDATA:-/var/lib/postgresql/17/main}
DATADIR=${DATADIR:-}
BINDIR=${BINDIR:-/usr/lib/postgresql/17/bin}
PGHOST=${PGHOST:-/run/postgresql}
PGPORT=${PGPORT:-5432}
MONITOR_PROMOTED=${MONITOR_PROMOTED:-15s}
MONITOR_UNPROMOTED=${MONITOR_UNPROMOTED:-16s}
VIP_MONITOR=${VIP_MONITOR:-10s}
STONITH=${STONITH:-true}
PCS_CREATE_FLAGS=${PCS_CREATE_FLAGS:-}
AUTO_REWIND=${AUTO_REWIND:-}
REWIND_USER=${REWIND_USER:-}
SYNC_MODE=${SYNC_MODE:-}
SYNC_COUNT=${SYNC_COUNT:-}
STATE_SERVICE=${STATE_SERVICE:-true}
STATE_ALLOW=${STATE_ALLOW-"$VIP/$CIDR 127.0.0.1 ::1"}

case $STACK in
    reference) PGSQL_AGENT=ocf:heartbeat:pgsqlms VIP_AGENT=ocf:heartbeat:IPaddr2 ;;
    paceline) PGSQL_AGENT=ocf:paceline:pgsqlms VIP_AGENT=ocf:paceline:IPaddr2 ;;
    *) echo "pgsql-ha.sh: STACK must be reference or paceline, not '$STACK'" >&2; exit 2 ;;
esac
case $STONITH in
    true | false) ;;
    *) echo "pgsql-ha.sh: STONITH must be true or false, not '$STONITH'" >&2; exit 2 ;;
esac
case $AUTO_REWIND in
    "" | true | false) ;;
    *) echo "pgsql-ha.sh: AUTO_REWIND must be true or false, not '$AUTO_REWIND'" >&2; exit 2 ;;
esac
case $SYNC_MODE in
    "" | off | on | strict) ;;
    *) echo "pgsql-ha.sh: SYNC_MODE must be off, on or strict, not '$SYNC_MODE'" >&2; exit 2 ;;
esac
case $STATE_SERVICE in
    true | false) ;;
    *) echo "pgsql-ha.sh: STATE_SERVICE must be true or false, not '$STATE_SERVICE'" >&2; exit 2 ;;
esac
if [ "$STACK" = paceline ] && [ "$STATE_SERVICE" = true ]; then
    case $STATE_ALLOW in
        *[!0-9A-Fa-f.:/,\ ]* | "" | " ")
            echo "pgsql-ha.sh: STATE_ALLOW must list the networks the state service answers (e.g. \"192.0.2.0/24 127.0.0.1 ::1\"; \"0.0.0.0/0 ::/0\" for every client), not '$STATE_ALLOW'" >&2
            exit 2 ;;
    esac
fi
if [ "$STACK" = reference ] && [ -n "$AUTO_REWIND$REWIND_USER$SYNC_MODE$SYNC_COUNT" ]; then
    echo "pgsql-ha.sh: AUTO_REWIND, REWIND_USER, SYNC_MODE and SYNC_COUNT are parameters of ocf:paceline:pgsqlms only (STACK=paceline)" >&2
    exit 2
fi
if [ "$MONITOR_PROMOTED" = "$MONITOR_UNPROMOTED" ]; then
    # Pacemaker identifies a recurring operation by name and interval: two monitors with the
    # same interval would be one operation, and one role would go unmonitored.
    echo "pgsql-ha.sh: MONITOR_PROMOTED and MONITOR_UNPROMOTED must differ" >&2
    exit 2
fi

# $PCS and $PCS_CREATE_FLAGS are split into words on purpose (PCS="pcs -f cib.xml").
pcs_() {
    # shellcheck disable=SC2086
    $PCS "$@"
}

# Fencing on needs a fence device, or Pacemaker starts no resource at all ("Resource
# start-up disabled since no STONITH resources have been defined"): say so now, before
# anything changes, rather than leave a cluster that silently runs nothing.
if [ "$STONITH" = true ] && ! pcs_ cluster cib 2>/dev/null | grep -q 'class="stonith"'; then
    echo "pgsql-ha.sh: STONITH=true (the default) and no fence device is configured: create yours first (pcs stonith create ...; on EC2 crm-examples/pgsql-ha-ec2.sh does it), or set STONITH=false for a test cluster without fencing" >&2
    exit 2
fi

# Fencing. PAF's documentation calls it mandatory: without it a primary that stops answering
# (rather than dying) may still be writing when a standby is promoted. This script only sets
# the property: the fence device is the caller's (pgsql-ha-ec2.sh creates fence_paceline_aws,
# then runs this script with STONITH=true). Left false (the lab without --ec2), it says so loudly.
pcs_ property set "stonith-enabled=$STONITH"
if [ "$STONITH" = false ]; then
    echo "WARNING: stonith-enabled=false: no fencing; a hung primary can coexist with a promoted standby (split brain). Do not run production this way." >&2
fi

# Resource defaults, PAF's recommended values (its quick starts set exactly these):
# - resource-stickiness=10: a small bonus for staying where a resource runs, so instances and
#   the VIP do not move back and forth between nodes of equal score (e.g. when a node
#   rejoins). In the choice of the primary it only adds to the current primary's score
#   (PAF: 1001, ahead anyway); standbys are ranked by PAF's scores alone (1000, 990, ...).
# - migration-threshold=5: a failed resource is recovered in place (demote, stop, start,
#   promote on the same node) up to 4 times; the 5th failure on a node bans the resource
#   from that node (until its failures are cleaned up) and the primary fails over. A
#   crashed PostgreSQL is usually best restarted where its data is newest.
pcs_ resource defaults update resource-stickiness=10 migration-threshold=5

# The PostgreSQL instances: one primitive, cloned on every node, promotable.
# - Operation timeouts are the agent's advertised defaults (PAF 2.3.0 meta-data): demote is
#   long because it is a fast shutdown, then a start as a standby.
# - The two monitors must have different intervals (see above); Promoted/Unpromoted are the
#   Pacemaker 2.1 names of PAF's Master/Slave roles.
# - notify=true: the agent elects the best standby in its pre-promote notification; PAF's
#   validation refuses to run without it.
# - promoted-max=1: one primary (Pacemaker's name since 2.0). PAF 2.3.0 validates
#   OCF_RESKEY_CRM_meta_master_max=1; inside the cluster Pacemaker 2.1.5 exports that (and
#   promoted_max) from promoted-max, but "crm_resource --force-check -r pgsqld" by hand
#   passes only the configured meta attributes, and PAF's check then fails with rc 5. The
#   deprecated master-max=1 as well satisfies it (Pacemaker 2.1.5 accepts it silently).
#   It is set for both stacks, so that they differ in the agents' provider only.
set -- "bindir=$BINDIR" "pgdata=$PGDATA" "pghost=$PGHOST" "pgport=$PGPORT"
if [ -n "$DATADIR" ]; then
    set -- "$@" "datadir=$DATADIR"
fi
if [ -n "$AUTO_REWIND" ]; then
    set -- "$@" "auto_rewind=$AUTO_REWIND"
fi
if [ -n "$REWIND_USER" ]; then
    set -- "$@" "rewind_user=$REWIND_USER"
fi
if [ -n "$SYNC_MODE" ]; then
    set -- "$@" "synchronous_mode=$SYNC_MODE"
fi
if [ -n "$SYNC_COUNT" ]; then
    set -- "$@" "synchronous_node_count=$SYNC_COUNT"
fi
# The clone's meta attributes are given as it is created: Pacemaker probes a new resource
# at once, disabled or not, and PAF's probe without notify=true fails as misconfigured,
# which stops the resource everywhere until a cleanup. pcs 0.12 takes them after
# "promotable meta" with --future (without --future, "meta" there lands on the primitive,
# and without "meta" 0.12 warns that the form is deprecated); 0.10 and 0.11 take them after
# "promotable" alone.
case $($PCS --version 2>/dev/null) in
    0.10.*|0.11.*) PROMOTABLE="promotable notify=true promoted-max=1 master-max=1" ;;
    *) PROMOTABLE="promotable meta notify=true promoted-max=1 master-max=1 --future" ;;
esac
# shellcheck disable=SC2086
pcs_ resource create pgsqld "$PGSQL_AGENT" "$@" \
    op start timeout=60s \
    op stop timeout=60s \
    op promote timeout=30s \
    op demote timeout=120s \
    op notify timeout=60s \
    op monitor "interval=$MONITOR_PROMOTED" role=Promoted timeout=10s \
    op monitor "interval=$MONITOR_UNPROMOTED" role=Unpromoted timeout=10s \
    $PROMOTABLE --disabled $PCS_CREATE_FLAGS

# The virtual IP of the primary. Created disabled and enabled once its constraints exist, so
# that on a live cluster it never starts, even briefly, on a node without the primary.
# shellcheck disable=SC2086
pcs_ resource create pgsql-vip "$VIP_AGENT" "ip=$VIP" "cidr_netmask=$CIDR" "nic=$NIC" \
    op monitor "interval=$VIP_MONITOR" timeout=20s \
    --disabled $PCS_CREATE_FLAGS

# The VIP runs only where the primary is (and nowhere if there is none).
pcs_ constraint colocation add pgsql-vip with Promoted pgsqld-clone score=INFINITY
# Two one-way orders (PAF's documented pair):
# - promote, then start the VIP: clients reach the new primary only once it accepts writes;
# - demote, then stop the VIP: the standbys' primary_conninfo points at the VIP, so it stays
#   up while the old primary shuts down, and the standbys receive its last WAL (the
#   shutdown checkpoint PAF checks for before a switchover's promotion).
# symmetrical=false on both: the implied inverse of the first ("stop the VIP, then demote")
# would contradict the second.
pcs_ constraint order promote pgsqld-clone then start pgsql-vip symmetrical=false kind=Mandatory
pcs_ constraint order demote pgsqld-clone then stop pgsql-vip symmetrical=false kind=Mandatory

pcs_ resource enable pgsql-vip

# The node state service on every node (docs/state-service.md): reports a crashed PostgreSQL
# at once, guards synchronous commits against a cancelled wait's false success, answers
# routing checks. Same connection parameters as pgsqld; pgsql_resource names it. allow: its
# answers, and its connections, are for the cluster's networks only — a client elsewhere
# cannot take the load balancers' room.
if [ "$STACK" = paceline ] && [ "$STATE_SERVICE" = true ]; then
    # shellcheck disable=SC2086
    pcs_ resource create pgsql-state ocf:paceline:pgsql-state "pghost=$PGHOST" "pgport=$PGPORT" pgsql_resource=pgsqld "allow=$STATE_ALLOW" \
        op monitor interval=10s timeout=10s \
        clone $PCS_CREATE_FLAGS
fi

# PostgreSQL last: created disabled, started only now that the configuration is complete.
# On a live cluster each pcs command above replaces the configuration section, node
# attributes included: an instance started earlier could see the promotion score its first
# start wrote replaced by a copy read before it (then nobody is promotable and the cluster
# waits for ever). PGSQL_ENABLE=false leaves the enabling to a caller that adds more
# resources after this script (pgsql-ha-ec2.sh).
if [ "${PGSQL_ENABLE:-true}" = true ]; then
    pcs_ resource enable pgsqld-clone
fi
