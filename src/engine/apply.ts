/**
 * Applying a plan and undoing it. Every change is recorded in the journal
 * the moment it has happened (a file's backup before it is written), so an
 * interruption at any point leaves a record of exactly what to undo.
 */
import { describeApiCall, formatArgv, serviceArgv, inverseServiceAction, type ApiChange, type Change, type CommandChange, type Reveal } from './change.ts';
import type { PveApi } from '../pve/api.ts';
import type { ChangeProgress, RevealRequest } from './events.ts';
import { Secret } from '../system/secret.ts';
import type { AppliedChange, Journal } from './journal.ts';
import { CommandError, runChecked, type Exec } from '../system/exec.ts';
import type { BackupStore, Files } from '../system/files.ts';

export interface ApplyEnv {
  exec: Exec;
  files: Files;
  backups: BackupStore;
  journal: Journal;
  onLine: (line: string) => void;
  onChange?: (index: number, change: Change, phase: 'started' | 'finished') => void;
  /** A long command's progress (CommandChange.progress), a few times a second at most. */
  onProgress?: (index: number, progress: ChangeProgress) => void;
  /** For ApiChanges: the node's API. `reveal`: how values are shown once (the operator's; absent headless). */
  api?: PveApi;
  reveal?: (request: Omit<RevealRequest, 'stepId'>) => Promise<void>;
}

/** Replaces every line of a command's input, and every value it asks to hide, with [secret]. */
function scrubber(change: CommandChange): (text: string) => string {
  const values = [
    ...(change.input?.reveal().split('\n') ?? []),
    ...(change.hide ?? []).map((s) => s.reveal()),
  ]
    .filter((v) => v.trim().length > 0)
    .sort((a, b) => b.length - a.length); // longest first, so a part never leaves the rest of a line behind
  return (text) => values.reduce((out, value) => out.split(value).join('[secret]'), text);
}

/**
 * Refuses when a file a command is about to write is no longer what the plan
 * was made from (someone edited it meanwhile): the first declared write of
 * each path counts, since later commands see what earlier ones wrote.
 */
export async function assertUnchangedSincePlan(files: Pick<Files, 'read'>, changes: readonly Change[]): Promise<void> {
  const seen = new Set<string>();
  for (const change of changes) {
    if (change.kind !== 'command' && change.kind !== 'api') continue;
    for (const write of change.writes ?? []) {
      if (seen.has(write.path)) continue;
      seen.add(write.path);
      const now = await files.read(write.path);
      if (now !== write.before) throw new Error(`${write.path} changed since the plan was made; nothing was run. Plan again to see the file as it is now`);
    }
  }
}

export async function applyChanges(stepId: string, backupSet: string, changes: readonly Change[], env: ApplyEnv): Promise<void> {
  for (const [index, change] of changes.entries()) {
    env.onChange?.(index, change, 'started');
    switch (change.kind) {
      case 'file': {
        // The first backup in this apply is the original; keep it across a resumed apply.
        const already = env.journal.step(stepId)?.applied.some((a) => a.kind === 'file' && a.path === change.path);
        if (!already) {
          const backup = await env.backups.backup(backupSet, change.path);
          env.journal.recordApplied(stepId, { kind: 'file', path: change.path, backup });
        }
        if (change.after === null) await env.files.remove(change.path);
        else {
          await env.files.write(change.path, change.after, {
            ...(change.mode !== undefined ? { mode: change.mode } : {}),
            ...(change.owner ? { uid: change.owner.uid, gid: change.owner.gid } : {}),
          });
        }
        break;
      }
      case 'command': {
        await backUpDeclaredWrites(stepId, backupSet, change, env);
        if (change.reveal) await runRevealing(stepId, backupSet, change, change.reveal, env);
        else {
          const progress = change.progress === 'apt' ? await aptProgressReader((p) => env.onProgress?.(index, p), env.onLine) : undefined;
          const log = change.log ? logFile(env, change.log, backupSet) : undefined;
          if (change.survivesExit) await runSurvivingExit(stepId, change, env, progress, log);
          else await runCommand(change, env, progress, log);
        }
        env.journal.recordApplied(stepId, { kind: 'command', argv: change.argv, ...(change.undo ? { undo: change.undo } : {}) });
        break;
      }
      case 'service':
        await runChecked(env.exec, serviceArgv(change), { onLine: env.onLine });
        env.journal.recordApplied(stepId, { kind: 'service', unit: change.unit, action: change.action });
        break;
      case 'api':
        await applyApiCall(stepId, backupSet, change, env);
        break;
    }
    env.onChange?.(index, change, 'finished');
  }
}

async function runCommand(change: CommandChange, env: ApplyEnv, progress?: ProgressReader, log?: string): Promise<void> {
  // A program may echo what it was fed (chpasswd does on some errors):
  // scrub the secret from its output and from the error before they travel on.
  const scrub = scrubber(change);
  const kept: string[] = [`$ ${formatArgv(change.argv)}`];
  env.onLine(kept[0]!);
  let exitCode = 1;
  try {
    const result = await runChecked(env.exec, change.argv, {
      onLine: (line) => {
        const clean = scrub(line);
        if (log) kept.push(clean);
        env.onLine(clean);
      },
      ...(change.input ? { input: change.input } : {}),
      ...(progress ? { onStatus: progress.feed } : {}),
    });
    exitCode = result.exitCode;
  } catch (error) {
    throw new Error(`${scrub((error as Error).message)}${log ? ` (the whole output: ${log})` : ''}`);
  } finally {
    progress?.finish(exitCode);
    if (log) {
      kept.push(`exit code ${exitCode}`);
      await env.files.write(log, `${kept.join('\n')}\n`, { mode: 0o600, uid: 0, gid: 0 }).catch((error: Error) => env.onLine(`could not keep the output in ${log}: ${error.message}`));
    }
  }
}

/**
 * A command that must finish even if pve-baseline ends first
 * (CommandChange.survivesExit): it writes its output into the log itself,
 * the journal names it while it runs, and the log's last line is its exit
 * code when pve-baseline saw it end.
 */
async function runSurvivingExit(stepId: string, change: CommandChange, env: ApplyEnv, progress: ProgressReader | undefined, log: string | undefined): Promise<void> {
  if (!log) throw new Error(`${formatArgv(change.argv)}: a command that survives pve-baseline needs a log to write to`);
  if (change.input || change.reveal) throw new Error(`${formatArgv(change.argv)}: a command that survives pve-baseline takes no input and reveals nothing (its output goes to a file as it is)`);
  const header = `$ ${formatArgv(change.argv)}`;
  env.onLine(header);
  await env.files.write(log, `${header}\n`, { mode: 0o600, uid: 0, gid: 0 });
  let exitCode = 1;
  try {
    const result = await runChecked(env.exec, change.argv, {
      onLine: env.onLine,
      ...(progress ? { onStatus: progress.feed } : {}),
      detach: {
        output: log,
        status: log.replace(/\.log$/, '.status'),
        onStart: (pid) => env.journal.setRunning(stepId, { argv: [...change.argv], pid, bootId: env.journal.bootId, startedAt: new Date().toISOString(), log }),
      },
    });
    exitCode = result.exitCode;
  } catch (error) {
    if (error instanceof CommandError) exitCode = error.result.exitCode;
    throw new Error(`${(error as Error).message} (the whole output: ${log})`);
  } finally {
    env.journal.setRunning(stepId, undefined);
    progress?.finish(exitCode);
    await env.files.remove(log.replace(/\.log$/, '.status')).catch(() => undefined);
    const text = (await env.files.read(log)) ?? `${header}\n`;
    await env.files.write(log, `${text}${text.endsWith('\n') ? '' : '\n'}exit code ${exitCode}\n`, { mode: 0o600, uid: 0, gid: 0 }).catch((error: Error) => env.onLine(`could not finish ${log}: ${error.message}`));
  }
}

/** Where a command's whole output is kept: under the state directory, by the apply that ran it. */
function logFile(env: ApplyEnv, name: string, applyId: string): string {
  return `${env.journal.dir}/logs/${name}-${applyId}.log`;
}

interface ProgressReader {
  feed: (chunk: string) => void;
  finish: (exitCode: number) => void;
}

/** Reports at most this often while a command runs (a serial console's budget); the first and last always. */
export const PROGRESS_EVERY_MS = 250;

/**
 * A reader of apt's status channel (src/apt/progress.ts, loaded only when an
 * upgrade runs). Progress goes out at most every
 * PROGRESS_EVERY_MS; a configuration file kept or replaced and a dpkg error
 * become output lines of their own, as they happen.
 */
async function aptProgressReader(report: (p: ChangeProgress) => void, line: (text: string) => void, now: () => number = Date.now): Promise<ProgressReader> {
  const { AptStatusParser } = await import('../apt/progress.ts');
  const parser = new AptStatusParser();
  let lastAt = -Infinity;
  let conffiles = 0;
  let errors = 0;
  // A report held back by the interval goes out when the interval ends: the last status
  // before a long pause (a kernel's postinst) must not wait for the next one to be shown.
  let held: NodeJS.Timeout | undefined;
  const send = (force: boolean) => {
    const p = parser.progress;
    for (const c of p.conffiles.slice(conffiles)) {
      line(c.outcome === 'kept-local' ? `kept your ${c.conffile}${c.package ? ` (${c.package})` : ''}; the package's version is beside it as ${c.conffile}.dpkg-dist` : `took the package's ${c.conffile}${c.package ? ` (${c.package})` : ''}: it was not changed here`);
    }
    for (const e of p.errors.slice(errors)) line(`dpkg error (${e.package}): ${e.message}`);
    conffiles = p.conffiles.length;
    errors = p.errors.length;
    const wait = PROGRESS_EVERY_MS - (now() - lastAt);
    if (!force && wait > 0) {
      held ??= setTimeout(() => {
        held = undefined;
        send(false);
      }, wait);
      return;
    }
    clearTimeout(held);
    held = undefined;
    lastAt = now();
    const label = p.done ? (p.exitCode === 0 ? `done: ${p.installed.length} package(s) configured` : `stopped: apt-get exited with ${p.exitCode}`) : p.phase === 'download' ? `downloading${p.download ? `: ${p.download}` : ''}` : (p.action ?? 'dpkg starts');
    report({ percent: Math.floor(p.percent), label, done: p.done });
  };
  return {
    feed: (chunk) => {
      parser.feed(chunk);
      send(false);
    },
    finish: (exitCode) => {
      parser.finish(exitCode);
      send(true);
    },
  };
}

/**
 * A command whose JSON output holds a value to show once (a new token's
 * secret): its output goes nowhere but the reveal, and a failure says only
 * what the program wrote on stderr.
 */
async function runRevealing(stepId: string, backupSet: string, change: CommandChange, reveal: Reveal, env: ApplyEnv): Promise<void> {
  env.onLine(`$ ${formatArgv(change.argv)}`);
  const result = await env.exec.run(change.argv, change.input ? { input: change.input } : {});
  if (result.exitCode !== 0) {
    const why = scrubber(change)(result.stderr.trim().split('\n').slice(-5).join('\n'));
    throw new Error(`${formatArgv(change.argv)} exited with ${result.exitCode}${why ? `: ${why}` : ''}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(result.stdout);
  } catch {
    throw new Error(`${formatArgv(change.argv)}: its output is not the JSON expected (not shown: it may hold the ${reveal.field})`);
  }
  await handOut(stepId, backupSet, formatArgv(change.argv), data, reveal, env);
}

/**
 * A revealed value: written to the operator's file first (so a stopped wizard
 * cannot lose it), then shown. Only the file is recorded, never the value; a
 * file that did not exist is removed again by a rollback, while one that did
 * (a rotation) is replaced and not backed up, since a copy would keep the old
 * secret.
 */
async function handOut(stepId: string, backupSet: string, what: string, data: unknown, reveal: Reveal, env: ApplyEnv): Promise<void> {
  const raw = (data as Record<string, unknown> | null)?.[reveal.field];
  const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is string => typeof v === 'string' && v !== '').map((v) => new Secret(v));
  if (!values.length) throw new Error(`${what}: Proxmox returned no ${reveal.field}`);
  if (reveal.saveTo) {
    const { path, line } = reveal.saveTo;
    // An existing file keeps its mode when written over: start it anew, so it is 0600 whatever it was.
    if ((await env.files.meta(path)) === null) env.journal.recordApplied(stepId, { kind: 'file', path, backup: await env.backups.backup(backupSet, path) });
    else await env.files.remove(path);
    await env.files.write(path, values.map((v) => `${line.split('{value}').join(v.reveal())}\n`).join(''), { mode: 0o600, uid: 0, gid: 0 });
    env.onLine(`wrote the ${reveal.field} to ${path} (mode 0600)`);
  }
  if (env.reveal) await env.reveal({ title: reveal.title, advice: reveal.advice, values, ...(reveal.saveTo ? { savedTo: reveal.saveTo.path } : {}) });
}

/**
 * The files a command or an API call writes: backed up once (a resumed or
 * guarded apply may have done it already), and only while they are still what
 * the plan was made from (an optimistic lock, like a Proxmox config digest,
 * for every program).
 */
async function backUpDeclaredWrites(stepId: string, backupSet: string, change: CommandChange | ApiChange, env: ApplyEnv): Promise<void> {
  const recorded = (path: string) => env.journal.step(stepId)?.applied.some((a) => a.kind === 'file' && a.path === path);
  const pending = (change.writes ?? []).filter((w) => !recorded(w.path));
  if (!pending.length) return;
  await assertUnchangedSincePlan(env.files, [{ ...change, writes: pending }]);
  for (const write of pending) env.journal.recordApplied(stepId, { kind: 'file', path: write.path, backup: await env.backups.backup(backupSet, write.path) });
}

/**
 * One API call: its files backed up first (like a command's), the call made
 * as its user, the values it reveals shown once and dropped. Only the method
 * and path are recorded; its files come back from their backups.
 */
async function applyApiCall(stepId: string, backupSet: string, change: ApiChange, env: ApplyEnv): Promise<void> {
  if (!env.api) throw new Error(`${describeApiCall(change)}: no API of this node to call`);
  if (change.reveal && !env.reveal && !change.reveal.saveTo) throw new Error(`${describeApiCall(change)}: its ${change.reveal.field} can only be shown once in the wizard`);
  await backUpDeclaredWrites(stepId, backupSet, change, env);
  env.onLine(`$ ${describeApiCall(change)}`);
  const data = await env.api.call(change.as, change.method, change.path, change.params);
  env.journal.recordApplied(stepId, { kind: 'api', method: change.method, path: change.path, user: change.as.user });
  if (change.reveal) await handOut(stepId, backupSet, describeApiCall(change), data, change.reveal, env);
}

/**
 * Undo what was applied, newest first: restore files byte for byte, run each
 * command's undo, invert service start/stop/enable/disable. Reloads and
 * restarts are repeated last, so services pick up the restored files.
 * Returns the problems met; an empty list means the node is as it was.
 */
export async function rollbackApplied(applied: readonly AppliedChange[], env: Omit<ApplyEnv, 'journal' | 'files'>): Promise<string[]> {
  const problems: string[] = [];
  const reloads: AppliedChange[] = [];
  for (const record of [...applied].reverse()) {
    try {
      switch (record.kind) {
        case 'file':
          await env.backups.restore(record.backup);
          env.onLine(`restored ${record.path}`);
          break;
        case 'command':
          if (record.undo) {
            env.onLine(`$ ${formatArgv(record.undo)}`);
            await runChecked(env.exec, record.undo, { onLine: env.onLine });
          }
          break;
        case 'service':
          if (record.action === 'reload' || record.action === 'restart') reloads.push(record);
          else await runChecked(env.exec, ['systemctl', inverseServiceAction(record.action), record.unit], { onLine: env.onLine });
          break;
        case 'api':
          break; // its files are restored from their own records
      }
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  for (const record of reloads) {
    if (record.kind !== 'service') continue;
    try {
      await runChecked(env.exec, ['systemctl', record.action, record.unit], { onLine: env.onLine });
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  return problems;
}

/** What undoing a record would do, one line each, newest first: shown before a revert. */
export function describeUndo(applied: readonly AppliedChange[]): string[] {
  return [...applied].reverse().map((record) => {
    switch (record.kind) {
      case 'file':
        return record.backup.existed
          ? `restore ${record.path} from ${record.backup.copy} (sha256 ${record.backup.sha256?.slice(0, 12)}…)`
          : `remove ${record.path} (it did not exist before)`;
      case 'command':
        return record.undo ? `run ${record.undo.join(' ')} (undoes: ${record.argv.join(' ')})` : `nothing to undo for: ${record.argv.join(' ')}`;
      case 'service':
        return record.action === 'reload' || record.action === 'restart'
          ? `${record.action} ${record.unit} again, after the files are back`
          : `systemctl ${inverseServiceAction(record.action)} ${record.unit}`;
      case 'api':
        return `nothing to call for ${record.method} ${record.path} (as ${record.user}): the files it wrote are restored`;
    }
  });
}
