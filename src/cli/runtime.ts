/**
 * Everything a command needs to touch the node, built once: the side-effect
 * implementations, what the node is, and the journal and backups under the
 * state directory.
 */
import path from 'node:path';
import { Journal, stateDir } from '../engine/journal.ts';
import { acquireLock, type LockResult } from '../engine/lock.ts';
import { detectNode, type NodeInfo } from '../system/detect.ts';
import { LocalExec, type Exec } from '../system/exec.ts';
import { BackupStore, LocalFiles, type Files } from '../system/files.ts';

export interface Runtime {
  exec: Exec;
  files: Files;
  node: NodeInfo;
  stateDir: string;
  backupsDir: string;
}

export async function createRuntime(env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const exec = new LocalExec();
  const dir = stateDir(env);
  return { exec, files: new LocalFiles(), node: await detectNode(exec, env), stateDir: dir, backupsDir: path.join(dir, 'backups') };
}

export function openJournal(runtime: Runtime): Journal {
  return Journal.open(runtime.stateDir, runtime.node.bootId);
}

export function backupStore(runtime: Runtime): BackupStore {
  return new BackupStore(runtime.backupsDir);
}

export function lock(runtime: Runtime, command: string): LockResult {
  return acquireLock(runtime.stateDir, runtime.node.bootId, command);
}
