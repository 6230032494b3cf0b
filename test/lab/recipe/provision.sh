#!/bin/sh
# Runs once inside the node's image (systemd-nspawn, no network) to leave it
# in the state a fresh Proxmox VE 9 installation is in (as pve-installer leaves it).
# The Proxmox stand-ins, unit files and key material are already in place.
# Environment: NODE_HOSTNAME NODE_DOMAIN NODE_ADDRESS NODE_PREFIX ROOT_PASSWORD
#              ADMIN_EMAIL SUITE
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
EOF
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

# --- apt: the lab's offline mirror stands in for deb.debian.org ---------------
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<EOF
# pve-baseline lab: offline copy of the Debian packages the wizard installs
# (a real node lists deb.debian.org and security.debian.org here).
Types: deb
URIs: file:/srv/pve-lab-repo
Suites: $SUITE
Components: main
Trusted: yes
EOF
apt-get update -q >/dev/null
# the enterprise repository a fresh PVE 9 node has (pve-manager configs/pve-sources.sources)
cat > /etc/apt/sources.list.d/pve-enterprise.sources <<EOF
Types: deb
URIs: https://enterprise.proxmox.com/debian/pve
Suites: $SUITE
Components: pve-enterprise
Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg
EOF

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

systemctl enable pvedaemon.service pveproxy.service pve-firewall.service >/dev/null 2>&1
