/**
 * The bridge between the runner (a plain async loop) and the Ink tree: it is
 * the wizard's Operator. When the runner asks something, the store puts a
 * pending interaction into state and returns a promise that the screen
 * settles. Screens subscribe with useSyncExternalStore.
 */
import { OperatorStop, type AnswerRequest, type Operator, type Plan, type Review, type RunnerEvent } from '../../src/engine/events.ts';
import type { AnswerDetails } from '../../src/engine/step.ts';
import { initialState, wizardReducer, type WizardAction, type WizardState } from './wizard-reducer.ts';

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
    if (pending?.kind === 'review') {
      this.#clear();
      requestStop();
      pending.resolve('stop');
      return true;
    }
    if (pending?.kind === 'start') {
      pending.resolve(false);
      return true;
    }
    requestStop();
    return false;
  }

  #setPending(pending: NonNullable<WizardState['pending']>): void {
    // Wrap the settlers so that settling also clears the prompt from the screen.
    const clear = () => this.#clear();
    const wrapped =
      pending.kind === 'start'
        ? { ...pending, resolve: (start: boolean) => (clear(), pending.resolve(start)) }
        : pending.kind === 'answer'
          ? { ...pending, resolve: (v: unknown) => (clear(), pending.resolve(v)), reject: (e: Error) => (clear(), pending.reject(e)) }
          : pending.kind === 'details'
            ? { ...pending, resolve: (accept: boolean) => (clear(), pending.resolve(accept)), reject: (e: Error) => (clear(), pending.reject(e)) }
            : { ...pending, resolve: (r: Review) => (clear(), pending.resolve(r)) };
    this.dispatch({ type: 'pending', pending: wrapped });
  }

  #clear(): void {
    this.dispatch({ type: 'pending', pending: undefined });
  }
}
