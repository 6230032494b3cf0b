/**
 * The one way a command takes the node's lock: one pve-baseline changes the
 * node at a time. A held lock is reported with exit 3, and the lock is always
 * released when the command ends.
 */
import { acquireLock, type LockResult } from '../../engine/lock.ts';
import { EXIT } from '../args.ts';
import type { Runtime } from '../runtime.ts';
import type { Output } from './io.ts';

export interface HeldLock {
  release: () => void;
  /** Set when a stale lock of an earlier run was taken over: worth telling the operator. */
  staleNote?: string;
}

/** Take the lock without waiting; the caller decides what a held lock means. */
export function tryLock(runtime: Runtime, command: string): LockResult {
  return acquireLock(runtime.stateDir, runtime.node.bootId, command);
}

/** Run `body` under the lock; another running pve-baseline ends the command with exit 3. */
export async function withLock(runtime: Runtime, command: string, io: Output, body: (held: HeldLock) => Promise<number>): Promise<number> {
  const held = tryLock(runtime, command);
  if (!held.ok) {
    io.err(`pve-baseline: ${held.message}`);
    return EXIT.locked;
  }
  try {
    return await body(held);
  } finally {
    held.release();
  }
}
