/**
 * One `pve-baseline backup` run, as the settings say (src/backup/settings.ts):
 * archive (src/backup/archive.ts), keep the last N here, copy off the node
 * and read it back (src/backup/remote.ts), drill the copy that left the node
 * (src/backup/drill.ts), and record how it went (src/backup/status.ts).
 * A copy that fails keeps the local archive and says why; nothing here
 * writes to the live configuration.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import type { Check } from '../engine/step.ts';
import { createArchive, pruneLocal } from './archive.ts';
import { ourArchives } from './contents.ts';
import { drill } from './drill.ts';
import { copyToPath, fetchSftp, uploadSftp } from './remote.ts';
import { BACKUP_DIR_NAME, describeDestination, type BackupSettings } from './settings.ts';
import { nextStatus, readStatus, writeStatus, type BackupRun } from './status.ts';

export interface BackupEnv {
  exec: Exec;
  files: Files;
  stateDir: string;
  node: string;
  /** Where the live /etc/pve is (the drill compares with it). */
  etcPve?: string;
  /** A line of progress for the operator. */
  log: (line: string) => void;
  now?: () => Date;
}

export interface RunOptions {
  /** Only drill the newest archive (the copy off the node when there is one). */
  drillOnly?: boolean;
  /** The age identity to open archives with, when the node keeps none. */
  identity?: string;
}

export function archiveDir(stateDir: string): string {
  return path.join(stateDir, BACKUP_DIR_NAME, 'archives');
}

function scratchDir(stateDir: string): string {
  return path.join(stateDir, BACKUP_DIR_NAME);
}

/** The identity's own recipient (`age-keygen -y`), so a made identity needs no recipient written down. */
async function identityRecipient(exec: Exec, identityFile: string): Promise<string> {
  const r = await exec.run(['age-keygen', '-y', identityFile], { timeoutMs: 30_000 });
  const recipient = r.stdout.trim();
  if (r.exitCode !== 0 || !recipient.startsWith('age1')) throw new Error(`cannot read the recipient of the identity ${identityFile} (age-keygen -y exited with ${r.exitCode})`);
  return recipient;
}

const elapsed = (since: number) => Math.round(performance.now() - since);

/** The archive to drill: the copy off the node (fetched into the scratch place), else the local one. */
async function drillSource(settings: BackupSettings, env: BackupEnv, local: string | undefined): Promise<{ archive: string; source: 'remote' | 'local'; cleanup: () => Promise<void> } | null> {
  const d = settings.destination;
  if (d.kind === 'sftp') {
    const toDir = await fs.mkdtemp(path.join(scratchDir(env.stateDir), 'fetched-'));
    const fetched = await fetchSftp({ host: d.host, port: d.port, user: d.user, privateKeyPath: d.keyFile, hostKey: d.hostKey, dir: d.dir, node: env.node, toDir });
    return { archive: fetched.path, source: 'remote', cleanup: () => fs.rm(toDir, { recursive: true, force: true }) };
  }
  const names = ourArchives(await fs.readdir(d.dir).catch(() => []), env.node);
  if (names[0]) return { archive: path.join(d.dir, names[0]), source: 'remote', cleanup: async () => undefined };
  return local ? { archive: local, source: 'local', cleanup: async () => undefined } : null;
}

async function runDrill(settings: BackupSettings, env: BackupEnv, opts: RunOptions, local: string | undefined): Promise<BackupRun['drill'] & { error?: string }> {
  const identityFile = opts.identity ?? settings.identityFile;
  if (!identityFile) return { ok: false, source: 'local', checks: [], error: 'no identity on this node to open the archive with: drill with pve-baseline backup --drill --identity FILE' };
  const source = await drillSource(settings, env, local);
  if (!source) return { ok: false, source: 'local', checks: [], error: 'no archive to drill yet' };
  try {
    env.log(`drilling ${source.source === 'remote' ? 'the copy off the node' : 'the local archive'}: ${path.basename(source.archive)}`);
    const checks: Check[] = await drill({ exec: env.exec, archive: source.archive, identityFile, scratchParent: scratchDir(env.stateDir), live: { etcPve: env.etcPve ?? '/etc/pve', nodeName: env.node } });
    const failed = checks.filter((c) => !c.ok);
    return { ok: failed.length === 0, source: source.source, checks, ...(failed.length ? { error: `the restore drill failed: ${failed.map((c) => `${c.label}${c.detail ? ` (${c.detail})` : ''}`).join('; ')}` } : {}) };
  } finally {
    await source.cleanup();
  }
}

export async function runBackup(settings: BackupSettings, env: BackupEnv, opts: RunOptions = {}): Promise<BackupRun> {
  const now = env.now ?? (() => new Date());
  const at = now().toISOString();
  const run: BackupRun = { at, ok: false, ms: {} };
  const previous = await readStatus(env.files, env.stateDir);
  const where = describeDestination(settings.destination);
  try {
    await fs.mkdir(scratchDir(env.stateDir), { recursive: true, mode: 0o700 });
    const outDir = archiveDir(env.stateDir);
    let local: string | undefined;
    if (!opts.drillOnly) {
      const recipients = [...settings.recipients, ...(settings.identityFile ? [await identityRecipient(env.exec, settings.identityFile)] : [])];
      env.log('archiving: config.db (online backup), the /etc/pve files, the node\'s configuration, the facts');
      let t = performance.now();
      const archive = await createArchive({ exec: env.exec, node: env.node, outDir, recipients, now: now(), journal: path.join(env.stateDir, 'journal.json') });
      run.ms.archive = elapsed(t);
      run.archive = { name: archive.name, path: archive.path, sha256: archive.sha256, bytes: archive.bytes, files: archive.files };
      local = archive.path;
      env.log(`archived ${archive.files} files: ${archive.name} (${archive.bytes} bytes, sha256 ${archive.sha256})`);
      const pruned = await pruneLocal(outDir, settings.keep, env.node);
      if (pruned.length) env.log(`kept the last ${settings.keep} here; removed ${pruned.join(', ')}`);

      t = performance.now();
      env.log(`copying to ${where}, then reading it back`);
      try {
        const d = settings.destination;
        if (d.kind === 'sftp') await uploadSftp({ host: d.host, port: d.port, user: d.user, privateKeyPath: d.keyFile, hostKey: d.hostKey, dir: d.dir, file: archive.path, keep: settings.keep });
        else await copyToPath({ dir: d.dir, file: archive.path, keep: settings.keep });
        run.copy = { where, ok: true };
      } catch (error) {
        run.copy = { where, ok: false, detail: (error as Error).message };
        run.error = `not copied off the node: ${(error as Error).message}; the archive is kept here: ${archive.path}`;
        return run;
      } finally {
        run.ms.copy = elapsed(t);
      }
    } else {
      local = ourArchives(await fs.readdir(outDir).catch(() => []), env.node).map((n) => path.join(outDir, n))[0];
    }

    const t = performance.now();
    const drilled = await runDrill(settings, env, opts, local);
    run.ms.drill = elapsed(t);
    const { error, ...result } = drilled;
    run.drill = result;
    if (error) {
      run.error = error;
      return run;
    }
    run.ok = true;
    return run;
  } catch (error) {
    run.error = (error as Error).message;
    return run;
  } finally {
    // A drill alone is recorded on the run whose archives it opened; it is not a new backup.
    const record = opts.drillOnly && previous ? { ...previous.last, ok: previous.last.ok && run.ok, ...(run.drill ? { drill: run.drill } : {}), ...(run.error ? { error: run.error } : {}) } : run;
    await writeStatus(env.files, env.stateDir, nextStatus(previous, record));
  }
}
