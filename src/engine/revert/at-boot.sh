#!/bin/sh
# pve-baseline: at boot, revert every change that was never confirmed, before
# the services start. Installed as <state>/revert/at-boot.sh and run by
# pve-baseline-revert-at-boot.service; each pending (or interrupted) revert has
# its program <id>.sh and its data <id>.data next to this file.
#
# A revert of files in /etc/pve (the firewall, users, TFA) cannot run this
# early on Proxmox VE: /etc/pve is pmxcfs's view of config.db, mounted only
# when pve-cluster.service has started, and ordering this unit after it would
# be a cycle (pve-cluster comes after basic.target; this unit is before
# sockets.target). So this run ("early") leaves those to a second run
# ("cluster"), queued with systemd-run after pve-cluster.service and before
# the services that read those files, and before sshd: a revert may hold
# sshd's files too (root's authorized_keys links into /etc/pve).
case $0 in
  */*) DIR=${0%/*} ;;
  *) DIR=. ;;
esac
RUN=${1:-early}
# Tests point these elsewhere; systemd's unit does not set them.
CLUSTER_UNITS=${PVE_BASELINE_CLUSTER_UNITS:-/lib/systemd/system/pve-cluster.service /usr/lib/systemd/system/pve-cluster.service /etc/systemd/system/pve-cluster.service}
SYSTEMD_RUN=${PVE_BASELINE_SYSTEMD_RUN:-systemd-run}

has_cluster_fs() {
  for unit in $CLUSTER_UNITS; do
    [ -e "$unit" ] && return 0
  done
  return 1
}

needs_cluster_fs() {
  grep -qx "NEEDS_CLUSTER_FS='1'" "$DIR/$1.data" 2>/dev/null
}

revert_one() {
  if [ -f "$DIR/$1.sh" ]; then
    /bin/sh "$DIR/$1.sh" boot
  else
    echo "pve-baseline: pending revert $1 has no program ($DIR/$1.sh)" >&2
  fi
}

deferred=''
for mark in "$DIR"/pending/*; do
  [ -f "$mark" ] || continue
  id=${mark##*/}
  id=${id%.firing}
  case $RUN in
    early)
      if needs_cluster_fs "$id" && has_cluster_fs; then
        deferred="$deferred $id"
        continue
      fi
      ;;
    cluster) needs_cluster_fs "$id" || continue ;;
  esac
  revert_one "$id"
done

if [ -n "$deferred" ]; then
  if ! "$SYSTEMD_RUN" --no-block --quiet --unit=pve-baseline-revert-cluster-fs \
    --property=DefaultDependencies=no --property=After=pve-cluster.service \
    --property=Before=pve-firewall.service --property=Before=pvedaemon.service \
    --property=Before=pveproxy.service --property=Before=ssh.service --property=Before=sshd.service \
    --property=Before=shutdown.target \
    --property=Conflicts=shutdown.target /bin/sh "$DIR/at-boot.sh" cluster; then
    # Better now, into whatever /etc/pve is, than never.
    echo "pve-baseline: could not queue the reverts of /etc/pve after pve-cluster; reverting them now" >&2
    for id in $deferred; do
      revert_one "$id"
    done
  fi
fi
exit 0
