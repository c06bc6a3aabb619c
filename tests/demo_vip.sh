#!/bin/bash
# Demo: move a virtual IP between two "nodes" with the IPaddr2 agent and watch
# a client follow it thanks to gratuitous ARP. Everything runs in throw-away
# network namespaces (a switch with bridge br0, node1, node2, client) using the
# documentation range 192.0.2.0/24; they are deleted on exit.
#
#   usage: sudo tests/demo_vip.sh
#   env:   AGENT=/path/to/IPaddr2   (default /usr/lib/ocf/resource.d/paceline/IPaddr2)
set -euo pipefail

AGENT=${AGENT:-/usr/lib/ocf/resource.d/paceline/IPaddr2}
VIP=192.0.2.50
SW=pld-$$-sw N1=pld-$$-n1 N2=pld-$$-n2 CL=pld-$$-client

[[ -x $AGENT ]] || { echo "agent not found: $AGENT (install paceline or set AGENT=...)" >&2; exit 1; }
(( EUID == 0 )) || { echo "run as root (it creates network namespaces)" >&2; exit 1; }
command -v ping >/dev/null || { echo "ping not found (apt install iputils-ping)" >&2; exit 1; }

cleanup() {
    for ns in "$CL" "$N2" "$N1" "$SW"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f "${LOG:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LOG=$(mktemp /tmp/pld-$$.XXXXXX.log)

# run the agent inside a namespace: ocf NS ACTION  (output goes to $LOG)
ocf() {
    ip netns exec "$1" env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip \
        OCF_RESKEY_ip=$VIP OCF_RESKEY_cidr_netmask=24 "$AGENT" "$2" </dev/null >>"$LOG" 2>&1
}
ocf_or_die() { ocf "$@" || { echo "!! $2 on $1 failed, agent output:" >&2; cat "$LOG" >&2; exit 1; }; }
mac_of()     { ip -n "$1" -br link show dev eth0 | awk '{print $3}'; }
client_mac() { ip -n "$CL" neigh show "$VIP" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
ping_vip()   { ip netns exec "$CL" ping -c1 -W1 -q "$VIP" >/dev/null && echo ok || echo FAILED; }

echo "[1/6] building the lab: switch (br0) + node1 .11, node2 .12, client .100"
ip netns add "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for spec in "$N1 192.0.2.11" "$N2 192.0.2.12" "$CL 192.0.2.100"; do
    read -r ns addr <<<"$spec"
    port=p${ns##*-}                      # e.g. pn1, in the switch namespace
    ip netns add "$ns"
    ip -n "$SW" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$SW" link set "$port" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
done
MAC1=$(mac_of "$N1") MAC2=$(mac_of "$N2")
echo "      node1 MAC $MAC1, node2 MAC $MAC2"

echo "[2/6] starting VIP $VIP on node1 ..."
ocf_or_die "$N1" start
rc=0; ocf "$N1" monitor || rc=$?
echo "      monitor on node1: rc=$rc (0 = running)"

echo "[3/6] client pings $VIP: $(ping_vip)"
echo "      client neighbour entry: $(ip -n "$CL" neigh show "$VIP")"
echo "      (node1 MAC is $MAC1)"

echo "[4/6] moving VIP: stop on node1, start on node2 ..."
t0=$EPOCHREALTIME
ocf_or_die "$N1" stop
ocf_or_die "$N2" start
t1=$EPOCHREALTIME
move_ms=$(( (${t1/./} - ${t0/./}) / 1000 ))
echo "      done in $move_ms ms"

echo "[5/6] client neighbour entry, without flushing the client's cache:"
garp=no
for _ in {1..30}; do                     # up to 3 s for a gratuitous ARP to arrive
    [[ $(client_mac) == "$MAC2" ]] && { garp=yes; break; }
    sleep 0.1
done
echo "      $(ip -n "$CL" neigh show "$VIP")   <- node2 MAC is $MAC2"
ping2=$(ping_vip)
echo "      client pings $VIP: $ping2"

echo "[6/6] stopping VIP on node2 ..."
ocf_or_die "$N2" stop
rc=0; ocf "$N2" monitor || rc=$?
echo "      monitor on node2: rc=$rc (7 = not running)"

echo
echo "VIP moved node1 -> node2 in $move_ms ms; client ARP updated by gratuitous ARP: $garp"
[[ $garp == yes && $ping2 == ok ]]
