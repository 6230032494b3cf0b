/**
 * One pve-baseline changes a node at a time. The lock is the file `lock` in
 * the state directory, holding the owner's pid, boot id and start time.
 *
 * Taking it is atomic: the owner is written to a private temp file first,
 * which is then hard-linked to `lock`; link(2) fails when `lock` exists, so of
 * any number of simultaneous starters exactly one wins, and nobody ever sees
 * a lock without its owner.
 *
 * A lock whose process is gone (or that was taken before the last reboot) is
 * stale, and is taken over instead of asking the operator to delete files by
 * hand. Only a starter holding `lock.takeover` (taken the same way) removes a
 * lock, and only the very file it found stale (same inode), so a starter
 * that looked a moment too early can never remove a live lock.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync, constants as fsc } from 'node:fs';
import path from 'node:path';
import { makeDirectorySync } from '../system/files.ts';

export interface LockOwner {
  pid: number;
  bootId: string;
  startedAt: string;
  command: string;
}

export type LockResult =
  | { ok: true; release: () => void; staleNote?: string }
  | { ok: false; owner: LockOwner; message: string };

/** Enough rounds for a lock released, or a stale one taken over, while we looked. */
const ATTEMPTS = 5;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isOwner(value: unknown): value is LockOwner {
  const o = value as LockOwner;
  return typeof o === 'object' && o !== null && Number.isSafeInteger(o.pid) && o.pid > 0 && typeof o.bootId === 'string' && typeof o.startedAt === 'string' && typeof o.command === 'string';
}

function readOwner(file: string): LockOwner | null {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isOwner(value) ? value : null;
  } catch {
    return null;
  }
}

/** The lock file as found: its inode (to remove exactly this one) and its owner (null when unreadable). */
function examine(file: string): { ino: number; owner: LockOwner | null } | null {
  try {
    const { ino } = lstatSync(file);
    return { ino, owner: readOwner(file) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Why a lock no longer counts, or null while its owner runs. */
function staleReason(owner: LockOwner | null, bootId: string): string | null {
  if (!owner) return 'unreadable';
  if (owner.bootId !== bootId) return 'it was taken before the last reboot';
  if (!isAlive(owner.pid)) return `process ${owner.pid} is no longer running`;
  return null;
}

/** link(2) the complete owner file to `to`; false when `to` exists. */
function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Remove `file` only if it is still the inode we found: renamed aside first, put back when it is not. */
function removeIfSame(file: string, ino: number): void {
  const aside = `${file}.stale-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (lstatSync(aside).ino !== ino) tryLink(aside, file);
  rmSync(aside, { force: true });
}

function writeOwnerFile(dir: string, owner: LockOwner): string {
  const temp = path.join(dir, `.lock-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(temp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY | fsc.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, JSON.stringify(owner));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

function runningMessage(owner: LockOwner): string {
  return (
    `Another pve-baseline is running (pid ${owner.pid}, "${owner.command}", started ${owner.startedAt}). ` +
    `Only one may change this node at a time. Finish or stop that one first.`
  );
}

export function acquireLock(dir: string, bootId: string, command: string): LockResult {
  makeDirectorySync(dir, 0o700);
  const file = path.join(dir, 'lock');
  const takeover = path.join(dir, 'lock.takeover');
  const me: LockOwner = { pid: process.pid, bootId, startedAt: new Date().toISOString(), command };
  const temp = writeOwnerFile(dir, me);
  let staleNote: string | undefined;
  let last: LockOwner = me;
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (tryLink(temp, file)) {
        const release = () => {
          const owner = readOwner(file);
          if (owner?.pid === me.pid && owner.startedAt === me.startedAt) rmSync(file, { force: true });
        };
        return { ok: true, release, ...(staleNote ? { staleNote } : {}) };
      }
      const found = examine(file);
      if (!found) continue; // released while we looked
      const stale = staleReason(found.owner, bootId);
      if (found.owner) last = found.owner;
      if (!stale) return { ok: false, owner: found.owner!, message: runningMessage(found.owner!) };
      // Stale: take it over, one starter at a time.
      if (!tryLink(temp, takeover)) {
        const other = examine(takeover);
        if (other && !staleReason(other.owner, bootId)) {
          // Another starter is taking the stale lock over this instant: it will hold the lock.
          return { ok: false, owner: other.owner!, message: runningMessage(other.owner!) };
        }
        // A starter died while taking over (a window of microseconds): clear its claim, try again.
        if (other) removeIfSame(takeover, other.ino);
        continue;
      }
      try {
        if (examine(file)?.ino === found.ino) {
          rmSync(file);
          staleNote = found.owner
            ? `A stale lock from an earlier run (pid ${found.owner.pid}, started ${found.owner.startedAt}) was removed: ${stale}.`
            : 'An unreadable lock file was removed.';
        }
      } finally {
        rmSync(takeover, { force: true });
      }
    }
  } finally {
    rmSync(temp, { force: true });
  }
  return {
    ok: false,
    owner: last,
    message: `The lock ${file} changed hands ${ATTEMPTS} times while pve-baseline tried to take it; another pve-baseline is starting. Try again.`,
  };
}
