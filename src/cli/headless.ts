/**
 * The Operator for unattended runs: answers come from the answers file (the
 * runner already holds them as preset answers), so being asked means the
 * file lacks one. A plan is applied only with --yes.
 */
import type { AnswerRequest, Operator, Plan, Review } from '../engine/events.ts';
import { MissingAnswerError } from '../engine/runner.ts';

export class HeadlessOperator implements Operator {
  readonly refused: Plan[] = [];

  constructor(private readonly yes: boolean) {}

  async answer(request: AnswerRequest): Promise<unknown> {
    // A detected default is a fine answer unattended: it is what the wizard would offer.
    if (request.defaultValue !== undefined && !request.error) return request.defaultValue;
    throw new MissingAnswerError(`${request.stepId}.${request.question.id}`);
  }

  async review(plan: Plan): Promise<Review> {
    if (this.yes) return 'apply';
    this.refused.push(plan);
    return 'skip';
  }
}
