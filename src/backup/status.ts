/**
 * What the last `pve-baseline backup` did, kept beside the journal in
 * <state>/config-backup/last.json (0600), as the check after a reboot keeps
 * postboot.json: a backup run by the timer must not wait for the journal's
 * lock while a wizard holds it. The config-backup step's verify, `check` and
 * the document read it.
 */
import path from 'node:path';
import type { Files } from '../system/files.ts';
import type { Check } from '../engine/step.ts';
import { BACKUP_DIR_NAME, type BackupSettings } from './settings.ts';

export interface BackupRun {
  at: string;
  ok: boolean;
  /** Why it failed, in the operator's terms (the first thing that went wrong). */
  error?: string;
  archive?: { name: string; path: string; sha256: string; bytes: number; files: number };
  copy?: { where: string; ok: boolean; detail?: string };
  drill?: { ok: boolean; source: 'remote' | 'local'; checks: Check[] };
  /** How long each part took, for the README's measured figures. */
  ms: { archive?: number; copy?: number; drill?: number };
}

export interface BackupStatus {
  last: BackupRun;
  /** The last run that was archived, copied and drilled without a fault. */
  lastGood?: BackupRun;
}

export const STATUS_FILE = 'last.json';

export function statusPath(stateDir: string): string {
  return path.join(stateDir, BACKUP_DIR_NAME, STATUS_FILE);
}

export async function readStatus(files: Pick<Files, 'read'>, stateDir: string): Promise<BackupStatus | null> {
  const text = await files.read(statusPath(stateDir)).catch(() => null);
  if (!text) return null;
  try {
    const status = JSON.parse(text) as BackupStatus;
    return typeof status.last?.at === 'string' && typeof status.last.ok === 'boolean' ? status : null;
  } catch {
    return null;
  }
}

/** The status after a run: a good run is also the last good one. */
export function nextStatus(previous: BackupStatus | null, run: BackupRun): BackupStatus {
  const lastGood = run.ok ? run : previous?.lastGood;
  return { last: run, ...(lastGood ? { lastGood } : {}) };
}

export async function writeStatus(files: Pick<Files, 'write'>, stateDir: string, status: BackupStatus): Promise<void> {
  await files.write(statusPath(stateDir), `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600, uid: 0, gid: 0 });
}

/** A good backup older than this is reported: the schedule's period, and a day's grace (the timer's random delay, a node that was off). */
export function staleAfterDays(schedule: BackupSettings['schedule']): number {
  return schedule === 'daily' ? 2 : 8;
}
