/**
 * The step contract. A step is one module in steps/, readable top to bottom:
 * it probes the real state, asks what it needs, plans a list of Changes (pure,
 * empty when compliant), lets the engine apply them, and proves the result.
 *
 *   probe(ctx)              read-only; the node is the source of truth
 *   questions               what it needs, built with `ask` (src/engine/questions.ts): each
 *                           with a codec that checks and types the answer, and a detected default;
 *                           the step's answers type A says what plan, verify and the guard get
 *   plan(facts, answers)    pure; [] means compliant
 *   apply                   done by the engine from the plan (backups, atomic writes, argv)
 *   verify(ctx, answers)    checks that prove the intended state
 *   rollback                done by the engine from what apply recorded; a step may add to it
 */
import type { Change } from './change.ts';
import type { Secret } from '../system/secret.ts';
import type { Exec } from '../system/exec.ts';
import type { Files } from '../system/files.ts';
import type { NodeInfo } from '../system/detect.ts';
import type { StepRecord } from './journal.ts';
import type { DocumentSection } from '../report/section.ts';
import type { QuestionDisplay } from './events.ts';
import type { PveApi } from '../pve/api.ts';
import type { RebootNeed } from './reboot.ts';

export type Risk = 'safe' | 'disruptive' | 'lockout' | 'reboot';
export type Scope = 'node' | 'datacenter';

export const RISK_EXPLAINED: Record<Risk, string> = {
  safe: 'does not interrupt anything',
  disruptive: 'restarts a service or changes behaviour users may notice',
  lockout: 'can cut access to this node; applied under an automatic revert',
  reboot: 'needs a reboot to take full effect',
};

/** An answer as a codec returns it: typed into the wizard, read from an answers file, or remembered. */
export type AnswerValue = string | boolean | number | string[] | Secret | AnswerDocument;
/**
 * A structured answer only an answers file gives (a whole access model, a
 * list of tokens): plain data that round-trips through JSON, so the journal
 * keeps it as it is and its codec checks it again when it is read back.
 */
export type AnswerDocument = { readonly [key: string]: unknown } | readonly { readonly [key: string]: unknown }[];
export type Answers = Record<string, AnswerValue>;
/** What the journal may keep of an answer: never a Secret. */
export type StoredAnswer = Exclude<AnswerValue, Secret>;

export type Validation<T extends AnswerValue = AnswerValue> = { ok: true; value: T } | { ok: false; message: string };

export interface Choice<V extends string = string> {
  value: V;
  label: string;
  hint?: string;
}

/**
 * What a codec may read: files (e.g. /etc/passwd to refuse a system
 * account's name, or a key file named by path), and the answers other steps
 * were given (e.g. the admin's name, which the break-glass account must not
 * reuse). Read-only by contract.
 */
export interface QuestionContext {
  files: Pick<Files, 'read' | 'meta'>;
  answersOf?: StepContext['answersOf'];
  /** The step's facts from its probe, for a check against what the step made there (e.g. a TOTP code against its new secret). */
  facts?: unknown;
  /**
   * Where the answer comes from: typed at the wizard, given in an answers
   * file, or remembered in the journal. A value a person must confirm when
   * it is made (a host key fetched now) can only be typed.
   */
  from?: 'typed' | 'file' | 'remembered';
}

/** A problem with an answer (undefined when fine); may be computed asynchronously. */
export type Validator<T> = (value: T, answers: Answers, ctx: QuestionContext) => string | undefined | Promise<string | undefined>;

/**
 * How one answer is read and checked, in one place: whatever arrives (typed
 * text, a YAML value, a value the journal remembered) goes through `decode`
 * and comes out typed, or is refused saying what is wanted. Built by the
 * helpers in src/engine/questions.ts (text, integer, select, words, cidrs,
 * password, secretText, yesNo).
 */
export interface Codec<T extends AnswerValue = AnswerValue> {
  /** A password or a password hash: never journaled, never printed; it reaches the step as a Secret. */
  readonly secret: boolean;
  decode(raw: unknown, answers: Answers, ctx: QuestionContext): Promise<Validation<T>>;
  /** The value as the wizard's text field shows it (a detected default). */
  show?(value: T): string;
}

/**
 * What an accepted answer turned out to be, shown for confirmation before the
 * step goes on (e.g. each SSH key's type, size, fingerprint and comment).
 */
export interface AnswerDetails {
  title: string;
  items: { heading: string; fields: [label: string, value: string][]; warning?: string }[];
}

interface QuestionBase<F, T extends AnswerValue, K extends string> {
  /** Key in the answers file, under the step id: `<step>.<id>`. */
  id: K;
  /** The question, as the wizard asks it. */
  prompt: string;
  /** One or two sentences of why, shown under the prompt. */
  help?: string;
  /** Ask only when this returns true (e.g. a follow-up question). */
  when?: (answers: Answers, facts: F) => boolean;
  /** Only an answers file gives this (e.g. a crypt hash instead of a password); the wizard never asks it. */
  fileOnly?: boolean;
  /**
   * Only a person at the wizard can answer this (e.g. the code an authenticator
   * app shows after scanning a QR code): an answers file cannot give it, and
   * unattended the step is skipped with this reason.
   */
  interactiveOnly?: string;
  /** What to show with the question, from the facts and the answers so far (e.g. a QR code). */
  display?: (facts: F, answers: Answers) => QuestionDisplay | undefined;
  /** How the answer is checked. The helpers in src/engine/questions.ts always set it; a bare question gets its kind's default codec. */
  codec?: Codec<T>;
}

/** Typed on one line (or pasted lines); the codec decides what it becomes: text, a number, a list. */
export interface TextQuestion<F = unknown, T extends AnswerValue = string, K extends string = string> extends QuestionBase<F, T, K> {
  kind: 'text';
  detect?: (facts: F) => T | undefined;
  /** For a bare question without a codec: checks beyond "text without control characters". */
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
  resolve?: (value: string, ctx: QuestionContext, answers: Answers) => Promise<string | { problem: string }>;
  /** Turn an accepted answer into details the operator confirms before going on. */
  details?: (value: string, ctx: QuestionContext) => Promise<AnswerDetails>;
}

/** Typed masked, twice; never journaled; reaches the step as a Secret. */
export interface PasswordQuestion<F = unknown, K extends string = string> extends QuestionBase<F, Secret, K> {
  kind: 'password';
  minLength: number;
  /** For a bare question without a codec. */
  validate?: (value: string) => string | undefined;
}

export interface SelectQuestion<F = unknown, V extends string = string, K extends string = string> extends QuestionBase<F, V, K> {
  kind: 'select';
  choices: Choice<V>[];
  detect?: (facts: F) => V | undefined;
}

export interface ConfirmQuestion<F = unknown, K extends string = string> extends QuestionBase<F, boolean, K> {
  kind: 'confirm';
  detect?: (facts: F) => boolean | undefined;
}

export type Question<F = unknown> = TextQuestion<F, any> | PasswordQuestion<F> | SelectQuestion<F, any> | ConfirmQuestion<F>;

/** The question that gives an answer of type T under key K. */
type QuestionOf<F, K extends string, T> = [T] extends [boolean]
  ? ConfirmQuestion<F, K>
  : [T] extends [Secret]
    ? PasswordQuestion<F, K> | TextQuestion<F, Secret, K>
    : [T] extends [string]
      ? string extends T
        ? TextQuestion<F, string, K>
        : SelectQuestion<F, T, K>
      : [T] extends [AnswerValue]
        ? TextQuestion<F, T, K>
        : never;

/**
 * The questions of a step whose answers are A: each id is a key of A, and
 * its codec gives that key's type (a step's answers object, e.g.
 * `{ name: string; role: 'Administrator' | 'PVEAdmin'; password?: Secret }`).
 */
export type QuestionsFor<F, A> = string extends keyof A ? Question<F>[] : { [K in keyof A & string]-?: QuestionOf<F, K, Exclude<A[K], undefined>> }[keyof A & string][];

/** What one step may read of another's answers: the ones kept (secrets never), any of them possibly absent. */
export type KeptAnswers<A> = { readonly [K in keyof A as [Exclude<A[K], undefined>] extends [Secret] ? never : K]?: A[K] };

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
  /** The Proxmox API of this node (src/pve/api.ts), for steps and ApiChanges. */
  api?: PveApi;
  /** The version of pve-baseline that runs, given by the entry point (for what a step writes, e.g. the document); absent in tests. */
  toolVersion?: string;
  /** Where this pve-baseline is installed (a link resolved), for a unit that runs it later; absent in tests. */
  program?: string;
  /** A line for the progress tail (not persisted). */
  log: (line: string) => void;
  /**
   * The answers another step was given, typed by that step (secrets never),
   * e.g. `ctx.answersOf(adminAccountStep).name` for the SSH key step.
   */
  answersOf: <A extends object>(step: Step<any, A>) => KeptAnswers<A>;
  /** What the journal records of every step (for the document's change log). */
  journalRecords: () => Readonly<Record<string, StepRecord>>;
}

/**
 * For steps that can cut access (risk 'lockout'): the engine backs up every
 * file the plan touches, arms a revert the node owns (src/engine/guarded-apply.ts, src/engine/revert/)
 * BEFORE anything changes, applies, checks, activates, verifies, and keeps
 * the change only once access is confirmed (the operator, or
 * `pve-baseline confirm` from a new session); otherwise the node reverts.
 */
export interface AccessGuard<F = unknown, A extends object = Answers> {
  /** argv lists the revert runs after restoring the files, e.g. [['systemctl', 'reload', 'ssh']]. */
  reload: string[][];
  /**
   * argv lists the revert also runs, in every mode, to tidy what a run
   * killed half-way leaves behind (e.g. the probe key line); failures are
   * only logged.
   */
  cleanup?: (facts: F) => string[][];
  /**
   * argv lists the revert runs only when something failed (a file could not
   * be put back, a reload failed): the way to open the door when the normal
   * way did not, e.g. [['pve-firewall', 'stop']].
   */
  lastResort?: string[][];
  /** Seconds before the node reverts on its own (the operator may choose them); default 180. */
  seconds?: number | ((answers: A) => number);
  /**
   * What must hold before the change goes live (e.g. `sshd -t` and `sshd -T`
   * against the intent). For a plan that goes live on a reload this runs
   * after the files are written; for one that goes live when written (a
   * `FileChange` with `activates`), before the write, so it must check the
   * intended content in `changes`. A failing check reverts at once.
   */
  beforeActivate?: (ctx: StepContext, answers: A, facts: F, changes: readonly Change[]) => Promise<Check[]>;
  /**
   * The live proof once the change is active (e.g. logging in with an
   * ephemeral probe key). Kept apart from `verify`, which must stay
   * read-only because `check` runs it; a failing proof reverts at once.
   */
  prove?: (ctx: StepContext, answers: A, facts: F) => Promise<Check[]>;
  /**
   * How a person proves access: what to tell them, and how to see them do
   * it (e.g. the journal's "Accepted publickey" line of their own key).
   * `watch` resolves with who logged in, from where, with which key, or
   * null when `signal` aborts.
   */
  access?: (ctx: StepContext, answers: A, facts: F) => AccessWatch;
  /**
   * When a new login on the node proves nothing about the access at risk
   * (a second factor for the web UI): what does prove it. \`pve-baseline
   * confirm\` then refuses to keep the change, and the countdown does not
   * offer it.
   */
  provenOnlyBy?: string;
}

export interface AccessWatch {
  instructions: string[];
  watch: (since: Date, signal: AbortSignal) => Promise<AccessSeen | null>;
}

/** A login that proves access: one line for the operator, and its parts for the document's change log. */
export interface AccessSeen {
  detail: string;
  user?: string;
  from?: string;
  fingerprint?: string;
}

/**
 * A step with facts F and answers A: `A` is the step's answers object (a type
 * with one key per question), which plan, verify and the guard receive typed.
 */
export interface Step<F = unknown, A extends object = Answers> {
  id: string;
  title: string;
  /** One sentence: what the step achieves and why it matters. */
  summary: string;
  scope: Scope;
  risk: Risk;
  /** Steps that must be verified before this one may run. */
  dependsOn?: string[];
  questions?: QuestionsFor<F, A>;
  /** Says why the step cannot apply to this node at all, before anything is probed (e.g. no Proxmox tools). */
  requires?: (node: NodeInfo) => string | undefined;
  /** Says why the step does not apply to this node (e.g. not a cluster); undefined when it applies. */
  notApplicable?: (facts: F, node: NodeInfo) => string | undefined;
  probe(ctx: StepContext): Promise<F>;
  plan(facts: F, answers: A, node: NodeInfo): Change[];
  /**
   * Refusals before anything is shown or changed: checks a plan must pass
   * because it would otherwise shut the operator out (e.g. no installed key
   * the new sshd settings accept). Pure; a failing check ends the step.
   */
  preflight?(facts: F, answers: A, node: NodeInfo): Check[];
  /**
   * Lines shown under the plan, before anything changes, that the changes
   * themselves cannot say (e.g. what each user may do before and after an
   * access model is applied). Pure.
   */
  preview?(facts: F, answers: A, changes: readonly Change[]): string[];
  verify(ctx: StepContext, answers: A): Promise<Check[]>;
  /**
   * For risk 'reboot': whether the node must reboot for the step to take
   * full effect, read from the node (e.g. the newest bootable kernel is not
   * the running one). Asked after the step is verified or compliant; the
   * runner journals the need, prepares the check after the boot, and asks
   * the operator (headless: stops with the reboot exit code).
   */
  rebootNeeded?(ctx: StepContext): Promise<RebootNeed | undefined>;
  /** Required for risk 'lockout': how the change is kept reversible until access is proven. */
  guard?: AccessGuard<F, A>;
  /**
   * Anything beyond what the engine undoes from the record (files restored,
   * undo commands run, services put back), e.g. telling a daemon to re-read
   * a restored file it does not watch. Runs after the engine's rollback.
   */
  afterRollback?(ctx: StepContext): Promise<void>;
  /**
   * The step's part of the access-policy document, read from the node as it
   * is now (`answers`: what the journal recorded for this step, secrets
   * excluded). The report places it in catalogue order; undefined leaves the
   * step out. Read-only, like `verify`: `check` and `docs` run it.
   */
  document?(ctx: StepContext, answers: KeptAnswers<A>): Promise<DocumentSection | undefined>;
}

/** Erase the facts type for the catalogue and the runner. */
export type AnyStep = Step<any, any>;

/** Whether a question's answer is a secret: a password, or an answer its codec marks secret (a password hash). */
export function isSecretQuestion(question: Question<any>): boolean {
  return question.kind === 'password' || question.codec?.secret === true;
}

const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** A structured answer: a plain object, or a list of them (a Secret is an instance of its class, so never one). */
export function isAnswerDocument(value: unknown): value is AnswerDocument {
  return isPlainObject(value) || (Array.isArray(value) && value.length > 0 && value.every(isPlainObject));
}

/**
 * The answers a step may persist (journal, `status`, other steps): every
 * plain answer except secrets, whether the value is a Secret or the
 * question's codec marks it secret (a password hash is a plain string).
 */
export function persistableAnswers(step: AnyStep, answers: Readonly<Record<string, unknown>>): Record<string, StoredAnswer> {
  const questions: Question<any>[] = step.questions ?? [];
  const out: Record<string, StoredAnswer> = {};
  for (const [key, value] of Object.entries(answers)) {
    const question = questions.find((q) => q.id === key);
    if (question && isSecretQuestion(question)) continue;
    if (!(typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || (Array.isArray(value) && value.every((v) => typeof v === 'string')) || isAnswerDocument(value))) continue;
    out[key] = value as StoredAnswer;
  }
  return out;
}

/**
 * Another step's stored answers as that step types them (what `answersOf`
 * returns): only its own non-secret questions, so an old journal that still
 * holds a secret never hands it on.
 */
export function keptAnswers<A extends object>(step: Step<any, A>, stored: Readonly<Record<string, unknown>> | undefined): KeptAnswers<A> {
  const asked = new Set((step.questions ?? []).map((q: Question<any>) => q.id));
  const own = Object.fromEntries(Object.entries(stored ?? {}).filter(([key]) => asked.has(key)));
  return persistableAnswers(step, own) as KeptAnswers<A>;
}
