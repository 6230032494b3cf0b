/**
 * The revert program and its data. The program is a real POSIX sh file
 * (revert.sh, and at-boot.sh for the boot hook), the same bytes for every
 * arming; what one arming puts back and runs is a data file it reads, made
 * here, every value single-quoted. The programs are read from this directory
 * when run from source and stamped into the bundle at build time
 * (scripts/bundle.mjs).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackupRecord } from '../../system/files.ts';
import { assertRevertId, BOOT_UNIT, DEFAULT_UNIT_DIR, revertPaths, timerUnit, UNIT_SAFE_PATH } from './paths.ts';

declare const __PVE_BASELINE_REVERT_PROGRAMS__: Record<string, string> | undefined;

export type ProgramName = 'revert.sh' | 'at-boot.sh';

/** The text of one of the sh programs of this directory. */
export function program(name: ProgramName): string {
  if (typeof __PVE_BASELINE_REVERT_PROGRAMS__ === 'object') {
    const text = __PVE_BASELINE_REVERT_PROGRAMS__[name];
    if (typeof text === 'string') return text;
  }
  return readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');
}

/** Quote a string for POSIX sh: single quotes, each ' written as '\''. Safe for any bytes but NUL. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be passed to the shell');
  return `'${value.replace(/'/g, `'\\''`)}'`;
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
  /** argv lists run only when something failed (a file not put back, a reload failed), e.g. [['pve-firewall', 'stop']]; not at boot. */
  lastResort?: string[][];
  stateDir: string;
  /** Where the boot hook's unit lives (tests); default /etc/systemd/system. */
  unitDir?: string;
  /**
   * Whether the revert may run systemctl on the node's units (stop its timer,
   * disable the boot hook). Only ever with the default unit dir; false keeps
   * it off there too. Default true.
   */
  manageUnits?: boolean;
}

const DATA_HEADER = '# pve-baseline revert data';

/** True when the revert may call systemctl: the node's own unit dir, and nobody said no. */
export function managesUnits(opts: { unitDir?: string; manageUnits?: boolean }): boolean {
  return (opts.unitDir ?? DEFAULT_UNIT_DIR) === DEFAULT_UNIT_DIR && opts.manageUnits !== false;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * The data file of one arming, which the revert program reads: its paths,
 * each file to put back (or remove), the cleanup and reload commands.
 * Everything in it comes from our own records, and every value is
 * single-quoted; the program reads the lists by counters, never by eval of
 * a value.
 */
export function renderRevertData(opts: RenderOptions): string {
  assertRevertId(opts.id);
  const p = revertPaths(opts.stateDir, opts.id);
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const lines = [
    `${DATA_HEADER}: ${opts.id}`,
    '# Read by the revert program next to it; written by pve-baseline when it armed the revert. Values only.',
  ];
  const set = (name: string, value: string | number) => lines.push(`${name}=${shellQuote(String(value))}`);
  set('ID', opts.id);
  set('MARK', p.marker);
  set('FIRING', p.firing);
  set('PENDING_DIR', p.pendingDir);
  set('RESULT', p.result);
  set('LOCK', p.lock);
  set('TIMER', `${timerUnit(opts.id)}.timer`);
  set('BOOT_UNIT', BOOT_UNIT);
  set('BOOT_WANTS', path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT));
  set('SYSTEMCTL', managesUnits(opts) ? 'yes' : 'no');

  // at-boot.sh reverts files in /etc/pve only once pve-cluster has mounted it.
  set('NEEDS_CLUSTER_FS', opts.backups.some((b) => b.path === '/etc/pve' || b.path.startsWith('/etc/pve/')) ? 1 : 0);
  set('FILES', opts.backups.length);
  for (const [i, b] of opts.backups.entries()) {
    const n = i + 1;
    set(`FILE_${n}_PATH`, b.path);
    if (!b.existed) {
      set(`FILE_${n}_STATE`, 'absent');
      continue;
    }
    if (!b.copy || !b.sha256 || b.mode === undefined || b.uid === undefined || b.gid === undefined) {
      throw new Error(`backup record of ${b.path} is incomplete; cannot write a revert for it`);
    }
    if (!/^[0-9a-f]{64}$/.test(b.sha256)) throw new Error(`backup record of ${b.path} has no valid sha256`);
    set(`FILE_${n}_STATE`, 'present');
    set(`FILE_${n}_COPY`, b.copy);
    set(`FILE_${n}_SHA256`, b.sha256);
    set(`FILE_${n}_MODE`, octal(b.mode));
    set(`FILE_${n}_UID`, Math.trunc(b.uid));
    set(`FILE_${n}_GID`, Math.trunc(b.gid));
  }
  const commands = (prefix: string, list: string[][], what: string) => {
    set(`${prefix}S`, list.length);
    for (const [i, argv] of list.entries()) {
      if (argv.length === 0) throw new Error(`an empty ${what} command`);
      set(`${prefix}_${i + 1}_ARGC`, argv.length);
      for (const [j, arg] of argv.entries()) set(`${prefix}_${i + 1}_${j + 1}`, arg);
    }
  };
  commands('CLEANUP', opts.cleanup ?? [], 'cleanup');
  commands('RELOAD', opts.reload, 'reload');
  commands('LAST_RESORT', opts.lastResort ?? [], 'last-resort');
  return `${lines.join('\n')}\n`;
}

/**
 * What armRevert installs for one arming. Kept under its old name: the text
 * is the data file the revert program reads (the program itself is revert.sh).
 */
export const renderRevertScript = renderRevertData;

/** True when `text` is a data file made by renderRevertData for `id`. */
export function isRevertData(text: string, id: string): boolean {
  return text.startsWith(`${DATA_HEADER}: ${id}\n`) && text.includes(`\nID=${shellQuote(id)}\n`);
}

/** The boot hook's runner: the same program for every state dir (it finds the reverts next to itself). */
export function renderBootRunner(_stateDir?: string): string {
  return program('at-boot.sh');
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
