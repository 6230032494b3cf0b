/**
 * Who applies a change, and who confirms it. `pve-baseline confirm` is a
 * proof only when a person logged in anew to run it: the session that
 * applied the change (the same login, a tmux window of it, the same SSH
 * connection) proves nothing, nor does a cron job or a service, nor a
 * confirmation before the change is live. And when the node's revert wins
 * the race, the confirmation says what the revert did, never "it stays".
 */
import type { Exec } from '../../system/exec.ts';
import type { Files } from '../../system/files.ts';
import { stateDir as defaultStateDir } from '../journal.ts';
import { assertRevertId, readIndex, revertPaths, type RevertSession } from './paths.ts';
import { activatedAt, disarmRevert, revertResult, type DisarmOptions } from './guard.ts';

/** The kernel's "no audit session" (an unset sessionid). */
const NO_AUDIT_SESSION = '4294967295';
/** Ancestors looked at for an SSH connection: more than any real process tree between sshd and us. */
const MAX_ANCESTORS = 64;

interface ProcStat {
  ppid: number;
  ttyNr: number;
}

/** /proc/PID/stat: "pid (comm) state ppid pgrp session tty_nr ..."; comm may hold spaces and parentheses. */
function parseStat(text: string | null): ProcStat | null {
  if (!text) return null;
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  const ttyNr = Number(fields[4]);
  return Number.isInteger(ppid) && Number.isInteger(ttyNr) ? { ppid, ttyNr } : null;
}

async function readOrNull(files: Files, file: string): Promise<string | null> {
  try {
    return await files.read(file);
  } catch {
    return null;
  }
}

function sshConnectionIn(environ: string | null): string | null {
  const entry = environ?.split('\0').find((e) => e.startsWith('SSH_CONNECTION='));
  const value = entry?.slice('SSH_CONNECTION='.length).trim();
  return value ? value : null;
}

/**
 * This process's session: its audit session (/proc/self/sessionid, kept
 * across sudo and su), its SSH connection (SSH_CONNECTION, or the nearest
 * ancestor's: sudo clears it from the environment), its controlling terminal.
 */
export async function currentSession(files: Files, opts: { env?: NodeJS.ProcessEnv; proc?: string } = {}): Promise<RevertSession> {
  const proc = opts.proc ?? '/proc';
  const env = opts.env ?? process.env;
  const audit = (await readOrNull(files, `${proc}/self/sessionid`))?.trim();
  const auditSession = audit && /^\d+$/.test(audit) && audit !== NO_AUDIT_SESSION ? audit : null;
  const self = parseStat(await readOrNull(files, `${proc}/self/stat`));
  const tty = self && self.ttyNr !== 0 ? `${(self.ttyNr >> 8) & 0xfff}:${(self.ttyNr & 0xff) | ((self.ttyNr >> 12) & 0xfff00)}` : null;
  let sshConnection = env.SSH_CONNECTION?.trim() || null;
  let pid = self?.ppid ?? 0;
  for (let hops = 0; !sshConnection && pid > 1 && hops < MAX_ANCESTORS; hops++) {
    sshConnection = sshConnectionIn(await readOrNull(files, `${proc}/${pid}/environ`));
    pid = parseStat(await readOrNull(files, `${proc}/${pid}/stat`))?.ppid ?? 0;
  }
  return { auditSession, sshConnection, tty };
}

export type ConfirmOutcome =
  /** The revert is disarmed: the change stays. */
  | { kind: 'kept' }
  /** Not confirmed, nothing changed: `reason` says why and what to do. */
  | { kind: 'refused'; reason: string }
  /** The node's revert claimed the change first: `result` is what it recorded ("reverted at ...", "FAILED at ...", or that it is still running). */
  | { kind: 'lost'; result: string };

export const REVERT_RUNNING = 'the revert is still running';

/**
 * Confirm the change armed as `id` from `session`, when that proves access:
 * refuses the session that applied it, a session with neither an SSH
 * connection nor a terminal, and any confirmation before the change is live.
 */
export async function confirmFromSession(exec: Exec, files: Files, id: string, session: RevertSession, opts: DisarmOptions = {}): Promise<ConfirmOutcome> {
  assertRevertId(id);
  const dir = opts.stateDir ?? defaultStateDir();
  const p = revertPaths(dir, id);
  const refused = (reason: string): ConfirmOutcome => ({ kind: 'refused', reason });
  if ((await readOrNull(files, p.marker)) === null) {
    // Not pending any more: say what became of it.
    const result = await revertResult(files, id, { stateDir: dir });
    if (result?.startsWith('disarmed')) return { kind: 'kept' };
    if (result) return { kind: 'lost', result };
    if ((await readOrNull(files, p.firing)) !== null) return { kind: 'lost', result: REVERT_RUNNING };
    return refused(`nothing of ${id} is waiting for confirmation`);
  }
  if (!session.sshConnection && !session.tty) {
    return refused('this session has neither an SSH connection nor a terminal (a cron job or a service): only a person who logs in anew proves access. Log in over SSH from a new terminal and run pve-baseline confirm there');
  }
  const index = await readIndex(files, p.index);
  const applied = index.entries.find((e) => e.id === id)?.session;
  if (!applied) {
    return refused(
      index.error
        ? `${index.error.message} Without it, the session that applied the change is unknown, so no session can prove anything`
        : `${p.index} does not record which session applied ${id}, so no session can prove anything`,
    );
  }
  if (applied.auditSession !== null && applied.auditSession === session.auditSession) {
    return refused(`this is the login that applied the change (audit session ${session.auditSession}); a window or a sudo of it proves nothing. Log in anew over SSH and run pve-baseline confirm there`);
  }
  if (applied.sshConnection !== null && applied.sshConnection === session.sshConnection) {
    return refused(`this is the SSH connection that applied the change (${session.sshConnection}). Log in anew over SSH and run pve-baseline confirm there`);
  }
  if ((await activatedAt(files, id, { stateDir: dir })) === null) {
    return refused('the change is not active yet, so a login now proves nothing about it. Run pve-baseline confirm once the wizard counts down (or apply reports it awaiting confirmation)');
  }
  const r = await disarmRevert(exec, files, id, { ...opts, stateDir: dir });
  if (r.disarmed) return { kind: 'kept' };
  return { kind: 'lost', result: r.reverted === 'the revert is running' ? REVERT_RUNNING : (r.reverted ?? REVERT_RUNNING) };
}
