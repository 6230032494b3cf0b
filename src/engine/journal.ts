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
import { mkdirSync, chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Conf from 'conf';
import type { BackupRecord } from '../system/files.ts';
import type { ServiceAction } from './change.ts';

export type StepStatus = 'pending' | 'applying' | 'applied' | 'verified' | 'failed' | 'reverted';

/** What apply did, in the order it did it: enough to undo it. */
export type AppliedChange =
  | { kind: 'file'; path: string; backup: BackupRecord }
  | { kind: 'command'; argv: string[]; undo?: string[] }
  | { kind: 'service'; unit: string; action: ServiceAction };

export interface StatusEntry {
  status: StepStatus;
  at: string;
  bootId: string;
  note?: string;
}

export interface StepRecord {
  status: StepStatus;
  /** Answers given for this step, secrets excluded. */
  answers: Record<string, string | boolean | number | string[]>;
  updatedAt: string;
  bootId: string;
  /** Identifies one apply; names the backup set. */
  applyId?: string;
  applied: AppliedChange[];
  error?: string;
  /** The last transitions, newest last (capped). */
  history: StatusEntry[];
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
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
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
   * the journal's content if there is one and it is readable, else empty.
   * Never creates the directory or the file.
   */
  static snapshot(dir: string, bootId: string): Journal {
    const file = path.join(dir, 'journal.json');
    let steps: Record<string, StepRecord> = {};
    try {
      steps = (JSON.parse(readFileSync(file, 'utf8')) as JournalData).steps ?? {};
    } catch {
      // No journal yet, or not readable by this user: nothing remembered.
    }
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
