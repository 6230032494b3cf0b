/**
 * The bridge between the runner (a plain async loop) and the Ink tree: it is
 * the wizard's Operator. When the runner asks something, the store puts a
 * pending interaction into state and returns a promise that the screen
 * settles. Screens subscribe with useSyncExternalStore.
 */
import { OperatorStop, type AccessDecision, type AccessRequest, type AnswerRequest, type Operator, type Plan, type RebootRequest, type RevealRequest, type Review, type RunnerEvent } from '../../src/engine/events.ts';
import type { AnswerDetails } from '../../src/engine/step.ts';
import { initialState, wizardReducer, type Pending, type WizardAction, type WizardState } from './wizard-reducer.ts';

/** Why the change goes back when the node's deadline passes without a proof. */
export const DEADLINE_REASON = 'no new login before the deadline: the node put the change back';

export class WizardStore implements Operator {
  #state: WizardState = initialState;
  readonly #listeners = new Set<() => void>();

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  getState = (): WizardState => this.#state;

  dispatch = (action: WizardAction): void => {
    this.#state = wizardReducer(this.#state, action);
    for (const listener of this.#listeners) listener();
  };

  /** Feed a runner event in. */
  onEvent = (event: RunnerEvent): void => this.dispatch({ type: 'runner', event });

  /** Resolves when the person leaves the welcome screen: true to start, false to quit. */
  waitForStart(): Promise<boolean> {
    return new Promise((resolve) => this.#setPending({ kind: 'start', resolve }));
  }

  answer(request: AnswerRequest): Promise<unknown> {
    return new Promise((resolve, reject) => this.#setPending({ kind: 'answer', request, resolve, reject }));
  }

  review(plan: Plan): Promise<Review> {
    return new Promise((resolve) => this.#setPending({ kind: 'review', plan, resolve }));
  }

  confirmDetails(request: AnswerRequest, details: AnswerDetails): Promise<boolean> {
    return new Promise((resolve, reject) => this.#setPending({ kind: 'details', request, details, resolve, reject }));
  }

  /**
   * The node counts down; the screen shows it with the instructions. The
   * proof (or the deadline's null) settles it unless the person chose first.
   */
  confirmAccess(request: AccessRequest): Promise<AccessDecision> {
    return new Promise((resolve, reject) => {
      const shown = this.#setPending({ kind: 'access', request, resolve, reject });
      request.proof.then(
        (proof) => shown.resolve(proof ? { kind: 'proven', proof } : { kind: 'revert', reason: DEADLINE_REASON }),
        // Access can no longer be proven, so the change must not stay.
        (error: Error) => shown.resolve({ kind: 'revert', reason: `watching for access failed: ${error.message}` }),
      );
    });
  }

  /**
   * Values shown once (recovery keys, a token's secret): resolves when the
   * person says they have written them down. Clearing the prompt drops them
   * from the state.
   */
  reveal(request: RevealRequest): Promise<void> {
    return new Promise((resolve) => this.#setPending({ kind: 'reveal', request, resolve }));
  }

  /** A step needs a reboot: the person says now or later. */
  reboot(request: RebootRequest): Promise<'now' | 'later'> {
    return new Promise((resolve) => this.#setPending({ kind: 'reboot', request, resolve }));
  }

  /**
   * Ctrl+C. At a prompt nothing is in flight, so stop now; while a step runs,
   * the runner finishes (or rolls back) the step and stops at the boundary.
   * Returns true when the stop is immediate.
   */
  interrupt(requestStop: () => void): boolean {
    const pending = this.#state.pending;
    if (pending?.kind === 'answer') {
      this.#clear();
      pending.reject(new OperatorStop());
      return true;
    }
    if (pending?.kind === 'details') {
      // Stop at once, as at a question: nothing has been applied for this step.
      this.#clear();
      pending.reject(new OperatorStop());
      return true;
    }
    if (pending?.kind === 'access') {
      // The runner puts the unconfirmed change back at once, then stops.
      this.#clear();
      pending.reject(new OperatorStop());
      return true;
    }
    if (pending?.kind === 'review') {
      this.#clear();
      requestStop();
      pending.resolve('stop');
      return true;
    }
    if (pending?.kind === 'reveal') {
      // The change that made the values is done and they are shown nowhere
      // else: keep them on screen until w, then stop at the step boundary
      // (a second Ctrl+C still quits at once).
      requestStop();
      return false;
    }
    if (pending?.kind === 'reboot') {
      // Not now: the need stays journaled; stop at the step boundary.
      requestStop();
      pending.resolve('later');
      return true;
    }
    if (pending?.kind === 'start') {
      pending.resolve(false);
      return true;
    }
    requestStop();
    return false;
  }

  /** Shows the interaction; returns it as shown, with settlers that also clear it from the screen. */
  #setPending<P extends Pending>(pending: P): P {
    const wrapped = this.#clearingSettlers(pending) as P;
    this.dispatch({ type: 'pending', pending: wrapped });
    return wrapped;
  }

  #clearingSettlers(pending: Pending): Pending {
    const clear = () => this.#clear();
    switch (pending.kind) {
      case 'start':
        return { ...pending, resolve: (start: boolean) => (clear(), pending.resolve(start)) };
      case 'answer':
        return { ...pending, resolve: (v: unknown) => (clear(), pending.resolve(v)), reject: (e: Error) => (clear(), pending.reject(e)) };
      case 'details':
        return { ...pending, resolve: (accept: boolean) => (clear(), pending.resolve(accept)), reject: (e: Error) => (clear(), pending.reject(e)) };
      case 'review':
        return { ...pending, resolve: (r: Review) => (clear(), pending.resolve(r)) };
      case 'reveal':
        return { ...pending, resolve: () => (clear(), pending.resolve()) };
      case 'reboot':
        return { ...pending, resolve: (decision: 'now' | 'later') => (clear(), pending.resolve(decision)) };
      case 'access': {
        // Settle once: the proof or the deadline can land after the person
        // chose, when a later prompt may be on screen that must not be cleared.
        let settled = false;
        const once =
          <T>(settle: (value: T) => void) =>
          (value: T) => {
            if (settled) return;
            settled = true;
            clear();
            settle(value);
          };
        return { ...pending, resolve: once(pending.resolve), reject: once(pending.reject) };
      }
    }
  }

  #clear(): void {
    this.dispatch({ type: 'pending', pending: undefined });
  }
}
