#!/bin/sh
# pve-baseline: the revert the node owns.
#
# pve-baseline installs this program as <state>/revert/<id>.sh before a change
# that could cut access, next to <id>.data: what to put back (paths,
# checksums, modes, owners) and the commands to run afterwards, every value
# single-quoted. It puts every file back byte for byte, runs the cleanup and
# the reloads, records what it did and disarms itself. Plain sh on purpose: it
# must work with nothing else installed and nobody watching.
#
#   sh ID.sh                timer: reverts only while the change is pending
#   sh ID.sh after SECONDS  sleeper (no systemd): detaches, waits, then as the timer
#   sh ID.sh boot           boot hook: reverts a pending change before the services start
#   sh ID.sh now            revert at once, pending or not
#   sh ID.sh files          put the files back at once, reload nothing (nothing was activated)
#
# Safe to run twice: a second run finds nothing pending (timer, boot) or
# restores the same bytes again (now, files).
#
# Links: in a directory only root can change, a link root owns is written
# through (on Proxmox root's authorized_keys links into /etc/pve). Anywhere a
# user can change (an admin's ~/.ssh), nothing is followed: the file is put
# back as that user, as a new file renamed over the name, and a planted link
# is replaced or removed itself, never its target.
set -u
umask 077
# The caller's PATH first (a caller may choose its tools), then the usual places (a timer's PATH may be bare).
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH

MODE=${1:-timer}
case $MODE in
  timer | boot | now | files) ;;
  after)
    case ${2:-} in
      '' | *[!0-9]*) echo "usage: sh $0 after SECONDS" >&2; exit 2 ;;
    esac
    exec </dev/null >/dev/null 2>&1
    sleep "$2"
    MODE=timer
    ;;
  *) echo "usage: sh $0 [timer | after SECONDS | boot | now | files]" >&2; exit 2 ;;
esac

case $0 in
  *.sh) DATA=${0%.sh}.data ;;
  *) DATA=$0.data ;;
esac

# What the data file sets (empty until it is read).
ID='' MARK='' FIRING='' PENDING_DIR='' RESULT='' LOCK='' TIMER='' BOOT_UNIT='' BOOT_WANTS='' SYSTEMCTL=no
FILES=0 CLEANUPS=0 RELOADS=0 LAST_RESORTS=0
FAILED='' got=''
NL='
'

# The data is code to sh: read only a regular file this account owns and nobody else can write.
if [ -L "$DATA" ] || [ ! -f "$DATA" ]; then
  echo "pve-baseline revert: $DATA is missing; nothing was reverted" >&2
  exit 1
fi
data_stat=$(stat -c '%u %A' -- "$DATA") || exit 1
case $data_stat in
  "$(id -u) "?????w* | "$(id -u) "????????w*) echo "pve-baseline revert: $DATA is writable by others; not read" >&2; exit 1 ;;
  "$(id -u) "*) ;;
  *) echo "pve-baseline revert: $DATA belongs to another account; not read" >&2; exit 1 ;;
esac
# shellcheck source=/dev/null
. "$DATA"
for required in "$ID" "$MARK" "$FIRING" "$PENDING_DIR" "$RESULT" "$LOCK"; do
  if [ -z "$required" ]; then
    echo "pve-baseline revert: $DATA is incomplete; nothing was reverted" >&2
    exit 1
  fi
done
for count in "$FILES" "$CLEANUPS" "$RELOADS" "$LAST_RESORTS"; do
  case $count in
    '' | *[!0-9]*) echo "pve-baseline revert: $DATA has a bad count ($count); nothing was reverted" >&2; exit 1 ;;
  esac
done

say() {
  echo "pve-baseline revert $ID: $*"
  if command -v logger >/dev/null 2>&1; then logger -t pve-baseline -- "revert $ID: $*" 2>/dev/null || true; fi
}

fail() {
  say "FAILED: $*"
  FAILED="$FAILED$*$NL"
}

# get NAME: the data's variable NAME into $got. NAME is made here from fixed words and counters, never from data.
get() {
  eval "got=\${$1-}"
}

sha_of() {
  sha_out=$(sha256sum <"$1") || return 1
  echo "${sha_out%% *}"
}

# sha_in CHANGER FILE: the checksum of FILE, read as the account that can change its directory.
sha_in() {
  case $1 in
    root) sha_of "$2" ;;
    *)
      si_out=$(as_user "${1%%:*}" "${1#*:}" sha256sum -- "$2") || return 1
      echo "${si_out%% *}"
      ;;
  esac
}

# parent_of PATH: its directory, as written.
parent_of() {
  case $1 in
    */*) po=${1%/*}; [ -n "$po" ] || po=/ ;;
    *) po=. ;;
  esac
  echo "$po"
}

# changer_of DIR (a resolved path): "root" when only root can change DIR and the
# directories above it (a sticky directory such as /tmp keeps others from
# replacing root's entries); "UID:GID" when one other account can (it owns some
# of them, and nobody else can write them); "many" otherwise.
changer_of() {
  co_dir=$1
  co_user=''
  while :; do
    co_stat=$(stat -c '%u %g %A' -- "$co_dir") || { echo many; return; }
    co_uid=${co_stat%% *}
    co_rest=${co_stat#* }
    co_gid=${co_rest%% *}
    co_perm=${co_rest#* }
    case $co_perm in
      ?????w???[tT] | ????????w[tT]) [ "$co_uid" = 0 ] || { echo many; return; } ;;
      ?????w* | ????????w*) echo many; return ;;
    esac
    if [ "$co_uid" != 0 ]; then
      if [ -z "$co_user" ]; then
        co_user=$co_uid:$co_gid
      elif [ "${co_user%%:*}" != "$co_uid" ]; then
        echo many
        return
      fi
    fi
    [ "$co_dir" = / ] && break
    co_dir=$(parent_of "$co_dir")
  done
  echo "${co_user:-root}"
}

# as_user UID GID COMMAND...: run it as that account, with no other group and no privilege.
as_user() {
  au_uid=$1 au_gid=$2
  shift 2
  setpriv --reuid="$au_uid" --regid="$au_gid" --clear-groups -- "$@"
}

# restore_file PATH present|absent COPY SHA256 MODE UID GID
restore_file() {
  rf_path=$1 rf_state=$2 rf_copy=$3 rf_sha=$4 rf_mode=$5 rf_uid=$6 rf_gid=$7
  rf_name=${rf_path##*/}
  rf_parent=$(parent_of "$rf_path")
  if [ ! -d "$rf_parent" ]; then
    if [ "$rf_state" = absent ]; then return; fi
    mkdir -p -- "$rf_parent" || { fail "$rf_path: cannot create $rf_parent"; return; }
  fi
  if ! rf_dir=$(readlink -f -- "$rf_parent") || [ ! -d "$rf_dir" ]; then
    fail "$rf_path: cannot resolve $rf_parent"
    return
  fi
  rf_changer=$(changer_of "$rf_dir")
  rf_at=${rf_dir%/}/$rf_name

  if [ "$rf_state" = absent ]; then
    # The name itself goes, a link included; never what a link points at.
    if [ -e "$rf_at" ] || [ -L "$rf_at" ]; then
      case $rf_changer in
        root) rm -f -- "$rf_at" ;;
        many) false ;;
        *) as_user "${rf_changer%%:*}" "${rf_changer#*:}" rm -f -- "$rf_at" ;;
      esac || { fail "$rf_path: cannot remove it (it did not exist before; $rf_dir is changed by $rf_changer)"; return; }
      say "removed $rf_path (it did not exist before)"
    fi
    return
  fi

  if [ ! -f "$rf_copy" ]; then fail "$rf_path: the backup copy $rf_copy is missing; not restored"; return; fi
  rf_have=$(sha_of "$rf_copy") || { fail "$rf_path: cannot read the backup copy $rf_copy; not restored"; return; }
  if [ "$rf_have" != "$rf_sha" ]; then
    fail "$rf_path: the backup copy $rf_copy does not match its checksum (expected $rf_sha, found $rf_have); not restored"
    return
  fi

  if [ -L "$rf_at" ] && [ "$rf_changer" = root ] && [ "$(stat -c %u -- "$rf_at")" = 0 ]; then
    # Root's own link among root's own directories: written through, as the backup was taken; the link stays.
    rf_real=$(readlink -f -- "$rf_at") || { fail "$rf_path: cannot resolve the link"; return; }
    rf_real_dir=$(parent_of "$rf_real")
    if [ -d "$rf_real_dir" ] && [ "$(changer_of "$rf_real_dir")" = root ]; then
      rf_at=$rf_real
      rf_dir=$rf_real_dir
    else
      say "$rf_path links into $rf_real_dir, which others can change: the link itself is replaced"
    fi
  fi

  rf_want="$(printf '%o' "0$rf_mode"):$rf_uid:$rf_gid"
  if [ ! -L "$rf_at" ] && [ -f "$rf_at" ] && [ "$(sha_in "$rf_changer" "$rf_at")" = "$rf_sha" ] \
    && [ "$(stat -c %a:%u:%g -- "$rf_at" 2>/dev/null)" = "$rf_want" ]; then
    say "$rf_path is already as it was"
    return
  fi

  rf_template="$rf_dir/.$rf_name.pve-baseline-revert.XXXXXXXX"
  case $rf_changer in
    root)
      # Only root can change this directory: a new file, then owner and mode, then the rename.
      rf_tmp=$(mktemp -- "$rf_template") || { fail "$rf_path: cannot create a file in $rf_dir"; return; }
      if ! cp -- "$rf_copy" "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot copy the backup next to it"; return; fi
      # Owner first: chown clears setuid/setgid bits, so chmod comes after it.
      if [ "$(id -u)" = 0 ] && ! chown "$rf_uid:$rf_gid" -- "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot set owner $rf_uid:$rf_gid"; return; fi
      if ! chmod "$rf_mode" -- "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot set mode $rf_mode"; return; fi
      sync -- "$rf_tmp" 2>/dev/null || true
      if ! mv -fT -- "$rf_tmp" "$rf_at"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot move the restored copy into place"; return; fi
      ;;
    many)
      fail "$rf_path: more than one account can change $rf_dir; not restored (put $rf_copy back by hand)"
      return
      ;;
    *)
      # A user can change this directory: everything in it is done as that user, so no link they
      # plant can lead root anywhere. Only a file of theirs can be put back this way.
      if [ "$rf_uid" != "${rf_changer%%:*}" ]; then
        fail "$rf_path: $rf_dir can be changed by uid ${rf_changer%%:*}, and the file belongs to uid $rf_uid; not restored (put $rf_copy back by hand)"
        return
      fi
      rf_tmp=$(as_user "$rf_uid" "$rf_gid" mktemp -- "$rf_template") || { fail "$rf_path: cannot create a file in $rf_dir as uid $rf_uid"; return; }
      if ! as_user "$rf_uid" "$rf_gid" tee -- "$rf_tmp" <"$rf_copy" >/dev/null; then
        as_user "$rf_uid" "$rf_gid" rm -f -- "$rf_tmp"
        fail "$rf_path: cannot write the restored copy as uid $rf_uid"
        return
      fi
      if ! as_user "$rf_uid" "$rf_gid" chmod "$rf_mode" -- "$rf_tmp"; then
        as_user "$rf_uid" "$rf_gid" rm -f -- "$rf_tmp"
        fail "$rf_path: cannot set mode $rf_mode"
        return
      fi
      as_user "$rf_uid" "$rf_gid" sync -- "$rf_tmp" 2>/dev/null || true
      if ! as_user "$rf_uid" "$rf_gid" mv -fT -- "$rf_tmp" "$rf_at"; then
        as_user "$rf_uid" "$rf_gid" rm -f -- "$rf_tmp"
        fail "$rf_path: cannot move the restored copy into place"
        return
      fi
      ;;
  esac
  rf_now=$(sha_in "$rf_changer" "$rf_at") || rf_now=unreadable
  if [ "$rf_now" != "$rf_sha" ]; then fail "$rf_path: restored, but its checksum is $rf_now, not $rf_sha"; return; fi
  rf_has=$(stat -c %a:%u:%g -- "$rf_at" 2>/dev/null)
  if [ "$rf_has" != "$rf_want" ]; then fail "$rf_path: restored, but its mode and owner are $rf_has, not $rf_want"; return; fi
  say "restored $rf_path"
}

# shellcheck disable=SC2317 # called by each_command
run_reload() {
  if [ "$MODE" = boot ]; then
    say "at boot: not running '$*' (the service starts after this)"
    return
  fi
  if [ "$MODE" = files ]; then
    say "not running '$*': nothing was activated"
    return
  fi
  if "$@"; then say "ran '$*'"; else fail "'$*' exited with $?"; fi
}

# shellcheck disable=SC2317 # called by each_command
run_last_resort() {
  if [ "$MODE" = boot ] || [ "$MODE" = files ]; then
    say "not running '$*' ($MODE)"
    return
  fi
  if "$@"; then say "last resort: ran '$*'"; else say "last resort: '$*' exited with $?"; fi
}

# shellcheck disable=SC2317 # called by each_command
run_cleanup() {
  if "$@"; then say "ran '$*'"; else say "'$*' exited with $? (not a failure of the revert)"; fi
}

# each_command CLEANUP|RELOAD FUNCTION: FUNCTION with each command of the data, as its own argv.
each_command() {
  ec_prefix=$1 ec_run=$2 ec_n=1
  get "${ec_prefix}S"
  ec_count=$got
  while [ "$ec_n" -le "$ec_count" ]; do
    get "${ec_prefix}_${ec_n}_ARGC"
    ec_argc=$got
    case $ec_argc in '' | *[!0-9]*) fail "the data's ${ec_prefix}_${ec_n} is malformed"; ec_n=$((ec_n + 1)); continue ;; esac
    set --
    ec_j=1
    while [ "$ec_j" -le "$ec_argc" ]; do
      get "${ec_prefix}_${ec_n}_${ec_j}"
      set -- "$@" "$got"
      ec_j=$((ec_j + 1))
    done
    "$ec_run" "$@"
    ec_n=$((ec_n + 1))
  done
}

restore_files() {
  rs_n=1
  while [ "$rs_n" -le "$FILES" ]; do
    get "FILE_${rs_n}_PATH"; rs_path=$got
    get "FILE_${rs_n}_STATE"; rs_state=$got
    get "FILE_${rs_n}_COPY"; rs_copy=$got
    get "FILE_${rs_n}_SHA256"; rs_sha=$got
    get "FILE_${rs_n}_MODE"; rs_mode=$got
    get "FILE_${rs_n}_UID"; rs_uid=$got
    get "FILE_${rs_n}_GID"; rs_gid=$got
    restore_file "$rs_path" "$rs_state" "$rs_copy" "$rs_sha" "$rs_mode" "$rs_uid" "$rs_gid"
    rs_n=$((rs_n + 1))
  done
}

write_result() {
  mkdir -p -- "${RESULT%/*}" 2>/dev/null
  printf '%s\n' "$1" >"$RESULT.tmp.$$" && mv -f -- "$RESULT.tmp.$$" "$RESULT"
}

disarm() {
  # systemctl only on the node's own units (a revert armed for a test never touches them).
  if [ "$SYSTEMCTL" = yes ] && command -v systemctl >/dev/null 2>&1; then
    # Stopping the timer never stops the service running this program.
    systemctl stop "$TIMER" >/dev/null 2>&1 || true
  fi
  rm -f -- "$FIRING" "$MARK"
  for rest in "$PENDING_DIR"/*; do
    [ -e "$rest" ] && return 0
  done
  if [ "$SYSTEMCTL" = yes ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload disable "$BOOT_UNIT" >/dev/null 2>&1 || true
  fi
  if [ -n "$BOOT_WANTS" ]; then rm -f -- "$BOOT_WANTS"; fi
}

# One run at a time (released when this process ends, however it ends).
mkdir -p -- "${LOCK%/*}" 2>/dev/null
if command -v flock >/dev/null 2>&1 && touch -- "$LOCK" 2>/dev/null; then
  exec 9>>"$LOCK"
  flock 9
fi

# Claim the change: the rename races with a confirmation, and only one wins.
if mv -- "$MARK" "$FIRING" 2>/dev/null; then
  :
elif [ -f "$FIRING" ]; then
  say "finishing a revert that was interrupted"
elif [ "$MODE" != now ] && [ "$MODE" != files ]; then
  say "nothing pending (confirmed or already reverted); nothing to do"
  exit 0
fi

say "reverting ($MODE)"
restore_files
each_command CLEANUP run_cleanup
each_command RELOAD run_reload
# Only when the normal way back failed: the step's way to open the door anyway (its own failure changes nothing).
if [ -n "$FAILED" ]; then each_command LAST_RESORT run_last_resort; fi

if [ -z "$FAILED" ]; then
  disarm
  write_result "reverted at $(date -u +%Y-%m-%dT%H:%M:%SZ) ($MODE)"
  say "reverted"
  exit 0
fi
# Keep the claim, so the boot hook tries again and status shows it unfinished.
write_result "FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ) ($MODE):$NL$FAILED"
exit 1
