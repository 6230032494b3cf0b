/**
 * The revert the node owns (lockout protocol, steps 2, 3 and 7).
 *
 * Before a lockout-risk change is reloaded, a plain-shell revert script is
 * written next to the journal and armed on the node itself: a transient
 * systemd timer (`systemd-run --on-active=`), or a detached `setsid` sleeper
 * where there is no systemd, plus a boot hook that runs every still-pending
 * script before sshd starts. Nothing of it depends on this process: the
 * wizard may be SIGKILLed, its SSH session may drop, the node may reboot; the
 * revert fires unless the change is confirmed (disarmed) in time.
 *
 * Layout under <stateDir>/revert/:
 *   <id>.sh             the revert script (0700)
 *   <id>.result         what the last run did ("reverted at ...", "FAILED at ...", "disarmed at ...")
 *   <id>.lock           flock(1) lock, so two runs never interleave
 *   pending/<id>        the pending marker: present while the change is unconfirmed
 *   pending/<id>.firing the marker once a run has claimed it (kept until the revert succeeded)
 *   at-boot.sh          the boot hook's runner
 *   armed.json          index of what was armed (pendingReverts filters it by the markers)
 *
 * Confirming and firing race for the same marker with rename(2): whoever
 * renames pending/<id> first wins, so the journal can say truthfully which
 * of the two happened.
 *
 * Everything interpolated into the script comes from our own records (backup
 * paths, hashes, modes, owners, the reload argv) and is single-quoted.
 */
import path from 'node:path';
import type { Exec, ExecResult } from '../system/exec.ts';
import type { BackupRecord, Files } from '../system/files.ts';
import { stateDir as defaultStateDir } from './journal.ts';

export const DEFAULT_REVERT_SECONDS = 180;
export const BOOT_UNIT = 'pve-baseline-revert-at-boot.service';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

const ID_PATTERN = /^[A-Za-z0-9_-]{1,120}$/;
/** Paths that also go into a systemd unit file: no quoting, specifier or variable trouble there. */
const UNIT_SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;

export function assertRevertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new Error(`revert id ${JSON.stringify(id)} must be 1-120 of A-Z a-z 0-9 _ -`);
}

/** Quote a string for POSIX sh: single quotes, each ' written as '\''. Safe for any bytes but NUL. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be passed to the shell');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The revert's id for an apply id: what the files and the timer unit are named after. */
export function revertIdOf(applyId: string): string {
  return applyId.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 120);
}

export function timerUnit(id: string): string {
  return `pve-baseline-revert-${id}`;
}

export interface RevertPaths {
  dir: string;
  script: string;
  result: string;
  lock: string;
  pendingDir: string;
  marker: string;
  firing: string;
  bootRunner: string;
  index: string;
}

export function revertPaths(stateDir: string, id: string): RevertPaths {
  const dir = path.join(stateDir, 'revert');
  const pendingDir = path.join(dir, 'pending');
  return {
    dir,
    script: path.join(dir, `${id}.sh`),
    result: path.join(dir, `${id}.result`),
    lock: path.join(dir, `${id}.lock`),
    pendingDir,
    marker: path.join(pendingDir, id),
    firing: path.join(pendingDir, `${id}.firing`),
    bootRunner: path.join(dir, 'at-boot.sh'),
    index: path.join(dir, 'armed.json'),
  };
}

export interface RenderOptions {
  id: string;
  backups: BackupRecord[];
  /** argv lists run after the restore, e.g. [['systemctl', 'reload', 'ssh']]; skipped at boot (the services have not started yet). */
  reload: string[][];
  /**
   * argv lists run after the restore in every mode, boot too, before any
   * reload: tidying what a killed run left behind (e.g. a probe key). A
   * failure is logged but does not fail the revert.
   */
  cleanup?: string[][];
  stateDir: string;
  /** Where the boot hook's unit lives (tests); default /etc/systemd/system. */
  unitDir?: string;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * The revert script: POSIX sh, no Node. Run as
 *   sh <id>.sh          (timer or sleeper: only while the change is pending)
 *   sh <id>.sh boot     (boot hook: pending; no reload, the services start afterwards)
 *   sh <id>.sh now      (the wizard, on a failure: always)
 *   sh <id>.sh files    (the wizard, refused before activating: files only, no reload)
 * Safe to run twice: a second run finds nothing pending (timer) or restores
 * the same bytes again (now).
 */
export function renderRevertScript(opts: RenderOptions): string {
  assertRevertId(opts.id);
  const p = revertPaths(opts.stateDir, opts.id);
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const q = shellQuote;
  const restores = opts.backups.map((b) => {
    if (!b.existed) return `restore_file ${q(b.path)} absent '' '' '' '' ''`;
    if (!b.copy || !b.sha256 || b.mode === undefined || b.uid === undefined || b.gid === undefined) {
      throw new Error(`backup record of ${b.path} is incomplete; cannot write a revert for it`);
    }
    if (!/^[0-9a-f]{64}$/.test(b.sha256)) throw new Error(`backup record of ${b.path} has no valid sha256`);
    return `restore_file ${q(b.path)} present ${q(b.copy)} ${b.sha256} ${octal(b.mode)} ${Math.trunc(b.uid)} ${Math.trunc(b.gid)}`;
  });
  const cleanups = (opts.cleanup ?? []).map((argv) => {
    if (argv.length === 0) throw new Error('an empty cleanup command');
    return `run_cleanup ${argv.map(q).join(' ')}`;
  });
  const reloads = opts.reload.map((argv) => {
    if (argv.length === 0) throw new Error('an empty reload command');
    return `run_reload ${argv.map(q).join(' ')}`;
  });
  return `#!/bin/sh
# pve-baseline: revert of ${opts.id}
# Written by pve-baseline before a change that could cut access. It puts every
# file back byte for byte, reloads the services and disarms itself. Plain sh on
# purpose: it must work with nothing else installed and nobody watching.
#   sh THIS          timer or sleeper: reverts only while the change is pending
#   sh THIS boot     boot hook: reverts a pending change before the services start
#   sh THIS now      revert at once, pending or not
#   sh THIS files    put the files back at once, reload nothing (nothing was activated)
set -u
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
ID=${q(opts.id)}
MARK=${q(p.marker)}
FIRING=${q(p.firing)}
PENDING_DIR=${q(p.pendingDir)}
RESULT=${q(p.result)}
LOCK=${q(p.lock)}
TIMER=${q(`${timerUnit(opts.id)}.timer`)}
BOOT_UNIT=${q(BOOT_UNIT)}
BOOT_WANTS=${q(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT))}
MODE=\${1:-timer}
FAILED=''
NL='
'

say() {
  echo "pve-baseline revert $ID: $*"
  if command -v logger >/dev/null 2>&1; then logger -t pve-baseline -- "revert $ID: $*" 2>/dev/null || true; fi
}

fail() {
  say "FAILED: $*"
  FAILED="$FAILED$*$NL"
}

sha_of() {
  sha_out=$(sha256sum < "$1") || return 1
  echo "\${sha_out%% *}"
}

# restore_file PATH present|absent COPY SHA256 MODE UID GID
restore_file() {
  rf_path=$1
  rf_target=$1
  if [ -L "$rf_path" ]; then
    # Written through, as the backup was taken: the link stays a link.
    rf_target=$(readlink -f -- "$rf_path") || { fail "$rf_path: cannot resolve the symlink"; return; }
  fi
  if [ "$2" = absent ]; then
    if [ -e "$rf_target" ] || [ -L "$rf_target" ]; then
      rm -f -- "$rf_target" || { fail "$rf_path: cannot remove it (it did not exist before)"; return; }
      say "removed $rf_path (it did not exist before)"
    fi
    return
  fi
  rf_copy=$3 rf_sha=$4 rf_mode=$5 rf_uid=$6 rf_gid=$7
  if [ ! -f "$rf_copy" ]; then fail "$rf_path: the backup copy $rf_copy is missing; not restored"; return; fi
  rf_have=$(sha_of "$rf_copy") || { fail "$rf_path: cannot read the backup copy $rf_copy; not restored"; return; }
  if [ "$rf_have" != "$rf_sha" ]; then
    fail "$rf_path: the backup copy $rf_copy does not match its checksum (expected $rf_sha, found $rf_have); not restored"
    return
  fi
  if [ -f "$rf_target" ] && [ "$(sha_of "$rf_target")" = "$rf_sha" ] \\
    && [ "$(stat -c %a:%u:%g -- "$rf_target" 2>/dev/null)" = "$(printf '%o' "0$rf_mode"):$rf_uid:$rf_gid" ]; then
    say "$rf_path is already as it was"
    return
  fi
  case $rf_target in */*) rf_dir=\${rf_target%/*} ;; *) rf_dir=. ;; esac
  [ -n "$rf_dir" ] || rf_dir=/
  mkdir -p -- "$rf_dir" || { fail "$rf_path: cannot create $rf_dir"; return; }
  rf_tmp="$rf_dir/.\${rf_target##*/}.pve-baseline-revert.$$"
  rm -f -- "$rf_tmp"
  if ! cp -- "$rf_copy" "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot copy the backup next to it"; return; fi
  # Owner first: chown clears setuid/setgid bits, so chmod comes after it.
  if [ "$(id -u)" = 0 ]; then
    if ! chown "$rf_uid:$rf_gid" -- "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot set owner $rf_uid:$rf_gid"; return; fi
  fi
  if ! chmod "$rf_mode" -- "$rf_tmp"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot set mode $rf_mode"; return; fi
  sync 2>/dev/null || true
  if ! mv -f -- "$rf_tmp" "$rf_target"; then rm -f -- "$rf_tmp"; fail "$rf_path: cannot move the restored copy into place"; return; fi
  rf_now=$(sha_of "$rf_target") || rf_now=unreadable
  if [ "$rf_now" != "$rf_sha" ]; then fail "$rf_path: restored, but its checksum is $rf_now, not $rf_sha"; return; fi
  say "restored $rf_path"
}

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

run_cleanup() {
  if "$@"; then say "ran '$*'"; else say "'$*' exited with $? (not a failure of the revert)"; fi
}

write_result() {
  mkdir -p -- "\${RESULT%/*}" 2>/dev/null
  printf '%s\\n' "$1" > "$RESULT.tmp.$$" && mv -f -- "$RESULT.tmp.$$" "$RESULT"
}

disarm() {
  if command -v systemctl >/dev/null 2>&1; then
    # Stopping the timer never stops the service running this script.
    systemctl stop "$TIMER" >/dev/null 2>&1 || true
  fi
  rm -f -- "$FIRING" "$MARK"
  for rest in "$PENDING_DIR"/*; do
    [ -e "$rest" ] && return 0
  done
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable "$BOOT_UNIT" >/dev/null 2>&1 || true
  fi
  rm -f -- "$BOOT_WANTS"
}

# One run at a time (released when this process ends, however it ends).
mkdir -p -- "\${LOCK%/*}" 2>/dev/null
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
${restores.join('\n')}
${cleanups.join('\n')}
${reloads.join('\n')}

if [ -z "$FAILED" ]; then
  disarm
  write_result "reverted at $(date -u +%Y-%m-%dT%H:%M:%SZ) ($MODE)"
  say "reverted"
  exit 0
fi
# Keep the claim, so the boot hook tries again and status shows it unfinished.
write_result "FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ) ($MODE):$NL$FAILED"
exit 1
`;
}

/** The boot hook's runner: every pending (or interrupted) revert, before the services start. */
export function renderBootRunner(stateDir: string): string {
  const p = revertPaths(stateDir, 'x');
  return `#!/bin/sh
# pve-baseline: at boot, revert every change that was never confirmed.
PENDING_DIR=${shellQuote(p.pendingDir)}
DIR=${shellQuote(p.dir)}
for mark in "$PENDING_DIR"/*; do
  [ -f "$mark" ] || continue
  id=\${mark##*/}
  id=\${id%.firing}
  if [ -f "$DIR/$id.sh" ]; then
    /bin/sh "$DIR/$id.sh" boot
  else
    echo "pve-baseline: pending revert $id has no script" >&2
  fi
done
exit 0
`;
}

export function renderBootUnit(stateDir: string): string {
  const runner = revertPaths(stateDir, 'x').bootRunner;
  if (!UNIT_SAFE_PATH.test(runner)) throw new Error(`state dir ${stateDir} cannot go into a unit file; use plain characters`);
  return `# Written by pve-baseline: reverts unconfirmed changes at boot, before sshd starts.
# No default dependencies: ordered before ssh.socket (which is before
# sockets.target, before basic.target) without a cycle. It needs only the
# local filesystems.
[Unit]
Description=pve-baseline: revert unconfirmed changes
DefaultDependencies=no
After=local-fs.target
Before=ssh.service ssh.socket sshd.service pve-firewall.service sockets.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
ExecStart=/bin/sh ${runner}
TimeoutStartSec=120

[Install]
WantedBy=multi-user.target
`;
}

export interface ArmOptions {
  id: string;
  /** The rendered revert script. */
  script: string;
  /** Seconds until it fires; default 180. */
  seconds?: number;
  stateDir?: string;
  unitDir?: string;
  /** Skip systemd-run and use the setsid sleeper (tests). */
  forceFallback?: boolean;
  /** Clock (tests). */
  now?: () => number;
}

export type ArmedWith = 'systemd-run' | 'setsid';

export interface RevertHandle {
  id: string;
  /** Epoch ms when it fires. */
  deadline: number;
  seconds: number;
  armedWith: ArmedWith;
  /** How the boot hook is installed: 'enabled' (systemctl enable), 'symlink', or 'none' (no systemd). */
  bootHook: 'enabled' | 'symlink' | 'none';
  script: string;
  unit?: string;
  /** What did not work on the way (e.g. why systemd-run was not used). */
  notes: string[];
}

interface IndexEntry {
  id: string;
  deadline: number;
  seconds: number;
  armedWith: ArmedWith;
  script: string;
}

async function readIndex(files: Files, file: string): Promise<IndexEntry[]> {
  const text = await files.read(file);
  if (!text) return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? (parsed as IndexEntry[]) : [];
  } catch {
    return [];
  }
}

function brief(r: ExecResult): string {
  return (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ') || `exit ${r.exitCode}`;
}

/**
 * Arm the revert: write the script and the pending marker, install the boot
 * hook, then start the timer (or the sleeper). Throws when nothing could be
 * armed: the caller must then not reload.
 */
export async function armRevert(exec: Exec, files: Files, opts: ArmOptions): Promise<RevertHandle> {
  assertRevertId(opts.id);
  const seconds = Math.max(1, Math.round(opts.seconds ?? DEFAULT_REVERT_SECONDS));
  const dir = opts.stateDir ?? defaultStateDir();
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const p = revertPaths(dir, opts.id);
  const now = opts.now ?? Date.now;
  const notes: string[] = [];

  await files.write(p.script, opts.script, { mode: 0o700, uid: 0, gid: 0 });
  await files.write(p.bootRunner, renderBootRunner(dir), { mode: 0o700, uid: 0, gid: 0 });
  await files.remove(p.result);

  // The boot hook first: from the moment the marker exists, a reboot reverts.
  let bootHook: RevertHandle['bootHook'] = 'none';
  const wants = path.join(unitDir, 'multi-user.target.wants');
  try {
    await files.write(path.join(unitDir, BOOT_UNIT), renderBootUnit(dir), { mode: 0o644, uid: 0, gid: 0 });
    const enable = unitDir === DEFAULT_UNIT_DIR ? await exec.run(['systemctl', 'enable', BOOT_UNIT]) : undefined;
    if (enable && enable.exitCode === 0) bootHook = 'enabled';
    else {
      if (enable) notes.push(`systemctl enable ${BOOT_UNIT}: ${brief(enable)}; linked it directly`);
      const link = await exec.run(['sh', '-c', 'mkdir -p -- "$1" && ln -sfn -- "$2" "$1/$3"', 'pve-baseline', wants, path.join(unitDir, BOOT_UNIT), BOOT_UNIT]);
      if (link.exitCode === 0) bootHook = 'symlink';
      else notes.push(`boot hook not installed: ${brief(link)}`);
    }
  } catch (error) {
    notes.push(`boot hook not installed: ${(error as Error).message}`);
  }

  const index = (await readIndex(files, p.index)).filter((e) => e.id !== opts.id);
  await files.write(p.marker, `${opts.id}\n`, { mode: 0o600, uid: 0, gid: 0 });

  const deadline = now() + seconds * 1000;
  let armedWith: ArmedWith | undefined;
  const unit = timerUnit(opts.id);
  if (!opts.forceFallback) {
    const r = await exec.run([
      'systemd-run',
      `--unit=${unit}`,
      `--description=pve-baseline: revert ${opts.id} unless confirmed`,
      `--on-active=${seconds}s`,
      '--timer-property=AccuracySec=1s',
      '--collect',
      '--quiet',
      '/bin/sh',
      p.script,
    ]);
    if (r.exitCode === 0) armedWith = 'systemd-run';
    else notes.push(r.notFound ? 'systemd-run is not available; using a setsid sleeper' : `systemd-run failed (${brief(r)}); using a setsid sleeper`);
  }
  if (!armedWith) {
    const r = await exec.run([
      'setsid',
      '-f',
      '/bin/sh',
      '-c',
      'exec </dev/null >/dev/null 2>&1; sleep "$1"; exec /bin/sh "$2"',
      'pve-baseline-revert',
      String(seconds),
      p.script,
    ]);
    if (r.exitCode === 0) armedWith = 'setsid';
    else {
      await files.remove(p.marker);
      throw new Error(`could not arm the revert of ${opts.id}: ${notes.join('; ')}; setsid: ${brief(r)}`);
    }
  }
  index.push({ id: opts.id, deadline, seconds, armedWith, script: p.script });
  await files.write(p.index, `${JSON.stringify(index, null, 2)}\n`, { mode: 0o600 });
  return { id: opts.id, deadline, seconds, armedWith, bootHook, script: p.script, ...(armedWith === 'systemd-run' ? { unit: `${unit}.timer` } : {}), notes };
}

export interface DisarmOptions {
  stateDir?: string;
  unitDir?: string;
}

export interface DisarmResult {
  /** True when the change stands (confirmed in time, or already disarmed before). */
  disarmed: boolean;
  /** Set when the revert won the race (or had already run): what its result file says. */
  reverted?: string;
}

/**
 * Confirm the change: claim the pending marker before the revert does, stop
 * the timer, remove the script (the result file keeps the record). Idempotent.
 */
export async function disarmRevert(exec: Exec, files: Files, id: string, opts: DisarmOptions = {}): Promise<DisarmResult> {
  assertRevertId(id);
  const dir = opts.stateDir ?? defaultStateDir();
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const p = revertPaths(dir, id);
  const claimed = path.join(p.dir, `${id}.confirmed`);
  const claim = await exec.run(['mv', '--', p.marker, claimed]);
  if (claim.exitCode !== 0) {
    const result = (await files.read(p.result))?.trim();
    if (result?.startsWith('disarmed')) return { disarmed: true };
    if ((await files.read(p.firing)) !== null || result) {
      return { disarmed: false, reverted: result ?? 'the revert is running' };
    }
    if ((await files.read(p.marker)) !== null) throw new Error(`could not disarm the revert of ${id}: ${brief(claim)}`);
    return { disarmed: false, reverted: 'nothing was armed' };
  }
  await exec.run(['systemctl', 'stop', `${timerUnit(id)}.timer`]);
  await files.write(p.result, `disarmed at ${new Date().toISOString()} (confirmed)\n`, { mode: 0o600 });
  await files.remove(claimed);
  await files.remove(p.script);
  const index = (await readIndex(files, p.index)).filter((e) => e.id !== id);
  await files.write(p.index, `${JSON.stringify(index, null, 2)}\n`, { mode: 0o600 });
  if ((await pendingReverts(files, { stateDir: dir })).length === 0) await removeBootHook(exec, files, unitDir);
  return { disarmed: true };
}

async function removeBootHook(exec: Exec, files: Files, unitDir: string): Promise<void> {
  if (unitDir === DEFAULT_UNIT_DIR) await exec.run(['systemctl', 'disable', BOOT_UNIT]);
  await files.remove(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT));
  await files.remove(path.join(unitDir, BOOT_UNIT));
}

export interface RevertNowResult {
  ok: boolean;
  exitCode: number;
  /** The result file: "reverted at ..." or "FAILED at ...:" and one line per problem. */
  result: string;
  /** What the script printed. */
  output: string;
}

/**
 * Revert at once (a failed apply or verify): runs the script in the
 * foreground, pending or not. `reload: false` when nothing was activated yet
 * (a refusal before the reload): reloading then could only spread a
 * configuration that failed its check elsewhere.
 */
export async function revertNow(exec: Exec, id: string, opts: { stateDir?: string; reload?: boolean } = {}): Promise<RevertNowResult> {
  assertRevertId(id);
  const p = revertPaths(opts.stateDir ?? defaultStateDir(), id);
  const r = await exec.run(['/bin/sh', p.script, opts.reload === false ? 'files' : 'now'], { timeoutMs: 120_000 });
  const read = await exec.run(['cat', '--', p.result]);
  const result = read.exitCode === 0 ? read.stdout.trim() : `no result file (${brief(read)})`;
  return { ok: r.exitCode === 0 && result.startsWith('reverted'), exitCode: r.exitCode, result, output: `${r.stdout}${r.stderr}`.trim() };
}

export interface PendingRevert {
  id: string;
  deadline: number;
  armedWith: ArmedWith;
  script: string;
  /** 'pending': armed, unconfirmed; 'interrupted': a run claimed it but did not finish (or failed). */
  state: 'pending' | 'interrupted';
  /** Seconds left (negative when overdue, e.g. after a reboot without the boot hook). */
  secondsLeft: number;
  /** The result file, when a run failed. */
  result?: string;
}

/** What is armed and not yet confirmed or reverted (status, resume after a reboot). */
export async function pendingReverts(files: Files, opts: { stateDir?: string; now?: () => number } = {}): Promise<PendingRevert[]> {
  const dir = opts.stateDir ?? defaultStateDir();
  const now = (opts.now ?? Date.now)();
  const out: PendingRevert[] = [];
  for (const e of await readIndex(files, revertPaths(dir, 'x').index)) {
    if (!ID_PATTERN.test(e.id)) continue;
    const p = revertPaths(dir, e.id);
    const state = (await files.read(p.marker)) !== null ? 'pending' : (await files.read(p.firing)) !== null ? 'interrupted' : undefined;
    if (!state) continue;
    const result = (await files.read(p.result))?.trim();
    out.push({
      id: e.id,
      deadline: e.deadline,
      armedWith: e.armedWith,
      script: e.script,
      state,
      secondsLeft: Math.round((e.deadline - now) / 1000),
      ...(result ? { result } : {}),
    });
  }
  return out;
}

/**
 * Wait for `pve-baseline confirm` in another session to disarm a revert
 * (its result file then begins "disarmed"); resolves with that line's time,
 * or null when `signal` aborts or the revert ran instead.
 */
export async function confirmedElsewhere(files: Files, id: string, opts: { stateDir?: string; signal: AbortSignal; pollMs?: number }): Promise<string | null> {
  assertRevertId(id);
  const p = revertPaths(opts.stateDir ?? defaultStateDir(), id);
  while (!opts.signal.aborted) {
    const result = (await files.read(p.result))?.trim();
    if (result?.startsWith('disarmed')) return result.replace(/^disarmed at (\S+).*$/, '$1');
    if (result) return null;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.pollMs ?? 500);
      opts.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return null;
}

/** What the revert of `id` last recorded ("reverted at ...", "disarmed at ...", "FAILED at ..."), or null. */
export async function revertResult(files: Files, id: string, opts: { stateDir?: string } = {}): Promise<string | null> {
  assertRevertId(id);
  return (await files.read(revertPaths(opts.stateDir ?? defaultStateDir(), id).result))?.trim() ?? null;
}
