/**
 * Everything a command needs to touch the node, built once: the side-effect
 * implementations, what the node is, and the journal and backups under the
 * state directory.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { Journal, stateDir } from '../engine/journal.ts';
import { detectNode, type NodeInfo } from '../system/detect.ts';
import { UsageError } from './args.ts';
import { LocalExec, type Exec } from '../system/exec.ts';
import { BackupStore, FileRefusedError, LocalFiles, openPlace, type Files } from '../system/files.ts';
import type { PveApi } from '../pve/api.ts';
import { LocalPveApi } from '../pve/api-client.ts';

export interface Runtime {
  exec: Exec;
  files: Files;
  node: NodeInfo;
  /** This node's Proxmox API (LocalPveApi); absent in tests that need none. */
  api?: PveApi;
  stateDir: string;
  backupsDir: string;
}

export async function createRuntime(env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const exec = new LocalExec();
  const dir = stateDir(env);
  await checkStateDir(dir, env);
  // Nothing is read or dialled until a step makes a call (the CA file is read then).
  const api = new LocalPveApi();
  return { exec, files: new LocalFiles(), node: await detectNode(exec, env), api, stateDir: dir, backupsDir: path.join(dir, 'backups') };
}

export function openJournal(runtime: Runtime): Journal {
  return Journal.open(runtime.stateDir, runtime.node.bootId);
}

export function backupStore(runtime: Runtime): BackupStore {
  return new BackupStore(runtime.backupsDir);
}

/**
 * The state directory holds what root trusts later (the journal, the backups
 * it restores from), so nobody else may be able to put anything there: an
 * absolute path, reached through no link another user made, owned by root
 * and writable by nobody else. It may be missing: it is made on first use.
 */
async function checkStateDir(dir: string, env: NodeJS.ProcessEnv): Promise<void> {
  const named = env.PVE_BASELINE_STATE_DIR ? ' (PVE_BASELINE_STATE_DIR)' : '';
  const refuse = (why: string) => new UsageError(`the state directory ${JSON.stringify(dir).slice(1, -1)}${named} ${why}; nothing was changed.`);
  if (/[\x00-\x1f\x7f]/.test(dir)) throw refuse('has a control character (a line break?) in its name');
  if (!path.isAbsolute(dir)) throw refuse('must be an absolute path');
  let place;
  try {
    place = await openPlace(dir, { lastLink: 'follow', what: 'the state directory' });
  } catch (error) {
    if (error instanceof FileRefusedError) throw refuse(`is not safe to use: ${error.reason}`);
    const code = (error as NodeJS.ErrnoException).code;
    // Missing is fine; unreadable (not root) is for each command to say. A file on the way is not.
    if (code === 'ENOTDIR') throw refuse('is not a directory (a file is on its path)');
    return;
  }
  try {
    const st = await lstat(place.at()).catch(() => null);
    if (!st) return;
    if (!st.isDirectory()) throw refuse('is not a directory; give a directory, or move the file away');
    if (st.uid !== 0 && st.uid !== process.geteuid?.()) throw refuse(`belongs to uid ${st.uid}, not root; another user could plant files in it`);
    if (st.mode & 0o022) throw refuse(`is writable by other users (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); make it 0700`);
  } finally {
    await place.close();
  }
}
