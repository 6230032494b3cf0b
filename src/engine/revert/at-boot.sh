#!/bin/sh
# pve-baseline: at boot, revert every change that was never confirmed, before
# the services start. Installed as <state>/revert/at-boot.sh and run by
# pve-baseline-revert-at-boot.service; each pending (or interrupted) revert has
# its program <id>.sh next to this file.
case $0 in
  */*) DIR=${0%/*} ;;
  *) DIR=. ;;
esac
for mark in "$DIR"/pending/*; do
  [ -f "$mark" ] || continue
  id=${mark##*/}
  id=${id%.firing}
  if [ -f "$DIR/$id.sh" ]; then
    /bin/sh "$DIR/$id.sh" boot
  else
    echo "pve-baseline: pending revert $id has no program ($DIR/$id.sh)" >&2
  fi
done
exit 0
