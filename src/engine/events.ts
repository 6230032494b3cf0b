/**
 * What the runner tells its front-end (the Ink wizard or headless mode), and
 * what it asks of the operator. The runner never waits on a keyboard itself:
 * it awaits an Operator, which the wizard implements with prompts and
 * headless mode with an answers file and --yes.
 */
import type { Secret } from '../system/secret.ts';
import type { Change } from './change.ts';
import type { AnswerDetails, AnswerValue, Check, Question, Risk, Scope } from './step.ts';
import type { RebootNeed, RebootRecord } from './reboot.ts';
import type { GuardPhase, StepStatus } from './journal.ts';

/** Each phase of the lockout protocol as the wizard, the log and `status` say it. */
export const GUARD_PHASE_TEXT: Record<GuardPhase, string> = {
  'backed-up': 'files backed up',
  armed: 'revert armed on the node',
  written: 'files written',
  checked: 'checks before going live passed',
  active: 'live',
  proven: 'proven automatically; awaiting a person',
  kept: 'kept: access proven, revert disarmed',
  reverted: 'reverted',
};

export interface StepInfo {
  id: string;
  title: string;
  summary: string;
  risk: Risk;
  scope: Scope;
  /** The status the journal holds from an earlier run (pending when none). */
  journaled: StepStatus;
}

export interface Plan {
  stepId: string;
  title: string;
  risk: Risk;
  changes: Change[];
  /** For a change that can cut access: the revert the node will own while access is proven. */
  guard?: PlanGuard;
  /** The step's preview lines (Step.preview), shown after the changes. */
  notes?: string[];
}

/** The revert a guarded plan runs under, as data: shown before anything changes. */
export interface PlanGuard {
  /** Seconds the node waits for access to be proven before it reverts on its own. */
  windowSeconds: number;
  /**
   * 'on-write': the change is live as soon as a file is written (a firewall
   * file), so its checks run before the write; 'on-reload': it goes live when
   * a service reloads, after the checks.
   */
  activation: 'on-write' | 'on-reload';
  /** argv lists the revert runs after restoring the files (e.g. systemctl reload ssh). */
  revertRuns: string[][];
  /** argv lists the revert also runs to tidy what a killed run left behind. */
  cleanup: string[][];
  /** argv lists the revert runs only when a file could not be put back (e.g. pve-firewall stop). */
  lastResort?: string[][];
}

export type StepOutcome = 'compliant' | 'verified' | 'failed' | 'skipped' | 'not-applicable' | 'planned' | 'awaiting-confirmation';

export type RunnerEvent =
  | { type: 'run-started'; steps: StepInfo[]; resumeAt?: { stepId: string; index: number } }
  | { type: 'step-started'; stepId: string; index: number; previously?: StepStatus }
  | { type: 'step-planned'; plan: Plan }
  | { type: 'step-applying'; stepId: string }
  | { type: 'change-started'; stepId: string; index: number; change: Change }
  | { type: 'output'; stepId: string; line: string }
  /** A long command's progress (CommandChange.progress): at most a few times a second. */
  | { type: 'change-progress'; stepId: string; index: number; progress: ChangeProgress }
  | { type: 'change-finished'; stepId: string; index: number }
  | { type: 'step-verifying'; stepId: string }
  /** The lockout protocol moved on (journaled before it is emitted). */
  | { type: 'guard-phase'; stepId: string; phase: GuardPhase; deadline?: number; detail?: string }
  | { type: 'step-finished'; stepId: string; outcome: StepOutcome; checks?: Check[]; reason?: string; rolledBack?: boolean }
  | { type: 'stop-requested' }
  | { type: 'run-finished'; results: StepResult[]; stopped: boolean };

/** Where a long command stands: the whole of it in percent, and what it does now. */
export interface ChangeProgress {
  percent: number;
  /** e.g. "Unpacking pve-manager (amd64)", "downloading, Retrieving file 3 of 12" */
  label: string;
  done: boolean;
}

export interface StepResult {
  stepId: string;
  title: string;
  outcome: StepOutcome;
  changes: number;
  reason?: string;
  checks?: Check[];
  /** Set when the step failed after changing something: whether the undo succeeded. */
  rolledBack?: boolean;
  /** Set when the node must reboot after this step and the run stopped for it (headless), or reboots now. */
  reboot?: RebootRecord;
}

/** A step needs a reboot: what it says, for the operator to decide now or later. */
export interface RebootRequest extends RebootNeed {
  stepId: string;
  stepTitle: string;
}

/** The operator's decision on a plan; `{ skip }` says why, for the summary. */
export type Review = 'apply' | 'skip' | 'stop' | { skip: string };

export interface AnswerRequest {
  stepId: string;
  stepTitle: string;
  question: Question<any>;
  defaultValue?: AnswerValue;
  /** Set when an earlier answer to the same question was refused. */
  error?: string;
  /** What to show with the question (question.display, computed from the facts and the answers so far). */
  display?: QuestionDisplay;
}

/**
 * Something a question shows above its prompt, e.g. a QR code to scan before
 * typing the code it yields. `qr.text` is encoded, never printed as text;
 * `qr.secretText` is shown beside it for password managers.
 */
export interface QuestionDisplay {
  /** `matrix`: the code's modules (true = dark), filled in by the runner when it asks (src/tfa/qr-matrix.ts). */
  qr?: { text: Secret; secretText?: Secret; caption: string; matrix?: boolean[][] };
  lines?: string[];
}

/** Values the operator must see exactly once (recovery keys, a token's secret); nothing keeps them. */
export interface RevealRequest {
  stepId: string;
  title: string;
  /** What to do with them, e.g. "Write these down and keep them apart from your phone." */
  advice: string;
  values: Secret[];
  /** The operator's file the values were also written to (Reveal.saveTo), if any. */
  savedTo?: string;
}

/** How access was proven while the node counted down. */
export interface AccessProof {
  /**
   * 'login': a new login by the admin was seen in the journal; 'confirm':
   * `pve-baseline confirm` ran in another session; 'console': kept on the
   * console without a second login, by the operator's choice.
   */
  by: 'login' | 'confirm' | 'console';
  /** One line for the operator and the journal, e.g. "alice from 10.77.7.1 (port 50412) with ED25519 key SHA256:...". */
  detail: string;
  /** Who logged in, from where, with which key (for the document's change log). */
  user?: string;
  from?: string;
  fingerprint?: string;
}

export interface AccessRequest {
  stepId: string;
  title: string;
  /** Epoch ms: when the node reverts the change unless it is confirmed. */
  deadline: number;
  /** What the operator should do, one line each (e.g. "ssh alice@10.77.7.2"), shown with the countdown. */
  instructions: string[];
  /**
   * The change may be kept without a second login: the wizard runs on the
   * console, which the change cannot cut off. Over SSH it is never offered.
   */
  maySkip: boolean;
  /** Settles with the proof when it is seen, or null at the deadline. */
  proof: Promise<AccessProof | null>;
}

/** What the operator decided while the node counted down. */
export type AccessDecision =
  | { kind: 'proven'; proof: AccessProof }
  /** Kept without a second login (console only). */
  | { kind: 'skipped' }
  /** Put it back now (the operator asked, or the deadline passed). */
  | { kind: 'revert'; reason: string };

export interface Operator {
  /** One answer; the runner validates it and asks again with `error` set when it is refused. */
  answer(request: AnswerRequest): Promise<unknown>;
  /** Look at a plan and decide. For a lockout-risk plan the front-end must demand typed confirmation. */
  review(plan: Plan): Promise<Review>;
  /**
   * Confirm what an answer turned out to be (AnswerDetails); false asks the
   * question again. Front-ends without it (headless) accept the answer.
   */
  confirmDetails?(request: AnswerRequest, details: AnswerDetails): Promise<boolean>;
  /**
   * A lockout-risk change is active and verified: prove access (e.g. log in
   * from a new session) before `deadline`, when the node reverts on its own.
   * The front-end shows the countdown and the instructions and settles with
   * the proof when `request.proof` brings one. Front-ends without it
   * (headless) leave it armed for `pve-baseline confirm` from a new session.
   */
  confirmAccess?(request: AccessRequest): Promise<AccessDecision>;
  /**
   * Show values once (RevealRequest) and resolve when the operator says they
   * have them. Front-ends without it (headless) cannot run a step whose plan
   * reveals something; the runner skips such a step, saying so.
   */
  reveal?(request: RevealRequest): Promise<void>;
  /**
   * A step needs a reboot: 'now' reboots the node (the run ends; the next run
   * resumes after the step), 'later' goes on and leaves the need journaled.
   * Front-ends without it (headless) stop the run with the reboot exit code.
   */
  reboot?(request: RebootRequest): Promise<'now' | 'later'>;
}

/** Thrown by an Operator when the person asked to stop right now (Ctrl+C at a prompt). */
export class OperatorStop extends Error {
  constructor() {
    super('stopped by the operator');
    this.name = 'OperatorStop';
  }
}

/** Thrown by an Operator when the person chose to skip the step at one of its questions (not every step can be planned without its answers). */
export class StepSkip extends Error {
  constructor() {
    super('skipped by the operator');
    this.name = 'StepSkip';
  }
}

/** The operator could not be asked (headless, no answer in the file). */
export class MissingAnswerError extends Error {
  constructor(readonly field: string) {
    super(`no answer for ${field}`);
    this.name = 'MissingAnswerError';
  }
}

/** An answer given up front was refused; names the field. */
export class AnswerError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'AnswerError';
  }
}
