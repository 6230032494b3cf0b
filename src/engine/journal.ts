/**
 * The journal: a checkpoint per step, written before and after every apply,
 * so that a reboot, a dropped SSH link or a kill at any instant leaves a
 * truthful record. Built on `conf` (atomic write: temp file, fsync, rename),
 * stored as JSON under /var/lib/pve-baseline/ with mode 0600.
 *
 * The journal is a record, not the truth: on start the wizard re-probes the
 * node and uses the journal only for answers already given, for what can be
 * rolled back, and to say where it is resuming.
 */
import { chmodSync, renameSync } from 'node:fs';
import path from 'node:path';
import Conf from 'conf';
import { FileRefusedError, makeDirectorySync, readRegularFileSync, type BackupRecord } from '../system/files.ts';
import type { ServiceAction } from './change.ts';
import type { StoredAnswer } from './step.ts';
import type { RebootRecord } from './reboot.ts';

export type StepStatus = 'pending' | 'applying' | 'applied' | 'verified' | 'failed' | 'reverted';

/** What apply did, in the order it did it: enough to undo it. */
export type AppliedChange =
  | { kind: 'file'; path: string; backup: BackupRecord }
  | { kind: 'command'; argv: string[]; undo?: string[] }
  | { kind: 'service'; unit: string; action: ServiceAction }
  | { kind: 'api'; method: string; path: string; user: string };

export interface StatusEntry {
  status: StepStatus;
  at: string;
  bootId: string;
  note?: string;
}

export interface StepRecord {
  status: StepStatus;
  /** Answers given for this step, secrets excluded. */
  /** What was answered, secrets never (step.ts StoredAnswer); a structured answer is kept as plain data. */
  answers: Record<string, StoredAnswer>;
  updatedAt: string;
  bootId: string;
  /** Identifies one apply; names the backup set. */
  applyId?: string;
  applied: AppliedChange[];
  error?: string;
  /** The last transitions, newest last (capped). */
  history: StatusEntry[];
  /** For a change that can cut access: where the lockout protocol stands (src/engine/guarded-apply.ts). */
  guard?: GuardRecord;
  /** For a change that can cut access: who proved access before it was kept. */
  proof?: AccessProofRecord;
  /** The reboot this step asked for, until a later run finds it done (src/engine/reboot.ts). */
  reboot?: RebootRecord;
  /** A command that survives pve-baseline (CommandChange.survivesExit), while it runs. */
  running?: RunningCommand;
}

/** Where a command that outlives pve-baseline can be found, and its output read. */
export interface RunningCommand {
  argv: string[];
  pid: number;
  /** The boot it runs in: after a reboot the pid means nothing. */
  bootId: string;
  startedAt: string;
  log: string;
}

/** "a login by alice from 10.0.0.5 with SHA256:... at ..." */
export function describeProof(proof: AccessProofRecord): string {
  const how = { login: 'a new login', confirm: 'pve-baseline confirm from a new session', console: 'kept on the console without a second login' }[proof.by];
  return `${how}${proof.user ? ` by ${proof.user}` : ''}${proof.from ? ` from ${proof.from}` : ''}${proof.fingerprint ? ` with ${proof.fingerprint}` : ''} at ${proof.at}`;
}

/** Who proved access to a guarded change, for the document's change log. */
export interface AccessProofRecord {
  /** 'login': a new login was seen; 'confirm': `pve-baseline confirm` from a new session; 'console': kept on the console without one. */
  by: 'login' | 'confirm' | 'console';
  user?: string;
  from?: string;
  fingerprint?: string;
  at: string;
}

/**
 * The lockout protocol's phases, in the order a kept change passes them:
 * the files are backed up, the node's revert is armed, the change is written
 * and checked (for a change that goes live when written: checked, then
 * written), activated, proven automatically, and kept once a person proves
 * access; or reverted.
 */
export type GuardPhase = 'backed-up' | 'armed' | 'written' | 'checked' | 'active' | 'proven' | 'kept' | 'reverted';

export interface GuardRecord {
  phase: GuardPhase;
  /** The revert the node owns for this arming (unique per arming). */
  revertId?: string;
  /** Epoch ms when the node reverts unless access is confirmed. */
  deadline?: number;
  /** The transitions, oldest first. */
  phases: { phase: GuardPhase; at: string; detail?: string }[];
}

interface JournalData {
  schemaVersion: 1;
  createdAt: string;
  steps: Record<string, StepRecord>;
}

const HISTORY_LIMIT = 20;
export const DEFAULT_STATE_DIR = '/var/lib/pve-baseline';

/** The state directory: PVE_BASELINE_STATE_DIR overrides it (tests, the lab). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PVE_BASELINE_STATE_DIR || DEFAULT_STATE_DIR;
}

/**
 * A journal that cannot be trusted: not JSON, or not the shape this version
 * writes. It is never read as "nothing ran here": the message names the
 * file, what is wrong, where the damaged copy is kept and how to go on.
 */
export class JournalCorruptError extends Error {
  override readonly name = 'JournalCorruptError';

  constructor(
    readonly file: string,
    readonly problem: string,
    /** Where the damaged copy was moved (by a command that writes the journal); undefined when left in place. */
    readonly movedTo?: string,
  ) {
    const backups = path.join(path.dirname(file), 'backups');
    super(
      movedTo
        ? `the journal ${file} is damaged (${problem}), so what ran on this node is not known; nothing was changed. ` +
            `The damaged copy was moved to ${movedTo}. To go on, run pve-baseline again: it starts a new journal and re-reads the node, ` +
            `so steps already in place show as compliant; the old record and its backups (under ${backups}) stay for a manual restore.`
        : `the journal ${file} is damaged (${problem}), so what ran on this node is not known; nothing was changed. ` +
            `To recover, run pve-baseline (the wizard or apply --yes) as root: it moves the damaged copy aside as ${path.basename(file)}.corrupt-TIME, keeps it, ` +
            `and starts a new journal; the backups stay under ${backups}.`,
    );
  }
}

const STATUSES: ReadonlySet<unknown> = new Set<StepStatus>(['pending', 'applying', 'applied', 'verified', 'failed', 'reverted']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (value: unknown) => typeof value === 'string';
const isStrings = (value: unknown) => Array.isArray(value) && value.every(isString);

function appliedProblem(a: unknown): string | null {
  if (!isObject(a)) return 'is not an object';
  switch (a.kind) {
    case 'file': {
      const b = a.backup;
      if (!isString(a.path) || !isObject(b) || !isString(b.path) || typeof b.existed !== 'boolean') return 'is a file change without its path or backup';
      if (b.existed && (!isString(b.copy) || typeof b.mode !== 'number' || typeof b.uid !== 'number' || typeof b.gid !== 'number')) return 'has a backup without its copy, mode or owner';
      return null;
    }
    case 'command':
      return isStrings(a.argv) && (a.undo === undefined || isStrings(a.undo)) ? null : 'is a command without a list of arguments';
    case 'service':
      return isString(a.unit) && isString(a.action) ? null : 'is a service change without its unit or action';
    case 'api':
      return isString(a.method) && isString(a.path) && isString(a.user) ? null : 'is an API call without its method, path or user';
    default:
      return `has an unknown kind ${JSON.stringify(a.kind)}`;
  }
}

function recordProblem(r: unknown): string | null {
  if (!isObject(r)) return 'is not an object';
  if (!STATUSES.has(r.status)) return `has an unknown status ${JSON.stringify(r.status)}`;
  if (!isObject(r.answers)) return 'has no answers object';
  for (const [key, value] of Object.entries(r.answers)) {
    // A structured answer (AnswerDocument) is an object or a list of objects; its codec checks it again when read back.
    const structured = isObject(value) || (Array.isArray(value) && value.every(isObject));
    if (!['string', 'boolean', 'number'].includes(typeof value) && !isStrings(value) && !structured) return `has an answer ${key} of the wrong type`;
  }
  if (!isString(r.updatedAt) || !isString(r.bootId)) return 'lacks updatedAt or bootId';
  if (r.applyId !== undefined && !isString(r.applyId)) return 'has an applyId that is not text';
  if (r.error !== undefined && !isString(r.error)) return 'has an error that is not text';
  if (!Array.isArray(r.applied)) return 'has no list of applied changes';
  for (const [i, a] of r.applied.entries()) {
    const problem = appliedProblem(a);
    if (problem) return `applied change ${i + 1} ${problem}`;
  }
  if (!Array.isArray(r.history) || !r.history.every((h) => isObject(h) && STATUSES.has(h.status) && isString(h.at))) return 'has a damaged history';
  if (r.guard !== undefined && !(isObject(r.guard) && isString(r.guard.phase) && Array.isArray(r.guard.phases))) return 'has a damaged lockout record (guard)';
  if (r.proof !== undefined && !(isObject(r.proof) && isString(r.proof.by) && isString(r.proof.at))) return 'has a damaged proof of access';
  if (r.reboot !== undefined && !(isObject(r.reboot) && isString(r.reboot.afterStep) && isString(r.reboot.bootId) && isString(r.reboot.reason))) return 'has a damaged reboot record';
  if (r.running !== undefined && !(isObject(r.running) && isStrings(r.running.argv) && Number.isInteger(r.running.pid) && isString(r.running.bootId) && isString(r.running.startedAt) && isString(r.running.log))) return 'has a damaged record of a running command';
  return null;
}

/**
 * What is wrong with the journal's content, or null when it has the shape
 * this version writes. Written by hand: the shape is small, and a schema
 * library would be one more dependency on the node for a few checks.
 */
export function journalProblem(data: unknown): string | null {
  if (!isObject(data)) return 'it is not a JSON object';
  if (data.schemaVersion !== 1) return `schemaVersion is ${JSON.stringify(data.schemaVersion) ?? 'missing'}, not 1`;
  if (!isObject(data.steps)) return 'it has no "steps" object';
  for (const [id, record] of Object.entries(data.steps)) {
    const problem = recordProblem(record);
    if (problem) return `the record of step ${JSON.stringify(id)} ${problem}`;
  }
  return null;
}

/** Far more than a journal holds (each step keeps its last 20 transitions); a larger file is not one. */
const JOURNAL_MAX_BYTES = 4 * 1024 * 1024;

/** The journal's content, checked; null when there is none (or this user may not read it). */
function readJournalFile(file: string): JournalData | null {
  let text: string;
  try {
    // Never through a link, never a FIFO (which would hang) or a device.
    text = readRegularFileSync(file, { maxBytes: JOURNAL_MAX_BYTES, what: 'the journal' }).toString('utf8');
  } catch (error) {
    if (!(error instanceof FileRefusedError)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    // Not there yet, or not root (check as another user): nothing to read.
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') return null;
    throw new JournalCorruptError(file, error.reason);
  }
  if (!text.trim()) throw new JournalCorruptError(file, 'it is empty');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new JournalCorruptError(file, `it is not valid JSON: ${(error as Error).message}`);
  }
  const problem = journalProblem(data);
  if (problem) throw new JournalCorruptError(file, problem);
  return data as JournalData;
}

/** Where the journal's data lives: conf on disk, or a read-only snapshot for check and dry runs. */
interface JournalStore {
  get(key: 'steps'): Record<string, StepRecord>;
  set(key: 'steps', value: Record<string, StepRecord>): void;
  readonly path: string;
}

class SnapshotStore implements JournalStore {
  #steps: Record<string, StepRecord>;
  constructor(
    readonly path: string,
    steps: Record<string, StepRecord>,
  ) {
    this.#steps = steps;
  }
  get(): Record<string, StepRecord> {
    return this.#steps;
  }
  set(): void {
    throw new Error('journal: this is a read-only view (check or dry run); nothing may be recorded');
  }
}

export class Journal {
  readonly #store: JournalStore;
  readonly #bootId: string;
  readonly #now: () => Date;

  private constructor(store: JournalStore, bootId: string, now: () => Date) {
    this.#store = store;
    this.#bootId = bootId;
    this.#now = now;
  }

  /** Open (or create) the journal in `dir`. The directory is created 0700. */
  static open(dir: string, bootId: string, now: () => Date = () => new Date()): Journal {
    makeDirectorySync(dir, 0o700);
    chmodSync(dir, 0o700);
    const file = path.join(dir, 'journal.json');
    try {
      readJournalFile(file);
    } catch (error) {
      if (!(error instanceof JournalCorruptError)) throw error;
      // Kept, not emptied: it still names the backups a manual restore needs.
      const movedTo = `${file}.corrupt-${now().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(file, movedTo);
      throw new JournalCorruptError(file, error.problem, movedTo);
    }
    const store = new Conf<JournalData>({
      projectName: 'pve-baseline',
      cwd: dir,
      configName: 'journal',
      configFileMode: 0o600,
      accessPropertiesByDotNotation: false,
      clearInvalidConfig: false,
      defaults: { schemaVersion: 1, createdAt: now().toISOString(), steps: {} },
    });
    return new Journal(store, bootId, now);
  }

  /**
   * A read-only view for commands that must change nothing (check, dry run):
   * the journal's content if there is one and this user may read it, else
   * empty. A damaged journal throws JournalCorruptError and is left as it is.
   * Never creates the directory or the file.
   */
  static snapshot(dir: string, bootId: string): Journal {
    const file = path.join(dir, 'journal.json');
    const steps = readJournalFile(file)?.steps ?? {};
    return new Journal(new SnapshotStore(file, steps), bootId, () => new Date());
  }

  get path(): string {
    return this.#store.path;
  }

  get dir(): string {
    return path.dirname(this.#store.path);
  }

  /** Nothing recorded yet: a first run. */
  get isEmpty(): boolean {
    return Object.keys(this.#store.get('steps')).length === 0;
  }

  step(id: string): StepRecord | undefined {
    return this.#store.get('steps')[id];
  }

  status(id: string): StepStatus {
    return this.step(id)?.status ?? 'pending';
  }

  all(): Record<string, StepRecord> {
    return this.#store.get('steps');
  }

  /** Record a transition. Each call is one atomic write of the whole file. */
  setStatus(id: string, status: StepStatus, extra: { note?: string; error?: string; applyId?: string } = {}): void {
    const at = this.#now().toISOString();
    const current = this.step(id) ?? this.#blank(at);
    const history = [...current.history, { status, at, bootId: this.#bootId, ...(extra.note ? { note: extra.note } : {}) }];
    const next: StepRecord = {
      ...current,
      status,
      updatedAt: at,
      bootId: this.#bootId,
      history: history.slice(-HISTORY_LIMIT),
    };
    // A new apply id starts a new record of what was applied; the same id (a
    // resumed apply) keeps it, so the original backups stay the ones restored.
    if (extra.applyId && extra.applyId !== current.applyId) {
      next.applyId = extra.applyId;
      next.applied = [];
    }
    if (extra.error !== undefined) next.error = extra.error;
    else if (status === 'verified' || status === 'applying') delete next.error;
    this.#put(id, next);
  }

  setAnswers(id: string, answers: StepRecord['answers']): void {
    const at = this.#now().toISOString();
    const current = this.step(id) ?? this.#blank(at);
    this.#put(id, { ...current, answers: { ...answers } });
  }

  /** Append one applied change as soon as it has happened. */
  recordApplied(id: string, change: AppliedChange): void {
    const current = this.step(id);
    if (!current) throw new Error(`journal: no record for step ${id}`);
    this.#put(id, { ...current, applied: [...current.applied, change] });
  }

  /** Record a phase of the lockout protocol; 'backed-up' starts a new record. */
  setGuard(id: string, phase: GuardPhase, extra: { revertId?: string; deadline?: number; detail?: string } = {}): void {
    const at = this.#now().toISOString();
    const current = this.step(id) ?? this.#blank(at);
    const previous = phase === 'backed-up' ? undefined : current.guard;
    const guard: GuardRecord = {
      phase,
      ...(extra.revertId ?? previous?.revertId ? { revertId: extra.revertId ?? previous!.revertId! } : {}),
      ...(extra.deadline ?? previous?.deadline ? { deadline: extra.deadline ?? previous!.deadline! } : {}),
      phases: [...(previous?.phases ?? []), { phase, at, ...(extra.detail ? { detail: extra.detail } : {}) }].slice(-HISTORY_LIMIT),
    };
    this.#put(id, { ...current, guard });
  }

  setProof(id: string, proof: AccessProofRecord): void {
    const current = this.step(id) ?? this.#blank(this.#now().toISOString());
    this.#put(id, { ...current, proof: { ...proof } });
  }

  /** Record the reboot a step asked for (undefined: it is done, or no longer needed). */
  /** Name the command this step left running (or, undefined, forget it once it ended). */
  setRunning(id: string, running: RunningCommand | undefined): void {
    const current = this.step(id) ?? this.#blank(this.#now().toISOString());
    const { running: _ended, ...rest } = current;
    this.#put(id, running ? { ...rest, running: { ...running, argv: [...running.argv] } } : rest);
  }

  /** The boot this journal was opened in. */
  get bootId(): string {
    return this.#bootId;
  }

  setReboot(id: string, reboot: RebootRecord | undefined): void {
    const current = this.step(id) ?? this.#blank(this.#now().toISOString());
    const { reboot: _done, ...rest } = current;
    this.#put(id, reboot ? { ...rest, reboot: { ...reboot } } : rest);
  }

  /** Forget what was applied (after a rollback restored it). */
  clearApplied(id: string): void {
    const current = this.step(id);
    if (current) this.#put(id, { ...current, applied: [] });
  }

  #blank(at: string): StepRecord {
    return { status: 'pending', answers: {}, updatedAt: at, bootId: this.#bootId, applied: [], history: [] };
  }

  #put(id: string, record: StepRecord): void {
    this.#store.set('steps', { ...this.#store.get('steps'), [id]: record });
  }
}
