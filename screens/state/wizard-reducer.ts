/**
 * The wizard's state, reduced from runner events and from what the person
 * does. Pure: every screen renders from this, and tests drive it directly.
 */
import type { AccessDecision, AccessRequest, AnswerRequest, ChangeProgress, RebootRequest, Plan, RevealRequest, Review, RunnerEvent, StepOutcome, StepResult } from '../../src/engine/events.ts';
import type { AnswerDetails, Check, Risk, Scope } from '../../src/engine/step.ts';
import type { GuardPhase, StepStatus } from '../../src/engine/journal.ts';

export type StepState = 'pending' | 'active' | StepOutcome;
/**
 * 'confirming': the node counts down until access is proven. 'finishing':
 * after that decision, the runner keeps the change (disarms the node's revert)
 * or puts it back; which one, the finished step says.
 */
export type Activity = 'probing' | 'asking' | 'reviewing' | 'applying' | 'verifying' | 'confirming' | 'finishing';

export interface StepView {
  id: string;
  title: string;
  summary: string;
  risk: Risk;
  scope: Scope;
  state: StepState;
  journaled: StepStatus;
  reason?: string;
  checks?: Check[];
  changes?: number;
}

/** What the runner is waiting for from the person; resolve/reject settle the Operator's promise. */
export type Pending =
  | { kind: 'start'; resolve: (start: boolean) => void }
  | { kind: 'answer'; request: AnswerRequest; resolve: (value: unknown) => void; reject: (error: Error) => void }
  | { kind: 'review'; plan: Plan; resolve: (review: Review) => void }
  | { kind: 'details'; request: AnswerRequest; details: AnswerDetails; resolve: (accept: boolean) => void; reject: (error: Error) => void }
  | { kind: 'access'; request: AccessRequest; resolve: (decision: AccessDecision) => void; reject: (error: Error) => void }
  /** Values shown once while the step applies; they leave the state with the prompt. */
  | { kind: 'reveal'; request: RevealRequest; resolve: () => void }
  /** A step needs a reboot: now, or later. */
  | { kind: 'reboot'; request: RebootRequest; resolve: (decision: 'now' | 'later') => void };

/** A finished step, written once into Ink's <Static> region (scrollback). */
export interface FinishedEntry {
  stepId: string;
  title: string;
  outcome: StepOutcome;
  reason?: string;
  checks?: Check[];
  changes: number;
  rolledBack?: boolean;
}

export interface Progress {
  total: number;
  done: number;
  current?: string;
  /** The running command's own progress, when it reports one (an upgrade). */
  detail?: ChangeProgress;
}

export const TAIL_LIMIT = 40;

export interface WizardState {
  phase: 'welcome' | 'running' | 'finished';
  steps: StepView[];
  resumeAt?: { stepId: string; index: number };
  activeStepId?: string;
  activity?: Activity;
  /** The step's "resumed after X" note, when the journal had it mid-way. */
  previously?: StepStatus;
  plan?: Plan;
  /** Where the lockout protocol of the active step stands, as the runner journaled it. */
  guard?: { phase: GuardPhase; deadline?: number };
  progress?: Progress;
  /** The last lines of command output (capped), shown as a short tail. */
  tail: string[];
  finished: FinishedEntry[];
  pending?: Pending;
  stopRequested: boolean;
  results?: StepResult[];
  stopped: boolean;
}

export type WizardAction =
  | { type: 'runner'; event: RunnerEvent }
  | { type: 'pending'; pending: Pending | undefined };

export const initialState: WizardState = { phase: 'welcome', steps: [], tail: [], finished: [], stopRequested: false, stopped: false };

const ACTIVITY_WHILE: Record<Pending['kind'], Activity | undefined> = {
  start: undefined,
  answer: 'asking',
  details: 'asking',
  review: 'reviewing',
  access: 'confirming',
  // Shown in the middle of applying; applying goes on afterwards.
  reveal: undefined,
  reboot: 'finishing',
};

const ACTIVITY_AFTER: Partial<Record<Activity, Activity>> = {
  asking: 'probing',
  reviewing: 'applying',
  confirming: 'finishing',
};

function patchStep(steps: StepView[], id: string, patch: Partial<StepView>): StepView[] {
  return steps.map((s) => (s.id === id ? { ...s, ...patch } : s));
}

export function wizardReducer(state: WizardState, action: WizardAction): WizardState {
  if (action.type === 'pending') {
    const pending = action.pending;
    // While the person is asked, the activity is the question; once answered,
    // the runner goes on: after a question it plans, after a review it
    // applies, after the access countdown it keeps or reverts.
    const activity = pending ? (ACTIVITY_WHILE[pending.kind] ?? state.activity) : state.activity ? (ACTIVITY_AFTER[state.activity] ?? state.activity) : undefined;
    return { ...state, pending, activity };
  }
  const event = action.event;
  switch (event.type) {
    case 'run-started':
      return {
        ...state,
        steps: event.steps.map((s) => ({ ...s, state: 'pending' as const })),
        resumeAt: event.resumeAt,
      };
    case 'step-started':
      return {
        ...state,
        phase: 'running',
        activeStepId: event.stepId,
        activity: 'probing',
        previously: event.previously,
        plan: undefined,
        guard: undefined,
        progress: undefined,
        tail: [],
        steps: patchStep(state.steps, event.stepId, { state: 'active' }),
      };
    case 'step-planned':
      return { ...state, plan: event.plan };
    case 'step-applying':
      return { ...state, activity: 'applying', progress: { total: state.plan?.changes.length ?? 0, done: 0 } };
    case 'change-started':
      return { ...state, progress: { total: state.progress?.total ?? 0, done: event.index, current: describe(event.change) } };
    case 'change-progress':
      return { ...state, progress: { total: state.progress?.total ?? 0, done: state.progress?.done ?? event.index, ...(state.progress?.current ? { current: state.progress.current } : {}), detail: event.progress } };
    case 'change-finished':
      return { ...state, progress: { total: state.progress?.total ?? 0, done: event.index + 1 } };
    case 'output': {
      const tail = [...state.tail, event.line];
      return { ...state, tail: tail.length > TAIL_LIMIT ? tail.slice(-TAIL_LIMIT) : tail };
    }
    case 'step-verifying':
      return { ...state, activity: 'verifying' };
    case 'guard-phase':
      return { ...state, guard: { phase: event.phase, ...(event.deadline ? { deadline: event.deadline } : state.guard?.deadline ? { deadline: state.guard.deadline } : {}) } };
    case 'step-finished': {
      const step = state.steps.find((s) => s.id === event.stepId);
      const changes = state.plan?.stepId === event.stepId ? state.plan.changes.length : 0;
      const entry: FinishedEntry = {
        stepId: event.stepId,
        title: step?.title ?? event.stepId,
        outcome: event.outcome,
        changes,
        ...(event.reason ? { reason: event.reason } : {}),
        ...(event.checks ? { checks: event.checks } : {}),
        ...(event.rolledBack !== undefined ? { rolledBack: event.rolledBack } : {}),
      };
      return {
        ...state,
        activeStepId: undefined,
        activity: undefined,
        plan: undefined,
        guard: undefined,
        progress: undefined,
        finished: [...state.finished, entry],
        steps: patchStep(state.steps, event.stepId, {
          state: event.outcome,
          changes,
          ...(event.reason ? { reason: event.reason } : {}),
          ...(event.checks ? { checks: event.checks } : {}),
        }),
      };
    }
    case 'stop-requested':
      return { ...state, stopRequested: true };
    case 'run-finished':
      return { ...state, phase: 'finished', results: event.results, stopped: event.stopped, activeStepId: undefined, activity: undefined };
  }
}

function describe(change: Plan['changes'][number]): string {
  switch (change.kind) {
    case 'file':
      return change.path;
    case 'command':
      return change.argv.join(' ');
    case 'service':
      return `systemctl ${change.action} ${change.unit}`;
    case 'api':
      return `${change.method} ${change.path}`;
  }
}
