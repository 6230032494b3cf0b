#!/bin/sh
# Runs once inside the freshly debootstrapped rootfs (systemd-nspawn, host
# network: Debian's archive only). Prepares what every lab node shares:
# locale, and the offline copy of the Debian packages the wizard installs
# (the pool of the lab's deb.debian.org, which build.ts indexes and signs).
# Argument: the space-separated offline package list.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# en_US.UTF-8, as a Proxmox installer sets it up
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
locale-gen >/dev/null
echo 'LANG=en_US.UTF-8' > /etc/default/locale

# Download (never install) the offline packages and everything they pull in
# on top of this base, recommends included, the way `apt-get install` on the
# node will want them.
apt-get update -q
apt-get clean
# shellcheck disable=SC2086
apt-get install -y -q --download-only $1
pool=/srv/pve-lab-repo/deb.debian.org/debian/pool/main
mkdir -p "$pool"
mv /var/cache/apt/archives/*.deb "$pool"/
# the installed `less` too: build.ts re-versions it for the lab's Debian-Security
# (a stable update) and unstable (the upgrade that removes proxmox-ve)
(cd "$pool" && apt-get download -q less)
apt-get clean
rm -rf /var/lib/apt/lists/* /etc/apt/sources.list
