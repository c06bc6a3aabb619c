#!/usr/bin/env bash
# The paceline lab: a real Pacemaker + Corosync + PostgreSQL cluster in Linux namespaces on
# one machine. Driven by `paceline-lab <verb>` (this script, verbs below); docs/lab.md says
# how it works and how to debug a node.
#
#   lab.sh up [--nodes N] [--os O [--deb F]] [--ec2 [--multiaz]] [--bare]  build the switch, N nodes (2 or
#                                  3), the client; start corosync + pacemaker; PostgreSQL
#                                  primary + standbys. O = debian12 (default: this machine's
#                                  own programs, PostgreSQL 15) | debian13 (each node chrooted
#                                  into an overlay of tests/lab/rootfs.sh's Debian 13 root:
#                                  Pacemaker 3.0, pcs 0.12, PostgreSQL 17; paceline copied
#                                  from this machine's /usr/sbin, or with --deb F the .deb F
#                                  installed by dpkg in each node). --ec2: moto (fake EC2, one instance per node) in
#                                  the switch namespace, an IMDS per node, the power controller;
#                                  --multiaz: two zones with a route table each, and the VPC
#                                  router that forwards the overlay IP (the VIP's address) as
#                                  the route tables say; config then uses
#                                  crm-examples/pgsql-ha-ec2-multiaz.sh (aws-vpc-move-ip).
#                                  --bare: no PostgreSQL set-up (empty disks: what
#                                  tests/guide.rs builds by docs/production.md's commands)
#   lab.sh facts                   the lab's facts as shell assignments (VIP, NETWORK, and on
#                                  an --ec2 lab REGION, ENDPOINT_URL, HOST_MAP)
#   lab.sh config --stack S [--sync off|on|strict] [--routing R]   create the resources from
#                                  crm-examples/pgsql-ha.sh (S = reference | paceline); on an
#                                  --ec2 lab from crm-examples/pgsql-ha-ec2.sh (fencing through
#                                  EC2). R = vip (default) | haproxy (no VIP: HAProxy on every
#                                  node, crm-examples/haproxy.cfg, checks on the state service's
#                                  port 8008; paceline; crm-examples/pgsql-ha-haproxy.sh) | seed
#                                  (the seed demo: PAF + HAProxy + its psql-based pgsql-state
#                                  socket on 5431; reference)
#   lab.sh scenario NAME           switchover | kill-postgres | node-crash | standby-crash |
#                                  standbys-down | restart-all | election | election-quorum |
#                                  migrate | hang | update-params | partition | fence | storm:
#                                  one JSON line on stdout
#   lab.sh status                  crm_mon, and each node's PostgreSQL role and LSN
#   lab.sh down                    tear everything down (processes by pid, namespaces, files)
#   lab.sh demo [--stack S] [--os O]  up + config + switchover + kill-postgres + summary +
#                                  down; S = both (default: paceline, then reference, side
#                                  by side); O as for up
#   lab.sh node N CMD...           run CMD inside node N's namespaces (debugging)
#
# Addresses (TEST-NET-1 only, all inside namespaces this script creates): node I is
# 192.0.2.1I, the VIP 192.0.2.100, the client (writer probe) 192.0.2.200. With --routing
# haproxy|seed: no VIP; each node's HAProxy has the primary pool on :5000 and the standbys on
# :5001, the replication pool on :5002 (PostgreSQL stays on 5432), and the standbys replicate
# through 127.0.0.1:5002. The bridge lives
# in its own namespace. With --ec2 the switch namespace also holds moto on 192.0.2.250:5000
# and each node has an IMDS on 169.254.169.254 (on its lo).
#
# Environment: LAB_DIR (state and node disks, default /var/lib/paceline-lab),
# PACELINE_LAB (the paceline-lab binary, which runs the writer probe; default: beside
# PACELINE if that is set, else the build tree's), MONITOR_PROMOTED / MONITOR_UNPROMOTED /
# VIP_MONITOR (op intervals; fast defaults for tests), LAB_QUIET=1 (no progress lines),
# LAB_KEEP_LOGS=DIR (down copies the nodes' logs and the lab state there first),
# RETRY_INTERVAL (the standbys' wal_retrieve_retry_interval, 500ms; 'default' leaves
# PostgreSQL's 5 s: what instant reconnect is measured against),
# PROBE_CONNECT_TIMEOUT_MS (the writer probe's bound per connect, 1000: its outage figures
# move in steps of about that much; 250 resolves differences below a second), HANG_MAX_S
# (scenario hang: the longest the primary's PostgreSQL stays stopped, 90), SLOW_ATTRD_S
# (scenario switchover: every node's attribute manager stopped that long from the move on),
# STORM_S / STORM_SLOW (scenario storm: its length, 20 s, and the hostile client's slow
# connections, 1100);
# --ec2 labs: MOTO_PY (python with moto, /opt/paceline-moto/bin/python), POWER_TIMEOUT (the
# fence agent's, 30), FENCE_AGENT / AWSVIP_AGENT (another implementation to try).
set -euo pipefail

SRC=${PACELINE_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_DIR=${LAB_DIR:-/var/lib/paceline-lab}
STATE=$LAB_DIR/state
PREFIX=${LAB_PREFIX:-plab}
SW=$PREFIX-sw
CLIENT=$PREFIX-client
VIP=192.0.2.100
CLIENT_IP=192.0.2.200
# --routing haproxy|seed: each node's HAProxy, primary pool and standby pool (docs/lab.md).
ROUTER_PORT=5000
ROUTER_RO_PORT=5001
ROUTER_REPL_PORT=5002
SEED_STATE_PORT=5431
# The nodes' userland (up --os): debian12 is this machine's own; debian13 is a root file
# system each node sees through an overlay of its own (tests/lab/rootfs.sh).
lab_os() { cat "$STATE/os" 2>/dev/null || echo debian12; }
PGVER=15
[[ $(lab_os) != debian13 ]] || PGVER=17
BINDIR=/usr/lib/postgresql/$PGVER/bin
PGDATA=/var/lib/postgresql/$PGVER/main
export MONITOR_PROMOTED=${MONITOR_PROMOTED:-2s}
export MONITOR_UNPROMOTED=${MONITOR_UNPROMOTED:-3s}
export VIP_MONITOR=${VIP_MONITOR:-5s}
PROBE_CONNECT_TIMEOUT_MS=${PROBE_CONNECT_TIMEOUT_MS:-1000}
# The lab's EC2 (up --ec2): moto + power controller in the switch namespace (tests/lab/ec2.py).
EC2_IP=192.0.2.250
EC2_PORT=5000
EC2_URL=http://$EC2_IP:$EC2_PORT
REGION=us-east-1
MOTO_PY=${MOTO_PY:-/opt/paceline-moto/bin/python}

say() { [[ ${LAB_QUIET:-0} == 1 ]] || echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }
need_root() { (( EUID == 0 )) || die "must run as root (namespaces, mounts)"; }
node_ip() { echo "192.0.2.1$1"; }
nodes() { cat "$STATE/nodes" 2>/dev/null || echo 0; }
# The pid (in our PID namespace) of node I's init: the target for nsenter and for "power off".
node_pid() { cat "$STATE/node$1.pid" 2>/dev/null; }
node_alive() { local p; p=$(node_pid "$1") && [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }

# Run a command inside node I (all its namespaces).
in_node() {
    local i=$1; shift
    local pid; pid=$(node_pid "$i") || die "node$i is not running"
    if [[ $(lab_os) == debian13 ]]; then
        # Its root too: the node's init chrooted into its overlay.
        nsenter -t "$pid" -m -u -p -n -r -w -- "$@"
    else
        nsenter -t "$pid" -m -u -p -n -- "$@"
    fi
}

# chown for a node's files as seen from here: names resolved in the node's userland (the
# Debian 13 root has other uids and gids than this machine).
node_chown() {
    local spec=$1; shift
    if [[ $(lab_os) == debian13 ]]; then
        local root; root=$(cat "$STATE/rootfs")
        local u=${spec%%:*} g=${spec#*:}
        u=$(awk -F: -v n="$u" '$1 == n {print $3}' "$root/etc/passwd")
        g=$(awk -F: -v n="$g" '$1 == n {print $3}' "$root/etc/group")
        [[ -n $u && -n $g ]] || die "no $spec in $root/etc/passwd, group"
        spec=$u:$g
    fi
    if [[ ${1:-} == -R ]]; then shift; chown -R "$spec" "$@"; else chown "$spec" "$@"; fi
}
in_client() { ip netns exec "$CLIENT" "$@"; }
# psql from the client against node I (or the VIP with "vip"), one value out.
psql_at() {
    local host=$1; shift
    [[ $host == vip ]] && host=$VIP || host=$(node_ip "$host")
    in_client env PGCONNECT_TIMEOUT=2 psql -X -A -t -q -h "$host" -U postgres -d postgres -c "$*" 2>/dev/null
}

# paceline-lab (agents/paceline-lab.rs): never packaged, so from a build tree.
lab_bin() {
    local b=${PACELINE_LAB:-}
    [[ -z $b && -n ${PACELINE:-} ]] && b=$(dirname "$PACELINE")/paceline-lab
    if [[ -z $b ]]; then
        for c in "$SRC"/target/*/release/paceline-lab "$SRC"/target/*/debug/paceline-lab; do
            [[ -x $c ]] && { b=$c; break; }
        done
    fi
    [[ -n $b && -x $b ]] || die "paceline-lab binary not found (cargo build, or set PACELINE_LAB=)"
    echo "$b"
}

# ---------------------------------------------------------------------------- node init
# PID 1 of a node's PID namespace: private mounts, hostname, then corosync and pacemakerd.
node_init() {
    local i=$1 root=$LAB_DIR/node$1
    hostname "node$i"
    # top: where the node's root is seen from here — / (debian12), or its overlay of the
    # Debian 13 root, with this machine's installed paceline copied in (`paceline install`
    # from /usr/sbin: what the node runs is what the tests installed) or `up --deb`'s package
    # installed by dpkg, the sources and the lab's directory at the same paths, its own
    # /proc, /sys (its network's) and /dev.
    local top=""
    if [[ $(lab_os) == debian13 ]]; then
        top=$root/os/merged
        mkdir -p "$root/os/upper" "$root/os/work" "$top"
        mount -t overlay overlay -o "lowerdir=$(cat "$STATE/rootfs"),upperdir=$root/os/upper,workdir=$root/os/work" "$top"
        mount -t proc proc "$top/proc"
        mount -t sysfs sysfs "$top/sys"
        mount --rbind /dev "$top/dev"
        mkdir -p "$top$SRC" "$top$LAB_DIR"
        mount --bind "$SRC" "$top$SRC"
        mount --bind "$LAB_DIR" "$top$LAB_DIR"
        if [[ -e $STATE/deb ]]; then
            cp "$STATE/deb" "$top/tmp/paceline.deb"
            chroot "$top" dpkg -i /tmp/paceline.deb >"$root/dpkg.log" 2>&1 || die "node$i: dpkg -i $(cat "$STATE/deb.name") failed ($root/dpkg.log)"
        else
            /usr/sbin/paceline install --root "$top" >/dev/null
        fi
    fi
    mount -t tmpfs -o mode=0755 tmpfs "$top/run"
    mount -t tmpfs -o mode=1777 tmpfs "$top/dev/shm"       # libqb IPC needs 1777
    local d
    # /var/log/postgresql too: the agents' pg_ctl -l logs there, one file per resource name,
    # which would otherwise be one host file appended to by every node.
    # /var/lib/paceline: the incident records each node keeps (its own, as on a real node).
    for d in var/lib/pacemaker var/lib/corosync etc/corosync var/log/pacemaker var/log/corosync var/lib/postgresql var/log/postgresql var/lib/paceline; do
        mkdir -p "$top/$d"
        mount --bind "$root/$d" "$top/$d"
    done
    [[ -z $top ]] || exec chroot "$top" bash "$SRC/tests/lab/lab.sh" _node_start "$i"
    node_start "$i"
}

# The rest of a node's init, inside its root: the cluster stack, then reap forever.
node_start() {
    local i=$1
    install -d -o postgres -g postgres -m 2775 /run/postgresql
    install -d -m 0755 /run/resource-agents
    ip link set lo up
    ip link set eth0 up
    corosync -f >/var/log/corosync/stdout.log 2>&1 &
    # Give corosync its IPC before pacemakerd connects.
    local n
    for n in $(seq 50); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.2; done
    PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd >/var/log/pacemaker/stdout.log 2>&1 &
    # --routing haproxy|seed: HAProxy (and the seed's state socket) start with the node.
    routed && routing_start_here "$i"
    # Reap children forever; SIGKILL from outside is the node's power cord.
    trap '' TERM INT HUP
    while :; do wait || sleep 1; done
}

corosync_conf() {
    local n=$1 i
    cat <<EOF
totem {
    version: 2
    cluster_name: paceline-lab
    transport: knet
    token: 3000
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
EOF
    for i in $(seq "$n"); do
        printf '    node {\n        ring0_addr: %s\n        name: node%s\n        nodeid: %s\n    }\n' "$(node_ip "$i")" "$i" "$i"
    done
    cat <<EOF
}
quorum {
    provider: corosync_votequorum
$( (( n == 2 )) && echo "    two_node: 1" )
}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
    timestamp: on
}
EOF
}

# Boot node I: the node's disks must exist. Starts its init in fresh namespaces.
boot_node() {
    local i=$1
    ip -n "$PREFIX-node$i" link set eth0 up
    # A powered-off node keeps its network namespace with the addresses it had (the VIP
    # included): a real reboot starts with the configured address only.
    ip -n "$PREFIX-node$i" -4 addr flush dev eth0
    ip -n "$PREFIX-node$i" addr add "$(node_ip "$i")/24" dev eth0
    # --multiaz: the overlay IP through the VPC router (a power cycle took the route away).
    if is_multiaz; then ip -n "$PREFIX-node$i" route replace "$VIP/32" via "$EC2_IP" dev eth0 onlink; fi
    ip netns exec "$PREFIX-node$i" unshare -m -u -p -f --mount-proc --propagation private \
        bash "$SRC/tests/lab/lab.sh" _node_init "$i" </dev/null >>"$LAB_DIR/node$i/init.log" 2>&1 &
    local outer=$! inner="" n
    # unshare forks: the node's init is unshare's child.
    for n in $(seq 50); do
        inner=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null | awk '{print $1}')
        [[ -n $inner ]] && break
        sleep 0.1
    done
    [[ -n $inner ]] || die "node$i did not start (see $LAB_DIR/node$i/init.log)"
    echo "$inner" >"$STATE/node$i.pid"
    echo "$outer" >"$STATE/node$i.unshare"
    # A Debian 13 node is ready once its init has chrooted (after its mounts and its
    # paceline, a package's dpkg -i takes seconds): in_node enters the init's root, which
    # before that is this machine's.
    if [[ $(lab_os) == debian13 ]]; then
        for n in $(seq 1200); do
            [[ $(readlink "/proc/$inner/root" 2>/dev/null) == / ]] || break
            sleep 0.1
        done
        kill -0 "$inner" 2>/dev/null && [[ $(readlink "/proc/$inner/root") != / ]] ||
            die "node$i did not enter its Debian 13 root: $(tail -3 "$LAB_DIR/node$i/init.log")"
    fi
}

# Power node I off: SIGKILL its init (the kernel kills every process of its PID namespace)
# and pull its network cable, so its stale VIP cannot answer.
power_off() {
    local i=$1 pid
    pid=$(node_pid "$i") || return 0
    ip -n "$PREFIX-node$i" link set eth0 down 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    local n
    for n in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    local outer; outer=$(cat "$STATE/node$i.unshare" 2>/dev/null || true)
    [[ -n $outer ]] && wait "$outer" 2>/dev/null || true
    rm -f "$STATE/node$i.pid" "$STATE/node$i.unshare"
}

# ---------------------------------------------------------------------------- EC2 (up --ec2)
# moto + the power controller (tests/lab/ec2.py) in the switch namespace, on $EC2_IP; one
# instance per node; each node's IMDS (tests/lab/imds.py) in the node's network namespace,
# outside its PID namespace: like the real one, it survives the node's power cycles.
is_ec2() { [[ -e $STATE/ec2/instances ]]; }
is_multiaz() { [[ -e $STATE/ec2/route-tables ]]; }
instance_of() { awk -v n="node$1" '$1 == n {print $2}' "$STATE/ec2/instances"; }
# pcmk_host_map of an --ec2 lab: node1:i-...;node2:i-...
host_map() { local map="" i; for i in $(seq "$(nodes)"); do map+="${map:+;}node$i:$(instance_of "$i")"; done; echo "$map"; }
ec2_query() { ip netns exec "$SW" "$MOTO_PY" "$SRC/tests/lab/ec2.py" query --endpoint "$EC2_URL" --region "$REGION" "$@"; }
# Who EC2 says has the address: the ENIs holding the secondary IP, or (--multiaz) the node
# each route table sends the overlay IP to.
address_holders() {
    if is_multiaz; then ec2_query route-holders "$VIP" 2>/dev/null || true
    else ec2_query ip-holders "$VIP" 2>/dev/null || true; fi
}

ec2_up() {
    local n=$1 multiaz=${2:-0} i t
    [[ -x $MOTO_PY ]] || die "moto is not installed in ${MOTO_PY%/bin/python} (bash tests/deps.sh)"
    say "EC2: moto + power controller on $EC2_URL (switch namespace), region $REGION"
    ip -n "$SW" link set lo up     # moto's own calls to itself (populating) go through lo
    ip -n "$SW" addr add "$EC2_IP/24" dev br0
    mkdir -p "$STATE/ec2"
    # Not through a function: $! must be python itself (ip netns exec and env exec it).
    ip netns exec "$SW" env LAB_DIR="$LAB_DIR" LAB_PREFIX="$PREFIX" PACELINE_SRC="$SRC" \
        "$MOTO_PY" "$SRC/tests/lab/ec2.py" serve --dir "$STATE/ec2" --addr "$EC2_IP" --port "$EC2_PORT" \
        --region "$REGION" --nodes "$n" --lab "$SRC/tests/lab/lab.sh" $( (( multiaz )) && echo "--multiaz --overlay $VIP") \
        </dev/null >>"$STATE/ec2/ec2.log" 2>&1 &
    echo $! >"$STATE/ec2.pid"
    for t in $(seq 600); do
        [[ -e $STATE/ec2/ready ]] && break
        kill -0 "$(cat "$STATE/ec2.pid")" 2>/dev/null || break
        sleep 0.1
    done
    [[ -e $STATE/ec2/ready ]] || die "moto did not start: $(tail -5 "$STATE/ec2/ec2.log")"
    for i in $(seq "$n"); do
        local node inst eni mac ip
        read -r node inst eni mac ip < <(awk -v n="node$i" '$1 == n' "$STATE/ec2/instances")
        ip -n "$PREFIX-node$i" addr add 169.254.169.254/32 dev lo
        ip netns exec "$PREFIX-node$i" python3 "$SRC/tests/lab/imds.py" --instance-id "$inst" --eni "$eni" --mac "$mac" --ip "$ip" --region "$REGION" \
            </dev/null >>"$STATE/ec2/imds$i.log" 2>&1 &
        echo $! >"$STATE/imds$i.pid"
        say "$node: EC2 instance $inst ($eni), IMDS on 169.254.169.254"
        if (( multiaz )); then
            # As on EC2: the interface's MAC is the ENI's (aws-vpc-move-ip finds its ENI by
            # it), and the overlay IP is reached through the VPC router.
            ip -n "$PREFIX-node$i" link set eth0 down
            ip -n "$PREFIX-node$i" link set eth0 address "$mac"
            ip -n "$PREFIX-node$i" link set eth0 up
        fi
    done
    if (( multiaz )); then
        ip -n "$CLIENT" route add "$VIP/32" via "$EC2_IP" dev eth0 onlink
        say "EC2: two zones (route tables $(awk '{printf "%s%s (%s)", s, $1, $2; s=", "}' "$STATE/ec2/route-tables")); the VPC router forwards $VIP as they say"
    fi
}

ec2_down() {   # the controller first: it finishes a power action under way, then exits
    local f pid t
    if [[ -f $STATE/ec2.pid ]]; then
        pid=$(cat "$STATE/ec2.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for t in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$STATE/ec2.pid"
    fi
    for f in "$STATE"/imds*.pid; do
        [[ -e $f ]] || continue
        kill -TERM "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

wait_cluster() {   # wait until every node sees all nodes online
    local n=$1 i t
    for t in $(seq 120); do
        local ok=1
        for i in $(seq "$n"); do
            local online
            online=$(in_node "$i" crm_mon -1 -X 2>/dev/null | grep -c 'online="true"' || true)
            [[ $online == "$n" ]] || { ok=0; break; }
        done
        (( ok )) && return 0
        sleep 1
    done
    die "the cluster did not form within 120 s (see $LAB_DIR/node*/var/log/pacemaker/pacemaker.log)"
}

# ---------------------------------------------------------------------------- routing
# config --routing haproxy|seed: no VIP. HAProxy runs in every node (its namespaces: it dies
# with the node), configured from crm-examples/haproxy.cfg with the lab's ports (the pools on
# ROUTER_PORT / ROUTER_RO_PORT / ROUTER_REPL_PORT, PostgreSQL on 5432) and, for seed, the seed demo's checks
# (tcp-check on SEED_STATE_PORT, expect string production / standby, its timings). The seed's
# state socket (tests/lab/seed-pgsql-state.sh behind systemd-socket-activate, one psql per
# check) runs in every node too.
routing() { cat "$STATE/routing" 2>/dev/null || echo vip; }
routed() { [[ $(routing) != vip ]]; }
haproxy_cfg() {   # haproxy_cfg ROUTING N: the haproxy.cfg of every node of an N-node lab, on stdout
    python3 - "$SRC/crm-examples/haproxy.cfg" "$1" "$2" "$ROUTER_PORT" "$ROUTER_RO_PORT" "$SEED_STATE_PORT" "$ROUTER_REPL_PORT" <<'PY'
import re, sys
path, routing, n, rw, ro, seed, repl = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
out = []
for line in open(path):
    s = line.strip()
    if s.startswith("log /dev/log"):
        line = "    log stderr format iso local0\n"      # the node's haproxy.log, time-stamped (no syslog in a node)
    elif s == "daemon":
        continue                                           # run in the foreground (-db)
    elif s == "bind *:5432":
        line = f"    bind *:{rw}\n"
    elif s == "bind *:5433":
        line = f"    bind *:{ro}\n"
    elif s == "bind *:5435":
        line = f"    bind *:{repl}\n"
    elif s.startswith("server node"):
        m = re.match(r"server node(\d+) ", s)
        if int(m.group(1)) > n:
            continue
        line = line.replace(":5434", ":5432")
    if routing == "seed":
        # The seed demo's checks and timings: its socket on :5431 says production / standby.
        if s.startswith("default-server"):
            line = "    default-server inter 2s fastinter 1s rise 2 fall 1 on-marked-down shutdown-sessions\n"
        elif s.startswith("option httpchk"):
            want = "production" if "/primary" in s or "/read-write" in s else "standby"
            line = f"    option tcp-check\n    tcp-check connect port {seed}\n    tcp-check expect string {want}\n"
        elif s.startswith("http-check"):
            continue
        elif s.startswith("server node"):
            line = line.replace(" check port 8008", " check")
    out.append(line)
sys.stdout.write("".join(out))
PY
}
# Start node I's routing daemons; runs inside the node (node_init, or through in_node).
routing_start_here() {
    local i=$1 r; r=$(routing)
    install -d -o haproxy -g haproxy -m 0755 /run/haproxy
    haproxy -db -f "$LAB_DIR/node$i/haproxy.cfg" </dev/null >>"$LAB_DIR/node$i/haproxy.log" 2>&1 &
    if [[ $r == seed ]]; then
        runuser -u postgres -- systemd-socket-activate --inetd -a -l "$(node_ip "$i"):$SEED_STATE_PORT" "$SRC/tests/lab/seed-pgsql-state.sh" \
            </dev/null >>"$LAB_DIR/node$i/seed-state.log" 2>&1 &
    fi
}
routing_setup() {   # config: every node's haproxy.cfg, primary_conninfo through it, and start
    local r=$1 i
    echo "$r" >"$STATE/routing"
    for i in $(seq "$(nodes)"); do
        haproxy_cfg "$r" "$(nodes)" >"$LAB_DIR/node$i/haproxy.cfg"
        haproxy -c -q -f "$LAB_DIR/node$i/haproxy.cfg" || die "node$i: haproxy -c refused $LAB_DIR/node$i/haproxy.cfg"
        # The standbys replicate through the local HAProxy's replication pool (the primary's
        # check, sessions not cut: a demote's shutdown checkpoint must reach them); pg_hba
        # refuses replication from the node's own address, so never from itself.
        sed -i "s/^primary_conninfo = 'host=$VIP port=5432 /primary_conninfo = 'host=127.0.0.1 port=$ROUTER_REPL_PORT /" "$LAB_DIR/node$i$PGDATA/postgresql.conf"
        grep -q "host=127.0.0.1 port=$ROUTER_REPL_PORT " "$LAB_DIR/node$i$PGDATA/postgresql.conf" || die "node$i: primary_conninfo not changed"
        in_node "$i" bash "$SRC/tests/lab/lab.sh" _routing_start "$i"
    done
}
# The node whose PostgreSQL node I's HAProxy primary pool leads to ("" if none).
routed_to() {
    local ip
    ip=$(in_client env PGCONNECT_TIMEOUT=2 psql -X -A -t -q -h "$(node_ip "$1")" -p "$ROUTER_PORT" -U postgres -d postgres \
        -c "select inet_server_addr() from (select 1) x where not pg_is_in_recovery()" 2>/dev/null || true)
    [[ $ip =~ ^192\.0\.2\.1([0-9])$ ]] && echo "node${BASH_REMATCH[1]}" || true
}
# Every running node's HAProxy sends writes to node P.
routes_to() {
    local p=$1 i
    for i in $(seq "$(nodes)"); do
        node_alive "$i" || continue
        [[ $(routed_to "$i") == "$p" ]] || return 1
    done
}
# Writes reach P: the VIP is on P, or every router sends them there.
served_by() { if routed; then routes_to "$1"; else [[ $(vip_holder) == "$1" ]]; fi; }

# ---------------------------------------------------------------------------- postgres
pg_node_conf() {   # node I's own settings (appended to postgresql.conf, after the shared ones)
    local i=$1
    cat <<EOF
# paceline lab: node$i
listen_addresses = '*'
port = 5432
unix_socket_directories = '/run/postgresql'
wal_level = replica
hot_standby = on
max_wal_senders = 10
wal_keep_size = '512MB'
wal_log_hints = on
hot_standby_feedback = on
# Standbys retry a lost primary every 500 ms (default 5 s): with synchronous replication a
# promoted primary's commits wait for the first standby to reconnect (docs/pgsqlms.md;
# pgsql-state's instant_reconnect wakes them anyway). RETRY_INTERVAL=default keeps 5 s.
$( [[ ${RETRY_INTERVAL:-500ms} == default ]] && echo "#" )wal_retrieve_retry_interval = '${RETRY_INTERVAL:-500ms}'
# A standby answers every second even with nothing to replay (default 10 s): a standby whose
# primary vanished with a cut link learns it (a reset from the VIP's new holder) at its next
# answer, and only then reconnects to the new primary.
wal_receiver_status_interval = '1s'
# After a crash (or the agent's kill of a hung instance) PostgreSQL first syncs the data
# directory: syncfs does it with one call per file system instead of one fsync per file
# (with the default, 9-27 s on a busy disk in the hang scenario; docs/pgsqlms.md).
recovery_init_sync_method = 'syncfs'
primary_conninfo = 'host=$VIP port=5432 user=replicator application_name=node$i connect_timeout=2'
recovery_target_timeline = 'latest'
EOF
}

pg_hba() {   # node I: no replication from itself or from the VIP (no self-replication)
    local i=$1
    cat <<EOF
local   all             all                             trust
host    replication     all     127.0.0.1/32            reject
host    replication     all     ::1/128                 reject
host    replication     all     $(node_ip "$i")/32          reject
host    replication     all     $VIP/32          reject
host    replication     replicator 192.0.2.0/24         trust
host    all             all     192.0.2.0/24            trust
host    all             all     127.0.0.1/32            trust
EOF
}

setup_postgres() {
    local n=$1 i
    say "PostgreSQL: initdb on node1"
    in_node 1 runuser -u postgres -- "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth-local=trust >/dev/null 2>&1
    in_node 1 bash -c "cat >>'$PGDATA/postgresql.conf'" < <(pg_node_conf 1)
    pg_hba 1 | in_node 1 bash -c "cat >'$PGDATA/pg_hba.conf'"
    in_node 1 runuser -u postgres -- "$BINDIR/pg_ctl" -D "$PGDATA" -w -l /var/lib/postgresql/setup.log start >/dev/null
    in_node 1 runuser -u postgres -- psql -X -q -h /run/postgresql -c "CREATE ROLE replicator REPLICATION LOGIN" >/dev/null
    for i in $(seq 2 "$n"); do
        say "PostgreSQL: pg_basebackup on node$i"
        in_node "$i" runuser -u postgres -- "$BINDIR/pg_basebackup" -h "$(node_ip 1)" -U replicator -D "$PGDATA" -X stream -c fast >/dev/null
        in_node "$i" bash -c "sed -i '/^# paceline lab: node/,\$d' '$PGDATA/postgresql.conf' && cat >>'$PGDATA/postgresql.conf'" < <(pg_node_conf "$i")
        pg_hba "$i" | in_node "$i" bash -c "cat >'$PGDATA/pg_hba.conf'"
        in_node "$i" runuser -u postgres -- touch "$PGDATA/standby.signal"
    done
    # Handed to Pacemaker cleanly shut down: node1 as a primary, the others as standbys.
    in_node 1 runuser -u postgres -- "$BINDIR/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
}

# ---------------------------------------------------------------------------- verbs
cmd_up() {
    local n=3 ec2=0 multiaz=0 os=debian12 deb="" bare=0
    while (( $# )); do case $1 in --nodes) n=$2; shift 2 ;; --os) os=$2; shift 2 ;; --deb) deb=$2; shift 2 ;; --ec2) ec2=1; shift ;; --multiaz) multiaz=1; shift ;; --bare) bare=1; shift ;; *) die "up: unknown argument $1" ;; esac; done
    [[ $n == 2 || $n == 3 ]] || die "--nodes must be 2 or 3"
    [[ $os == debian12 || $os == debian13 ]] || die "--os must be debian12 or debian13"
    (( ec2 || ! multiaz )) || die "--multiaz needs --ec2"
    [[ -z $deb || $os == debian13 ]] || die "--deb needs --os debian13 (Debian 12 nodes run this machine's programs: dpkg -i the package here)"
    [[ -z $deb ]] || dpkg-deb -f "$deb" Package 2>/dev/null | grep -qx paceline || die "--deb $deb: not a paceline package"
    need_root
    [[ ! -e $STATE/nodes ]] || die "a lab is already up (paceline-lab down first)"
    local top=""
    if [[ $os == debian13 ]]; then
        top=$(bash "$SRC/tests/lab/rootfs.sh" trixie) || die "no Debian 13 root (tests/lab/rootfs.sh)"
        [[ -n $deb || -x /usr/sbin/paceline ]] || die "paceline is not installed here (paceline install): a Debian 13 node copies it from /usr/sbin, or give --deb"
        PGVER=17 BINDIR=/usr/lib/postgresql/17/bin PGDATA=/var/lib/postgresql/17/main
    fi
    [[ -x $top/usr/sbin/corosync && -x $top/usr/sbin/pacemakerd ]] || die "corosync/pacemaker not installed (bash tests/deps.sh)"
    [[ -x $top$BINDIR/postgres ]] || die "PostgreSQL $PGVER not installed (bash tests/deps.sh)"
    mkdir -p "$STATE"
    echo "$n" >"$STATE/nodes"
    echo "$os" >"$STATE/os"
    [[ -z $top ]] || echo "$top" >"$STATE/rootfs"
    # The package, copied: the nodes install it as they boot.
    [[ -z $deb ]] || { cp "$deb" "$STATE/deb" && basename "$deb" >"$STATE/deb.name"; }
    say "network: switch namespace $SW with bridge br0, client $CLIENT_IP"
    ip netns add "$SW"
    ip -n "$SW" link add br0 type bridge
    ip -n "$SW" link set br0 up
    local i
    for i in client $(seq "$n"); do
        local ns port addr
        if [[ $i == client ]]; then ns=$CLIENT port=pc addr=$CLIENT_IP; else ns=$PREFIX-node$i port=p$i addr=$(node_ip "$i"); fi
        ip netns add "$ns"
        ip -n "$SW" link add "$port" type veth peer name eth0 netns "$ns"
        ip -n "$SW" link set "$port" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        [[ $i == client ]] && ip -n "$ns" addr add "$addr/24" dev eth0
    done
    (( ec2 )) && ec2_up "$n" "$multiaz"
    for i in $(seq "$n"); do
        local root=$LAB_DIR/node$i d
        for d in var/lib/pacemaker/cib var/lib/pacemaker/pengine var/lib/pacemaker/blackbox var/lib/pacemaker/cores \
                 var/lib/corosync etc/corosync var/log/pacemaker var/log/corosync var/lib/postgresql var/log/postgresql var/lib/paceline; do
            mkdir -p "$root/$d"
        done
        node_chown root:postgres "$root/var/log/postgresql"
        chmod 1775 "$root/var/log/postgresql"     # as Debian's
        node_chown hacluster:haclient -R "$root/var/lib/pacemaker" "$root/var/log/pacemaker"
        chmod 750 "$root"/var/lib/pacemaker/{cib,pengine,blackbox,cores}
        mkdir -p "$root/var/lib/postgresql/$PGVER"
        node_chown postgres:postgres "$root/var/lib/postgresql" "$root/var/lib/postgresql/$PGVER"
        corosync_conf "$n" >"$root/etc/corosync/corosync.conf"
        say "node$i: booting ($(node_ip "$i"))"
        boot_node "$i"
    done
    if (( bare )); then say "PostgreSQL: not set up (--bare)"; else setup_postgres "$n"; fi
    say "waiting for the $n-node cluster to form"
    wait_cluster "$n"
    say "up: $n nodes online; PostgreSQL is stopped and waits for 'paceline-lab config'"
}

cmd_config() {
    local stack=reference sync=${SYNC_MODE:-off} route=vip
    while (( $# )); do case $1 in --stack) stack=$2; shift 2 ;; --sync) sync=$2; shift 2 ;; --routing) route=$2; shift 2 ;; *) die "config: unknown argument $1" ;; esac; done
    [[ $stack == reference || $stack == paceline ]] || die "--stack must be reference or paceline"
    case $route in
        vip) ;;
        haproxy) [[ $stack == paceline ]] || die "--routing haproxy needs --stack paceline (HAProxy asks the state service, ocf:paceline:pgsql-state)" ;;
        seed) [[ $stack == reference ]] || die "--routing seed is the seed demo: PAF, --stack reference" ;;
        *) die "--routing must be vip, haproxy or seed" ;;
    esac
    [[ $route == vip ]] || command -v haproxy >/dev/null || die "haproxy is not installed (bash tests/deps.sh)"
    [[ $route != seed ]] || command -v systemd-socket-activate >/dev/null || die "systemd-socket-activate is not installed (systemd)"
    [[ $sync == off || $sync == on || $sync == strict ]] || die "--sync must be off, on or strict"
    [[ $sync == off || $stack == paceline ]] || die "--sync on|strict needs --stack paceline (PAF has no synchronous mode)"
    [[ -e $STATE/nodes ]] || die "no lab is up (paceline-lab up first)"
    local flags="" rewind=()
    if [[ $stack == paceline ]]; then
        # A rebooted ex-primary whose history diverged is rewound and rejoins (docs/pgsqlms.md).
        rewind=(AUTO_REWIND=true REWIND_USER=postgres)
        [[ $sync == off ]] || rewind+=(SYNC_MODE="$sync")
        local i
        for i in $(seq "$(nodes)"); do
            in_node "$i" test -x /usr/lib/ocf/resource.d/paceline/pgsqlms || die "ocf:paceline:pgsqlms is not installed (paceline install)"
        done
    fi
    # An --ec2 lab: the EC2 cluster (fence_paceline_aws, awsvip) on top of the same resources.
    local script=pgsql-ha.sh ec2=()
    if is_ec2; then
        script=pgsql-ha-ec2.sh
        local fa=${FENCE_AGENT:-fence_paceline_aws} va=${AWSVIP_AGENT:-ocf:paceline:awsvip}
        [[ -x /usr/sbin/$fa ]] || die "$fa is not installed in /usr/sbin (paceline install)"
        [[ -x /usr/lib/ocf/resource.d/$(cut -d: -f2 <<<"$va")/$(cut -d: -f3 <<<"$va") ]] || die "$va is not installed (paceline install)"
        ec2=(REGION="$REGION" ENDPOINT_URL="$EC2_URL" HOST_MAP="$(host_map)" POWER_TIMEOUT="${POWER_TIMEOUT:-30}" AWSVIP_MONITOR="$VIP_MONITOR"
             FENCE_AGENT="${FENCE_AGENT:-fence_paceline_aws}" AWSVIP_AGENT="${AWSVIP_AGENT:-ocf:paceline:awsvip}")
        if is_multiaz; then
            # Across zones: the VIP's address is an overlay IP, moved by the route tables.
            [[ $route == vip ]] || die "--multiaz labs route through the overlay IP (--routing vip)"
            script=pgsql-ha-ec2-multiaz.sh
            ec2+=(OVERLAY_IP="$VIP" ROUTE_TABLES="$(awk '{printf "%s%s", s, $1; s=","}' "$STATE/ec2/route-tables")" OVERLAY_MONITOR="$VIP_MONITOR"
                  OVERLAY_AGENT="${OVERLAY_AGENT:-ocf:paceline:aws-vpc-move-ip}")
        fi
    fi
    # No VIP: crm-examples/pgsql-ha-haproxy.sh (pgsql-ha.sh, or pgsql-ha-ec2.sh with EC2=true,
    # without the VIP and the secondary IP), HAProxy on every node.
    if [[ $route != vip ]]; then
        is_ec2 && ec2+=(EC2=true)
        script=pgsql-ha-haproxy.sh
        say "config: routing through HAProxy on every node ($route): writes on :$ROUTER_PORT, standbys on :$ROUTER_RO_PORT, replication through 127.0.0.1:$ROUTER_REPL_PORT"
        routing_setup "$route"
    fi
    say "config: stack $stack from crm-examples/$script (monitors: promoted $MONITOR_PROMOTED, unpromoted $MONITOR_UNPROMOTED, VIP $VIP_MONITOR; synchronous_mode $sync)"
    # STATE_ALLOW: the state service answers the lab's network (the nodes' HAProxy, the
    # client namespace's checks and metrics) and loopback. STONITH: a lab without --ec2 has
    # no fence device, so fencing is off there (the scripts' default, on, needs a device).
    local fencing=true
    is_ec2 || fencing=false
    in_node 1 env STACK="$stack" VIP="$VIP" CIDR=24 NIC=eth0 PGDATA="$PGDATA" BINDIR="$BINDIR" PGHOST=/run/postgresql \
        STATE_ALLOW="192.0.2.0/24 127.0.0.1 ::1" STONITH="$fencing" \
        PCS_CREATE_FLAGS="$flags" "${rewind[@]}" "${ec2[@]}" sh "$SRC/crm-examples/$script" >"$LAB_DIR/config.log" 2>&1 \
        || { cat "$LAB_DIR/config.log" >&2; die "crm-examples/$script failed"; }
    if is_multiaz; then say "config: fencing through EC2 (fence_paceline_aws, stonith-enabled=true); $VIP is an overlay IP (aws-vpc-move-ip)"
    elif is_ec2; then say "config: fencing through EC2 (fence_paceline_aws, stonith-enabled=true)"
    else say "config: no fencing in this lab (stonith-enabled=false): see docs/lab.md (up --ec2)"; fi
    echo "$stack" >"$STATE/stack"
    echo "$sync" >"$STATE/sync"
    wait_healthy 180 || { explain_unhealthy; die "the cluster did not become healthy within 180 s (paceline-lab status)"; }
    if routed; then say "config: healthy: primary on $(primary_node), every HAProxy routes writes there"
    else say "config: healthy: primary on $(primary_node), VIP on $(vip_holder)"; fi
}

# The node whose PostgreSQL is a primary (exactly one), else empty.
primary_node() {   # (a powered-off node is skipped: asking it would only time out)
    local i p=() r
    for i in $(seq "$(nodes)"); do
        node_alive "$i" || continue
        r=$(psql_at "$i" "select pg_is_in_recovery()" || true)
        [[ $r == f ]] && p+=("node$i")
    done
    (( ${#p[@]} == 1 )) && echo "${p[0]}" || true
}
standby_nodes() {
    local i out=()
    for i in $(seq "$(nodes)"); do
        node_alive "$i" || continue
        [[ $(psql_at "$i" "select pg_is_in_recovery()" || true) == t ]] && out+=("node$i")
    done
    echo "${out[*]:-}"
}
# (No "| grep -q" under pipefail: grep's early exit would make the pipeline fail.)
has_vip() { node_alive "$1" && [[ $(ip -n "$PREFIX-node$1" -o addr show 2>/dev/null) == *" $VIP/"* ]]; }
vip_holder() {
    local i out=()
    for i in $(seq "$(nodes)"); do
        has_vip "$i" && out+=("node$i")
    done
    echo "${out[*]:-}"
}
# Healthy: one primary, the VIP on it and answering (--routing haproxy|seed: every running
# node's HAProxy sends writes to it), every other node streaming with a positive promotion
# score (so that a failure right now has somewhere to go).
healthy() {
    local p v i n; n=$(nodes)
    p=$(primary_node); [[ -n $p ]] || return 1
    local at=vip
    if routed; then
        routes_to "$p" || return 1
        at=${p#node}
    else
        v=$(vip_holder); [[ $v == "$p" ]] || return 1
        [[ $(psql_at vip "select pg_is_in_recovery()" || true) == f ]] || return 1
    fi
    local streaming; streaming=$(psql_at "$at" "select count(*) from pg_stat_replication where state = 'streaming'" || echo 0)
    [[ $streaming == $((n - 1)) ]] || return 1
    for i in $(seq "$n"); do
        [[ node$i == "$p" ]] && continue
        local s; s=$(in_node "${p#node}" crm_attribute -N "node$i" -n master-pgsqld -l forever -G -q 2>/dev/null || echo -1)
        [[ $s =~ ^[0-9]+$ ]] && (( s > 0 )) || return 1
    done
}
wait_healthy() {
    local t=$1 s
    for s in $(seq "$t"); do healthy && return 0; sleep 1; done
    return 1
}
# Why the cluster is not healthy, on stderr: what an operator would look at first (crm_mon
# with fail counts, each node's PostgreSQL, the agents' and the fencer's last words). Called
# before the lab gives up, so that a failed CI run says what went wrong.
explain_unhealthy() {
    {
        echo "---- lab: the cluster as it was when the lab gave up"
        cmd_status 2>&1 || true
        local i f
        for i in $(seq "$(nodes)"); do
            echo "---- node$i: promotion scores and what its scheduler would do now (crm_simulate -Ls)"
            in_node "$i" timeout 20 crm_simulate -Ls 2>&1 | grep -E 'promotion score|^ *\* |Transition Summary' | grep -v 'allocation score' | tail -20 || true
        done
        for i in $(seq "$(nodes)"); do
            f=$LAB_DIR/node$i/var/log/pacemaker/pacemaker.log
            [[ -e $f ]] || continue
            echo "---- node$i: pacemaker.log, last errors, warnings and agent lines (last line: $(tail -1 "$f" | cut -c1-19))"
            grep -E 'error|warning|pgsqlms|IPaddr2|awsvip|fence|stonith|Result of' "$f" | grep -v 'debug' | tail -40 || true
            echo "---- node$i: the agents' own last lines"
            grep -E 'pgsqlms\(|pgsql-state|notice: (Actions|Calculated|Transition [0-9]+ \(Complete)' "$f" | tail -15 || true
        done
        if routed; then
            for i in $(seq "$(nodes)"); do
                echo "---- node$i: HAProxy sends writes to: $(routed_to "$i"); haproxy.log, last state changes"
                grep -Ev '^[0-9.:]+ \[' "$LAB_DIR/node$i/haproxy.log" 2>/dev/null | tail -8 || true
            done
        fi
        if is_ec2; then
            echo "---- EC2 controller (ec2.log), last lines"
            tail -20 "$STATE/ec2/ec2.log" 2>/dev/null || true
        fi
        echo "----"
    } >&2
}

cmd_facts() {
    [[ -e $STATE/nodes ]] || die "no lab is up"
    echo "VIP=$VIP"
    echo "NETWORK=192.0.2.0/24"
    if is_ec2; then
        echo "REGION=$REGION"
        echo "ENDPOINT_URL=$EC2_URL"
        echo "HOST_MAP='$(host_map)'"
    fi
}

cmd_status() {
    [[ -e $STATE/nodes ]] || { echo "no lab is up"; return 0; }
    local i n; n=$(nodes)
    i=$(first_alive) && { in_node "$i" crm_mon -1 -r -A -f 2>/dev/null || true; }
    echo
    local rcol=vip; routed && rcol="HAProxy writes to"
    printf '%-6s %-10s %-10s %-14s %s\n' node power role lsn "$rcol"
    for i in $(seq "$n"); do
        local power=off role=- lsn=- vip=""
        node_alive "$i" && power=on
        if [[ $power == on ]]; then
            case $(psql_at "$i" "select pg_is_in_recovery()" || true) in
                f) role=primary; lsn=$(psql_at "$i" "select pg_current_wal_lsn()") ;;
                t) role=standby; lsn=$(psql_at "$i" "select pg_last_wal_replay_lsn()") ;;
                *) role=stopped ;;
            esac
        fi
        has_vip "$i" && vip=VIP
        routed && [[ $power == on ]] && vip=$(routed_to "$i")
        printf '%-6s %-10s %-10s %-14s %s\n' "node$i" "$power" "$role" "$lsn" "$vip"
    done
}

cmd_down() {
    need_root
    local i
    local f
    local t pid
    for f in probe side; do
        [[ -f $STATE/$f.pid ]] || continue
        pid=$(cat "$STATE/$f.pid")
        kill -TERM "$pid" 2>/dev/null || true
        # A second signal abandons the final check, which would wait for the VIP down removes.
        for t in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$pid" 2>/dev/null || true
        for t in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"paceline-lab probe "* ]] && kill -KILL "$pid" 2>/dev/null || true
    done
    ec2_down
    # A hung PostgreSQL (scenario hang) must not outlive the lab: SIGKILL what it stopped.
    [[ -s $STATE/hang.pids ]] && { hang_procs kill >/dev/null 2>&1 || true; }
    for i in 1 2 3; do power_off "$i"; done
    for ns in "$CLIENT" "$PREFIX-node1" "$PREFIX-node2" "$PREFIX-node3" "$SW"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ -n ${LAB_KEEP_LOGS:-} ]]; then   # keep the logs for a post-mortem
        local keep; keep=$LAB_KEEP_LOGS/$(basename "$LAB_DIR")-$(date +%H%M%S)
        mkdir -p "$keep"
        for i in 1 2 3; do [[ -d $LAB_DIR/node$i ]] && cp -a "$LAB_DIR/node$i/var/log" "$keep/node$i" 2>/dev/null || true; done
        cp -a "$STATE" "$keep/state" 2>/dev/null || true
        say "logs kept in $keep"
    fi
    rm -rf "$LAB_DIR"
    say "down"
}

# ---------------------------------------------------------------------------- scenarios
json_str() { printf '"%s"' "$1"; }
json_list() { local a=($1) out="" x; for x in "${a[@]}"; do out+="${out:+,}\"$x\""; done; echo "[$out]"; }

probe_start() {
    local p; p=$(lab_bin)
    local nodes_csv="" i
    for i in $(seq "$(nodes)"); do nodes_csv+="${nodes_csv:+,}$(node_ip "$i")"; done
    rm -f "$STATE/probe.ready" "$STATE/probe.json"
    # Not through a function: $! must be the probe itself (ip netns exec execs it).
    # --routing haproxy|seed: through the nodes' HAProxy, the primary's first (its crash takes
    # the client's router down too), then the others in order (docs/lab.md).
    local target=(--vip "$VIP")
    if routed; then
        local via="" pr; pr=$(primary_node); pr=${pr#node}
        [[ -n $pr ]] && via=$(node_ip "$pr")
        for i in $(seq "$(nodes)"); do [[ $i == "$pr" ]] || via+="${via:+,}$(node_ip "$i")"; done
        target=(--via "$via" --via-port "$ROUTER_PORT")
    fi
    ip netns exec "$CLIENT" "$p" probe "${target[@]}" --nodes "$nodes_csv" --ready-file "$STATE/probe.ready" \
        --connect-timeout-ms "$PROBE_CONNECT_TIMEOUT_MS" \
        >"$STATE/probe.json" 2>"$STATE/probe.err" &
    echo $! >"$STATE/probe.pid"
    local t
    for t in $(seq 100); do [[ -e $STATE/probe.ready ]] && return 0; sleep 0.1; done
    die "the writer probe did not start: $(cat "$STATE/probe.err")"
}
# A second writer on the primary's side of a cut: inside node I's network namespace, writing
# to its own PostgreSQL (127.0.0.1), one new connection every 100 ms, with a 2 s query
# timeout that sends a cancel request as drivers do (JDBC's setQueryTimeout): a cancelled
# wait for the synchronous standbys is a success to the client. (statement_timeout=2s is
# set too; PostgreSQL turns it off before the commit, so it cannot fire there.) Its rows are checked
# on the VIP at the end. SIGUSR1 (side_probe_mark) marks the cut: with synchronous
# replication the isolated primary must acknowledge nothing after it.
side_probe_start() {
    local i=$1 p; p=$(lab_bin)
    rm -f "$STATE/side.ready" "$STATE/side.json"
    local check=(--check-at "$VIP")
    if routed; then
        local j via=""; for j in $(seq "$(nodes)"); do [[ $j == "$i" ]] || via+="${via:+,}$(node_ip "$j")"; done
        check=(--check-via "$via" --via-port "$ROUTER_PORT")
    fi
    ip netns exec "$PREFIX-node$i" "$p" probe --vip 127.0.0.1 --nodes 127.0.0.1 "${check[@]}" --statement-timeout-ms 2000 --cancel-after-ms 2000 \
        --ready-file "$STATE/side.ready" --connect-timeout-ms "$PROBE_CONNECT_TIMEOUT_MS" --final-timeout-s 60 \
        >"$STATE/side.json" 2>"$STATE/side.err" &
    echo $! >"$STATE/side.pid"
    local t
    for t in $(seq 100); do [[ -e $STATE/side.ready ]] && return 0; sleep 0.1; done
    die "the side writer did not start: $(cat "$STATE/side.err")"
}
side_probe_mark() { kill -USR1 "$(cat "$STATE/side.pid")" 2>/dev/null || true; }
side_probe_stop() {
    local pid t; pid=$(cat "$STATE/side.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for t in $(seq 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$STATE/side.pid"
}
probe_stop() {   # stop the probe (our child, by pid) and wait for its JSON line
    local pid t; pid=$(cat "$STATE/probe.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for t in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$STATE/probe.pid"
}
# Field of the probe's JSON line (numbers, booleans, strings).
jfield() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" "$2"; }

# What crm_mon says of pgsqld on node NAME: role, plus failed/blocked/unmanaged flags.
pgsqld_state() {
    in_node "$(first_alive)" crm_mon -1 -X 2>/dev/null | python3 -c '
import sys, xml.etree.ElementTree as ET
node = sys.argv[1]
root = ET.fromstring(sys.stdin.read())
for r in root.iter("resource"):
    if r.get("id") == "pgsqld" and any(n.get("name") == node for n in r.iter("node")):
        flags = [f for f in ("failed", "blocked") if r.get(f) == "true"] + (["unmanaged"] if r.get("managed") == "false" else [])
        print(" ".join([r.get("role")] + flags)); break
else:
    print("Stopped")' "$1"
}

# pgsqld's role on node NAME once Pacemaker is done with it: a rebooted ex-primary is probed
# "promoted (failed)" (9) and recovered (demote, stop, start); the cluster can look healthy
# (it streams once its demote has run) while that transition still runs, and the role read
# then is "failed" for a moment. Waits (at most $2 s, 60) until Pacemaker is idle and the
# role is no longer a failed or pending one, then prints it (a role still failed then is the
# answer).
settled_state() {
    local node=$1 max=${2:-60} st=""
    local until=$(( SECONDS + max ))
    while (( SECONDS < until )); do
        in_node "$(first_alive)" crm_resource --wait --timeout="$(( until - SECONDS + 1 ))s" >/dev/null 2>&1 || { sleep 1; continue; }
        st=$(pgsqld_state "$node")
        [[ $st == *failed* || $st == Stopped || $st == Starting* || $st == *blocked* ]] || break
        sleep 1
    done
    pgsqld_state "$node"
}

kill_postmaster() {   # node I: kill -9 the postmaster, from inside the node's PID namespace
    in_node "$1" bash -c "kill -KILL \$(head -1 '$PGDATA/postmaster.pid')"
}
first_alive() { local i; for i in $(seq "$(nodes)"); do node_alive "$i" && { echo "$i"; return 0; }; done; return 1; }
settle() {   # wait for Pacemaker to finish, then for a healthy cluster
    in_node "$(first_alive)" crm_resource --wait --timeout=120s >/dev/null 2>&1 || true
    wait_healthy "${1:-120}"
}

# After a node-crash / partition / fence on an --ec2 lab: the lost node must be powered off
# through EC2 (the controller's events) before another node is promoted (the new primary's
# newest timeline history file is written by the promotion), the secondary IP must follow
# the primary in EC2, and the fenced node, rebooted by the fence, must rejoin as a standby.
# Sets the caller's t1 (new primary with the VIP and the secondary IP), healthy_after, rejoin,
# ec2_json. The probe keeps running until the node has rejoined: never two primaries.
ec2_recovery() {
    local name=$1 before=$2 t0=$3 i=${2#node} t p="" holders=""
    if [[ $name == partition ]]; then
        for t in $(seq 240); do ec2_event_after "$t0" powered-off "$before" && break; sleep 0.5; done
        say "partition: $before powered off through EC2; restoring its link"
        ip -n "$SW" link set "p$i" up
    fi
    for t in $(seq 240); do
        p=$(primary_node)
        [[ -n $p && $p != "$before" ]] && served_by "$p" && break
        sleep 0.5
    done
    for t in $(seq 60); do
        routed && break   # (no secondary IP without a VIP)
        holders=$(address_holders)
        [[ -n $p && -n $holders && -z $(tr ' ' '\n' <<<"$holders" | grep -vx "$p") ]] && break   # every holder is $p
        sleep 0.5
    done
    t1=$EPOCHREALTIME
    if routed; then say "$name: $p is the primary, every HAProxy routes writes there; waiting for $before to rejoin"
    else say "$name: $p is the primary, with the VIP, and EC2 gives the address to: $holders; waiting for $before to rejoin"; fi
    # stonith-action=reboot brings the node back; if it stayed off (or the scenario's fence
    # was an "off"), power it on through EC2, as an operator would.
    for t in $(seq 60); do node_alive "$i" && break; sleep 0.5; done   # EC2 boots take 10 s here
    if ! node_alive "$i"; then
        [[ $(ec2_query state "$before" 2>/dev/null) == stopped ]] && ec2_query start "$before" >/dev/null 2>&1
        for t in $(seq 60); do node_alive "$i" && break; sleep 0.5; done
    fi
    for t in $(seq 120); do
        [[ $(in_node "${p#node}" crm_mon -1 -X 2>/dev/null) == *"name=\"$before\" id"*'online="true"'* ]] && break; sleep 1
    done
    settle 120 >/dev/null || healthy_after=false
    local back; back=$(settled_state "$before")
    local streaming=false
    for t in $(seq 20); do
        [[ $(psql_at "$i" "select status from pg_stat_wal_receiver" 2>/dev/null) == streaming ]] && { streaming=true; break; }
        sleep 1
    done
    [[ $name == node-crash ]] && rejoin=$back
    holders=$(address_holders)
    local hist=""
    [[ -n $p ]] && hist=$(ls -t "$LAB_DIR/${p}$PGDATA"/pg_wal/*.history 2>/dev/null | head -1 || true)
    ec2_json=$(python3 - "$STATE/ec2/events.jsonl" "$t0" "$before" "$hist" "$holders" "$p" "$back" "$streaming" "$(is_multiaz && echo overlay || echo secondary)" <<'PY'
import json, os, sys
path, t0, node, hist, holders, primary, back, streaming, kind = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split(), sys.argv[6], sys.argv[7], sys.argv[8] == "true", sys.argv[9]
ev = [json.loads(l) for l in open(path)]
ev = [e for e in ev if e["t"] >= t0]
def first(kind):
    return next((int((e["t"] - t0) * 1000) for e in ev if e["event"] == kind and e.get("node") == node), None)
promoted = None
if hist:
    m = os.stat(hist).st_mtime
    promoted = int((m - t0) * 1000) if m >= t0 else None
stopped, off = first("stopped"), first("powered-off")
fenced = [n for n in dict.fromkeys(e.get("node") for e in ev if e["event"] == "stop-requested")]
out = {
    "fenced_nodes": fenced,
    "ec2_stop_requested_ms": first("stop-requested"), "ec2_powered_off_ms": off, "ec2_stopped_ms": stopped,
    "ec2_start_requested_ms": first("start-requested"), "ec2_running_ms": first("running"),
    "promoted_ms": promoted,
    "fenced_before_promotion": stopped is not None and promoted is not None and stopped < promoted and fenced == [node],
    **({"route_holders": holders, "routes_follow": bool(holders) and all(h == primary for h in holders)} if kind == "overlay"
       else {"secondary_ip_holders": holders, "secondary_ip_follows": holders == [primary]}),
    "fenced_node_after_boot": back,
    "fenced_node_streaming": streaming,
}
print(json.dumps(out, separators=(",", ":"))[1:-1])
PY
)
}
# Milliseconds from Pacemaker's "Node X state is now lost" (the membership without the lost
# node) to the VIP started on the new primary, read from the new primary's log: the
# cluster stack's own reaction, without Corosync's detection (token + consensus), which
# dominates a node-crash outage and varies by about a second from run to run. Second
# figure: from the start of the promoting transition on the new primary (its unpromoted
# monitor cancelled) to the VIP started: the agents' own work (notify, promote, notify,
# VIP), without Pacemaker's own wait before it schedules (up to 1 s in some runs).
lost_to_vip_ms() {
    local before=$1 after=$2 t0=$3
    [[ -n $after && -e $LAB_DIR/$after/var/log/pacemaker/pacemaker.log ]] || { echo null null; return; }
    PYTHONPATH="$SRC/tests/lab" python3 - "$LAB_DIR/$after/var/log/pacemaker/pacemaker.log" "$before" "$after" "$t0" <<'PY'
import datetime, sys
path, before, after, t0 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
from pcmklog import ts
lost = begun = vip = None
for line in open(path, errors="replace"):
    t = ts(line)
    if t is None or t < t0:
        continue
    if lost is None and f"Node {before} state is now lost" in line and "pacemaker-controld" in line:
        lost = t
    elif lost is not None and begun is None and f"operation for pgsqld on {after}: Cancelled" in line:
        begun = t   # the promoting transition starts: the unpromoted monitor is cancelled
    elif lost is not None and f"Result of start operation for pgsql-vip on {after}: ok" in line:
        vip = t
        break
ms = lambda a, b: int((b - a) * 1000) if a is not None and b is not None else "null"
print(ms(lost, vip), ms(begun, vip))
PY
}
# True if the EC2 events after T0 have EVENT for NODE.
ec2_event_after() {
    python3 - "$STATE/ec2/events.jsonl" "$@" <<'PY'
import json, sys
path, t0, kind, node = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.exit(0 if any(e["t"] >= t0 and e["event"] == kind and e.get("node") == node for e in map(json.loads, open(path))) else 1)
PY
}

# pgsqld's operations from the nodes' Pacemaker logs, from T0 (epoch seconds) on, as one JSON
# list: the controller's "Result of OP operation for pgsqld on NODE: RC" lines joined with the
# executor's line for the same call (its execution time, and its result when that is not a
# plain exit 0). Probes, cancelled recurring monitors and notifications that went well are left
# out unless --all.
pcmk_ops() {   # pcmk_ops T0 [--all] I...
    local t0=$1 all=0; shift
    [[ ${1:-} == --all ]] && { all=1; shift; }
    local logs=() i
    for i in "$@"; do logs+=("$LAB_DIR/node$i/var/log/pacemaker/pacemaker.log"); done
    PYTHONPATH="$SRC/tests/lab" python3 - "$t0" "$all" "${logs[@]}" <<'PY'
import datetime, json, re, sys
t0, everything, logs = float(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:]
from pcmklog import ts
def seconds(text):   # Pacemaker's readable intervals: 781ms, 1.191s, 2m0.5s, 1h2m
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * unit[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", text))
result = re.compile(r"Result of (\S+) operation for pgsqld on (\S+): (.*?) \|.*?\bcall=(\d+) key=(\S+)")
finished = re.compile(r"\bpgsqld (\S+) \(call (\d+)(?:, PID \d+)?\) (.*?) \(execution time ([^)]*)\)")
ops = []
for path in logs:
    exec_s = {}
    try:
        lines = open(path, errors="replace").readlines()
    except OSError:
        continue
    for line in lines:
        t = ts(line)
        if t is None or t < t0:
            continue
        m = finished.search(line)
        if m:
            exec_s[m.group(2)] = (seconds(m.group(4)), m.group(3))
            continue
        m = result.search(line)
        if not m:
            continue
        op, node, rc, call, key = m.groups()
        interval = int(key.rsplit("_", 1)[1]) if key.rsplit("_", 1)[1].isdigit() else 0
        if not everything and (op == "probe" or rc == "Cancelled"):
            continue
        ops.append({"node": node, "op": op, "interval_ms": interval, "rc": rc, "call": call,
                    "at_ms": int((t - t0) * 1000), "exec_ms": None, "path": path})
    for o in ops:
        if o["path"] == path and o["call"] in exec_s:
            secs, how = exec_s.pop(o["call"])
            o["exec_ms"] = int(secs * 1000)
            # The controller reports a notification that timed out as "ok": the executor's
            # word is kept whenever it is not a plain exit status 0.
            if how != "exited with status 0":
                o["executor"] = how
ops.sort(key=lambda o: o["at_ms"])
for o in ops:
    del o["call"], o["path"]
if not everything:   # notifications only when something went wrong with them
    ops = [o for o in ops if o["op"] != "notify" or "executor" in o or o["rc"] != "ok"]
print(json.dumps(ops, separators=(",", ":")))
PY
}

# ---------------------------------------------------------------------------- hang
# Scenario hang: every process of node I's PostgreSQL instance — the postmaster (the first
# line of postmaster.pid is its pid in the node's PID namespace) and its descendants — gets
# SIGSTOP, as an I/O stall or a stuck kernel call leaves them. Each stopped process is written
# to $STATE/hang.pids (its pid in our PID namespace and its start time) before it is stopped,
# so that SIGCONT, or down's SIGKILL, reaches only those processes, even after a pid is reused.
#   hang_procs stop I   stop them; prints how many, and the postmaster's pid
#   hang_procs watch F D  until none is stopped (or until epoch D): writes the time, and how
#                       many of them still exist a moment later, to F
#   hang_procs cont     SIGCONT to those that exist; prints how many
#   hang_procs kill     SIGKILL (then SIGCONT) to those that exist (down)
hang_procs() {
    python3 - "$STATE/hang.pids" "$LAB_DIR" "$PGDATA" "$@" <<'PY'
import os, signal, sys, time
pidfile, labdir, pgdata, cmd, *rest = sys.argv[1:]
def stat(pid):   # (state, ppid, start time) of a live process, None if gone or a zombie
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return None if f[0] in "ZX" else (f[0], int(f[1]), f[19])
def recorded():
    try:
        return [(int(p), s) for p, s in (l.split() for l in open(pidfile) if l.strip())]
    except FileNotFoundError:
        return []
def ours():   # the recorded processes that still exist (same pid, same start time)
    out = []
    for pid, start in recorded():
        st = stat(pid)
        if st and st[2] == start:
            out.append((pid, st))
    return out
def pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]
if cmd == "stop":
    node = rest[0]
    init = int(open(f"{labdir}/state/node{node}.pid").read())
    ns = os.readlink(f"/proc/{init}/ns/pid")
    inner = int(open(f"{labdir}/node{node}{pgdata}/postmaster.pid").readline())
    pm = None
    for p in pids():
        try:
            if os.readlink(f"/proc/{p}/ns/pid") != ns:
                continue
            nspid = next(l for l in open(f"/proc/{p}/status") if l.startswith("NSpid:")).split()
        except (OSError, StopIteration):
            continue
        if int(nspid[-1]) == inner:
            pm = p
            break
    if pm is None:
        sys.exit(f"no process of node{node} has the postmaster's pid {inner}")
    out = open(pidfile, "a")
    done = set()
    def stop(p):
        st = stat(p)
        if st is None or p in done:
            return
        out.write(f"{p} {st[2]}\n")   # recorded first: never a stopped process we forgot
        out.flush()
        os.kill(p, signal.SIGSTOP)
        done.add(p)
    stop(pm)   # first: a stopped postmaster forks no new child
    for _ in range(100):   # SIGSTOP is asynchronous: wait until it is stopped
        st = stat(pm)
        if st is None or st[0] in "Tt":
            break
        time.sleep(0.01)
    while True:   # then every descendant, until a pass finds none new
        children = {}
        for p in pids():
            st = stat(p)
            if st:
                children.setdefault(st[1], []).append(p)
        new, todo = [], [pm]
        while todo:
            for c in children.get(todo.pop(), []):
                todo.append(c)
                if c not in done:
                    new.append(c)
        if not new:
            break
        for c in new:
            stop(c)
    print(len(done), pm)
elif cmd == "watch":   # until none of them is stopped (or DEADLINE): write the time, and how many exist
    out, deadline = rest[0], float(rest[1])
    while time.time() < deadline:
        live = ours()
        if not any(st[0] in "Tt" for _, st in live):
            t = time.time()
            for _ in range(20):   # killed ones take a moment to be gone: gone, or resumed?
                if not live:
                    break
                time.sleep(0.05)
                live = ours()
            with open(out, "w") as f:
                f.write(f"{t:.6f} {len(live)}\n")
            break
        time.sleep(0.05)
elif cmd in ("cont", "kill"):
    live = ours()
    for pid, _ in live:
        try:
            if cmd == "kill":
                os.kill(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    print(len(live))
PY
}
# On exit (a scenario that dies half-way included), SIGCONT to what hang stopped.
hang_release_on_exit() {
    local prev; prev=$(trap -p EXIT); prev=${prev#trap -- \'}; prev=${prev%\' EXIT}
    trap "hang_procs cont >/dev/null 2>&1 || true${prev:+; $prev}" EXIT
}
ms_between() { python3 -c "print(int((float('$2') - float('$1')) * 1000))"; }
# Writes come back: the VIP answers as a primary (a hung server never completes a connection).
vip_primary_answers() {
    if routed; then   # (--routing haproxy|seed: through any running node's HAProxy)
        local i; for i in $(seq "$(nodes)"); do node_alive "$i" && [[ -n $(routed_to "$i") ]] && return 0; done
        return 1
    fi
    [[ $(in_client timeout 5 env PGCONNECT_TIMEOUT=2 psql -X -A -t -q -h "$VIP" -U postgres -d postgres -c "select pg_is_in_recovery()" 2>/dev/null) == f ]]
}
# What the hung node's next PostgreSQL start (after T0) made of the processes left behind:
# the start's result from Pacemaker's view, and the errors of a PostgreSQL that finds them
# (a postmaster.pid whose owner still runs, a shared memory block still attached, the port
# taken), looked for in the node's pacemaker.log (PAF's pg_ctl output lands there) and in its
# PostgreSQL server logs (/var/log/postgresql in the node, where pg_ctl -l writes). JSON members.
hang_restart_json() {
    local i=$1 t0=$2 ops=$3
    PYTHONPATH="$SRC/tests/lab" python3 - "$i" "$t0" "$ops" "$LAB_DIR/node$i/var/log/pacemaker/pacemaker.log" "$LAB_DIR/node$i/var/log/postgresql" <<'PY'
import datetime, json, os, re, sys
node, t0, ops, pcmk, pglogs = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
from pcmklog import ts
bad = re.compile(r'lock file "postmaster\.pid" already exists|pre-existing shared memory block|shared memory|could not bind|Address already in use|Is another postmaster')
errors = []
try:
    for line in open(pcmk, errors="replace"):
        t = ts(line)
        if t is not None and t >= t0 and bad.search(line) and "pgsqld" in line:
            errors.append(line.strip()[:300])
except OSError:
    pass
for f in sorted(os.listdir(pglogs)) if os.path.isdir(pglogs) else []:
    p = os.path.join(pglogs, f)
    if os.path.getmtime(p) < t0:
        continue
    for line in open(p, errors="replace"):   # server log lines carry their own time stamp
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)", line)
        when = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp() if m else None
        if (when is None or when >= t0 - 1) and bad.search(line):
            errors.append(f"{f}: {line.strip()[:300]}")
starts = [o for o in ops if o["node"] == f"node{node}" and o["op"] == "start"]
first = starts[0] if starts else None
print(json.dumps({
    "hung_node_start": first and {"rc": first["rc"], "exec_ms": first["exec_ms"], "at_ms": first["at_ms"]},
    "hung_node_started": bool(first) and first["rc"] == "ok" and not errors,
    "hung_node_start_errors": errors[:10],
}, separators=(",", ":"))[1:-1])
PY
}

# ---------------------------------------------------------------------------- update-params
# Scenario update-params: each non-unique parameter of pgsqld (from the agent's meta-data, at
# run time) changed to a value that keeps the cluster working, one `pcs resource update` at a
# time under its own writer probe; what Pacemaker ran for it (reload, reload-agent, or a
# restart: stop/start), whether the primary's postmaster changed, the outage. Then the
# original parameters back, in one update.

# The new value of parameter NAME whose current value is CUR ("" = not set): "=VALUE", "-" (remove
# it: the agent's default, equivalent), or "!why not".
up_value() {
    local name=$1 cur=$2
    up_alt() { local v; for v in "$@"; do [[ $v != "$cur" ]] && { [[ -z $v ]] && echo - || echo "=$v"; return; }; done; echo "!no other harmless value"; }
    case $name in
        system_user) up_alt postgres "" ;;
        pghost) up_alt /var/run/postgresql /run/postgresql ;;   # /var/run is /run
        pgport) up_alt 5432 "" ;;                               # unset: the default, 5432
        bindir) if [[ -z $cur ]]; then echo "=$BINDIR/"; elif [[ $cur == */ ]]; then echo "=${cur%/}"; else echo "=$cur/"; fi ;;
        maxlag) up_alt 1000000000 "" ;;
        start_opts) up_alt "-c log_min_duration_statement=-1" "" ;;   # the server's default
        recovery_template) up_alt /dev/null "" ;;               # PostgreSQL >= 12 does not use it
        auto_rewind) [[ $cur == true ]] && echo "=false" || echo "=true" ;;
        rewind_user) up_alt postgres "" ;;
        synchronous_node_count) up_alt 1 "" ;;
        # Slots off, said explicitly (the default); turning them on under load is the slots
        # test's part (tests/lab_cluster.rs). Their TTL changes nothing while they are off.
        replication_slots) up_alt false "" ;;
        slot_ttl) up_alt 3600 "" ;;
        incident_record) up_alt true "" ;;
        synchronous_mode)
            case $cur in
                "" | off) up_alt off "" ;;
                *) echo "!synchronous_mode is $cur here: changing the replication mode is not harmless" ;;
            esac ;;
        *) echo "!the lab knows no harmless value for it" ;;
    esac
}
# The primary's postmaster as "node:pid:start time" (postmaster.pid's first and third lines).
primary_postmaster() {
    local p; p=$(primary_node)
    [[ -n $p ]] || { echo none; return; }
    echo "$p:$(sed -n '1p' "$LAB_DIR/$p$PGDATA/postmaster.pid" 2>/dev/null):$(sed -n '3p' "$LAB_DIR/$p$PGDATA/postmaster.pid" 2>/dev/null)"
}
# One update under the writer probe: LABEL, then pcs resource update's NAME=VALUE arguments.
# Appends one JSON object to $STATE/update.jsonl.
up_step() {
    local label=$1; shift
    local pi; pi=$(first_alive)
    local pm_before; pm_before=$(primary_postmaster)
    probe_start
    local ts=$EPOCHREALTIME upd_ok=true
    in_node "$pi" pcs resource update pgsqld "$@" >"$STATE/update.out" 2>&1 || upd_ok=false
    in_node "$pi" crm_resource --wait --timeout=180s >/dev/null 2>&1 || true
    local healthy=true
    wait_healthy 120 || { healthy=false; explain_unhealthy; }
    local settled=$EPOCHREALTIME
    sleep 0.5
    probe_stop
    local pm_after; pm_after=$(primary_postmaster)
    local ops; ops=$(pcmk_ops "$ts" $(seq "$(nodes)"))
    python3 - "$label" "$upd_ok" "$(tr '\n' ' ' <"$STATE/update.out")" "$pm_before" "$pm_after" "$ops" "$(cat "$STATE/probe.json")" "$healthy" "$ts" "$settled" "$@" >>"$STATE/update.jsonl" <<'PY'
import json, sys
label, ok, out, before, after, ops, probe, healthy, ts, settled, *args = sys.argv[1:]
ops = [o for o in json.loads(ops) if not (o["op"] == "monitor" and o["rc"] in ("ok", "promoted", "not running"))]
probe = json.loads(probe) if probe.strip() else {}
names = {o["op"] for o in ops}
restart = bool(names & {"stop", "start"}) or (before != after)
reload = bool(names & {"reload", "reload-agent"})
print(json.dumps({
    "label": label, "update": args, "update_ok": ok == "true", "pcs": out.strip()[:300] or None,
    "op": "restart" if restart else ("reload-agent" if "reload-agent" in names else "reload") if reload else "none",
    "ops": [f'{o["op"]}@{o["node"]}:{o["rc"]}' + (f' {o["exec_ms"]}ms' if o["exec_ms"] is not None else "") for o in ops],
    "primary_before": before.split(":")[0], "primary_after": after.split(":")[0],
    "primary_pid_changed": before != after,
    "outage_ms": probe.get("longest_outage_ms"), "rows_lost": probe.get("lost_rows"),
    "max_primaries_seen": probe.get("max_primaries_seen"),
    "healthy": healthy == "true", "settle_ms": int((float(settled) - float(ts)) * 1000),
}, separators=(",", ":")))
PY
}
scenario_update_params() {
    local stack=$1 pi; pi=$(first_alive)
    local provider=heartbeat; [[ $stack == paceline ]] && provider=paceline
    local agent=ocf:$provider:pgsqlms
    rm -f "$STATE/update.jsonl"
    # The parameters, from the agent's meta-data: name, unique, reloadable.
    local params; params=$(in_node "$pi" crm_resource --show-metadata "$agent" | python3 -c '
import sys, xml.etree.ElementTree as ET
for p in ET.fromstring(sys.stdin.read()).iter("parameter"):
    print(p.get("name"), p.get("unique", "0"), p.get("reloadable", "0"))') || die "update-params: no meta-data for $agent"
    # The current values (instance attributes of the primitive).
    in_node "$pi" cibadmin --query --xpath "//primitive[@id='pgsqld']" >"$STATE/pgsqld.xml" 2>/dev/null || die "update-params: no pgsqld primitive"
    cur_of() { python3 -c '
import sys, xml.etree.ElementTree as ET
for n in ET.parse(sys.argv[1]).getroot().iter("nvpair"):
    if n.get("name") == sys.argv[2] and n.get("value") is not None:
        print(n.get("value")); break' "$STATE/pgsqld.xml" "$1"; }
    local name unique reloadable cur v restore=() skipped="" unique_list="" reloadable_list="" healthy=true
    local t0=$EPOCHREALTIME before; before=$(primary_node)
    while read -r name unique reloadable <&3; do
        [[ $reloadable == 1 ]] && reloadable_list+=" $name"
        if [[ $unique == 1 ]]; then unique_list+=" $name"; continue; fi
        cur=$(cur_of "$name")
        v=$(up_value "$name" "$cur")
        if [[ $v == '!'* ]]; then skipped+="$name	${v#!}"$'\n'; continue; fi
        if [[ $healthy != true ]]; then skipped+="$name	not tried: the cluster was not healthy after an earlier update"$'\n'; continue; fi
        restore+=("$name=$cur")
        local arg; [[ $v == - ]] && arg="$name=" || arg="$name=${v#=}"
        say "update-params: $name: '${cur}' -> '$( [[ $v == - ]] && echo '(unset)' || echo "${v#=}")'"
        up_step "$name" "$arg"
        [[ $(tail -1 "$STATE/update.jsonl") == *'"healthy":true'* ]] || healthy=false
    done 3<<<"$params"
    if (( ${#restore[@]} )); then
        say "update-params: restoring the original parameters: ${restore[*]}"
        up_step "(restore)" "${restore[@]}"
    fi
    local restored=true
    in_node "$pi" cibadmin --query --xpath "//primitive[@id='pgsqld']" >"$STATE/pgsqld-after.xml" 2>/dev/null || restored=false
    python3 - "$STATE/pgsqld.xml" "$STATE/pgsqld-after.xml" <<'PY' || restored=false
import sys, xml.etree.ElementTree as ET
attrs = lambda f: sorted((n.get("name"), n.get("value")) for ia in ET.parse(f).getroot().iter("instance_attributes") for n in ia.iter("nvpair"))
sys.exit(0 if attrs(sys.argv[1]) == attrs(sys.argv[2]) else 1)
PY
    local healthy_after=true; settle 120 || { healthy_after=false; explain_unhealthy; }
    local t1=$EPOCHREALTIME
    python3 - "$STATE/update.jsonl" "$stack" "$(nodes)" "$agent" "$before" "$(primary_node)" "$(standby_nodes)" "$(vip_holder)" \
        "$skipped" "$unique_list" "$reloadable_list" "$restored" "$healthy_after" "$t0" "$t1" "$MONITOR_PROMOTED" "$MONITOR_UNPROMOTED" "$VIP_MONITOR" "$PROBE_CONNECT_TIMEOUT_MS" <<'PY'
import json, sys
(path, stack, nodes, agent, before, after, standbys, vip, skipped, unique, reloadable, restored, healthy,
 t0, t1, mp, mu, vm, pct) = sys.argv[1:]
steps = [json.loads(l) for l in open(path)] if __import__("os").path.exists(path) else []
per = {s["label"]: s for s in steps if s["label"] != "(restore)"}
restore = next((s for s in steps if s["label"] == "(restore)"), None)
for s in per.values():
    s.pop("label")
    s["reloadable"] = s.get("update", [""])[0].split("=")[0] in reloadable.split()
if restore:
    restore.pop("label")
every = list(per.values()) + ([restore] if restore else [])
print(json.dumps({
    "scenario": "update-params", "stack": stack, "nodes": int(nodes), "agent": agent,
    "intervals": {"monitor_promoted": mp, "monitor_unpromoted": mu, "vip_monitor": vm},
    "restarted": [n for n, s in per.items() if s["op"] == "restart"],
    "reloaded": [n for n, s in per.items() if s["op"] in ("reload", "reload-agent")],
    "no_op": [n for n, s in per.items() if s["op"] == "none"],
    "skipped": dict(l.split("\t", 1) for l in skipped.splitlines() if l),
    "unique_not_tried": unique.split(),
    "reloadable_in_metadata": reloadable.split(),
    "per_param": per,
    "restore": restore,
    "restored": restored == "true",
    "outage_ms": max([s["outage_ms"] or 0 for s in per.values()], default=0),
    "rows_lost": sum(s["rows_lost"] or 0 for s in per.values()) if all(s["rows_lost"] is not None for s in per.values()) else None,
    "max_primaries_seen": max([s["max_primaries_seen"] or 0 for s in every], default=0),
    "double_primary": any((s["max_primaries_seen"] or 0) >= 2 for s in every),
    "primary_before": before, "primary_after": after, "standbys_after": standbys.split(), "vip_holder": vip.split(),
    "recovery_ms": int((float(t1) - float(t0)) * 1000),
    "healthy_after": healthy == "true" and all(s["healthy"] for s in every),
    "event_ok": all(s["update_ok"] for s in every),
    "probe_connect_timeout_ms": int(pct),
}, separators=(",", ":")))
PY
}

cmd_scenario() {
    local name=${1:-}; [[ -n $name ]] || die "scenario: which one?"
    [[ -e $STATE/stack ]] || die "no configured lab (paceline-lab up && paceline-lab config)"
    local stack; stack=$(cat "$STATE/stack")
    # Failed promotions are part of the election (a node hands over to a better one); clear
    # the fail counts so that earlier scenarios cannot add up to migration-threshold.
    in_node "$(first_alive)" crm_resource --cleanup >/dev/null 2>&1 || true
    settle 120 || { explain_unhealthy; die "the cluster is not healthy before the scenario (paceline-lab status)"; }
    # update-params runs its own writer probe per update, and prints its own line.
    [[ $name == update-params ]] && { scenario_update_params "$stack"; return; }
    local before; before=$(primary_node)
    local target="" event_ok=true note="" cut="" hang_json="" keep="" lag="" lag_behind="" storm_json=""
    # The DC: when the lost node was the DC, the survivors elect a new one first.
    local dc; dc=$(in_node "$(first_alive)" crm_mon -1 -X 2>/dev/null | sed -n 's/.*<current_dc .*name="\([^"]*\)".*/\1/p' | head -1)
    probe_start
    sleep 2
    local t0=$EPOCHREALTIME
    case $name in
        switchover)
            local i
            for i in $(seq "$(nodes)"); do [[ node$i != "$before" ]] && { target=node$i; break; }; done
            say "switchover: moving the primary from $before to $target"
            # SLOW_ATTRD_S=N: every node's attribute manager stopped (SIGSTOP) for N s from
            # the move on — the election's attributes are written and read back late
            # (issue #26.3).
            local slow=${SLOW_ATTRD_S:-0} attrds="" resumer="" x
            if (( slow > 0 )); then
                for i in $(seq "$(nodes)"); do
                    local a; a=$(in_node "$i" pidof pacemaker-attrd) && in_node "$i" kill -STOP "$a" && attrds+=" $i:$a"
                done
                ( sleep "$slow"; for x in $attrds; do in_node "${x%%:*}" kill -CONT "${x#*:}" || true; done ) &
                resumer=$!
                note="every node's pacemaker-attrd stopped for $slow s from the move on"
            fi
            in_node "${before#node}" crm_resource --move --promoted -r pgsqld-clone -N "$target" >/dev/null 2>&1 || event_ok=false
            local t; for t in $(seq 120); do [[ $(primary_node) == "$target" ]] && break; sleep 0.2; done
            [[ -n $resumer ]] && { wait "$resumer" || true; for x in $attrds; do in_node "${x%%:*}" kill -CONT "${x#*:}" 2>/dev/null || true; done; }
            in_node "${target#node}" crm_resource --clear -r pgsqld-clone >/dev/null 2>&1 || true
            ;;
        kill-postgres)
            say "kill-postgres: kill -9 of the postmaster on $before"
            kill_postmaster "${before#node}"
            ;;
        hang)
            # The primary's PostgreSQL stops answering without dying: every process of the
            # instance stopped (SIGSTOP) until a primary with the VIP is back, on any node, or
            # HANG_MAX_S; then SIGCONT to those of them that still exist.
            local hi=${before#node} max_s=${HANG_MAX_S:-90} hs="" t_end="" ended_by="" back="" back_node="" n_cont=0
            say "hang: SIGSTOP to every process of $before's PostgreSQL, until a primary with the VIP is back (at most $max_s s)"
            rm -f "$STATE/hang.pids"
            hang_release_on_exit
            hs=$(hang_procs stop "$hi") || event_ok=false
            # When the processes stop being stopped (killed, or resumed), to 50 ms.
            rm -f "$STATE/hang.end"
            hang_procs watch "$STATE/hang.end" "$(( ${t0%.*} + max_s + 10 ))" &
            local watcher=$! deadline=$(( ${t0/./} + max_s * 1000000 ))
            while (( ${EPOCHREALTIME/./} < deadline )); do
                if vip_primary_answers; then back=$EPOCHREALTIME; back_node=$(if routed; then primary_node; else vip_holder; fi); break; fi
                sleep 0.3
            done
            local t_cont=$EPOCHREALTIME w_t="" w_live=""
            n_cont=$(hang_procs cont)
            wait "$watcher" 2>/dev/null || true
            read -r w_t w_live <"$STATE/hang.end" 2>/dev/null || true
            if [[ -n $w_t ]] && (( ${w_t/./} < ${t_cont/./} )); then
                t_end=$w_t; (( w_live == 0 )) && ended_by=gone || ended_by=resumed
            else
                t_end=$t_cont; ended_by=sigcont
            fi
            local recovered_by=sigcont
            [[ -n $back ]] && { [[ $back_node == "$before" ]] && recovered_by=in_place || recovered_by=failover; }
            if [[ -n $back ]]; then say "hang: stopped for $(ms_between "$t0" "$t_end") ms ($ended_by); a primary with the VIP after $(ms_between "$t0" "$back") ms: $back_node"
            else say "hang: no primary with the VIP after $max_s s; SIGCONT to the $n_cont stopped processes left"; fi
            local n_stopped=${hs%% *}; [[ -n $n_stopped ]] || n_stopped=0
            hang_json=$(printf '"hang_s":%s,"hang_ended_by":%s,"hang_stopped_processes":%s,"sigcont_sent_to":%s,"hang_max_s":%s,"recovered_by":%s,"primary_back_ms":%s' \
                "$(python3 -c "print(round(float('$t_end') - float('$t0'), 1))")" "$(json_str "$ended_by")" "$n_stopped" "$n_cont" "$max_s" \
                "$(json_str "$recovered_by")" "$([[ -n $back ]] && ms_between "$t0" "$back" || echo null)")
            note="every process of $before's PostgreSQL stopped (SIGSTOP) at t0; SIGCONT to those left once a primary with the VIP was back or after HANG_MAX_S"
            ;;
        standby-crash)
            local s; s=$(standby_nodes); target=${s%% *}
            say "standby-crash: kill -9 of the postmaster on standby $target"
            kill_postmaster "${target#node}"
            ;;
        standbys-down)
            # Every standby's PostgreSQL stopped (its node put in standby mode: the cluster
            # stays quorate), the writer going on. synchronous_mode on: writes stall until
            # the primary's monitor goes asynchronous; strict: until a standby is back.
            local s; s=$(standby_nodes) down_s=${STANDBYS_DOWN_S:-10}
            say "standbys-down: pcs node standby $s, for $down_s s, then unstandby"
            # shellcheck disable=SC2086
            in_node "${before#node}" pcs node standby $s >/dev/null 2>&1 || event_ok=false
            sleep "$down_s"
            # shellcheck disable=SC2086
            in_node "${before#node}" pcs node unstandby $s >/dev/null 2>&1 || event_ok=false
            note="PostgreSQL stopped on every standby ($s) for $down_s s"
            ;;
        election)
            # Cut the replication of the standby Pacemaker would promote first (highest
            # score), write, crash the primary: the standby that has every row must win.
            local best="" bs=-100000 sb sc
            for sb in $(standby_nodes); do
                sc=$(in_node "${before#node}" crm_attribute -N "$sb" -n master-pgsqld -l forever -G -q 2>/dev/null || echo -1)
                [[ $sc =~ ^-?[0-9]+$ ]] && (( sc > bs )) && { bs=$sc; best=$sb; }
            done
            cut=$best
            say "election: cutting $cut's replication (score $bs), writing, then powering off $before"
            in_node "${cut#node}" runuser -u postgres -- psql -X -q -h /run/postgresql -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" >/dev/null
            local t; for t in $(seq 50); do [[ -z $(psql_at "${cut#node}" "select 1 from pg_stat_wal_receiver") ]] && break; sleep 0.1; done
            sleep 2
            power_off "${before#node}"
            note="replication of $cut was cut before the crash: the promoted node must not be $cut"
            ;;
        election-quorum)
            # Issue #26.1, synchronous_mode=on, ANY 1 of the two standbys: one of them (keep)
            # has commits the other (lag) never got — the primary's walsender to lag is
            # stopped, so the primary still counts lag a member while keep alone
            # acknowledges. Then the primary is powered off and, at once, keep's node is put
            # in standby mode (its PostgreSQL stopped: it cannot take part in the election),
            # and lag is scored above keep. A promotion must compare m - k + 1 = 2 members:
            # lag must refuse. Once it has (or after 120 s), keep's node leaves standby mode,
            # and keep, which has every acknowledged row, wins.
            [[ $(cat "$STATE/sync" 2>/dev/null) == on ]] || die "election-quorum needs config --sync on"
            local sb; sb=$(standby_nodes); keep=${sb%% *}; lag=${sb##* }
            [[ -n $keep && -n $lag && $keep != "$lag" ]] || die "election-quorum needs two standbys"
            say "election-quorum: stopping $before's walsender to $lag, writing (acknowledged by $keep alone), powering off $before, $keep to standby mode"
            # (Freezing lag's walreceiver would not do: the kernel buffers what the walsender
            # sends, and lag reads it once resumed.) Process title: "postgres:
            # [cluster_name: ]walsender USER ADDR(PORT) streaming …".
            local ws; ws=$(in_node "${before#node}" bash -c 'for p in /proc/[0-9]*; do [[ $(tr "\0" " " 2>/dev/null <$p/cmdline) == "postgres: "*walsender*" $1("* ]] && { echo ${p#/proc/}; break; }; done; true' _ "$(node_ip "${lag#node}")")
            [[ -n $ws ]] || die "no walsender to $lag on $before"
            in_node "${before#node}" kill -STOP "$ws"
            sleep 2
            # How far behind lag is: the primary's WAL past what lag received.
            local lag_lsn; lag_lsn=$(psql_at "${lag#node}" "select pg_last_wal_receive_lsn()" || true)
            lag_behind=$(psql_at "${before#node}" "select pg_wal_lsn_diff(pg_current_wal_lsn(), '${lag_lsn:-0/0}')::bigint" || echo null)
            local ks; ks=$(in_node "${lag#node}" crm_attribute -N "$keep" -n master-pgsqld -l forever -G -q 2>/dev/null || echo 1000)
            [[ $ks =~ ^[0-9]+$ ]] || ks=1000
            power_off "${before#node}"
            in_node "${lag#node}" pcs node standby "$keep" >/dev/null 2>&1 || event_ok=false
            in_node "${lag#node}" crm_attribute -N "$lag" -n master-pgsqld -l forever -v $(( ks + 1 )) >/dev/null 2>&1 || true
            local t lagl="$LAB_DIR/$lag/var/log/pacemaker/pacemaker.log"
            for t in $(seq 240); do grep -q "not promoting: only 1 of the synchronous set" "$lagl" 2>/dev/null && break; sleep 0.5; done
            in_node "${lag#node}" pcs node unstandby "$keep" >/dev/null 2>&1 || event_ok=false
            note="ANY 1 ($keep, $lag): $before's walsender to $lag stopped, $before powered off, $keep in standby mode until $lag refused (or 120 s), $lag scored above $keep; $before booted again at the end"
            ;;
        storm)
            # Issue #26.7: one hostile client (192.0.2.201, inside the allowed network) holds
            # STORM_SLOW (1100) slow connections to the primary's state service and sends
            # odd paths, STORM_S (20) seconds long, while every node's HAProxy checks
            # /primary five times a second (fall 1: one failed check takes the primary out
            # of its pool) and the writer goes on through HAProxy.
            routed || die "storm needs config --routing haproxy"
            [[ $stack == paceline ]] || die "storm needs the paceline stack (its state service)"
            local pi=${before#node} dur=${STORM_S:-20} slow=${STORM_SLOW:-1100} pidf=/run/resource-agents/paceline-state-pgsql-state.pid
            local svc; svc=$(in_node "$pi" cat "$pidf" 2>/dev/null | cut -d' ' -f1) || true
            [[ $svc =~ ^[0-9]+$ ]] || die "storm: no state service pid in $pidf on $before"
            local rss0; rss0=$(in_node "$pi" awk '/^VmRSS/ {print $2}' "/proc/$svc/status")
            local downs0; downs0=$(cat "$LAB_DIR"/node*/haproxy.log 2>/dev/null | grep -c "/$before is DOWN" || true)
            ip -n "$CLIENT" addr add 192.0.2.201/24 dev eth0 2>/dev/null || true
            say "storm: one client (192.0.2.201) holds $slow slow connections to $before:8008 and sends odd paths for $dur s; HAProxy checks on"
            in_client "$(lab_bin)" storm --addr "$(node_ip "$pi"):8008" --path /primary --rate 5 --concurrency 4 --timeout-ms 1000 \
                --duration-s "$dur" --from "$CLIENT_IP" --slowloris "$slow" --odd-rate 50 --hostile-from 192.0.2.201 >"$STATE/storm.json" 2>"$STATE/storm.err" || event_ok=false
            local rss1; rss1=$(in_node "$pi" awk '/^VmRSS/ {print $2}' "/proc/$svc/status" 2>/dev/null || echo null)
            local downs1; downs1=$(cat "$LAB_DIR"/node*/haproxy.log 2>/dev/null | grep -c "/$before is DOWN" || true)
            ip -n "$CLIENT" addr del 192.0.2.201/24 dev eth0 2>/dev/null || true
            storm_json=$(printf '"storm_s":%s,"storm_slow_connections":%s,"primary_marked_down":%s,"service_rss_kb_before":%s,"service_rss_kb_after":%s,"storm":%s' \
                "$dur" "$slow" "$(( downs1 - downs0 ))" "${rss0:-null}" "${rss1:-null}" "$(head -c 100000 "$STATE/storm.json" | grep . || echo null)")
            note="one client held $slow slow connections to $before's state service and sent odd paths for $dur s, while every HAProxy checked /primary (fall 1)"
            ;;
        migrate)
            # docs/pgsqlms.md's migration from PAF: change both primitives' provider in a
            # running cluster, in maintenance mode, then let the new agents probe.
            [[ $stack == reference ]] || die "migrate starts from the reference stack"
            routed && die "migrate needs the VIP stack (--routing vip)"
            say "migrate: maintenance mode, provider heartbeat -> paceline, refresh, maintenance off"
            in_node "${before#node}" bash -c '
                set -e
                crm_attribute --type crm_config --name maintenance-mode --update true
                for r in pgsqld pgsql-vip; do
                    cibadmin --query --xpath "//primitive[@id=\"$r\"]" > /tmp/$r.xml
                    sed -i "s/provider=\"heartbeat\"/provider=\"paceline\"/" /tmp/$r.xml
                    cibadmin --replace --xpath "//primitive[@id=\"$r\"]" --xml-file /tmp/$r.xml
                done
                crm_resource --refresh >/dev/null
                sleep 5
                crm_attribute --type crm_config --name maintenance-mode --update false' >/dev/null 2>&1 || event_ok=false
            echo paceline >"$STATE/stack"
            stack=paceline
            ;;
        node-crash)
            if is_ec2; then
                say "node-crash: powering off $before (its instance stays 'running' in EC2: the cluster must fence it)"
                power_off "${before#node}"
                note="the crashed node is fenced through EC2 (StopInstances) before another node is promoted"
            else
                say "node-crash: powering off $before (no fencing in this lab: stonith-enabled=false)"
                power_off "${before#node}"
                note="stonith disabled: Pacemaker declares the lost node down once corosync drops it (token 3 s) and recovers without fencing"
            fi
            ;;
        partition)
            # The primary keeps running, cut off: the majority must power it off through EC2
            # before it promotes anyone (it cannot know the primary is not writing).
            is_ec2 || die "partition needs fencing: paceline-lab up --ec2"
            side_probe_start "${before#node}"
            say "partition: cutting $before's link (p${before#node} down in the switch)"
            ip -n "$SW" link set "p${before#node}" down
            side_probe_mark
            note="the cut-off primary is fenced through EC2 before another node is promoted; its link is restored once it is powered off"
            ;;
        fence)
            is_ec2 || die "fence needs a fence device: paceline-lab up --ec2"
            local s; s=$(standby_nodes); s=${s%% *}
            say "fence: pcs stonith fence $before (from $s)"
            in_node "${s#node}" pcs stonith fence "$before" >"$STATE/fence.out" 2>&1 || event_ok=false
            note="pcs stonith fence (reboot through fence_paceline_aws): $(tr '\n"' '  ' <"$STATE/fence.out")"
            ;;
        restart-all)
            say "restart-all: stopping pacemaker and corosync on every node, then starting them again"
            local i
            for i in $(seq "$(nodes)"); do in_node "$i" bash -c 'kill -TERM $(pidof pacemakerd)' || true; done
            for i in $(seq "$(nodes)"); do in_node "$i" bash -c 'while pidof pacemakerd >/dev/null; do sleep 0.5; done; corosync-cfgtool -H --force >/dev/null 2>&1 || kill -TERM $(pidof corosync); while pidof corosync >/dev/null; do sleep 0.2; done' || true; done
            for i in $(seq "$(nodes)"); do power_off "$i"; boot_node "$i"; done
            wait_cluster "$(nodes)"
            ;;
        *) die "unknown scenario '$name'" ;;
    esac
    local healthy_after=true t1="" ec2_json="" rejoin="" streams=""
    if is_ec2 && [[ $name == node-crash || $name == partition || $name == fence ]]; then
        ec2_recovery "$name" "$before" "$t0"    # sets t1, healthy_after, rejoin, ec2_json
    elif [[ $name == node-crash || $name == election || $name == election-quorum ]]; then
        # Two nodes are left: wait for a primary with the VIP (no standby may be streaming).
        local t; for t in $(seq 240); do local p; p=$(primary_node); [[ -n $p ]] && served_by "$p" && break; sleep 0.5; done
    else
        settle 180 || healthy_after=false
    fi
    [[ -n $t1 ]] || t1=$EPOCHREALTIME
    [[ $healthy_after == true ]] || explain_unhealthy
    sleep 2
    probe_stop
    local probe; probe=$(cat "$STATE/probe.json")
    local side_json=""
    if [[ -e $STATE/side.pid ]]; then
        side_probe_stop
        local side; side=$(cat "$STATE/side.json")
        [[ -n $side ]] || die "the side writer printed nothing: $(cat "$STATE/side.err")"
        side_json=$(printf '"side_writer":{"acked":%s,"failed":%s,"acked_after_cut":%s,"lost_rows":%s,"unacked_committed":%s,"final_check":%s,"cancel_after_ms":%s}' \
            "$(jfield "$side" acked)" "$(jfield "$side" failed)" "$(jfield "$side" acked_after_mark)" "$(jfield "$side" lost_rows)" \
            "$(jfield "$side" unacked_committed)" "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]).get("final_check")))' "$side")" \
            "$(jfield "$side" cancel_after_ms)")
    fi
    local sync_mode; sync_mode=$(cat "$STATE/sync" 2>/dev/null || echo off)
    local after; after=$(primary_node)
    [[ -n $probe ]] || die "the writer probe printed nothing: $(cat "$STATE/probe.err")"
    if [[ $name == hang ]]; then
        # Pacemaker's view of the hung node: the operations that ran there, and its next start.
        local hops; hops=$(pcmk_ops "$t0" "${before#node}")
        # Writes back, from the probe: the end of its longest outage, if that outage began
        # with the hang.
        hang_json+=",\"writes_back_ms\":$(python3 -c '
import datetime, json, sys
p, t0 = json.loads(sys.argv[1]), float(sys.argv[2])
at = lambda k: datetime.datetime.fromisoformat(p[k].replace("Z", "+00:00")).timestamp() if p.get(k) else None
f, t = at("outage_from"), at("outage_to")
print(int((t - t0) * 1000) if f is not None and t is not None and f <= t0 + 1 and not p.get("outage_open") else "null")' "$probe" "$t0")"
        hang_json+=",\"hung_node_ops\":$hops,$(hang_restart_json "${before#node}" "$t0" "$hops"),\"hung_node_after\":$(json_str "$(pgsqld_state "$before")")"
    fi
    if [[ $name == election ]]; then
        # Give the cut standby its replication back.
        in_node "${cut#node}" runuser -u postgres -- psql -X -q -h /run/postgresql -c "ALTER SYSTEM RESET primary_conninfo" -c "SELECT pg_reload_conf()" >/dev/null || true
    fi
    local quorum_json=""
    if [[ $name == election-quorum ]]; then
        local refused; refused=$(grep -c "only 1 of the synchronous set's 2 members compared" "$LAB_DIR/$lag/var/log/pacemaker/pacemaker.log" 2>/dev/null || true)
        quorum_json=$(printf '"keep":%s,"lag":%s,"lag_behind_bytes":%s,"lag_refused_promotions":%s' "$(json_str "$keep")" "$(json_str "$lag")" "${lag_behind:-null}" "${refused:-0}")
    fi
    if [[ $name == node-crash || $name == election-quorum ]] && ! is_ec2; then
        # Power the crashed node back on and record what Pacemaker makes of it.
        say "$name: booting $before again"
        boot_node "${before#node}"
        local t; for t in $(seq 90); do
            [[ $(in_node "$(first_alive)" crm_mon -1 -X 2>/dev/null) == *"name=\"$before\" id"*'online="true"'* ]] && break; sleep 1
        done
        settle 60 >/dev/null || true
        rejoin=$(settled_state "$before")
        # Rejoined for real: its standby streams from the new primary (a diverged ex-primary
        # is refused, or rewound with auto_rewind, instead of idling as a "healthy" standby).
        streams=false
        for t in $(seq 20); do
            [[ $(psql_at "${before#node}" "select status from pg_stat_wal_receiver" 2>/dev/null) == streaming ]] && { streams=true; break; }
            sleep 1
        done
    fi
    local recovery_ms; recovery_ms=$(python3 -c "print(int((float('$t1')-float('$t0'))*1000))")
    local reaction="" promotion=""
    [[ $name == node-crash || $name == election || $name == partition || $name == fence ]] && read -r reaction promotion < <(lost_to_vip_ms "$before" "$after" "$t0")
    printf '{"scenario":%s,"stack":%s,"nodes":%s,"intervals":{"monitor_promoted":%s,"monitor_unpromoted":%s,"vip_monitor":%s},"primary_before":%s,"primary_after":%s,"standbys_after":%s,"vip_holder":%s,"outage_ms":%s,"rows_lost":%s,"acked":%s,"failed":%s,"double_primary":%s,"max_primaries_seen":%s,"recovery_ms":%s,"healthy_after":%s,"event_ok":%s%s}\n' \
        "$(json_str "$name")" "$(json_str "$stack")" "$(nodes)" \
        "$(json_str "$MONITOR_PROMOTED")" "$(json_str "$MONITOR_UNPROMOTED")" "$(json_str "$VIP_MONITOR")" \
        "$(json_str "$before")" "$(json_str "$after")" "$(json_list "$(standby_nodes)")" "$(json_list "$(vip_holder)")" \
        "$(jfield "$probe" longest_outage_ms)" "$(jfield "$probe" lost_rows)" "$(jfield "$probe" acked)" "$(jfield "$probe" failed)" \
        "$(jfield "$probe" double_primary)" "$(jfield "$probe" max_primaries_seen)" "$recovery_ms" "$healthy_after" "$event_ok" \
        ",\"routing\":$(json_str "$(routing)"),\"routed_to_non_primary\":$(jfield "$probe" routed_to_non_primary),\"via_switches\":$(jfield "$probe" via_switches),\"synchronous_mode\":$(json_str "$sync_mode")${side_json:+,$side_json}${rejoin:+,\"crashed_node_after_boot\":$(json_str "$rejoin")}${streams:+,\"crashed_node_streaming\":$streams}${ec2_json:+,$ec2_json}${cut:+,\"cut_standby\":$(json_str "$cut"),\"election_ok\":$([[ $after != "$cut" && -n $after ]] && echo true || echo false)}${reaction:+,\"lost_to_vip_ms\":$reaction,\"promotion_to_vip_ms\":$promotion}${hang_json:+,$hang_json}${quorum_json:+,$quorum_json}${storm_json:+,$storm_json}${dc:+,\"dc_before\":$(json_str "$dc")},\"probe_connect_timeout_ms\":$(jfield "$probe" connect_timeout_ms)${note:+,\"note\":$(json_str "$note")}"
}

cmd_demo() {
    # Ours first (a newcomer who stops it early has seen paceline), then, with --stack both
    # (the default), PAF + heartbeat IPaddr2 on a fresh lab, and the two side by side.
    local stack=both os=debian12
    while (( $# )); do case $1 in --stack) stack=$2; shift 2 ;; --os) os=$2; shift 2 ;; *) die "demo: unknown argument $1" ;; esac; done
    [[ $os == debian12 || $os == debian13 ]] || die "--os must be debian12 or debian13"
    [[ $os == debian12 ]] || PGVER=17
    [[ $stack == both || $stack == paceline || $stack == reference ]] || die "--stack must be both, paceline or reference"
    need_root
    [[ ! -e $STATE/nodes ]] || die "a lab is already up (paceline-lab down first)"
    trap 'cmd_down' EXIT
    local stacks=("$stack") rows=() st n=0
    [[ $stack == both ]] && stacks=(paceline reference)
    local total=$(( ${#stacks[@]} * 4 + 1 ))
    for st in "${stacks[@]}"; do
        [[ -e $STATE/nodes ]] && cmd_down >/dev/null 2>&1
        echo "[$((++n))/$total] up: 3 nodes ($os: corosync + pacemaker + PostgreSQL $PGVER) in namespaces ..." >&2
        cmd_up --nodes 3 --os "$os"
        echo "[$((++n))/$total] config: $st stack from crm-examples/pgsql-ha.sh ..." >&2
        cmd_config --stack "$st"
        echo "[$((++n))/$total] $st: switchover ..." >&2
        local s1; s1=$(cmd_scenario switchover); echo "$s1"; rows+=("$s1")
        echo "[$((++n))/$total] $st: kill-postgres ..." >&2
        local s2; s2=$(cmd_scenario kill-postgres); echo "$s2"; rows+=("$s2")
    done
    echo "[$total/$total] summary" >&2
    python3 - "${rows[@]}" <<'PY'
import json, sys
rows = [json.loads(a) for a in sys.argv[1:]]
print(f"\n{'scenario':<15}{'stack':<11}{'outage ms':>10}{'rows lost':>10}{'2 primaries':>12}  primary before -> after, VIP")
for r in rows:
    print(f"{r['scenario']:<15}{r['stack']:<11}{r['outage_ms']:>10}{r['rows_lost']:>10}{str(r['double_primary']):>12}  {r['primary_before']} -> {r['primary_after']}, VIP on {','.join(r['vip_holder'])}")
by = {(r['scenario'], r['stack']): r['outage_ms'] for r in rows}
for sc in ("switchover", "kill-postgres"):
    p, ref = by.get((sc, "paceline")), by.get((sc, "reference"))
    if p and ref:
        print(f"{sc}: PAF's write outage / paceline's = {ref / p:.1f}x")
PY
}

verb=${1:-}; shift || true
case $verb in
    up) cmd_up "$@" ;;
    config) cmd_config "$@" ;;
    scenario) cmd_scenario "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    demo) cmd_demo "$@" ;;
    node) i=$1; shift; in_node "$i" "$@" ;;
    facts) cmd_facts ;;
    _node_init) node_init "$1" ;;
    _node_start) node_start "$1" ;;
    _routing_start) routing_start_here "$1" ;;   # inside node I (config)
    _haproxy_cfg) haproxy_cfg "$1" "$2" ;;         # ROUTING N: what config writes (tests/crm_examples.rs)
    # The EC2 power controller's hands (tests/lab/ec2.py): cut the node's power / boot it.
    _power) case $1 in off) power_off "$2" ;; on) node_alive "$2" || boot_node "$2" ;; *) die "_power off|on I" ;; esac ;;
    *) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 2 ;;
esac
