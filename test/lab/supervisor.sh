#!/bin/bash
# pve-baseline lab supervisor: keeps the node's systemd-nspawn running across
# reboots, like systemd-nspawn@.service's RestartForceExitStatus=133 (nspawn
# exits 133 when the node reboots). Stops when nspawn exits any other way
# (poweroff, crash) or when told to (TERM, or the stop flag file).
# Usage: supervisor.sh RUN_DIR NSPAWN_ARGS...
set -u
run_dir=$1
shift
stop=0
child=
on_term() {
  stop=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap on_term TERM INT HUP
echo $$ >"$run_dir/supervisor.pid"
while [ "$stop" = 0 ] && [ ! -e "$run_dir/stop" ]; do
  systemd-nspawn "$@" </dev/null &
  child=$!
  echo "$child" >"$run_dir/nspawn.pid"
  echo "$(date +%s.%N) start nspawn=$child" >>"$run_dir/supervisor.log"
  while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  echo "$(date +%s.%N) exit nspawn=$child rc=$rc" >>"$run_dir/supervisor.log"
  child=
  [ "$rc" = 133 ] || break
done
rm -f "$run_dir/nspawn.pid" "$run_dir/supervisor.pid"
