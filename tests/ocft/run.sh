#!/usr/bin/env bash
# resource-agents' own ocft suites, run against an agent provider:
#
#   tests/ocft/run.sh PROVIDER CONFIG...
#     PROVIDER  heartbeat (the installed /usr/lib/ocf/resource.d/heartbeat agents)
#               or paceline (our built IPaddr2/pgsqlms, copied into a private AgentRoot)
#     CONFIG    IPaddr2v4 | IPaddr2v6 | pgsqlms
#
# For each config it writes an adapted copy of the installed ocft config
# (/usr/share/resource-agents/ocft/configs/CONFIG) into a private directory: only the
# VARIABLE, SETUP-AGENT and CLEANUP-AGENT sections and CONFIG's AgentRoot are changed
# (see adapt_*), every CASE and CASE-BLOCK is kept as shipped. Then `ocft make -d DIR` and
# `ocft test -v` run inside a network namespace made here (plt-$$-ocft, veth eth0/eth1)
# and a private mount namespace: a private /tmp, where ocft's agent_run log and its
# failure report's `cat /tmp/.ocft_runlog` then agree, and a private ocft cases directory
# bind-mounted over /var/lib/resource-agents/ocft/cases, so nothing is written to the
# host's ocft directories and two runs do not see each other's cases.
#
# Output: one line per case
#   PROVIDER CONFIG CASE_NO "name" pass|FAIL (details)
# then the errors and warnings the agents logged, and a summary. A case whose expectation
# is out of date for that provider's agent is listed in EXPECTED_FAIL below and printed as
# `FAIL (expected: why; ...)`. Exit 0 when every case did what is expected of it (pass, or
# for those listed, fail), 1 otherwise, 2 on a usage or set-up error.
#
# Env: PACELINE_BIN_DIR  where the built paceline is (default target/<host>/debug)
#      OCFT_KEEP_LOGS    a directory to copy ocft's output and the agents' logs to
#
# Safety: addresses are TEST-NET (192.0.2.0/24, 2001:db8::/32, and IPaddr2v6's link-local
# fe80::2), on veth links whose both ends are in the namespace made here; PostgreSQL
# listens only on a unix socket in the private work directory. The namespace, the work
# directory and any process left in the namespace (by pid) go on exit, whatever the outcome.
# /var/lib/resource-agents/ocft/cases is created if missing (ocft's own directory, empty:
# only the mount point of the private one).
set -euo pipefail

usage() {
    echo "usage: $0 heartbeat|paceline IPaddr2v4|IPaddr2v6|pgsqlms..." >&2
    exit 2
}
die() {
    echo "ocft/run.sh: $*" >&2
    exit 2
}

[ $# -ge 2 ] || usage
PROVIDER=$1
shift
case $PROVIDER in heartbeat | paceline) ;; *) usage ;; esac
CONFIGS=()
for c in "$@"; do
    case $c in IPaddr2v4 | IPaddr2v6 | pgsqlms) CONFIGS+=("$c") ;; *) usage ;; esac
done

OCFT=/usr/sbin/ocft
SHIPPED=/usr/share/resource-agents/ocft/configs
CASES=/var/lib/resource-agents/ocft/cases # hard-coded in ocft and its caselib
HB_ROOT=/usr/lib/ocf/resource.d/heartbeat
PGBIN=/usr/lib/postgresql/15/bin
PGPORT=55432

[ "$(id -u)" = 0 ] || die "needs root (ocft refuses to run otherwise)"
[ -x $OCFT ] || die "$OCFT missing (resource-agents)"
for c in "${CONFIGS[@]}"; do
    [ -r "$SHIPPED/$c" ] || die "$SHIPPED/$c missing"
done

# Cases whose failure is expected: the shipped config's expectation is out of date for
# that provider's agent (the same list, with the same reasons, is checked by
# tests/ocft.rs). Printed as `FAIL (expected: ...)`; a listed case that passes counts as
# a failure too (the list is then out of date).
declare -A EXPECTED_FAIL=()
# PAF 2.x runs validate-all before every action, and it requires what only Pacemaker
# passes (crm_feature_set > 3.0.9, meta notify=true read back with crm_resource, meta
# master-max=1); the config, written for PAF 1.x in 2016, sets none of them, so the
# monitor of each case's "AgentRun stop" preamble already exits 5 (OCF_ERR_INSTALLED).
# IPaddr2v6 case 13 expects OCF_ERR_GENERIC for a cidr_netmask narrower than the connected
# subnet (/80 in a /64) with no nic; findif.sh has long accepted that (`ip route list match`
# finds the /64 for IP/80), as IPaddr2v4's case 14 expects for the same shape (/28 in a
# /24). paceline's IPaddr2 behaves as heartbeat's: both start, rc 0.
for p in heartbeat paceline; do
    EXPECTED_FAIL[$p:IPaddr2v6:13]="a prefix narrower than the connected subnet, no nic: findif accepts it (rc 0) as IPaddr2v4 case 14 expects; the ERR_GENERIC expected here is out of date"
done
for no in 0 1 2 3 4 5 6 7 8 9 10 11; do
    EXPECTED_FAIL[heartbeat:pgsqlms:$no]="PAF 2.x needs Pacemaker's crm_feature_set/notify/master-max, which the config predates: rc 5 from validate-all"
done

REPO=$(cd "$(dirname "$0")/../.." && pwd)
NS=plt-$$-ocft
WORK=
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    set +e
    if [ -n "$WORK" ] && [ -f "$WORK/pgdata1/postmaster.pid" ]; then
        (cd / && runuser -u postgres -- $PGBIN/pg_ctl -D "$WORK/pgdata1" -m immediate -w stop) >/dev/null 2>&1
    fi
    if ip netns list 2>/dev/null | grep -qw "^$NS"; then
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
        sleep 0.2
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$NS"
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Outside /tmp: the private /tmp mounted in the namespace would hide it.
WORK=$(mktemp -d /var/tmp/paceline-ocft.XXXXXX)
chmod 0755 "$WORK" # postgres reaches its data directory and socket through it
mkdir -p "$WORK/configs" "$WORK/cases" "$WORK/out" "$WORK/agents"

case $PROVIDER in
heartbeat) AGENT_ROOT=$HB_ROOT ;;
paceline)
    BIN_DIR=${PACELINE_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')/debug}
    [ -x "$BIN_DIR/paceline-core" ] || die "$BIN_DIR/paceline-core missing: cargo build --bins (or set PACELINE_BIN_DIR)"
    # A copy: a rebuild during the run does not change the agent under test.
    cp "$BIN_DIR/paceline-core" "$WORK/agents/paceline-core"
    # The agents the configs run (IPaddr2 for IPaddr2v4/v6, pgsqlms for pgsqlms), each a
    # link to paceline-core (they do not call EC2), as paceline install makes them.
    for a in $(printf '%s\n' "${CONFIGS[@]}" | sed 's/v[46]$//' | sort -u); do
        ln -s paceline-core "$WORK/agents/$a"
    done
    AGENT_ROOT=$WORK/agents
    ;;
esac

# --- adapted configs --------------------------------------------------------------------

# replace_sections SHIPPED_FILE OUT_FILE SECTION=BODY_FILE...
# Copies the config, replacing the body of each named top-level section (the lines after
# its keyword up to the next top-level keyword ocft knows) and CONFIG's AgentRoot line.
replace_sections() {
    local in=$1 out=$2
    shift 2
    awk -v root="$AGENT_ROOT" -v specs="$*" '
        BEGIN {
            n = split(specs, s, " ")
            for (i = 1; i <= n; i++) {
                split(s[i], kv, "=")
                body[kv[1]] = kv[2]
            }
        }
        {
            key = $1
            if (key ~ /^(CONFIG|VARIABLE|SETUP-AGENT|CLEANUP-AGENT|CASE-BLOCK|CASE)$/) {
                section = key
                skipping = 0
                print
                if (key in body) {
                    while ((getline l < body[key]) > 0) print l
                    close(body[key])
                    skipping = 1
                }
                next
            }
            if (skipping) next
            if (section == "CONFIG" && key == "AgentRoot") {
                sub(/AgentRoot.*/, "AgentRoot " root)
                seen_root = 1
            }
            print
        }
        END { if (!seen_root) exit 3 }
    ' "$in" >"$out" || die "cannot adapt $in"
}

# The shipped IPaddr2v4 uses 192.168.144.0/24 with a wrong ip in 192.168.120.0 (outside
# the /24, inside the /16 of force_prefix). In TEST-NET-1 (192.0.2.0/24) the same shape
# needs a smaller base: 192.0.2.65/26 (.64-.127), target .66, wrong ip .200 (outside the
# /26: no connected subnet holds it), force_prefix 24 (wider than the base /26, as 16 was
# wider than 24), force_prefix2 28 (narrower; .66 is inside 192.0.2.64/28), force_brd the
# broadcast of the wider subnet (192.0.2.255, not the base's .127, as .255.255 was).
adapt_IPaddr2v4() {
    cat >"$WORK/v4.var" <<'EOF'
	OCFT_target_ip=192.0.2.66
	OCFT_target_nic=eth0
	OCFT_target_prefix=26
	OCFT_target_netaddr=192.0.2.65/$OCFT_target_prefix
	OCFT_target_brd=192.0.2.127
	OCFT_wrong_ip=192.0.2.200
	OCFT_force_nic=eth1
	OCFT_force_prefix=24
	OCFT_force_prefix2=28
	OCFT_force_brd=192.0.2.255

EOF
    replace_sections "$SHIPPED/IPaddr2v4" "$1" VARIABLE="$WORK/v4.var"
}

# The shipped IPaddr2v6 already uses 2001:db8::/32 (and fe80::2 for its link-local cases,
# kept: it never leaves the namespace's veth link): only AgentRoot changes.
adapt_IPaddr2v6() {
    replace_sections "$SHIPPED/IPaddr2v6" "$1"
}

# The shipped pgsqlms targets PostgreSQL 9.3 (/usr/pgsql-9.3/bin, recovery.conf.pcmk with
# standby_mode) and `sudo -iu postgres` (sudo is not installed here). Adapted:
# - VARIABLE: PostgreSQL 15's bindir, a data directory and socket directory in the work
#   directory (plain values: the shipped ${PGDATA=...} would take a PGDATA from the caller's
#   environment, and CLEANUP does rm -rf it), and port 55432 exported as
#   OCF_RESKEY_pgport (`-x` makes ocft's `declare` an export; the cases pass no pgport).
# - SETUP/CLEANUP: the shipped steps with runuser for sudo; the server listens only on the
#   unix socket; PostgreSQL >= 12 has no recovery.conf: its two settings that still exist
#   (primary_conninfo to the same fake primary, recovery_target_timeline) go into
#   postgresql.conf, standby_mode is gone (standby.signal, written by the agent).
#   SETUP ends by checking that the instance is a cleanly shut down primary.
adapt_pgsqlms() {
    cat >"$WORK/pg.var" <<EOF
    PGDATA=$WORK/pgdata1
    PGBIN=$PGBIN
    PGHOST=$WORK/pgsock
    RESOURCE_NAME=pgsqld
    NODENAME=\$(uname -n)
    -x OCF_RESKEY_pgport=$PGPORT

EOF
    cat >"$WORK/pg.cleanup" <<'EOF'
    (cd / && runuser -u postgres -- "$PGBIN"/pg_ctl -D "$PGDATA" -w -m immediate stop) &> /dev/null
    rm -rf ${PGDATA:?} ${PGHOST:?}

EOF
    {
        cat "$WORK/pg.cleanup" | sed '/^$/d'
        cat <<'EOF'
    echo "PGBIN: $PGBIN" >&2
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    install -d -o postgres -g postgres -m 0755 "$PGHOST"
    (cd / && runuser -u postgres -- "$PGBIN"/initdb --nosync -D "$PGDATA") &> /dev/null
    cat <<-EOC>> "$PGDATA"/postgresql.conf
	listen_addresses = ''
	unix_socket_directories = '$PGHOST'
	port = $OCF_RESKEY_pgport
	wal_level = hot_standby
	max_wal_senders = 5
	hot_standby = on
	hot_standby_feedback = on
	wal_receiver_status_interval = 20s
	# Fake master conninfo!
	primary_conninfo = 'user=postgres host=127.0.0.1 port=15432 application_name=$NODENAME'
	recovery_target_timeline = 'latest'
	EOC

    cat <<-EOC>> "$PGDATA"/pg_hba.conf
	host replication postgres 0.0.0.0/0 trust
	EOC

    (cd / && runuser -u postgres -- "$PGBIN"/pg_ctl -D "$PGDATA" -w start) &> /dev/null
    (cd / && runuser -u postgres -- "$PGBIN"/pg_ctl -D "$PGDATA" -w -m fast stop) &> /dev/null
    "$PGBIN"/pg_controldata "$PGDATA" | grep -q '^Database cluster state: *shut down$'

EOF
    } >"$WORK/pg.setup"
    replace_sections "$SHIPPED/pgsqlms" "$1" VARIABLE="$WORK/pg.var" SETUP-AGENT="$WORK/pg.setup" CLEANUP-AGENT="$WORK/pg.cleanup"
}

for c in "${CONFIGS[@]}"; do
    "adapt_$c" "$WORK/configs/$c"
done

# --- the namespace and the run -----------------------------------------------------------

ip netns add "$NS"
ip -n "$NS" link set lo up
# No duplicate address detection on these links (nothing else is on them, and no case is
# about DAD): an IPv6 start would otherwise wait ~2 s for it, and the run takes long enough.
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
# veth pairs with both ends in the namespace (this kernel may lack the dummy driver):
# eth0/eth1 are what the configs use, eth0p/eth1p only give them a carrier.
for nic in eth0 eth1; do
    ip -n "$NS" link add "$nic" type veth peer name "${nic}p"
    ip -n "$NS" link set "${nic}p" up
    ip -n "$NS" link set "$nic" up
done

mkdir -p $CASES # ocft's own directory (ocft make creates it too); only a mount point here

cat >"$WORK/inner.sh" <<EOF
set -u
mount -t tmpfs -o mode=1777,size=64m ocft-tmp /tmp || exit 2
mount --bind "$WORK/cases" $CASES || exit 2
export HA_RSCTMP=/tmp
unset HA_LOGFACILITY HA_DEBUGLOG HA_debug PGDATA PGHOST PGPORT
for c in ${CONFIGS[*]}; do
    $OCFT make -d "$WORK/configs" "\$c" >"$WORK/out/\$c.make" 2>&1
    echo \$? >"$WORK/out/\$c.make.rc"
    # Agents log where Pacemaker would have them (HA_LOGFILE); exit reasons stay on stderr.
    HA_LOGFILE=/tmp/\$c.agents.log $OCFT test -v "\$c" >"$WORK/out/\$c.test" 2>&1
    echo \$? >"$WORK/out/\$c.test.rc"
    cp /tmp/\$c.agents.log "$WORK/out/" 2>/dev/null
done
EOF
# In the background, so that a TERM/INT is handled (by the trap) at once, not after ocft.
ip netns exec "$NS" bash "$WORK/inner.sh" &
wait $! || die "ocft run in $NS failed"

if [ -n "${OCFT_KEEP_LOGS:-}" ]; then
    mkdir -p "$OCFT_KEEP_LOGS"
    for f in "$WORK"/out/*; do cp "$f" "$OCFT_KEEP_LOGS/$PROVIDER.$(basename "$f")"; done
    for c in "${CONFIGS[@]}"; do cp "$WORK/configs/$c" "$OCFT_KEEP_LOGS/$PROVIDER.$c.config"; done
fi

# --- results -----------------------------------------------------------------------------

total=0 ok=0 bad=0 expected=0
for c in "${CONFIGS[@]}"; do
    out=$WORK/out/$c.test
    sed -r 's/\x1b\[[0-9;]*m//g' "$out" >"$out.txt" # no colours
    # The cases as ocft made them: number and name.
    mapfile -t cases < <(sed -n 's/^ *- case \([0-9]*\): \(.*\)$/\1\t\2/p' "$WORK/out/$c.make")
    if [ ${#cases[@]} -eq 0 ]; then
        echo "$PROVIDER $c - \"ocft make\" FAIL ($(tr '\n' ' ' <"$WORK/out/$c.make"))"
        bad=$((bad + 1))
        continue
    fi
    setup_error=$(grep -m1 -A3 'SETUP failed\|ERROR:.*SETUP-AGENT' "$out.txt" | tr '\n' ' ' || true)
    for entry in "${cases[@]}"; do
        no=${entry%%$'\t'*}
        name=${entry#*$'\t'}
        total=$((total + 1))
        # The case's lines, from its "Starting" line to the next case's or the cleanup's.
        body=$(awk -v c="$c" -v no="$no" '
            /^Starting .* case [0-9]+ / { on = ($0 ~ ("^Starting .?" c ".? case " no " ")); next }
            /^Cleaning / { on = 0 }
            on' "$out.txt")
        if ! grep -q "^Starting .*$c.* case $no " "$out.txt"; then
            status=FAIL
            details="not run${setup_error:+: $setup_error}"
        elif [ -e "$WORK/cases/${no}_$c.retest" ] || grep -qE 'FAILED\. |ERROR: ' <<<"$body"; then
            status=FAIL
            # ocft's verdict on the failed step, and the agent's output when ocft shows it.
            details=$(sed -En '/FAILED\. |ERROR: /,$p' <<<"$body" | sed 's/^ *//; /^$/d' | tr '\n' ' ' | sed 's/ *$//' | cut -c1-700)
            # ocft does not restore what a case changed when it fails half-way.
            case $details in *"'ip addr del \$OCFT_target_netaddr dev \$OCFT_target_nic' failed"*)
                details="$details — the base address was already gone: an earlier case failed before re-adding it" ;;
            esac
        else
            status=pass
            details=
        fi
        why=${EXPECTED_FAIL[$PROVIDER:$c:$no]:-}
        if [ -n "$why" ] && [ $status = FAIL ]; then
            expected=$((expected + 1))
            details="expected: $why; $details"
        elif [ -n "$why" ]; then
            bad=$((bad + 1))
            details="expected to fail: $why"
        elif [ $status = pass ]; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
        fi
        echo "$PROVIDER $c $no \"$name\" $status${details:+ ($details)}"
    done
done
# What the agents logged as errors and warnings, once per distinct message: ocft shows an
# agent's output only where a case checks a return value, not when a preamble step fails.
for c in "${CONFIGS[@]}"; do
    log=$WORK/out/$c.agents.log
    grep -qE 'ERROR|WARN|CRIT' "$log" 2>/dev/null || continue
    echo "agent log of $PROVIDER $c, errors and warnings (count, message):"
    grep -E 'ERROR|WARN|CRIT' "$log" | sed -E 's/^.*(ERROR|WARNING|WARN|CRIT):/\1:/' |
        sort | uniq -c | sort -rn | head -20 | sed 's/^/    /' || true
done
echo "summary: $PROVIDER ${CONFIGS[*]}: $total cases, $ok passed, $expected failed as expected, $bad failed"
[ $bad -eq 0 ]
