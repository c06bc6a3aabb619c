#!/usr/bin/env bash
# pgsqlms's real-PostgreSQL tests (tests/pgsqlms_local.rs: start, stop, promote, demote,
# monitor, rewind, synchronous mode, slots, the state service's answers, every pg_control
# state, `paceline check`'s PostgreSQL rules) on each PostgreSQL major besides Debian 12's 15, which the main `cargo test` run
# covers. The programs come from tests/postgresql.sh. A failure names its major.
#
#   tests/pg_majors.sh [MAJOR ...]     (default: every major but 15)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
majors=${*:-$(bash tests/postgresql.sh majors | grep -vx 15)}
failed=
for major in $majors; do
    bindir=$(bash tests/postgresql.sh "$major")
    echo "== PostgreSQL $major ($("$bindir/postgres" --version)): tests/pgsqlms_local.rs"
    if ! PACELINE_PG_BINDIR=$bindir cargo test --locked --test pgsqlms_local -- --test-threads=4; then
        echo "== PostgreSQL $major: FAILED (tests/pgsqlms_local.rs)" >&2
        failed="$failed $major"
    fi
done
if [ -n "$failed" ]; then
    echo "pg_majors: pgsqlms_local failed on PostgreSQL$failed" >&2
    exit 1
fi
echo "pg_majors: pgsqlms_local passed on PostgreSQL $(echo $majors)"
