/**
 * The Operator for unattended runs: answers come from the answers file (the
 * runner already holds them as preset answers), so being asked means the
 * file lacks one. A plan is applied only with --yes.
 */
import type { AnswerRequest, Operator, Plan, Review } from '../engine/events.ts';
import type { AnswerDetails } from '../engine/step.ts';
import { MissingAnswerError } from '../engine/runner.ts';

export class HeadlessOperator implements Operator {
  readonly refused: Plan[] = [];

  constructor(
    private readonly yes: boolean,
    private readonly write: (line: string) => void = () => undefined,
    /** Steps the answers file names: a lockout-risk step runs unattended only when named. */
    private readonly named: ReadonlySet<string> = new Set(),
  ) {}

  /** Unattended, the answers file is the decision; the details still go into the log. */
  async confirmDetails(request: AnswerRequest, details: AnswerDetails): Promise<boolean> {
    this.write(`  ${request.stepId}.${request.question.id}: ${details.title}`);
    for (const item of details.items) {
      this.write(`    ${item.heading}: ${item.fields.map(([label, value]) => `${label.toLowerCase()} ${value}`).join(', ')}`);
      if (item.warning) this.write(`    warning: ${item.warning}`);
    }
    return true;
  }

  async answer(request: AnswerRequest): Promise<unknown> {
    // A detected default is a fine answer unattended: it is what the wizard would offer.
    if (request.defaultValue !== undefined && !request.error) return request.defaultValue;
    // An optional answer the file does not give is empty.
    if (request.question.kind === 'text' && request.question.optional && !request.error) return '';
    throw new MissingAnswerError(`${request.stepId}.${request.question.id}`);
  }

  async review(plan: Plan): Promise<Review> {
    // Nothing surprising: a change that can cut access is made unattended only when asked for by name.
    if (plan.risk === 'lockout' && !this.named.has(plan.stepId)) {
      return { skip: `it can cut access, so it runs unattended only when the answers file has a section for it (${plan.stepId}: {} takes the defaults)` };
    }
    if (this.yes) return 'apply';
    this.refused.push(plan);
    return 'skip';
  }
}
