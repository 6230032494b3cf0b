#!/bin/sh
# Runs once inside the node's image (systemd-nspawn, no network) to leave it
# in the state a fresh Proxmox VE 9 installation is in (as pve-installer leaves it).
# The Proxmox stand-ins, unit files and key material are already in place.
# Environment: NODE_HOSTNAME NODE_DOMAIN NODE_ADDRESS NODE_PREFIX ROOT_PASSWORD
#              ADMIN_EMAIL SUITE LAB_INSTALL_DEBS LAB_MIRROR_HOSTS
set -eu
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
fqdn="$NODE_HOSTNAME.$NODE_DOMAIN"

# --- identity and network, as the installer writes them --------------------
echo "$NODE_HOSTNAME" > /etc/hostname
cat > /etc/hosts <<EOF
127.0.0.1 localhost.localdomain localhost
$NODE_ADDRESS $fqdn $NODE_HOSTNAME

# The following lines are desirable for IPv6 capable hosts

::1     ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
ff02::3 ip6-allhosts

# pve-baseline lab: the package servers, inside the node's own namespace (pve-lab-mirror.service)
EOF
echo "$LAB_MIRROR_HOSTS" | tr ',' '\n' >> /etc/hosts
# The lab configures vmbr0 from outside (it is a veth end, not a bridge) and
# gives the node no gateway: nothing can leave the lab's veth pair.
mkdir -p /etc/network/interfaces.d
cat > /etc/network/interfaces <<EOF
auto lo
iface lo inet loopback

iface eno1 inet manual

auto vmbr0
iface vmbr0 inet static
	address $NODE_ADDRESS/$NODE_PREFIX
	bridge-ports eno1
	bridge-stp off
	bridge-fd 0

source /etc/network/interfaces.d/*
EOF
# no name server: lookups fail locally instead of leaving the node
printf 'search %s\n' "$NODE_DOMAIN" > /etc/resolv.conf
tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id

# --- root and sshd ------------------------------------------------------------
echo "root:$ROOT_PASSWORD" | chpasswd
# exactly the installer's edit (Proxmox/Install.pm); the rest is Debian's default
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config
chmod 700 /root/.ssh
chmod 600 /root/.ssh/id_rsa
chmod 644 /root/.ssh/id_rsa.pub
# setup_rootsshconfig (pve-cluster Cluster/Setup.pm)
printf 'Ciphers aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n' > /root/.ssh/config
chmod 640 /root/.ssh/config

# --- apt: the repositories a fresh PVE 9 node lists -------------------------
# Served by pve-lab-mirror under their real names (/etc/hosts above); signed
# with the lab's keys, which build.ts put into the keyrings named here.
update-ca-certificates >/dev/null 2>&1
rm -f /etc/apt/sources.list
# what the installer writes (Proxmox installer, trixie)
cat > /etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: http://deb.debian.org/debian/
Suites: $SUITE $SUITE-updates
Components: main contrib non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.debian.org/debian-security/
Suites: $SUITE-security
Components: main contrib non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# the enterprise repositories a fresh PVE 9 node has (pve-manager configs/pve-sources.sources; ceph.sources)
cat > /etc/apt/sources.list.d/pve-enterprise.sources <<EOF
Types: deb
URIs: https://enterprise.proxmox.com/debian/pve
Suites: $SUITE
Components: pve-enterprise
Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg
EOF
cat > /etc/apt/sources.list.d/ceph.sources <<EOF
Types: deb
URIs: https://enterprise.proxmox.com/debian/ceph-squid
Suites: $SUITE
Components: enterprise
Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg
EOF

# version N of the lab's Proxmox packages, as the installer leaves them
# shellcheck disable=SC2086
dpkg -i $LAB_INSTALL_DEBS >/dev/null
# a configuration file the administrator changed (the upgrade keeps it: pmconffile)
printf 'bwlimit: 100000\n' >> /etc/vzdump.conf

# the package lists, as a node that has run `apt update` once has them (the
# enterprise repositories fail with 401: no subscription)
ip link set lo up
ready=/run/pve-lab-mirror.ready
rm -f "$ready"
PVE_LAB_MIRROR_READY_FILE="$ready" /usr/lib/pve-baseline-lab/pve-lab-mirror.mjs >/dev/null &
mirror=$!
i=0
while [ ! -s "$ready" ]; do
	i=$((i + 1))
	if [ "$i" -ge 100 ]; then
		echo "pve-lab-mirror did not start" >&2
		exit 1
	fi
	sleep 0.1
done
apt-get update -q >/dev/null 2>&1 || true
kill "$mirror"
wait "$mirror" 2>/dev/null || true
rm -f "$ready"
if ! apt-cache policy less | grep -q 'Candidate: .*+deb13u'; then
	echo "the Debian-Security package lists are missing" >&2
	exit 1
fi

# --- /etc/pve as the installer and the first pveproxy start leave it ---------
cd /etc/pve
printf 'user:root@pam:1:0:::%s::\n' "$ADMIN_EMAIL" > user.cfg
printf 'keyboard: en-us\n' > datacenter.cfg
cat > storage.cfg <<EOF
dir: local
	path /var/lib/vz
	content iso,vztmpl,backup

lvmthin: local-lvm
	thinpool data
	vgname pve
	content rootdir,images

EOF
mkdir -p priv/lock priv/acme firewall ha mapping sdn virtual-guest \
  "nodes/$NODE_HOSTNAME/lxc" "nodes/$NODE_HOSTNAME/qemu-server" "nodes/$NODE_HOSTNAME/openvz" "nodes/$NODE_HOSTNAME/priv"
ln -sfn "nodes/$NODE_HOSTNAME" local
ln -sfn "nodes/$NODE_HOSTNAME/lxc" lxc
ln -sfn "nodes/$NODE_HOSTNAME/qemu-server" qemu-server
ln -sfn "nodes/$NODE_HOSTNAME/openvz" openvz
mkdir -p /var/lib/vz/dump /var/lib/vz/images /var/lib/vz/template/iso /var/lib/vz/template/cache
# pmxcfs: everything root:www-data; 0640/0755, 0600/0700 under priv/
chown -R -h root:www-data /etc/pve
find /etc/pve -type d -exec chmod 0755 {} +
find /etc/pve -type f -exec chmod 0640 {} +
find /etc/pve/priv "/etc/pve/nodes/$NODE_HOSTNAME/priv" -type d -exec chmod 0700 {} +
find /etc/pve/priv "/etc/pve/nodes/$NODE_HOSTNAME/priv" -type f -exec chmod 0600 {} +
cd /

# pveproxy's ExecStartPre: authorized_keys into /etc/pve/priv, symlinked from /root/.ssh
pvecm updatecerts --silent

# config.db as the installer's first pmxcfs start leaves it: the pve-cluster
# stand-in (standins/pmxcfs.ts) fills it from /etc/pve once and closes it
/usr/lib/pve-baseline-lab/pmxcfs.mjs --oneshot

# corosync as a fresh node has it: installed, no configuration (pvecm create /
# add writes /etc/corosync/corosync.conf and authkey); its unit waits for them
rm -f /etc/corosync/corosync.conf /etc/corosync/authkey

systemctl enable pve-cluster.service pvedaemon.service pveproxy.service pve-firewall.service pve-lab-mirror.service pve-lab-kernel.service >/dev/null 2>&1
