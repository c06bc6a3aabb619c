#!/usr/bin/env bash
# Routing checks under a storm: ocf:paceline:pgsql-state's service against the seed demo's
# psql-based pgsql-state, side by side in one run, on one throw-away PostgreSQL 15.
#
#   bash tests/lab/bench_state.sh [--rate 10000] [--duration 30] [--idle 5] [--concurrency 100] [--out FILE]
#
# As root. Both services read the same instance (initdb in a temp dir, its own socket
# directory and port, peer authentication) and are measured one after the other, never at
# once, by `paceline-lab storm` (src/lab/storm.rs: a new TCP connection per check, as
# HAProxy's; one JSON line per run). Each service runs in a PID namespace of its own
# (`unshare --pid`), and so does PostgreSQL: every pid allocated there is a fork (or a
# thread) of that service, counted exactly from the namespace's ns_last_pid; CPU is read
# from /proc (user + system, with the children each has waited for: the seed's shells and
# psql; PostgreSQL's backends). Addresses: 127.0.0.1 only.
#
#   ours: `pgsql-state serve` (what the agent's start launches), http_port and tcp_port on
#         127.0.0.1; checks GET /health (200), GET /primary (503: no cluster here, so not the
#         primary) and the TCP line (standby, for the same reason).
#   seed: systemd-socket-activate --inetd -a (Accept=yes, one process per connection)
#         running tests/lab/seed-pgsql-state.sh, which forks psql; its TCP line (production).
#
# systemd itself cannot run here (no systemd as PID 1), so the seed runs without the trigger
# limit a real socket unit has (systemd.socket(5): TriggerLimitIntervalSec= defaults to 2 s
# and TriggerLimitBurst= to 200 for Accept=yes sockets; beyond it the socket unit is put
# into a failed state and stops accepting): the figures are the seed's own best rate and
# cost. The binaries: the release build (cargo build --release), or PACELINE_BIN=dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
RATE=10000 DURATION=30 IDLE=5 CONC=100 OUT=
while [ $# -gt 0 ]; do
    case $1 in
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --concurrency) CONC=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "usage: $0 [--rate N] [--duration S] [--idle S] [--concurrency N] [--out FILE]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
BIN=${PACELINE_BIN:-$SRC/target/x86_64-unknown-linux-gnu/release}
PGBIN=/usr/lib/postgresql/15/bin
for b in "$BIN/paceline-core" "$PGBIN/postgres"; do
    [ -x "$b" ] || { echo "missing $b (cargo build --release, or PACELINE_BIN=dir)" >&2; exit 1; }
done
# The agent is paceline-core under its name (src/install.rs).
mkdir -p "$BIN/agents" && ln -sfn ../paceline-core "$BIN/agents/pgsql-state"
for t in systemd-socket-activate psql unshare nsenter setpriv runuser; do
    command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done

# Ports of this run (loopback), below the ephemeral range (32768-) so that no client's
# connection can hold one; PostgreSQL's serves only its socket directory.
base=$((20000 + $$ % 1000 * 4))
PGPORT=$base HTTP_PORT=$((base + 1)) TCP_PORT=$((base + 2)) SEED_PORT=$((base + 3))
work=$(mktemp -d /tmp/paceline-bench-state.XXXXXX)
chmod 755 "$work"
started=()   # pids of the unshare processes we started
cleanup() {
    local p
    for p in "${started[@]}"; do
        # The service (the namespace's init) first, then its unshare; --kill-child does the rest.
        for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
    done
    for p in "${started[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date -u +%T)" "$*" >&2; }

# The pid of the process in a namespace started by `unshare --fork` ($1), skipping wrappers
# whose command name is in $2 (e.g. runuser), by the namespace's process tree.
inner_pid() {
    local p=$1 skip=${2:-} c
    for _ in $(seq 100); do
        c=$(cat "/proc/$p/task/$p/children" 2>/dev/null | awk '{print $1}')
        if [ -n "$c" ]; then
            if [ -n "$skip" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$skip" ]; then
                p=$c
                continue
            fi
            echo "$c"
            return 0
        fi
        sleep 0.05
    done
    echo "no process started under $1" >&2
    return 1
}

storm() { "$BIN/paceline-lab" storm "$@"; }

# --- PostgreSQL 15, throw-away, in its own PID namespace --------------------------------
mkdir -p "$work/sock" && chown -R postgres: "$work"
log "initdb in $work/data"
(cd / && runuser -u postgres -- "$PGBIN/initdb" -D "$work/data" --auth-local=peer --auth-host=reject >/dev/null)
cat >>"$work/data/postgresql.conf" <<EOF
listen_addresses = ''
port = $PGPORT
unix_socket_directories = '$work/sock'
# Above the storm's concurrency, so that the seed's failures (if any) are its own and not
# "too many clients" (PostgreSQL's default of 100 would be, at 256 checks in flight).
max_connections = 300
fsync = off
EOF
unshare --pid --fork --kill-child setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$PGBIN/postgres" -D "$work/data" >"$work/postgres.log" 2>&1 &
started+=($!)
pg_ns=$!
for _ in $(seq 100); do
    "$PGBIN/pg_isready" -q -h "$work/sock" -p "$PGPORT" && break
    sleep 0.1
done
"$PGBIN/pg_isready" -q -h "$work/sock" -p "$PGPORT" || { cat "$work/postgres.log" >&2; exit 1; }
PG_PID=$(inner_pid "$pg_ns")
log "PostgreSQL 15 ready (pid $PG_PID, socket $work/sock, port $PGPORT)"

results=$work/results.jsonl
: >"$results"
run() { # label, storm args...
    local label=$1; shift
    log "storm: $label"
    storm --label "$label" "$@" | tee -a "$results" >&2
}

# --- ours --------------------------------------------------------------------------------
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=pgsql-state \
    HA_LOGFACILITY=none HA_LOGFILE="$work/state.log" HA_RSCTMP="$work" \
    OCF_RESKEY_pghost="$work/sock" OCF_RESKEY_pgport="$PGPORT" OCF_RESKEY_listen_address=127.0.0.1 \
    OCF_RESKEY_http_port="$HTTP_PORT" OCF_RESKEY_tcp_port="$TCP_PORT" \
    unshare --pid --fork --kill-child --mount-proc "$BIN/agents/pgsql-state" serve &
started+=($!)
ours_ns=$!
OURS=$(inner_pid "$ours_ns")
for _ in $(seq 100); do
    storm --addr "127.0.0.1:$HTTP_PORT" --path /health --rate 1 --duration-s 0.5 --concurrency 1 2>/dev/null | grep -q '"ok":1' && break
    sleep 0.1
done
log "ours: pgsql-state serve, pid $OURS (http 127.0.0.1:$HTTP_PORT, tcp 127.0.0.1:$TCP_PORT)"
# At most CONC checks in flight: by default below the service's listen backlog (128), so
# a storm measures the service, not SYNs dropped from a full accept queue.
# From 256 addresses: the service serves one client (address) 32 connections at once at most
# (docs/state-service.md), and 10,000 checks a second are many load balancers' checks.
FROM=127.0.3.0/24
W=(--watch "service=$OURS" --watch "postgres=$PG_PID" --idle-s "$IDLE" --concurrency "$CONC" --from "$FROM")
run ours-latency-http --addr "127.0.0.1:$HTTP_PORT" --path /health --rate 50 --duration-s 5 --concurrency 1
run ours-latency-tcp --addr "127.0.0.1:$TCP_PORT" --expect-line standby --rate 50 --duration-s 5 --concurrency 1
run ours-storm-http-health --addr "127.0.0.1:$HTTP_PORT" --path /health --rate "$RATE" --duration-s "$DURATION" "${W[@]}"
run ours-storm-http-primary --addr "127.0.0.1:$HTTP_PORT" --path /primary --expect-status 503 --rate "$RATE" --duration-s "$DURATION" "${W[@]}"
run ours-storm-tcp --addr "127.0.0.1:$TCP_PORT" --expect-line standby --rate "$RATE" --duration-s "$DURATION" "${W[@]}"
kill -TERM "$OURS"
wait "$ours_ns" || true

# --- the seed ----------------------------------------------------------------------------
# Its psql: the real binary by default, the seed's cheapest case (SEED_PSQL=psql takes
# Debian's pg_wrapper, a Perl script in front of it, as `psql` on PATH would).
SEED_PSQL=${SEED_PSQL:-$PGBIN/psql}
env PGHOST="$work/sock" PGPORT="$PGPORT" PSQL="$SEED_PSQL" unshare --pid --fork --kill-child --mount-proc \
    runuser -u postgres -- systemd-socket-activate --inetd -a -E PGHOST -E PGPORT -E PSQL -l "127.0.0.1:$SEED_PORT" \
    "$SRC/tests/lab/seed-pgsql-state.sh" 2>"$work/seed.log" &
started+=($!)
seed_ns=$!
SEED=$(inner_pid "$seed_ns" runuser)
for _ in $(seq 100); do
    storm --addr "127.0.0.1:$SEED_PORT" --expect-line production --rate 1 --duration-s 0.5 --concurrency 1 2>/dev/null | grep -q '"ok":1' && break
    sleep 0.1
done
log "seed: systemd-socket-activate, pid $SEED (tcp 127.0.0.1:$SEED_PORT, psql: $SEED_PSQL)"
run seed-latency-tcp --addr "127.0.0.1:$SEED_PORT" --expect-line production --rate 20 --duration-s 10 --concurrency 1
# Its best: as fast as it goes with 4 checks in flight (2 vCPUs), every check answered
# within the window, so its CPU and forks per check are exact.
run seed-best-tcp --addr "127.0.0.1:$SEED_PORT" --expect-line production --rate "$RATE" --duration-s 15 \
    --watch "service=$SEED" --watch "postgres=$PG_PID" --idle-s "$IDLE" --concurrency 4
# The storm: as many in flight as ours was given. The handlers of checks that timed out go
# on running after the window (the seed cannot know the client left): its per-check
# figures here are a lower bound; the row above has the exact ones.
run seed-storm-tcp --addr "127.0.0.1:$SEED_PORT" --expect-line production --rate "$RATE" --duration-s "$DURATION" \
    --watch "service=$SEED" --watch "postgres=$PG_PID" --idle-s "$IDLE" --concurrency "$CONC" --from "$FROM"

# --- the table ---------------------------------------------------------------------------
python3 - "$results" "$RATE" "$DURATION" "$CONC" "$SEED_PSQL" >"$work/table.md" <<'EOF'
import json, sys, datetime, os
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["label"]] = r
rate, duration, conc, psql = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def w(r, name, key):
    return (r["watch"].get(name) or {}).get(key)
def fmt(v, nd=2):
    if v is None:
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)
def ratio(a, b):
    return "–" if not a or not b else f"{a / b:.0f}×"
u = os.uname()
print(f"State checks, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, kernel {u.release}, offered {int(rate):,}/s for {duration} s, "
      f"{conc} in flight at most; a new TCP connection per check; per-check figures: the storm's CPU and pids "
      f"minus the idle window's rate, divided by the checks sent; the seed's psql: {psql}.\n")
print("| run | checks sent | ok | failed | achieved /s | p50 ms | p99 ms | max ms | service CPU ms / 1000 checks | PostgreSQL CPU ms / 1000 | service forks / check | PostgreSQL forks / check | service peak RSS MB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label in ["ours-latency-http", "ours-latency-tcp", "seed-latency-tcp", "ours-storm-http-health", "ours-storm-http-primary", "ours-storm-tcp", "seed-best-tcp", "seed-storm-tcp"]:
    r = rows.get(label)
    if not r:
        continue
    l = r["latency_ms"]
    hwm = w(r, "service", "vmhwm_kb")
    print(f"| {label} ({r['check']}) | {r['sent']} | {r['ok']} | {r['failed']} | {r['achieved_rate']:.0f} | {fmt(l['p50'], 3)} | {fmt(l['p99'], 3)} | {fmt(l['max'], 1)} "
          f"| {fmt(w(r, 'service', 'cpu_ms_per_1000'), 1)} | {fmt(w(r, 'postgres', 'cpu_ms_per_1000'), 1)} | {fmt(w(r, 'service', 'forks_per_check'), 3)} "
          f"| {fmt(w(r, 'postgres', 'forks_per_check'), 3)} | {'–' if not hwm or label.startswith('seed') else f'{hwm / 1024:.1f}'} |")
o, s, st = rows.get("ours-storm-tcp"), rows.get("seed-best-tcp"), rows.get("seed-storm-tcp")
ol, sl = rows.get("ours-latency-tcp"), rows.get("seed-latency-tcp")
if o and s:
    cpu = lambda r: (w(r, "service", "cpu_ms_per_1000") or 0) + (w(r, "postgres", "cpu_ms_per_1000") or 0)
    print("\nRatios, the TCP line (seed / ours, same check, same instance; seed figures from its best run):\n")
    print(f"- CPU per check, service + its children + PostgreSQL: {cpu(s):.0f} / {cpu(o):.1f} ms per 1000 = {ratio(cpu(s), cpu(o))}")
    print(f"- throughput: the seed's best {s['achieved_rate']:.0f} checks/s (4 in flight), ours {o['achieved_rate']:.0f} under the storm = {ratio(o['achieved_rate'], s['achieved_rate'])}")
    if st:
        print(f"- under the storm ({st['concurrency']} in flight, {st['rate']}/s offered): the seed answered {st['ok']} of {st['sent']} checks in time ({st['failed']} failed), ours {o['ok']} of {o['sent']} ({o['failed']} failed)")
    if ol and sl:
        print(f"- latency of one check alone (p50): {sl['latency_ms']['p50']:.3f} / {ol['latency_ms']['p50']:.3f} ms = {ratio(sl['latency_ms']['p50'], ol['latency_ms']['p50'])}")
    print(f"- forks per check: seed {fmt(w(s, 'service', 'forks_per_check'), 2)} (+ {fmt(w(s, 'postgres', 'forks_per_check'), 2)} in PostgreSQL), ours {fmt(w(o, 'service', 'forks_per_check'), 3)}")
EOF
cat "$work/table.md"
if [ -n "$OUT" ]; then
    { cat "$work/table.md"; echo; echo '```'; cat "$results"; echo '```'; } >"$OUT"
    log "written to $OUT"
fi
