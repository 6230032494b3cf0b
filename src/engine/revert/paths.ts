/**
 * Where the revert the node owns keeps its state, and the index of what is
 * armed. Layout under <stateDir>/revert/:
 *
 *   <id>.sh             the revert program (a copy of revert.sh, 0700)
 *   <id>.data           what it puts back: paths, checksums, modes, owners, commands (0600)
 *   <id>.result         what the last run did ("reverted at ...", "FAILED at ...", "disarmed at ...")
 *   <id>.lock           flock(1) lock, so two runs never interleave
 *   <id>.active         written once the change is live (a confirmation before that proves nothing)
 *   pending/<id>        the pending marker: present while the change is unconfirmed (JSON: id, deadline)
 *   pending/<id>.firing the marker once a run has claimed it (kept until the revert succeeded)
 *   at-boot.sh          the boot hook's runner (a copy of at-boot.sh)
 *   armed.json          index of what was armed, written before anything is armed
 *
 * The markers are the truth: a marker without an index entry is still
 * pending, and a damaged index is reported, never read as "nothing armed".
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { FileRefusedError, LocalFiles, readRegularFile, type Files } from '../../system/files.ts';

export const DEFAULT_REVERT_SECONDS = 180;
export const BOOT_UNIT = 'pve-baseline-revert-at-boot.service';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,120}$/;
/** Paths that also go into a systemd unit file: no quoting, specifier or variable trouble there. */
export const UNIT_SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
/** More than any real index (a handful of entries); a bigger file is damage, not data. */
export const INDEX_MAX_BYTES = 1024 * 1024;

export function assertRevertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new Error(`revert id ${JSON.stringify(id)} must be 1-120 of A-Z a-z 0-9 _ -`);
}

/** The revert's id for an apply id: what the files and the timer unit are named after. */
export function revertIdOf(applyId: string): string {
  return applyId.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 120);
}

/**
 * A fresh id for one arming of an apply: a resumed apply arms again under a
 * new id, so an old timer that still fires can never claim the new arming.
 */
export function newRevertId(applyId: string): string {
  return `${revertIdOf(applyId).slice(0, 111)}-${randomBytes(4).toString('hex')}`;
}

export function timerUnit(id: string): string {
  return `pve-baseline-revert-${id}`;
}

export interface RevertPaths {
  dir: string;
  /** The revert program for this id. */
  script: string;
  /** Its data: what it puts back and runs. */
  data: string;
  result: string;
  lock: string;
  active: string;
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
    data: path.join(dir, `${id}.data`),
    result: path.join(dir, `${id}.result`),
    lock: path.join(dir, `${id}.lock`),
    active: path.join(dir, `${id}.active`),
    pendingDir,
    marker: path.join(pendingDir, id),
    firing: path.join(pendingDir, `${id}.firing`),
    bootRunner: path.join(dir, 'at-boot.sh'),
    index: path.join(dir, 'armed.json'),
  };
}

export type ArmedWith = 'systemd-run' | 'setsid';

/** Who applied the change: a confirmation from this same session proves nothing. */
export interface RevertSession {
  /** The kernel's audit session id (/proc/self/sessionid), kept across sudo; null when unset. */
  auditSession: string | null;
  /** SSH_CONNECTION of the session ("client port server port"), null when not over SSH. */
  sshConnection: string | null;
  /** The controlling terminal (major:minor), null without one (cron, a service). */
  tty: string | null;
}

export interface IndexEntry {
  id: string;
  /** Epoch ms when it fires. */
  deadline: number;
  seconds: number;
  /** Absent while the timer is not started yet (a kill in that window leaves it so). */
  armedWith?: ArmedWith;
  script: string;
  session?: RevertSession;
}

/** The revert index is damaged: pending reverts are then read from their markers. */
export class RevertIndexError extends Error {
  override readonly name = 'RevertIndexError';

  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(
      `the revert index ${file} is damaged (${reason}). Pending reverts are read from their markers in ${path.join(path.dirname(file), 'pending')} instead, ` +
        `and no new revert can be armed until it is repaired: move it aside (mv ${file} ${file}.damaged); ` +
        'what is still pending stays pending, and the next arming writes a new index.',
    );
  }
}

const SESSION_KEYS = ['auditSession', 'sshConnection', 'tty'] as const;

function isSession(value: unknown): value is RevertSession {
  if (typeof value !== 'object' || value === null) return false;
  return SESSION_KEYS.every((k) => {
    const v = (value as Record<string, unknown>)[k];
    return v === null || (typeof v === 'string' && v.length <= 200);
  });
}

/** The reason an index entry is not one pve-baseline wrote, or null. */
function entryProblem(value: unknown, at: number, dir: string): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `entry ${at + 1} is not an object`;
  const e = value as Record<string, unknown>;
  if (typeof e.id !== 'string' || !ID_PATTERN.test(e.id)) return `entry ${at + 1} has no valid id (${JSON.stringify(e.id)?.slice(0, 60)})`;
  if (typeof e.deadline !== 'number' || !Number.isFinite(e.deadline)) return `entry ${e.id} has no valid deadline`;
  if (typeof e.seconds !== 'number' || !Number.isFinite(e.seconds)) return `entry ${e.id} has no valid seconds`;
  if (e.script !== path.join(dir, `${e.id}.sh`)) return `entry ${e.id} names a program other than ${path.join(dir, `${e.id}.sh`)}`;
  if (e.armedWith !== undefined && e.armedWith !== 'systemd-run' && e.armedWith !== 'setsid') return `entry ${e.id} has an unknown armedWith`;
  if (e.session !== undefined && !isSession(e.session)) return `entry ${e.id} has a malformed session`;
  return null;
}

export interface IndexRead {
  entries: IndexEntry[];
  /** Set when the file is there but is not an index pve-baseline wrote. */
  error: RevertIndexError | null;
}

/** Read armed.json without trusting it: any damage is reported, never a crash and never a false "nothing". */
export async function readIndex(files: Files, file: string): Promise<IndexRead> {
  const damaged = (reason: string): IndexRead => ({ entries: [], error: new RevertIndexError(file, reason) });
  let text: string | null;
  if (files instanceof LocalFiles) {
    // On this machine: a regular file only, never through a link, never more than the limit (a FIFO must not hang status).
    try {
      text = (await readRegularFile(file, { maxBytes: INDEX_MAX_BYTES, what: 'the revert index' })).toString('utf8');
    } catch (error) {
      if (error instanceof FileRefusedError) return error.reason === 'no such file' ? { entries: [], error: null } : damaged(error.reason);
      return damaged(`cannot be read: ${(error as Error).message}`);
    }
    return parseIndex(text, file, damaged);
  }
  let meta;
  try {
    meta = await files.meta(file);
  } catch (error) {
    return damaged(`cannot be examined: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (meta === null) {
    // A dangling link has no meta either: look at the name itself.
    return (await files.read(file).catch(() => null)) === null ? { entries: [], error: null } : damaged('unreadable');
  }
  if (meta.isSymlink) return damaged('it is a symbolic link; pve-baseline writes a regular file there');
  try {
    text = await files.read(file);
  } catch (error) {
    return damaged(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (text === null) return { entries: [], error: null };
  if (Buffer.byteLength(text) > INDEX_MAX_BYTES) return damaged(`larger than ${INDEX_MAX_BYTES / 1024 / 1024} MiB`);
  return parseIndex(text, file, damaged);
}

function parseIndex(text: string, file: string, damaged: (reason: string) => IndexRead): IndexRead {
  if (text.trim() === '') return damaged('empty');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the file's bytes, which may hold terminal escapes.
    return damaged('not valid JSON');
  }
  if (!Array.isArray(parsed)) return damaged('not a list of armed reverts');
  for (const [at, value] of parsed.entries()) {
    const problem = entryProblem(value, at, path.dirname(file));
    if (problem) return damaged(problem);
  }
  return { entries: parsed as IndexEntry[], error: null };
}

export async function writeIndex(files: Files, file: string, entries: readonly IndexEntry[]): Promise<void> {
  await files.write(file, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600, uid: 0, gid: 0 });
}

/** What a pending marker holds: the node's own record of the deadline, readable without the index. */
export interface MarkerContent {
  id: string;
  deadline: number;
}

export function markerText(id: string, deadline: number): string {
  return `${JSON.stringify({ id, deadline })}\n`;
}

export function parseMarker(text: string, id: string): MarkerContent {
  try {
    const parsed = JSON.parse(text) as Partial<MarkerContent>;
    if (parsed.id === id && typeof parsed.deadline === 'number' && Number.isFinite(parsed.deadline)) return { id, deadline: parsed.deadline };
  } catch {
    // An older marker held just the id; the deadline is then unknown (0).
  }
  return { id, deadline: 0 };
}
