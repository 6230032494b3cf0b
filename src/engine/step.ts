/**
 * The step contract. A step is one module in steps/, readable top to bottom:
 * it probes the real state, asks what it needs, plans a list of Changes (pure,
 * empty when compliant), lets the engine apply them, and proves the result.
 *
 *   probe(ctx)              read-only; the node is the source of truth
 *   questions               what it needs, each validated, with a detected default
 *   plan(facts, answers)    pure; [] means compliant
 *   apply                   done by the engine from the plan (backups, atomic writes, argv)
 *   verify(ctx, answers)    checks that prove the intended state
 *   rollback                done by the engine from what apply recorded; a step may add to it
 */
import type { Change } from './change.ts';
import type { Secret } from './secret.ts';
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import type { NodeInfo } from '../system/detect.ts';
import type { StepRecord } from './journal.ts';

export type Risk = 'safe' | 'disruptive' | 'lockout' | 'reboot';
export type Scope = 'node' | 'datacenter';

export const RISK_EXPLAINED: Record<Risk, string> = {
  safe: 'does not interrupt anything',
  disruptive: 'restarts a service or changes behaviour users may notice',
  lockout: 'can cut access to this node; applied under an automatic revert',
  reboot: 'needs a reboot to take full effect',
};

/** An answer as it arrives from a prompt or an answers file. */
export type AnswerValue = string | boolean | number | string[] | Secret;
export type Answers = Record<string, AnswerValue>;

export type Validation<T extends AnswerValue = AnswerValue> = { ok: true; value: T } | { ok: false; message: string };

export interface Choice {
  value: string;
  label: string;
  hint?: string;
}

/**
 * What a validator may read: files (e.g. /etc/passwd to refuse a system
 * account's name, or a key file named by path). Read-only by contract.
 */
export interface QuestionContext {
  files: Pick<Files, 'read' | 'meta'>;
}

/** A problem with an answer (undefined when fine); may be computed asynchronously. */
export type Validator<T> = (value: T, answers: Answers, ctx: QuestionContext) => string | undefined | Promise<string | undefined>;

/**
 * What an accepted answer turned out to be, shown for confirmation before the
 * step goes on (e.g. each SSH key's type, size, fingerprint and comment).
 */
export interface AnswerDetails {
  title: string;
  items: { heading: string; fields: [label: string, value: string][]; warning?: string }[];
}

interface QuestionBase<F> {
  /** Key in the answers file, under the step id: `<step>.<id>`. */
  id: string;
  /** The question, as the wizard asks it. */
  prompt: string;
  /** One or two sentences of why, shown under the prompt. */
  help?: string;
  /** Ask only when this returns true (e.g. a follow-up question). */
  when?: (answers: Answers, facts: F) => boolean;
  /** Only an answers file gives this (e.g. a crypt hash instead of a password); the wizard never asks it. */
  fileOnly?: boolean;
}

export interface TextQuestion<F = unknown> extends QuestionBase<F> {
  kind: 'text';
  detect?: (facts: F) => string | undefined;
  validate?: Validator<string>;
  /** An empty answer is allowed (and stored as ""). */
  optional?: boolean;
  /** Pasted line breaks are kept (several SSH keys at once); Enter on its own submits. */
  multiline?: boolean;
  /**
   * Turn what was typed into the answer itself before it is checked and kept
   * (e.g. a file path, or "root", into the keys they hold). Returns the answer,
   * or a problem as { problem }.
   */
  resolve?: (value: string, ctx: QuestionContext) => Promise<string | { problem: string }>;
  /** Turn an accepted answer into details the operator confirms before going on. */
  details?: (value: string, ctx: QuestionContext) => Promise<AnswerDetails>;
}

/** Typed masked, twice; never journaled; reaches the step as a Secret. */
export interface PasswordQuestion<F = unknown> extends QuestionBase<F> {
  kind: 'password';
  minLength: number;
  validate?: (value: string) => string | undefined;
}

export interface SelectQuestion<F = unknown> extends QuestionBase<F> {
  kind: 'select';
  choices: Choice[];
  detect?: (facts: F) => string | undefined;
}

export interface ConfirmQuestion<F = unknown> extends QuestionBase<F> {
  kind: 'confirm';
  detect?: (facts: F) => boolean | undefined;
}

export type Question<F = unknown> = TextQuestion<F> | PasswordQuestion<F> | SelectQuestion<F> | ConfirmQuestion<F>;

/** One verification result. `detail` says what was seen, in the operator's terms. */
export interface Check {
  label: string;
  ok: boolean;
  detail?: string;
}

/** What probe, verify and a step's own rollback get: side effects behind small interfaces. */
export interface StepContext {
  exec: Exec;
  files: Files;
  node: NodeInfo;
  /** A line for the progress tail (not persisted). */
  log: (line: string) => void;
  /** The answers another step was given (secrets excluded), e.g. the admin's name for the SSH key step. */
  answersOf: (stepId: string) => Readonly<Answers>;
  /** What the journal records of every step (for the document's change log). */
  journalRecords: () => Readonly<Record<string, StepRecord>>;
}

/**
 * For steps that can cut access (risk 'lockout'): the engine backs up every
 * file the plan touches, arms a revert the node owns (src/engine/revert-guard)
 * BEFORE anything changes, applies, checks, activates, verifies, and keeps
 * the change only once access is confirmed (the operator, or
 * `pve-baseline confirm` from a new session); otherwise the node reverts.
 */
export interface AccessGuard<F = unknown> {
  /** argv lists the revert runs after restoring the files, e.g. [['systemctl', 'reload', 'ssh']]. */
  reload: string[][];
  /**
   * argv lists the revert also runs, in every mode, to tidy what a run
   * killed half-way leaves behind (e.g. the probe key line); failures are
   * only logged.
   */
  cleanup?: (facts: F) => string[][];
  /** Seconds before the node reverts on its own (the operator may choose them); default 180. */
  seconds?: number | ((answers: Answers) => number);
  /**
   * After the files are written and before any service change: what must hold
   * (e.g. `sshd -t` and `sshd -T` against the intent). A failing check reverts at once.
   */
  beforeActivate?: (ctx: StepContext, answers: Answers, facts: F) => Promise<Check[]>;
  /**
   * The live proof once the change is active (e.g. logging in with an
   * ephemeral probe key). Kept apart from `verify`, which must stay
   * read-only because `check` runs it; a failing proof reverts at once.
   */
  prove?: (ctx: StepContext, answers: Answers, facts: F) => Promise<Check[]>;
  /**
   * How a person proves access: what to tell them, and how to see them do
   * it (e.g. the journal's "Accepted publickey" line of their own key).
   * `watch` resolves with one line saying who logged in, or null when
   * `signal` aborts.
   */
  access?: (ctx: StepContext, answers: Answers, facts: F) => AccessWatch;
}

export interface AccessWatch {
  instructions: string[];
  watch: (since: Date, signal: AbortSignal) => Promise<string | null>;
}

export interface Step<F = unknown> {
  id: string;
  title: string;
  /** One sentence: what the step achieves and why it matters. */
  summary: string;
  scope: Scope;
  risk: Risk;
  /** Steps that must be verified before this one may run. */
  dependsOn?: string[];
  questions?: Question<F>[];
  /** Says why the step cannot apply to this node at all, before anything is probed (e.g. no Proxmox tools). */
  requires?: (node: NodeInfo) => string | undefined;
  /** Says why the step does not apply to this node (e.g. not a cluster); undefined when it applies. */
  notApplicable?: (facts: F, node: NodeInfo) => string | undefined;
  probe(ctx: StepContext): Promise<F>;
  plan(facts: F, answers: Answers, node: NodeInfo): Change[];
  /**
   * Refusals before anything is shown or changed: checks a plan must pass
   * because it would otherwise shut the operator out (e.g. no installed key
   * the new sshd settings accept). Pure; a failing check ends the step.
   */
  preflight?(facts: F, answers: Answers, node: NodeInfo): Check[];
  verify(ctx: StepContext, answers: Answers): Promise<Check[]>;
  /** Required for risk 'lockout': how the change is kept reversible until access is proven. */
  guard?: AccessGuard<F>;
  /**
   * Anything beyond what the engine undoes from the record (files restored,
   * undo commands run, services put back), e.g. telling a daemon to re-read
   * a restored file it does not watch. Runs after the engine's rollback.
   */
  afterRollback?(ctx: StepContext): Promise<void>;
}

/** Erase the facts type for the catalogue and the runner. */
export type AnyStep = Step<any>;

/** The answers a step may persist: everything except secrets and password questions. */
export function persistableAnswers(step: AnyStep, answers: Answers): Record<string, Exclude<AnswerValue, Secret>> {
  const secretIds = new Set((step.questions ?? []).filter((q) => q.kind === 'password').map((q) => q.id));
  const out: Record<string, Exclude<AnswerValue, Secret>> = {};
  for (const [key, value] of Object.entries(answers)) {
    if (secretIds.has(key) || typeof value === 'object' && !Array.isArray(value)) continue;
    out[key] = value as Exclude<AnswerValue, Secret>;
  }
  return out;
}
