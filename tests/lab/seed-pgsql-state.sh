#!/bin/bash
# The seed demo's "pgsql-state" handler, rebuilt for the lab and the benchmarks: what PAF's
# HAProxy demo ran per connection behind a systemd socket (Accept=yes) on :5431. One psql
# per check asks PostgreSQL alone whether it is in recovery, and one line goes back:
# production (not in recovery) or standby. That is the behaviour ocf:paceline:pgsql-state's
# tcp_port replaces (it answers from a snapshot of PostgreSQL *and* the cluster, no fork).
#
# Run as the systemd socket would, one process per connection on stdin/stdout:
#   runuser -u postgres -- systemd-socket-activate --inetd -a -l ADDR:5431 tests/lab/seed-pgsql-state.sh
# PGHOST / PGPORT select the instance (default /run/postgresql, 5432); PSQL the client
# (default: psql on PATH, which on Debian is pg_wrapper, a Perl script that execs the real
# one: ~4x the CPU of /usr/lib/postgresql/15/bin/psql started directly).
# Anything but a clear answer (PostgreSQL down, psql failing) prints nothing: HAProxy's
# `tcp-check expect string` then fails, as it did with the seed.
r=$("${PSQL:-psql}" -X -A -t -w -h "${PGHOST:-/run/postgresql}" -p "${PGPORT:-5432}" -d postgres -c "select pg_is_in_recovery()" 2>/dev/null)
case $r in
    f) echo production ;;
    t) echo standby ;;
esac
