#!/usr/bin/env bash
# Build the Debian package and check it on this machine (issue #12), as root:
#   - cargo deb (cargo-deb, installed if missing) from the binaries of PROFILE (debug by
#     default: CI's build; PROFILE=release for the package one ships), with the man pages
#     and completions `paceline man` / `paceline completions` generate;
#   - its copyright file, packaging/copyright, says the license Cargo.toml names (LICENSE);
#   - dpkg -i; every agent where Pacemaker finds it, `pcs resource describe
#     ocf:paceline:pgsqlms`, `pcs stonith describe fence_paceline_aws`, `man -w` for each page;
#     the package's agents run a 3-node lab (tests/lab/lab.sh, our stack) that the package's
#     `paceline status` says healthy;
#   - dpkg -r: nothing of the package is left on disk; what `paceline install` had put
#     there before is put back;
#   - the RPM (packaging/paceline.spec), made by the same run from the .deb's files: the
#     same files, the license, every agent a link, no rpmlint error (rpm -qp, rpmlint);
#   - on Debian 13 (tests/lab/rootfs.sh's root, when made): dpkg -i, pcs 0.12 describes
#     the agents, dpkg -r leaves nothing; a Debian 13 lab whose nodes install the package
#     (lab up --deb), healthy by its `paceline status`.
# Leaves the .deb in target/debian/ and the RPM in target/rpm/RPMS/. Usage: bash tests/package.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PROFILE=${PROFILE:-debug}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN=target/$TRIPLE/$PROFILE
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb --version 3.8.0
if [[ $PROFILE == release ]]; then cargo build --locked --release --bins; else cargo build --locked --bins; fi
rm -rf target/package && mkdir -p target/package/completions
"$BIN/paceline" man --out target/package/man >/dev/null
gzip -9n target/package/man/man*/*
"$BIN/paceline" completions bash >target/package/completions/paceline
# The agents' links (the executable itself comes from the build: the assets in Cargo.toml).
"$BIN/paceline" install --root target/package/root >/dev/null
rm target/package/root/usr/sbin/paceline target/package/root/usr/lib/paceline/paceline-core
# cargo-deb reads target/release/<bin> from the assets; point it at this profile's binaries.
args=(--no-build --target "$TRIPLE" --fast)
[[ $PROFILE == release ]] || args+=(--profile dev)
deb=$(cargo deb "${args[@]}" 2>&1 | tail -1)
[[ -f $deb ]] || { echo "package.sh: cargo deb did not build a package: $deb" >&2; exit 1; }
echo "package.sh: built $deb ($(du -h "$deb" | cut -f1))"
fail() { echo "package.sh: FAIL: $*" >&2; exit 1; }

# A 3-node lab of our stack run by the package's programs (lab up's arguments: the OS, and
# for Debian 13 the package its nodes install): within a minute of the configuration,
# `paceline status` on a node shows a primary and two streaming standbys, and nothing
# wrong but the one thing a lab without a fence device has (exit 1: fencing disabled; the
# EC2 labs of tests/lab_cluster.rs have fencing). On a lab of its own, always taken down.
LAB=(env LAB_PREFIX=plpk LAB_DIR=/var/lib/paceline-lab-pkg bash tests/lab/lab.sh)
lab_down() { "${LAB[@]}" down >/dev/null 2>&1 || true; }
lab_with_package() {
    local os=$1 out="" rc=1 t
    shift
    local log=target/package/lab-$os.log
    "${LAB[@]}" up --nodes 3 --os "$os" "$@" >"$log" 2>&1 || fail "$os: lab up: $(tail -5 "$log")"
    "${LAB[@]}" config --stack paceline >>"$log" 2>&1 || fail "$os: lab config: $(tail -5 "$log")"
    "${LAB[@]}" node 1 dpkg-query -W -f '${Status} ${Version}\n' paceline | grep -q "^install ok installed $version" ||
        fail "$os: the lab's node runs no installed package paceline $version"
    local healthy
    healthy() {
        (( rc <= 1 )) && [[ $(grep -c "Promoted  *primary" <<<"$out") == 1 && $(grep -c "Unpromoted  *streaming standby" <<<"$out") == 2 ]] &&
            ! grep -E "^(CRITICAL|WARNING)" <<<"$out" | grep -qv "^WARNING: fencing is disabled"
    }
    for t in $(seq 60); do
        rc=0
        out=$("${LAB[@]}" node 1 paceline status 2>&1) || rc=$?
        healthy && break
        sleep 1
    done
    healthy || fail "$os: the package's paceline status on a lab: exit $rc: $out"
    lab_down
    echo "package.sh: $os: a lab runs on the package's agents; its paceline status says healthy"
}

# The RPM (packaging/paceline.spec): the .deb's files, unpacked and packaged again, so both
# hold the same tree by construction; the license where RPM systems keep it. What
# Cargo.toml says of the package (version, description) is passed as macros.
stage=$PWD/target/package/rpm-stage
rm -rf "$stage" "$stage.files" target/rpm
mkdir -p "$stage"
dpkg-deb -x "$deb" "$stage"
install -D -m 644 LICENSE "$stage/usr/share/licenses/paceline/LICENSE"
{
    # The directories that are the package's own; every file and link of the tree.
    for d in usr/lib/paceline usr/lib/ocf/resource.d/paceline usr/share/doc/paceline usr/share/doc/paceline/crm-examples usr/share/doc/paceline/iam usr/share/licenses/paceline; do
        [[ -d $stage/$d ]] || fail "no /$d in the package's tree"
        echo "%dir /$d"
    done
    (cd "$stage" && find . \( -type f -o -type l \) -printf '/%P\n' | sort | sed 's|^/usr/share/licenses/|%license /usr/share/licenses/|')
} >"$stage.files"
cargo_field() { sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" Cargo.toml | head -1; }
version=$(cargo_field version)
description=$(sed -n '/^extended-description = """/,/"""$/p' Cargo.toml | sed -e 's/^extended-description = """//' -e 's/"""$//' -e 's/\\$//' | tr -d '\n')
mkdir -p target/rpm
# The description, wrapped as rpmlint wants it, in place of the spec's @DESCRIPTION@ line.
awk -v d="$(fold -s -w 76 <<<"$description" | sed 's/ *$//')" '$0 == "@DESCRIPTION@" {print d; next} {print}' packaging/paceline.spec >target/rpm/paceline.spec
rpmbuild -bb --quiet --define "_topdir $PWD/target/rpm" --define "pl_stage $stage" --define "pl_version $version" \
    --define "pl_date $(LC_ALL=C date -u '+%a %b %d %Y')" target/rpm/paceline.spec >/dev/null \
    || fail "rpmbuild"
rpm=$(ls target/rpm/RPMS/*/paceline-"$version"-1.*.rpm 2>/dev/null | head -1)
[[ -f $rpm ]] || fail "rpmbuild made no package"
echo "package.sh: built $rpm ($(du -h "$rpm" | cut -f1))"
[[ ${1:-} == --build-only ]] && exit 0

# The RPM holds what the .deb holds (and the license), the agents as links, and rpmlint
# finds no error in it.
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | sort)
rpm_list=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" 2>/dev/null)
rpm_files=$(awk '$1 !~ /^d/ {print $2}' <<<"$rpm_list" | grep -vx /usr/share/licenses/paceline/LICENSE | sort || true)
[[ -n $rpm_files && $deb_files == "$rpm_files" ]] || fail "the RPM's files are not the .deb's: $(diff <(echo "$deb_files") <(echo "$rpm_files") | head -20)"
grep -qx -- '-rw-r--r-- /usr/share/licenses/paceline/LICENSE' <<<"$rpm_list" || fail "no license in the RPM"
while read -r a _ path binary _; do
    grep -qx "l[-rwx]* $path" <<<"$rpm_list" || fail "the RPM has no link $path (agent $a)"
done < <("$BIN/paceline" agents)
lint=$(rpmlint -c packaging/rpmlint.toml "$rpm" 2>&1) || true
errors=$(grep -c ': E: ' <<<"$lint" || true)
(( errors == 0 )) || fail "rpmlint: $lint"
echo "package.sh: RPM ok: the .deb's files and the license, every agent a link, rpmlint: $(tail -1 <<<"$lint")"
# The agents, from the binary's own list (src/registry.rs): name kind path binary page.
mapfile -t agents < <("$BIN/paceline" agents)
(( ${#agents[@]} > 0 )) || fail "paceline agents listed none"
# The pages as the package holds them (a machine whose dpkg excludes /usr/share/man, as
# slim images do, would not install them): each is in the package and renders cleanly.
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
# The copyright file is packaging/copyright as it is, and it says the license Cargo.toml
# names (GPL-2.0-or-later is Debian's GPL-2+), whose text is LICENSE.
cmp -s "$x/usr/share/doc/paceline/copyright" packaging/copyright || fail "the package's copyright file is not packaging/copyright"
grep -qx 'license = "GPL-2.0-or-later"' Cargo.toml && grep -qx 'License: GPL-2+' packaging/copyright \
    && grep -q 'either version 2 of the License, or' packaging/copyright && grep -qx ' *Version 2, June 1991' LICENSE \
    || fail "Cargo.toml's license, packaging/copyright and LICENSE disagree"
pages=(man8/{paceline,paceline-status,paceline-switchover}.8)
for line in "${agents[@]}"; do read -r _ _ _ _ page <<<"$line"; pages+=("$page"); done
for p in "${pages[@]}"; do
    f=$x/usr/share/man/$p.gz
    [[ -f $f ]] || fail "no man page $p in the package"
    warn=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null) || fail "man $p: $warn"
    [[ -z $warn ]] || fail "man $p: roff warnings: $warn"
done
rm -rf "$x"
# What was installed before (README's first command runs `paceline install`) is put back
# after dpkg -r: the test leaves the machine as it found it.
before=$(mktemp -d)
root_mode=$(stat -c %a /)
for line in "${agents[@]}"; do read -r _ _ path _ <<<"$line"; echo "$path"; done >"$before.paths"
printf '%s\n' /usr/sbin/paceline /usr/lib/paceline/paceline-core >>"$before.paths"
had=()
while read -r p; do
    if [[ -e $p || -L $p ]]; then mkdir -p "$before${p%/*}" && cp -a "$p" "$before$p" && had+=("$p"); fi
done <"$before.paths"
dpkg -s paceline >/dev/null 2>&1 && fail "the paceline package is installed already: dpkg -r paceline first"
# File by file: copying the backup's tree onto / would give / the temporary directory's mode.
restore() {
    dpkg -r paceline >/dev/null 2>&1 || true
    while read -r p; do
        if [[ -e $before$p || -L $before$p ]]; then mkdir -p "${p%/*}" && cp -a "$before$p" "$p"; fi
    done <"$before.paths"
    rm -rf "$before" "$before.paths"
}
dpkg -i "$deb" >/dev/null || fail "dpkg -i"
trap restore EXIT
files=$(dpkg -L paceline)
[[ -x /usr/sbin/paceline && -x /usr/lib/paceline/paceline-core ]] || fail "the binaries"
for line in "${agents[@]}"; do
    read -r a kind path binary page <<<"$line"
    [[ -x $path ]] || fail "$kind agent $a not installed at $path"
    [[ $(readlink -f "$path") == "$binary" ]] || fail "$path is not a link to $binary"
    if [[ $kind == resource ]]; then meta=("$path" meta-data); else meta=("$path" -o metadata); fi
    "${meta[@]}" | xmllint --noout - || fail "$a meta-data is not XML"
    name=${page##*/}; name=${name%.*}
    [[ ! -f /usr/share/man/$page.gz ]] || man -w "$name" >/dev/null || fail "man cannot find $name"
done
/usr/sbin/paceline --version | grep -q "^paceline " || fail "paceline --version"
[[ -f /usr/share/bash-completion/completions/paceline ]] || fail "no bash completion"
[[ -f /usr/share/doc/paceline/crm-examples/pgsql-ha.sh && -f /usr/share/doc/paceline/pgsqlms.md && -f /usr/share/doc/paceline/CHANGELOG.md ]] || fail "docs"
pcs resource describe ocf:paceline:pgsqlms | grep -q "synchronous_mode" || fail "pcs resource describe ocf:paceline:pgsqlms"
pcs stonith describe fence_paceline_aws | grep -q "region" || fail "pcs stonith describe fence_paceline_aws"
trap 'lab_down; restore' EXIT
lab_with_package debian12
trap restore EXIT
dpkg -r paceline >/dev/null || fail "dpkg -r"
left=$(while read -r f; do if [[ -f $f || -L $f ]]; then echo "$f"; fi; done <<<"$files")
[[ -z $left ]] || fail "dpkg -r left files behind: $left"
trap - EXIT
restore
[[ $(stat -c %a /) == "$root_mode" ]] || fail "the test changed the mode of / to $(stat -c %a /)"
# Debian 13: the same .deb in an overlay of tests/lab/rootfs.sh's root (tests/run.sh makes
# it first): dpkg -i resolves its dependency there, pcs 0.12 describes the agents, dpkg -r
# leaves nothing. The overlay and its mounts go with the private mount namespace.
if root13=$(bash tests/lab/rootfs.sh trixie 2>/dev/null); then
    t=$(mktemp -d)
    mkdir "$t/upper" "$t/work" "$t/merged"
    unshare --mount --propagation private sh -c "
        set -e
        mount -t overlay overlay -o lowerdir=$root13,upperdir=$t/upper,workdir=$t/work $t/merged
        mount -t proc proc $t/merged/proc
        cp '$deb' $t/merged/tmp/paceline.deb
        chroot $t/merged sh -c '
            set -e
            dpkg -i /tmp/paceline.deb >/dev/null
            pcs resource describe ocf:paceline:pgsqlms | grep -q synchronous_mode
            pcs stonith describe fence_paceline_aws | grep -q region
            paceline --version | grep -q \"^paceline \"
            files=\$(dpkg -L paceline)
            dpkg -r paceline >/dev/null
            for f in \$files; do if [ -f \"\$f\" ] || [ -L \"\$f\" ]; then echo \"left: \$f\"; exit 1; fi; done
        '
    " || fail "Debian 13: the .deb does not install, describe its agents and remove clean"
    rm -rf "$t"
    trap lab_down EXIT
    lab_with_package debian13 --deb "$deb"
    trap - EXIT
    echo "package.sh: ok on Debian 13 too (pcs 0.12 describes the agents; a lab runs on them; dpkg -r leaves nothing)"
fi
for p in "${had[@]}"; do
    [[ -e $p || -L $p ]] || fail "$p was there before the test and is not after it"
done
echo "package.sh: ok: installs, pcs describes the agents, the man pages are found, a lab runs on them, and dpkg -r leaves nothing"
