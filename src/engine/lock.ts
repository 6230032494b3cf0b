/**
 * One wizard at a time. The lock is a file created with O_EXCL holding the
 * owner's pid, boot id and start time. A lock whose process is gone (or that
 * was taken before the last reboot) is stale: it is removed and the operator
 * is told what happened, instead of being asked to delete files by hand.
 */
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface LockOwner {
  pid: number;
  bootId: string;
  startedAt: string;
  command: string;
}

export type LockResult =
  | { ok: true; release: () => void; staleNote?: string }
  | { ok: false; owner: LockOwner; message: string };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

export function acquireLock(dir: string, bootId: string, command: string): LockResult {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'lock');
  const me: LockOwner = { pid: process.pid, bootId, startedAt: new Date().toISOString(), command };
  let staleNote: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
      const release = () => {
        if (readOwner(file)?.pid === process.pid) rmSync(file, { force: true });
      };
      return { ok: true, release, ...(staleNote ? { staleNote } : {}) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(file);
    const stale =
      !owner || owner.bootId !== bootId ? 'it was taken before the last reboot' : !isAlive(owner.pid) ? `process ${owner.pid} is no longer running` : null;
    if (owner && !stale) {
      return {
        ok: false,
        owner,
        message:
          `Another pve-baseline is running (pid ${owner.pid}, "${owner.command}", started ${owner.startedAt}). ` +
          `Only one may change this node at a time. Finish or stop that one first.`,
      };
    }
    staleNote = owner
      ? `A stale lock from an earlier run (pid ${owner.pid}, started ${owner.startedAt}) was removed: ${stale}.`
      : 'An unreadable lock file was removed.';
    rmSync(file, { force: true });
  }
  throw new Error(`could not take the lock ${file}`);
}
