/**
 * The revert the node owns (lockout protocol): arm it, disarm it, run it now,
 * list what is pending, read its result, wait for a confirmation from another
 * session.
 *
 * Before a lockout-risk change is activated, the revert program and its data
 * are written next to the journal and armed on the node itself: a transient
 * systemd timer (`systemd-run --on-active=`), or a detached `setsid` sleeper
 * where there is no systemd, plus a boot hook that runs every still-pending
 * revert before sshd starts. Nothing of it depends on this process: the
 * wizard may be SIGKILLed, its SSH session may drop, the node may reboot; the
 * revert fires unless the change is confirmed (disarmed) in time.
 *
 * Record first, arm second: the index entry is written before the marker and
 * the timer, so a kill at any point leaves something `status` shows. Each
 * arming has its own id (newRevertId), and an id is never armed twice.
 *
 * Confirming and firing race for the same marker with rename(2): whoever
 * renames pending/<id> first wins, so the journal can say truthfully which
 * of the two happened.
 */
import path from 'node:path';
import type { Exec, ExecResult } from '../../system/exec.ts';
import type { Files } from '../../system/files.ts';
import { stateDir as defaultStateDir } from '../journal.ts';
import {
  assertRevertId,
  BOOT_UNIT,
  DEFAULT_REVERT_SECONDS,
  DEFAULT_UNIT_DIR,
  ID_PATTERN,
  markerText,
  parseMarker,
  readIndex,
  revertPaths,
  timerUnit,
  writeIndex,
  type ArmedWith,
  type IndexEntry,
  type RevertIndexError,
  type RevertSession,
} from './paths.ts';
import { isRevertData, managesUnits, program, renderBootUnit } from './script.ts';

export interface ArmOptions {
  id: string;
  /** What renderRevertScript made for this id (the data the revert program reads). */
  script: string;
  /** Seconds until it fires; default 180. */
  seconds?: number;
  stateDir?: string;
  unitDir?: string;
  /** False: never run systemctl on the node's units (see RenderOptions.manageUnits). */
  manageUnits?: boolean;
  /** Skip systemd-run and use the setsid sleeper (tests). */
  forceFallback?: boolean;
  /** Clock (tests). */
  now?: () => number;
  /** Who applies the change (currentSession): `pve-baseline confirm` refuses this same session. */
  session?: RevertSession;
}

export interface RevertHandle {
  id: string;
  /** Epoch ms when it fires. */
  deadline: number;
  seconds: number;
  armedWith: ArmedWith;
  /** How the boot hook is installed: 'enabled' (systemctl enable), 'symlink', or 'none' (no systemd). */
  bootHook: 'enabled' | 'symlink' | 'none';
  /** The revert program: `sh SCRIPT now` reverts by hand. */
  script: string;
  unit?: string;
  /** What did not work on the way (e.g. why systemd-run was not used). */
  notes: string[];
}

function brief(r: ExecResult): string {
  return (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ') || `exit ${r.exitCode}`;
}

function reason(error: unknown): string {
  return (error as Error).message;
}

async function exists(files: Files, file: string): Promise<boolean> {
  return (await files.meta(file)) !== null || (await files.read(file).catch(() => null)) !== null;
}

async function dropFromIndex(files: Files, file: string, id: string): Promise<void> {
  const index = await readIndex(files, file);
  // A damaged index is left as it is, for the operator to see; the markers stay the truth.
  if (index.error || !index.entries.some((e) => e.id === id)) return;
  await writeIndex(
    files,
    file,
    index.entries.filter((e) => e.id !== id),
  );
}

/**
 * Arm the revert: record it in the index, write the program, its data and the
 * boot hook, write the pending marker, then start the timer (or the sleeper).
 * Throws when nothing could be armed, when the id was armed before, or when
 * the index is damaged: the caller must then not activate anything.
 */
export async function armRevert(exec: Exec, files: Files, opts: ArmOptions): Promise<RevertHandle> {
  assertRevertId(opts.id);
  const id = opts.id;
  if (!isRevertData(opts.script, id)) throw new Error(`the revert of ${id}: the script given is not what renderRevertScript made for this id`);
  const seconds = Math.max(1, Math.round(opts.seconds ?? DEFAULT_REVERT_SECONDS));
  const dir = opts.stateDir ?? defaultStateDir();
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const p = revertPaths(dir, id);
  const now = opts.now ?? Date.now;
  const notes: string[] = [];

  // One arming per id: an old timer of the same id could otherwise claim the new change.
  const index = await readIndex(files, p.index);
  if (index.error) throw index.error;
  if (index.entries.some((e) => e.id === id)) throw new Error(`the revert ${id} was armed before (${p.index} lists it); each arming needs a new id`);
  for (const [what, file] of [
    ['pending marker', p.marker],
    ['claimed marker', p.firing],
    ['result', p.result],
    ['program', p.script],
    ['data', p.data],
  ] as const) {
    if (await exists(files, file)) throw new Error(`the revert ${id} was armed before: its ${what} ${file} exists; each arming needs a new id`);
  }

  // Record first: from here on `status` and `confirm` know of it, whatever happens next.
  const entry: IndexEntry = { id, deadline: now() + seconds * 1000, seconds, script: p.script, ...(opts.session ? { session: opts.session } : {}) };
  await writeIndex(files, p.index, [...index.entries, entry]);

  const undo = async () => {
    await files.remove(p.marker);
    await dropFromIndex(files, p.index, id);
    await files.remove(p.script);
    await files.remove(p.data);
  };
  try {
    await files.write(p.script, program('revert.sh'), { mode: 0o700, uid: 0, gid: 0 });
    await files.write(p.data, opts.script, { mode: 0o600, uid: 0, gid: 0 });
    await files.write(p.bootRunner, program('at-boot.sh'), { mode: 0o700, uid: 0, gid: 0 });
  } catch (error) {
    await undo();
    throw new Error(`could not arm the revert of ${id}: ${reason(error)}`);
  }

  // The boot hook before the marker: from the moment the marker exists, a reboot reverts.
  let bootHook: RevertHandle['bootHook'] = 'none';
  try {
    await files.write(path.join(unitDir, BOOT_UNIT), renderBootUnit(dir), { mode: 0o644, uid: 0, gid: 0 });
    const enable = managesUnits(opts) ? await exec.run(['systemctl', 'enable', BOOT_UNIT]) : undefined;
    if (enable && enable.exitCode === 0) bootHook = 'enabled';
    else {
      if (enable) notes.push(`systemctl enable ${BOOT_UNIT}: ${brief(enable)}; linked it directly`);
      const link = path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT);
      await files.remove(link);
      await files.symlink(path.join(unitDir, BOOT_UNIT), link);
      bootHook = 'symlink';
    }
  } catch (error) {
    notes.push(`boot hook not installed: ${reason(error)}`);
  }

  const deadline = now() + seconds * 1000;
  let armedWith: ArmedWith | undefined;
  const unit = timerUnit(id);
  try {
    await files.write(p.marker, markerText(id, deadline), { mode: 0o600, uid: 0, gid: 0 });
    if (!opts.forceFallback) {
      const r = await exec.run([
        'systemd-run',
        `--unit=${unit}`,
        `--description=pve-baseline: revert ${id} unless confirmed`,
        `--on-active=${seconds}s`,
        '--timer-property=AccuracySec=1s',
        '--collect',
        '--quiet',
        '/bin/sh',
        p.script,
      ]);
      if (r.exitCode === 0) armedWith = 'systemd-run';
      else notes.push(r.notFound ? 'systemd-run is not available; using a setsid sleeper' : `systemd-run failed (${brief(r)}); using a setsid sleeper`);
    }
    if (!armedWith) {
      // The program detaches its own output, sleeps, then runs as the timer would.
      const r = await exec.run(['setsid', '-f', '/bin/sh', p.script, 'after', String(seconds)]);
      if (r.exitCode !== 0) throw new Error(`${notes.join('; ')}${notes.length ? '; ' : ''}setsid: ${brief(r)}`);
      armedWith = 'setsid';
    }
  } catch (error) {
    await undo();
    throw new Error(`could not arm the revert of ${id}: ${reason(error)}`);
  }

  const armed = await readIndex(files, p.index);
  if (!armed.error) {
    await writeIndex(
      files,
      p.index,
      armed.entries.map((e) => (e.id === id ? { ...e, deadline, armedWith } : e)),
    );
  }
  return { id, deadline, seconds, armedWith, bootHook, script: p.script, ...(armedWith === 'systemd-run' ? { unit: `${unit}.timer` } : {}), notes };
}

export interface DisarmOptions {
  stateDir?: string;
  unitDir?: string;
  manageUnits?: boolean;
}

export interface DisarmResult {
  /** True when the change stands (confirmed in time, or already disarmed before). */
  disarmed: boolean;
  /** Set when the revert won the race (or had already run): what its result file says. */
  reverted?: string;
}

/**
 * Confirm the change: claim the pending marker before the revert does, stop
 * the timer, remove the program and its data (the result file keeps the
 * record). Idempotent.
 */
export async function disarmRevert(exec: Exec, files: Files, id: string, opts: DisarmOptions = {}): Promise<DisarmResult> {
  assertRevertId(id);
  const dir = opts.stateDir ?? defaultStateDir();
  const unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
  const p = revertPaths(dir, id);
  const claimed = path.join(p.dir, `${id}.confirmed`);
  try {
    await files.rename(p.marker, claimed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`could not disarm the revert of ${id}: ${reason(error)}`);
    const result = (await files.read(p.result))?.trim();
    if (result?.startsWith('disarmed')) return { disarmed: true };
    if ((await files.read(p.firing)) !== null || result) return { disarmed: false, reverted: result ?? 'the revert is running' };
    return { disarmed: false, reverted: 'nothing was armed' };
  }
  if (managesUnits({ unitDir, ...(opts.manageUnits !== undefined ? { manageUnits: opts.manageUnits } : {}) })) {
    await exec.run(['systemctl', 'stop', `${timerUnit(id)}.timer`]);
  }
  await files.write(p.result, `disarmed at ${new Date().toISOString()} (confirmed)\n`, { mode: 0o600, uid: 0, gid: 0 });
  await files.remove(claimed);
  await files.remove(p.script);
  await files.remove(p.data);
  await dropFromIndex(files, p.index, id);
  if ((await pendingReverts(files, { stateDir: dir })).length === 0) await removeBootHook(exec, files, unitDir, opts.manageUnits);
  return { disarmed: true };
}

async function removeBootHook(exec: Exec, files: Files, unitDir: string, manageUnits: boolean | undefined): Promise<void> {
  if (managesUnits({ unitDir, ...(manageUnits !== undefined ? { manageUnits } : {}) })) await exec.run(['systemctl', 'disable', BOOT_UNIT]);
  await files.remove(path.join(unitDir, 'multi-user.target.wants', BOOT_UNIT));
  await files.remove(path.join(unitDir, BOOT_UNIT));
}

export interface RevertNowResult {
  ok: boolean;
  exitCode: number;
  /** The result file: "reverted at ..." or "FAILED at ...:" and one line per problem. */
  result: string;
  /** What the program printed. */
  output: string;
}

/**
 * Revert at once (a failed apply or verify): runs the program in the
 * foreground, pending or not. `reload: false` when nothing was activated yet
 * (a refusal before the reload): reloading then could only spread a
 * configuration that failed its check elsewhere. Give `files` to read the
 * result through it.
 */
export async function revertNow(exec: Exec, id: string, opts: { stateDir?: string; reload?: boolean; files?: Files } = {}): Promise<RevertNowResult> {
  assertRevertId(id);
  const p = revertPaths(opts.stateDir ?? defaultStateDir(), id);
  const r = await exec.run(['/bin/sh', p.script, opts.reload === false ? 'files' : 'now'], { timeoutMs: 120_000 });
  let result: string;
  if (opts.files) {
    result = (await opts.files.read(p.result))?.trim() ?? 'no result file';
  } else {
    const read = await exec.run(['cat', '--', p.result]);
    result = read.exitCode === 0 ? read.stdout.trim() : `no result file (${brief(read)})`;
  }
  return { ok: r.exitCode === 0 && result.startsWith('reverted'), exitCode: r.exitCode, result, output: `${r.stdout}${r.stderr}`.trim() };
}

export interface PendingRevert {
  id: string;
  /** Epoch ms when it fires; 0 when neither the index nor the marker says (a marker of an older version). */
  deadline: number;
  /** How it was armed; 'none' while the timer was not started (a kill in that window), 'unknown' without an index entry. */
  armedWith: ArmedWith | 'none' | 'unknown';
  script: string;
  /** 'pending': armed, unconfirmed; 'interrupted': a run claimed it but did not finish (or failed). */
  state: 'pending' | 'interrupted';
  /** Seconds left (negative when overdue, e.g. after a reboot without the boot hook). */
  secondsLeft: number;
  /** The result file, when a run failed. */
  result?: string;
  /** False when only the marker says so (the index has no entry, or is damaged). */
  indexed: boolean;
}

/** What pendingReverts returns: the list, and the index's damage when it is damaged. */
export type PendingReverts = PendingRevert[] & { indexError?: RevertIndexError };

/**
 * What is armed and not yet confirmed or reverted (status, confirm, resume
 * after a reboot), from the markers on the node; the index adds the details.
 * A damaged index is reported on the list (`indexError`), never thrown.
 */
export async function pendingReverts(files: Files, opts: { stateDir?: string; now?: () => number } = {}): Promise<PendingReverts> {
  const dir = opts.stateDir ?? defaultStateDir();
  const now = (opts.now ?? Date.now)();
  const base = revertPaths(dir, 'x');
  const index = await readIndex(files, base.index);
  const ids = new Set<string>();
  for (const name of await files.list(base.pendingDir).catch(() => [] as string[])) {
    const id = name.endsWith('.firing') ? name.slice(0, -'.firing'.length) : name;
    if (ID_PATTERN.test(id)) ids.add(id);
  }
  const out: PendingReverts = [];
  for (const id of ids) {
    const p = revertPaths(dir, id);
    const marker = await files.read(p.marker).catch(() => null);
    const state = marker !== null ? 'pending' : (await files.read(p.firing).catch(() => null)) !== null ? 'interrupted' : undefined;
    if (!state) continue;
    const entry = index.entries.find((e) => e.id === id);
    const deadline = entry?.deadline ?? parseMarker(marker ?? '', id).deadline;
    const result = (await files.read(p.result).catch(() => null))?.trim();
    out.push({
      id,
      deadline,
      armedWith: entry ? (entry.armedWith ?? 'none') : 'unknown',
      script: entry?.script ?? p.script,
      state,
      secondsLeft: Math.round((deadline - now) / 1000),
      ...(result ? { result } : {}),
      indexed: entry !== undefined,
    });
  }
  if (index.error) out.indexError = index.error;
  return out;
}

/**
 * Wait for `pve-baseline confirm` in another session to disarm a revert
 * (its result file then begins "disarmed"); resolves with that line's time,
 * or null when `signal` aborts or the revert ran instead. One abort listener
 * for the whole wait, removed when it ends.
 */
export async function confirmedElsewhere(files: Files, id: string, opts: { stateDir?: string; signal: AbortSignal; pollMs?: number }): Promise<string | null> {
  assertRevertId(id);
  const p = revertPaths(opts.stateDir ?? defaultStateDir(), id);
  const { signal } = opts;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => {
    if (timer !== undefined) clearTimeout(timer);
    wake?.();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (!signal.aborted) {
      const result = (await files.read(p.result))?.trim();
      if (result?.startsWith('disarmed')) return result.replace(/^disarmed at (\S+).*$/, '$1');
      if (result) return null;
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, opts.pollMs ?? 500);
      });
      timer = undefined;
      wake = undefined;
    }
    return null;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** What the revert of `id` last recorded ("reverted at ...", "disarmed at ...", "FAILED at ..."), or null. */
export async function revertResult(files: Files, id: string, opts: { stateDir?: string } = {}): Promise<string | null> {
  assertRevertId(id);
  return (await files.read(revertPaths(opts.stateDir ?? defaultStateDir(), id).result))?.trim() ?? null;
}

/** Record that the change is live now (a confirmation before this proves nothing). Call it right after activating. */
export async function markActivated(files: Files, id: string, opts: { stateDir?: string } = {}): Promise<void> {
  assertRevertId(id);
  await files.write(revertPaths(opts.stateDir ?? defaultStateDir(), id).active, `${new Date().toISOString()}\n`, { mode: 0o600, uid: 0, gid: 0 });
}

/** When the change went live (markActivated), or null before that. */
export async function activatedAt(files: Files, id: string, opts: { stateDir?: string } = {}): Promise<string | null> {
  assertRevertId(id);
  return (await files.read(revertPaths(opts.stateDir ?? defaultStateDir(), id).active))?.trim() || null;
}
