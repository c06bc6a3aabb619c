#!/usr/bin/env bash
# A Debian root file system for the lab's nodes (docs/lab.md, `lab.sh up --os debian13`):
# debootstrap from the Debian mirror this machine's apt already uses, then the cluster
# stack, PostgreSQL and the reference agents installed by apt inside it. Cached in
# /var/cache/paceline/rootfs/<suite>/ and reused while its package list is the same; each
# lab node mounts it read-only under an overlay of its own.
#
#   tests/lab/rootfs.sh [SUITE]      print the root's path (default suite: trixie)
set -euo pipefail
SUITE=${1:-trixie}
CACHE=${PACELINE_ROOTFS_CACHE:-/var/cache/paceline/rootfs}
# What a Debian 13 node runs: the suite's own Pacemaker, pcs, PostgreSQL and PAF.
PACKAGES="pacemaker pacemaker-cli-utils pcs corosync resource-agents resource-agents-paf
 fence-agents-aws postgresql-17 postgresql-client-17 iproute2 iputils-ping procps util-linux
 libxml2-utils haproxy ca-certificates python3 curl"
root=$CACHE/$SUITE
stamp=$(echo "$SUITE $PACKAGES" | md5sum | cut -c1-16)
if [[ -f $root/.paceline-rootfs && $(cat "$root/.paceline-rootfs") == "$stamp" ]]; then
    echo "$root"; exit 0
fi
(( EUID == 0 )) || { echo "rootfs: must run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
# The mirror: the first Debian archive URI of the host's apt sources (deb822 or one-line).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || { echo "rootfs: no Debian mirror in /etc/apt/sources*" >&2; exit 1; }
tmp=$root.tmp
rm -rf "$tmp"
mkdir -p "$CACHE"
echo "rootfs: debootstrap $SUITE from $mirror" >&2
debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" >"$CACHE/$SUITE.log" 2>&1 \
    || { tail -20 "$CACHE/$SUITE.log" >&2; exit 1; }
# apt inside it resolves what debootstrap's --include cannot (virtual packages). A private
# mount namespace: /proc, /dev and /sys go away with it.
cat >"$tmp/usr/sbin/policy-rc.d" <<'P'
#!/bin/sh
exit 101
P
chmod +x "$tmp/usr/sbin/policy-rc.d"
unshare -m --propagation private sh -c "
    mount -t proc proc '$tmp/proc' && mount --rbind /dev '$tmp/dev' && mount --rbind /sys '$tmp/sys'
    chroot '$tmp' env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 sh -c '
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $(echo $PACKAGES) && apt-get clean'
" >>"$CACHE/$SUITE.log" 2>&1 || { tail -20 "$CACHE/$SUITE.log" >&2; exit 1; }
rm -f "$tmp/usr/sbin/policy-rc.d"
echo "$stamp" >"$tmp/.paceline-rootfs"
rm -rf "$root"
mv "$tmp" "$root"
echo "$root"
